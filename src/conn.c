/*
 * Request headers and client addresses of an lws connection (see conn.h).
 * A forwarded address is believed only from a peer in --trusted-proxies:
 * anyone else can write any X-Forwarded-For they like.
 */
#include "conn.h"

#include <jansson.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

int conn_header(struct lws *wsi, int token, char *out, size_t len)
{
	int n = lws_hdr_total_length(wsi, (enum lws_token_indexes)token);

	out[0] = '\0';
	if (n <= 0 || (size_t)n >= len)
		return -1;
	if (lws_hdr_copy(wsi, out, (int)len, (enum lws_token_indexes)token) < 0) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

int conn_header_custom(struct lws *wsi, const char *name, char *out, size_t len)
{
	int nl = (int)strlen(name), n = lws_hdr_custom_length(wsi, name, nl);

	out[0] = '\0';
	if (n < 0 || (size_t)n >= len)
		return -1;
	if (lws_hdr_custom_copy(wsi, out, (int)len, name, nl) < 0) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

void conn_peer(struct lws *wsi, char *out, size_t len)
{
	char raw[GW_ADDR_MAX];

	out[0] = '\0';
	raw[0] = '\0';
	lws_get_peer_simple(wsi, raw, sizeof(raw));
	if (netaddr_canon(raw, strlen(raw), out, len))
		snprintf(out, len, "%s", raw);
}

int conn_relayed(struct lws *wsi)
{
	return lws_hdr_total_length(wsi, WSI_TOKEN_X_FORWARDED_FOR) > 0 ||
	       lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_X_REAL_IP) > 0 ||
	       lws_hdr_custom_length(wsi, "forwarded:", 10) >= 0;
}

void conn_client(struct lws *wsi, const struct netset *proxies, char *out, size_t len)
{
	char xff[1024], rip[GW_ADDR_MAX];

	conn_peer(wsi, out, len);
	if (!netset_size(proxies) || !netset_contains(proxies, out))
		return;
	/* an over-long chain is cut to nothing rather than misread */
	conn_header(wsi, WSI_TOKEN_X_FORWARDED_FOR, xff, sizeof(xff));
	conn_header(wsi, WSI_TOKEN_HTTP_X_REAL_IP, rip, sizeof(rip));
	netaddr_forwarded_client(xff, rip, proxies, out, len);
}

const char *conn_status_error(int status)
{
	switch (status) {
	case 401: return "unauthorized";
	case 403: return "forbidden";
	case 404: return "not_found";
	case 405: return "method_not_allowed";
	case 429: return "too_many";
	case 503: return "unavailable";
	default: return "refused";
	}
}

/* The head is written by hand: lws 4.1 has not parsed the request's HTTP
 * version yet at this point and would answer "HTTP/1.0", which strict
 * clients reject. */
int conn_refuse(struct lws *wsi, int status, const char *error, const char *detail)
{
	unsigned char buf[LWS_PRE + 2048], *start = buf + LWS_PRE;
	size_t room = sizeof(buf) - LWS_PRE;
	json_t *o = json_pack("{s:s, s:s}", "error", error, "detail", detail);
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	const char *phrase = status == 401 ? "Unauthorized" : status == 403 ? "Forbidden" :
			     status == 404 ? "Not Found" : status == 405 ? "Method Not Allowed" :
			     status == 429 ? "Too Many Requests" :
			     status == 503 ? "Service Unavailable" : "Bad Request";
	int n, r = -1;

	json_decref(o);
	if (!s)
		return -1;
	n = snprintf((char *)start, room, "HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n"
		     "content-length: %zu\r\ncache-control: no-store\r\nconnection: close\r\n\r\n%s",
		     status, phrase, strlen(s), s);
	if (n > 0 && (size_t)n < room &&
	    lws_write(wsi, start, (size_t)n, LWS_WRITE_HTTP_HEADERS) >= 0)
		r = 1;
	free(s);
	return r;
}
