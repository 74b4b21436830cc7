/*
 * Logging: a level filter, text or JSON lines on stderr. Each line is built
 * in a stack buffer and written with a single write(2), so lines from the
 * service, writer and broker threads never interleave. Untrusted bytes in a
 * message are escaped, so nobody can forge a line; refusals, which anyone
 * can cause at will, go through a per-call-site rate limit (GW_WARN_RL).
 */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static int g_level = GW_LOG_INFO;
static int g_json;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_init(int level, int json)
{
	g_level = level;
	g_json = json;
}

int log_level(void)
{
	return g_level;
}

int log_parse_level(const char *s)
{
	for (int i = 0; i <= GW_LOG_DEBUG; i++)
		if (!strcasecmp(s, level_names[i]))
			return i;
	if (!strcasecmp(s, "warning"))
		return GW_LOG_WARN;
	return -1;
}

/* length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n, i;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/*
 * Appends s to out with everything that could forge or break a line
 * escaped: messages carry bytes from outside (paths, routing keys, peer
 * text), and a newline in one must not start a line of its own. Control
 * characters and bytes that are not UTF-8 become \xNN (in JSON "\\xNN"), a
 * backslash is doubled, and in JSON a quote is escaped. Returns the new
 * length (out is not terminated).
 */
static size_t escape(char *out, size_t pos, size_t cap, const char *in, int json)
{
	const unsigned char *s = (const unsigned char *)in;

	while (*s && pos + 8 < cap) {
		size_t n = utf8_len(s);

		if (n == 1 && *s >= 0x20 && *s != 0x7f) {
			if (*s == '\\' || (json && *s == '"'))
				out[pos++] = '\\';
			out[pos++] = (char)*s++;
		} else if (n > 1) {
			memcpy(out + pos, s, n);
			pos += n;
			s += n;
		} else {
			pos += (size_t)snprintf(out + pos, cap - pos, json ? "\\\\x%02x" : "\\x%02x", *s++);
		}
	}
	return pos;
}

/* ---- rate limits ---- */

static pthread_mutex_t rl_lock = PTHREAD_MUTEX_INITIALIZER;

int log_rl_allow(struct log_rl *rl, unsigned *suppressed)
{
	struct timespec now;
	int ok;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&rl_lock);
	*suppressed = 0;
	if (now.tv_sec != rl->second) {
		*suppressed = rl->suppressed;
		rl->second = now.tv_sec;
		rl->count = 0;
		rl->suppressed = 0;
	}
	ok = rl->count < GW_LOG_RL_PER_S;
	if (ok)
		rl->count++;
	else
		rl->suppressed++;
	pthread_mutex_unlock(&rl_lock);
	return ok;
}

void gw_log(int level, const char *fmt, ...)
{
	char msg[2048], line[4608], ts[40];
	struct timespec now;
	struct tm tm;
	va_list ap;
	size_t n;

	if (level > g_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);

	if (g_json) {
		n = (size_t)snprintf(line, sizeof(line),
				     "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"",
				     ts, level_names[level]);
		n = escape(line, n, sizeof(line) - 3, msg, 1);
		memcpy(line + n, "\"}\n", 3);
		n += 3;
	} else {
		n = (size_t)snprintf(line, sizeof(line), "%s %-5s ", ts, level_names[level]);
		n = escape(line, n, sizeof(line) - 1, msg, 0);
		line[n++] = '\n';
	}
	if (write(STDERR_FILENO, line, n) < 0) {
		/* nowhere left to report it */
	}
}
