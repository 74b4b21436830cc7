/*
 * Minimal blocking HTTP/1.1 client (see httpc.h). One connection per
 * request: resolve with getaddrinfo, try each address with SO_SNDTIMEO (which
 * on Linux also bounds connect()) and SO_RCVTIMEO set, send the request in
 * full, then read until the headers plus Content-Length bytes are in, or to
 * EOF (we ask for Connection: close). A chunked answer is decoded in place.
 * Answers larger than HTTPC_RESP_MAX are refused rather than truncated.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "httpc.h"

#define HTTPC_RESP_MAX (8u << 20)

int httpc_parse_url(const char *s, struct httpc_url *u, char *err, size_t errlen)
{
	const char *h, *end, *slash, *colon;
	size_t n;

	memset(u, 0, sizeof(*u));
	if (!strncasecmp(s, "https://", 8)) {
		snprintf(err, errlen, "https is not supported by this client; use http://");
		return -1;
	}
	if (strncasecmp(s, "http://", 7))
		goto bad;
	h = s + 7;
	slash = strchr(h, '/');
	end = slash ? slash : h + strlen(h);
	if (slash && strlen(slash) >= sizeof(u->prefix))
		goto bad;
	snprintf(u->prefix, sizeof(u->prefix), "%s", slash ? slash : "");
	n = strlen(u->prefix);
	while (n && u->prefix[n - 1] == '/')
		u->prefix[--n] = '\0';
	if (*h == '[') {
		const char *rb = memchr(h, ']', (size_t)(end - h));
		if (!rb || rb == h + 1 || (size_t)(rb - h - 1) >= sizeof(u->host))
			goto bad;
		memcpy(u->host, h + 1, (size_t)(rb - h - 1));
		colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
		if (rb + 1 < end && !colon)
			goto bad;
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
		n = (size_t)((colon ? colon : end) - h);
		if (!n || n >= sizeof(u->host))
			goto bad;
		memcpy(u->host, h, n);
	}
	if (colon) {
		n = (size_t)(end - colon - 1);
		if (!n || n > 5 || strspn(colon + 1, "0123456789") < n || atoi(colon + 1) > 65535)
			goto bad;
		memcpy(u->port, colon + 1, n);
	} else {
		snprintf(u->port, sizeof(u->port), "80");
	}
	return 0;
bad:
	snprintf(err, errlen, "not a URL of the form http://host[:port]: \"%s\"", s);
	return -1;
}

static int connect_to(const struct httpc_url *u, int timeout_s, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct timeval tv = { timeout_s, 0 };
	int fd = -1, r, saved = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	r = getaddrinfo(u->host, u->port, &hints, &res);
	if (r) {
		snprintf(err, errlen, "cannot resolve %s: %s", u->host, gai_strerror(r));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (!connect(fd, ai->ai_addr, ai->ai_addrlen))
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, errlen, "cannot connect to %s:%s: %s", u->host, u->port,
			 saved == EINPROGRESS || saved == EAGAIN ? "timed out" : strerror(saved));
	return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* decodes a chunked body in place; returns its length, or -1 if malformed */
static long dechunk(char *b, size_t n)
{
	size_t in = 0, out = 0;

	while (in < n) {
		char *end, *nl;
		unsigned long sz = strtoul(b + in, &end, 16);

		nl = memchr(b + in, '\n', n - in);
		if (!nl || end == b + in)
			return -1;
		if (!sz)
			return (long)out;
		in = (size_t)(nl - b) + 1;
		if (sz > n - in)
			return -1;
		memmove(b + out, b + in, sz);
		out += sz;
		in += sz;
		if (in < n && b[in] == '\r')
			in++;
		if (in < n && b[in] == '\n')
			in++;
	}
	return -1;   /* no last chunk: cut short */
}

/* value of header name in the header block [h, end), or NULL */
static const char *header(const char *h, const char *end, const char *name)
{
	size_t nl = strlen(name);

	while (h < end) {
		const char *eol = memchr(h, '\n', (size_t)(end - h));

		if (!eol)
			eol = end;
		if ((size_t)(eol - h) > nl && !strncasecmp(h, name, nl) && h[nl] == ':') {
			h += nl + 1;
			while (*h == ' ' || *h == '\t')
				h++;
			return h;
		}
		h = eol + 1;
	}
	return NULL;
}

int httpc_request(const struct httpc_url *u, const char *method, const char *path,
		  const char *body, size_t body_len, const char *bearer, int timeout_s,
		  struct httpc_resp *resp, char *err, size_t errlen)
{
	char *req = NULL, *buf = NULL, *nb, *hend;
	size_t hoff = 0;   /* offset of the body; 0: headers not complete (an offset: buf moves) */
	const char *v;
	size_t len = 0, cap = 16384, want = 0, hlen;
	int fd = -1, rc = -1, n, have_len = 0, chunked = 0, major, minor;

	memset(resp, 0, sizeof(*resp));
	fd = connect_to(u, timeout_s, err, errlen);
	if (fd < 0)
		goto out;
	n = asprintf(&req, "%s %s%s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: statusgate\r\n"
		     "Accept: application/json\r\nConnection: close\r\n%s%s%s"
		     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		     method, u->prefix, path, strchr(u->host, ':') ? "[" : "", u->host,
		     strchr(u->host, ':') ? "]" : "", u->port,
		     bearer ? "Authorization: Bearer " : "", bearer ? bearer : "", bearer ? "\r\n" : "",
		     body ? body_len : 0);
	if (n < 0) {
		req = NULL;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (send_all(fd, req, (size_t)n) || (body && send_all(fd, body, body_len))) {
		snprintf(err, errlen, "cannot send to %s:%s: %s", u->host, u->port,
			 errno == EAGAIN ? "timed out" : strerror(errno));
		goto out;
	}
	buf = malloc(cap);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (;;) {
		ssize_t r;

		if (hoff && have_len && len >= want)
			break;
		if (len + 1 >= cap) {
			if (cap >= HTTPC_RESP_MAX) {
				snprintf(err, errlen, "the answer is larger than %u bytes", HTTPC_RESP_MAX);
				goto out;
			}
			nb = realloc(buf, cap * 2);
			if (!nb) {
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		r = recv(fd, buf + len, cap - len - 1, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "no answer from %s:%s: %s", u->host, u->port,
				 errno == EAGAIN ? "timed out" : strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		buf[len] = '\0';
		if (!hoff && (hend = strstr(buf, "\r\n\r\n"))) {
			hlen = (size_t)(hend - buf) + 4;
			hoff = hlen;
			if ((v = header(buf, hend, "Content-Length"))) {
				have_len = 1;
				want = hlen + strtoul(v, NULL, 10);
			}
			if ((v = header(buf, hend, "Transfer-Encoding")) && !strncasecmp(v, "chunked", 7))
				chunked = 1, have_len = 0;
		}
	}
	buf[len] = '\0';
	if (!hoff || sscanf(buf, "HTTP/%d.%d %d", &major, &minor, &resp->status) != 3) {
		snprintf(err, errlen, "%s:%s did not answer in HTTP", u->host, u->port);
		goto out;
	}
	hlen = hoff;
	if (have_len && len < want) {
		snprintf(err, errlen, "the answer from %s:%s was cut short", u->host, u->port);
		goto out;
	}
	resp->len = (have_len ? want : len) - hlen;
	memmove(buf, buf + hlen, resp->len);
	if (chunked) {
		long d = dechunk(buf, resp->len);
		if (d < 0) {
			snprintf(err, errlen, "the chunked answer from %s:%s is malformed", u->host, u->port);
			goto out;
		}
		resp->len = (size_t)d;
	}
	buf[resp->len] = '\0';
	resp->body = buf;
	buf = NULL;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(req);
	free(buf);
	return rc;
}

void httpc_resp_free(struct httpc_resp *resp)
{
	free(resp->body);
	resp->body = NULL;
	resp->len = 0;
}
