/*
 * log.h — levelled logging to stderr or syslog, with suppression of
 * repeated messages.  The one utility header every layer may include.
 */
#ifndef CTSYNC_LOG_H
#define CTSYNC_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_init(enum log_level level, bool use_syslog, const char *ident);
int log_level_parse(const char *s);     /* -1 when unknown */
void log_set_level(enum log_level level);
void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* At most one message per second from one call site; the next one says how
 * many were suppressed in between. */
struct log_rl {
	uint64_t last_ms;
	unsigned suppressed;
};
void log_rl_msg(struct log_rl *rl, enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_err(...)   log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warnx(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_limited(lvl, ...) do { static struct log_rl rl_; \
		log_rl_msg(&rl_, lvl, __VA_ARGS__); } while (0)

#endif
