/* error.c — error strings and the single error -> reason code mapping. */
#include "roost/error.h"

const char *roost_err_str(roost_err err)
{
	switch (err) {
	case ROOST_OK: return "ok";
	case ROOST_ERR_NOMEM: return "out of memory";
	case ROOST_ERR_NEED_MORE: return "incomplete packet";
	case ROOST_ERR_MALFORMED: return "malformed packet";
	case ROOST_ERR_PROTOCOL: return "protocol error";
	case ROOST_ERR_TOO_LARGE: return "too large";
	case ROOST_ERR_BAD_UTF8: return "invalid UTF-8";
	case ROOST_ERR_BAD_TOPIC: return "invalid topic";
	case ROOST_ERR_UNSUPPORTED: return "unsupported protocol version";
	case ROOST_ERR_BAD_CLIENT_ID: return "client identifier rejected";
	case ROOST_ERR_NOT_AUTHORIZED: return "not authorised";
	case ROOST_ERR_QUOTA: return "limit reached";
	case ROOST_ERR_NOT_FOUND: return "not found";
	case ROOST_ERR_EXISTS: return "already exists";
	case ROOST_ERR_IO: return "i/o error";
	case ROOST_ERR_CONFIG: return "configuration error";
	case ROOST_ERR_INVALID: return "invalid argument";
	case ROOST_ERR_BAD_CREDENTIALS: return "bad user name or password";
	case ROOST_ERR_BAD_AUTH_METHOD: return "bad authentication method";
	case ROOST_ERR_QOS_UNSUPPORTED: return "QoS not supported";
	case ROOST_ERR_RETAIN_UNSUPPORTED: return "retain not supported";
	}
	return "unknown error";
}

static uint8_t connack_v311(roost_err err)
{
	switch (err) {
	case ROOST_OK: return 0x00;
	case ROOST_ERR_UNSUPPORTED: return 0x01;     /* [MQTT-3.1.2-2] */
	case ROOST_ERR_BAD_CLIENT_ID: return 0x02;   /* [MQTT-3.1.3-9] */
	case ROOST_ERR_BAD_CREDENTIALS: return 0x04;
	case ROOST_ERR_NOT_AUTHORIZED:
	case ROOST_ERR_BAD_AUTH_METHOD:
	case ROOST_ERR_QOS_UNSUPPORTED:
	case ROOST_ERR_RETAIN_UNSUPPORTED: return 0x05;
	default: return 0x03;                        /* server unavailable */
	}
}

static uint8_t reason_v5(roost_err err)
{
	switch (err) {
	case ROOST_OK: return 0x00;
	case ROOST_ERR_MALFORMED:
	case ROOST_ERR_BAD_UTF8: return 0x81;        /* [MQTT-1.5.4-1] a bad string is malformed */
	case ROOST_ERR_PROTOCOL: return 0x82;
	case ROOST_ERR_UNSUPPORTED: return 0x84;
	case ROOST_ERR_BAD_CLIENT_ID: return 0x85;
	case ROOST_ERR_BAD_CREDENTIALS: return 0x86;
	case ROOST_ERR_NOT_AUTHORIZED: return 0x87;
	case ROOST_ERR_NOMEM:
	case ROOST_ERR_IO: return 0x88;              /* server unavailable */
	case ROOST_ERR_BAD_AUTH_METHOD: return 0x8C; /* [MQTT-4.12.0-1] */
	case ROOST_ERR_BAD_TOPIC: return 0x90;
	case ROOST_ERR_TOO_LARGE: return 0x95;
	case ROOST_ERR_QUOTA: return 0x97;
	case ROOST_ERR_RETAIN_UNSUPPORTED: return 0x9A; /* [MQTT-3.2.2-13] */
	case ROOST_ERR_QOS_UNSUPPORTED: return 0x9B;    /* [MQTT-3.2.2-12] */
	default: return 0x80;                        /* unspecified error */
	}
}

uint8_t roost_err_reason_code(roost_err err, uint8_t version)
{
	return version == 5 ? reason_v5(err) : connack_v311(err);
}
