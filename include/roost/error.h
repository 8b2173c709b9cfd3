/*
 * error.h — the one error enum of roost.
 *
 * Every fallible function returns roost_err; ROOST_OK is 0 so `if (err)` reads
 * naturally. Outcomes that are not failures ("no subscribers", "queue was
 * full and a QoS 0 message was dropped") travel in out-parameters, never here.
 * roost_err_reason_code() is the single place that maps an error to an MQTT
 * reason code, so handlers never invent their own mapping.
 */
#ifndef ROOST_ERROR_H
#define ROOST_ERROR_H

#include <stdint.h>

typedef enum roost_err {
	ROOST_OK = 0,
	ROOST_ERR_NOMEM,          /* allocation failed */
	ROOST_ERR_NEED_MORE,      /* codec: input is a valid prefix, more bytes needed */
	ROOST_ERR_MALFORMED,      /* codec: bytes violate the spec's syntax */
	ROOST_ERR_PROTOCOL,       /* well-formed but not allowed here (e.g. second CONNECT) */
	ROOST_ERR_TOO_LARGE,      /* exceeds a configured or protocol size limit */
	ROOST_ERR_BAD_UTF8,       /* invalid UTF-8 or U+0000 in an MQTT string */
	ROOST_ERR_BAD_TOPIC,      /* invalid topic name or topic filter */
	ROOST_ERR_UNSUPPORTED,    /* protocol name/level we do not speak */
	ROOST_ERR_BAD_CLIENT_ID,  /* client identifier rejected */
	ROOST_ERR_NOT_AUTHORIZED, /* authentication or authorisation refused */
	ROOST_ERR_QUOTA,          /* a per-client or broker limit is reached */
	ROOST_ERR_NOT_FOUND,      /* lookup found nothing */
	ROOST_ERR_EXISTS,         /* already present */
	ROOST_ERR_IO,             /* system call / socket / file failure */
	ROOST_ERR_CONFIG,         /* configuration invalid */
	ROOST_ERR_INVALID,        /* caller passed an invalid argument */
	ROOST_ERR_BAD_CREDENTIALS,    /* wrong user name or password (not: not authorised) */
	ROOST_ERR_BAD_AUTH_METHOD,    /* an MQTT 5 authentication method nobody implements */
	ROOST_ERR_QOS_UNSUPPORTED,    /* a QoS above limits.max_qos */
	ROOST_ERR_RETAIN_UNSUPPORTED, /* retain requested while retain_available is off */
} roost_err;

/* Short, stable, lower-case description; never NULL. */
const char *roost_err_str(roost_err err);

/*
 * The one mapping from an error to what the client is told: for a client of
 * protocol version 3 or 4, the 3.1.1 CONNACK return code ([MQTT-3.2.2-4..6]:
 * 0x01 unacceptable protocol version, 0x02 identifier rejected, 0x04 bad
 * user name or password, 0x05 not authorised, 0x03 server unavailable for
 * anything else); for version 5 the reason code of CONNACK or DISCONNECT
 * (MQTT 5.0 table 2-6: 0x81 malformed, 0x82 protocol error, 0x84, 0x85,
 * 0x86, 0x87, 0x88, 0x8C, 0x90, 0x95, 0x97, 0x9A, 0x9B; 0x80 unspecified).
 */
uint8_t roost_err_reason_code(roost_err err, uint8_t version);

#endif
