/* SPDX-License-Identifier: MIT */
/*
 * gpuledger-slurm: the cluster bridge. It reads the ledger from gpuledgerd
 * (the same client as the CLI, tools/client.c) and makes a Slurm cluster
 * enforce it, through Slurm's own commands only (sacctmgr, scontrol,
 * sacct, run with an argv, never a shell):
 *
 *   sync   an account per consortium under account "gpuledger"; a QOS per
 *          (consortium, phase, GPU model) holding the budget in GPU-minutes
 *          (GrpTRESMins) and the cap (GrpTRES); the accounts' associations
 *          naming those QOS; a reservation per live allocation of a pool
 *          that gives slurm {cluster, partition} and gpus_per_node. Slurm's
 *          state is read first and only what differs is changed, so a
 *          second run changes nothing.
 *   usage  what sacct says finished jobs used, posted to POST /v1/usage,
 *          which is idempotent by (cluster, job id).
 *
 * Slurm 22.05 cannot reserve GPUs by TRES, only nodes, hence NodeCnt; it
 * has no "reset usage at this date", so a phase's QOS usage is reset here
 * (RawUsage=0) when the phase starts, which the QOS description records
 * so that it happens once. Times given to Slurm are UTC (TZ=UTC for the
 * commands). Amounts stay integers: GPU-seconds in the ledger, whole
 * GPU-minutes (rounded down) in Slurm.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "daemon/grammar.h"
#include "daemon/proto.h"
#include "daemon/timefmt.h"
#include "daemon/util.h"
#include "tools/client.h"

#define PROG "gpuledger-slurm"
#define PARENT_ACCOUNT "gpuledger"	/* the consortia's accounts sit under it */
#define NOGPU_QOS "gpuledger"		/* what an account without a budget gets */
/* a phase's QOS description, before and after its phase started (and its usage was reset) */
#define QOS_BEFORE "gpuledger from "
#define QOS_SINCE "gpuledger since "
#define RUN_TIMEOUT_S 300		/* one Slurm command */
#define MAX_OUTPUT (256u << 20)		/* bytes a Slurm command may print */
#define MAX_FIELDS 16

/* ---- options --------------------------------------------------------------- */

struct opts {
	const char *command;		/* "sync", "usage" or NULL (both, --watch) */
	const char *cluster;
	const char *since;
	bool dry_run;
	long watch;			/* seconds between rounds; 0: run once */
};

static volatile sig_atomic_t stopping;
static unsigned long rounds;		/* of --watch, in the Idempotency-Keys */

/* ---- running Slurm's commands ---------------------------------------------- */

struct argv {
	char **v;
	size_t n, cap;
};

static void av_add(struct argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void av_add(struct argv *a, const char *fmt, ...)
{
	va_list ap;

	if (a->n + 2 > a->cap) {
		a->cap = a->cap ? a->cap * 2 : 16;
		a->v = xreallocarray(a->v, a->cap, sizeof(char *));
	}
	va_start(ap, fmt);
	a->v[a->n++] = xvasprintf(fmt, ap);
	va_end(ap);
	a->v[a->n] = NULL;
}

static void av_free(struct argv *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	memset(a, 0, sizeof(*a));
}

/* The command line as a shell would take it back (malloc'd), for people. */
static char *av_text(const struct argv *a)
{
	struct buf b = { 0 };

	buf_puts(&b, "");
	for (size_t i = 0; i < a->n; i++) {
		const char *s = a->v[i];
		bool plain = *s != '\0';
		for (const char *p = s; *p && plain; p++)
			plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				       "0123456789-_=.,:/+@%", *p) != NULL;
		if (i)
			buf_puts(&b, " ");
		if (plain) {
			buf_puts(&b, s);
			continue;
		}
		buf_puts(&b, "'");
		for (const char *p = s; *p; p++) {
			if (*p == '\'')
				buf_puts(&b, "'\\''");
			else
				buf_append(&b, p, 1);
		}
		buf_puts(&b, "'");
	}
	return buf_take(&b);
}

struct run {
	struct buf out, err;
	int status;		/* the exit status; 128 + N for a signal */
};

static void run_free(struct run *r)
{
	buf_free(&r->out);
	buf_free(&r->err);
}

/* The first line of what a command said on stderr (or stdout), for a message. */
static char *run_why(const struct run *r)
{
	const struct buf *b = r->err.len ? &r->err : &r->out;
	const char *s = b->data ? b->data : "";
	while (*s == ' ' || *s == '\n')
		s++;
	char *line = xstrndup(s, strcspn(s, "\n"));
	char *clean = cell_dup(line);
	free(line);
	if (!*clean) {
		free(clean);
		return xasprintf("exit status %d", r->status);
	}
	return clean;
}

static bool drain(int fd, struct buf *b, bool *open)
{
	char chunk[65536];
	ssize_t n = read(fd, chunk, sizeof(chunk));

	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0) {
		*open = false;
		return true;
	}
	if (b->len + (size_t)n > MAX_OUTPUT)
		return false;
	buf_append(b, chunk, (size_t)n);
	return true;
}

/*
 * Runs argv (found on PATH, no shell), stdin from /dev/null, collecting
 * stdout and stderr. Returns 0 with r->status set, or -errno when the
 * command could not be run at all (r->err then says why).
 */
static int run_argv(const struct argv *a, struct run *r)
{
	int po[2], pe[2], rc = 0;
	bool oo = true, eo = true;
	time_t deadline = time(NULL) + RUN_TIMEOUT_S;
	struct buf *fail = &r->err;

	memset(r, 0, sizeof(*r));
	buf_puts(&r->out, "");
	buf_puts(&r->err, "");
	if (pipe2(po, O_CLOEXEC) != 0)
		return -errno;
	if (pipe2(pe, O_CLOEXEC) != 0) {
		rc = -errno;
		close(po[0]);
		close(po[1]);
		return rc;
	}
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		rc = -errno;
		close(po[0]); close(po[1]); close(pe[0]); close(pe[1]);
		return rc;
	}
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		if (in < 0 || dup2(in, 0) < 0 || dup2(po[1], 1) < 0 || dup2(pe[1], 2) < 0)
			_exit(127);
		signal(SIGPIPE, SIG_DFL);
		execvp(a->v[0], a->v);
		dprintf(2, "cannot run %s: %s\n", a->v[0], strerror(errno));
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	while ((oo || eo) && rc == 0) {
		struct pollfd p[2] = { { .fd = oo ? po[0] : -1, .events = POLLIN },
				       { .fd = eo ? pe[0] : -1, .events = POLLIN } };
		long left = (long)(deadline - time(NULL));
		if (left <= 0) {
			buf_printf(fail, "%s: no answer within %d s", a->v[0], RUN_TIMEOUT_S);
			rc = -ETIMEDOUT;
			break;
		}
		int n = poll(p, 2, (int)(left > 1 ? 1000 : left * 1000));
		if (n < 0 && errno != EINTR) {
			rc = -errno;
			break;
		}
		if (n <= 0)
			continue;
		if ((p[0].revents & (POLLIN | POLLHUP)) && !drain(po[0], &r->out, &oo))
			rc = -E2BIG;
		if ((p[1].revents & (POLLIN | POLLHUP)) && !drain(pe[0], &r->err, &eo))
			rc = -E2BIG;
	}
	close(po[0]);
	close(pe[0]);
	if (rc != 0)
		kill(pid, SIGKILL);
	int ws;
	while (waitpid(pid, &ws, 0) < 0)
		if (errno != EINTR) {
			ws = 127 << 8;
			break;
		}
	r->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	if (rc == 0 && r->status == 127 && strstr(r->err.data, "cannot run "))
		rc = -ENOENT;
	return rc;
}

/*
 * Runs a command whose output we read (a "show"). Returns 0 with r filled,
 * or an exit code after saying why.
 */
static int run_read(const struct argv *a, struct run *r)
{
	int rc = run_argv(a, r);
	if (rc == 0 && r->status == 0)
		return 0;
	char *why = run_why(r), *cmd = av_text(a);
	errmsg("%s: %s", cmd, rc == -E2BIG ? "too much output" : why);
	free(cmd);
	free(why);
	run_free(r);
	return rc == -ENOENT || rc == -ETIMEDOUT ? EXIT_UNAVAILABLE : EXIT_SOFTWARE;
}

/* ---- small parsers ------------------------------------------------------------ */

/* Splits line (modified) at sep into at most max fields; returns how many. */
static size_t split(char *line, char sep, char **f, size_t max)
{
	size_t n = 0;
	for (char *p = line; n < max;) {
		f[n++] = p;
		char *e = strchr(p, sep);
		if (!e)
			break;
		*e = '\0';
		p = e + 1;
	}
	return n;
}

static char *lower_dup(const char *s)
{
	char *d = xstrdup(s);
	for (char *p = d; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return d;
}

/*
 * The value of key in a TRES list ("cpu=8,gres/gpu:h200=4"), as a number:
 * true with *v, false when the key is absent. Keys compare without case.
 */
static bool tres_get(const char *list, const char *key, int64_t *v)
{
	size_t kl = strlen(key);
	for (const char *p = list; p && *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len > kl && p[kl] == '=' && strncasecmp(p, key, kl) == 0) {
			char *num = xstrndup(p + kl + 1, len - kl - 1);
			int rc = i64_parse(num, v);
			free(num);
			return rc == 0;
		}
		p = e ? e + 1 : NULL;
	}
	return false;
}

/* Whether the comma-separated list holds word (without case). */
static bool list_has(const char *list, const char *word)
{
	size_t wl = strlen(word);
	for (const char *p = list; p && *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == wl && strncasecmp(p, word, wl) == 0)
			return true;
		p = e ? e + 1 : NULL;
	}
	return false;
}

/* Whether two comma-separated lists hold the same words (without case). */
static bool list_same(const char *a, const char *b)
{
	size_t na = 0, nb = 0;
	for (const char *p = a; *p; p++)
		na += *p == ',';
	for (const char *p = b; *p; p++)
		nb += *p == ',';
	if ((*a ? na + 1 : 0) != (*b ? nb + 1 : 0))
		return false;
	for (const char *p = a; p && *p;) {
		const char *e = strchr(p, ',');
		char *w = e ? xstrndup(p, (size_t)(e - p)) : xstrdup(p);
		bool has = list_has(b, w);
		free(w);
		if (!has)
			return false;
		p = e ? e + 1 : NULL;
	}
	return true;
}

/* An instant as Slurm's commands take it: UTC, no zone ("2026-01-16T00:00:00"). */
static const char *slurm_time(int64_t t, char *buf, size_t len)
{
	time_format(t, 0, buf, len);
	size_t n = strlen(buf);
	if (n && buf[n - 1] == 'Z')
		buf[n - 1] = '\0';
	return buf;
}

/* Parses what Slurm prints in UTC; false for "Unknown", "None" and the like. */
static bool slurm_time_parse(const char *s, int64_t *t)
{
	const char *cause;
	return s[0] >= '0' && s[0] <= '9' && time_parse(s, 0, t, &cause) == 0;
}

/* ---- the ledger, as the daemon tells it ------------------------------------------ */

struct phase {
	const char *id;
	int64_t start, end;
};

struct pool {
	const char *id, *gpu, *partition;
	char *gpu_lc;
	int64_t gpus_per_node;		/* 0: none */
	bool here;			/* on the cluster being synced */
};

struct consortium {
	const char *id;
	bool eliminated;		/* at the ledger's now */
};

struct row {
	const char *consortium, *phase, *gpu;
	int64_t granted, expired, used, max_gpus;	/* max_gpus 0: no cap */
};

struct alloc {
	const char *id, *consortium;
	size_t pool;
	int64_t gpus, start, end;
};

struct ledger {
	json_t *status, *program, *quota, *allocs;	/* the answers, owning the strings */
	int64_t now;
	struct phase *phases;
	size_t n_phases;
	struct pool *pools;
	size_t n_pools;
	struct consortium *cons;
	size_t n_cons;
	struct row *rows;
	size_t n_rows;
	struct alloc *al;
	size_t n_al;
};

static void ledger_free(struct ledger *l)
{
	for (size_t i = 0; i < l->n_pools; i++)
		free(l->pools[i].gpu_lc);
	free(l->phases);
	free(l->pools);
	free(l->cons);
	free(l->rows);
	free(l->al);
	json_decref(l->status);
	json_decref(l->program);
	json_decref(l->quota);
	json_decref(l->allocs);
	memset(l, 0, sizeof(*l));
}

static bool jtime(const json_t *o, const char *key, int64_t *t)
{
	const char *s = jstr(o, key), *cause;
	return s && time_parse(s, 0, t, &cause) == 0;
}

static int bad_answer(const char *what)
{
	errmsg("the daemon's answer to %s is not what this version understands", what);
	return EXIT_SOFTWARE;
}

static const struct phase *phase_find(const struct ledger *l, const char *id)
{
	for (size_t i = 0; i < l->n_phases; i++)
		if (strcmp(l->phases[i].id, id) == 0)
			return &l->phases[i];
	return NULL;
}

/* The phase that holds instant t, or NULL (a gap, or outside the program). */
static const struct phase *phase_at(const struct ledger *l, int64_t t)
{
	for (size_t i = 0; i < l->n_phases; i++)
		if (l->phases[i].start <= t && t < l->phases[i].end)
			return &l->phases[i];
	return NULL;
}

static const struct consortium *cons_find(const struct ledger *l, const char *id)
{
	for (size_t i = 0; i < l->n_cons; i++)
		if (strcasecmp(l->cons[i].id, id) == 0)
			return &l->cons[i];
	return NULL;
}

/* The pool on this cluster of the given model (without case), or NULL. */
static const struct pool *pool_of_model(const struct ledger *l, const char *gpu)
{
	for (size_t i = 0; i < l->n_pools; i++)
		if (l->pools[i].here && strcasecmp(l->pools[i].gpu, gpu) == 0)
			return &l->pools[i];
	return NULL;
}

static int read_program(struct ledger *l, const char *cluster)
{
	size_t i;
	json_t *v, *ph = jget(l->program, "phases"), *po = jget(l->program, "pools"),
	       *co = jget(l->program, "consortia");

	if (!json_is_array(ph) || !json_is_array(po) || !json_is_array(co))
		return bad_answer("GET /v1/program");
	l->phases = xcalloc(json_array_size(ph) + 1, sizeof(*l->phases));
	json_array_foreach(ph, i, v) {
		struct phase *p = &l->phases[l->n_phases++];
		p->id = jstr(v, "id");
		if (!p->id || !jtime(v, "start", &p->start) || !jtime(v, "end", &p->end))
			return bad_answer("GET /v1/program (phases)");
	}
	l->pools = xcalloc(json_array_size(po) + 1, sizeof(*l->pools));
	json_array_foreach(po, i, v) {
		struct pool *p = &l->pools[l->n_pools++];
		const json_t *s = jget(v, "slurm");
		p->id = jstr(v, "id");
		p->gpu = jstr(v, "gpu");
		if (!p->id || !p->gpu)
			return bad_answer("GET /v1/program (pools)");
		p->gpu_lc = lower_dup(p->gpu);
		jint(v, "gpus_per_node", &p->gpus_per_node);
		if (json_is_object(s) && jstr(s, "cluster") && strcmp(jstr(s, "cluster"), cluster) == 0) {
			p->here = true;
			p->partition = jstr(s, "partition");
		}
	}
	l->cons = xcalloc(json_array_size(co) + 1, sizeof(*l->cons));
	json_array_foreach(co, i, v) {
		struct consortium *c = &l->cons[l->n_cons++];
		c->id = jstr(v, "id");
		if (!c->id)
			return bad_answer("GET /v1/program (consortia)");
		c->eliminated = jstr(v, "status") && strcmp(jstr(v, "status"), "eliminated") == 0;
	}
	return 0;
}

static int read_quota(struct ledger *l)
{
	size_t i;
	json_t *v, *q = jget(l->quota, "quota");

	if (!json_is_array(q))
		return bad_answer("GET /v1/quota");
	l->rows = xcalloc(json_array_size(q) + 1, sizeof(*l->rows));
	json_array_foreach(q, i, v) {
		struct row *r = &l->rows[l->n_rows++];
		r->consortium = jstr(v, "consortium");
		r->phase = jstr(v, "phase");
		r->gpu = jstr(v, "gpu");
		if (!r->consortium || !r->phase || !r->gpu ||
		    !jint(v, "granted_gpu_seconds", &r->granted) ||
		    !jint(v, "expired_gpu_seconds", &r->expired))
			return bad_answer("GET /v1/quota");
		/* metered use: older daemons do not have it */
		jint(v, "used_gpu_seconds", &r->used);
		jint(v, "max_gpus", &r->max_gpus);
	}
	return 0;
}

/* The live allocations (reserved or active, ending after now) of pools here. */
static int read_allocations(struct cli *cli, struct ledger *l)
{
	static const char *const states[] = { "reserved", "active" };

	l->allocs = json_array();
	for (size_t p = 0; p < l->n_pools; p++) {
		if (!l->pools[p].here || !l->pools[p].gpus_per_node)
			continue;
		for (size_t s = 0; s < ARRAY_SIZE(states); s++) {
			struct req r;
			json_t *j;
			req_init(&r, PROTO_ALLOCATIONS);
			req_query(cli, &r, FIELD_POOL, l->pools[p].id);
			req_query(cli, &r, FIELD_STATE, states[s]);
			int rc = api_call(cli, &r, &j);
			req_free(&r);
			if (rc != 0)
				return rc;
			size_t i;
			json_t *a, *arr = jget(j, "allocations");
			if (!json_is_array(arr)) {
				json_decref(j);
				return bad_answer("GET /v1/allocations");
			}
			l->al = xreallocarray(l->al, l->n_al + json_array_size(arr) + 1, sizeof(*l->al));
			json_array_foreach(arr, i, a) {
				struct alloc *x = &l->al[l->n_al];
				x->id = jstr(a, "id");
				x->consortium = jstr(a, "consortium");
				x->pool = p;
				if (!x->id || !x->consortium || !jint(a, "gpus", &x->gpus) ||
				    !jtime(a, "start", &x->start) || !jtime(a, "end", &x->end)) {
					json_decref(j);
					return bad_answer("GET /v1/allocations");
				}
				if (x->end > l->now)
					l->n_al++;
			}
			json_array_append_new(l->allocs, j);	/* keeps the strings */
		}
	}
	return 0;
}

/* Reads what sync and usage need from the daemon. Returns 0 or an exit code. */
static int ledger_read(struct cli *cli, struct ledger *l, const char *cluster, bool allocs)
{
	int rc;

	memset(l, 0, sizeof(*l));
	if ((rc = api_get(cli, PROTO_STATUS, &l->status)) != 0 ||
	    (rc = api_get(cli, PROTO_PROGRAM, &l->program)) != 0 ||
	    (rc = api_get(cli, PROTO_QUOTA, &l->quota)) != 0)
		return rc;
	if (!jtime(l->status, "clock", &l->now))
		return bad_answer("GET /v1/status");
	if ((rc = read_program(l, cluster)) != 0 || (rc = read_quota(l)) != 0)
		return rc;
	bool any = false;
	for (size_t i = 0; i < l->n_pools; i++)
		any |= l->pools[i].here;
	if (!any) {
		errmsg("no pool of the program has slurm: {cluster: %s} (gpuledger program)", cluster);
		return EXIT_CONFIG;
	}
	return allocs ? read_allocations(cli, l) : 0;
}

/* ---- Slurm's state --------------------------------------------------------------- */

struct squal {			/* a QOS as sacctmgr shows it */
	char *name, *desc, *flags, *grptres, *grptresmins;
};

struct sacct {			/* an account, and its association on the cluster */
	char *name, *desc, *org;
	bool assoc;
	char *parent, *qos, *defqos;
};

struct sresv {
	char *name, *partition, *accounts;
	int64_t start, end, nodecnt;
};

struct slurm {
	struct squal *qos;
	size_t n_qos;
	struct sacct *acc;
	size_t n_acc;
	struct sresv *resv;
	size_t n_resv;
};

static void slurm_free(struct slurm *s)
{
	for (size_t i = 0; i < s->n_qos; i++) {
		free(s->qos[i].name); free(s->qos[i].desc); free(s->qos[i].flags);
		free(s->qos[i].grptres); free(s->qos[i].grptresmins);
	}
	for (size_t i = 0; i < s->n_acc; i++) {
		free(s->acc[i].name); free(s->acc[i].desc); free(s->acc[i].org);
		free(s->acc[i].parent); free(s->acc[i].qos); free(s->acc[i].defqos);
	}
	for (size_t i = 0; i < s->n_resv; i++) {
		free(s->resv[i].name); free(s->resv[i].partition); free(s->resv[i].accounts);
	}
	free(s->qos);
	free(s->acc);
	free(s->resv);
	memset(s, 0, sizeof(*s));
}

static struct squal *squal_find(const struct slurm *s, const char *name)
{
	for (size_t i = 0; i < s->n_qos; i++)
		if (strcasecmp(s->qos[i].name, name) == 0)
			return &s->qos[i];
	return NULL;
}

static struct sacct *sacct_find(const struct slurm *s, const char *name)
{
	for (size_t i = 0; i < s->n_acc; i++)
		if (strcasecmp(s->acc[i].name, name) == 0)
			return &s->acc[i];
	return NULL;
}

static struct sresv *sresv_find(const struct slurm *s, const char *name)
{
	for (size_t i = 0; i < s->n_resv; i++)
		if (strcmp(s->resv[i].name, name) == 0)
			return &s->resv[i];
	return NULL;
}

/* Runs a `sacctmgr -n -P show ...`, calling row() for each line's fields. */
static int sacctmgr_show(struct slurm *s, size_t want, void (*row)(struct slurm *, char **),
			 const char *what, const char *where, const char *format)
{
	struct argv a = { 0 };
	struct run r;
	int rc;

	av_add(&a, "sacctmgr");
	av_add(&a, "-n");
	av_add(&a, "-P");
	av_add(&a, "show");
	av_add(&a, "%s", what);
	if (where) {
		av_add(&a, "where");
		av_add(&a, "%s", where);
	}
	av_add(&a, "format=%s", format);
	rc = run_read(&a, &r);
	av_free(&a);
	if (rc != 0)
		return rc;
	for (char *line = r.out.data, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *f[MAX_FIELDS];
		if (split(line, '|', f, MAX_FIELDS) >= want)
			row(s, f);
	}
	run_free(&r);
	return 0;
}

static void qos_row(struct slurm *s, char **f)
{
	s->qos = xreallocarray(s->qos, s->n_qos + 1, sizeof(*s->qos));
	s->qos[s->n_qos++] = (struct squal){ xstrdup(f[0]), xstrdup(f[1]), xstrdup(f[2]),
					     xstrdup(f[3]), xstrdup(f[4]) };
}

static void account_row(struct slurm *s, char **f)
{
	s->acc = xreallocarray(s->acc, s->n_acc + 1, sizeof(*s->acc));
	s->acc[s->n_acc++] = (struct sacct){ .name = xstrdup(f[0]), .desc = xstrdup(f[1]),
					     .org = xstrdup(f[2]) };
}

static void assoc_row(struct slurm *s, char **f)
{
	struct sacct *a = sacct_find(s, f[0]);
	if (!a || *f[1])	/* user associations are the site's */
		return;
	a->assoc = true;
	a->parent = xstrdup(f[2]);
	a->qos = xstrdup(f[3]);
	a->defqos = xstrdup(f[4]);
}

/* `scontrol show -o reservation`: one reservation per line of Key=Value words. */
static int read_reservations(struct slurm *s)
{
	struct argv a = { 0 };
	struct run r;
	int rc;

	av_add(&a, "scontrol");
	av_add(&a, "show");
	av_add(&a, "-o");
	av_add(&a, "reservation");
	rc = run_read(&a, &r);
	av_free(&a);
	if (rc != 0)
		return rc;
	for (char *line = r.out.data, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strncmp(line, "ReservationName=", 16) != 0)
			continue;	/* "No reservations in the system" */
		struct sresv v = { .start = TIME_MIN, .end = TIME_MIN };
		for (char *w = strtok(line, " "); w; w = strtok(NULL, " ")) {
			char *eq = strchr(w, '=');
			if (!eq)
				continue;
			*eq++ = '\0';
			if (strcmp(w, "ReservationName") == 0)
				v.name = xstrdup(eq);
			else if (strcmp(w, "PartitionName") == 0)
				v.partition = xstrdup(eq);
			else if (strcmp(w, "Accounts") == 0)
				v.accounts = xstrdup(eq);
			else if (strcmp(w, "StartTime") == 0)
				slurm_time_parse(eq, &v.start);
			else if (strcmp(w, "EndTime") == 0)
				slurm_time_parse(eq, &v.end);
			else if (strcmp(w, "NodeCnt") == 0)
				i64_parse(eq, &v.nodecnt);
		}
		if (!v.partition)
			v.partition = xstrdup("");
		if (!v.accounts)
			v.accounts = xstrdup("");
		s->resv = xreallocarray(s->resv, s->n_resv + 1, sizeof(*s->resv));
		s->resv[s->n_resv++] = v;
	}
	run_free(&r);
	return 0;
}

/* The cluster this host's Slurm is (scontrol show config), which sync changes. */
static int check_local_cluster(const char *cluster)
{
	struct argv a = { 0 };
	struct run r;
	int rc;

	av_add(&a, "scontrol");
	av_add(&a, "show");
	av_add(&a, "config");
	rc = run_read(&a, &r);
	av_free(&a);
	if (rc != 0)
		return rc;
	char *name = NULL;
	for (char *line = r.out.data, *next; line && *line && !name; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strncmp(line, "ClusterName", 11) != 0)
			continue;
		char *eq = strchr(line, '=');
		if (eq) {
			eq++;
			while (*eq == ' ')
				eq++;
			name = eq;
		}
	}
	rc = 0;
	if (!name || strcasecmp(name, cluster) != 0) {
		errmsg("this host's Slurm (scontrol show config) is cluster '%s', not '%s'",
		       name ? name : "?", cluster);
		rc = EXIT_CONFIG;
	}
	run_free(&r);
	return rc;
}

static int slurm_read(struct slurm *s, const char *cluster)
{
	int rc;
	char *where = xasprintf("cluster=%s", cluster);

	memset(s, 0, sizeof(*s));
	if ((rc = sacctmgr_show(s, 5, qos_row, "qos", NULL,
				"Name,Description,Flags,GrpTRES,GrpTRESMins")) == 0 &&
	    (rc = sacctmgr_show(s, 3, account_row, "account", NULL,
				"Account,Description,Organization")) == 0 &&
	    (rc = sacctmgr_show(s, 5, assoc_row, "assoc", where,
				"Account,User,ParentName,QOS,DefaultQOS")) == 0)
		rc = read_reservations(s);
	free(where);
	return rc;
}

/* ---- sync: what Slurm should hold, and the commands that make it so ----------------- */

struct change {
	char *what;		/* "qos lg-p1-h200", for messages */
	struct argv av;
};

struct plan {
	struct change *v;
	size_t n;
};

static struct argv *plan_add(struct plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static struct argv *plan_add(struct plan *p, const char *fmt, ...)
{
	va_list ap;

	p->v = xreallocarray(p->v, p->n + 1, sizeof(*p->v));
	struct change *c = &p->v[p->n++];
	memset(c, 0, sizeof(*c));
	va_start(ap, fmt);
	c->what = xvasprintf(fmt, ap);
	va_end(ap);
	return &c->av;
}

static void plan_free(struct plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].what);
		av_free(&p->v[i].av);
	}
	free(p->v);
	memset(p, 0, sizeof(*p));
}

/* A QOS the ledger wants. */
struct want_qos {
	char *name, *desc, *mins;	/* mins: the GrpTRESMins list */
	char *grptres;			/* the GrpTRES list, "" for none */
	char *clear;			/* TRES keys to clear (=-1), "" for none */
	bool reset;			/* its phase started: RawUsage=0 once */
};

static void want_free(struct want_qos *w)
{
	free(w->name); free(w->desc); free(w->mins); free(w->grptres); free(w->clear);
}

static char *qos_name(const struct row *r)
{
	char *n = xasprintf("%s-%s-%s", r->consortium, r->phase, r->gpu);
	char *l = lower_dup(n);
	free(n);
	return l;
}

/*
 * The budget in whole GPU-minutes: granted minus expired, or, for an
 * eliminated consortium, what it has used, so that nothing more starts.
 */
static int64_t budget_minutes(const struct ledger *l, const struct row *r)
{
	const struct consortium *c = cons_find(l, r->consortium);
	int64_t s = c && c->eliminated ? r->used : r->granted - r->expired;
	return s > 0 ? s / 60 : 0;
}

/* Changes of one QOS towards w; the flags it must carry are DenyOnLimit,NoDecay. */
static void plan_qos(struct plan *p, const struct slurm *s, const struct want_qos *w,
		     const char *flags)
{
	const struct squal *q = squal_find(s, w->name);

	if (!q) {
		struct argv *a = plan_add(p, "qos %s", w->name);
		av_add(a, "sacctmgr");
		av_add(a, "-i");
		av_add(a, "add");
		av_add(a, "qos");
		av_add(a, "%s", w->name);
		av_add(a, "Description=%s", w->desc);
		av_add(a, "Flags=%s", flags);
		if (*w->mins)
			av_add(a, "GrpTRESMins=%s", w->mins);
		if (*w->grptres)
			av_add(a, "GrpTRES=%s", w->grptres);
		return;
	}
	/*
	 * Only a QOS that was made before its phase started is reset, once:
	 * its description still says "from". Another description (a site's
	 * own) is rewritten, but what the QOS has counted stays.
	 */
	if (w->reset && strncasecmp(q->desc, QOS_BEFORE, strlen(QOS_BEFORE)) == 0) {
		struct argv *a = plan_add(p, "qos %s (its phase started: usage reset)", w->name);
		av_add(a, "sacctmgr");
		av_add(a, "-i");
		av_add(a, "modify");
		av_add(a, "qos");
		av_add(a, "where");
		av_add(a, "name=%s", w->name);
		av_add(a, "set");
		av_add(a, "RawUsage=0");
	}
	struct argv set = { 0 };
	if (strcasecmp(q->desc, w->desc) != 0)
		av_add(&set, "Description=%s", w->desc);
	char *fl = xstrdup(flags), *f[4];
	size_t nf = split(fl, ',', f, 4);
	struct buf missing = { 0 };
	for (size_t i = 0; i < nf; i++)
		if (!list_has(q->flags, f[i]))
			buf_printf(&missing, "%s%s", missing.len ? "," : "", f[i]);
	if (missing.len)
		av_add(&set, "Flags+=%s", missing.data);
	buf_free(&missing);
	free(fl);
	/* only our keys: a site's own limits on the same QOS stay */
	struct buf mins = { 0 }, tres = { 0 };
	char *list = xstrdup(w->mins), *e[MAX_FIELDS];
	size_t ne = *list ? split(list, ',', e, MAX_FIELDS) : 0;
	for (size_t i = 0; i < ne; i++) {
		char *eq = strchr(e[i], '=');
		int64_t have, want;
		*eq = '\0';
		i64_parse(eq + 1, &want);
		if (!tres_get(q->grptresmins, e[i], &have) || have != want)
			buf_printf(&mins, "%s%s=%" PRId64, mins.len ? "," : "", e[i], want);
	}
	free(list);
	list = xstrdup(w->grptres);
	ne = *list ? split(list, ',', e, MAX_FIELDS) : 0;
	for (size_t i = 0; i < ne; i++) {
		char *eq = strchr(e[i], '=');
		int64_t have, want;
		*eq = '\0';
		i64_parse(eq + 1, &want);
		if (!tres_get(q->grptres, e[i], &have) || have != want)
			buf_printf(&tres, "%s%s=%" PRId64, tres.len ? "," : "", e[i], want);
	}
	free(list);
	list = xstrdup(w->clear);
	ne = *list ? split(list, ',', e, MAX_FIELDS) : 0;
	for (size_t i = 0; i < ne; i++) {
		int64_t have;
		if (tres_get(q->grptres, e[i], &have))
			buf_printf(&tres, "%s%s=-1", tres.len ? "," : "", e[i]);
	}
	free(list);
	if (mins.len)
		av_add(&set, "GrpTRESMins=%s", mins.data);
	if (tres.len)
		av_add(&set, "GrpTRES=%s", tres.data);
	buf_free(&mins);
	buf_free(&tres);
	if (set.n) {
		struct argv *a = plan_add(p, "qos %s", w->name);
		av_add(a, "sacctmgr");
		av_add(a, "-i");
		av_add(a, "modify");
		av_add(a, "qos");
		av_add(a, "where");
		av_add(a, "name=%s", w->name);
		av_add(a, "set");
		for (size_t i = 0; i < set.n; i++)
			av_add(a, "%s", set.v[i]);
	}
	av_free(&set);
}

/* An account under parent, with its association on the cluster. */
static void plan_account(struct plan *p, const struct slurm *s, const char *cluster,
			 const char *name, const char *parent, const char *desc)
{
	const struct sacct *a = sacct_find(s, name);
	struct argv *v;

	if (!a || !a->assoc) {
		v = plan_add(p, "account %s", name);
		av_add(v, "sacctmgr");
		av_add(v, "-i");
		av_add(v, "add");
		av_add(v, "account");
		av_add(v, "%s", name);
		av_add(v, "Cluster=%s", cluster);
		av_add(v, "Parent=%s", parent);
		av_add(v, "Description=%s", desc);
		av_add(v, "Organization=%s", PARENT_ACCOUNT);
		return;
	}
	if (strcasecmp(a->desc, desc) != 0 || strcasecmp(a->org, PARENT_ACCOUNT) != 0) {
		v = plan_add(p, "account %s", name);
		av_add(v, "sacctmgr");
		av_add(v, "-i");
		av_add(v, "modify");
		av_add(v, "account");
		av_add(v, "where");
		av_add(v, "name=%s", name);
		av_add(v, "set");
		av_add(v, "Description=%s", desc);
		av_add(v, "Organization=%s", PARENT_ACCOUNT);
	}
	if (strcasecmp(a->parent, parent) != 0) {
		v = plan_add(p, "account %s (parent)", name);
		av_add(v, "sacctmgr");
		av_add(v, "-i");
		av_add(v, "modify");
		av_add(v, "account");
		av_add(v, "where");
		av_add(v, "name=%s", name);
		av_add(v, "cluster=%s", cluster);
		av_add(v, "set");
		av_add(v, "Parent=%s", parent);
	}
}

/* The QOS list and default QOS of an account's association on the cluster. */
static void plan_assoc(struct plan *p, const struct slurm *s, const char *cluster,
		       const char *name, const char *qos, const char *defqos)
{
	const struct sacct *a = sacct_find(s, name);

	if (a && a->assoc && list_same(a->qos, qos) && strcasecmp(a->defqos, defqos) == 0)
		return;
	struct argv *v = plan_add(p, "association %s", name);
	av_add(v, "sacctmgr");
	av_add(v, "-i");
	av_add(v, "modify");
	av_add(v, "account");
	av_add(v, "where");
	av_add(v, "name=%s", name);
	av_add(v, "cluster=%s", cluster);
	av_add(v, "set");
	av_add(v, "QOS=%s", qos);
	av_add(v, "DefaultQOS=%s", defqos);
}

/* The accounts, QOS and associations of the ledger's consortia. */
static void plan_accounts(struct plan *p, const struct ledger *l, const struct slurm *s,
			  const char *cluster)
{
	/* the QOS of an account without a budget: no GPU at all */
	struct want_qos none = { .name = xstrdup(NOGPU_QOS), .desc = xstrdup("gpuledger: no gpus"),
				 .mins = xstrdup(""), .clear = xstrdup("") };
	struct buf zero = { 0 };
	for (size_t i = 0; i < l->n_pools; i++) {
		char *key = xasprintf("gres/gpu:%s", l->pools[i].gpu_lc);
		if (l->pools[i].here && !strstr(zero.data ? zero.data : "", key))
			buf_printf(&zero, "%s%s=0", zero.len ? "," : "", key);
		free(key);
	}
	none.grptres = buf_take(&zero);
	plan_account(p, s, cluster, PARENT_ACCOUNT, "root", "gpuledger program");
	plan_qos(p, s, &none, "DenyOnLimit");
	plan_assoc(p, s, cluster, PARENT_ACCOUNT, NOGPU_QOS, NOGPU_QOS);
	want_free(&none);

	for (size_t c = 0; c < l->n_cons; c++) {
		const char *id = l->cons[c].id;
		char *desc = xasprintf("gpuledger consortium %s", id);
		plan_account(p, s, cluster, id, PARENT_ACCOUNT, desc);
		free(desc);
	}
	for (size_t i = 0; i < l->n_rows; i++) {
		const struct row *r = &l->rows[i];
		const struct pool *pool = pool_of_model(l, r->gpu);
		const struct phase *ph = phase_find(l, r->phase);
		if (!pool || !ph)
			continue;
		char *name = qos_name(r);
		bool gone = l->now >= ph->end && !squal_find(s, name);
		free(name);
		if (gone)
			continue;	/* a phase that ended before the bridge came */
		char ts[TIME_BUFSZ], *tsl;
		time_format(ph->start, 0, ts, sizeof(ts));
		tsl = lower_dup(ts);
		bool started = l->now >= ph->start;
		struct want_qos w = {
			.name = qos_name(r),
			.desc = xasprintf("%s%s", started ? QOS_SINCE : QOS_BEFORE, tsl),
			.mins = xasprintf("gres/gpu:%s=%" PRId64, pool->gpu_lc, budget_minutes(l, r)),
			.grptres = r->max_gpus > 0 ? xasprintf("gres/gpu:%s=%" PRId64, pool->gpu_lc,
							       r->max_gpus) : xstrdup(""),
			.clear = r->max_gpus > 0 ? xstrdup("") : xasprintf("gres/gpu:%s", pool->gpu_lc),
			.reset = started,
		};
		free(tsl);
		plan_qos(p, s, &w, "DenyOnLimit,NoDecay");
		want_free(&w);
	}
	/* each account may use the QOS of its phases that have not ended */
	for (size_t c = 0; c < l->n_cons; c++) {
		const char *id = l->cons[c].id;
		struct buf qos = { 0 };
		char *def = NULL;
		buf_puts(&qos, NOGPU_QOS);
		for (size_t k = 0; k < l->n_pools; k++) {
			if (!l->pools[k].here || pool_of_model(l, l->pools[k].gpu) != &l->pools[k])
				continue;	/* one pass per model of the cluster */
			for (size_t i = 0; i < l->n_rows; i++) {
				const struct row *r = &l->rows[i];
				const struct phase *ph = phase_find(l, r->phase);
				if (strcmp(r->consortium, id) != 0 ||
				    strcasecmp(r->gpu, l->pools[k].gpu) != 0 || !ph || l->now >= ph->end)
					continue;
				char *n = qos_name(r);
				buf_printf(&qos, ",%s", n);
				if (!def && ph->start <= l->now)
					def = n;
				else
					free(n);
			}
		}
		plan_assoc(p, s, cluster, id, qos.data, def ? def : NOGPU_QOS);
		free(def);
		buf_free(&qos);
	}
}

/* Reservations: one per live allocation of a pool here with gpus_per_node. */
static void plan_reservations(struct plan *p, const struct ledger *l, const struct slurm *s)
{
	int64_t now = l->now > (int64_t)time(NULL) ? l->now : (int64_t)time(NULL);
	char t1[TIME_BUFSZ], t2[TIME_BUFSZ];

	/* the ones that go first, to free their nodes for the others */
	for (size_t i = 0; i < s->n_resv; i++) {
		const struct sresv *v = &s->resv[i];
		int64_t num;
		bool live = false;
		if (alloc_id_parse(v->name, &num) != 0)
			continue;	/* not ours */
		for (size_t k = 0; k < l->n_al && !live; k++)
			live = strcmp(l->al[k].id, v->name) == 0 && l->al[k].end > now;
		if (live)
			continue;
		struct argv *a = plan_add(p, "reservation %s (no longer live)", v->name);
		av_add(a, "scontrol");
		av_add(a, "delete");
		av_add(a, "ReservationName=%s", v->name);
	}
	for (size_t k = 0; k < l->n_al; k++) {
		const struct alloc *x = &l->al[k];
		const struct pool *pool = &l->pools[x->pool];
		const struct sresv *v = sresv_find(s, x->id);
		int64_t nodes = x->gpus / pool->gpus_per_node;
		bool started = x->start <= now;
		if (x->end <= now)
			continue;
		struct argv set = { 0 };
		/* one that started began when it was made: its start is left alone */
		if (started ? !v || v->start > now : !v || v->start != x->start)
			av_add(&set, "StartTime=%s", started ? "now" : slurm_time(x->start, t1, sizeof(t1)));
		if (!v || v->end != x->end)
			av_add(&set, "EndTime=%s", slurm_time(x->end, t2, sizeof(t2)));
		if (!v || v->nodecnt != nodes)
			av_add(&set, "NodeCnt=%" PRId64, nodes);
		if (!v || strcasecmp(v->partition, pool->partition) != 0)
			av_add(&set, "PartitionName=%s", pool->partition);
		if (!v || strcasecmp(v->accounts, x->consortium) != 0)
			av_add(&set, "Accounts=%s", x->consortium);
		if (set.n) {
			struct argv *a = plan_add(p, "reservation %s", x->id);
			av_add(a, "scontrol");
			av_add(a, "%s", v ? "update" : "create");
			if (!v)
				av_add(a, "reservation");
			av_add(a, "ReservationName=%s", x->id);
			for (size_t i = 0; i < set.n; i++)
				av_add(a, "%s", set.v[i]);
		}
		av_free(&set);
	}
}

/* Runs (or, dry, prints) the plan. Returns 0, or EXIT_REFUSED if Slurm refused some. */
static int plan_apply(const struct plan *p, bool dry)
{
	size_t refused = 0;

	for (size_t i = 0; i < p->n; i++) {
		char *cmd = av_text(&p->v[i].av);
		printf("%s%s\n", dry ? "would run: " : "run: ", cmd);
		free(cmd);
		if (dry)
			continue;
		struct run r;
		int rc = run_argv(&p->v[i].av, &r);
		if (rc != 0 || r.status != 0) {
			char *why = run_why(&r);
			errmsg("%s: Slurm refused: %s", p->v[i].what, why);
			free(why);
			refused++;
		}
		run_free(&r);
	}
	if (p->n == 0)
		printf("no changes: Slurm already matches the ledger\n");
	else if (dry)
		printf("dry run: %zu change%s, none made\n", p->n, p->n == 1 ? "" : "s");
	else
		printf("%zu change%s made, %zu refused by Slurm\n", p->n - refused,
		       p->n - refused == 1 ? "" : "s", refused);
	return refused ? EXIT_REFUSED : 0;
}

static int cmd_sync(struct cli *cli, const struct opts *o)
{
	struct ledger l;
	struct slurm s = { 0 };
	struct plan p = { 0 };
	int rc;

	if ((rc = ledger_read(cli, &l, o->cluster, true)) == 0 &&
	    (rc = check_local_cluster(o->cluster)) == 0 &&
	    (rc = slurm_read(&s, o->cluster)) == 0) {
		plan_accounts(&p, &l, &s, o->cluster);
		plan_reservations(&p, &l, &s);
		rc = plan_apply(&p, o->dry_run);
	}
	plan_free(&p);
	slurm_free(&s);
	ledger_free(&l);
	fflush(stdout);
	return rc;
}

/* ---- usage: sacct's finished jobs, posted as metered use --------------------------- */

static const char *const finished_states[] = {
	"COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "NODE_FAIL", "OUT_OF_MEMORY",
	"PREEMPTED", "DEADLINE", "BOOT_FAIL",
};

static bool finished(const char *state)
{
	size_t n = strcspn(state, " +");
	for (size_t i = 0; i < ARRAY_SIZE(finished_states); i++)
		if (strlen(finished_states[i]) == n && strncmp(state, finished_states[i], n) == 0)
			return true;
	return false;
}

/* The GPU model (the program's spelling) and count of a job's AllocTRES, or NULL. */
static const char *job_gpus(const struct ledger *l, const char *tres, const char *partition,
			    int64_t *count)
{
	for (size_t i = 0; i < l->n_pools; i++) {
		char *key = xasprintf("gres/gpu:%s", l->pools[i].gpu_lc);
		bool has = tres_get(tres, key, count);
		free(key);
		if (has && *count > 0)
			return l->pools[i].gpu;
	}
	/* an untyped request: the model of the partition's pool */
	if (tres_get(tres, "gres/gpu", count) && *count > 0)
		for (size_t i = 0; i < l->n_pools; i++)
			if (l->pools[i].here && strcmp(l->pools[i].partition, partition) == 0)
				return l->pools[i].gpu;
	return NULL;
}

struct tally {
	size_t posted, duplicate, skipped, failed;
	int64_t seconds;
};

/* Posts one job's use; returns 0, or the client's exit code. */
static int post_job(struct cli *cli, const struct ledger *l, const char *cluster, char **f,
		    struct tally *t)
{
	/* JobID|Account|State|Start|End|ElapsedRaw|AllocTRES|Partition|Reservation */
	const char *job = f[0], *account = f[1], *resv = f[8];
	int64_t start, end, elapsed, count, secs, num;
	const struct consortium *c = cons_find(l, account);
	const char *gpu = job_gpus(l, f[6], f[7], &count);
	char ts[TIME_BUFSZ];

	if (!c || !gpu || !finished(f[2]) || !slurm_time_parse(f[3], &start) ||
	    !slurm_time_parse(f[4], &end) || i64_parse(f[5], &elapsed) != 0 ||
	    !job_id_valid(job) || !i64_mul(count, elapsed, &secs)) {
		t->skipped++;	/* not the program's, no GPU, or not finished */
		return 0;
	}
	struct req r;
	req_init(&r, PROTO_USAGE);
	req_str(&r, FIELD_SOURCE, cluster);
	req_str(&r, FIELD_JOB_ID, job);
	req_int(&r, FIELD_GPU_SECONDS, secs);
	req_str(&r, FIELD_END, time_format(end, 0, ts, sizeof(ts)));
	if (alloc_id_parse(resv, &num) == 0) {
		req_str(&r, FIELD_ALLOCATION, resv);	/* ran in the allocation's reservation */
	} else {
		const struct phase *ph = phase_at(l, start);
		if (!ph)
			ph = phase_at(l, end > start ? end - 1 : end);
		if (!ph) {
			errmsg("job %s: ran outside every phase of the program; not recorded", job);
			req_free(&r);
			t->skipped++;
			return 0;
		}
		req_str(&r, FIELD_CONSORTIUM, c->id);
		req_str(&r, FIELD_PHASE, ph->id);
		req_str(&r, FIELD_GPU, gpu);
	}
	/*
	 * A key per job and run: the daemon's own (source, job_id) rule is
	 * what makes a rerun count nothing, and says so ("duplicate"), which
	 * a replayed first answer would not. --watch's rounds differ.
	 */
	char *key = xasprintf("%s-%lu-%s", cli->uuid, rounds, job);
	cli->idem_key = key;
	json_t *j;
	int rc = api_call(cli, &r, &j);
	cli->idem_key = NULL;
	free(key);
	req_free(&r);
	if (rc != 0) {
		errmsg("job %s: not recorded", job);
		t->failed++;
		return rc;
	}
	if (json_is_true(jget(j, "duplicate"))) {
		t->duplicate++;
	} else {
		t->posted++;
		t->seconds += secs;
	}
	json_decref(j);
	return 0;
}

static int cmd_usage(struct cli *cli, const struct opts *o)
{
	struct ledger l;
	struct argv a = { 0 };
	struct run r = { 0 };
	struct tally t = { 0 };
	int64_t since;
	char ts[TIME_BUFSZ];
	const char *cause;
	int rc, worst = 0;

	if ((rc = ledger_read(cli, &l, o->cluster, false)) != 0)
		goto out;
	if (o->since) {
		/* without an offset, in the program's time zone, as for the CLI */
		int32_t tz = 0;
		const char *zone = jstr(jget(l.program, "program"), "timezone");
		if (zone && tz_parse(zone, &tz) != 0)
			tz = 0;
		if (time_parse(o->since, tz, &since, &cause) != 0) {
			errmsg("--since %s: %s", o->since, cause);
			rc = EXIT_USAGE;
			goto out;
		}
	} else {
		since = l.n_phases ? l.phases[0].start : 0;	/* the whole program */
		for (size_t i = 0; i < l.n_phases; i++)
			if (l.phases[i].start < since)
				since = l.phases[i].start;
	}
	av_add(&a, "sacct");
	av_add(&a, "--parsable2");
	av_add(&a, "--noheader");
	av_add(&a, "-X");
	av_add(&a, "-T");
	av_add(&a, "--noconvert");
	av_add(&a, "--allusers");
	av_add(&a, "--clusters=%s", o->cluster);
	av_add(&a, "--starttime=%s", slurm_time(since, ts, sizeof(ts)));
	av_add(&a, "--endtime=now");
	av_add(&a, "--format=JobID,Account,State,Start,End,ElapsedRaw,AllocTRES,Partition,Reservation");
	if ((rc = run_read(&a, &r)) != 0)
		goto out;
	for (char *line = r.out.data, *next; line && *line && !stopping; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *f[MAX_FIELDS];
		if (split(line, '|', f, MAX_FIELDS) < 9)
			continue;
		rc = post_job(cli, &l, o->cluster, f, &t);
		if (rc == EXIT_UNAVAILABLE) {
			worst = rc;	/* the daemon went away: the rest would fail too */
			break;
		}
		if (rc != 0)
			worst = EXIT_REFUSED;
	}
	printf("usage: %zu job%s recorded (%" PRId64 " GPU-seconds), %zu already recorded, "
	       "%zu not the program's or without GPUs, %zu refused\n",
	       t.posted, t.posted == 1 ? "" : "s", t.seconds, t.duplicate, t.skipped, t.failed);
	rc = worst;
out:
	run_free(&r);
	av_free(&a);
	ledger_free(&l);
	fflush(stdout);
	return rc;
}

/* ---- main ----------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fputs("usage: " PROG " [OPTIONS] sync --cluster NAME [--dry-run]\n"
	      "       " PROG " [OPTIONS] usage --cluster NAME [--since T]\n"
	      "       " PROG " [OPTIONS] --watch SECONDS --cluster NAME [--since T]\n"
	      "\n"
	      "Makes the Slurm cluster NAME enforce the gpuledger ledger, and posts what\n"
	      "its jobs used back to the ledger (see gpuledger-slurm(8)).\n"
	      "\n"
	      "commands:\n"
	      "  sync    accounts, QOS budgets and caps, associations and reservations\n"
	      "          made to match the ledger; only what differs is changed\n"
	      "  usage   finished jobs' GPU-seconds (sacct) posted to POST /v1/usage;\n"
	      "          a rerun never counts a job twice\n"
	      "\n"
	      "options:\n"
	      "  --cluster NAME     the Slurm cluster (env GPULEDGER_SLURM_CLUSTER); sync\n"
	      "                     runs on its controller host\n"
	      "  --dry-run          sync: print the commands it would run, run none\n"
	      "  --since T          usage: jobs that ran after T (default: the program's start)\n"
	      "  --watch SECONDS    run the command (default: sync, then usage) every SECONDS\n"
	      "                     until SIGTERM\n"
	      "  --socket PATH      the daemon's Unix socket (env GPULEDGER_SOCKET)\n"
	      "  --url URL          the daemon over HTTP (env GPULEDGER_URL), with\n"
	      "  --token-file FILE  a token of role agent, operator or admin (env\n"
	      "                     GPULEDGER_TOKEN_FILE)\n"
	      "  --help, --version\n", f);
}

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static int run_once(struct cli *cli, const struct opts *o)
{
	rounds++;
	if (o->command && strcmp(o->command, "sync") == 0)
		return cmd_sync(cli, o);
	if (o->command)
		return cmd_usage(cli, o);
	int rc = cmd_sync(cli, o);
	int rc2 = stopping ? 0 : cmd_usage(cli, o);
	return rc ? rc : rc2;
}

/* Rounds until SIGTERM; a failed round is said and the next one comes anyway. */
static int watch(struct cli *cli, const struct opts *o)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	while (!stopping) {
		int rc = run_once(cli, o);
		if (rc != 0)
			errmsg("this round ended with status %d; next one in %ld s", rc, o->watch);
		fflush(stderr);
		struct timespec ts = { .tv_sec = o->watch };
		while (!stopping && nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	return 0;
}

int main(int argc, char **argv)
{
	enum { O_SOCKET = 256, O_URL, O_TOKEN, O_CLUSTER, O_SINCE, O_DRY, O_WATCH, O_VERSION };
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, O_SOCKET },
		{ "url", required_argument, NULL, O_URL },
		{ "token-file", required_argument, NULL, O_TOKEN },
		{ "cluster", required_argument, NULL, O_CLUSTER },
		{ "since", required_argument, NULL, O_SINCE },
		{ "dry-run", no_argument, NULL, O_DRY },
		{ "watch", required_argument, NULL, O_WATCH },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, O_VERSION },
		{ 0 },
	};
	struct cli cli = { 0 };
	struct opts o = { 0 };
	const char *sock = NULL, *url = NULL, *watch_s = NULL;
	int c, rc;

	client_prog = PROG;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case O_SOCKET: sock = optarg; break;
		case O_URL: url = optarg; break;
		case O_TOKEN: cli.token_file = optarg; break;
		case O_CLUSTER: o.cluster = optarg; break;
		case O_SINCE: o.since = optarg; break;
		case O_DRY: o.dry_run = true; break;
		case O_WATCH: watch_s = optarg; break;
		case 'h': usage(stdout); return 0;
		case O_VERSION: printf(PROG " %s\n", GPULEDGER_VERSION); return 0;
		default:
			errmsg("unknown option or missing value: '%s'", argv[optind - 1]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		o.command = argv[optind++];
	if (optind < argc) {
		errmsg("too many arguments: '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	if (o.command && strcmp(o.command, "sync") != 0 && strcmp(o.command, "usage") != 0) {
		errmsg("unknown command '%s' (sync, usage)", o.command);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!o.command && !watch_s) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (watch_s) {
		int64_t w;
		if (i64_parse(watch_s, &w) != 0 || w < 1 || w > 86400) {
			errmsg("--watch %s: seconds between rounds, 1 to 86400", watch_s);
			return EXIT_USAGE;
		}
		o.watch = (long)w;
	}
	if (!o.cluster)
		o.cluster = env("GPULEDGER_SLURM_CLUSTER");
	if (!o.cluster) {
		errmsg("--cluster NAME is needed (or GPULEDGER_SLURM_CLUSTER)");
		return EXIT_USAGE;
	}
	if (!slurm_cluster_valid(o.cluster)) {
		errmsg("--cluster %s: a Slurm cluster name is lowercase letters, digits, '-' "
		       "and '_'", o.cluster);
		return EXIT_DATAERR;
	}
	if (o.dry_run && (!o.command || strcmp(o.command, "sync") != 0)) {
		errmsg("--dry-run is for sync (usage has none: a rerun of it changes nothing)");
		return EXIT_USAGE;
	}
	if (sock && url) {
		errmsg("--socket and --url exclude each other");
		return EXIT_USAGE;
	}
	/* as the CLI: an option beats the environment; a --socket beats $GPULEDGER_URL */
	cli.url = url ? url : sock ? NULL : env("GPULEDGER_URL");
	cli.socket = sock ? sock : env("GPULEDGER_SOCKET");
	if (!cli.socket)
		cli.socket = DEFAULT_SOCKET;
	if (!cli.token_file)
		cli.token_file = env("GPULEDGER_TOKEN_FILE");
	/* what Slurm's commands read and print is UTC */
	setenv("TZ", "UTC", 1);
	tzset();
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0) {
		errmsg("cannot initialise libsodium");
		return EXIT_SOFTWARE;
	}
	if ((rc = client_open(&cli)) == 0) {
		rc = o.watch ? watch(&cli, &o) : run_once(&cli, &o);
	}
	client_close(&cli);
	if (fflush(stdout) != 0 && errno != EPIPE && rc == 0)
		rc = EXIT_SOFTWARE;
	return rc;
}
