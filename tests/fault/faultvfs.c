/* SPDX-License-Identifier: MIT */
/*
 * A fault-injecting SQLite VFS for the tests, loaded into the real daemon
 * with LD_PRELOAD (never built into it). Its constructor registers, as the
 * default VFS, a wrapper around the one SQLite would have used, so the
 * daemon's own sqlite3_open_v2() goes through it unchanged. Three
 * independent services, each switched on by the environment:
 *
 * FAULTVFS_CTL=FILE: I/O faults, as SQLite's own ioerr.test injects them.
 *   FILE holds one line "OP N ERR MODE" (OP: write, sync or read; N >= 1;
 *   ERR: ioerr, full or busy; MODE: transient or persistent) or "off". The
 *   file is re-read whenever it changes; from then on the Nth OP on the
 *   database or its WAL fails with ERR (SQLITE_IOERR_WRITE/_FSYNC/_READ,
 *   SQLITE_FULL or SQLITE_BUSY), once (transient) or, persistent, that one
 *   and every later OP until FILE changes. Each failure appends "OP N ERR"
 *   to FILE.fired, so a test knows whether the request it sent reached
 *   the Nth operation at all.
 *
 * FAULTVFS_UNDO=1: power loss. Before each write (and truncation) of the
 *   database, its WAL or its rollback journal, what the write will
 *   overwrite is appended to PATH-undo ("S" + the file's size at its last
 *   sync, once per sync interval, then "W" + offset + length + old bytes);
 *   a successful xSync empties PATH-undo. After a SIGKILL, the kernel has
 *   kept every write; applying PATH-undo newest first (tests/torture/
 *   torture.py, undo_file()) leaves each file as it was at its last fsync,
 *   which is what a machine that lost power would find.
 *
 * FAULTVFS_SYNCHRONOUS=NORMAL: the control for power loss. The daemon sets
 *   synchronous=FULL; this makes every sqlite3_exec() that sets
 *   synchronous follow it with PRAGMA synchronous = NORMAL (in WAL mode:
 *   no fsync at commit), so the tests can show that FULL is what keeps
 *   acknowledged commits.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum op { OP_WRITE, OP_SYNC, OP_READ, OP__COUNT };
static const char *const op_names[OP__COUNT] = {"write", "sync", "read"};

static struct {
	sqlite3_vfs vfs;
	sqlite3_vfs *real;
	const char *ctl;	/* FAULTVFS_CTL or NULL */
	bool undo;
	bool sync_normal;
	/* the armed fault */
	struct timespec ctl_mtime;
	ino_t ctl_ino;
	off_t ctl_size;
	bool armed;
	enum op op;
	long nth;
	int err;
	const char *err_name;
	bool persistent;
	long count[OP__COUNT];
} g;

/*
 * A file's undo log, shared by every handle that has the file open: a
 * power loss takes a file back to its last sync, whichever connection
 * (the daemon has a committing, a checkpointing and a reading one, on
 * three threads) wrote or synced it.
 */
struct ulog {
	struct ulog *next;
	char *path;
	int fd;
	bool sized;		/* the "S" record of this sync interval is out */
	int refs;
};

static pthread_mutex_t ulog_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ulog *ulogs;

struct ffile {
	sqlite3_file base;
	sqlite3_file *real;	/* lives right after this struct */
	bool counted;		/* main database or WAL: faults apply */
	struct ulog *undo;	/* NULL: no undo log */
};

static void ctl_reload(void)
{
	struct stat sb;
	char line[128], op[16], err[16], mode[16];
	long n;
	FILE *f;

	if (stat(g.ctl, &sb) != 0) {
		g.armed = false;
		return;
	}
	if (sb.st_ino == g.ctl_ino && sb.st_size == g.ctl_size &&
	    sb.st_mtim.tv_sec == g.ctl_mtime.tv_sec && sb.st_mtim.tv_nsec == g.ctl_mtime.tv_nsec)
		return;
	g.ctl_ino = sb.st_ino;
	g.ctl_size = sb.st_size;
	g.ctl_mtime = sb.st_mtim;
	g.armed = false;
	memset(g.count, 0, sizeof(g.count));
	f = fopen(g.ctl, "r");
	if (f == NULL)
		return;
	if (fgets(line, sizeof(line), f) != NULL &&
	    sscanf(line, "%15s %ld %15s %15s", op, &n, err, mode) == 4 && n > 0) {
		int o;
		for (o = 0; o < OP__COUNT && strcmp(op, op_names[o]) != 0; o++)
			;
		g.op = (enum op)o;
		g.nth = n;
		g.err_name = NULL;
		if (strcmp(err, "ioerr") == 0) {
			g.err = o == OP_WRITE ? SQLITE_IOERR_WRITE
				: o == OP_SYNC ? SQLITE_IOERR_FSYNC : SQLITE_IOERR_READ;
			g.err_name = "ioerr";
		} else if (strcmp(err, "full") == 0) {
			g.err = SQLITE_FULL;
			g.err_name = "full";
		} else if (strcmp(err, "busy") == 0) {
			g.err = SQLITE_BUSY;
			g.err_name = "busy";
		}
		g.persistent = strcmp(mode, "persistent") == 0;
		g.armed = o < OP__COUNT && g.err_name != NULL &&
			  (g.persistent || strcmp(mode, "transient") == 0);
		if (!g.armed)
			fprintf(stderr, "faultvfs: %s: cannot read '%s'\n", g.ctl, line);
	}
	fclose(f);
}

/* SQLITE_OK, or the error the armed fault makes this operation fail with. */
static int fault(const struct ffile *f, enum op op)
{
	if (g.ctl == NULL || !f->counted)
		return SQLITE_OK;
	ctl_reload();
	if (!g.armed || g.op != op)
		return SQLITE_OK;
	long n = ++g.count[op];
	if (n < g.nth || (n > g.nth && !g.persistent))
		return SQLITE_OK;
	char path[4096];
	snprintf(path, sizeof(path), "%s.fired", g.ctl);
	FILE *log = fopen(path, "a");
	if (log) {
		fprintf(log, "%s %ld %s\n", op_names[op], n, g.err_name);
		fclose(log);
	}
	return g.err;
}

/* The undo log ----------------------------------------------------------- */

static void undo_append(struct ffile *f, const void *p, size_t n)
{
	const char *b = p;
	while (n > 0) {
		ssize_t w = write(f->undo->fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			/* an undo log that misses a write would fake a durable one */
			fprintf(stderr, "faultvfs: %s: %s\n", f->undo->path, strerror(errno));
			abort();
		}
		b += w;
		n -= (size_t)w;
	}
}

static void undo_size(struct ffile *f)
{
	sqlite3_int64 size = 0;
	if (f->undo->sized)
		return;
	if (f->real->pMethods->xFileSize(f->real, &size) != SQLITE_OK)
		abort();
	uint64_t s = (uint64_t)size;
	undo_append(f, "S", 1);
	undo_append(f, &s, 8);
	f->undo->sized = true;
}

/* Saves what [off, off+n) holds now (the part of it inside the file). */
static void undo_save(struct ffile *f, sqlite3_int64 off, sqlite3_int64 n)
{
	sqlite3_int64 size = 0;
	if (f->undo == NULL)
		return;
	pthread_mutex_lock(&ulog_mu);
	undo_size(f);
	if (f->real->pMethods->xFileSize(f->real, &size) != SQLITE_OK)
		abort();
	if (off >= size)
		goto out;	/* an append: the "S" size takes it back */
	if (off + n > size)
		n = size - off;
	char *old = malloc((size_t)n);
	if (old == NULL)
		abort();
	int rc = f->real->pMethods->xRead(f->real, old, (int)n, off);
	if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ)
		abort();
	uint64_t o = (uint64_t)off;
	uint32_t len = (uint32_t)n;
	undo_append(f, "W", 1);
	undo_append(f, &o, 8);
	undo_append(f, &len, 4);
	undo_append(f, old, (size_t)n);
	free(old);
out:
	pthread_mutex_unlock(&ulog_mu);
}

static void undo_synced(struct ffile *f)
{
	if (f->undo == NULL)
		return;
	pthread_mutex_lock(&ulog_mu);
	if (ftruncate(f->undo->fd, 0) != 0 || lseek(f->undo->fd, 0, SEEK_SET) != 0)
		abort();
	f->undo->sized = false;
	pthread_mutex_unlock(&ulog_mu);
}

/* The undo log of the file at name, opened (emptied) by its first handle. */
static struct ulog *ulog_get(const char *name)
{
	struct ulog *u;
	char *path;

	if (asprintf(&path, "%s-undo", name) < 0)
		abort();
	pthread_mutex_lock(&ulog_mu);
	for (u = ulogs; u && strcmp(u->path, path) != 0; u = u->next)
		;
	if (u) {
		free(path);
	} else {
		u = calloc(1, sizeof(*u));
		if (u == NULL)
			abort();
		u->path = path;
		u->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (u->fd < 0) {
			fprintf(stderr, "faultvfs: %s: %s\n", path, strerror(errno));
			abort();
		}
		u->next = ulogs;
		ulogs = u;
	}
	u->refs++;
	pthread_mutex_unlock(&ulog_mu);
	return u;
}

static void ulog_put(struct ulog *u)
{
	pthread_mutex_lock(&ulog_mu);
	if (--u->refs == 0) {
		struct ulog **p = &ulogs;
		while (*p != u)
			p = &(*p)->next;
		*p = u->next;
		close(u->fd);
		free(u->path);
		free(u);
	}
	pthread_mutex_unlock(&ulog_mu);
}

/* The file methods -------------------------------------------------------- */

#define REAL(file) (((struct ffile *)(file))->real)

static int f_close(sqlite3_file *file)
{
	struct ffile *f = (struct ffile *)file;
	int rc = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
	if (f->undo)
		ulog_put(f->undo);
	return rc;
}

static int f_read(sqlite3_file *file, void *buf, int n, sqlite3_int64 off)
{
	int rc = fault((struct ffile *)file, OP_READ);
	return rc != SQLITE_OK ? rc : REAL(file)->pMethods->xRead(REAL(file), buf, n, off);
}

static int f_write(sqlite3_file *file, const void *buf, int n, sqlite3_int64 off)
{
	struct ffile *f = (struct ffile *)file;
	int rc = fault(f, OP_WRITE);
	if (rc != SQLITE_OK)
		return rc;
	undo_save(f, off, n);
	return f->real->pMethods->xWrite(f->real, buf, n, off);
}

static int f_truncate(sqlite3_file *file, sqlite3_int64 size)
{
	struct ffile *f = (struct ffile *)file;
	sqlite3_int64 now = 0;
	if (f->undo && f->real->pMethods->xFileSize(f->real, &now) == SQLITE_OK &&
	    now > size)
		undo_save(f, size, now - size);
	return f->real->pMethods->xTruncate(f->real, size);
}

static int f_sync(sqlite3_file *file, int flags)
{
	struct ffile *f = (struct ffile *)file;
	int rc = fault(f, OP_SYNC);
	if (rc != SQLITE_OK)
		return rc;
	rc = f->real->pMethods->xSync(f->real, flags);
	if (rc == SQLITE_OK)
		undo_synced(f);
	return rc;
}

static int f_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
	return REAL(file)->pMethods->xFileSize(REAL(file), size);
}

static int f_lock(sqlite3_file *file, int lock)
{
	return REAL(file)->pMethods->xLock(REAL(file), lock);
}

static int f_unlock(sqlite3_file *file, int lock)
{
	return REAL(file)->pMethods->xUnlock(REAL(file), lock);
}

static int f_check_reserved(sqlite3_file *file, int *out)
{
	return REAL(file)->pMethods->xCheckReservedLock(REAL(file), out);
}

static int f_file_control(sqlite3_file *file, int op, void *arg)
{
	return REAL(file)->pMethods->xFileControl(REAL(file), op, arg);
}

static int f_sector_size(sqlite3_file *file)
{
	return REAL(file)->pMethods->xSectorSize(REAL(file));
}

static int f_device_characteristics(sqlite3_file *file)
{
	return REAL(file)->pMethods->xDeviceCharacteristics(REAL(file));
}

static int f_shm_map(sqlite3_file *file, int pg, int pgsz, int extend, void volatile **p)
{
	return REAL(file)->pMethods->xShmMap(REAL(file), pg, pgsz, extend, p);
}

static int f_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
	return REAL(file)->pMethods->xShmLock(REAL(file), offset, n, flags);
}

static void f_shm_barrier(sqlite3_file *file)
{
	REAL(file)->pMethods->xShmBarrier(REAL(file));
}

static int f_shm_unmap(sqlite3_file *file, int del)
{
	return REAL(file)->pMethods->xShmUnmap(REAL(file), del);
}

/* No memory-mapped reads: every read goes through f_read (and its faults). */
static int f_fetch(sqlite3_file *file, sqlite3_int64 off, int n, void **p)
{
	*p = NULL;
	return SQLITE_OK;
}

static int f_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
	return SQLITE_OK;
}

static const sqlite3_io_methods methods = {
	.iVersion = 3,
	.xClose = f_close,
	.xRead = f_read,
	.xWrite = f_write,
	.xTruncate = f_truncate,
	.xSync = f_sync,
	.xFileSize = f_file_size,
	.xLock = f_lock,
	.xUnlock = f_unlock,
	.xCheckReservedLock = f_check_reserved,
	.xFileControl = f_file_control,
	.xSectorSize = f_sector_size,
	.xDeviceCharacteristics = f_device_characteristics,
	.xShmMap = f_shm_map,
	.xShmLock = f_shm_lock,
	.xShmBarrier = f_shm_barrier,
	.xShmUnmap = f_shm_unmap,
	.xFetch = f_fetch,
	.xUnfetch = f_unfetch,
};

/* The VFS ------------------------------------------------------------------ */

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
		  int *out_flags)
{
	struct ffile *f = (struct ffile *)file;
	int rc;

	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)(f + 1);
	rc = g.real->xOpen(g.real, name, f->real, flags, out_flags);
	if (rc != SQLITE_OK) {
		f->real->pMethods = NULL;
		f->base.pMethods = NULL;
		return rc;
	}
	f->base.pMethods = &methods;
	f->counted = (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL)) != 0;
	if (g.undo && name != NULL &&
	    (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL))) {
		f->undo = ulog_get(name);
	}
	return SQLITE_OK;
}

static int v_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	if (g.undo) {
		char *p;
		if (asprintf(&p, "%s-undo", name) >= 0) {
			unlink(p);
			free(p);
		}
	}
	return g.real->xDelete(g.real, name, sync_dir);
}

static int v_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	return g.real->xAccess(g.real, name, flags, out);
}

static int v_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	return g.real->xFullPathname(g.real, name, n, out);
}

static void *v_dlopen(sqlite3_vfs *vfs, const char *name)
{
	return g.real->xDlOpen(g.real, name);
}

static void v_dlerror(sqlite3_vfs *vfs, int n, char *msg)
{
	g.real->xDlError(g.real, n, msg);
}

static void (*v_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
	return g.real->xDlSym(g.real, h, sym);
}

static void v_dlclose(sqlite3_vfs *vfs, void *h)
{
	g.real->xDlClose(g.real, h);
}

static int v_randomness(sqlite3_vfs *vfs, int n, char *out)
{
	return g.real->xRandomness(g.real, n, out);
}

static int v_sleep(sqlite3_vfs *vfs, int us)
{
	return g.real->xSleep(g.real, us);
}

static int v_current_time(sqlite3_vfs *vfs, double *out)
{
	return g.real->xCurrentTime(g.real, out);
}

static int v_get_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	return g.real->xGetLastError ? g.real->xGetLastError(g.real, n, out) : 0;
}

static int v_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	return g.real->xCurrentTimeInt64(g.real, out);
}

__attribute__((constructor))
static void faultvfs_init(void)
{
	const char *s;

	g.real = sqlite3_vfs_find(NULL);
	if (g.real == NULL) {
		fprintf(stderr, "faultvfs: no default SQLite VFS\n");
		abort();
	}
	g.ctl = getenv("FAULTVFS_CTL");
	if (g.ctl && *g.ctl == '\0')
		g.ctl = NULL;
	s = getenv("FAULTVFS_UNDO");
	g.undo = s && strcmp(s, "1") == 0;
	s = getenv("FAULTVFS_SYNCHRONOUS");
	g.sync_normal = s && strcmp(s, "NORMAL") == 0;
	g.vfs = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = (int)sizeof(struct ffile) + g.real->szOsFile,
		.mxPathname = g.real->mxPathname,
		.zName = "faultvfs",
		.xOpen = v_open,
		.xDelete = v_delete,
		.xAccess = v_access,
		.xFullPathname = v_full_pathname,
		.xDlOpen = v_dlopen,
		.xDlError = v_dlerror,
		.xDlSym = v_dlsym,
		.xDlClose = v_dlclose,
		.xRandomness = v_randomness,
		.xSleep = v_sleep,
		.xCurrentTime = v_current_time,
		.xGetLastError = v_get_last_error,
		.xCurrentTimeInt64 = v_current_time_int64,
	};
	if (sqlite3_vfs_register(&g.vfs, 1) != SQLITE_OK) {
		fprintf(stderr, "faultvfs: cannot register the VFS\n");
		abort();
	}
}

/* The daemon's sqlite3_exec() calls land here (LD_PRELOAD comes first). */
int sqlite3_exec(sqlite3 *db, const char *sql, int (*cb)(void *, int, char **, char **),
		 void *arg, char **errmsg)
{
	static int (*real_exec)(sqlite3 *, const char *, int (*)(void *, int, char **, char **),
				void *, char **);
	if (real_exec == NULL)
		*(void **)&real_exec = dlsym(RTLD_NEXT, "sqlite3_exec");
	int rc = real_exec(db, sql, cb, arg, errmsg);
	if (rc == SQLITE_OK && g.sync_normal && sql && strcasestr(sql, "synchronous"))
		rc = real_exec(db, "PRAGMA synchronous = NORMAL", NULL, NULL, errmsg);
	return rc;
}
