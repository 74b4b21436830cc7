/*
 * One logging call for the whole gateway: gw_log(level, fmt, ...). Lines go
 * to stderr as text ("2026-11-24T04:22:15.123Z warn  func: message") or as
 * one JSON object per line. Thread-safe: each line is formatted into a local
 * buffer and written with one write(2).
 */
#ifndef GW_LOG_H
#define GW_LOG_H

enum gw_level { GW_LOG_ERROR = 0, GW_LOG_WARN, GW_LOG_INFO, GW_LOG_DEBUG };

/* main thread, before other threads start */
void log_init(int level, int json);
/* "error" | "warn" | "info" | "debug" -> level; -1 if unknown */
int log_parse_level(const char *s);
int log_level(void);

/* any thread */
void gw_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define GW_ERR(...) gw_log(GW_LOG_ERROR, __VA_ARGS__)
#define GW_WARN(...) gw_log(GW_LOG_WARN, __VA_ARGS__)
#define GW_INFO(...) gw_log(GW_LOG_INFO, __VA_ARGS__)
#define GW_DBG(...) do { if (log_level() >= GW_LOG_DEBUG) gw_log(GW_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
