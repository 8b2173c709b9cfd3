// aedes_broker.js PORT [HOST] — an aedes MQTT broker (npm "aedes", 3.1.1) on
// one loopback port, as a second upstream implementation for test_bridge.py.
// It runs until killed; it exits at once if the port cannot be bound.
'use strict'
const net = require('net')
const aedes = require('aedes')()

const port = parseInt(process.argv[2], 10)
const host = process.argv[3] || '127.0.0.1'
const server = net.createServer(aedes.handle)
server.on('error', (e) => { console.error(e.message); process.exit(1) })
server.listen(port, host)
