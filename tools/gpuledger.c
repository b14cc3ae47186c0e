/* SPDX-License-Identifier: MIT */
/*
 * gpuledger: the command-line client of gpuledgerd. It turns one command
 * line into one HTTP request (libcurl, over the daemon's Unix socket or a
 * --url with a bearer token), prints the answer as a readable table or, with
 * --json, as the API's JSON, and exits with the code of the CLI contract
 * (DESIGN.md). Commands live in one table of entries (name, usage, help,
 * options, exec), as tmux's cmd-*.c do, so that prefix lookup, argument
 * checks and help all come from the same place. Amounts are exact integer
 * GPU-seconds; GPU-hours are parsed and printed as decimals without floating
 * point. Only `token new` and `statement verify` work without a daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <langinfo.h>
#include <locale.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>
#include <wctype.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "daemon/error.h"
#include "daemon/grammar.h"
#include "daemon/journal.h"
#include "daemon/proto.h"
#include "daemon/timefmt.h"
#include "daemon/util.h"
#include "tools/client.h"
#include "tools/export.h"

#define BAR_WIDTH 50
#define MAX_FLAGS 10
#define MAX_ARGS 4
#define MAX_LINE (16u << 20)		/* bytes of one NDJSON line */
#define HASH_PREFIX 12			/* hex digits of a hash shown in tables */

/* FLAG_TEXT: a value that is free text for the ledger (a reason, a note),
 * held to the API's text rule before it is sent. */
enum flag_kind { FLAG_VALUE, FLAG_BOOL, FLAG_TEXT };

struct flag_spec {
	const char *name;		/* without the leading "--" */
	enum flag_kind kind;
};

struct cmd_entry;

struct cmd_args {
	const struct cmd_entry *cmd;
	const char *argv[MAX_ARGS];
	int argc;
	const char *val[MAX_FLAGS];	/* per cmd->flags; "" for a bool given */
};

struct cmd_entry {
	const char *name;
	const char *usage;		/* what follows the name */
	const char *help;		/* one line */
	struct flag_spec flags[MAX_FLAGS];	/* ends at a NULL name */
	int min_args, max_args;
	bool local;			/* needs no daemon */
	const char *local_sub;		/* nor with this first argument */
	int (*exec)(struct cli *cli, struct cmd_args *a);
};

static const struct cmd_entry cmd_table[];
static const size_t cmd_count;

/* ---- messages ---------------------------------------------------------- */

static void print_cmd_usage(const struct cmd_entry *cmd, FILE *f, bool hint)
{
	fprintf(f, "usage: gpuledger %s%s%s\n", cmd->name,
		*cmd->usage ? " " : "", cmd->usage);
	if (!hint)
		fprintf(f, "%s\n", cmd->help);
}

/* One line on what is wrong, one on how it is used; returns EXIT_USAGE. */
static int usage_error(const struct cmd_entry *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int usage_error(const struct cmd_entry *cmd, const char *fmt, ...)
{
	va_list ap;
	fputs("gpuledger: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (cmd)
		print_cmd_usage(cmd, stderr, true);
	else
		fputs("usage: gpuledger [OPTIONS] COMMAND [ARGS] "
		      "('gpuledger help' lists the commands)\n", stderr);
	return EXIT_USAGE;
}

/* ---- text width and tables --------------------------------------------- */

/* Whether LC_CTYPE is a UTF-8 locale, so that wcwidth() knows the widths. */
static bool utf8_locale;

/*
 * Column widths come from the C library's tables (mbrtowc + wcwidth), as
 * the terminal's do: under the user's locale when it is UTF-8, else under
 * C.UTF-8, since what the daemon sends is UTF-8 whatever the user's
 * locale says. Only LC_CTYPE changes.
 */
static void width_locale_init(void)
{
	static const char *const tries[] = { "", "C.UTF-8", "C.utf8" };

	for (size_t i = 0; i < ARRAY_SIZE(tries); i++) {
		if (setlocale(LC_CTYPE, tries[i]) &&
		    strcmp(nl_langinfo(CODESET), "UTF-8") == 0) {
			utf8_locale = true;
			return;
		}
	}
	setlocale(LC_CTYPE, "C");
}

/* Columns a character takes: wcwidth's, 0 for a control, 1 for one it does not know. */
static size_t wc_columns(wchar_t wc)
{
	int w = wcwidth(wc);
	if (w >= 0)
		return (size_t)w;
	return iswcntrl((wint_t)wc) ? 0 : 1;
}

static size_t text_width(const char *s)
{
	size_t len = strlen(s), w = 0;
	mbstate_t st;

	memset(&st, 0, sizeof(st));
	while (len > 0) {
		wchar_t wc;
		uint32_t cp;
		size_t n = utf8_locale ? mbrtowc(&wc, s, len, &st)
				       : utf8_next(s, len, &cp);
		if (n == 0 || n == (size_t)-1 || n == (size_t)-2) {
			w++;	/* broken UTF-8: one column per byte */
			s++;
			len--;
			memset(&st, 0, sizeof(st));
			continue;
		}
		/* without any UTF-8 locale: one column per character */
		w += utf8_locale ? wc_columns(wc) : 1;
		s += n;
		len -= n;
	}
	return w;
}

struct table {
	size_t ncols;
	const char *const *head;	/* NULL: no header line */
	unsigned right;			/* bit c: column c is right-aligned */
	char **cells;
	size_t nrows, cap;
};

static void table_init(struct table *t, size_t ncols, const char *const *head,
		       unsigned right)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	t->head = head;
	t->right = right;
}

/* Takes ownership of the ncols malloc'd strings of row. */
static void table_add(struct table *t, char **row)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->cells = xreallocarray(t->cells, t->cap * t->ncols,
					 sizeof(char *));
	}
	memcpy(t->cells + t->nrows * t->ncols, row, t->ncols * sizeof(char *));
	t->nrows++;
}

static void print_row(FILE *f, size_t ncols, const char *const *cells,
		      const size_t *widths, unsigned right)
{
	for (size_t c = 0; c < ncols; c++) {
		const char *s = cells[c] ? cells[c] : "-";
		size_t w = text_width(s);
		size_t pad = widths[c] > w ? widths[c] - w : 0;
		bool last = c + 1 == ncols;

		if (c)
			fputs("  ", f);
		if (right & (1u << c))
			fprintf(f, "%*s%s", (int)pad, "", s);
		else if (last)
			fputs(s, f);
		else
			fprintf(f, "%s%*s", s, (int)pad, "");
	}
	fputc('\n', f);
}

static void table_print(const struct table *t, FILE *f)
{
	size_t *w = xcalloc(t->ncols, sizeof(size_t));

	for (size_t c = 0; c < t->ncols; c++) {
		if (t->head)
			w[c] = text_width(t->head[c]);
		for (size_t r = 0; r < t->nrows; r++) {
			size_t cw = text_width(t->cells[r * t->ncols + c]);
			if (cw > w[c])
				w[c] = cw;
		}
	}
	if (t->head)
		print_row(f, t->ncols, t->head, w, t->right);
	for (size_t r = 0; r < t->nrows; r++)
		print_row(f, t->ncols, (const char *const *)t->cells + r * t->ncols,
			  w, t->right);
	free(w);
}

static void table_free(struct table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = t->cap = 0;
}

/* A "key: value" block is a two-column table without a header. */
static void kv_init(struct table *t)
{
	table_init(t, 2, NULL, 0);
}

/* Takes ownership of value (malloc'd). */
static void kv_add(struct table *t, const char *key, char *value)
{
	char *row[2] = { xasprintf("%s:", key), value };
	table_add(t, row);
}

/* ---- JSON helpers: every shape is checked, a missing key prints "-" ------ */

/* GPU-seconds at key as GPU-hours (malloc'd); a '+' on positive ones if signed. */
static char *jhours_sign(const json_t *o, const char *key, bool sign)
{
	int64_t v;
	char b[48];

	if (!jint(o, key, &v))
		return jtext(o, key);
	gpu_hours_format(v, b, sizeof(b));
	return xasprintf("%s%s", sign && v > 0 ? "+" : "", b);
}

static char *jhours(const json_t *o, const char *key)
{
	return jhours_sign(o, key, false);
}

/* "1d 2h 3m 4s"; "0s" for zero. */
static char *duration_text(int64_t s)
{
	struct buf b = { 0 };
	static const struct { int64_t unit; char c; } units[] = {
		{ 86400, 'd' }, { 3600, 'h' }, { 60, 'm' }, { 1, 's' },
	};

	buf_puts(&b, s < 0 ? "-" : "");
	uint64_t m = s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		uint64_t n = m / (uint64_t)units[i].unit;
		m %= (uint64_t)units[i].unit;
		if (n)
			buf_printf(&b, "%s%" PRIu64 "%c", b.len > (s < 0) ? " " : "",
				   n, units[i].c);
	}
	if (s == 0)
		buf_puts(&b, "0s");
	return buf_take(&b);
}

/* ---- argument checks ----------------------------------------------------- */

static const char *flag(const struct cmd_args *a, const char *name)
{
	for (int i = 0; i < MAX_FLAGS && a->cmd->flags[i].name; i++)
		if (strcmp(a->cmd->flags[i].name, name) == 0)
			return a->val[i];
	abort();	/* a command asked for an option it does not declare */
}

/* Returns EXIT_USAGE after the message when a required option is missing. */
static int require(const struct cmd_args *a, const char *const *names)
{
	for (; *names; names++)
		if (!flag(a, *names))
			return usage_error(a->cmd, "%s needs --%s", a->cmd->name,
					   *names);
	return 0;
}

/* Syntax check only: the daemon reads the time in the program's zone. */
static int check_time(const char *opt, const char *s)
{
	const char *cause = NULL;
	int64_t t;

	if (s && time_parse(s, 0, &t, &cause) != 0) {
		errmsg("%s: %s: '%s'", opt, cause ? cause : "not a time", s);
		return EXIT_DATAERR;
	}
	return 0;
}

static int parse_int(const char *opt, const char *s, int64_t min, int64_t *out)
{
	int r = i64_parse(s, out);
	if (r == -EINVAL) {
		errmsg("%s: not a whole number: '%s'", opt, s);
		return EXIT_DATAERR;
	}
	if (r != 0 || *out < min) {
		errmsg("%s: out of range (at least %" PRId64 "): '%s'", opt, min, s);
		return EXIT_DATAERR;
	}
	return 0;
}

static int parse_hours(const char *opt, const char *s, int64_t *secs)
{
	int r = gpu_hours_parse(s, secs);
	if (r == -EINVAL) {
		errmsg("%s: not a decimal number: '%s'", opt, s);
		return EXIT_DATAERR;
	}
	if (r != 0) {
		errmsg("%s: too large, or not a whole number of seconds: '%s'",
		       opt, s);
		return EXIT_DATAERR;
	}
	return 0;
}

/*
 * The consortium a listing is about (DESIGN: every listing command takes it
 * both as its first argument and as --consortium C); NULL for all. Returns
 * 0, or EXIT_USAGE when both are given and differ.
 */
static int consortium_filter(const struct cmd_args *a, const char **out)
{
	const char *arg = a->argc ? a->argv[0] : NULL, *opt = flag(a, "consortium");

	if (arg && opt && strcmp(arg, opt) != 0)
		return usage_error(a->cmd, "the consortium is given twice: '%s' and --consortium %s",
				   arg, opt);
	*out = arg ? arg : opt;
	return 0;
}

/* ---- output blocks shared by several commands ----------------------------- */

static const char *const quota_head[] = {
	"CONSORTIUM", "PHASE", "GPU", "GRANTED", "COMMITTED", "CONSUMED",
	"USED", "EXPIRED", "AVAILABLE", "MAX_GPUS",
};

static void quota_row(struct table *t, const json_t *q)
{
	char *row[] = {
		jtext(q, "consortium"), jtext(q, "phase"), jtext(q, "gpu"),
		jhours(q, "granted_gpu_seconds"),
		jhours(q, "committed_gpu_seconds"),
		jhours(q, "consumed_gpu_seconds"),
		jhours(q, "used_gpu_seconds"),
		jhours(q, "expired_gpu_seconds"),
		jhours(q, "available_gpu_seconds"),
		jtext(q, "max_gpus"),
	};
	table_add(t, row);
}

static void quota_print(const json_t *rows, bool one)
{
	struct table t;
	size_t i;
	json_t *q;

	table_init(&t, ARRAY_SIZE(quota_head), quota_head, 0x3f8);
	if (one) {
		quota_row(&t, rows);
	} else {
		json_array_foreach(rows, i, q)
			quota_row(&t, q);
	}
	if (t.nrows == 0) {
		puts("no quota");
	} else {
		puts("quota (GPU-hours)");
		table_print(&t, stdout);
	}
	table_free(&t);
}

static void allocation_print(const json_t *al)
{
	struct table kv;
	char *cost = jhours(al, "cost_gpu_seconds");

	kv_init(&kv);
	kv_add(&kv, "id", jtext(al, "id"));
	kv_add(&kv, "consortium", jtext(al, "consortium"));
	kv_add(&kv, "pool", jtext(al, "pool"));
	kv_add(&kv, "gpu", jtext(al, "gpu"));
	kv_add(&kv, "gpus", jtext(al, "gpus"));
	kv_add(&kv, "phase", jtext(al, "phase"));
	kv_add(&kv, "start", jtext(al, "start"));
	kv_add(&kv, "end", jtext(al, "end"));
	if (jstr(al, "booked_end") &&
	    strcmp(jstr(al, "booked_end"), jsv(al, "end")) != 0)
		kv_add(&kv, "booked end", jtext(al, "booked_end"));
	kv_add(&kv, "state", jtext(al, "state"));
	kv_add(&kv, "cost", strcmp(cost, "-") ? xasprintf("%s GPU-hours", cost)
					     : xstrdup("-"));
	if (jstr(al, "note"))
		kv_add(&kv, "note", jtext(al, "note"));
	if (jget(al, "created"))
		kv_add(&kv, "created", jtext(al, "created"));
	table_print(&kv, stdout);
	table_free(&kv);
	free(cost);
}

static const char *const alloc_head[] = {
	"ID", "CONSORTIUM", "POOL", "GPUS", "START", "END", "STATE", "COST(GPU-h)",
};

static const char *const journal_head[] = {
	"SEQ", "TIME", "KIND", "CONSORTIUM", "PHASE", "GPU", "ALLOC",
	"DELTA(GPU-h)", "REASON",
};
#define JOURNAL_RIGHT 0x81u	/* SEQ and DELTA */

/* The change an entry makes, in GPU-hours: the first non-zero delta. */
static char *journal_delta(const json_t *e)
{
	static const char *const keys[] = {
		"granted_delta_gpu_seconds", "committed_delta_gpu_seconds",
		"expired_delta_gpu_seconds",
	};
	int64_t v;

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (jint(e, keys[i], &v) && v != 0)
			return jhours_sign(e, keys[i], true);
	if (jint(e, "max_gpus", &v))
		return xasprintf("cap %" PRId64, v);
	return xstrdup("-");
}

static void journal_row(const json_t *e, char **row)
{
	row[0] = jtext(e, "seq");
	row[1] = jtext(e, "time");
	row[2] = jtext(e, "kind");
	row[3] = jtext(e, "consortium");
	row[4] = jtext(e, "phase");
	row[5] = jtext(e, "gpu");
	row[6] = jtext(e, "allocation");
	row[7] = journal_delta(e);
	row[8] = jtext(e, "reason");
}

/* ---- commands ------------------------------------------------------------- */

static int cmd_status(struct cli *cli, struct cmd_args *a)
{
	json_t *j;
	int rc = api_get(cli, PROTO_STATUS, &j);
	if (rc != 0 || cli->json)
		goto out;

	struct table kv;
	const json_t *jn = jget(j, "journal"), *you = jget(j, "you");
	const char *hash = jstr(jn, "hash");
	int64_t up;
	const char *key;
	json_t *v;

	kv_init(&kv);
	kv_add(&kv, "version", jtext(j, "version"));
	kv_add(&kv, "clock", xasprintf("%s (%s)", jsv(j, "clock"),
				       jsv(j, "clock_mode")));
	kv_add(&kv, "uptime", jint(j, "uptime_s", &up) ? duration_text(up)
						      : xstrdup("-"));
	if (json_is_integer(jget(jn, "entries"))) {
		/* a consortium: its own entries, never the global head */
		char *n = jtext(jn, "entries"), *seq = jtext(jn, "last_seq");
		const char *view = jstr(jn, "view_hash");
		kv_add(&kv, "your journal", xasprintf("%s entries, last seq %s, view hash %.*s",
			n, seq, HASH_PREFIX, view ? view : "-"));
		free(n);
		free(seq);
	} else {
		char *seq = jtext(jn, "seq");
		kv_add(&kv, "journal head", xasprintf("seq %s, hash %.*s", seq,
			HASH_PREFIX, hash ? hash : "-"));
		free(seq);
	}
	if (you) {
		const char *cons = jstr(you, "consortium");
		kv_add(&kv, "you", cons ? xasprintf("%s of %s", jsv(you, "role"), cons)
					: jtext(you, "role"));
	}
	if (json_is_object(jget(j, "counters"))) {
		json_object_foreach(jget(j, "counters"), key, v) {
			char *k = xstrdup(key);
			for (char *p = k; *p; p++)
				if (*p == '_')
					*p = ' ';
			kv_add(&kv, k, json_text(v));
			free(k);
		}
	}
	table_print(&kv, stdout);
	table_free(&kv);
out:
	json_decref(j);
	return rc;
}

static int cmd_program(struct cli *cli, struct cmd_args *a)
{
	json_t *j, *e;
	size_t i;
	int rc = api_get(cli, PROTO_PROGRAM, &j);
	if (rc != 0 || cli->json)
		goto out;

	const json_t *p = jget(j, "program");
	char *name = jtext(p, "name"), *grace = jtext(p, "designation_grace_days");
	printf("program: %s (time zone %s, designation grace %s days)\n",
	       name, jsv(p, "timezone"), grace);
	free(name);
	free(grace);

	/* the ledger's dates (a phase move overrides the file) and the file's */
	static const char *const ph_head[] = { "PHASE", "NAME", "START", "END",
					       "CONFIG_START", "CONFIG_END" };
	struct table t;
	table_init(&t, 6, ph_head, 0);
	json_array_foreach(jget(j, "phases"), i, e) {
		char *row[] = { jtext(e, "id"), jtext(e, "name"),
				jtext(e, "start"), jtext(e, "end"),
				jtext(e, "config_start"), jtext(e, "config_end") };
		table_add(&t, row);
	}
	putchar('\n');
	table_print(&t, stdout);
	table_free(&t);

	static const char *const pool_head[] = {
		"POOL", "PROVIDER", "GPU", "GPUS", "PER_NODE", "FROM", "UNTIL", "SLURM",
	};
	table_init(&t, 8, pool_head, 0x18);
	json_array_foreach(jget(j, "pools"), i, e) {
		const json_t *sl = jget(e, "slurm");
		/* cluster/partition where the bridge mirrors the pool */
		char *slurm = json_is_object(sl) ? xasprintf("%s/%s", jsv(sl, "cluster"),
							     jsv(sl, "partition"))
						 : xstrdup("-");
		char *row[] = { jtext(e, "id"), jtext(e, "provider"),
				jtext(e, "gpu"), jtext(e, "gpus"),
				jtext(e, "gpus_per_node"),
				jtext(e, "available_from"),
				jtext(e, "available_until"), cell_dup(slurm) };
		free(slurm);
		table_add(&t, row);
	}
	putchar('\n');
	table_print(&t, stdout);
	table_free(&t);

	static const char *const c_head[] = {
		"CONSORTIUM", "NAME", "LEAD", "MEMBERS", "JOINED", "STATUS",
	};
	table_init(&t, 6, c_head, 0);
	json_array_foreach(jget(j, "consortia"), i, e) {
		char *status, *base;
		const char *st = jsv(e, "status");
		const char *ahead = jstr(e, "eliminated_from");
		if (jstr(e, "since") && jstr(e, "designation_until") &&
		    strcmp(st, "eliminated") == 0)
			base = xasprintf("%s since %s (title until %s)", st,
					 jstr(e, "since"),
					 jstr(e, "designation_until"));
		else if (jstr(e, "since"))
			base = xasprintf("%s since %s", st, jstr(e, "since"));
		else
			base = xstrdup(st);
		/* rule 8: still active until an elimination takes effect */
		if (ahead && strcmp(st, "active") == 0)
			status = xasprintf("%s (eliminated from %s)", base, ahead);
		else
			status = xstrdup(base);
		free(base);
		char *row[] = { jtext(e, "id"), jtext(e, "name"), jtext(e, "lead"),
				jtext(e, "members"), jtext(e, "joined"),
				cell_dup(status) };
		free(status);
		table_add(&t, row);
	}
	putchar('\n');
	table_print(&t, stdout);
	table_free(&t);
out:
	json_decref(j);
	return rc;
}

static int cmd_quota(struct cli *cli, struct cmd_args *a)
{
	struct req r;
	json_t *j;

	const char *cons;
	int rc = consortium_filter(a, &cons);
	if (rc != 0)
		return rc;
	req_init(&r, PROTO_QUOTA);
	req_query(cli, &r, FIELD_CONSORTIUM, cons);
	req_query(cli, &r, FIELD_PHASE, flag(a, "phase"));
	req_query(cli, &r, FIELD_GPU, flag(a, "gpu"));
	req_query(cli, &r, FIELD_AT, flag(a, "at"));
	rc = api_call(cli, &r, &j);
	if (rc == 0 && !cli->json && jstr(j, "at"))
		printf("as at %s\n", jstr(j, "at"));
	if (rc == 0 && !cli->json)
		quota_print(jget(j, "quota"), false);
	json_decref(j);
	req_free(&r);
	return rc;
}

static int cmd_grant(struct cli *cli, struct cmd_args *a)
{
	static const char *const req[] = { "phase", "gpu", "gpu-hours", "reason",
					   NULL };
	int64_t secs, maxg = -1;
	json_t *j = NULL;
	struct req r;
	int rc;

	if ((rc = require(a, req)) ||
	    (rc = parse_hours("--gpu-hours", flag(a, "gpu-hours"), &secs)))
		return rc;
	if (flag(a, "max-gpus") &&
	    (rc = parse_int("--max-gpus", flag(a, "max-gpus"), 0, &maxg)))
		return rc;
	if (secs == 0 && maxg < 0) {
		errmsg("--gpu-hours: 0 changes nothing without --max-gpus");
		return EXIT_DATAERR;
	}

	req_init(&r, PROTO_GRANT);
	req_str(&r, FIELD_CONSORTIUM, a->argv[0]);
	req_str(&r, FIELD_PHASE, flag(a, "phase"));
	req_str(&r, FIELD_GPU, flag(a, "gpu"));
	req_int(&r, FIELD_GPU_SECONDS, secs);
	req_str(&r, FIELD_REASON, flag(a, "reason"));
	if (maxg >= 0)
		req_int(&r, FIELD_MAX_GPUS, maxg);
	if (flag(a, "oversubscribe"))
		req_set(&r, FIELD_OVERSUBSCRIBE, json_true());
	rc = api_call(cli, &r, &j);
	if (rc != 0 || cli->json)
		goto out;

	struct buf line = { 0 };
	char h[48];
	gpu_hours_format(secs < 0 ? -secs : secs, h, sizeof(h));
	if (secs > 0)
		buf_printf(&line, "granted %s GPU-hours of %s to %s in %s", h,
			   flag(a, "gpu"), a->argv[0], flag(a, "phase"));
	else if (secs < 0)
		buf_printf(&line, "took back %s GPU-hours of %s from %s in %s", h,
			   flag(a, "gpu"), a->argv[0], flag(a, "phase"));
	else
		buf_printf(&line, "set the %s cap of %s in %s", flag(a, "gpu"),
			   a->argv[0], flag(a, "phase"));
	if (maxg > 0)
		buf_printf(&line, "%s %" PRId64 " GPUs", secs ? ", cap" : " to", maxg);
	else if (maxg == 0)
		buf_puts(&line, secs ? ", cap removed" : " to none");

	size_t i;
	json_t *e;
	bool first = true;
	json_array_foreach(jget(j, "entries"), i, e) {
		char *seq = jtext(e, "seq");
		buf_printf(&line, "%s%s", first ? " (seq " : ", ", seq);
		free(seq);
		first = false;
	}
	if (!first)
		buf_puts(&line, ")");
	puts(line.data);
	buf_free(&line);
	if (json_is_object(jget(j, "quota")))
		quota_print(jget(j, "quota"), true);
out:
	req_free(&r);
	json_decref(j);
	return rc;
}

/* The seqs of a reply's entries, as " (seq 4, 5)", appended to line. */
static void seqs_append(struct buf *line, const json_t *j)
{
	size_t i;
	json_t *e;
	bool first = true;

	json_array_foreach(jget(j, "entries"), i, e) {
		char *seq = jtext(e, "seq");
		buf_printf(line, "%s%s", first ? " (seq " : ", ", seq);
		free(seq);
		first = false;
	}
	if (!first)
		buf_puts(line, ")");
}

static int cmd_transfer(struct cli *cli, struct cmd_args *a)
{
	static const char *const req[] = { "phase", "gpu", "gpu-hours", "reason", NULL };
	int64_t secs;
	json_t *j = NULL;
	struct req r;
	int rc;

	if ((rc = require(a, req)) ||
	    (rc = parse_hours("--gpu-hours", flag(a, "gpu-hours"), &secs)))
		return rc;
	if (secs <= 0) {
		errmsg("--gpu-hours: a transfer moves a positive amount");
		return EXIT_DATAERR;
	}
	req_init(&r, PROTO_TRANSFER);
	req_str(&r, FIELD_FROM_CONSORTIUM, a->argv[0]);
	req_str(&r, FIELD_TO_CONSORTIUM, a->argv[1]);
	req_str(&r, FIELD_PHASE, flag(a, "phase"));
	req_str(&r, FIELD_GPU, flag(a, "gpu"));
	req_int(&r, FIELD_GPU_SECONDS, secs);
	req_str(&r, FIELD_REASON, flag(a, "reason"));
	if (flag(a, "oversubscribe"))
		req_set(&r, FIELD_OVERSUBSCRIBE, json_true());
	rc = api_call(cli, &r, &j);
	if (rc != 0 || cli->json)
		goto out;

	struct buf line = { 0 };
	char h[48];
	gpu_hours_format(secs, h, sizeof(h));
	buf_printf(&line, "%s %s GPU-hours of %s from %s to %s in %s",
		   jget(j, "dry_run") == json_true() ? "would transfer" : "transferred",
		   h, flag(a, "gpu"), a->argv[0], a->argv[1], flag(a, "phase"));
	seqs_append(&line, j);
	puts(line.data);
	buf_free(&line);
	if (json_is_object(jget(j, "from")))
		quota_print(jget(j, "from"), true);
	if (json_is_object(jget(j, "to")))
		quota_print(jget(j, "to"), true);
out:
	req_free(&r);
	json_decref(j);
	return rc;
}

static int cmd_budget(struct cli *cli, struct cmd_args *a)
{
	static const char *const head[] = {
		"PHASE", "GPU", "PROCURED", "GRANTED", "COMMITTED", "RESERVE",
	};
	struct req r;
	json_t *j = NULL, *e;
	size_t i;

	req_init(&r, PROTO_BUDGET);
	req_query(cli, &r, FIELD_PHASE, flag(a, "phase"));
	int rc = api_call(cli, &r, &j);
	if (rc == 0 && !cli->json) {
		struct table t;
		table_init(&t, ARRAY_SIZE(head), head, 0x3c);
		json_array_foreach(jget(j, "budget"), i, e) {
			char *row[] = { jtext(e, "phase"), jtext(e, "gpu"),
					jhours(e, "procured_gpu_seconds"),
					jhours(e, "granted_gpu_seconds"),
					jhours(e, "committed_gpu_seconds"),
					jhours(e, "reserve_gpu_seconds") };
			table_add(&t, row);
		}
		puts("budget (GPU-hours)");
		table_print(&t, stdout);
		table_free(&t);
	}
	json_decref(j);
	req_free(&r);
	return rc;
}

static int cmd_allocate(struct cli *cli, struct cmd_args *a)
{
	static const char *const req[] = { "gpus", "start", NULL };
	const char *pool = flag(a, "pool"), *gpu = flag(a, "gpu");
	const char *end = flag(a, "end"), *hours = flag(a, "hours");
	int64_t gpus, dur = 0;
	json_t *j = NULL;
	struct req r;
	int rc;

	if ((rc = require(a, req)))
		return rc;
	if (pool && gpu)
		return usage_error(a->cmd, "--pool and --gpu exclude each other");
	if (!pool && !gpu)
		return usage_error(a->cmd, "allocate needs --pool or --gpu");
	if (end && hours)
		return usage_error(a->cmd, "--end and --hours exclude each other");
	if (!end && !hours)
		return usage_error(a->cmd, "allocate needs --end or --hours");
	if ((rc = parse_int("--gpus", flag(a, "gpus"), 1, &gpus)) ||
	    (rc = check_time("--start", flag(a, "start"))) ||
	    (rc = check_time("--end", end)))
		return rc;
	if (hours) {
		if ((rc = parse_hours("--hours", hours, &dur)))
			return rc;
		if (dur <= 0) {
			errmsg("--hours: must be more than 0: '%s'", hours);
			return EXIT_DATAERR;
		}
	}

	req_init(&r, PROTO_ALLOCATE);
	req_str(&r, FIELD_CONSORTIUM, a->argv[0]);
	req_int(&r, FIELD_GPUS, gpus);
	req_str(&r, FIELD_START, flag(a, "start"));
	req_set(&r, FIELD_EARLIEST, json_boolean(flag(a, "earliest") != NULL));
	req_str(&r, FIELD_POOL, pool);
	req_str(&r, FIELD_GPU, gpu);
	if (end)
		req_str(&r, FIELD_END, end);
	else
		req_int(&r, FIELD_DURATION_S, dur);
	req_str(&r, FIELD_NOTE, flag(a, "note"));
	rc = api_call(cli, &r, &j);
	if (rc == 0 && !cli->json)
		allocation_print(jget(j, "allocation"));
	req_free(&r);
	json_decref(j);
	return rc;
}

static int cmd_allocations(struct cli *cli, struct cmd_args *a)
{
	struct req r;
	json_t *j, *e;
	size_t i;

	const char *cons;
	int rc = consortium_filter(a, &cons);
	if (rc != 0)
		return rc;
	req_init(&r, PROTO_ALLOCATIONS);
	req_query(cli, &r, FIELD_CONSORTIUM, cons);
	req_query(cli, &r, FIELD_STATE, flag(a, "state"));
	req_query(cli, &r, FIELD_POOL, flag(a, "pool"));
	rc = api_call(cli, &r, &j);
	req_free(&r);
	if (rc != 0 || cli->json)
		goto out;

	struct table t;
	table_init(&t, ARRAY_SIZE(alloc_head), alloc_head, 0x88);
	json_array_foreach(jget(j, "allocations"), i, e) {
		char *row[] = { jtext(e, "id"), jtext(e, "consortium"),
				jtext(e, "pool"), jtext(e, "gpus"),
				jtext(e, "start"), jtext(e, "end"),
				jtext(e, "state"), jhours(e, "cost_gpu_seconds") };
		table_add(&t, row);
	}
	if (t.nrows)
		table_print(&t, stdout);
	else
		puts("no allocations");
	table_free(&t);
out:
	json_decref(j);
	return rc;
}

static int cmd_show(struct cli *cli, struct cmd_args *a)
{
	struct req r;
	json_t *j;

	req_init(&r, PROTO_ALLOCATION);
	r.params[0] = a->argv[0];
	int rc = api_call(cli, &r, &j);
	if (rc == 0 && !cli->json)
		allocation_print(jget(j, "allocation"));
	json_decref(j);
	req_free(&r);
	return rc;
}

/* cancel and release an allocation. */
static int alloc_change(struct cli *cli, struct cmd_args *a, enum proto_req id,
			const char *at)
{
	struct req r;
	json_t *j;
	int rc;

	req_init(&r, id);
	r.params[0] = a->argv[0];
	req_str(&r, FIELD_REASON, flag(a, "reason"));
	if (at)
		req_str(&r, FIELD_AT, at);
	rc = api_call(cli, &r, &j);
	if (rc == 0 && !cli->json) {
		const json_t *al = jget(j, "allocation");
		if (id == PROTO_RELEASE) {
			char *cost = jhours(al, "cost_gpu_seconds");
			printf("released %s at %s (state %s, cost now %s GPU-hours)\n",
			       jsv(al, "id"), jsv(al, "end"), jsv(al, "state"), cost);
			free(cost);
		} else {
			printf("cancelled %s (state %s)\n", jsv(al, "id"),
			       jsv(al, "state"));
		}
	}
	json_decref(j);
	req_free(&r);
	return rc;
}

static int cmd_cancel(struct cli *cli, struct cmd_args *a)
{
	return alloc_change(cli, a, PROTO_CANCEL, NULL);
}

static int cmd_release(struct cli *cli, struct cmd_args *a)
{
	int rc = check_time("--at", flag(a, "at"));
	return rc ? rc : alloc_change(cli, a, PROTO_RELEASE, flag(a, "at"));
}

/* modify: a new shape for an allocation, checked like a booking. */
static int cmd_modify(struct cli *cli, struct cmd_args *a)
{
	static const char *const req[] = { "reason", NULL };
	const char *start = flag(a, "start"), *end = flag(a, "end");
	const char *gpus = flag(a, "gpus"), *pool = flag(a, "pool");
	int64_t n = 0;
	struct req r;
	json_t *j = NULL;
	int rc;

	if ((rc = require(a, req)))
		return rc;
	if (!start && !end && !gpus && !pool)
		return usage_error(a->cmd, "modify needs at least one of --start, --end, --gpus, --pool");
	if ((rc = check_time("--start", start)) || (rc = check_time("--end", end)) ||
	    (gpus && (rc = parse_int("--gpus", gpus, 1, &n))))
		return rc;

	req_init(&r, PROTO_MODIFY);
	r.params[0] = a->argv[0];
	req_str(&r, FIELD_START, start);
	req_str(&r, FIELD_END, end);
	if (gpus)
		req_int(&r, FIELD_GPUS, n);
	req_str(&r, FIELD_POOL, pool);
	req_str(&r, FIELD_REASON, flag(a, "reason"));
	rc = api_call(cli, &r, &j);
	if (rc == 0 && !cli->json) {
		char *delta = jhours_sign(j, "cost_delta_gpu_seconds", true);
		printf("modified %s (cost %s GPU-hours)\n", a->argv[0], delta);
		free(delta);
		allocation_print(jget(j, "allocation"));
	}
	json_decref(j);
	req_free(&r);
	return rc;
}

/* phase move: the end of a phase (and the start of the next that touches it) moves. */
static int cmd_phase(struct cli *cli, struct cmd_args *a)
{
	static const char *const req[] = { "end", "reason", NULL };
	struct req r;
	json_t *j = NULL, *e;
	size_t i;
	int rc;

	if (strcmp(a->argv[0], "move") != 0)
		return usage_error(a->cmd, "unknown phase command '%s'", a->argv[0]);
	if (a->argc < 2)
		return usage_error(a->cmd, "phase move needs a PHASE");
	if ((rc = require(a, req)) || (rc = check_time("--end", flag(a, "end"))))
		return rc;
	req_init(&r, PROTO_PHASE_MOVE);
	r.params[0] = a->argv[1];
	req_str(&r, FIELD_END, flag(a, "end"));
	req_set(&r, FIELD_CUT, json_boolean(flag(a, "cut") != NULL));
	req_str(&r, FIELD_REASON, flag(a, "reason"));
	rc = api_call(cli, &r, &j);
	if (rc == 0 && !cli->json) {
		const json_t *ph = jget(j, "phase"), *nx = jget(j, "next");
		printf("phase %s now ends at %s (the config says %s)\n", jsv(ph, "id"),
		       jsv(ph, "end"), jsv(ph, "config_end"));
		if (json_is_object(nx))
			printf("phase %s now starts at %s\n", jsv(nx, "id"), jsv(nx, "start"));
		json_array_foreach(jget(j, "cut"), i, e)
			printf("  cut     %s (%s) at %s\n", jsv(e, "allocation"), jsv(e, "consortium"),
			       jsv(e, "end"));
		json_array_foreach(jget(j, "revoked"), i, e)
			printf("  revoked %s (%s)\n", jsv(e, "allocation"), jsv(e, "consortium"));
		char *back = jhours(j, "restored_gpu_seconds");
		if (strcmp(back, "0") != 0)
			printf("  %s GPU-hours of expired quota restored\n", back);
		free(back);
	}
	json_decref(j);
	req_free(&r);
	return rc;
}

/* eliminate and reinstate a consortium. */
static int consortium_change(struct cli *cli, struct cmd_args *a, enum proto_req id)
{
	static const char *const req[] = { "effective", "reason", NULL };
	struct req r;
	json_t *j;
	int rc;

	if ((rc = require(a, req)) ||
	    (rc = check_time("--effective", flag(a, "effective"))))
		return rc;

	req_init(&r, id);
	r.params[0] = a->argv[0];
	req_str(&r, FIELD_EFFECTIVE, flag(a, "effective"));
	req_str(&r, FIELD_REASON, flag(a, "reason"));
	rc = api_call(cli, &r, &j);
	if (rc != 0 || cli->json)
		goto out;

	const json_t *c = jget(j, "consortium");
	const char *name = jstr(c, "id") ? jstr(c, "id") : a->argv[0];
	if (id == PROTO_ELIMINATE) {
		printf("eliminated %s effective %s", name,
		       jstr(c, "eliminated_from") ? jstr(c, "eliminated_from")
						  : flag(a, "effective"));
		if (jstr(c, "designation_until"))
			printf(" (may use the title until %s)",
			       jstr(c, "designation_until"));
		putchar('\n');
		char *rev = jtext(j, "revoked"), *cut = jtext(j, "cut");
		char *q = jhours(j, "revoked_quota_gpu_seconds");
		printf("revoked allocations: %s\n", strcmp(rev, "-") ? rev : "none");
		printf("cut allocations: %s\n", strcmp(cut, "-") ? cut : "none");
		printf("revoked quota: %s GPU-hours\n", q);
		free(rev);
		free(cut);
		free(q);
	} else {
		printf("reinstated %s effective %s (status %s)\n", name,
		       flag(a, "effective"), jsv(c, "status"));
	}
out:
	json_decref(j);
	req_free(&r);
	return rc;
}

/*
 * meter: one job's measured use, as a cluster bridge reports it (POST
 * /v1/usage); for scripts and for correcting a bridge by hand. The first
 * argument is an allocation id or a consortium.
 */
static int cmd_meter(struct cli *cli, struct cmd_args *a)
{
	static const char *const req[] = { "source", "job", NULL };
	const char *target = a->argv[0], *secs_s = flag(a, "gpu-seconds"),
		   *hours_s = flag(a, "gpu-hours");
	int64_t num, secs = 0;
	bool is_alloc = alloc_id_parse(target, &num) == 0;
	json_t *j = NULL;
	struct req r;
	int rc;

	if ((rc = require(a, req)))
		return rc;
	if ((secs_s == NULL) == (hours_s == NULL))
		return usage_error(a->cmd, "give exactly one of --gpu-seconds and --gpu-hours");
	if (secs_s && (rc = parse_int("--gpu-seconds", secs_s, 0, &secs)))
		return rc;
	if (hours_s && (rc = parse_hours("--gpu-hours", hours_s, &secs)))
		return rc;
	if (secs < 0) {
		errmsg("--gpu-hours: metered use is never negative: '%s'", hours_s);
		return EXIT_DATAERR;
	}
	if (!is_alloc && (!flag(a, "phase") || !flag(a, "gpu")))
		return usage_error(a->cmd, "a consortium needs --phase and --gpu (or give an allocation id)");
	if ((rc = check_time("--end", flag(a, "end"))))
		return rc;

	req_init(&r, PROTO_USAGE);
	req_str(&r, FIELD_SOURCE, flag(a, "source"));
	req_str(&r, FIELD_JOB_ID, flag(a, "job"));
	req_int(&r, FIELD_GPU_SECONDS, secs);
	req_str(&r, is_alloc ? FIELD_ALLOCATION : FIELD_CONSORTIUM, target);
	req_str(&r, FIELD_PHASE, flag(a, "phase"));
	req_str(&r, FIELD_GPU, flag(a, "gpu"));
	req_str(&r, FIELD_END, flag(a, "end"));
	rc = api_call(cli, &r, &j);
	if (rc != 0 || cli->json)
		goto out;

	const json_t *u = jget(j, "usage");
	char *h = jhours(u, "gpu_seconds"), *seq = jtext(u, "seq");
	if (json_is_true(jget(j, "duplicate")))
		printf("job %s of %s was already recorded (seq %s): nothing changed\n",
		       jsv(u, "job_id"), jsv(u, "source"), seq);
	else
		printf("recorded %s GPU-hours used by job %s of %s for %s/%s/%s%s%s (seq %s)\n", h,
		       jsv(u, "job_id"), jsv(u, "source"), jsv(u, "consortium"),
		       jsv(u, "phase"), jsv(u, "gpu"), jstr(u, "allocation") ? " in " : "",
		       jstr(u, "allocation") ? jstr(u, "allocation") : "", seq);
	free(h);
	free(seq);
out:
	json_decref(j);
	req_free(&r);
	return rc;
}

/* A GET whose JSON the command prints itself (also under --json). */
static int fetch(struct cli *cli, struct req *r, json_t **out)
{
	cli->hold = true;
	int rc = api_call(cli, r, out);
	cli->hold = false;
	return rc;
}

static int fetch_get(struct cli *cli, enum proto_req id, json_t **out)
{
	struct req r;
	req_init(&r, id);
	int rc = fetch(cli, &r, out);
	req_free(&r);
	return rc;
}

static void report_row(struct table *t, const json_t *r)
{
	char b[48];
	const json_t *u = jget(r, "utilisation_bp");
	char *row[] = {
		jstr(r, "consortium") ? jtext(r, "consortium") : xstrdup("total"),
		jtext(r, "gpu"),
		jhours(r, "granted_gpu_seconds"), jhours(r, "committed_gpu_seconds"),
		jhours(r, "consumed_gpu_seconds"), jhours(r, "used_gpu_seconds"),
		jhours(r, "expired_gpu_seconds"),
		json_is_integer(u) ? xstrdup(bp_format(json_integer_value(u), b, sizeof(b)))
				   : xstrdup("-"),
	};
	table_add(t, row);
}

/*
 * report usage: per consortium and GPU model, what was granted, committed,
 * consumed (clock), used (metered) and expired, and the utilisation used /
 * consumed; composed here from the quota rows, so it is scoped as they are.
 */
static int cmd_report(struct cli *cli, struct cmd_args *a)
{
	static const char *const head[] = {
		"CONSORTIUM", "GPU", "GRANTED", "COMMITTED", "CONSUMED", "USED", "EXPIRED",
		"UTILISATION",
	};
	const char *phase = flag(a, "phase"), *cause;
	json_t *j = NULL, *rep = NULL, *r;
	struct req q;
	size_t i;
	int rc;

	if (strcmp(a->argv[0], "usage") != 0)
		return usage_error(a->cmd, "unknown report '%s' (there is: usage)", a->argv[0]);
	if (cli->json && flag(a, "csv"))
		return usage_error(a->cmd, "give one of --json and --csv");
	req_init(&q, PROTO_QUOTA);
	req_query(cli, &q, FIELD_PHASE, phase);
	rc = fetch(cli, &q, &j);
	req_free(&q);
	if (rc != 0)
		goto out;
	rep = report_usage(jget(j, "quota"), phase, &cause);
	if (rep == NULL) {
		errmsg("report usage: %s", cause);
		rc = EXIT_DATAERR;
		goto out;
	}
	if (cli->json) {
		print_json(rep);
	} else if (flag(a, "csv")) {
		report_usage_csv(rep, stdout);
	} else {
		struct table t;
		table_init(&t, ARRAY_SIZE(head), head, 0xfc);
		json_array_foreach(jget(rep, "rows"), i, r)
			report_row(&t, r);
		json_array_foreach(jget(rep, "totals"), i, r)
			report_row(&t, r);
		if (t.nrows == 0) {
			puts("no quota");
		} else {
			printf("usage%s%s (GPU-hours; utilisation = used / consumed)\n",
			       phase ? " in " : "", phase ? phase : "");
			table_print(&t, stdout);
		}
		table_free(&t);
	}
out:
	json_decref(rep);
	json_decref(j);
	return rc;
}

/* The clock's instant, or --at's (read in the program's zone). */
static int export_at(struct cli *cli, const struct cmd_args *a, const json_t *program,
		     int64_t *at)
{
	const char *s = flag(a, "at"), *cause = NULL;
	int32_t tz = 0;
	json_t *j;

	if (s) {
		if (tz_parse(jsv(jget(program, "program"), "timezone"), &tz) != 0)
			tz = 0;
		if (time_parse(s, tz, at, &cause) != 0) {
			errmsg("--at: %s: '%s'", cause ? cause : "not a time", s);
			return EXIT_DATAERR;
		}
		return 0;
	}
	int rc = fetch_get(cli, PROTO_CLOCK_GET, &j);
	if (rc == 0 && (jstr(j, "clock") == NULL ||
			time_parse(jstr(j, "clock"), 0, at, &cause) != 0)) {
		errmsg("the daemon's clock is not a time");
		rc = EXIT_SOFTWARE;
	}
	json_decref(j);
	return rc;
}

static int export_kueue(struct cli *cli, struct cmd_args *a)
{
	json_t *prog = NULL, *allocs = NULL, *quota = NULL, *objs = NULL;
	struct kueue_input in;
	char *cause = NULL;
	int rc;

	if ((rc = fetch_get(cli, PROTO_PROGRAM, &prog)) ||
	    (rc = fetch_get(cli, PROTO_ALLOCATIONS, &allocs)) ||
	    (rc = fetch_get(cli, PROTO_QUOTA, &quota)) ||
	    (rc = export_at(cli, a, prog, &in.at)))
		goto out;
	in.program = prog;
	in.allocations = jget(allocs, "allocations");
	in.quota = jget(quota, "quota");
	objs = kueue_objects(&in, &cause);
	if (objs == NULL) {
		errmsg("export kueue: %s", cause);
		free(cause);
		rc = EXIT_DATAERR;
		goto out;
	}
	if (cli->json) {
		/* a List, which kubectl apply -f takes as it takes the documents */
		json_t *list = json_pack("{s:s, s:s, s:O}", "apiVersion", "v1", "kind", "List",
					 "items", objs);
		print_json(list);
		json_decref(list);
	} else if (yaml_documents(objs, stdout) != 0 || fflush(stdout) != 0) {
		errmsg("export kueue: cannot write: %s", strerror(errno));
		rc = EXIT_IOERR;
	}
out:
	json_decref(objs);
	json_decref(prog);
	json_decref(allocs);
	json_decref(quota);
	return rc;
}

/* Adds name to arr unless it is there. */
static void add_user(json_t *arr, const char *name)
{
	size_t i;
	json_t *u;

	json_array_foreach(arr, i, u)
		if (strcmp(json_string_value(u), name) == 0)
			return;
	json_array_append_new(arr, json_string(name));
}

static int by_name(const void *x, const void *y)
{
	return strcmp(json_string_value(*(json_t *const *)x), json_string_value(*(json_t *const *)y));
}

/*
 * The member users of each consortium's Unix groups (access.consortia, as
 * GET /v1/program lists them), resolved on this host (the OnDemand host
 * reads the file, and it knows its users by these names): a group's
 * listed members and the users whose primary group it is. A group this
 * host does not know has no members.
 */
static json_t *member_users(const json_t *program)
{
	json_t *out = json_object(), *c, *g;
	size_t i, j;

	json_array_foreach(jget(program, "consortia"), i, c) {
		json_t *users = json_array();
		json_array_foreach(jget(c, "groups"), j, g) {
			struct group *gr = getgrnam(json_string_value(g));
			if (gr == NULL)
				continue;
			gid_t gid = gr->gr_gid;
			for (char **m = gr->gr_mem; m && *m; m++)
				add_user(users, *m);
			setpwent();
			for (struct passwd *pw; (pw = getpwent()) != NULL;)
				if (pw->pw_gid == gid)
					add_user(users, pw->pw_name);
			endpwent();
		}
		/* stable output: sorted by name */
		size_t n = json_array_size(users);
		json_t **v = xcalloc(n ? n : 1, sizeof(*v));
		for (size_t k = 0; k < n; k++)
			v[k] = json_incref(json_array_get(users, k));
		qsort(v, n, sizeof(*v), by_name);
		json_array_clear(users);
		for (size_t k = 0; k < n; k++)
			json_array_append_new(users, v[k]);
		free(v);
		json_object_set_new(out, jsv(c, "id"), users);
	}
	return out;
}

/* Writes text to path atomically: a temporary file beside it, fsync, rename. */
static int write_atomic(const char *path, const char *text)
{
	char *tmp = xasprintf("%s.tmp-%ld", path, (long)getpid());
	size_t len = strlen(text);
	int rc = 0, fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	if (fd < 0) {
		errmsg("cannot create %s: %s", tmp, strerror(errno));
		free(tmp);
		return EXIT_CANTCREAT;
	}
	for (size_t off = 0; off < len && rc == 0;) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = EXIT_IOERR;
		else
			off += (size_t)n;
	}
	if (rc == 0 && fsync(fd) != 0)
		rc = EXIT_IOERR;
	if (close(fd) != 0 && rc == 0)
		rc = EXIT_IOERR;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = EXIT_CANTCREAT;
	if (rc != 0) {
		errmsg("cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
	}
	free(tmp);
	return rc;
}

static int export_ood(struct cli *cli, struct cmd_args *a)
{
	json_t *prog = NULL, *quota = NULL, *users = NULL, *file = NULL;
	int64_t now;
	int rc;

	if (a->argc < 2)
		return usage_error(a->cmd, "export ood-balances needs a FILE");
	if ((rc = fetch_get(cli, PROTO_PROGRAM, &prog)) ||
	    (rc = fetch_get(cli, PROTO_QUOTA, &quota)) ||
	    (rc = export_at(cli, a, prog, &now)))
		goto out;
	users = member_users(prog);
	file = ood_balances(prog, jget(quota, "quota"), users, now);
	char *text = json_dumps(file, JSON_INDENT(2));
	size_t n = json_array_size(jget(file, "balances"));
	char *line = xasprintf("%s\n", text);
	rc = write_atomic(a->argv[1], line);
	free(line);
	free(text);
	if (rc == 0 && cli->json)
		print_json(file);
	else if (rc == 0)
		printf("wrote %zu balance%s (GPU-hours) to %s\n", n, n == 1 ? "" : "s", a->argv[1]);
out:
	json_decref(file);
	json_decref(users);
	json_decref(prog);
	json_decref(quota);
	return rc;
}

static int cmd_export(struct cli *cli, struct cmd_args *a)
{
	if (strcmp(a->argv[0], "kueue") == 0) {
		if (a->argc > 1)
			return usage_error(a->cmd, "export kueue takes no FILE: it writes to stdout");
		return export_kueue(cli, a);
	}
	if (strcmp(a->argv[0], "ood-balances") == 0)
		return export_ood(cli, a);
	return usage_error(a->cmd, "unknown export '%s' (there are: kueue, ood-balances)", a->argv[0]);
}

static int cmd_eliminate(struct cli *cli, struct cmd_args *a)
{
	return consortium_change(cli, a, PROTO_ELIMINATE);
}

static int cmd_reinstate(struct cli *cli, struct cmd_args *a)
{
	return consortium_change(cli, a, PROTO_REINSTATE);
}

static char *calendar_bar(int64_t booked, int64_t cap)
{
	char *bar = xmalloc(BAR_WIDTH + 1);
	int64_t n = 0;

	if (cap > 0 && booked > 0) {
		/* round up, so that any booking shows */
		if (booked >= cap || !i64_mul(booked, BAR_WIDTH, &n))
			n = BAR_WIDTH;
		else
			n = (n + cap - 1) / cap;
	}
	memset(bar, '#', (size_t)n);
	memset(bar + n, ' ', (size_t)(BAR_WIDTH - n));
	bar[BAR_WIDTH] = '\0';
	return bar;
}

/* The title line of a pool's slots (calendar, availability). */
static void print_slots_title(const json_t *j)
{
	int64_t step;
	char *st = jint(j, "step_s", &step) ? duration_text(step) : xstrdup("-");
	printf("pool %s (%s), %s to %s, one row per %s\n", jsv(j, "pool"),
	       jsv(j, "gpu"), jsv(j, "from"), jsv(j, "to"), st);
	free(st);
}

static int cmd_calendar(struct cli *cli, struct cmd_args *a)
{
	struct req r;
	json_t *j, *s;
	size_t i;
	int rc;

	if ((rc = check_time("--from", flag(a, "from"))) ||
	    (rc = check_time("--to", flag(a, "to"))))
		return rc;
	req_init(&r, PROTO_CALENDAR);
	r.params[0] = a->argv[0];
	req_query(cli, &r, FIELD_FROM, flag(a, "from"));
	req_query(cli, &r, FIELD_TO, flag(a, "to"));
	rc = api_call(cli, &r, &j);
	req_free(&r);
	if (rc != 0 || cli->json)
		goto out;

	print_slots_title(j);

	struct table t;
	table_init(&t, 3, NULL, 0x4);
	json_array_foreach(jget(j, "slots"), i, s) {
		int64_t booked = 0, cap = 0;
		bool ok = jint(s, "booked", &booked);
		ok = jint(s, "capacity", &cap) && ok;
		char *bar = calendar_bar(booked, cap);
		char *n = ok ? xasprintf("%" PRId64 "/%" PRId64, booked, cap)
			     : xstrdup("-");
		char *row[] = { jtext(s, "start"), xasprintf("|%s|", bar), n };
		free(bar);
		table_add(&t, row);
	}
	table_print(&t, stdout);
	table_free(&t);
out:
	json_decref(j);
	return rc;
}

/* What GET /v1/journal is asked: a page, or (follow) the stream. */
struct journal_ask {
	const char *consortium;		/* NULL = all the caller may see */
	int64_t since;			/* -1: none (the last limit entries) */
	int64_t limit;			/* 0: the daemon's default */
	bool follow;
};

/* One GET /v1/journal; *out as api_call(). */
static int journal_get(struct cli *cli, const struct journal_ask *q, json_t **out)
{
	struct req r;
	char since[24], limit[24];

	snprintf(since, sizeof(since), "%" PRId64, q->since);
	snprintf(limit, sizeof(limit), "%" PRId64, q->limit);
	req_init(&r, PROTO_JOURNAL);
	req_query(cli, &r, FIELD_SINCE, q->since >= 0 ? since : NULL);
	req_query(cli, &r, FIELD_CONSORTIUM, q->consortium);
	req_query(cli, &r, FIELD_LIMIT, q->limit > 0 ? limit : NULL);
	int rc = api_call(cli, &r, out);
	req_free(&r);
	return rc;
}

/* journal --follow: the NDJSON stream, printed line by line as it comes. */
struct follow {
	struct cli *cli;
	long status;			/* 0 until the headers are in */
	struct buf line;		/* partial line, or an error body */
	bool started;			/* some answer came in */
	bool streaming;			/* a 2xx answer: entries are coming */
	bool header_done;		/* the table's header is printed */
	bool write_failed;
	int64_t last;			/* the seq of the last entry printed */
};

static const size_t follow_widths[] = { 5, 25, 9, 10, 5, 5, 8, 12, 0 };

static bool follow_line(struct follow *f, char *s, size_t len)
{
	json_error_t je;
	json_t *e;
	int64_t seq = 0;

	if (len && s[len - 1] == '\r')
		s[--len] = '\0';
	if (len == 0)
		return true;	/* keep-alive */
	e = json_loadb(s, len, 0, &je);
	if (!e) {
		errmsg("skipped a line of the journal stream that is not JSON: %s",
		       je.text);
		return true;
	}
	/* a stream resumed after a restart starts after f->last; never twice */
	if (jint(e, "seq", &seq) && seq <= f->last) {
		json_decref(e);
		return true;
	}
	if (seq > 0)
		f->last = seq;
	if (f->cli->json) {
		fwrite(s, 1, len, stdout);
		fputc('\n', stdout);
	} else {
		char *row[ARRAY_SIZE(journal_head)];
		journal_row(e, row);
		print_row(stdout, ARRAY_SIZE(journal_head), (const char *const *)row,
			  follow_widths, JOURNAL_RIGHT);
		for (size_t i = 0; i < ARRAY_SIZE(row); i++)
			free(row[i]);
	}
	json_decref(e);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		f->write_failed = true;
		return false;
	}
	return true;
}

static size_t follow_header(char *p, size_t size, size_t n, void *arg)
{
	struct follow *f = arg;
	size_t len = size * n;

	f->started = true;
	/* the blank line ends the headers: print the table's header at once */
	if ((len == 2 && p[0] == '\r') || (len == 1 && p[0] == '\n')) {
		curl_easy_getinfo(f->cli->curl, CURLINFO_RESPONSE_CODE, &f->status);
		f->streaming = f->status >= 200 && f->status < 300;
		if (f->streaming && !f->cli->json && !f->header_done) {
			print_row(stdout, ARRAY_SIZE(journal_head), journal_head,
				  follow_widths, JOURNAL_RIGHT);
			fflush(stdout);
			f->header_done = true;
		}
	}
	return len;
}

static size_t follow_write(char *p, size_t size, size_t n, void *arg)
{
	struct follow *f = arg;
	size_t len = size * n;

	if (f->status == 0)
		curl_easy_getinfo(f->cli->curl, CURLINFO_RESPONSE_CODE, &f->status);
	if (f->status < 200 || f->status >= 300)
		return collect(p, size, n, &f->line);
	while (len) {
		char *nl = memchr(p, '\n', len);
		size_t k = nl ? (size_t)(nl - p) : len;
		if (f->line.len + k > MAX_LINE)
			return 0;
		buf_append(&f->line, p, k);
		if (!nl)
			break;
		if (!follow_line(f, f->line.data, f->line.len))
			return 0;
		f->line.len = 0;
		f->line.data[0] = '\0';
		p += k + 1;
		len -= k + 1;
	}
	return size * n;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * One connection of the stream, entries after f->last. Returns -1 when it
 * ended (the daemon went away, or never answered: f->started says which),
 * else the exit code (an HTTP error, an output that failed).
 */
static int follow_once(struct cli *cli, const struct journal_ask *q, struct follow *f,
		       double deadline, CURLcode *ccp)
{
	struct req r;
	char since[24];
	int rc = -1;

	snprintf(since, sizeof(since), "%" PRId64, f->last);
	req_init(&r, PROTO_JOURNAL);
	req_query(cli, &r, FIELD_SINCE, since);
	req_query(cli, &r, FIELD_CONSORTIUM, q->consortium);
	req_query(cli, &r, FIELD_FOLLOW, "1");
	char *path = req_path(cli, &r);
	struct curl_slist *h = http_setup(cli, proto_request(r.id)->method, path, "");

	f->status = 0;
	f->started = f->streaming = false;
	buf_free(&f->line);
	curl_easy_setopt(cli->curl, CURLOPT_HEADERFUNCTION, follow_header);
	curl_easy_setopt(cli->curl, CURLOPT_HEADERDATA, f);
	curl_easy_setopt(cli->curl, CURLOPT_WRITEFUNCTION, follow_write);
	curl_easy_setopt(cli->curl, CURLOPT_WRITEDATA, f);
	if (deadline > 0) {
		/* a reconnect does not wait past the retry window */
		long left = (long)(deadline - now_s());
		curl_easy_setopt(cli->curl, CURLOPT_CONNECTTIMEOUT, left < 1 ? 1L : left < 10 ? left : 10L);
	}
	CURLcode cc = curl_easy_perform(cli->curl);
	*ccp = cc;
	if (f->write_failed) {
		/* the reader went away (a pipe into head); not our failure */
		rc = errno == EPIPE ? 0 : EXIT_SOFTWARE;
		if (rc)
			errmsg("cannot write the output: %s", strerror(errno));
	} else if (cc == CURLE_WRITE_ERROR) {
		errmsg("a line of the journal stream is too long");
		rc = EXIT_SOFTWARE;
	} else if (f->status != 0 && !f->streaming &&
		   !(f->status == 503 && deadline > 0)) {
		json_t *j = NULL;
		rc = handle_reply(cli, f->status, &f->line, &j);
		json_decref(j);
	}
	curl_slist_free_all(h);
	free(path);
	req_free(&r);
	return rc;
}

/*
 * journal --follow. The stream starts after q->since (-1: after the last
 * q->limit entries); when it ends (the daemon stopped or restarted, or
 * dropped a slow reader) it is asked again from the last seq printed, for
 * up to retry seconds, then gives up with EXIT_UNAVAILABLE.
 */
static int journal_follow(struct cli *cli, const struct journal_ask *q, int64_t retry)
{
	struct follow f = { .cli = cli, .last = q->since };
	double deadline = 0, pause = 0.1;
	CURLcode cc = CURLE_OK;
	int rc;

	if (f.last < 0) {
		/* where the tail begins: the entry before its first one */
		json_t *j = NULL;
		struct journal_ask page = *q;
		int64_t first = 0, earlier = 0;
		cli->hold = true;
		rc = journal_get(cli, &page, &j);
		cli->hold = false;
		if (rc != 0)
			return rc;
		jint(json_array_get(jget(j, "entries"), 0), "seq", &first);
		jint(j, "earlier", &earlier);
		f.last = first > 0 ? first - 1 : 0;
		if (earlier > 0)
			errmsg("%" PRId64 " earlier entries not shown (--since SEQ starts after SEQ, "
			       "--all from the first)", earlier);
		json_decref(j);
	}
	for (;;) {
		rc = follow_once(cli, q, &f, deadline, &cc);
		if (rc >= 0)
			break;
		double now = now_s();
		if (f.streaming) {
			/* it was up: a new window for the next try */
			deadline = now + (double)retry;
			pause = 0.1;
		} else if (deadline == 0) {
			/* never reached it: the first connection is not retried */
			rc = transport_error(cli, cc, f.started);
			break;
		}
		if (now + pause > deadline) {
			errmsg("lost the journal stream from the daemon at %s and could not resume it "
			       "within %" PRId64 " s (go on with --follow --since %" PRId64 ")",
			       endpoint(cli), retry, f.last);
			rc = EXIT_UNAVAILABLE;
			break;
		}
		struct timespec ts = { (time_t)pause, (long)((pause - (double)(time_t)pause) * 1e9) };
		nanosleep(&ts, NULL);
		pause = pause * 2 > 1 ? 1 : pause * 2;
	}
	buf_free(&f.line);
	return rc;
}

/* Prints a page's note on what it left out, on stderr. */
static void journal_note(const json_t *j, bool tail)
{
	int64_t earlier = 0, later = 0, last = 0;
	const json_t *e = jget(j, "entries");

	jint(json_array_get(e, json_array_size(e) - 1), "seq", &last);
	if (tail && jint(j, "earlier", &earlier) && earlier > 0)
		errmsg("%" PRId64 " earlier entries not shown (--since SEQ pages on from SEQ, "
		       "--all shows every entry)", earlier);
	if (!tail && jint(j, "later", &later) && later > 0)
		errmsg("%" PRId64 " later entries not shown (go on with --since %" PRId64 ")",
		       later, last);
}

#define JOURNAL_ALL_PAGE 1000	/* entries per request of journal --all */

/* pool availability POOL: free GPUs per slot (no booking is shown, whose or not). */
static int pool_availability(struct cli *cli, struct cmd_args *a)
{
	const char *step = flag(a, "step");
	char secs[24];
	struct req r;
	json_t *j, *s;
	size_t i;
	int rc;

	if (a->argc != 2)
		return usage_error(a->cmd, "pool availability needs a POOL");
	if ((rc = check_time("--from", flag(a, "from"))) ||
	    (rc = check_time("--to", flag(a, "to"))))
		return rc;
	if (step) {
		int64_t d;
		if (duration_parse(step, &d) != 0 || d <= 0) {
			errmsg("--step: not a duration (90s, 15m, 2h, 3d, 1w, 1d12h): '%s'", step);
			return EXIT_DATAERR;
		}
		snprintf(secs, sizeof(secs), "%" PRId64, d);
	}
	req_init(&r, PROTO_AVAILABILITY);
	r.params[0] = a->argv[1];
	req_query(cli, &r, FIELD_FROM, flag(a, "from"));
	req_query(cli, &r, FIELD_TO, flag(a, "to"));
	req_query(cli, &r, FIELD_STEP, step ? secs : NULL);
	rc = api_call(cli, &r, &j);
	req_free(&r);
	if (rc != 0 || cli->json)
		goto out;

	print_slots_title(j);

	static const char *const head[] = { "START", "END", "FREE", "CAPACITY" };
	struct table t;
	table_init(&t, 4, head, 0xc);
	json_array_foreach(jget(j, "slots"), i, s) {
		char *row[] = { jtext(s, "start"), jtext(s, "end"), jtext(s, "free"),
				jtext(s, "capacity") };
		table_add(&t, row);
	}
	table_print(&t, stdout);
	table_free(&t);
out:
	json_decref(j);
	return rc;
}

/* pool SUB ...: what concerns one pool. */
/* pool cut: capacity from --at drops to --gpus (default 0); what no longer fits is cut. */
static int pool_cut(struct cli *cli, struct cmd_args *a)
{
	static const char *const req[] = { "at", "reason", NULL };
	int64_t n = 0;
	struct req r;
	json_t *j = NULL, *e;
	size_t i;
	int rc;

	if (a->argc < 2)
		return usage_error(a->cmd, "pool cut needs a POOL");
	if ((rc = require(a, req)) || (rc = check_time("--at", flag(a, "at"))) ||
	    (flag(a, "gpus") && (rc = parse_int("--gpus", flag(a, "gpus"), 0, &n))))
		return rc;
	req_init(&r, PROTO_POOL_CUT);
	r.params[0] = a->argv[1];
	req_str(&r, FIELD_AT, flag(a, "at"));
	req_int(&r, FIELD_GPUS, n);
	req_str(&r, FIELD_REASON, flag(a, "reason"));
	rc = api_call(cli, &r, &j);
	if (rc == 0 && !cli->json) {
		char *refund = jhours(j, "refund_gpu_seconds");
		printf("pool %s holds %s GPUs from %s; %zu cut, %zu revoked, %s GPU-hours refunded\n",
		       jsv(j, "pool"), jsv(j, "capacity"), jsv(j, "at"),
		       json_array_size(jget(j, "cut")), json_array_size(jget(j, "revoked")), refund);
		free(refund);
		json_array_foreach(jget(j, "cut"), i, e) {
			char *h = jhours(e, "refund_gpu_seconds");
			printf("  cut     %s (%s) at %s, %s GPU-hours refunded\n", jsv(e, "allocation"),
			       jsv(e, "consortium"), jsv(e, "end"), h);
			free(h);
		}
		json_array_foreach(jget(j, "revoked"), i, e) {
			char *h = jhours(e, "refund_gpu_seconds");
			printf("  revoked %s (%s), %s GPU-hours refunded\n", jsv(e, "allocation"),
			       jsv(e, "consortium"), h);
			free(h);
		}
	}
	json_decref(j);
	req_free(&r);
	return rc;
}

static int cmd_pool(struct cli *cli, struct cmd_args *a)
{
	if (strcmp(a->argv[0], "availability") == 0)
		return pool_availability(cli, a);
	if (strcmp(a->argv[0], "cut") == 0)
		return pool_cut(cli, a);
	return usage_error(a->cmd, "unknown pool command '%s'", a->argv[0]);
}

static int cmd_journal(struct cli *cli, struct cmd_args *a)
{
	struct journal_ask q = { .since = -1, .limit = 100 };
	bool all = flag(a, "all") != NULL;
	int64_t retry = 30;
	int rc;

	if ((rc = consortium_filter(a, &q.consortium)) ||
	    (flag(a, "since") && (rc = parse_int("--since", flag(a, "since"), 0, &q.since))) ||
	    (flag(a, "limit") && (rc = parse_int("--limit", flag(a, "limit"), 1, &q.limit))) ||
	    (flag(a, "retry") && (rc = parse_int("--retry", flag(a, "retry"), 0, &retry))))
		return rc;
	if (all && flag(a, "limit"))
		return usage_error(a->cmd, "--all and --limit exclude each other");
	if (flag(a, "retry") && !flag(a, "follow"))
		return usage_error(a->cmd, "--retry goes with --follow");
	if (q.limit > 100000) {
		errmsg("--limit: at most 100000 (--all shows every entry): '%s'", flag(a, "limit"));
		return EXIT_DATAERR;
	}
	if (flag(a, "follow")) {
		if (all && q.since < 0)
			q.since = 0;
		return journal_follow(cli, &q, retry);
	}

	/* --all: page after page from since (or the first entry) to the head */
	json_t *j = NULL, *merged = NULL, *e;
	size_t i;
	if (all) {
		q.since = q.since < 0 ? 0 : q.since;
		q.limit = JOURNAL_ALL_PAGE;
		cli->hold = true;
	}
	for (;;) {
		rc = journal_get(cli, &q, &j);
		if (rc != 0 || !all)
			break;
		int64_t later = 0, last = 0;
		const json_t *page = jget(j, "entries");
		if (!merged) {
			merged = j;
		} else {
			json_array_extend(jget(merged, "entries"), (json_t *)page);
			json_object_set(merged, "later", jget(j, "later"));
			json_decref(j);
		}
		j = NULL;
		jint(json_array_get(page, json_array_size(page) - 1), "seq", &last);
		if (!jint(merged, "later", &later) || later == 0 || last <= q.since)
			break;
		q.since = last;
	}
	cli->hold = false;
	if (all) {
		j = merged;
		if (rc == 0 && cli->json)
			print_json(j);
	}
	if (rc != 0 || cli->json)
		goto out;
	struct table t;
	table_init(&t, ARRAY_SIZE(journal_head), journal_head, JOURNAL_RIGHT);
	json_array_foreach(jget(j, "entries"), i, e) {
		char *row[ARRAY_SIZE(journal_head)];
		journal_row(e, row);
		table_add(&t, row);
	}
	if (t.nrows)
		table_print(&t, stdout);
	else
		puts("no journal entries");
	table_free(&t);
out:
	if (rc == 0 && !all)
		journal_note(j, q.since < 0);
	json_decref(rc == 0 ? j : merged);
	return rc;
}

/* backup: the body goes to a file as it arrives; an error body is kept for handle_reply. */
struct download {
	struct cli *cli;
	int fd;
	size_t bytes;
	struct buf err;		/* the body of a non-2xx answer */
	bool write_failed;
};

static size_t download_write(char *p, size_t size, size_t n, void *arg)
{
	struct download *d = arg;
	size_t len = size * n;
	long status = 0;

	curl_easy_getinfo(d->cli->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status >= 300) {
		if (d->err.len + len > MAX_REPLY)
			return 0;
		buf_append(&d->err, p, len);
		return len;
	}
	for (size_t done = 0; done < len;) {
		ssize_t w = write(d->fd, p + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			d->write_failed = true;
			return 0;
		}
		done += (size_t)w;
	}
	d->bytes += len;
	return len;
}

/* Syncs and closes *fd (set to -1), then renames part to file: 0 or an errno. */
static int finish_file(int *fd, const char *part, const char *file)
{
	int err = fsync(*fd) != 0 ? errno : 0;
	if (close(*fd) != 0 && err == 0)
		err = errno;
	*fd = -1;
	if (err == 0 && rename(part, file) != 0)
		err = errno;
	return err;
}

/*
 * backup FILE: the daemon's consistent copy of its database, written to
 * FILE.partial, synced, then renamed to FILE, so a FILE that exists is
 * whole. An existing FILE is never overwritten.
 */
static int cmd_backup(struct cli *cli, struct cmd_args *a)
{
	const char *file = a->argv[0];
	char *part = xasprintf("%s.partial", file);
	struct download d = { .cli = cli, .fd = -1 };
	struct req r;
	int rc;

	if (access(file, F_OK) == 0) {
		errmsg("%s exists; not overwriting it", file);
		rc = EXIT_DATAERR;
		goto out;
	}
	d.fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (d.fd < 0) {
		errmsg("cannot create %s: %s", part, strerror(errno));
		rc = EXIT_DATAERR;
		goto out;
	}
	req_init(&r, PROTO_BACKUP);
	char *path = req_path(cli, &r);
	struct curl_slist *h = http_setup(cli, proto_request(r.id)->method, path, "");
	curl_easy_setopt(cli->curl, CURLOPT_WRITEFUNCTION, download_write);
	curl_easy_setopt(cli->curl, CURLOPT_WRITEDATA, &d);
	CURLcode cc = curl_easy_perform(cli->curl);
	long status = 0;
	curl_easy_getinfo(cli->curl, CURLINFO_RESPONSE_CODE, &status);
	if (d.write_failed) {
		errmsg("cannot write %s: %s", part, strerror(errno));
		rc = EXIT_SOFTWARE;
	} else if (cc != CURLE_OK) {
		rc = transport_error(cli, cc, false);
	} else if (status < 200 || status >= 300) {
		json_t *j = NULL;
		rc = handle_reply(cli, status, &d.err, &j);
		json_decref(j);
	} else if ((rc = finish_file(&d.fd, part, file)) != 0) {
		errmsg("cannot finish %s: %s", file, strerror(rc));
		rc = EXIT_SOFTWARE;
	} else {
		json_t *o = cli->json ? json_pack("{s:{s:s, s:I}}", "backup", "file", file,
						  "bytes", (json_int_t)d.bytes) : NULL;
		if (o)
			print_json(o);
		json_decref(o);
		if (!cli->json)
			printf("backed up %zu bytes to %s; check it with gpuledgerd --verify-db %s\n",
			       d.bytes, file, file);
	}
	curl_slist_free_all(h);
	free(path);
	req_free(&r);
	buf_free(&d.err);
out:
	if (d.fd >= 0)
		close(d.fd);
	if (rc != 0)
		unlink(part);
	free(part);
	return rc;
}

static int cmd_verify(struct cli *cli, struct cmd_args *a)
{
	json_t *j, *p;
	size_t i;
	int rc = api_get(cli, PROTO_VERIFY, &j);
	if (rc != 0)
		return rc;

	bool ok = json_is_true(jget(j, "ok"));
	if (!cli->json && ok) {
		const json_t *head = jget(j, "head");
		char *n = jtext(j, "entries"), *seq = jtext(head, "seq");
		printf("ok: %s entries, head seq %s hash %s\n", n, seq,
		       jsv(head, "hash"));
		free(n);
		free(seq);
	} else if (!cli->json) {
		char *bad = jtext(j, "first_bad_seq");
		size_t shown = 0;
		json_array_foreach(jget(j, "problems"), i, p) {
			const char *s = json_string_value(p);
			unsigned long long seq;
			int off = 0;
			if (!s)
				continue;
			/* "seq 12: hash mismatch" reads "FAILED at seq 12: hash mismatch" */
			if (sscanf(s, "seq %llu: %n", &seq, &off) == 1 && off > 0)
				printf("FAILED at seq %llu: %s\n", seq, s + off);
			else
				printf("FAILED at seq %s: %s\n", bad, s);
			shown++;
		}
		if (!shown)
			printf("FAILED at seq %s\n", bad);
		free(bad);
	}
	json_decref(j);
	return ok ? 0 : EXIT_REFUSED;
}

/*
 * statement verify: the checks of one statement, offline. A problem goes
 * into *why (static or malloc'd into *owned) with the seq it is at.
 */
struct stmt_check {
	const char *why;
	char *owned;
	int64_t seq;		/* where it failed; 0 = the document itself */
	size_t entries;
	int64_t first, last;
};

static bool stmt_hash(const json_t *o, const char *key, uint8_t out[HASH_LEN])
{
	const char *s = jstr(o, key);
	return s && strlen(s) == HASH_HEX_LEN && hash_unhex(s, out) == 0;
}

static bool stmt_fail(struct stmt_check *k, int64_t seq, const char *why)
{
	k->seq = seq;
	k->why = why;
	return false;
}

/* Recomputes every entry's canonical encoding and the view chain. */
static bool statement_check(const json_t *doc, struct stmt_check *k)
{
	uint8_t prev[HASH_LEN], head[HASH_LEN], want[HASH_LEN], got[HASH_LEN];
	const char *cons = jstr(doc, "consortium");
	const json_t *arr = jget(doc, "entries"), *item;
	int64_t since, last = 0;
	size_t i;

	if (!json_is_object(doc) || !jstr(doc, "statement") ||
	    strcmp(jstr(doc, "statement"), JOURNAL_STATEMENT_FORMAT) != 0)
		return stmt_fail(k, 0, "not a statement (\"statement\": \""
				 JOURNAL_STATEMENT_FORMAT "\" missing)");
	if (!cons || !jint(doc, "since", &since) || since < 0 || !json_is_array(arr) ||
	    !stmt_hash(doc, "view_base", prev) || !stmt_hash(doc, "view_head", head))
		return stmt_fail(k, 0, "the statement lacks consortium, since, view_base, "
				 "view_head or entries, or one is of the wrong type");
	last = since;
	json_array_foreach(arr, i, item) {
		struct jentry e;
		const char *why;
		json_t *canon = json_is_object(item) ? json_deep_copy(item) : NULL;
		bool has_view = canon && stmt_hash(canon, "view_hash", got);

		if (canon)
			json_object_del(canon, "view_hash");
		int rc = has_view ? jentry_from_canonical_json(canon, &e, &why) : -1;
		json_decref(canon);
		if (rc != 0) {
			int64_t seq = 0;
			jint(item, "seq", &seq);
			return stmt_fail(k, seq, has_view ? why : "an entry without a view_hash");
		}
		k->seq = e.seq;
		if (e.seq <= last)
			k->why = "the entries are not in ascending seq order after 'since'";
		else if (e.consortium == NULL || strcmp(e.consortium, cons) != 0)
			k->why = "an entry of another consortium";
		jentry_view_hash(&e, prev, want);
		if (!k->why && sodium_memcmp(want, got, HASH_LEN) != 0)
			k->why = "view_hash does not match the entry and the one before it "
				 "(the entry or an earlier one was altered, or one is missing)";
		jentry_clear(&e);
		if (k->why)
			return false;
		if (k->entries++ == 0)
			k->first = k->seq;
		last = k->last = k->seq;
		memcpy(prev, got, HASH_LEN);
	}
	if (sodium_memcmp(prev, head, HASH_LEN) != 0)
		return stmt_fail(k, 0, "view_head is not the last entry's view_hash "
				 "(entries were removed from the end)");
	return true;
}

static int statement_verify(struct cli *cli, const char *path)
{
	struct stmt_check k = { 0 };
	json_error_t je;
	json_t *doc;
	FILE *f = fopen(path, "r");

	if (!f) {
		errmsg("statement verify %s: %s", path, strerror(errno));
		return EXIT_DATAERR;
	}
	doc = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
	fclose(f);
	bool ok = doc && statement_check(doc, &k);
	if (!doc)
		k.why = k.owned = xasprintf("not a JSON document (line %d: %s)", je.line, je.text);
	if (cli->json) {
		json_t *o = ok ? json_pack("{s:b, s:s, s:I, s:o}", "ok", 1,
					   "consortium", jsv(doc, "consortium"),
					   "entries", (json_int_t)k.entries,
					   "view_head", json_incref(jget(doc, "view_head")))
			       : json_pack("{s:b, s:o, s:s}", "ok", 0, "first_bad_seq",
					   k.seq ? json_integer(k.seq) : json_null(),
					   "problem", k.why);
		print_json(o);
		json_decref(o);
	} else if (ok && k.entries) {
		printf("ok: %zu entries of %s, seq %" PRId64 " to %" PRId64 ", view hash %s\n",
		       k.entries, jsv(doc, "consortium"), k.first, k.last, jsv(doc, "view_head"));
	} else if (ok) {
		int64_t since = 0;
		jint(doc, "since", &since);
		printf("ok: no entries of %s after seq %" PRId64 ", view hash %s\n",
		       jsv(doc, "consortium"), since, jsv(doc, "view_head"));
	} else if (k.seq) {
		printf("FAILED at seq %" PRId64 ": %s\n", k.seq, k.why);
	} else {
		printf("FAILED: %s\n", k.why);
	}
	free(k.owned);
	json_decref(doc);
	return ok ? 0 : EXIT_REFUSED;
}

static int cmd_statement(struct cli *cli, struct cmd_args *a)
{
	struct req r;
	json_t *j;
	int64_t n;
	int rc;

	if (a->argc > 0) {
		if (strcmp(a->argv[0], "verify") != 0)
			return usage_error(a->cmd, "unknown statement command '%s'", a->argv[0]);
		if (a->argc != 2)
			return usage_error(a->cmd, "statement verify needs a FILE");
		if (flag(a, "since") || flag(a, "consortium"))
			return usage_error(a->cmd, "statement verify takes only a FILE");
		return statement_verify(cli, a->argv[1]);
	}
	if (flag(a, "since") && (rc = parse_int("--since", flag(a, "since"), 0, &n)))
		return rc;
	req_init(&r, PROTO_STATEMENT);
	req_query(cli, &r, FIELD_SINCE, flag(a, "since"));
	req_query(cli, &r, FIELD_CONSORTIUM, flag(a, "consortium"));
	rc = api_call(cli, &r, &j);
	req_free(&r);
	if (rc == 0)
		print_json(j);	/* the statement is a JSON document, for a file */
	json_decref(j);
	return rc;
}

static int cmd_clock(struct cli *cli, struct cmd_args *a)
{
	const char *sub = a->argc ? a->argv[0] : "show";
	struct req r;
	json_t *j;
	int rc;

	req_init(&r, PROTO_CLOCK_SET);
	if (strcmp(sub, "show") == 0) {
		if (a->argc > 1)
			return usage_error(a->cmd, "clock show takes no argument");
		rc = api_get(cli, PROTO_CLOCK_GET, &j);
	} else if (strcmp(sub, "set") == 0 || strcmp(sub, "advance") == 0) {
		bool set = sub[0] == 's';
		int64_t d;
		if (a->argc != 2)
			return usage_error(a->cmd, "clock %s needs %s", sub,
					   set ? "a time" : "a duration");
		if (set && (rc = check_time("clock set", a->argv[1])))
			return rc;
		if (!set && duration_parse(a->argv[1], &d) != 0) {
			errmsg("clock advance: not a duration (90s, 15m, 2h, 3d, 1w, 1d12h): '%s'",
			       a->argv[1]);
			return EXIT_DATAERR;
		}
		req_str(&r, set ? FIELD_SET : FIELD_ADVANCE, a->argv[1]);
		rc = api_call(cli, &r, &j);
	} else {
		return usage_error(a->cmd, "unknown clock command '%s'", sub);
	}
	if (rc == 0 && !cli->json)
		printf("%s (%s)\n", jsv(j, "clock"), jsv(j, "clock_mode"));
	json_decref(j);
	req_free(&r);
	return rc;
}

static int cmd_token(struct cli *cli, struct cmd_args *a)
{
	const char *name = a->argc > 1 ? a->argv[1] : NULL;
	const char *role = flag(a, "role"), *cons = flag(a, "consortium");
	static const char *const req[] = { "role", NULL };
	int rc;

	if (strcmp(a->argv[0], "new") != 0)
		return usage_error(a->cmd, "unknown token command '%s'", a->argv[0]);
	if (!name)
		return usage_error(a->cmd, "token new needs a NAME");
	if ((rc = require(a, req)))
		return rc;
	if (strcmp(role, "admin") && strcmp(role, "operator") &&
	    strcmp(role, "agent") && strcmp(role, "consortium"))
		return usage_error(a->cmd, "--role: one of admin, operator, agent, consortium");
	if (strcmp(role, "consortium") == 0 && !cons)
		return usage_error(a->cmd, "--role consortium needs --consortium");
	if (strcmp(role, "consortium") != 0 && cons)
		return usage_error(a->cmd, "--consortium goes with --role consortium only");
	if (strlen(name) > 64 || !id_valid(name)) {
		errmsg("token name: up to 64 letters, digits, '-', '_' and '.', "
		       "starting with a letter or digit: '%s'", name);
		return EXIT_DATAERR;
	}
	if (cons && !slug_valid(cons)) {
		errmsg("--consortium: not a consortium id: '%s'", cons);
		return EXIT_DATAERR;
	}

	unsigned char raw[32], hash[crypto_hash_sha256_BYTES];
	char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
	char hex[2 * crypto_hash_sha256_BYTES + 1];
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	char *token = xasprintf("glt_%s", b64);
	crypto_hash_sha256(hash, (const unsigned char *)token, strlen(token));
	sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
	char *cpart = cons ? xasprintf(", consortium: %s", cons) : xstrdup("");

	if (cli->json) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:s?, s:s}", "token", token,
				      "name", name, "role", role, "consortium",
				      cons, "sha256", hex);
		print_json(o);
		json_decref(o);
	} else {
		fputs("# the token (give it to its user in a file of mode 0600; "
		      "it is not stored anywhere):\n", stderr);
		printf("%s\n", token);
		fputs("# the line for access.tokens in the daemon's config "
		      "(then SIGHUP the daemon):\n", stderr);
		printf("- {name: %s, role: %s%s, sha256: \"%s\"}\n", name, role,
		       cpart, hex);
	}
	sodium_memzero(raw, sizeof(raw));
	sodium_memzero(b64, sizeof(b64));
	sodium_memzero(token, strlen(token));
	free(token);
	free(cpart);
	return 0;
}

static void print_help(FILE *f)
{
	fputs("usage: gpuledger [OPTIONS] COMMAND [ARGS]\n"
	      "Client of gpuledgerd, the GPU-allocation ledger. A unique prefix of a\n"
	      "command is enough; 'gpuledger COMMAND --help' shows its usage.\n\n"
	      "commands:\n", f);
	for (size_t i = 0; i < cmd_count; i++)
		fprintf(f, "  %s%s%s\n      %s\n", cmd_table[i].name,
			*cmd_table[i].usage ? " " : "", cmd_table[i].usage,
			cmd_table[i].help);
	fputs("\noptions (before or after the command):\n"
	      "  --socket PATH      the daemon's Unix socket ($GPULEDGER_SOCKET, "
	      "default " DEFAULT_SOCKET ")\n"
	      "  --url URL          talk HTTP(S) to URL instead ($GPULEDGER_URL)\n"
	      "  --token-file FILE  bearer token for --url ($GPULEDGER_TOKEN_FILE)\n"
	      "  --json             print the API's JSON instead of tables\n"
	      "  --request-id ID    the Idempotency-Key of a change (default: a "
	      "fresh UUID)\n"
	      "  --dry-run          of a change: run every rule, print what would "
	      "happen, change nothing\n"
	      "  -h, --help         this help\n"
	      "  --version          the version\n\n"
	      "exit codes: 0 ok, 1 refused/not found/verify failed, 64 usage, "
	      "65 bad data,\n"
	      "69 daemon unreachable, 70 internal error, 77 permission denied\n", f);
}

static int cmd_help(struct cli *cli, struct cmd_args *a);
static int cmd_completion(struct cli *cli, struct cmd_args *a);

/* The one table of commands; help and prefix lookup read it. */
static const struct cmd_entry cmd_table[] = {
	{
		.name = "status", .usage = "",
		.help = "daemon version, clock, uptime, journal head and counters",
		.exec = cmd_status,
	},
	{
		.name = "program", .usage = "",
		.help = "the program's phases, pools and consortia",
		.exec = cmd_program,
	},
	{
		.name = "quota",
		.usage = "[CONSORTIUM | --consortium C] [--phase P] [--gpu MODEL] [--at T]",
		.help = "balances in GPU-hours per consortium, phase and GPU model (--at: as they stood then)",
		.flags = { { "phase", FLAG_VALUE }, { "gpu", FLAG_VALUE },
			   { "consortium", FLAG_VALUE }, { "at", FLAG_VALUE } },
		.max_args = 1, .exec = cmd_quota,
	},
	{
		.name = "grant",
		.usage = "CONSORTIUM --phase P --gpu MODEL --gpu-hours H "
			 "[--max-gpus N] [--oversubscribe] --reason TEXT",
		.help = "grant GPU-hours (negative: take back), or set the GPU cap",
		.flags = { { "phase", FLAG_VALUE }, { "gpu", FLAG_VALUE },
			   { "gpu-hours", FLAG_VALUE }, { "max-gpus", FLAG_VALUE },
			   { "reason", FLAG_TEXT }, { "oversubscribe", FLAG_BOOL } },
		.min_args = 1, .max_args = 1, .exec = cmd_grant,
	},
	{
		.name = "transfer",
		.usage = "FROM TO --phase P --gpu MODEL --gpu-hours H "
			 "[--oversubscribe] --reason TEXT",
		.help = "move available GPU-hours between consortia (FROM may be 'reserve')",
		.flags = { { "phase", FLAG_VALUE }, { "gpu", FLAG_VALUE },
			   { "gpu-hours", FLAG_VALUE }, { "reason", FLAG_TEXT },
			   { "oversubscribe", FLAG_BOOL } },
		.min_args = 2, .max_args = 2, .exec = cmd_transfer,
	},
	{
		.name = "budget", .usage = "[--phase P]",
		.help = "procured, granted, committed and reserve GPU-hours per phase and model",
		.flags = { { "phase", FLAG_VALUE } },
		.exec = cmd_budget,
	},
	{
		.name = "allocate",
		.usage = "CONSORTIUM --gpus N (--pool POOL | --gpu MODEL) --start T "
			 "(--end T | --hours H) [--earliest] [--note TEXT]",
		.help = "book GPUs of a pool for a consortium",
		.flags = { { "gpus", FLAG_VALUE }, { "pool", FLAG_VALUE },
			   { "gpu", FLAG_VALUE }, { "start", FLAG_VALUE },
			   { "end", FLAG_VALUE }, { "hours", FLAG_VALUE },
			   { "earliest", FLAG_BOOL }, { "note", FLAG_TEXT } },
		.min_args = 1, .max_args = 1, .exec = cmd_allocate,
	},
	{
		.name = "allocations",
		.usage = "[CONSORTIUM | --consortium C] [--state S] [--pool P]",
		.help = "list allocations",
		.flags = { { "consortium", FLAG_VALUE }, { "state", FLAG_VALUE },
			   { "pool", FLAG_VALUE } },
		.max_args = 1, .exec = cmd_allocations,
	},
	{
		.name = "show", .usage = "ALLOCATION",
		.help = "one allocation",
		.min_args = 1, .max_args = 1, .exec = cmd_show,
	},
	{
		.name = "cancel", .usage = "ALLOCATION [--reason TEXT]",
		.help = "cancel a reserved allocation (full refund)",
		.flags = { { "reason", FLAG_TEXT } },
		.min_args = 1, .max_args = 1, .exec = cmd_cancel,
	},
	{
		.name = "release", .usage = "ALLOCATION [--at T] [--reason TEXT]",
		.help = "end an allocation early (default now), refund the rest",
		.flags = { { "at", FLAG_VALUE }, { "reason", FLAG_TEXT } },
		.min_args = 1, .max_args = 1, .exec = cmd_release,
	},
	{
		.name = "modify",
		.usage = "ALLOCATION [--start T] [--end T] [--gpus N] [--pool POOL] --reason TEXT",
		.help = "change a reservation (or the end of an active allocation), re-checked by the rules",
		.flags = { { "start", FLAG_VALUE }, { "end", FLAG_VALUE }, { "gpus", FLAG_VALUE },
			   { "pool", FLAG_VALUE }, { "reason", FLAG_TEXT } },
		.min_args = 1, .max_args = 1, .exec = cmd_modify,
	},
	{
		.name = "phase", .usage = "move PHASE --end T --reason TEXT [--cut]",
		.help = "move a phase's end (and the touching next phase's start); --cut cuts what crosses it",
		.flags = { { "end", FLAG_VALUE }, { "reason", FLAG_TEXT }, { "cut", FLAG_BOOL } },
		.min_args = 1, .max_args = 2, .exec = cmd_phase,
	},
	{
		.name = "eliminate", .usage = "CONSORTIUM --effective T --reason TEXT",
		.help = "record an elimination: later allocations and quota are revoked",
		.flags = { { "effective", FLAG_VALUE }, { "reason", FLAG_TEXT } },
		.min_args = 1, .max_args = 1, .exec = cmd_eliminate,
	},
	{
		.name = "reinstate", .usage = "CONSORTIUM --effective T --reason TEXT",
		.help = "make an eliminated consortium active again (repechage)",
		.flags = { { "effective", FLAG_VALUE }, { "reason", FLAG_TEXT } },
		.min_args = 1, .max_args = 1, .exec = cmd_reinstate,
	},
	{
		.name = "meter",
		.usage = "(ALLOCATION | CONSORTIUM --phase P --gpu MODEL) --source CLUSTER "
			 "--job ID (--gpu-seconds N | --gpu-hours H) [--end T]",
		.help = "record a job's metered use (admin or agent; a repeat changes nothing)",
		.flags = { { "source", FLAG_VALUE }, { "job", FLAG_VALUE },
			   { "gpu-seconds", FLAG_VALUE }, { "gpu-hours", FLAG_VALUE },
			   { "phase", FLAG_VALUE }, { "gpu", FLAG_VALUE },
			   { "end", FLAG_VALUE } },
		.min_args = 1, .max_args = 1, .exec = cmd_meter,
	},
	{
		.name = "report", .usage = "usage [--phase P] [--csv]",
		.help = "per consortium and GPU model: granted, committed, consumed, used, "
			"expired and utilisation (used / consumed)",
		.flags = { { "phase", FLAG_VALUE }, { "csv", FLAG_BOOL } },
		.min_args = 1, .max_args = 1, .exec = cmd_report,
	},
	{
		.name = "export", .usage = "kueue [--at T] | ood-balances FILE",
		.help = "Kueue queues of the allocations running at T (YAML; --json: a List), "
			"or Open OnDemand's balance file",
		.flags = { { "at", FLAG_VALUE } },
		.min_args = 1, .max_args = 2, .exec = cmd_export,
	},
	{
		.name = "calendar", .usage = "POOL [--from T] [--to T]",
		.help = "booked GPUs against capacity over time, as a chart",
		.flags = { { "from", FLAG_VALUE }, { "to", FLAG_VALUE } },
		.min_args = 1, .max_args = 1, .exec = cmd_calendar,
	},
	{
		.name = "pool", .usage = "availability POOL [--from T] [--to T] [--step DURATION]"
			 " | pool cut POOL --at T [--gpus N] --reason TEXT",
		.help = "free GPUs of a pool per slot (consortia too: nobody's bookings shown);"
			" cut a pool's capacity from T (admin)",
		.flags = { { "from", FLAG_VALUE }, { "to", FLAG_VALUE }, { "step", FLAG_VALUE },
			   { "at", FLAG_VALUE }, { "gpus", FLAG_VALUE }, { "reason", FLAG_TEXT } },
		.min_args = 1, .max_args = 2, .exec = cmd_pool,
	},
	{
		.name = "journal",
		.usage = "[CONSORTIUM | --consortium C] [--since SEQ] [--limit N | --all] "
			 "[--follow [--retry S]]",
		.help = "the last journal entries (default 100); --since pages on, --all "
			"shows all; --follow prints new ones as they commit",
		.flags = { { "consortium", FLAG_VALUE }, { "since", FLAG_VALUE },
			   { "limit", FLAG_VALUE }, { "follow", FLAG_BOOL },
			   { "all", FLAG_BOOL }, { "retry", FLAG_VALUE } },
		.max_args = 1, .exec = cmd_journal,
	},
	{
		.name = "verify", .usage = "",
		.help = "recompute the hash chain and balances (exit 1 if broken)",
		.exec = cmd_verify,
	},
	{
		.name = "backup", .usage = "FILE",
		.help = "a consistent copy of the daemon's database, into FILE (admin)",
		.min_args = 1, .max_args = 1, .exec = cmd_backup,
	},
	{
		.name = "statement",
		.usage = "[--since SEQ] [--consortium C] > FILE | statement verify FILE",
		.help = "a consortium's own entries with their proofs; verify checks one "
			"offline (exit 1 if not)",
		.flags = { { "since", FLAG_VALUE }, { "consortium", FLAG_VALUE } },
		.max_args = 2, .local_sub = "verify", .exec = cmd_statement,
	},
	{
		.name = "clock", .usage = "(show | set T | advance DURATION)",
		.help = "show or move the simulated clock (test clock only)",
		.max_args = 2, .exec = cmd_clock,
	},
	{
		.name = "token", .usage = "new NAME --role ROLE [--consortium ID]",
		.help = "make a bearer token and its config line (no daemon needed)",
		.flags = { { "role", FLAG_VALUE }, { "consortium", FLAG_VALUE } },
		.min_args = 1, .max_args = 2, .local = true, .exec = cmd_token,
	},
	{
		.name = "help", .usage = "[COMMAND]",
		.help = "this list, or one command's usage",
		.max_args = 1, .local = true, .exec = cmd_help,
	},
	{
		.name = "completion", .usage = "bash",
		.help = "print the bash completion script (made from this command table)",
		.min_args = 1, .max_args = 1, .local = true, .exec = cmd_completion,
	},
};
static const size_t cmd_count = ARRAY_SIZE(cmd_table);

/*
 * Finds a command by its name or a unique prefix of it. Returns NULL after a
 * usage message when there is none or more than one.
 */
static const struct cmd_entry *cmd_find(const char *name)
{
	const struct cmd_entry *found = NULL;
	struct buf cand = { 0 };
	size_t n = 0, len = strlen(name);

	for (size_t i = 0; i < cmd_count; i++) {
		if (strcmp(cmd_table[i].name, name) == 0) {
			buf_free(&cand);
			return &cmd_table[i];
		}
		if (len && strncmp(cmd_table[i].name, name, len) == 0) {
			found = &cmd_table[i];
			buf_printf(&cand, "%s%s", n++ ? ", " : "", found->name);
		}
	}
	if (n == 0)
		usage_error(NULL, "unknown command '%s'", name);
	else if (n > 1)
		usage_error(NULL, "ambiguous command '%s': %s", name, cand.data);
	buf_free(&cand);
	return n == 1 ? found : NULL;
}

static int cmd_help(struct cli *cli, struct cmd_args *a)
{
	if (a->argc == 0) {
		print_help(stdout);
		return 0;
	}
	const struct cmd_entry *cmd = cmd_find(a->argv[0]);
	if (!cmd)
		return EXIT_USAGE;
	print_cmd_usage(cmd, stdout, false);
	return 0;
}

/* ---- setup ---------------------------------------------------------------- */

enum { G_SOCKET, G_URL, G_TOKEN_FILE, G_JSON, G_REQUEST_ID, G_HELP, G_VERSION, G_DRY_RUN };
static const struct flag_spec global_flags[] = {
	[G_SOCKET] = { "socket", FLAG_VALUE },
	[G_URL] = { "url", FLAG_VALUE },
	[G_TOKEN_FILE] = { "token-file", FLAG_VALUE },
	[G_JSON] = { "json", FLAG_BOOL },
	[G_REQUEST_ID] = { "request-id", FLAG_VALUE },
	[G_HELP] = { "help", FLAG_BOOL },
	[G_VERSION] = { "version", FLAG_BOOL },
	[G_DRY_RUN] = { "dry-run", FLAG_BOOL },
};

/*
 * completion bash: the script completes command names, then each command's
 * own options and the global ones, all read from the tables above, so it
 * cannot fall behind them.
 */
static int cmd_completion(struct cli *cli, struct cmd_args *a)
{
	if (strcmp(a->argv[0], "bash") != 0)
		return usage_error(a->cmd, "only 'bash' completion exists");
	fputs("# bash completion for gpuledger; made by `gpuledger completion bash`\n"
	      "_gpuledger() {\n"
	      "\tlocal cur=${COMP_WORDS[COMP_CWORD]} cmd= i words\n"
	      "\tfor ((i = 1; i < COMP_CWORD; i++)); do\n"
	      "\t\tcase ${COMP_WORDS[i]} in\n"
	      "\t\t", stdout);
	/* a global option's value is not the command */
	bool first = true;
	for (size_t i = 0; i < ARRAY_SIZE(global_flags); i++) {
		if (global_flags[i].kind != FLAG_VALUE)
			continue;
		printf("%s--%s", first ? "" : " | ", global_flags[i].name);
		first = false;
	}
	fputs(") ((i++)) ;;\n"
	      "\t\t-*) ;;\n"
	      "\t\t*) cmd=${COMP_WORDS[i]}; break ;;\n"
	      "\t\tesac\n"
	      "\tdone\n"
	      "\tlocal global='", stdout);
	for (size_t i = 0; i < ARRAY_SIZE(global_flags); i++)
		printf("%s--%s", i ? " " : "", global_flags[i].name);
	fputs("'\n\tcase $cmd in\n\t'')\n\t\twords='", stdout);
	for (size_t i = 0; i < cmd_count; i++)
		printf("%s%s", i ? " " : "", cmd_table[i].name);
	fputs(" '$global ;;\n", stdout);
	for (size_t i = 0; i < cmd_count; i++) {
		const struct cmd_entry *c = &cmd_table[i];
		printf("\t%s)\n\t\twords='", c->name);
		for (int f = 0; f < MAX_FLAGS && c->flags[f].name; f++)
			printf("%s--%s", f ? " " : "", c->flags[f].name);
		fputs(" '$global ;;\n", stdout);
	}
	fputs("\tesac\n"
	      "\t# shellcheck disable=SC2207\n"
	      "\tCOMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
	      "}\n"
	      "complete -o default -F _gpuledger gpuledger\n", stdout);
	return 0;
}

/* Index of name in specs[0..n) (n = -1: up to a NULL name), or -1. */
static int flag_index(const struct flag_spec *specs, int n, const char *name,
		      size_t len)
{
	for (int i = 0; n < 0 ? specs[i].name != NULL : i < n; i++)
		if (strlen(specs[i].name) == len &&
		    strncmp(specs[i].name, name, len) == 0)
			return i;
	return -1;
}

/* s as it may be shown in a message: bytes that are not UTF-8 as \xHH (malloc'd). */
static char *shown(const char *s)
{
	struct buf b = { 0 };
	size_t len = strlen(s);
	uint32_t cp;

	buf_puts(&b, "");
	for (size_t i = 0, n; i < len; i += n) {
		if ((n = utf8_next(s + i, len - i, &cp)) == 0) {
			buf_printf(&b, "\\x%02x", (unsigned char)s[i]);
			n = 1;
		} else if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
			buf_printf(&b, "\\u%04x", (unsigned)cp);
		} else {
			buf_append(&b, s + i, n);
		}
	}
	return buf_take(&b);
}

/*
 * Every argument goes into the request's JSON or URL, so it must be UTF-8
 * (jansson cannot encode anything else); a text option also obeys the
 * API's text rule (grammar.h text_check()). Returns 0, or EXIT_DATAERR
 * after naming the argument.
 */
static int check_arg(const char *what, const char *s, bool text)
{
	size_t at;
	uint32_t cp;
	int rc = text_check(s, strlen(s), &at, &cp);
	char *v;

	if (rc == 0 || (rc == -EINVAL && !text))
		return 0;
	v = shown(s);
	if (rc == -EILSEQ)
		errmsg("%s is not valid UTF-8 (at byte %zu): '%s'", what, at, v);
	else
		errmsg("%s must not contain control characters (U+%04X at byte %zu): '%s'",
		       what, (unsigned)cp, at, v);
	free(v);
	return EXIT_DATAERR;
}

/* check_arg() of every argument and option value of the command line. */
static int check_args(const struct cmd_args *a, const char *url)
{
	int rc = 0;

	for (int i = 0; i < a->argc && rc == 0; i++) {
		char *what = xasprintf("argument %d of %s", i + 1, a->cmd->name);
		rc = check_arg(what, a->argv[i], false);
		free(what);
	}
	for (int i = 0; i < MAX_FLAGS && a->cmd->flags[i].name && rc == 0; i++) {
		if (!a->val[i] || a->cmd->flags[i].kind == FLAG_BOOL)
			continue;
		char *what = xasprintf("--%s", a->cmd->flags[i].name);
		rc = check_arg(what, a->val[i], a->cmd->flags[i].kind == FLAG_TEXT);
		free(what);
	}
	if (rc == 0 && url)
		rc = check_arg("--url", url, false);
	return rc;
}

/* Parses the command line into cli and a. Returns -1 to go on, else an exit code. */
static int parse_args(int argc, char **argv, struct cli *cli, struct cmd_args *a)
{
	const char *gval[ARRAY_SIZE(global_flags)] = { 0 };
	bool dashdash = false;

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (dashdash || arg[0] != '-' || arg[1] == '\0') {
			if (!a->cmd) {
				if (!(a->cmd = cmd_find(arg)))
					return EXIT_USAGE;
			} else if (a->argc == a->cmd->max_args) {
				return usage_error(a->cmd, "too many arguments: '%s'", arg);
			} else {
				a->argv[a->argc++] = arg;
			}
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			dashdash = true;
			continue;
		}
		if (strcmp(arg, "-h") == 0)
			arg = "--help";
		if (arg[1] != '-')
			return usage_error(a->cmd, "unknown option '%s'", arg);

		const char *name = arg + 2, *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		const struct flag_spec *spec;
		const char **slot;
		int k = flag_index(global_flags, (int)ARRAY_SIZE(global_flags), name, len);

		if (k >= 0) {
			spec = &global_flags[k];
			slot = &gval[k];
		} else if (a->cmd && (k = flag_index(a->cmd->flags, -1, name, len)) >= 0) {
			spec = &a->cmd->flags[k];
			slot = &a->val[k];
		} else {
			return usage_error(a->cmd, "unknown option '--%.*s'%s%s",
					   (int)len, name, a->cmd ? " for " : "",
					   a->cmd ? a->cmd->name : "");
		}
		if (spec->kind == FLAG_BOOL) {
			if (eq)
				return usage_error(a->cmd, "--%s takes no value",
						   spec->name);
			if (k == G_HELP && spec == &global_flags[G_HELP] && a->cmd) {
				print_cmd_usage(a->cmd, stdout, false);
				return 0;
			}
			*slot = "";
			continue;
		}
		const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
		if (!v)
			return usage_error(a->cmd, "--%s needs a value", spec->name);
		if (*slot && spec != &global_flags[G_SOCKET] &&
		    spec != &global_flags[G_URL] && spec != &global_flags[G_TOKEN_FILE])
			return usage_error(a->cmd, "--%s given twice", spec->name);
		*slot = v;
	}

	if (gval[G_HELP]) {
		if (a->cmd)
			print_cmd_usage(a->cmd, stdout, false);
		else
			print_help(stdout);
		return 0;
	}
	if (gval[G_VERSION]) {
		printf("gpuledger %s\n", GPULEDGER_VERSION);
		return 0;
	}
	if (!a->cmd) {
		print_help(stderr);
		return EXIT_USAGE;
	}
	if (a->argc < a->cmd->min_args)
		return usage_error(a->cmd, "too few arguments for %s", a->cmd->name);

	if (gval[G_SOCKET] && gval[G_URL])
		return usage_error(a->cmd, "--socket and --url exclude each other");
	cli->json = gval[G_JSON] != NULL;
	cli->dry_run = gval[G_DRY_RUN] != NULL;
	cli->request_id = gval[G_REQUEST_ID];
	/* an option beats the environment; a --socket beats $GPULEDGER_URL */
	cli->url = gval[G_URL] ? gval[G_URL] : gval[G_SOCKET] ? NULL : env("GPULEDGER_URL");
	cli->socket = gval[G_SOCKET] ? gval[G_SOCKET] : env("GPULEDGER_SOCKET");
	if (!cli->socket)
		cli->socket = DEFAULT_SOCKET;
	cli->token_file = gval[G_TOKEN_FILE] ? gval[G_TOKEN_FILE]
					     : env("GPULEDGER_TOKEN_FILE");
	int rc = check_args(a, cli->url);
	if (rc != 0)
		return rc;
	if (cli->request_id) {
		size_t n = strlen(cli->request_id);
		bool ok = n >= 1 && n <= 128;
		for (const char *p = cli->request_id; ok && *p; p++)
			ok = *p > 0x20 && *p < 0x7f;
		if (!ok) {
			errmsg("--request-id: 1 to 128 printable ASCII characters, "
			       "no spaces: '%s'", cli->request_id);
			return EXIT_DATAERR;
		}
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct cli cli = { 0 };
	struct cmd_args a = { 0 };
	width_locale_init();
	int rc = parse_args(argc, argv, &cli, &a);

	if (rc >= 0)
		goto out;
	if (sodium_init() < 0) {
		errmsg("cannot initialise libsodium");
		rc = EXIT_SOFTWARE;
		goto out;
	}
	if (a.cmd->local || (a.cmd->local_sub && a.argc &&
			     strcmp(a.argv[0], a.cmd->local_sub) == 0)) {
		rc = a.cmd->exec(&cli, &a);
		goto out;
	}

	if ((rc = client_open(&cli)) != 0)
		goto out;
	rc = a.cmd->exec(&cli, &a);
out:
	client_close(&cli);
	if (fflush(stdout) != 0 && errno != EPIPE) {
		errmsg("cannot write the output: %s", strerror(errno));
		if (rc == 0)
			rc = EXIT_SOFTWARE;
	}
	return rc;
}
