// MQTT.js over WebSockets, driven by test_websockets.py: connects to argv[2]
// (ws:// or wss://; argv[3] a CA file for wss), with a will, subscribes to
// js/#, publishes js/from-node at QoS 1, and reports every event as one
// JSON line on stdout. On a line "die" on stdin it drops the connection
// without DISCONNECT (so its will goes out); on "quit" it disconnects.
"use strict";
const fs = require("fs");
const readline = require("readline");
const mqtt = require("mqtt");

const url = process.argv[2];
const opts = {
  clientId: "mqttjs-node",
  protocolVersion: 4,
  reconnectPeriod: 0,
  connectTimeout: 10000,
  will: { topic: "js/will", payload: Buffer.from("node died"), qos: 0, retain: false },
};
if (process.argv[3]) opts.ca = fs.readFileSync(process.argv[3]);
const say = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const client = mqtt.connect(url, opts);
client.on("error", (e) => { say({ event: "error", message: String(e) }); process.exit(1); });
client.on("connect", () => {
  client.subscribe("js/#", { qos: 1 }, (err) => {
    if (err) { say({ event: "error", message: String(err) }); process.exit(1); }
    client.publish("js/from-node", "hello from node", { qos: 1 }, () => say({ event: "ready" }));
  });
});
client.on("message", (topic, payload, packet) =>
  say({ event: "message", topic, payload: payload.toString(), retain: packet.retain }));
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (line === "die") { client.stream.destroy(); setTimeout(() => process.exit(0), 200); }
  if (line === "quit") client.end(false, () => process.exit(0));
});
