/* hub_proto.c — event body, answer verdict, backoff; see hub_proto.h. */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "roost/alloc.h"
#include "roost/codec.h"

#include "hub_proto.h"

bool roost_hub_payload_is_text(const uint8_t *payload, size_t len)
{
	/* roost_utf8_valid is MQTT's rule, which also refuses U+0000. NUL is
	 * ASCII and never part of a multi-byte sequence, so checking the runs
	 * between NULs is exactly "well-formed UTF-8". */
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || payload[i] == 0) {
			if (i > start && !roost_utf8_valid(payload + start, i - start))
				return false;
			start = i + 1;
		}
	}
	return true;
}

/* Bytes the JSON string literal for s[0..len) needs, quotes included. */
static size_t json_str_size(const uint8_t *s, size_t len)
{
	size_t n = 2;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = s[i];
		if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
			n += 2;
		else if (c < 0x20)
			n += 6; /* \u00XX */
		else
			n += 1;
	}
	return n;
}

static char *json_str_put(char *p, const uint8_t *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	*p++ = '"';
	for (size_t i = 0; i < len; i++) {
		uint8_t c = s[i];
		char esc = 0;
		switch (c) {
		case '"': esc = '"'; break;
		case '\\': esc = '\\'; break;
		case '\b': esc = 'b'; break;
		case '\f': esc = 'f'; break;
		case '\n': esc = 'n'; break;
		case '\r': esc = 'r'; break;
		case '\t': esc = 't'; break;
		default: break;
		}
		if (esc) {
			*p++ = '\\';
			*p++ = esc;
		} else if (c < 0x20) {
			memcpy(p, "\\u00", 4);
			p[4] = hex[c >> 4];
			p[5] = hex[c & 15];
			p += 6;
		} else {
			*p++ = (char)c;
		}
	}
	*p++ = '"';
	return p;
}

roost_err roost_hub_event_json(const char *topic, size_t topic_len, const uint8_t *payload,
                               size_t payload_len, uint8_t qos, bool retain, char **out,
                               size_t *out_len)
{
	static const char k_topic[] = "{\"topic\":";
	static const char k_payload[] = ",\"payload\":";
	static const char k_payload64[] = ",\"payload_base64\":\"";
	char tail[40];
	int tail_len = snprintf(tail, sizeof tail, ",\"qos\":%u,\"retain\":%s}", (unsigned)qos,
	                        retain ? "true" : "false");
	bool text = roost_hub_payload_is_text(payload, payload_len);
	/* EVP_EncodeBlock takes an int length; a payload above that (MQTT allows
	 * 256 MiB, so it cannot happen) would be refused rather than cut. */
	if (!text && payload_len > (size_t)(0x7fffffff / 4 * 3))
		return ROOST_ERR_TOO_LARGE;
	size_t b64_len = (payload_len + 2) / 3 * 4;
	size_t n = sizeof k_topic - 1 + json_str_size((const uint8_t *)topic, topic_len) +
	           (text ? sizeof k_payload - 1 + json_str_size(payload, payload_len)
	                 : sizeof k_payload64 - 1 + b64_len + 1) +
	           (size_t)tail_len;
	char *buf = roost_malloc(n + 1);
	if (!buf)
		return ROOST_ERR_NOMEM;
	char *p = buf;
	memcpy(p, k_topic, sizeof k_topic - 1);
	p += sizeof k_topic - 1;
	p = json_str_put(p, (const uint8_t *)topic, topic_len);
	if (text) {
		memcpy(p, k_payload, sizeof k_payload - 1);
		p += sizeof k_payload - 1;
		p = json_str_put(p, payload, payload_len);
	} else {
		memcpy(p, k_payload64, sizeof k_payload64 - 1);
		p += sizeof k_payload64 - 1;
		/* Writes b64_len characters and a NUL, overwritten just below. */
		p += EVP_EncodeBlock((unsigned char *)p, payload, (int)payload_len);
		*p++ = '"';
	}
	memcpy(p, tail, (size_t)tail_len);
	p += tail_len;
	*p = '\0';
	*out = buf;
	*out_len = (size_t)(p - buf);
	return ROOST_OK;
}

/* The bytes of the v5 additions: ,"content_type":"..." and
 * ,"user_properties":[["k","v"],...]; written when out is not NULL. */
static size_t props_json(char *out, roost_bytes props)
{
	static const char k_ct[] = ",\"content_type\":";
	static const char k_up[] = ",\"user_properties\":[";
	size_t n = 0, users = 0;
	roost_props_iter it;
	roost_prop prop;
	char *p = out;
	roost_props_iter_init(&it, props);
	while (roost_props_next(&it, &prop)) {
		if (prop.id == ROOST_PROP_CONTENT_TYPE) {
			n += sizeof k_ct - 1 + json_str_size(prop.str.ptr, prop.str.len);
			if (p) {
				memcpy(p, k_ct, sizeof k_ct - 1);
				p = json_str_put(p + sizeof k_ct - 1, prop.str.ptr, prop.str.len);
			}
		}
	}
	roost_props_iter_init(&it, props);
	while (roost_props_next(&it, &prop)) {
		if (prop.id != ROOST_PROP_USER_PROPERTY)
			continue;
		/* In the order they came [MQTT-3.3.2-18]. */
		n += (users ? 1 : sizeof k_up - 1) + 3 + json_str_size(prop.str.ptr, prop.str.len) +
		     json_str_size(prop.str2.ptr, prop.str2.len);
		if (p) {
			if (users)
				*p++ = ',';
			else
				p = (char *)memcpy(p, k_up, sizeof k_up - 1) + sizeof k_up - 1;
			*p++ = '[';
			p = json_str_put(p, prop.str.ptr, prop.str.len);
			*p++ = ',';
			p = json_str_put(p, prop.str2.ptr, prop.str2.len);
			*p++ = ']';
		}
		users++;
	}
	if (users) {
		n++;
		if (p)
			*p++ = ']';
	}
	return n;
}

roost_err roost_hub_event_json_props(const char *topic, size_t topic_len, const uint8_t *payload,
                                     size_t payload_len, const uint8_t *props, size_t props_len, uint8_t qos,
                                     bool retain, char **out, size_t *out_len)
{
	roost_err err = roost_hub_event_json(topic, topic_len, payload, payload_len, qos, retain, out, out_len);
	roost_bytes pb = {props, props_len};
	size_t extra = props_len ? props_json(NULL, pb) : 0;
	if (err || !extra)
		return err;
	char *buf = roost_realloc(*out, *out_len + extra + 1);
	if (!buf) {
		roost_free(*out);
		return ROOST_ERR_NOMEM;
	}
	/* Before the closing brace. */
	char *end = buf + *out_len - 1;
	props_json(end, pb);
	end[extra] = '}';
	end[extra + 1] = '\0';
	*out = buf;
	*out_len += extra;
	return ROOST_OK;
}

roost_hub_verdict roost_hub_verdict_of(int status)
{
	if (status >= 200 && status <= 299)
		return ROOST_HUB_DELIVERED;
	if (status == 401 || status == 403)
		return ROOST_HUB_AUTH;
	/* Timeout, "too early" and rate limiting are about the moment, not the
	 * event: try again later. */
	if (status == 408 || status == 425 || status == 429)
		return ROOST_HUB_RETRY;
	if (status >= 400 && status <= 499)
		return ROOST_HUB_REJECTED;
	return ROOST_HUB_RETRY;
}

uint32_t roost_hub_backoff_next(uint32_t cur_s, uint32_t max_s)
{
	if (max_s < 1)
		max_s = 1;
	if (cur_s == 0)
		return 1;
	uint64_t next = (uint64_t)cur_s * 2;
	return next > max_s ? max_s : (uint32_t)next;
}
