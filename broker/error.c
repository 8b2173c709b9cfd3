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
	}
	return "unknown error";
}

uint8_t roost_err_connack_v311(roost_err err)
{
	switch (err) {
	case ROOST_OK: return 0x00;
	case ROOST_ERR_UNSUPPORTED: return 0x01;   /* [MQTT-3.1.2-2] */
	case ROOST_ERR_BAD_CLIENT_ID: return 0x02; /* [MQTT-3.1.3-9] */
	case ROOST_ERR_NOT_AUTHORIZED: return 0x05;
	default: return 0x03;                      /* server unavailable */
	}
}
