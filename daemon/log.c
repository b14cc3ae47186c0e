/* SPDX-License-Identifier: MIT */
/*
 * JSON-lines logging. Every line is one object that starts with "ts" (UTC,
 * milliseconds), "level" and "event", followed by the caller's context
 * fields; it goes out in a single write() so that lines written by several
 * processes to one O_APPEND file never interleave. The level is checked
 * before anything is formatted, so a disabled debug line costs one compare.
 * The file is reopened on request so that logrotate can move it away.
 * When stderr is the systemd journal ($JOURNAL_STREAM names its device and
 * inode) each line starts with its syslog priority, "<3>" for an error, so
 * that journalctl -p filters by level.
 *
 * While gathering (log_gather()), the lines of the thread that asked for
 * it are kept and written together, whole, in one write() when
 * log_flush() is called: the daemon's loop flushes once per iteration,
 * before it waits for I/O, where two lines per request cost a write(2)
 * each otherwise. An error line, a reopen, log_close() and the end of
 * gathering write at once what is kept; so does a line that would take
 * the buffer past its size. Lines of other threads are written at once.
 * A kill -9 can lose the lines of the iteration it interrupts, no older.
 */
#include "daemon/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/util.h"

static struct {
	int fd;			/* STDERR_FILENO or our file */
	char *path;		/* NULL when logging to stderr */
	enum log_level level;
	bool journal;		/* stderr is the journal: "<N>" prefixes */
	/* log_gather(): the gathering thread's lines, kept for one write */
	char *pending;		/* LOG_PENDING_MAX bytes */
	size_t pending_len;
} logger = { .fd = STDERR_FILENO, .level = LOG_INFO };

/* Whether this thread's lines are kept for log_flush(): one thread's at most. */
static _Thread_local bool gathering;

/* What may wait for the loop's next iteration: lines, whole. */
#define LOG_PENDING_MAX 65536

static void write_line(const char *line, size_t len);

/* syslog priorities (sd-daemon.h's SD_DEBUG...), by level */
static const int log_priority[LOG_LEVELS] = {
	[LOG_DEBUG] = 7,
	[LOG_INFO] = 6,
	[LOG_WARN] = 4,
	[LOG_ERROR] = 3,
};

/* Whether fd is the stream $JOURNAL_STREAM ("DEVICE:INODE") names. */
static bool is_journal(int fd)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int end = 0;

	if (env == NULL || sscanf(env, "%llu:%llu%n", &dev, &ino, &end) != 2 ||
	    env[end] != '\0' || fstat(fd, &st) != 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

const char *const log_level_names[LOG_LEVELS] = {
	[LOG_DEBUG] = "debug",
	[LOG_INFO] = "info",
	[LOG_WARN] = "warn",
	[LOG_ERROR] = "error",
};

static int open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	return fd < 0 ? -errno : fd;
}

int log_open(const char *path, enum log_level level, char **cause)
{
	int rc = 0;

	if (strcmp(path, "-") == 0) {
		log_close();
		logger.journal = is_journal(STDERR_FILENO);
		goto set_level;
	}
	int fd = open_file(path);
	if (fd < 0) {
		rc = fd;
		*cause = xasprintf("cannot open log file %s: %s", path,
				   strerror(-rc));
		goto out;
	}
	log_close();
	logger.fd = fd;
	logger.path = xstrdup(path);
	logger.journal = false;
set_level:
	logger.level = level;
out:
	return rc;
}

int log_reopen(void)
{
	int rc = 0;

	log_flush();	/* what was logged before goes to the file it was meant for */
	if (logger.path == NULL)
		goto out;
	/* On failure keep writing to the old file rather than to nothing. */
	int fd = open_file(logger.path);
	if (fd < 0) {
		rc = fd;
		goto out;
	}
	close(logger.fd);
	logger.fd = fd;
out:
	return rc;
}

void log_set_level(enum log_level level)
{
	logger.level = level;
}

void log_close(void)
{
	log_flush();
	if (logger.path != NULL) {
		close(logger.fd);
		free(logger.path);
		logger.path = NULL;
	}
	logger.fd = STDERR_FILENO;
}

bool log_enabled(enum log_level level)
{
	return level >= logger.level;
}

const char *log_level_name(enum log_level level)
{
	if ((unsigned)level >= ARRAY_SIZE(log_level_names))
		return "unknown";
	return log_level_names[level];
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(log_level_names); i++) {
		if (strcmp(s, log_level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

/*
 * "2026-12-02T05:20:31.123Z". The date and time of day are formatted once
 * per second (per thread): a busy loop logs thousands of lines a second,
 * each needing only its milliseconds.
 */
static void format_ts(char *out, size_t len)
{
	static _Thread_local struct {
		time_t sec;
		char text[32];
		size_t n;
	} last = {.sec = -1};
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != last.sec) {
		struct tm tm;
		gmtime_r(&ts.tv_sec, &tm);
		last.n = strftime(last.text, sizeof(last.text), "%Y-%m-%dT%H:%M:%S", &tm);
		last.sec = ts.tv_sec;
	}
	snprintf(out, len, "%.*s.%03ldZ", (int)last.n, last.text, ts.tv_nsec / 1000000L);
}

void log_flush(void)
{
	if (!gathering || logger.pending_len == 0)
		return;	/* only the gathering thread keeps lines */
	write_line(logger.pending, logger.pending_len);
	logger.pending_len = 0;
}

void log_gather(bool on)
{
	if (!on) {
		log_flush();
		gathering = false;
		return;
	}
	if (logger.pending == NULL)
		logger.pending = xmalloc(LOG_PENDING_MAX);
	gathering = true;
}

/* One write per call; a short write (a full disk, a signal) is finished. */
static void write_line(const char *line, size_t len)
{
	while (len > 0) {
		ssize_t n = write(logger.fd, line, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;	/* nowhere left to report it */
		}
		line += n;
		len -= (size_t)n;
	}
}

/*
 * A whole line: kept for the next log_flush() when this thread gathers,
 * else (and for an error, with what was kept) written now.
 */
static void emit(enum log_level level, const char *line, size_t len)
{
	bool gather = gathering;

	if (gather && level < LOG_ERROR && len <= LOG_PENDING_MAX) {
		if (logger.pending_len + len > LOG_PENDING_MAX)
			log_flush();
		memcpy(logger.pending + logger.pending_len, line, len);
		logger.pending_len += len;
		return;
	}
	if (gather && logger.pending_len > 0 && logger.pending_len + len <= LOG_PENDING_MAX) {
		/* the error after what was gathered, in the same write */
		memcpy(logger.pending + logger.pending_len, line, len);
		logger.pending_len += len;
		log_flush();
		return;
	}
	if (gather)
		log_flush();
	write_line(line, len);
}

/*
 * Writes the line object: its "<N>" prefix under the journal, the JSON,
 * a newline, in one write (or kept for the next one: emit()). Most lines
 * fit the stack buffer, so a line costs no allocation beyond the object's
 * own.
 */
static void write_object(enum log_level level, const json_t *line)
{
	char stack[1024], *buf = stack;
	size_t pre = 0, cap = sizeof(stack), n;

	if (logger.journal)
		pre = (size_t)snprintf(stack, sizeof(stack), "<%d>", log_priority[level]);
	n = json_dumpb(line, buf + pre, cap - pre - 1, JSON_COMPACT);
	if (n == 0)
		abort();	/* only out-of-memory makes dumps fail here */
	if (n > cap - pre - 1) {	/* too long for the stack: dump it again */
		cap = pre + n + 1;
		buf = xmalloc(cap);
		memcpy(buf, stack, pre);
		if (json_dumpb(line, buf + pre, n, JSON_COMPACT) != n)
			abort();
	}
	buf[pre + n] = '\n';
	emit(level, buf, pre + n + 1);
	if (buf != stack)
		free(buf);
}

void log_json(enum log_level level, const char *event, json_t *fields)
{
	char ts[40];

	if (!log_enabled(level))
		goto drop_fields;
	format_ts(ts, sizeof(ts));
	json_t *line = json_pack("{s:s,s:s,s:s}", "ts", ts,
				 "level", log_level_name(level),
				 "event", event);
	if (line == NULL)	/* event not UTF-8: a programming error */
		line = json_pack("{s:s,s:s,s:s}", "ts", ts,
				 "level", log_level_name(level),
				 "event", "log_bad_event");
	/* Context never overrides the three fixed keys. */
	if (json_is_object(fields))
		json_object_update_missing(line, fields);
	write_object(level, line);
	json_decref(line);
drop_fields:
	json_decref(fields);
}

void log_request(int status, const char *request_id, const char *actor, const char *method,
		 const char *path, uint64_t duration_us)
{
	enum log_level level = status >= 500 ? LOG_ERROR : LOG_INFO;
	char ts[40];

	if (!log_enabled(level))
		return;
	format_ts(ts, sizeof(ts));
	/* the fixed keys and the context in one object: no second one to merge */
	json_t *line = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:i, s:I}", "ts", ts,
				 "level", log_level_name(level), "event", "request",
				 "request_id", request_id, "actor", actor, "method", method,
				 "path", path, "status", status,
				 "duration_us", (json_int_t)duration_us);
	if (line == NULL) {	/* a string that is not UTF-8: say so rather than drop it */
		log_event(level, "request", "{s:s, s:i}", "log_error",
			  "a field of the request is not UTF-8", "status", status);
		return;
	}
	write_object(level, line);
	json_decref(line);
}

void log_entry_event(const char *event, const char *request_id, const char *consortium,
		     const char *allocation, int64_t seq)
{
	char ts[40];

	if (!log_enabled(LOG_INFO))
		return;
	format_ts(ts, sizeof(ts));
	json_t *line = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s?, s:I}", "ts", ts,
				 "level", log_level_name(LOG_INFO), "event", event,
				 "request_id", request_id, "consortium", consortium,
				 "allocation", allocation, "seq", (json_int_t)seq);
	if (line == NULL) {	/* a string that is not UTF-8: say so rather than drop it */
		log_event(LOG_INFO, event, "{s:s, s:I}", "log_error",
			  "a field of the entry is not UTF-8", "seq", (json_int_t)seq);
		return;
	}
	write_object(LOG_INFO, line);
	json_decref(line);
}

void log__event(enum log_level level, const char *event, const char *fmt, ...)
{
	json_t *fields = NULL;
	json_error_t err;
	va_list ap;

	if (!log_enabled(level))
		return;
	if (fmt != NULL) {
		va_start(ap, fmt);
		fields = json_vpack_ex(&err, 0, fmt, ap);
		va_end(ap);
		/* A bad format or non-UTF-8 value: say so rather than drop it. */
		if (fields == NULL)
			fields = json_pack("{s:s}", "log_error", err.text);
	}
	log_json(level, event, fields);
}
