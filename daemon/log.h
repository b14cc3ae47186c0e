/* SPDX-License-Identifier: MIT */
/*
 * Logs: one JSON object per line with "ts", "level", "event" and context
 * fields, to stderr or a file (reopened on SIGUSR1 for logrotate). The
 * level check comes before any formatting. Never log a token.
 */
#pragma once

#include <stdint.h>

#include <jansson.h>

#include "daemon/config.h"

/* "-" is stderr. Returns 0 or a negative errno with *cause malloc'd. */
int log_open(const char *path, enum log_level level, char **cause);
/* Reopens the file (logrotate); stderr is left alone. */
int log_reopen(void);
void log_set_level(enum log_level level);
/* Writes what log_gather() kept first; so does log_reopen(). */
void log_close(void);
/*
 * on: from now on the lines the calling thread logs are kept and written
 * together, whole lines in one write(), by the next log_flush() (the
 * daemon's loop calls it once per iteration); an error line is written at
 * once, with what was kept before it. Other threads write theirs at once.
 * off: writes what was kept; lines go out one by one again.
 */
void log_gather(bool on);
/* Writes what was gathered, now. */
void log_flush(void);
bool log_enabled(enum log_level level);
/*
 * The level names, indexed by enum log_level: the one list of them, which
 * the config's daemon.log_level also reads.
 */
#define LOG_LEVELS (LOG_ERROR + 1)
extern const char *const log_level_names[LOG_LEVELS];
/* "debug", "info", "warn", "error"; "unknown" for anything else. */
const char *log_level_name(enum log_level level);
/* The inverse, exact and case-sensitive: 0, or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);

/*
 * log_event(LOG_INFO, "listening", "{s:s}", "socket", path): the format
 * and arguments are jansson's json_pack(); they build the context object.
 * fmt may be NULL for none.
 */
#define log_event(level, event, ...)					\
	do {								\
		if (log_enabled(level))					\
			log__event(level, event, __VA_ARGS__);		\
	} while (0)

void log__event(enum log_level level, const char *event, const char *fmt, ...);
/* Same, with a ready object (reference stolen). */
void log_json(enum log_level level, const char *event, json_t *fields);
/*
 * The "request" line of an answered request: error level for a 5xx, info
 * otherwise; the strings may be NULL (then null). The same line as
 * log_event() would write, built in one object.
 */
void log_request(int status, const char *request_id, const char *actor, const char *method,
		 const char *path, uint64_t duration_us);
/*
 * An info line for a committed journal entry: event ("allocated", ...),
 * then "request_id", "consortium", "allocation" (NULL: null) and "seq", the
 * line log_event(LOG_INFO, event, "{s:s?, s:s?, s:s?, s:I}", ...) would
 * write, built in one object.
 */
void log_entry_event(const char *event, const char *request_id, const char *consortium,
		     const char *allocation, int64_t seq);
