/* SPDX-License-Identifier: MIT */
/*
 * The performance contract's measurements (DESIGN.md, Additions,
 * "Performance contract"), run as `tools/dev bench`: a load generator
 * that drives a real gpuledgerd over its Unix socket (HTTP/1.1 keep-alive,
 * one request in flight per connection), closed loop at 1/4/16/64/256
 * connections and open loop at fixed rates with latency counted from each
 * request's intended send time (so a stalled daemon cannot hide its queue),
 * every status counted; beside it, in the same run, the ceiling of SQLite
 * itself: transactions of three inserts per request (journal, allocation,
 * idempotency rows, the daemon's own schema and pragmas) at the batch size
 * the daemon was seen to commit. The databases with many live allocations
 * are built through the project's own ledger and store (state_commit()),
 * not by hand, so that they hold what the daemon would have written.
 * Every figure is one line "name value ..." so that a test can check that
 * all of them were printed; none is asserted.
 */
#include "daemon/config.h"
#include "daemon/ledger.h"
#include "daemon/state.h"
#include "daemon/store.h"
#include "daemon/timefmt.h"
#include "daemon/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>
#include <sqlite3.h>

#define MAX_CONNS 256
#define NOW_ISO "2029-12-01T00:00:00Z"	/* the simulated clock: every booking is ahead */
#define SLOT_START INT64_C(1893456000)	/* 2030-01-01T00:00:00Z: slot 0 */
#define HISTORY_ISO "2031-01-01T00:00:00Z"	/* after the last slot of 1e6 bookings and more */
#define POOL_GPUS 1024			/* one 1-GPU hour per GPU per slot */
#define N_CONSORTIA 4

static const char *daemon_path;
static const char *dir;
static bool quick;
static bool http_only;		/* --only-http: the fresh ledger's runs, no growth */
static bool live_only;		/* --live-only: start-ups and memory at 1e3 and 1e6 live */
static bool growth_only;	/* --growth-only: the live ledgers' figures, no fresh-ledger loops */
static int closed_only;		/* --closed N: one closed loop at N connections, nothing else */
static int64_t run_ns;			/* how long each measured run lasts */
static unsigned run_tag;		/* keeps Idempotency-Keys unique across runs */

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("loadbench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* n per second over ns nanoseconds, as an integer (n * 1e9 / ns). */
static uint64_t per_s(uint64_t n, uint64_t ns)
{
	return ns ? (uint64_t)((unsigned __int128)n * 1000000000u / ns) : 0;
}

/* "a/b" in hundredths, printed as 0.00. */
static void ratio(char *out, size_t len, uint64_t a, uint64_t b)
{
	uint64_t h = b ? a * 100 / b : 0;
	snprintf(out, len, "%" PRIu64 ".%02" PRIu64, h / 100, h % 100);
}

static char *path_in(const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

/* --- the program the bench books on ----------------------------------- */

static char *write_config(const char *name, const char *db, const char *sock)
{
	char *path = path_in(name), *log = xasprintf("%s.log", path);
	const struct passwd *pw = getpwuid(getuid());
	FILE *f = fopen(path, "w");
	if (f == NULL)
		die("%s: %s", path, strerror(errno));
	fprintf(f,
		"daemon:\n"
		"  socket: %s\n"
		"  database: %s\n"
		"  log: %s\n"
		"  log_level: info\n"
		"  max_connections: %d\n"
		"access:\n"
		"  admins: {users: [\"%s\"], groups: []}\n"
		"program:\n"
		"  name: Benchmark program\n"
		"  timezone: UTC\n"
		"  designation_grace_days: 0\n"
		"phases:\n"
		"  - {id: p1, name: long, start: 2030-01-01, end: 2130-01-01}\n"
		"pools:\n"
		"  - {id: bench, provider: Bench, gpu: B200, gpus: %d}\n"
		"consortia:\n",
		sock, db, log, 4 * MAX_CONNS + 16, pw ? pw->pw_name : "root", POOL_GPUS);
	for (int i = 0; i < N_CONSORTIA; i++)
		fprintf(f, "  - {id: c%d, name: Consortium %d, lead: Lead %d, members: []}\n",
			i, i, i);
	if (fclose(f) != 0)
		die("%s: %s", path, strerror(errno));
	free(log);
	return path;
}

/* Allocation k: 1 GPU for the hour of slot k / POOL_GPUS, round-robin over the consortia. */
static void booking(uint64_t k, int64_t *start, int *consortium)
{
	*start = SLOT_START + (int64_t)(k / POOL_GPUS) * 3600;
	*consortium = (int)(k % N_CONSORTIA);
}

static void commit_or_die(struct store *s, struct jlist *batch)
{
	if (state_commit(s, batch->v, batch->n, NULL, NULL, 0) != 0)
		die("commit: %s", store_errmsg(s));
	jlist_clear(batch);
}

/*
 * A database whose ledger holds n live allocations (and a grant per
 * consortium), built by the ledger's own rules and committed by the store in
 * batches as the daemon does. Prints how long it took.
 */
static void generate(const char *cfg_path, const char *db, uint64_t n)
{
	struct config *cfg;
	struct store *s;
	struct ledger *l;
	char *cause = NULL;
	struct jlist batch = {0}, out = {0};
	struct ledger_error err = {0};
	int64_t now;
	uint64_t t0 = mono_ns();

	unlink(db);
	if (config_load(cfg_path, &cfg, &cause) != 0)
		die("%s: %s", cfg_path, cause);
	if (time_parse(NOW_ISO, 0, &now, NULL) != 0)
		die("bad NOW_ISO");
	if (store_open_flags(db, STORE_CREATE | STORE_EXCL, &s, &cause) != 0 ||
	    state_load(s, cfg, now, &l, &cause) != 0)
		die("%s: %s", db, cause);
	struct ledger_ctx ctx = {.now = now, .actor = "loadbench", .request_id = "generate"};
	for (int i = 0; i < N_CONSORTIA; i++) {
		char id[8];
		snprintf(id, sizeof(id), "c%d", i);
		struct grant_req g = {.consortium = id, .phase = "p1", .gpu = "B200",
				      .gpu_seconds = INT64_C(100000000000), .max_gpus = -1,
				      .reason = "bench"};
		if (ledger_grant(l, &ctx, &g, &out, &err) != 0)
			die("grant: %s", err.message);
		for (size_t j = 0; j < out.n; j++)
			*jlist_push(&batch) = out.v[j];
		out.n = 0;
	}
	for (uint64_t k = 0; k < n; k++) {
		char id[8];
		int64_t start;
		int c;
		const char *aid;
		booking(k, &start, &c);
		snprintf(id, sizeof(id), "c%d", c);
		struct alloc_req r = {.consortium = id, .pool = "bench", .gpus = 1,
				      .start = start, .end = start + 3600};
		if (ledger_allocate(l, &ctx, &r, &out, &aid, &err) != 0)
			die("allocate %" PRIu64 ": %s", k, err.message);
		for (size_t j = 0; j < out.n; j++)
			*jlist_push(&batch) = out.v[j];
		out.n = 0;
		if (batch.n >= 10000)
			commit_or_die(s, &batch);
	}
	commit_or_die(s, &batch);
	free(out.v);
	ledger_free(l);
	store_close(s);
	config_free(cfg);
	printf("generate_s             %8.2f  (%" PRIu64 " allocations through ledger_allocate + state_commit)\n",
	       (double)(mono_ns() - t0) / 1e9, n);
}

/* --- the daemon -------------------------------------------------------- */

struct daemon {
	pid_t pid;
	char *cfg, *db, *sock;
	uint64_t ready_ns;	/* from exec to READY=1 */
	uint64_t made;		/* allocations in its ledger: where the next slot is */
};

/* Starts gpuledgerd on d's config and waits for READY=1 on a notify socket of our own. */
static void daemon_start_at(struct daemon *d, const char *clock)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char *np = path_in("notify.sock"), buf[512];
	int ns = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	unlink(np);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", np);
	if (ns < 0 || bind(ns, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		die("notify socket %s: %s", np, strerror(errno));
	int on = 1;
	setsockopt(ns, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on));
	uint64_t t0 = mono_ns();
	d->pid = fork();
	if (d->pid < 0)
		die("fork: %s", strerror(errno));
	if (d->pid == 0) {
		setenv("NOTIFY_SOCKET", np, 1);
		execl(daemon_path, daemon_path, "--config", d->cfg, "--clock", clock, (char *)NULL);
		_exit(127);
	}
	for (;;) {
		struct pollfd p = {.fd = ns, .events = POLLIN};
		int rc = poll(&p, 1, 1000);
		int st;
		if (rc == 0 && waitpid(d->pid, &st, WNOHANG) == d->pid)
			die("gpuledgerd exited at start-up (status %d); see %s.log", st, d->cfg);
		if (rc <= 0)
			continue;
		ssize_t n = recv(ns, buf, sizeof(buf) - 1, 0);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		if (strstr(buf, "READY=1"))
			break;
	}
	d->ready_ns = mono_ns() - t0;
	close(ns);
	unlink(np);
	free(np);
}

static void daemon_free(struct daemon *d)
{
	free(d->cfg);
	free(d->db);
	free(d->sock);
}

static void daemon_start(struct daemon *d)
{
	daemon_start_at(d, NOW_ISO);
}

static void daemon_stop(struct daemon *d)
{
	int st;
	kill(d->pid, SIGTERM);
	if (waitpid(d->pid, &st, 0) != d->pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("gpuledgerd did not stop cleanly (status %d)", st);
	d->pid = 0;
}

static uint64_t daemon_rss_kib(const struct daemon *d)
{
	char path[64], line[256];
	uint64_t kib = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)d->pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		die("%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %" SCNu64, &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* CPU time the daemon has used, all its threads, in microseconds (utime + stime). */
static uint64_t daemon_cpu_us(const struct daemon *d)
{
	char path[64], buf[1024];
	unsigned long long ut = 0, st = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)d->pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		die("%s: %s", path, strerror(errno));
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* after the command's ")": state, then 10 fields, then utime and stime */
	const char *p = strrchr(buf, ')');
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
				&ut, &st) != 2)
		die("%s: unexpected format", path);
	long hz = sysconf(_SC_CLK_TCK);
	return (uint64_t)(ut + st) * 1000000u / (uint64_t)(hz > 0 ? hz : 100);
}

/* --- the client ---------------------------------------------------------- */

enum kind { K_ALLOCATE, K_QUOTA, K_STATUS };

struct conn {
	int fd;
	enum kind kind;
	http_parser p;
	bool busy;
	bool done;		/* the response in flight completed */
	uint64_t intended;	/* when the request in flight was meant to leave */
	char out[768];
	size_t out_len, out_off;
	struct load *load;
	/* the body, for GET /v1/status */
	char *body;
	size_t body_len;
};

struct load {
	struct daemon *d;
	uint64_t next_alloc;	/* the booking the next POST makes */
	uint64_t statuses[600];	/* by HTTP status; [0]: the connection failed */
	uint64_t done[3];	/* completed, by kind */
	uint64_t *lat;		/* open loop: latencies in ns */
	size_t n_lat, cap_lat;
};

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	if (c->kind == K_STATUS) {
		c->body = xrealloc(c->body, c->body_len + len + 1);
		memcpy(c->body + c->body_len, at, len);
		c->body_len += len;
		c->body[c->body_len] = '\0';
	}
	return 0;
}

static int on_complete(http_parser *p)
{
	struct conn *c = p->data;
	c->done = true;
	return 0;
}

static const http_parser_settings settings = {
	.on_body = on_body,
	.on_message_complete = on_complete,
};

static void conn_open(struct conn *c, struct load *L, enum kind kind)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memset(c, 0, sizeof(*c));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", L->d->sock);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		die("connect %s: %s", sa.sun_path, strerror(errno));
	fcntl(c->fd, F_SETFL, O_NONBLOCK);
	c->kind = kind;
	c->load = L;
	http_parser_init(&c->p, HTTP_RESPONSE);
	c->p.data = c;
}

static void conn_close(struct conn *c)
{
	close(c->fd);
	free(c->body);
	c->body = NULL;
}

static void conn_send(struct conn *c, uint64_t intended)
{
	struct load *L = c->load;
	int n;

	if (c->kind == K_ALLOCATE) {
		char body[256], start[TIME_BUFSZ];
		int64_t s;
		int k;
		uint64_t a = L->d->made + L->next_alloc++;
		booking(a, &s, &k);
		int blen = snprintf(body, sizeof(body),
				    "{\"consortium\":\"c%d\",\"pool\":\"bench\",\"gpus\":1,"
				    "\"start\":\"%s\",\"duration_s\":3600}",
				    k, time_format(s, 0, start, sizeof(start)));
		n = snprintf(c->out, sizeof(c->out),
			     "POST /v1/allocations HTTP/1.1\r\nHost: localhost\r\n"
			     "Content-Type: application/json\r\nIdempotency-Key: bench-%u-%" PRIu64 "\r\n"
			     "Content-Length: %d\r\n\r\n%s", run_tag, a, blen, body);
	} else {
		n = snprintf(c->out, sizeof(c->out), "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n",
			     c->kind == K_QUOTA ? "/v1/quota" : "/v1/status");
	}
	c->out_len = (size_t)n;
	c->out_off = 0;
	c->busy = true;
	c->done = false;
	c->intended = intended;
	c->body_len = 0;
}

/* Writes what is pending and reads what came; returns true when a response completed. */
static bool conn_io(struct conn *c, short revents)
{
	struct load *L = c->load;
	char buf[16384];

	if (c->out_off < c->out_len && (revents & POLLOUT)) {
		ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
		if (n > 0)
			c->out_off += (size_t)n;
		else if (n < 0 && errno != EAGAIN)
			die("write: %s", strerror(errno));
	}
	if (!(revents & (POLLIN | POLLHUP | POLLERR)))
		return false;
	ssize_t n = read(c->fd, buf, sizeof(buf));
	if (n < 0 && errno == EAGAIN)
		return false;
	if (n <= 0) {
		L->statuses[0]++;
		die("the daemon closed a connection (%s)", n < 0 ? strerror(errno) : "EOF");
	}
	size_t used = http_parser_execute(&c->p, &settings, buf, (size_t)n);
	if (used != (size_t)n || HTTP_PARSER_ERRNO(&c->p) != HPE_OK)
		die("bad HTTP response: %s", http_errno_name(HTTP_PARSER_ERRNO(&c->p)));
	if (!c->done)
		return false;
	unsigned st = c->p.status_code;
	L->statuses[st < 600 ? st : 599]++;
	L->done[c->kind]++;
	c->busy = false;
	return true;
}

/* One request on a connection of its own, answered before this returns. */
static char *request_once(struct daemon *d, enum kind kind)
{
	struct load L = {.d = d};
	struct conn c;

	conn_open(&c, &L, kind);
	conn_send(&c, mono_ns());
	while (c.busy) {
		struct pollfd p = {.fd = c.fd, .events = POLLIN | (c.out_off < c.out_len ? POLLOUT : 0)};
		if (poll(&p, 1, 10000) <= 0)
			die("no answer from the daemon in 10 s");
		conn_io(&c, p.revents);
	}
	char *body = c.body ? xstrdup(c.body) : xstrdup("");
	conn_close(&c);
	return body;
}

/* commits and committed entries, from GET /v1/status's counters */
static void daemon_counters(struct daemon *d, uint64_t *commits, uint64_t *entries)
{
	char *b = request_once(d, K_STATUS), *p;
	*commits = (p = strstr(b, "\"commits\":")) ? strtoull(p + 10, NULL, 10) : 0;
	*entries = (p = strstr(b, "\"committed_entries\":")) ? strtoull(p + 20, NULL, 10) : 0;
	free(b);
}

struct mix {
	int writers, readers;
};

struct result {
	uint64_t ns;
	uint64_t cpu_us;	/* the daemon's CPU time over the run */
	uint64_t writes, reads;
	uint64_t commits, entries;
	uint64_t statuses[600];
};

static void statuses_text(const uint64_t *st, char *out, size_t len)
{
	size_t o = 0;
	out[0] = '\0';
	for (int i = 0; i < 600 && o < len; i++)
		if (st[i])
			o += (size_t)snprintf(out + o, len - o, "%s%d:%" PRIu64, o ? "," : "", i, st[i]);
}

/* Closed loop: every connection sends its next request as soon as the last is answered. */
static void closed_loop(struct daemon *d, struct mix m, struct result *r)
{
	struct load L = {.d = d};
	int n = m.writers + m.readers;
	struct conn *c = xcalloc((size_t)n, sizeof(*c));
	struct pollfd *p = xcalloc((size_t)n, sizeof(*p));
	uint64_t c0, e0, c1, e1;

	run_tag++;
	for (int i = 0; i < n; i++)
		conn_open(&c[i], &L, i < m.writers ? K_ALLOCATE : K_QUOTA);
	daemon_counters(d, &c0, &e0);
	uint64_t cpu0 = daemon_cpu_us(d);
	uint64_t t0 = mono_ns(), end = t0 + (uint64_t)run_ns;
	for (int i = 0; i < n; i++)
		conn_send(&c[i], t0);
	int busy = n;
	while (busy > 0) {
		for (int i = 0; i < n; i++)
			p[i] = (struct pollfd){.fd = c[i].busy ? c[i].fd : -1,
				.events = POLLIN | (c[i].out_off < c[i].out_len ? POLLOUT : 0)};
		if (poll(p, (nfds_t)n, 10000) <= 0)
			die("no answer from the daemon in 10 s");
		uint64_t now = mono_ns();
		for (int i = 0; i < n; i++) {
			if (!p[i].revents || !conn_io(&c[i], p[i].revents))
				continue;
			if (now < end)
				conn_send(&c[i], now);
			else
				busy--;
		}
	}
	r->ns = mono_ns() - t0;
	r->cpu_us = daemon_cpu_us(d) - cpu0;
	daemon_counters(d, &c1, &e1);
	r->writes = L.done[K_ALLOCATE];
	r->reads = L.done[K_QUOTA];
	r->commits = c1 - c0;
	r->entries = e1 - e0;
	memcpy(r->statuses, L.statuses, sizeof(r->statuses));
	d->made += L.next_alloc;
	for (int i = 0; i < n; i++)
		conn_close(&c[i]);
	free(c);
	free(p);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * Open loop at rate requests/s: request i is due at t0 + i/rate and leaves
 * on the first free connection; its latency runs from when it was due, so a
 * request that waited for a connection counts the wait.
 */
static void open_loop(struct daemon *d, uint64_t rate)
{
	struct load L = {.d = d};
	int n = MAX_CONNS;
	struct conn *c = xcalloc((size_t)n, sizeof(*c));
	struct pollfd *p = xcalloc((size_t)n, sizeof(*p));
	uint64_t total = rate * (uint64_t)run_ns / 1000000000u, sent = 0, answered = 0;
	char st[256];

	run_tag++;
	L.cap_lat = total;
	L.lat = xcalloc(total ? total : 1, sizeof(*L.lat));
	for (int i = 0; i < n; i++)
		conn_open(&c[i], &L, K_ALLOCATE);
	uint64_t t0 = mono_ns();
	while (answered < total) {
		uint64_t now = mono_ns();
		for (int i = 0; i < n && sent < total; i++) {
			uint64_t due = t0 + sent * 1000000000u / rate;
			if (due > now)
				break;
			if (!c[i].busy)
				conn_send(&c[i], due), sent++;
		}
		for (int i = 0; i < n; i++)
			p[i] = (struct pollfd){.fd = c[i].busy ? c[i].fd : -1,
				.events = POLLIN | (c[i].out_off < c[i].out_len ? POLLOUT : 0)};
		uint64_t due = sent < total ? t0 + sent * 1000000000u / rate : now + 10000000000u;
		now = mono_ns();
		struct timespec to = {0, 0};
		if (due > now) {
			to.tv_sec = (time_t)((due - now) / 1000000000u);
			to.tv_nsec = (long)((due - now) % 1000000000u);
		}
		if (ppoll(p, (nfds_t)n, &to, NULL) < 0 && errno != EINTR)
			die("ppoll: %s", strerror(errno));
		now = mono_ns();
		for (int i = 0; i < n; i++)
			if (p[i].revents && conn_io(&c[i], p[i].revents)) {
				L.lat[L.n_lat++] = now - c[i].intended;
				answered++;
			}
	}
	uint64_t ns = mono_ns() - t0;
	qsort(L.lat, L.n_lat, sizeof(*L.lat), cmp_u64);
	statuses_text(L.statuses, st, sizeof(st));
	uint64_t p50 = L.lat[L.n_lat / 2], p99 = L.lat[L.n_lat * 99 / 100], mx = L.lat[L.n_lat - 1];
	printf("open_loop rate=%-5" PRIu64 "  achieved %6" PRIu64 "/s  p50 %7.2f ms  p99 %7.2f ms"
	       "  max %7.2f ms  (target p99 <= 10 ms)  statuses %s\n",
	       rate, per_s(answered, ns), (double)p50 / 1e6, (double)p99 / 1e6, (double)mx / 1e6, st);
	d->made += L.next_alloc;
	for (int i = 0; i < n; i++)
		conn_close(&c[i]);
	free(L.lat);
	free(c);
	free(p);
}

/* --- SQLite's own ceiling and the disk ------------------------------------ */

static void sql(sqlite3 *db, const char *q)
{
	char *msg = NULL;
	if (sqlite3_exec(db, q, NULL, NULL, &msg) != SQLITE_OK)
		die("sqlite: %s: %s", q, msg);
}

/*
 * Requests/s that SQLite alone commits when each request is three rows
 * (a journal entry, an allocation, an idempotency record, of the sizes the
 * daemon writes) and batch requests share a transaction: the schema made by
 * the store's own migrations, the store's pragmas (WAL, synchronous=FULL,
 * foreign keys).
 */
static uint64_t ceiling(uint64_t batch)
{
	char *path = path_in("ceiling.db"), *wal = xasprintf("%s-wal", path),
	     *shm = xasprintf("%s-shm", path), *cause = NULL;
	struct store *st;
	sqlite3 *db;
	sqlite3_stmt *j, *a, *i;
	uint8_t blob[32] = {0};
	static const char resp[] = "{\"allocation\":{\"id\":\"A-000000\",\"consortium\":\"c0\","
		"\"pool\":\"bench\",\"gpu\":\"B200\",\"gpus\":1,\"start\":\"2030-01-01T00:00:00Z\","
		"\"end\":\"2030-01-01T01:00:00Z\",\"phase\":\"p1\",\"state\":\"reserved\","
		"\"cost_gpu_seconds\":3600,\"note\":null},\"quota\":{\"consortium\":\"c0\",\"phase\":\"p1\","
		"\"gpu\":\"B200\",\"granted_gpu_seconds\":1000000000000,\"committed_gpu_seconds\":3600,"
		"\"available_gpu_seconds\":999999996400,\"consumed_gpu_seconds\":0,\"expired_gpu_seconds\":0,"
		"\"max_gpus\":null},\"entries\":[]}";

	if (batch == 0)
		batch = 1;
	unlink(path), unlink(wal), unlink(shm);
	if (store_open_flags(path, STORE_CREATE | STORE_EXCL, &st, &cause) != 0)
		die("%s: %s", path, cause);
	store_close(st);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die("%s: %s", path, sqlite3_errmsg(db));
	sql(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON");
	if (sqlite3_prepare_v2(db, "INSERT INTO journal (seq, time, kind, actor, request_id, consortium,"
			       " phase, gpu, allocation, pool, gpus, start, \"end\", committed_delta,"
			       " prev_hash, hash, salt, view_hash) VALUES (?1, 1893456000, 'reserve', 'root',"
			       " ?2, 'c0', 'p1', 'B200', ?3, 'bench', 1, 1893456000, 1893459600, 3600,"
			       " ?4, ?4, ?4, ?4)", -1, &j, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO allocations (id, num, consortium, pool, gpu, phase, gpus,"
			       " start, \"end\", booked_end, stored, cost, note, created, seq)"
			       " VALUES (?3, ?1, 'c0', 'bench', 'B200', 'p1',"
			       " 1, 1893456000, 1893459600, 1893459600, 'booked', 3600, NULL,"
			       " 1893456000, ?1)", -1, &a, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO idempotency (key, body_hash, status, response, time)"
			       " VALUES (?2, ?4, 201, ?5, 1893456000)",
			       -1, &i, NULL) != SQLITE_OK)
		die("prepare: %s", sqlite3_errmsg(db));
	uint64_t t0 = mono_ns(), end = t0 + (uint64_t)run_ns / 2, n = 0;
	while (mono_ns() < end || n == 0) {
		sql(db, "BEGIN IMMEDIATE");
		for (uint64_t b = 0; b < batch; b++, n++) {
			char key[40], id[16];
			snprintf(key, sizeof(key), "bench-ceiling-%" PRIu64, n);
			snprintf(id, sizeof(id), "A-%06" PRIu64, n + 1);
			sqlite3_stmt *v[3] = {j, a, i};
			for (int s = 0; s < 3; s++) {
				sqlite3_bind_int64(v[s], 1, (sqlite3_int64)n + 1);
				sqlite3_bind_text(v[s], 2, key, -1, SQLITE_TRANSIENT);
				sqlite3_bind_text(v[s], 3, id, -1, SQLITE_TRANSIENT);
				sqlite3_bind_blob(v[s], 4, blob, sizeof(blob), SQLITE_STATIC);
				sqlite3_bind_text(v[s], 5, resp, -1, SQLITE_STATIC);
				if (sqlite3_step(v[s]) != SQLITE_DONE)
					die("insert: %s", sqlite3_errmsg(db));
				sqlite3_reset(v[s]);
			}
		}
		sql(db, "COMMIT");
	}
	uint64_t rate = per_s(n, mono_ns() - t0);
	sqlite3_finalize(j), sqlite3_finalize(a), sqlite3_finalize(i);
	sqlite3_close(db);
	unlink(path), unlink(wal), unlink(shm);
	free(path), free(wal), free(shm);
	return rate;
}

/* write(4 KiB) + fdatasync() per second on the disk under dir. */
static uint64_t fsync_rate(void)
{
	char *path = path_in("fsync.tmp"), block[4096] = {0};
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	uint64_t n = 0;
	if (fd < 0)
		die("%s: %s", path, strerror(errno));
	uint64_t t0 = mono_ns(), end = t0 + (uint64_t)run_ns / 2;
	while (mono_ns() < end || n == 0) {
		if (pwrite(fd, block, sizeof(block), 0) != (ssize_t)sizeof(block) || fdatasync(fd) != 0)
			die("%s: %s", path, strerror(errno));
		n++;
	}
	uint64_t rate = per_s(n, mono_ns() - t0);
	close(fd);
	unlink(path);
	free(path);
	return rate;
}

/* Pages by table (its indexes counted with it), through SQLite's dbstat. */
static void db_size(const char *db_path, const char *label)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		die("%s: %s", db_path, sqlite3_errmsg(db));
	if (sqlite3_prepare_v2(db, "SELECT coalesce(m.tbl_name, d.name) AS t, sum(d.pgsize)"
			       " FROM dbstat d LEFT JOIN sqlite_schema m ON m.name = d.name"
			       " GROUP BY t ORDER BY 2 DESC", -1, &q, NULL) != SQLITE_OK)
		die("dbstat: %s (SQLite without SQLITE_ENABLE_DBSTAT_VTAB?)", sqlite3_errmsg(db));
	int64_t total = 0, n_alloc = 0;
	struct { char name[64]; int64_t bytes; } row[32];
	int n = 0;
	while (sqlite3_step(q) == SQLITE_ROW && n < 32) {
		snprintf(row[n].name, sizeof(row[n].name), "%s", (const char *)sqlite3_column_text(q, 0));
		row[n].bytes = sqlite3_column_int64(q, 1);
		total += row[n++].bytes;
	}
	sqlite3_finalize(q);
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM allocations", -1, &q, NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW)
		n_alloc = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	printf("db_size %-14s %8.1f MB  %" PRId64 " allocations, %" PRId64 " B each\n", label,
	       (double)total / 1e6, n_alloc, n_alloc ? total / n_alloc : 0);
	for (int i = 0; i < n; i++) {
		char r[32];
		ratio(r, sizeof(r), (uint64_t)row[i].bytes, (uint64_t)total);
		printf("db_table %-14s %-22s %8.1f MB  share %s%s\n", label, row[i].name,
		       (double)row[i].bytes / 1e6, r,
		       strcmp(row[i].name, "idempotency") == 0 ? "  (target <= 0.15)" : "");
	}
}

/* --- the runs ------------------------------------------------------------------ */

/*
 * A copy of the database at from, at to, both daemons stopped. A stopped
 * daemon leaves no WAL behind (the last connection checkpoints it); one
 * found would hold committed entries that a copy of the file alone lacks.
 */
static void copy_db(const char *from, const char *to)
{
	char *wal = xasprintf("%s-wal", from), *twal = xasprintf("%s-wal", to),
	     *tshm = xasprintf("%s-shm", to), buf[65536];
	struct stat sb;
	if (stat(wal, &sb) == 0 && sb.st_size > 0)
		die("%s: a WAL is left beside a stopped daemon's database", wal);
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	if (in == NULL || out == NULL)
		die("copy %s to %s: %s", from, to, strerror(errno));
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			die("%s: %s", to, strerror(errno));
	if (ferror(in) || fclose(out) != 0)
		die("copy %s to %s: %s", from, to, strerror(errno));
	fclose(in);
	unlink(twal);
	unlink(tshm);
	free(wal), free(twal), free(tshm);
}

static void daemon_fresh(struct daemon *d, const char *name, uint64_t live)
{
	char file[96];
	snprintf(file, sizeof(file), "%s.db", name);
	d->db = path_in(file);
	snprintf(file, sizeof(file), "%s.sock", name);
	d->sock = path_in(file);
	snprintf(file, sizeof(file), "%s.yaml", name);
	d->cfg = write_config(file, d->db, d->sock);
	generate(d->cfg, d->db, live);
	d->made = live;
	daemon_start(d);
}

static void print_closed(const char *name, const struct result *r)
{
	char st[256], rt[32];
	uint64_t rate = per_s(r->writes, r->ns);
	uint64_t batch100 = r->commits ? r->entries * 100 / r->commits : 0;
	uint64_t ceil = ceiling((batch100 + 50) / 100);
	statuses_text(r->statuses, st, sizeof(st));
	ratio(rt, sizeof(rt), rate, ceil);
	printf("%-22s %7" PRIu64 " allocations/s  batch %3" PRIu64 ".%02" PRIu64
	       "  sqlite ceiling %7" PRIu64 "/s  ratio %s  statuses %s\n",
	       name, rate, batch100 / 100, batch100 % 100, ceil, rt, st);
}

/* --- growth, in rounds ------------------------------------------------------ */

/*
 * The disk's fsync rate swings between runs and under the machine's other
 * load, and every allocation waits for an fsync: one throughput run per
 * ledger size measures the disk as much as the ledger. So the sizes are
 * measured in turns, several rounds with the order reversed every other
 * round, and each figure is the median of its rounds, with their range;
 * the ratio is the median of the rounds' own ratios (both sides measured
 * within seconds of each other). Beside it, the daemon's CPU time per
 * request, which the disk does not move: a ratio near 1 there says that
 * nothing on the request path grows with the live allocations.
 */
#define MAX_ROUNDS 9

struct series {
	uint64_t rate[MAX_ROUNDS];	/* requests/s */
	uint64_t cpu_ns[MAX_ROUNDS];	/* the daemon's CPU time per request */
	uint64_t ratio[MAX_ROUNDS];	/* rate / the small ledger's in the same round, in hundredths */
	uint64_t statuses[600];
};

static uint64_t median(const uint64_t *v, int n)
{
	uint64_t s[MAX_ROUNDS];
	memcpy(s, v, (size_t)n * sizeof(*s));
	qsort(s, (size_t)n, sizeof(*s), cmp_u64);
	return s[n / 2];
}

static uint64_t least(const uint64_t *v, int n)
{
	uint64_t m = v[0];
	for (int i = 1; i < n; i++)
		m = v[i] < m ? v[i] : m;
	return m;
}

static uint64_t most(const uint64_t *v, int n)
{
	uint64_t m = v[0];
	for (int i = 1; i < n; i++)
		m = v[i] > m ? v[i] : m;
	return m;
}

/* One run in round k: 64 writers, or 16 quota readers. */
static void measure(struct daemon *d, bool reads, struct series *s, int k)
{
	struct result r;
	closed_loop(d, reads ? (struct mix){0, 16} : (struct mix){64, 0}, &r);
	uint64_t n = reads ? r.reads : r.writes;
	s->rate[k] = per_s(n, r.ns);
	s->cpu_ns[k] = n ? r.cpu_us * 1000 / n : 0;
	for (int i = 0; i < 600; i++)
		s->statuses[i] += r.statuses[i];
}

/* "name median/s (min..max over n rounds)  cpu X.X us/request" and, against base, the ratios. */
static void print_series(const char *name, const struct series *s, const struct series *base,
			 uint64_t base_live, int n)
{
	char st[256], rt[32], lo[32], hi[32];
	uint64_t cpu = median(s->cpu_ns, n);
	statuses_text(s->statuses, st, sizeof(st));
	uint64_t c0 = least(s->cpu_ns, n), c1 = most(s->cpu_ns, n);
	printf("%-22s %7" PRIu64 "/s  (%" PRIu64 "..%" PRIu64 " over %d rounds)  cpu %" PRIu64 ".%"
	       PRIu64 " us/request (%" PRIu64 ".%" PRIu64 "..%" PRIu64 ".%" PRIu64 ")", name,
	       median(s->rate, n), least(s->rate, n), most(s->rate, n), n, cpu / 1000,
	       cpu % 1000 / 100, c0 / 1000, c0 % 1000 / 100, c1 / 1000, c1 % 1000 / 100);
	if (base) {
		uint64_t m = median(s->ratio, n);
		snprintf(rt, sizeof(rt), "%" PRIu64 ".%02" PRIu64, m / 100, m % 100);
		m = least(s->ratio, n);
		snprintf(lo, sizeof(lo), "%" PRIu64 ".%02" PRIu64, m / 100, m % 100);
		m = most(s->ratio, n);
		snprintf(hi, sizeof(hi), "%" PRIu64 ".%02" PRIu64, m / 100, m % 100);
		printf("  ratio to live=%" PRIu64 " %s (%s..%s) (target >= 0.80)", base_live, rt, lo, hi);
		ratio(rt, sizeof(rt), cpu, median(base->cpu_ns, n));
		printf("  cpu ratio %s", rt);
	}
	printf("  statuses %s\n", st);
}

/*
 * g[0..2]: the ledgers of sizes[0..2] live allocations, running; qs: the
 * quota figure's small ledger. The smallest is started again from its
 * pristine copy every round, so that it stays fresh however much the
 * rounds before booked into it.
 */
static void growth_rounds(struct daemon *g, struct daemon *qs, const char *pristine,
			  const uint64_t *sizes, uint64_t q_small)
{
	static struct series w[3], q[2];	/* writers by size; quota at q_small and sizes[2] */
	int n = quick ? 1 : 5;
	char name[64];

	memset(w, 0, sizeof(w));
	memset(q, 0, sizeof(q));
	for (int k = 0; k < n; k++) {
		bool rev = k % 2;
		if (k > 0) {
			daemon_stop(&g[0]);
			copy_db(pristine, g[0].db);
			g[0].made = sizes[0];
			daemon_start(&g[0]);
		}
		/*
		 * Reads before the round's writes, the large ledger's first in
		 * the rounds that follow a round whose writes ended elsewhere:
		 * its reads never come right after its own writes, whose WAL
		 * its checkpoint thread may still be writing back (CPU time
		 * and disk that a read run would be charged for).
		 */
		for (int j = 0; j < 2; j++) {
			int i = rev ? j : 1 - j;
			measure(i ? &g[2] : qs, true, &q[i], k);
		}
		for (int j = 0; j < 3; j++) {
			int i = rev ? 2 - j : j;
			measure(&g[i], false, &w[i], k);
		}
		for (int i = 0; i < 3; i++)
			w[i].ratio[k] = w[0].rate[k] ? w[i].rate[k] * 100 / w[0].rate[k] : 0;
		q[1].ratio[k] = q[0].rate[k] ? q[1].rate[k] * 100 / q[0].rate[k] : 0;
	}
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "growth live=%" PRIu64, sizes[i]);
		print_series(name, &w[i], i ? &w[0] : NULL, sizes[0], n);
	}
	snprintf(name, sizeof(name), "quota live=%" PRIu64, q_small);
	print_series(name, &q[0], NULL, 0, n);
	snprintf(name, sizeof(name), "quota live=%" PRIu64, sizes[2]);
	print_series(name, &q[1], &q[0], q_small, n);
}

int main(int argc, char **argv)
{
	static const int conns[] = {1, 4, 16, 64, 256};
	struct result r, ra;
	char name[64], rt[32];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0)
			quick = true;
		else if (strcmp(argv[i], "--live-only") == 0)
			live_only = true;
		else if (strcmp(argv[i], "--growth-only") == 0)
			growth_only = true;
		else if (strcmp(argv[i], "--only-http") == 0)
			http_only = true;
		else if (strcmp(argv[i], "--closed") == 0 && i + 1 < argc) {
			closed_only = atoi(argv[++i]);
			if (closed_only < 1 || closed_only > 1024) {
				fprintf(stderr, "loadbench: --closed takes 1 to 1024 connections\n");
				return 64;
			}
		} else if (strcmp(argv[i], "--daemon") == 0 && i + 1 < argc)
			daemon_path = argv[++i];
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--help") == 0) {
			printf("usage: loadbench --daemon GPULEDGERD --dir DIR [--quick] [--live-only] [--growth-only] [--only-http] [--closed N]\n"
			       "Drives GPULEDGERD over its Unix socket and prints every figure of the\n"
			       "performance contract (DESIGN.md); DIR holds the databases it builds.\n"
			       "--live-only prints only the start-ups and the memory of the ledgers\n"
			       "with 1e3 and 1e6 live allocations (no load, growth or quota figures).\n"
			       "--growth-only prints only the figures of the ledgers with many live\n"
			       "allocations: start-ups, memory, growth and quota reads, in rounds.\n"
			       "--only-http prints only the closed and open loops on a fresh ledger.\n"
			       "--closed N prints only one closed loop at N connections on a fresh\n"
			       "ledger, beside its SQLite ceiling (for profiling one concurrency).\n");
			return 0;
		} else {
			fprintf(stderr, "usage: loadbench --daemon GPULEDGERD --dir DIR [--quick] [--live-only] [--growth-only] [--only-http] [--closed N]\n");
			return 64;
		}
	}
	if (daemon_path == NULL || dir == NULL) {
		fprintf(stderr, "usage: loadbench --daemon GPULEDGERD --dir DIR [--quick]\n");
		return 64;
	}
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	run_ns = quick ? 300000000 : 5000000000;
	uint64_t big = quick ? 20000 : 1000000, mid = quick ? 5000 : 100000,
		 q_small = quick ? 2000 : 10000;
	uint64_t load1, load2;
	{
		FILE *f = fopen("/proc/loadavg", "r");
		double l1 = 0;
		if (f && fscanf(f, "%lf", &l1) == 1)
			printf("loadavg_1m             %8.2f  (before the run; the machine is shared)\n", l1);
		if (f)
			fclose(f);
	}
	printf("fsync_rate             %8" PRIu64 "/s  (4 KiB write + fdatasync, %s)\n", fsync_rate(), dir);

	if (live_only || growth_only)
		goto live;
	/* closed loop and reads on a fresh ledger */
	struct daemon d = {0};
	daemon_fresh(&d, "fresh", 1000);
	if (closed_only) {
		closed_loop(&d, (struct mix){closed_only, 0}, &r);
		snprintf(name, sizeof(name), "closed_loop c=%d", closed_only);
		print_closed(name, &r);
		daemon_stop(&d);
		daemon_free(&d);
		printf("done\n");
		return 0;
	}
	uint64_t fresh_rate = 0;
	for (size_t i = 0; i < sizeof(conns) / sizeof(conns[0]); i++) {
		closed_loop(&d, (struct mix){conns[i], 0}, &r);
		snprintf(name, sizeof(name), "closed_loop c=%d", conns[i]);
		print_closed(name, &r);
		if (conns[i] == 64)
			fresh_rate = per_s(r.writes, r.ns);
	}
	printf("targets: ratio >= 0.70 at c=1, >= 0.60 at c=64\n");
	closed_loop(&d, (struct mix){0, 16}, &r);
	uint64_t reads_alone = per_s(r.reads, r.ns);
	printf("quota_reads_alone      %7" PRIu64 "/s  (16 connections, GET /v1/quota)\n", reads_alone);
	closed_loop(&d, (struct mix){64, 16}, &ra);
	load1 = per_s(ra.reads, ra.ns);
	load2 = per_s(ra.writes, ra.ns);
	ratio(rt, sizeof(rt), load2, fresh_rate);
	printf("reads_during_writes    %7" PRIu64 " reads/s  %7" PRIu64 " allocations/s"
	       "  (64 writers + 16 readers; writers keep %s of their %" PRIu64 "/s alone)\n",
	       load1, load2, rt, fresh_rate);
	ratio(rt, sizeof(rt), load1, reads_alone);
	printf("reads_during_writes_ratio %s  (reads under write load / reads alone)\n", rt);
	uint64_t rates_full[] = {1000, 2500, 5000}, rates_quick[] = {200};
	uint64_t *rates = quick ? rates_quick : rates_full;
	size_t n_rates = quick ? 1 : 3;
	for (size_t i = 0; i < n_rates; i++)
		open_loop(&d, rates[i]);
	daemon_stop(&d);
	db_size(d.db, "http_load");
	daemon_free(&d);
	if (http_only) {
		printf("done\n");
		return 0;
	}

	/*
	 * Growth: the same load over more live allocations; memory per live
	 * allocation is the RSS above that of the smallest ledger.
	 */
live:;
	uint64_t sizes[3] = {1000, mid, big};
	struct daemon g[3] = {{0}}, qs = {0};
	char *pristine = path_in("live-fresh.pristine.db");
	uint64_t rss_small = 0;
	for (int i = 0; i < 3; i++) {
		if (live_only && i == 1)
			continue;
		snprintf(name, sizeof(name), "live%" PRIu64, sizes[i]);
		daemon_fresh(&g[i], name, sizes[i]);
		printf("startup_first live=%-8" PRIu64 " %8.3f s to READY (no audit checkpoint yet)\n",
		       sizes[i], (double)g[i].ready_ns / 1e9);
		uint64_t rss = daemon_rss_kib(&g[i]);
		printf("rss live=%-8" PRIu64 "       %8" PRIu64 " KiB", sizes[i], rss);
		if (i == 0)
			rss_small = rss;
		else
			printf("  %" PRIu64 " B per live allocation above live=%" PRIu64 " (target <= 128)",
			       rss > rss_small ? (rss - rss_small) * 1024 / (sizes[i] - sizes[0]) : 0,
			       sizes[0]);
		printf("\n");
		daemon_stop(&g[i]);
		if (i == 0)
			copy_db(g[0].db, pristine);
		daemon_start(&g[i]);
		printf("startup live=%-8" PRIu64 "       %8.3f s to READY (target <= 1 s at 1e6 rows)\n",
		       sizes[i], (double)g[i].ready_ns / 1e9);
		if (live_only) {
			daemon_stop(&g[i]);
			daemon_free(&g[i]);
		}
	}
	if (live_only) {
		unlink(pristine);
		free(pristine);
		printf("done\n");
		return 0;
	}
	daemon_fresh(&qs, "quota_small", q_small);
	growth_rounds(g, &qs, pristine, sizes, q_small);
	unlink(pristine);
	free(pristine);
	daemon_stop(&qs);
	daemon_free(&qs);
	daemon_stop(&g[0]);
	daemon_stop(&g[1]);
	daemon_free(&g[0]);
	daemon_free(&g[1]);
	daemon_stop(&g[2]);
	db_size(g[2].db, "generated");
	/*
	 * The same journal once its bookings have all run: a start-up over
	 * that many rows of history, with nothing live to load.
	 */
	daemon_start_at(&g[2], HISTORY_ISO);
	printf("startup history=%-8" PRIu64 " %8.3f s to READY (the same journal, every"
	       " booking finished; target <= 1 s at 1e6 rows)\n", big, (double)g[2].ready_ns / 1e9);
	daemon_stop(&g[2]);
	daemon_free(&g[2]);
	printf("done\n");
	return 0;
}
