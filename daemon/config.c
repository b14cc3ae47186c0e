/* SPDX-License-Identifier: MIT */
/*
 * The strict configuration loader. libyaml's event parser builds a small
 * tree of nodes that remember where they stand in the file (anchors,
 * aliases and tags are refused on the way, so no "billion laughs"); then
 * tables of keys, one row per key with its type, bounds, default, target
 * field and reload rule (as Redis's static_configs[]), drive the walk that
 * fills struct config, the walk that frees it and the one that keeps the
 * keys a SIGHUP cannot apply; a check per section looks across keys and
 * entries (duplicate ids, overlapping phases, dangling references). Values
 * with a grammar of their own (listen addresses, slugs, ids, hex, level
 * names) are read by the one parser the rest of the code uses (grammar.h,
 * log.h), so --check-config means what the daemon will do. Every problem
 * becomes one "FILE:LINE:COL: message" line; the walk goes on after an
 * error so that one run reports them all, sorted by position. Sections are
 * read in table order, not file order: the program's time zone first,
 * since it gives meaning to every date, and the consortia before the
 * access rules that refer to them.
 */
#include "daemon/config.h"
#include "daemon/grammar.h"
#include "daemon/log.h"
#include "daemon/timefmt.h"
#include "daemon/util.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define MAX_DEPTH 32			/* deeper nesting is refused */
#define MAX_FILE_SIZE (16 << 20)	/* a config is kilobytes */
#define DEFAULT_TZ "Asia/Seoul"

/* A node of the document, with its 1-based position. */
enum node_kind {
	NODE_SCALAR,
	NODE_SEQ,
	NODE_MAP,
};

struct node {
	enum node_kind kind;
	int line, col;
	bool plain;		/* an unquoted scalar: may be an int, bool, null */
	bool bad;		/* already reported while building: skip it */
	char *value;		/* scalar text, NUL-terminated */
	size_t len;
	struct node **items;	/* seq: the items; map: key, value, key, ... */
	size_t n, cap;
};

struct error {
	int line, col;
	size_t seq;		/* keeps the sort stable */
	char *msg;
};

struct ctx {
	const char *name;
	struct error *errs;
	size_t n_errs, cap_errs;
	int32_t tz;		/* the program's offset, once read */
	struct config *cfg;
};

/* ---- errors ------------------------------------------------------------ */

static void verrat(struct ctx *ctx, int line, int col, const char *fmt,
		   va_list ap)
{
	if (ctx->n_errs == ctx->cap_errs) {
		ctx->cap_errs = ctx->cap_errs ? 2 * ctx->cap_errs : 16;
		ctx->errs = xreallocarray(ctx->errs, ctx->cap_errs,
					  sizeof(*ctx->errs));
	}
	struct error *e = &ctx->errs[ctx->n_errs];
	e->line = line;
	e->col = col;
	e->seq = ctx->n_errs++;
	e->msg = xvasprintf(fmt, ap);
}

static void __attribute__((format(printf, 4, 5)))
errat(struct ctx *ctx, int line, int col, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verrat(ctx, line, col, fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 3, 4)))
err(struct ctx *ctx, const struct node *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verrat(ctx, n->line, n->col, fmt, ap);
	va_end(ap);
}

static int error_cmp(const void *a, const void *b)
{
	const struct error *x = a, *y = b;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sorts the errors by position and hands them over as text. */
static char *errors_take(struct ctx *ctx)
{
	struct buf b = {0};

	qsort(ctx->errs, ctx->n_errs, sizeof(*ctx->errs), error_cmp);
	for (size_t i = 0; i < ctx->n_errs; i++) {
		buf_printf(&b, "%s:%d:%d: %s\n", ctx->name, ctx->errs[i].line,
			   ctx->errs[i].col, ctx->errs[i].msg);
		free(ctx->errs[i].msg);
	}
	free(ctx->errs);
	ctx->errs = NULL;
	ctx->n_errs = ctx->cap_errs = 0;
	return buf_take(&b);
}

/* ---- the node tree ------------------------------------------------------ */

static struct node *node_new(enum node_kind kind, const yaml_mark_t *m)
{
	struct node *n = xcalloc(1, sizeof(*n));
	n->kind = kind;
	n->line = (int)m->line + 1;
	n->col = (int)m->column + 1;
	return n;
}

/* Recursion is bounded by MAX_DEPTH. */
static void node_free(struct node *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->n; i++)
		node_free(n->items[i]);
	free(n->items);
	free(n->value);
	free(n);
}

static void node_push(struct node *parent, struct node *child)
{
	if (parent->n == parent->cap) {
		parent->cap = parent->cap ? 2 * parent->cap : 8;
		parent->items = xreallocarray(parent->items, parent->cap,
					      sizeof(*parent->items));
	}
	parent->items[parent->n++] = child;
}

static bool is_null(const struct node *n)
{
	if (n->kind != NODE_SCALAR || !n->plain)
		return false;
	return n->len == 0 || strcmp(n->value, "~") == 0 ||
	       strcmp(n->value, "null") == 0 || strcmp(n->value, "Null") == 0 ||
	       strcmp(n->value, "NULL") == 0;
}

static const char *kind_name(const struct node *n)
{
	if (is_null(n))
		return "null";
	switch (n->kind) {
	case NODE_SCALAR:
		return "a scalar";
	case NODE_SEQ:
		return "a sequence";
	case NODE_MAP:
		return "a mapping";
	}
	return "?";
}

/* The value of key in map, or NULL (also when map is not a mapping). */
static const struct node *map_value(const struct node *map, const char *key)
{
	if (map == NULL || map->kind != NODE_MAP)
		return NULL;
	for (size_t i = 0; i + 1 < map->n; i += 2)
		if (map->items[i]->kind == NODE_SCALAR &&
		    strcmp(map->items[i]->value, key) == 0)
			return map->items[i + 1];
	return NULL;
}

/* Where to point at a key's value: the value, else the mapping itself. */
static const struct node *where(const struct node *map, const char *key)
{
	const struct node *v = map_value(map, key);
	return v ? v : map;
}

/* Turns a reader error's byte offset into a position. */
static void offset_mark(const char *text, size_t len, size_t off,
			yaml_mark_t *m)
{
	m->line = 0;
	m->column = 0;
	for (size_t i = 0; i < off && i < len; i++) {
		if (text[i] == '\n') {
			m->line++;
			m->column = 0;
		} else if (((unsigned char)text[i] & 0xc0) != 0x80) {
			m->column++;
		}
	}
}

/* Refuses what would let a file be larger inside than outside. */
static bool refuse_decorations(struct ctx *ctx, const yaml_event_t *ev,
			       const yaml_char_t *anchor,
			       const yaml_char_t *tag, bool implicit)
{
	bool bad = false;

	if (anchor != NULL) {
		errat(ctx, (int)ev->start_mark.line + 1,
		      (int)ev->start_mark.column + 1,
		      "anchor '&%s': anchors and aliases are not allowed",
		      (const char *)anchor);
		bad = true;
	}
	if (tag != NULL && !implicit) {
		errat(ctx, (int)ev->start_mark.line + 1,
		      (int)ev->start_mark.column + 1,
		      "tag '%s': tags are not allowed", (const char *)tag);
		bad = true;
	}
	return bad;
}

/* Attaches n under the innermost open container, or makes it the root. */
static void attach(struct ctx *ctx, struct node **stack, int depth,
		   struct node **root, struct node *n)
{
	if (depth == 0) {
		*root = n;
		return;
	}
	struct node *parent = stack[depth - 1];
	if (parent->kind == NODE_MAP && parent->n % 2 == 0 &&
	    n->kind != NODE_SCALAR && !n->bad) {
		err(ctx, n, "mapping keys must be strings, not %s",
		    kind_name(n));
		n->bad = true;
	}
	node_push(parent, n);
}

/*
 * Builds the tree of the one document in text. Returns 0 (errors about
 * anchors, aliases and tags may have been recorded), or -EINVAL after a
 * syntax error, which ends the parse.
 */
static int build(struct ctx *ctx, const char *text, size_t len,
		 struct node **root)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	struct node *stack[MAX_DEPTH];
	int depth = 0, docs = 0, rc = 0;
	bool done = false;

	*root = NULL;
	if (!yaml_parser_initialize(&parser)) {
		fputs("gpuledger: out of memory\n", stderr);
		abort();
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			yaml_mark_t m = parser.problem_mark;
			if (parser.error == YAML_READER_ERROR)
				offset_mark(text, len, parser.problem_offset, &m);
			if (parser.context != NULL)
				errat(ctx, (int)m.line + 1, (int)m.column + 1,
				      "syntax error: %s (%s)",
				      parser.problem ? parser.problem : "?",
				      parser.context);
			else
				errat(ctx, (int)m.line + 1, (int)m.column + 1,
				      "syntax error: %s",
				      parser.problem ? parser.problem : "?");
			rc = -EINVAL;
			break;
		}

		struct node *n;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				errat(ctx, (int)ev.start_mark.line + 1,
				      (int)ev.start_mark.column + 1,
				      "only one YAML document is allowed");
				rc = -EINVAL;
				done = true;
			}
			break;
		case YAML_ALIAS_EVENT:
			n = node_new(NODE_SCALAR, &ev.start_mark);
			n->value = xstrdup("");
			n->bad = true;
			err(ctx, n, "alias '*%s': aliases are not allowed",
			    (const char *)ev.data.alias.anchor);
			attach(ctx, stack, depth, root, n);
			break;
		case YAML_SCALAR_EVENT:
			n = node_new(NODE_SCALAR, &ev.start_mark);
			n->value = xstrndup((const char *)ev.data.scalar.value,
					    ev.data.scalar.length);
			n->len = ev.data.scalar.length;
			n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
			n->bad = refuse_decorations(ctx, &ev, ev.data.scalar.anchor,
						    ev.data.scalar.tag, false);
			attach(ctx, stack, depth, root, n);
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (depth == MAX_DEPTH) {
				errat(ctx, (int)ev.start_mark.line + 1,
				      (int)ev.start_mark.column + 1,
				      "nested too deeply (more than %d levels)",
				      MAX_DEPTH);
				rc = -EINVAL;
				done = true;
				break;
			}
			if (ev.type == YAML_SEQUENCE_START_EVENT) {
				n = node_new(NODE_SEQ, &ev.start_mark);
				n->bad = refuse_decorations(ctx, &ev,
					ev.data.sequence_start.anchor,
					ev.data.sequence_start.tag,
					ev.data.sequence_start.implicit);
			} else {
				n = node_new(NODE_MAP, &ev.start_mark);
				n->bad = refuse_decorations(ctx, &ev,
					ev.data.mapping_start.anchor,
					ev.data.mapping_start.tag,
					ev.data.mapping_start.implicit);
			}
			attach(ctx, stack, depth, root, n);
			stack[depth++] = n;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	return rc;
}

/* ---- the key tables ----------------------------------------------------- */

enum key_type {
	T_STR,		/* char *, non-empty */
	T_INT,		/* int64_t within [min, max], a plain scalar */
	T_BOOL,		/* bool: true or false */
	T_TIME,		/* int64_t instant, in the program's zone by default */
	T_TZ,		/* char *, a fixed-offset zone; sets the offset */
	T_ENUM,		/* an enum, one of names[] (index = value) */
	T_STRLIST,	/* struct cfg_strlist */
	T_SHA256,	/* uint8_t[32], written as 64 hex digits */
	T_MODE,		/* int64_t file mode, octal digits, at most 0777 */
	T_MAP,		/* a mapping that fills base + off through sub[] */
	T_LIST,		/* a sequence of mappings: an array and its count */
	T_IDMAP,	/* a mapping of id -> mapping: an array and its count */
};

#define KEY_REQUIRED 0x1u
/* The reload rule: a SIGHUP applies every key but these, which hold a
 * listener or an open file; they keep their old value until a restart
 * (config_keep_restart_keys()). */
#define KEY_RESTART 0x2u

struct key;
/* Looks across the keys and entries of one mapping or list; masks say,
 * per entry, which rows were read without error (bit i = row i). */
typedef void key_check_fn(struct ctx *ctx, const struct node *node,
			  void *base, const uint32_t *masks);

struct key {
	const char *name;
	enum key_type type;
	unsigned flags;
	size_t off;			/* target field within base */
	int64_t min, max;		/* T_INT bounds; T_LIST least entries */
	const char *def;		/* default, as the file would say it */
	const char *const *names;	/* T_ENUM: names[value], NULL = none */
	size_t n_names;
	const char *(*valid)(const char *s);	/* T_STR: what is wrong, or NULL */
	const struct key *sub;		/* T_MAP, T_LIST, T_IDMAP */
	size_t count_off;		/* T_LIST, T_IDMAP: the size_t count */
	size_t elem_size;		/* T_LIST, T_IDMAP */
	size_t id_off;			/* T_IDMAP: the char * its key goes to */
	key_check_fn *check;
};

static_assert(sizeof(enum role) == sizeof(int), "enums are stored as int");
static_assert(sizeof(enum log_level) == sizeof(int), "enums are stored as int");

static const char *const role_names[] = {
	[ROLE_NONE] = NULL,
	[ROLE_CONSORTIUM] = "consortium",
	[ROLE_OPERATOR] = "operator",
	[ROLE_AGENT] = "agent",
	[ROLE_ADMIN] = "admin",
};

static const char *valid_listen(const char *s);
static const char *valid_duration(const char *s);
static const char *valid_gpu(const char *s);
static const char *valid_slug(const char *s);
static const char *valid_id(const char *s);
static const char *valid_cluster(const char *s);
static const char *valid_partition(const char *s);
static key_check_fn check_daemon, check_phases, check_pools, check_consortia,
	check_tokens, check_access_consortia;

#define FIELD(st, f) .off = offsetof(st, f)
#define ARRAY(st, f, nf, et) .off = offsetof(st, f), \
	.count_off = offsetof(st, nf), .elem_size = sizeof(et)
#define ENUM(a) .names = (a), .n_names = ARRAY_SIZE(a)
#define INF_TIME "infinity"
#define NEG_INF_TIME "-infinity"

/* The budgets of the TCP listener. */
static const struct key tcp_keys[] = {
	{ "max_connections", T_INT, FIELD(struct config, tcp_max_connections),
	  .min = 1, .max = 100000, .def = "256" },
	{ "max_per_peer", T_INT, FIELD(struct config, tcp_max_per_peer),
	  .min = 1, .max = 100000, .def = "16" },
	/* seconds from accept to a client's first byte */
	{ "first_byte_timeout", T_INT, FIELD(struct config, tcp_first_byte_timeout),
	  .min = 1, .max = 3600, .def = "5" },
	{ .name = NULL },
};

static const struct key daemon_keys[] = {
	{ "socket", T_STR, KEY_RESTART, FIELD(struct config, socket), .def = "var/gpuledger.sock" },
	/* roles come from SO_PEERCRED: anyone may connect unless narrowed */
	{ "socket_mode", T_MODE, KEY_RESTART, FIELD(struct config, socket_mode), .def = "0666" },
	{ "socket_group", T_STR, KEY_RESTART, FIELD(struct config, socket_group) },
	{ "database", T_STR, KEY_RESTART, FIELD(struct config, database), .def = "var/gpuledger.db" },
	{ "log", T_STR, KEY_RESTART, FIELD(struct config, log), .def = "-" },
	{ "log_level", T_ENUM, FIELD(struct config, log_level), ENUM(log_level_names), .def = "info" },
	{ "listen", T_STR, KEY_RESTART, FIELD(struct config, listen), .valid = valid_listen },
	/* decides whether the listener may be remote: goes with it */
	{ "allow_plaintext_remote", T_BOOL, KEY_RESTART, FIELD(struct config, allow_plaintext),
	  .def = "false" },
	/* budgets apply to the connections accepted after a reload */
	{ "max_connections", T_INT, FIELD(struct config, max_connections),
	  .min = 1, .max = 100000, .def = "256" },
	{ "max_per_uid", T_INT, FIELD(struct config, max_per_uid),
	  .min = 1, .max = 100000, .def = "32" },
	{ "max_followers", T_INT, FIELD(struct config, max_followers),
	  .min = 1, .max = 100000, .def = "64" },
	/* how long an Idempotency-Key answers a retry; older records are pruned */
	{ "idempotency_retention", T_STR, FIELD(struct config, idempotency_retention),
	  .valid = valid_duration, .def = "30d" },
	{ "tcp", T_MAP, .sub = tcp_keys },
	{ .name = NULL },
};

static const struct key principal_keys[] = {
	{ "users", T_STRLIST, FIELD(struct cfg_principals, users) },
	{ "groups", T_STRLIST, FIELD(struct cfg_principals, groups) },
	{ .name = NULL },
};

static const struct key consortium_access_keys[] = {
	{ "groups", T_STRLIST, FIELD(struct cfg_consortium_access, groups) },
	{ .name = NULL },
};

static const struct key token_keys[] = {
	{ "name", T_STR, KEY_REQUIRED, FIELD(struct cfg_token, name) },
	{ "role", T_ENUM, KEY_REQUIRED, FIELD(struct cfg_token, role), ENUM(role_names) },
	{ "consortium", T_STR, FIELD(struct cfg_token, consortium) },	/* iff role consortium */
	{ "sha256", T_SHA256, KEY_REQUIRED, FIELD(struct cfg_token, sha256) },
	{ .name = NULL },
};

static const struct key access_keys[] = {
	{ "admins", T_MAP, FIELD(struct config, admins), .sub = principal_keys },
	{ "operators", T_MAP, FIELD(struct config, operators), .sub = principal_keys },
	{ "consortia", T_IDMAP, ARRAY(struct config, consortium_access, n_consortium_access,
				      struct cfg_consortium_access),
	  .id_off = offsetof(struct cfg_consortium_access, consortium),
	  .sub = consortium_access_keys, .check = check_access_consortia },
	{ "tokens", T_LIST, ARRAY(struct config, tokens, n_tokens, struct cfg_token),
	  .sub = token_keys, .check = check_tokens },
	{ .name = NULL },
};

static const struct key program_keys[] = {
	{ "name", T_STR, KEY_REQUIRED, FIELD(struct config, program_name) },
	{ "timezone", T_TZ, FIELD(struct config, timezone), .def = DEFAULT_TZ },
	{ "designation_grace_days", T_INT, FIELD(struct config, designation_grace_days),
	  .min = 0, .max = 36500, .def = "0" },
	/* how far in the past an elimination may take effect (rule 8) */
	{ "retroactive_days", T_INT, FIELD(struct config, retroactive_days),
	  .min = 0, .max = 3650, .def = "7" },
	{ .name = NULL },
};

static const struct key phase_keys[] = {
	{ "id", T_STR, KEY_REQUIRED, FIELD(struct cfg_phase, id), .valid = valid_id },
	{ "name", T_STR, KEY_REQUIRED, FIELD(struct cfg_phase, name) },
	{ "start", T_TIME, KEY_REQUIRED, FIELD(struct cfg_phase, start) },
	{ "end", T_TIME, KEY_REQUIRED, FIELD(struct cfg_phase, end) },
	{ .name = NULL },
};

/* Where a pool's GPUs are in a Slurm cluster (the cluster bridge). */
static const struct key slurm_keys[] = {
	{ "cluster", T_STR, KEY_REQUIRED, FIELD(struct cfg_slurm, cluster), .valid = valid_cluster },
	{ "partition", T_STR, KEY_REQUIRED, FIELD(struct cfg_slurm, partition),
	  .valid = valid_partition },
	{ .name = NULL },
};

static const struct key pool_keys[] = {
	{ "id", T_STR, KEY_REQUIRED, FIELD(struct cfg_pool, id), .valid = valid_id },
	{ "provider", T_STR, KEY_REQUIRED, FIELD(struct cfg_pool, provider) },
	{ "gpu", T_STR, KEY_REQUIRED, FIELD(struct cfg_pool, gpu), .valid = valid_gpu },
	{ "gpus", T_INT, KEY_REQUIRED, FIELD(struct cfg_pool, gpus), .min = 1, .max = 100000000 },
	{ "available_from", T_TIME, FIELD(struct cfg_pool, available_from), .def = NEG_INF_TIME },
	{ "available_until", T_TIME, FIELD(struct cfg_pool, available_until), .def = INF_TIME },
	/* 0 = unset; a value written in the file must be >= 1 */
	{ "gpus_per_node", T_INT, FIELD(struct cfg_pool, gpus_per_node), .min = 1, .max = 1024, .def = "0" },
	/* unset: the pool is in no cluster the bridge drives */
	{ "slurm", T_MAP, FIELD(struct cfg_pool, slurm), .sub = slurm_keys },
	{ .name = NULL },
};

static const struct key consortium_keys[] = {
	{ "id", T_STR, KEY_REQUIRED, FIELD(struct cfg_consortium, id), .valid = valid_slug },
	{ "name", T_STR, KEY_REQUIRED, FIELD(struct cfg_consortium, name) },
	{ "lead", T_STR, KEY_REQUIRED, FIELD(struct cfg_consortium, lead) },
	{ "members", T_STRLIST, FIELD(struct cfg_consortium, members) },
	/* -infinity stands for "not given": check_consortia() puts the
	 * start of the first phase there */
	{ "joined", T_TIME, FIELD(struct cfg_consortium, joined), .def = NEG_INF_TIME },
	/* -infinity: eligible for quota as soon as it joined */
	{ "eligible_from", T_TIME, FIELD(struct cfg_consortium, eligible_from), .def = NEG_INF_TIME },
	{ .name = NULL },
};

/* Read in this order: see the header comment. */
static const struct key top_keys[] = {
	{ "program", T_MAP, KEY_REQUIRED, .sub = program_keys },
	{ "phases", T_LIST, KEY_REQUIRED, ARRAY(struct config, phases, n_phases, struct cfg_phase),
	  .min = 1, .sub = phase_keys, .check = check_phases },
	{ "pools", T_LIST, ARRAY(struct config, pools, n_pools, struct cfg_pool),
	  .sub = pool_keys, .check = check_pools },
	{ "consortia", T_LIST, ARRAY(struct config, consortia, n_consortia, struct cfg_consortium),
	  .sub = consortium_keys, .check = check_consortia },
	{ "daemon", T_MAP, .sub = daemon_keys, .check = check_daemon },
	{ "access", T_MAP, .sub = access_keys },
	{ .name = NULL },
};

static size_t table_len(const struct key *t)
{
	size_t n = 0;
	while (t[n].name != NULL)
		n++;
	return n;
}

/* The mask bit of a row, by name; a wrong name is a bug. */
static uint32_t bit(const struct key *t, const char *name)
{
	for (size_t i = 0; t[i].name != NULL; i++)
		if (strcmp(t[i].name, name) == 0)
			return 1u << i;
	abort();
}

static bool has(uint32_t mask, const struct key *t, const char *name)
{
	return (mask & bit(t, name)) != 0;
}

static char *key_names(const struct key *t)
{
	struct buf b = {0};
	for (size_t i = 0; t[i].name != NULL; i++)
		buf_printf(&b, "%s%s", i ? ", " : "", t[i].name);
	return buf_take(&b);
}

/* ---- values ------------------------------------------------------------- */

static const char *valid_id(const char *s)
{
	if (id_valid(s))
		return NULL;
	return "an id is letters, digits, '-', '_' and '.', starting with a letter or digit";
}

static const char *valid_cluster(const char *s)
{
	if (slurm_cluster_valid(s))
		return NULL;
	return "a Slurm cluster name is up to 32 lowercase letters, digits, '-' and '_', starting with a letter or digit";
}

static const char *valid_partition(const char *s)
{
	if (slurm_partition_valid(s))
		return NULL;
	return "a Slurm partition name is up to 64 letters, digits, '-', '_' and '.', starting with a letter or digit";
}

static const char *valid_slug(const char *s)
{
	if (slug_valid(s))
		return NULL;
	return "a consortium id is a slug: lowercase letters, digits, '-' and '_', starting with a letter or digit";
}

/* Whether the code point is white space (Unicode's White_Space, less the
 * controls, which the text rule refuses anyway). */
static bool is_space(uint32_t c)
{
	return c == 0x20 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
	       c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

/*
 * A GPU model is compared byte for byte: "B200 " would be a model of its
 * own that prints like B200, so white space around one is refused.
 */
static const char *valid_gpu(const char *s)
{
	size_t len = strlen(s), n;
	uint32_t c, last = 0;

	for (size_t i = 0; i < len; i += n) {
		if ((n = utf8_next(s + i, len - i, &c)) == 0)
			return NULL;	/* want_string() has said so */
		if (i == 0 && is_space(c))
			return "a GPU model must not begin with white space";
		last = c;
	}
	if (is_space(last))
		return "a GPU model must not end with white space";
	return NULL;
}

static const char *valid_listen(const char *s)
{
	struct hostport hp;

	if (hostport_parse(s, &hp) != 0)
		return "expected HOST:PORT such as 127.0.0.1:8470, localhost:8470 or [::1]:8470";
	return NULL;
}

static const char *valid_duration(const char *s)
{
	int64_t d;

	if (duration_parse(s, &d) != 0 || d <= 0)
		return "expected a duration such as 12h, 30d or 1w";
	return NULL;
}

/* A file mode as chmod(1) takes it: octal digits, 0 to 0777. */
static int mode_parse(const char *s, int64_t *out)
{
	int64_t m = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 4 || strspn(s, "01234567") != n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		m = m * 8 + (s[i] - '0');
	if (m > 0777)
		return -ERANGE;
	*out = m;
	return 0;
}

static bool want_scalar(struct ctx *ctx, const struct key *k,
			const struct node *v, const char *expected)
{
	if (v->kind == NODE_SCALAR && !is_null(v))
		return true;
	err(ctx, v, "expected %s for '%s', got %s", expected, k->name,
	    kind_name(v));
	return false;
}

/* A non-empty string without NUL bytes; reports and returns false if not. */
static bool want_string(struct ctx *ctx, const struct key *k,
			const struct node *v)
{
	if (!want_scalar(ctx, k, v, "a string"))
		return false;
	if (v->len == 0) {
		err(ctx, v, "'%s' must not be empty", k->name);
		return false;
	}
	if (strlen(v->value) != v->len) {
		err(ctx, v, "'%s' must not contain NUL characters", k->name);
		return false;
	}
	/* the API's rule for text: names travel in its JSON and in logs */
	size_t at;
	uint32_t cp;
	int rc = text_check(v->value, v->len, &at, &cp);
	if (rc == -EILSEQ) {
		err(ctx, v, "'%s' is not valid UTF-8 (at byte %zu)", k->name, at);
		return false;
	}
	if (rc != 0) {
		err(ctx, v, "'%s' must not contain control characters (U+%04X at byte %zu)",
		    k->name, (unsigned)cp, at);
		return false;
	}
	return true;
}

static bool parse_strlist(struct ctx *ctx, const struct key *k,
			  const struct node *v, struct cfg_strlist *l)
{
	if (v->kind != NODE_SEQ) {
		err(ctx, v, "expected a list of strings for '%s', got %s",
		    k->name, kind_name(v));
		return false;
	}
	bool ok = true;
	l->v = xcalloc(v->n, sizeof(*l->v));
	for (size_t i = 0; i < v->n; i++) {
		const struct node *it = v->items[i];
		if (it->bad)
			ok = false;
		else if (want_string(ctx, k, it))
			l->v[l->n++] = xstrdup(it->value);
		else
			ok = false;
	}
	return ok;
}

static uint32_t parse_map(struct ctx *ctx, const struct key *table,
			  const struct node *map, void *base, const char *path);
static void apply_defaults(struct ctx *ctx, const struct key *table, void *base);

/* Reads a T_LIST or T_IDMAP into a fresh array of entries. */
static bool parse_entries(struct ctx *ctx, const struct key *k,
			  const struct node *v, void *base, const char *path)
{
	bool idmap = k->type == T_IDMAP;
	enum node_kind want = idmap ? NODE_MAP : NODE_SEQ;
	char **arr = (char **)((char *)base + k->off);
	size_t *count = (size_t *)((char *)base + k->count_off);

	if (v->kind != want) {
		err(ctx, v, "expected %s for '%s', got %s",
		    idmap ? "a mapping" : "a list", k->name, kind_name(v));
		return false;
	}
	size_t n = idmap ? v->n / 2 : v->n;
	char *elems = xcalloc(n, k->elem_size);
	uint32_t *masks = xcalloc(n, sizeof(*masks));
	for (size_t i = 0; i < n; i++) {
		char *elem = elems + i * k->elem_size;
		const struct node *item = idmap ? v->items[2 * i + 1] : v->items[i];
		char *sub;
		if (idmap) {
			const struct node *key = v->items[2 * i];
			if (key->bad)
				continue;
			*(char **)(elem + k->id_off) = xstrdup(key->value);
			sub = xasprintf("%s.%s", path, key->value);
		} else {
			sub = xasprintf("%s[%zu]", path, i);
		}
		if (item->bad)
			;
		else if (item->kind != NODE_MAP)
			err(ctx, item, "expected a mapping for %s, got %s", sub,
			    kind_name(item));
		else
			masks[i] = parse_map(ctx, k->sub, item, elem, sub);
		free(sub);
	}
	*(char **)arr = elems;
	*count = n;
	if (n < (size_t)k->min)
		err(ctx, v, "'%s' needs at least %" PRId64 " %s", k->name, k->min,
		    k->min == 1 ? "entry" : "entries");
	if (k->check)
		k->check(ctx, v, base, masks);
	free(masks);
	return true;
}

/* Reads v into the field of row k; returns whether it was read cleanly. */
static bool parse_value(struct ctx *ctx, const struct key *k,
			const struct node *v, void *base, const char *path)
{
	void *p = (char *)base + k->off;
	const char *cause;
	int64_t i;
	int32_t off;

	if (v->bad)
		return false;
	switch (k->type) {
	case T_STR:
		if (!want_string(ctx, k, v))
			return false;
		if (k->valid && (cause = k->valid(v->value)) != NULL) {
			err(ctx, v, "invalid %s '%s': %s", k->name, v->value, cause);
			return false;
		}
		*(char **)p = xstrdup(v->value);
		return true;
	case T_INT:
		if (!want_scalar(ctx, k, v, "an integer"))
			return false;
		if (!v->plain) {
			err(ctx, v, "expected an integer for '%s', got a quoted string",
			    k->name);
			return false;
		}
		switch (i64_parse(v->value, &i)) {
		case 0:
			break;
		case -ERANGE:
			err(ctx, v, "'%s' is out of range: %s", k->name, v->value);
			return false;
		default:
			err(ctx, v, "expected an integer for '%s', got '%s'",
			    k->name, v->value);
			return false;
		}
		if (i < k->min || i > k->max) {
			err(ctx, v, "'%s' must be %s %" PRId64 " (got %" PRId64 ")",
			    k->name, i < k->min ? "at least" : "at most",
			    i < k->min ? k->min : k->max, i);
			return false;
		}
		*(int64_t *)p = i;
		return true;
	case T_MODE:
		if (!want_scalar(ctx, k, v, "an octal file mode"))
			return false;
		if (!v->plain || mode_parse(v->value, &i) != 0) {
			err(ctx, v, "expected an octal file mode such as 0660 for '%s', got %s'%s'",
			    k->name, v->plain ? "" : "a quoted ", v->value);
			return false;
		}
		*(int64_t *)p = i;
		return true;
	case T_BOOL:
		if (!want_scalar(ctx, k, v, "true or false"))
			return false;
		if (v->plain && (strcmp(v->value, "true") == 0 ||
				 strcmp(v->value, "false") == 0)) {
			*(bool *)p = v->value[0] == 't';
			return true;
		}
		err(ctx, v, "expected true or false for '%s', got '%s'", k->name,
		    v->value);
		return false;
	case T_TIME:
		if (!want_scalar(ctx, k, v, "a date or time"))
			return false;
		if (time_parse(v->value, ctx->tz, &i, &cause) != 0) {
			err(ctx, v, "invalid time for '%s': '%s': %s", k->name,
			    v->value, cause);
			return false;
		}
		*(int64_t *)p = i;
		return true;
	case T_TZ:
		if (!want_string(ctx, k, v))
			return false;
		if (tz_parse(v->value, &off) != 0) {
			err(ctx, v, "unknown time zone '%s' (a fixed-offset zone such as Asia/Seoul, UTC or +09:00)",
			    v->value);
			return false;
		}
		ctx->tz = off;
		*(char **)p = xstrdup(v->value);
		return true;
	case T_ENUM:
		if (!want_string(ctx, k, v))
			return false;
		for (size_t j = 0; j < k->n_names; j++) {
			if (k->names[j] && strcmp(k->names[j], v->value) == 0) {
				*(int *)p = (int)j;
				return true;
			}
		}
		{
			struct buf b = {0};
			for (size_t j = 0; j < k->n_names; j++)
				if (k->names[j])
					buf_printf(&b, "%s%s", b.len ? ", " : "",
						   k->names[j]);
			err(ctx, v, "unknown %s '%s' (expected one of: %s)", k->name,
			    v->value, b.data);
			buf_free(&b);
		}
		return false;
	case T_STRLIST:
		return parse_strlist(ctx, k, v, p);
	case T_SHA256:
		if (!want_string(ctx, k, v))
			return false;
		if (v->len != 64) {
			err(ctx, v, "malformed '%s': expected 64 hex digits, got %zu characters",
			    k->name, v->len);
			return false;
		}
		if (hex_decode(v->value, v->len, p, 32) != 0) {
			err(ctx, v, "malformed '%s': expected 64 hex digits", k->name);
			return false;
		}
		return true;
	case T_MAP:
		if (v->kind != NODE_MAP) {
			err(ctx, v, "expected a mapping for '%s', got %s", k->name,
			    kind_name(v));
			apply_defaults(ctx, k->sub, p);
			return false;
		}
		{
			uint32_t mask = parse_map(ctx, k->sub, v, p, path);
			if (k->check)
				k->check(ctx, v, p, &mask);
		}
		return true;
	case T_LIST:
	case T_IDMAP:
		return parse_entries(ctx, k, v, base, path);
	}
	abort();
}

/* Sets the row's default; for a default written in the table, not the file. */
static void apply_default(struct ctx *ctx, const struct key *k, void *base)
{
	void *p = (char *)base + k->off;
	int rc = 0;

	switch (k->type) {
	case T_STR:
		*(char **)p = k->def ? xstrdup(k->def) : NULL;
		break;
	case T_INT:
		*(int64_t *)p = 0;
		if (k->def)
			rc = i64_parse(k->def, p);
		break;
	case T_MODE:
		*(int64_t *)p = 0;
		if (k->def)
			rc = mode_parse(k->def, p);
		break;
	case T_BOOL:
		*(bool *)p = k->def && strcmp(k->def, "true") == 0;
		break;
	case T_TIME:
		if (k->def == NULL || strcmp(k->def, NEG_INF_TIME) == 0)
			*(int64_t *)p = TIME_MIN;
		else if (strcmp(k->def, INF_TIME) == 0)
			*(int64_t *)p = TIME_MAX;
		else
			rc = time_parse(k->def, ctx->tz, p, NULL);
		break;
	case T_TZ:
		*(char **)p = xstrdup(k->def);
		rc = tz_parse(k->def, &ctx->tz);
		break;
	case T_ENUM:
		rc = -EINVAL;
		for (size_t j = 0; j < k->n_names; j++) {
			if (k->names[j] && k->def && strcmp(k->names[j], k->def) == 0) {
				*(int *)p = (int)j;
				rc = 0;
			}
		}
		break;
	case T_MAP:
		apply_defaults(ctx, k->sub, p);
		break;
	case T_STRLIST:
	case T_SHA256:
	case T_LIST:
	case T_IDMAP:
		break;		/* zeroed: empty */
	}
	assert(rc == 0 && "a default in the key table does not parse");
	(void)rc;
}

static void apply_defaults(struct ctx *ctx, const struct key *table, void *base)
{
	for (const struct key *k = table; k->name != NULL; k++)
		if (!(k->flags & KEY_REQUIRED))
			apply_default(ctx, k, base);
}

/*
 * Reads map through table into base: unknown and duplicate keys are
 * reported at the key, missing required ones at the mapping, and absent
 * optional ones take their default. Rows are read in table order.
 * Returns the mask of rows that hold a good value (read or defaulted).
 */
static uint32_t parse_map(struct ctx *ctx, const struct key *table,
			  const struct node *map, void *base, const char *path)
{
	size_t n = table_len(table);
	const struct node *keys[32] = {0}, *vals[32] = {0};
	uint32_t mask = 0;

	assert(n <= 32);
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const struct node *key = map->items[i];
		const struct key *k;
		if (key->bad)
			continue;
		for (k = table; k->name != NULL; k++)
			if (strcmp(k->name, key->value) == 0)
				break;
		if (k->name == NULL) {
			char *names = key_names(table);
			err(ctx, key, "unknown key '%s' %s%s (expected one of: %s)",
			    key->value, path[0] ? "in " : "at the top level",
			    path, names);
			free(names);
			continue;
		}
		size_t r = (size_t)(k - table);
		if (keys[r] != NULL) {
			err(ctx, key, "duplicate key '%s' (first at %d:%d)",
			    key->value, keys[r]->line, keys[r]->col);
			continue;
		}
		keys[r] = key;
		vals[r] = map->items[i + 1];
	}
	for (size_t r = 0; r < n; r++) {
		const struct key *k = &table[r];
		char *sub = path[0] ? xasprintf("%s.%s", path, k->name) :
				      xstrdup(k->name);
		if (vals[r] != NULL) {
			if (parse_value(ctx, k, vals[r], base, sub))
				mask |= 1u << r;
		} else if (k->flags & KEY_REQUIRED) {
			err(ctx, map, "missing required key '%s'%s%s", k->name,
			    path[0] ? " in " : "", path);
		} else {
			apply_default(ctx, k, base);
			mask |= 1u << r;
		}
		free(sub);
	}
	return mask;
}

/* ---- checks across keys and entries ------------------------------------- */

struct named {
	const char *id;
	const struct node *node;
	size_t i;
	const char *owner;
};

static int named_cmp(const void *a, const void *b)
{
	const struct named *x = a, *y = b;
	int c = strcmp(x->id, y->id);
	if (c != 0)
		return c;
	return x->i < y->i ? -1 : x->i > y->i;
}

/*
 * Reports each entry whose key value repeats an earlier entry's, at the
 * later one. items are the entries' mappings; ids their keys' values.
 */
static void check_unique(struct ctx *ctx, const struct node *seq,
			 const char *key, const char *what)
{
	struct named *v = xcalloc(seq->n, sizeof(*v));
	size_t n = 0;

	for (size_t i = 0; i < seq->n; i++) {
		const struct node *val = map_value(seq->items[i], key);
		if (val && val->kind == NODE_SCALAR && !val->bad && !is_null(val))
			v[n++] = (struct named){ val->value, val, i, NULL };
	}
	qsort(v, n, sizeof(*v), named_cmp);
	for (size_t i = 1, first = 0; i < n; i++) {
		if (strcmp(v[i].id, v[first].id) != 0) {
			first = i;
			continue;
		}
		err(ctx, v[i].node, "duplicate %s '%s' (first at %d:%d)", what,
		    v[i].id, v[first].node->line, v[first].node->col);
	}
	free(v);
}

static void check_daemon(struct ctx *ctx, const struct node *map, void *base,
			 const uint32_t *masks)
{
	struct config *cfg = base;
	struct hostport hp;

	/* the same parse and the same loopback rule as the server's bind */
	if (!has(masks[0], daemon_keys, "listen") ||
	    !has(masks[0], daemon_keys, "allow_plaintext_remote") ||
	    cfg->listen == NULL || cfg->allow_plaintext ||
	    hostport_parse(cfg->listen, &hp) != 0)
		return;
	if (!hostport_loopback(&hp))
		err(ctx, where(map, "listen"),
		    "plaintext HTTP on non-loopback address '%s': listen on loopback behind a TLS proxy, or set allow_plaintext_remote: true",
		    hp.host);
}

static int by_start(const void *a, const void *b, void *arg)
{
	const int64_t *start = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	if (start[x] != start[y])
		return start[x] < start[y] ? -1 : 1;
	return x < y ? -1 : x > y;
}

static void check_phases(struct ctx *ctx, const struct node *seq, void *base,
			 const uint32_t *masks)
{
	struct config *cfg = base;
	size_t n = cfg->n_phases;
	size_t *order = xcalloc(n, sizeof(*order));
	int64_t *starts = xcalloc(n, sizeof(*starts));
	bool *good = xcalloc(n, sizeof(*good));
	char a[TIME_BUFSZ], b[TIME_BUFSZ];

	check_unique(ctx, seq, "id", "phase id");
	for (size_t i = 0; i < n; i++) {
		struct cfg_phase *ph = &cfg->phases[i];
		order[i] = i;
		starts[i] = ph->start;
		if (!has(masks[i], phase_keys, "start") ||
		    !has(masks[i], phase_keys, "end"))
			continue;
		if (ph->end <= ph->start) {
			err(ctx, where(seq->items[i], "end"),
			    "phase %s ends (%s) at or before its start (%s)",
			    ph->id ? ph->id : "?",
			    time_format(ph->end, ctx->tz, a, sizeof(a)),
			    time_format(ph->start, ctx->tz, b, sizeof(b)));
			continue;
		}
		good[i] = true;
	}
	qsort_r(order, n, sizeof(*order), by_start, starts);

	const struct cfg_phase *prev = NULL;
	for (size_t j = 0; j < n; j++) {
		size_t i = order[j];
		const struct cfg_phase *ph = &cfg->phases[i];
		if (!good[i])
			continue;
		if (prev != NULL && ph->start < prev->end)
			err(ctx, where(seq->items[i], "start"),
			    "phase %s (from %s) overlaps phase %s (until %s)",
			    ph->id ? ph->id : "?",
			    time_format(ph->start, ctx->tz, a, sizeof(a)),
			    prev->id ? prev->id : "?",
			    time_format(prev->end, ctx->tz, b, sizeof(b)));
		if (prev == NULL || ph->end > prev->end)
			prev = ph;
	}

	struct cfg_phase *sorted = xcalloc(n, sizeof(*sorted));
	for (size_t j = 0; j < n; j++)
		sorted[j] = cfg->phases[order[j]];
	free(cfg->phases);
	cfg->phases = sorted;
	free(good);
	free(starts);
	free(order);
}

/*
 * Two pools in one Slurm partition would ask the bridge for two sets of
 * reservations on the same nodes: the partition is the pool there.
 */
static void check_partition_once(struct ctx *ctx, const struct node *seq,
				 const struct config *cfg, size_t i)
{
	const struct cfg_slurm *s = &cfg->pools[i].slurm;

	for (size_t j = 0; j < i; j++) {
		const struct cfg_slurm *t = &cfg->pools[j].slurm;
		if (t->cluster == NULL || t->partition == NULL ||
		    strcmp(s->cluster, t->cluster) != 0 || strcmp(s->partition, t->partition) != 0)
			continue;
		err(ctx, where(seq->items[i], "slurm"),
		    "pool %s: Slurm partition %s of cluster %s is already pool %s's",
		    cfg->pools[i].id ? cfg->pools[i].id : "?", s->partition, s->cluster,
		    cfg->pools[j].id ? cfg->pools[j].id : "?");
		return;
	}
}

static void check_pools(struct ctx *ctx, const struct node *seq, void *base,
			const uint32_t *masks)
{
	struct config *cfg = base;
	char a[TIME_BUFSZ], b[TIME_BUFSZ];

	check_unique(ctx, seq, "id", "pool id");
	for (size_t i = 0; i < cfg->n_pools; i++) {
		const struct cfg_pool *p = &cfg->pools[i];
		uint32_t m = masks[i];
		if (has(m, pool_keys, "available_from") &&
		    has(m, pool_keys, "available_until") &&
		    p->available_until <= p->available_from)
			err(ctx, where(seq->items[i], "available_until"),
			    "pool %s: available_until (%s) must be after available_from (%s)",
			    p->id ? p->id : "?",
			    time_format(p->available_until, ctx->tz, a, sizeof(a)),
			    time_format(p->available_from, ctx->tz, b, sizeof(b)));
		if (has(m, pool_keys, "slurm") && p->slurm.cluster && p->slurm.partition)
			check_partition_once(ctx, seq, cfg, i);
		if (has(m, pool_keys, "gpus") && has(m, pool_keys, "gpus_per_node") &&
		    p->gpus_per_node > 0 && p->gpus % p->gpus_per_node != 0)
			err(ctx, where(seq->items[i], "gpus"),
			    "pool %s: gpus (%" PRId64 ") must be a multiple of gpus_per_node (%" PRId64 ")",
			    p->id ? p->id : "?", p->gpus, p->gpus_per_node);
	}
}

static void check_consortia(struct ctx *ctx, const struct node *seq, void *base,
			    const uint32_t *masks)
{
	struct config *cfg = base;
	int64_t last_end = TIME_MIN;
	char a[TIME_BUFSZ], b[TIME_BUFSZ];

	check_unique(ctx, seq, "id", "consortium id");
	for (size_t i = 0; i < cfg->n_phases; i++)
		if (cfg->phases[i].end > cfg->phases[i].start && cfg->phases[i].end > last_end)
			last_end = cfg->phases[i].end;
	for (size_t i = 0; i < cfg->n_consortia; i++) {
		struct cfg_consortium *c = &cfg->consortia[i];
		/* transfers name the program's unassigned budget so */
		if (c->id && strcmp(c->id, CONFIG_RESERVE) == 0)
			err(ctx, where(seq->items[i], "id"),
			    "consortium id '%s' is taken: it names the program reserve",
			    CONFIG_RESERVE);
		if (c->joined == TIME_MIN && cfg->n_phases > 0)
			c->joined = cfg->phases[0].start;
		/* it could never be active in any phase: a typo in the year */
		else if (has(masks[i], consortium_keys, "joined") && last_end != TIME_MIN &&
			 c->joined >= last_end)
			err(ctx, where(seq->items[i], "joined"),
			    "consortium %s joins (%s) after the last phase ends (%s)",
			    c->id ? c->id : "?", time_format(c->joined, ctx->tz, a, sizeof(a)),
			    time_format(last_end, ctx->tz, b, sizeof(b)));
	}
}

static void check_tokens(struct ctx *ctx, const struct node *seq, void *base,
			 const uint32_t *masks)
{
	struct config *cfg = base;

	check_unique(ctx, seq, "name", "token name");
	for (size_t i = 0; i < cfg->n_tokens; i++) {
		const struct cfg_token *t = &cfg->tokens[i];
		const struct node *item = seq->items[i];
		if (!has(masks[i], token_keys, "role") ||
		    !has(masks[i], token_keys, "consortium"))
			continue;
		if (t->role == ROLE_CONSORTIUM && t->consortium == NULL)
			err(ctx, item, "missing required key 'consortium' (token %s has role consortium)",
			    t->name ? t->name : "?");
		else if (t->role != ROLE_CONSORTIUM && t->consortium != NULL)
			err(ctx, where(item, "consortium"),
			    "token %s: 'consortium' is only for role consortium, not %s",
			    t->name ? t->name : "?", role_name(t->role));
		else if (t->consortium && !config_consortium(cfg, t->consortium))
			err(ctx, where(item, "consortium"),
			    "token %s: unknown consortium '%s'",
			    t->name ? t->name : "?", t->consortium);
	}
	/* the same secret for two names would make the name a lie */
	for (size_t i = 0; i < cfg->n_tokens; i++) {
		if (!has(masks[i], token_keys, "sha256"))
			continue;
		for (size_t j = 0; j < i; j++) {
			if (has(masks[j], token_keys, "sha256") &&
			    memcmp(cfg->tokens[i].sha256, cfg->tokens[j].sha256, 32) == 0) {
				err(ctx, where(seq->items[i], "sha256"),
				    "token %s has the same sha256 as token %s",
				    cfg->tokens[i].name ? cfg->tokens[i].name : "?",
				    cfg->tokens[j].name ? cfg->tokens[j].name : "?");
				break;
			}
		}
	}
}

static void check_access_consortia(struct ctx *ctx, const struct node *map,
				   void *base, const uint32_t *masks)
{
	struct config *cfg = base;
	struct named *g = NULL;
	size_t n = 0, cap = 0;

	for (size_t i = 0; i < cfg->n_consortium_access; i++) {
		const struct node *key = map->items[2 * i];
		const struct node *groups = map_value(map->items[2 * i + 1], "groups");
		const char *id = cfg->consortium_access[i].consortium;
		if (id == NULL)
			continue;
		for (size_t j = 0; j < i; j++) {
			if (cfg->consortium_access[j].consortium &&
			    strcmp(cfg->consortium_access[j].consortium, id) == 0) {
				const struct node *first = map->items[2 * j];
				err(ctx, key, "duplicate key '%s' (first at %d:%d)",
				    id, first->line, first->col);
				break;
			}
		}
		if (!config_consortium(cfg, id))
			err(ctx, key, "unknown consortium '%s' in access.consortia", id);
		if (groups == NULL || groups->kind != NODE_SEQ)
			continue;
		for (size_t j = 0; j < groups->n; j++) {
			const struct node *it = groups->items[j];
			if (it->kind != NODE_SCALAR || it->bad || is_null(it))
				continue;
			if (n == cap) {
				cap = cap ? 2 * cap : 16;
				g = xreallocarray(g, cap, sizeof(*g));
			}
			g[n] = (struct named){ it->value, it, n, id };
			n++;
		}
	}
	/* a group that maps to two consortia would leave a user's scope to chance;
	 * with no group at all (lg: {}) there is nothing to sort, and g is NULL */
	if (n > 1)
		qsort(g, n, sizeof(*g), named_cmp);
	for (size_t i = 1, first = 0; i < n; i++) {
		if (strcmp(g[i].id, g[first].id) != 0) {
			first = i;
			continue;
		}
		if (strcmp(g[i].owner, g[first].owner) != 0)
			err(ctx, g[i].node, "group '%s' already maps to consortium %s (at %d:%d)",
			    g[i].id, g[first].owner, g[first].node->line,
			    g[first].node->col);
	}
	free(g);
}

/* ---- the interface ------------------------------------------------------ */

int config_parse(const char *name, const char *text, size_t len,
		 struct config **out, char **errors)
{
	struct ctx ctx = { .name = name };
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	struct node *root = NULL;
	int rc;

	if (errors)
		*errors = NULL;
	ctx.cfg = cfg;
	rc = tz_parse(DEFAULT_TZ, &ctx.tz);
	assert(rc == 0);
	rc = build(&ctx, text, len, &root);
	if (rc != 0)
		goto fail_build;
	if (root == NULL || is_null(root)) {
		errat(&ctx, 1, 1, "the configuration is empty");
		goto fail_build;
	}
	if (root->kind != NODE_MAP) {
		err(&ctx, root, "expected a mapping at the top level, got %s",
		    kind_name(root));
		goto fail_build;
	}
	if (!root->bad)
		parse_map(&ctx, top_keys, root, cfg, "");
	cfg->tz_offset = ctx.tz;

fail_build:
	node_free(root);
	if (ctx.n_errs > 0) {
		char *text_errs = errors_take(&ctx);
		if (errors)
			*errors = text_errs;
		else
			free(text_errs);
		config_free(cfg);
		return -EINVAL;
	}
	cfg->path = xstrdup(name);
	*out = cfg;
	return 0;
}

int config_load(const char *path, struct config **out, char **errors)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	bool parsed = false;
	int fd, rc;

	if (errors)
		*errors = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto fail_open;
	}
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto fail_read;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > MAX_FILE_SIZE) {
		rc = S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
		goto fail_read;
	}
	text = xmalloc((size_t)st.st_size + 1);
	while (len <= (size_t)st.st_size) {
		ssize_t r = read(fd, text + len, (size_t)st.st_size + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			goto fail_read;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > (size_t)st.st_size) {
		rc = -EFBIG;	/* it grew while we read */
		goto fail_read;
	}
	rc = config_parse(path, text, len, out, errors);
	parsed = true;
fail_read:
	free(text);
	close(fd);
fail_open:
	if (!parsed && errors)
		*errors = xasprintf("%s: %s\n", path,
				    rc == -EFBIG ? "file too large" :
				    rc == -EINVAL ? "not a regular file" :
				    strerror(-rc));
	return rc;
}

static void strlist_free(struct cfg_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

/* Frees what the rows of table put into base, and nothing else. */
static void free_fields(const struct key *table, void *base)
{
	for (const struct key *k = table; k->name != NULL; k++) {
		void *p = (char *)base + k->off;
		switch (k->type) {
		case T_STR:
		case T_TZ:
			free(*(char **)p);
			break;
		case T_STRLIST:
			strlist_free(p);
			break;
		case T_MAP:
			free_fields(k->sub, p);
			break;
		case T_LIST:
		case T_IDMAP: {
			char *elems = *(char **)p;
			size_t n = *(size_t *)((char *)base + k->count_off);
			for (size_t i = 0; elems && i < n; i++) {
				char *elem = elems + i * k->elem_size;
				free_fields(k->sub, elem);
				if (k->type == T_IDMAP)	/* the key is no row */
					free(*(char **)(elem + k->id_off));
			}
			free(elems);
			break;
		}
		case T_INT:
		case T_MODE:
		case T_BOOL:
		case T_TIME:
		case T_ENUM:
		case T_SHA256:
			break;		/* held in place */
		}
	}
}

void config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->path);	/* where it was read from: not a key */
	free_fields(top_keys, cfg);
	free(cfg);
}

/* ---- the reload rule ---------------------------------------------------- */

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* Whether the leaf of row k holds the same value in a and b. */
static bool leaf_equal(const struct key *k, const void *a, const void *b)
{
	const void *pa = (const char *)a + k->off, *pb = (const char *)b + k->off;

	switch (k->type) {
	case T_STR:
	case T_TZ:
		return str_eq(*(char *const *)pa, *(char *const *)pb);
	case T_INT:
	case T_MODE:
	case T_TIME:
		return *(const int64_t *)pa == *(const int64_t *)pb;
	case T_BOOL:
		return *(const bool *)pa == *(const bool *)pb;
	case T_ENUM:
		return *(const int *)pa == *(const int *)pb;
	case T_SHA256:
		return memcmp(pa, pb, 32) == 0;
	case T_STRLIST: {
		const struct cfg_strlist *x = pa, *y = pb;
		if (x->n != y->n)
			return false;
		for (size_t i = 0; i < x->n; i++)
			if (strcmp(x->v[i], y->v[i]) != 0)
				return false;
		return true;
	}
	default:
		abort();	/* KEY_RESTART on a map or list: a table bug */
	}
}

/* Puts a copy of the leaf of row k in from into to, freeing to's. */
static void leaf_copy(const struct key *k, const void *from, void *to)
{
	const void *pf = (const char *)from + k->off;
	void *pt = (char *)to + k->off;

	switch (k->type) {
	case T_STR:
	case T_TZ: {
		const char *v = *(char *const *)pf;
		free(*(char **)pt);
		*(char **)pt = v ? xstrdup(v) : NULL;
		return;
	}
	case T_INT:
	case T_MODE:
	case T_TIME:
		*(int64_t *)pt = *(const int64_t *)pf;
		return;
	case T_BOOL:
		*(bool *)pt = *(const bool *)pf;
		return;
	case T_ENUM:
		*(int *)pt = *(const int *)pf;
		return;
	case T_SHA256:
		memcpy(pt, pf, 32);
		return;
	case T_STRLIST: {
		const struct cfg_strlist *x = pf;
		struct cfg_strlist *y = pt;
		strlist_free(y);
		y->v = xcalloc(x->n, sizeof(*y->v));
		for (size_t i = 0; i < x->n; i++)
			y->v[i] = xstrdup(x->v[i]);
		y->n = x->n;
		return;
	}
	default:
		abort();	/* KEY_RESTART on a map or list: a table bug */
	}
}

static void keep_restart(const struct key *table, const char *prefix,
			 const void *old, void *new,
			 void (*report)(void *arg, const char *key), void *arg)
{
	for (const struct key *k = table; k->name != NULL; k++) {
		char *path = prefix[0] ? xasprintf("%s.%s", prefix, k->name) :
					 xstrdup(k->name);
		if (k->type == T_MAP)
			keep_restart(k->sub, path, (const char *)old + k->off,
				     (char *)new + k->off, report, arg);
		else if ((k->flags & KEY_RESTART) && !leaf_equal(k, old, new)) {
			leaf_copy(k, old, new);
			if (report)
				report(arg, path);
		}
		free(path);
	}
}

void config_keep_restart_keys(const struct config *old, struct config *new,
			      void (*report)(void *arg, const char *key),
			      void *arg)
{
	keep_restart(top_keys, "", old, new, report, arg);
}

const struct cfg_phase *config_phase(const struct config *cfg, const char *id)
{
	for (size_t i = 0; i < cfg->n_phases; i++)
		if (cfg->phases[i].id && strcmp(cfg->phases[i].id, id) == 0)
			return &cfg->phases[i];
	return NULL;
}

const struct cfg_pool *config_pool(const struct config *cfg, const char *id)
{
	for (size_t i = 0; i < cfg->n_pools; i++)
		if (cfg->pools[i].id && strcmp(cfg->pools[i].id, id) == 0)
			return &cfg->pools[i];
	return NULL;
}

const struct cfg_consortium *config_consortium(const struct config *cfg,
					       const char *id)
{
	for (size_t i = 0; i < cfg->n_consortia; i++)
		if (cfg->consortia[i].id && strcmp(cfg->consortia[i].id, id) == 0)
			return &cfg->consortia[i];
	return NULL;
}

const struct cfg_phase *config_phase_at(const struct config *cfg, int64_t t)
{
	for (size_t i = 0; i < cfg->n_phases; i++)
		if (cfg->phases[i].start <= t && t < cfg->phases[i].end)
			return &cfg->phases[i];
	return NULL;
}

bool config_has_gpu(const struct config *cfg, const char *gpu)
{
	for (size_t i = 0; i < cfg->n_pools; i++)
		if (cfg->pools[i].gpu && strcmp(cfg->pools[i].gpu, gpu) == 0)
			return true;
	return false;
}

const char *role_name(enum role r)
{
	if ((size_t)r < ARRAY_SIZE(role_names) && role_names[r] != NULL)
		return role_names[r];
	return "none";
}

int role_parse(const char *s, enum role *r)
{
	for (size_t i = 0; i < ARRAY_SIZE(role_names); i++) {
		if (role_names[i] && strcmp(role_names[i], s) == 0) {
			*r = (enum role)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* ---- the table, read back (for tests: tests/unit/test_config.c) --------- */

static const char *const type_names[] = {
	[T_STR] = "string", [T_INT] = "integer", [T_BOOL] = "bool",
	[T_TIME] = "time", [T_TZ] = "timezone", [T_ENUM] = "enum",
	[T_STRLIST] = "strings", [T_SHA256] = "sha256", [T_MODE] = "mode", [T_MAP] = "map",
	[T_LIST] = "list", [T_IDMAP] = "idmap",
};

typedef void config_key_fn(const char *path, const char *type,
			   const char *def, bool required, bool restart,
			   void *arg);

static void walk(const struct key *table, const char *prefix,
		 config_key_fn *fn, void *arg)
{
	for (const struct key *k = table; k->name != NULL; k++) {
		char *path = prefix[0] ? xasprintf("%s.%s", prefix, k->name) :
					 xstrdup(k->name);
		fn(path, type_names[k->type], k->def,
		   (k->flags & KEY_REQUIRED) != 0,
		   (k->flags & KEY_RESTART) != 0, arg);
		if (k->type == T_MAP) {
			walk(k->sub, path, fn, arg);
		} else if (k->type == T_LIST || k->type == T_IDMAP) {
			char *sub = xasprintf("%s%s", path,
					      k->type == T_LIST ? "[]" : ".*");
			fn(sub, "map", NULL, false, false, arg);	/* each entry */
			walk(k->sub, sub, fn, arg);
			free(sub);
		}
		free(path);
	}
}

/*
 * Calls fn for every row of the key table, depth first, with its path
 * ("daemon.socket", "phases[].id", "access.consortia.*.groups"; the
 * entries themselves as "phases[]", "access.consortia.*"), its type,
 * its default as written in the table (NULL: none), whether it is
 * required and whether a change needs a restart (the reload rule).
 */
void config__keys(config_key_fn *fn, void *arg);
void config__keys(config_key_fn *fn, void *arg)
{
	walk(top_keys, "", fn, arg);
}

static int get_leaf(const struct config *cfg, const struct key *k,
		    const void *base, char *buf, size_t len)
{
	const void *p = (const char *)base + k->off;
	struct buf b = {0};

	switch (k->type) {
	case T_STR:
	case T_TZ:
		snprintf(buf, len, "%s", *(char *const *)p ? *(char *const *)p : "~");
		return 0;
	case T_INT:
		snprintf(buf, len, "%" PRId64, *(const int64_t *)p);
		return 0;
	case T_MODE:
		snprintf(buf, len, "%04" PRIo64, *(const int64_t *)p);
		return 0;
	case T_BOOL:
		snprintf(buf, len, "%s", *(const bool *)p ? "true" : "false");
		return 0;
	case T_TIME:
		time_format(*(const int64_t *)p, cfg->tz_offset, buf, len);
		return 0;
	case T_ENUM:
		snprintf(buf, len, "%s", k->names[*(const int *)p] ?
			 k->names[*(const int *)p] : "~");
		return 0;
	case T_STRLIST: {
		const struct cfg_strlist *l = p;
		buf_puts(&b, "[");
		for (size_t i = 0; i < l->n; i++)
			buf_printf(&b, "%s%s", i ? ", " : "", l->v[i]);
		buf_puts(&b, "]");
		snprintf(buf, len, "%s", b.data);
		buf_free(&b);
		return 0;
	}
	case T_SHA256:
		for (size_t i = 0; i < 32 && 2 * i + 2 < len; i++)
			snprintf(buf + 2 * i, len - 2 * i, "%02x",
				 ((const uint8_t *)p)[i]);
		return 0;
	default:
		return -EISDIR;
	}
}

static int get(const struct config *cfg, const struct key *table,
	       const void *base, const char *path, char *buf, size_t len)
{
	size_t n = strcspn(path, ".[");
	const struct key *k;

	for (k = table; k->name != NULL; k++)
		if (strlen(k->name) == n && strncmp(k->name, path, n) == 0)
			break;
	if (k->name == NULL)
		return -ENOENT;
	const char *rest = path + n;
	if (k->type == T_MAP) {
		if (*rest != '.')
			return -EISDIR;
		return get(cfg, k->sub, (const char *)base + k->off, rest + 1,
			   buf, len);
	}
	if (k->type == T_LIST || k->type == T_IDMAP) {
		const char *elems = *(char *const *)((const char *)base + k->off);
		size_t count = *(const size_t *)((const char *)base + k->count_off);
		size_t i;
		if (k->type == T_LIST) {
			char *end;
			if (*rest != '[')
				return -EISDIR;
			i = strtoul(rest + 1, &end, 10);
			if (end == rest + 1 || *end != ']' || end[1] != '.')
				return -ENOENT;
			rest = end + 2;
		} else {
			if (*rest != '.')
				return -EISDIR;
			size_t idlen = strcspn(rest + 1, ".");
			for (i = 0; i < count; i++) {
				const char *id = *(char *const *)(elems + i * k->elem_size + k->id_off);
				if (id && strlen(id) == idlen &&
				    strncmp(id, rest + 1, idlen) == 0)
					break;
			}
			rest += 1 + idlen;
			if (*rest != '.')
				return -ENOENT;
			rest++;
		}
		if (i >= count)
			return -ENOENT;
		return get(cfg, k->sub, elems + i * k->elem_size, rest, buf, len);
	}
	if (*rest != '\0')
		return -ENOENT;
	return get_leaf(cfg, k, base, buf, len);
}

/*
 * Writes the value at path ("daemon.log_level", "pools[2].gpus",
 * "access.consortia.lg.groups") as text into buf: strings as they are
 * ("~" for unset), times in the program's zone, lists as "[a, b]".
 * Returns 0, -ENOENT (no such key or entry) or -EISDIR (not a leaf).
 */
int config__get(const struct config *cfg, const char *path, char *buf,
		size_t len);
int config__get(const struct config *cfg, const char *path, char *buf,
		size_t len)
{
	return get(cfg, top_keys, cfg, path, buf, len);
}

/* --- the structure a config entry records ------------------------------ */

static json_t *instant_json(int64_t t)
{
	return t == TIME_MIN || t == TIME_MAX ? json_null() : json_integer(t);
}

json_t *config_structure(const struct config *cfg)
{
	json_t *phases = json_array(), *pools = json_array(), *cons = json_array();

	for (size_t i = 0; i < cfg->n_phases; i++) {
		const struct cfg_phase *p = &cfg->phases[i];
		json_array_append_new(phases, json_pack("{s:s, s:s, s:o, s:o}", "id", p->id,
							"name", p->name, "start", instant_json(p->start),
							"end", instant_json(p->end)));
	}
	for (size_t i = 0; i < cfg->n_pools; i++) {
		const struct cfg_pool *p = &cfg->pools[i];
		json_array_append_new(pools, json_pack("{s:s, s:s, s:s, s:I, s:o, s:o, s:I}",
			"id", p->id, "provider", p->provider, "gpu", p->gpu,
			"gpus", (json_int_t)p->gpus, "available_from", instant_json(p->available_from),
			"available_until", instant_json(p->available_until),
			"gpus_per_node", (json_int_t)p->gpus_per_node));
	}
	for (size_t i = 0; i < cfg->n_consortia; i++) {
		const struct cfg_consortium *c = &cfg->consortia[i];
		json_t *members = json_array();
		for (size_t j = 0; j < c->members.n; j++)
			json_array_append_new(members, json_string(c->members.v[j]));
		json_array_append_new(cons, json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}",
			"id", c->id, "name", c->name, "lead", c->lead, "members", members,
			"joined", instant_json(c->joined),
			"eligible_from", instant_json(c->eligible_from)));
	}
	return json_pack("{s:{s:s, s:s, s:I, s:I}, s:o, s:o, s:o}",
			 "program", "name", cfg->program_name, "timezone", cfg->timezone,
			 "designation_grace_days", (json_int_t)cfg->designation_grace_days,
			 "retroactive_days", (json_int_t)cfg->retroactive_days,
			 "phases", phases, "pools", pools, "consortia", cons);
}
