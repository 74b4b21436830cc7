/*
 * A minimal blocking HTTP/1.1 client for the command-line tools (`statusgate
 * demo`, `statusgate publish --http`): plain http:// only, one request per connection (Connection: close),
 * a body sent with Content-Length, the answer's body read by Content-Length,
 * chunked encoding or up to EOF. Timeouts bound connect, send and receive.
 * Main thread only; no global state.
 */
#ifndef GW_HTTPC_H
#define GW_HTTPC_H

#include <stddef.h>

struct httpc_url {
	char host[256];
	char port[8];
	char prefix[512];        /* path prefix without a trailing '/', or "" */
};

struct httpc_resp {
	int status;              /* HTTP status code */
	char *body;              /* malloc'd, NUL-terminated; free with httpc_resp_free */
	size_t len;
};

/* http://host[:port][/prefix] (IPv6 as [addr]); 0, or -1 with the reason in
 * err */
int httpc_parse_url(const char *s, struct httpc_url *u, char *err, size_t errlen);

/* Sends METHOD prefix+path with body (may be NULL) as application/json and a
 * bearer token if given. Returns 0 when an answer was read (any status), -1
 * with the reason in err when the gateway could not be reached or the answer
 * was not HTTP. */
int httpc_request(const struct httpc_url *u, const char *method, const char *path,
		  const char *body, size_t body_len, const char *bearer, int timeout_s,
		  struct httpc_resp *resp, char *err, size_t errlen);

void httpc_resp_free(struct httpc_resp *resp);

#endif
