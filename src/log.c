/*
 * Logging: a level filter, text or JSON lines on stderr. Each line is built
 * in a stack buffer and written with a single write(2), so lines from the
 * service, writer and broker threads never interleave.
 */
#include "log.h"

#include <stdarg.h>
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

/* appends s to out as JSON string content; returns new length */
static size_t json_escape(char *out, size_t pos, size_t cap, const char *s)
{
	for (; *s && pos + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			out[pos++] = '\\';
			out[pos++] = (char)c;
		} else if (c < 0x20) {
			pos += (size_t)snprintf(out + pos, cap - pos, "\\u%04x", c);
		} else {
			out[pos++] = (char)c;
		}
	}
	return pos;
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
		n = json_escape(line, n, sizeof(line) - 3, msg);
		memcpy(line + n, "\"}\n", 3);
		n += 3;
	} else {
		n = (size_t)snprintf(line, sizeof(line), "%s %-5s %s\n", ts,
				     level_names[level], msg);
		if (n >= sizeof(line))
			n = sizeof(line) - 1;
	}
	if (write(STDERR_FILENO, line, n) < 0) {
		/* nowhere left to report it */
	}
}
