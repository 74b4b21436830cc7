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

/* lines a call site of GW_WARN_RL writes per second at most */
#define GW_LOG_RL_PER_S 10

/* one rate limit: a call site's own (static) state */
struct log_rl {
	long second;             /* the monotonic second being counted */
	unsigned count, suppressed;
};
/* any thread: 1 when a line may go out now; *suppressed gets how many this
 * site left out in the second before (to say so once) */
int log_rl_allow(struct log_rl *rl, unsigned *suppressed);

/* a warning that outside input can trigger at will (a refused publish,
 * upgrade or frame): at most GW_LOG_RL_PER_S lines a second from one call
 * site, then one line saying how many were left out */
#define GW_WARN_RL(...) do { \
	static struct log_rl rl_; \
	unsigned sup_; \
	if (log_rl_allow(&rl_, &sup_)) { \
		if (sup_) \
			gw_log(GW_LOG_WARN, "%s: %u more lines like the next were left out in the last second", \
			       __func__, sup_); \
		gw_log(GW_LOG_WARN, __VA_ARGS__); \
	} \
} while (0)

#endif
