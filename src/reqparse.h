/*
 * Request parsing, pure: the pieces of an HTTP request or WebSocket upgrade
 * that the adapters (auth.c, http_api.c, ws_session.c) read from outside
 * input, taken out of those lws callbacks so that unit tests and fuzzers
 * link them alone. No lws here: the adapters fetch the header or the URL
 * argument with lws and hand the text over. Any thread, no state.
 */
#ifndef GW_REQPARSE_H
#define GW_REQPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"   /* GW_KEY_MAX */

/*
 * The value of the cookie called name in a Cookie header ("a=1; token=x"):
 * names are compared whole (no "xtoken" for "token"), surrounding blanks and
 * one pair of double quotes are removed. 0 with out NUL-terminated, or -1
 * when there is no such cookie or its value needs len bytes or more.
 */
int reqparse_cookie(const char *hdr, const char *name, char *out, size_t len);

/*
 * The credentials of an Authorization header of the Bearer scheme ("Bearer"
 * in any case, then blanks, then the token; blanks around it are dropped).
 * 0 with out NUL-terminated, or -1 when the scheme is another one, when no
 * token follows it (an empty "Bearer " hides nothing: the caller looks for a
 * token elsewhere), or when the token needs len bytes or more.
 */
int reqparse_bearer(const char *hdr, char *out, size_t len);

/*
 * A web-relative path the static file server may open: only
 * [A-Za-z0-9._/-], no "..", no "//", no hidden file or directory (a segment
 * starting with '.'), not empty. 1 when safe, else 0.
 */
int reqparse_safe_rel_path(const char *p);

/*
 * prefix + a submission key + an optional trailing '/' ("/ws/submissions/42/"
 * with prefix "/ws/submissions/"): 0 with the key in key, or -1.
 */
int reqparse_key_path(const char *path, const char *prefix,
		      char key[GW_KEY_MAX + 1]);

/* what a request path names under the read API /api/v1/submissions */
enum reqparse_api {
	REQ_API_NONE = 0,   /* not under /api/v1/submissions */
	REQ_API_LIST,       /* /api/v1/submissions or .../submissions/ */
	REQ_API_BADKEY,     /* /api/v1/submissions/<not a key>... */
	REQ_API_STATE,      /* /api/v1/submissions/{key} or .../{key}/ */
	REQ_API_EVENTS,     /* /api/v1/submissions/{key}/events */
	REQ_API_UNKNOWN,    /* /api/v1/submissions/{key}/<anything else> */
};

/* One of enum reqparse_api for path (no query string); key is filled in for
 * STATE, EVENTS and UNKNOWN and set to "" otherwise. */
int reqparse_api_path(const char *path, char key[GW_KEY_MAX + 1]);

/*
 * A query argument's value as an unsigned decimal integer: one or more ASCII
 * digits and nothing else (no sign, no blanks), at most UINT64_MAX. 0 and
 * *out, or -1 (*out untouched).
 */
int reqparse_uint(const char *v, uint64_t *out);

#endif
