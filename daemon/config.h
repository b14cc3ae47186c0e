/* SPDX-License-Identifier: MIT */
/*
 * The configuration: the program's structure (phases, pools, consortia),
 * who may do what (access), and where the daemon keeps its state. Loaded
 * from one YAML file by a strict loader: every error is reported as
 * "FILE:LINE:COL: message" (1-based), all of them, and nothing is applied
 * unless the whole file is valid. Only config.c includes <yaml.h>.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* What a transfer names as its source for the program's unassigned budget; no consortium may be called so. */
#define CONFIG_RESERVE "reserve"

enum role {
	ROLE_NONE = 0,		/* unauthenticated / unmapped */
	ROLE_CONSORTIUM,	/* reads its own rows only */
	ROLE_OPERATOR,		/* reads everything */
	ROLE_AGENT,		/* an operator that also reports metered use */
	ROLE_ADMIN,		/* changes the ledger */
};

enum log_level {
	LOG_DEBUG,
	LOG_INFO,
	LOG_WARN,
	LOG_ERROR,
};

struct cfg_strlist {
	char **v;
	size_t n;
};

struct cfg_phase {
	char *id;
	char *name;
	int64_t start;		/* inclusive */
	int64_t end;		/* exclusive */
};

struct cfg_pool {
	char *id;
	char *provider;
	char *gpu;		/* model, e.g. "B200" */
	int64_t gpus;		/* capacity, > 0 */
	int64_t available_from;	/* TIME_MIN when unset */
	int64_t available_until;	/* TIME_MAX when unset (exclusive) */
	int64_t gpus_per_node;	/* 0 when unset */
	/* pools[].slurm: where the cluster bridge mirrors it; both NULL when unset */
	struct cfg_slurm {
		char *cluster;		/* slurm_cluster_valid() */
		char *partition;	/* slurm_partition_valid() */
	} slurm;
};

struct cfg_consortium {
	char *id;		/* slug_valid(): [a-z0-9][a-z0-9_-]* */
	char *name;
	char *lead;
	struct cfg_strlist members;
	int64_t joined;		/* default: start of the first phase */
	/*
	 * No quota for it effective before this instant (a team that leases
	 * its own GPUs to the program); TIME_MIN: eligible since it joined.
	 */
	int64_t eligible_from;
};

struct cfg_principals {
	struct cfg_strlist users;
	struct cfg_strlist groups;
};

struct cfg_consortium_access {
	char *consortium;	/* a consortium id */
	struct cfg_strlist groups;
};

struct cfg_token {
	char *name;
	enum role role;
	char *consortium;	/* set iff role == ROLE_CONSORTIUM */
	uint8_t sha256[32];
};

struct config {
	char *path;

	/* daemon: */
	char *socket;		/* default "var/gpuledger.sock" */
	int64_t socket_mode;	/* daemon.socket_mode, default 0666 */
	char *socket_group;	/* daemon.socket_group (a name or gid), or NULL */
	char *database;		/* default "var/gpuledger.db" */
	char *log;		/* "-" = stderr (default) */
	enum log_level log_level;	/* default LOG_INFO */
	char *listen;		/* hostport_parse()'s "HOST:PORT", or NULL */
	bool allow_plaintext;	/* daemon.allow_plaintext_remote */
	/* connection budgets (the server's limits), applied on reload */
	int64_t max_connections;	/* on the Unix socket, default 256 */
	int64_t max_per_uid;		/* of a non-admin uid there, default 32 */
	int64_t max_followers;		/* open journal follow streams, default 64 */
	char *idempotency_retention;	/* a duration (duration_parse()), default "30d" */
	int64_t tcp_max_connections;	/* daemon.tcp.max_connections, 256 */
	int64_t tcp_max_per_peer;	/* daemon.tcp.max_per_peer, 16 */
	int64_t tcp_first_byte_timeout;	/* daemon.tcp.first_byte_timeout, s, 5 */

	/* access: */
	struct cfg_principals admins;
	struct cfg_principals operators;
	struct cfg_consortium_access *consortium_access;
	size_t n_consortium_access;
	struct cfg_token *tokens;
	size_t n_tokens;

	/* program: */
	char *program_name;
	char *timezone;		/* default "Asia/Seoul" */
	int32_t tz_offset;	/* seconds east of UTC */
	int64_t designation_grace_days;	/* default 0 */
	int64_t retroactive_days;	/* default 7: how far back an elimination may take effect */

	struct cfg_phase *phases;	/* sorted by start, non-overlapping */
	size_t n_phases;
	struct cfg_pool *pools;		/* in file order (earliest-fit ties) */
	size_t n_pools;
	struct cfg_consortium *consortia;	/* in file order */
	size_t n_consortia;
};

/*
 * Loads and validates the file at path. Returns 0 and a config the caller
 * frees with config_free(), or -EINVAL (invalid) / -errno (unreadable) and
 * sets *errors to a malloc'd text of one "FILE:LINE:COL: message" line per
 * problem (caller frees). *out is untouched on failure.
 */
int config_load(const char *path, struct config **out, char **errors);

/* Same, from a string; name stands for FILE in messages. */
int config_parse(const char *name, const char *text, size_t len,
		 struct config **out, char **errors);

/* Frees every field the key table fills, and cfg; NULL is fine. */
void config_free(struct config *cfg);

/*
 * The reload rule. A SIGHUP applies a valid new config, except the keys
 * whose row says they need a restart (daemon.socket, daemon.socket_mode,
 * daemon.socket_group, daemon.database, daemon.log, daemon.listen,
 * daemon.allow_plaintext_remote: they hold a listener or an open file). For each of those whose value in new differs
 * from old, new gets a copy of old's value and report is called with the
 * key's path ("daemon.listen"), in table order; report may be NULL. old
 * is only read.
 */
void config_keep_restart_keys(const struct config *old, struct config *new,
			      void (*report)(void *arg, const char *key),
			      void *arg);

/* Lookups by id; NULL when absent. */
/*
 * The program's structure as a JSON object (new reference): program,
 * phases, pools and consortia with every field that shapes the ledger,
 * instants as Unix seconds (null for -/+infinity). What a config entry of
 * the journal records, and compares to decide whether one is due.
 */
json_t *config_structure(const struct config *cfg);
const struct cfg_phase *config_phase(const struct config *cfg, const char *id);
const struct cfg_pool *config_pool(const struct config *cfg, const char *id);
const struct cfg_consortium *config_consortium(const struct config *cfg,
					       const char *id);
/* The phase containing instant t, or NULL when t falls in a gap. */
const struct cfg_phase *config_phase_at(const struct config *cfg, int64_t t);
/* Whether some pool has this GPU model. */
bool config_has_gpu(const struct config *cfg, const char *gpu);

const char *role_name(enum role r);
int role_parse(const char *s, enum role *r);
