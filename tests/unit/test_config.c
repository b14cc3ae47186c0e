/* SPDX-License-Identifier: MIT */
/*
 * Tests of the configuration loader: the example config loads and matches
 * the key table (every key it uses is a row, every default is applied),
 * lookups work, and each kind of broken file is refused with the exact
 * "t.yaml:LINE:COL:" of the offending node and a message that says what is
 * wrong, all errors of a file at once. Broken files are inline strings, one
 * table row each, run as one cmocka test each.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "daemon/config.h"
#include "daemon/grammar.h"
#include "daemon/log.h"
#include "daemon/timefmt.h"
#include "daemon/util.h"

#ifndef SOURCE_ROOT
#error "tests/unit/meson.build passes SOURCE_ROOT"
#endif

/* Internal to config.c, for this test only. */
typedef void config_key_fn(const char *path, const char *type,
			   const char *def, bool required, bool restart,
			   void *arg);
void config__keys(config_key_fn *fn, void *arg);
int config__get(const struct config *cfg, const char *path, char *buf,
		size_t len);

#define SEOUL (9 * 3600)

static int64_t T(const char *s)
{
	int64_t t = 0;
	assert_int_equal(time_parse(s, SEOUL, &t, NULL), 0);
	return t;
}

static struct config *parse_ok(const char *text)
{
	struct config *cfg = NULL;
	char *errs = NULL;
	int rc = config_parse("t.yaml", text, strlen(text), &cfg, &errs);
	if (rc != 0)
		print_error("unexpected errors:\n%s", errs ? errs : "(none)\n");
	assert_int_equal(rc, 0);
	assert_null(errs);
	assert_non_null(cfg);
	return cfg;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Whether errs has a line "t.yaml:WHERE: ..." that contains gist. */
static bool has_error(const char *errs, const char *where, const char *gist)
{
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "t.yaml:%s: ", where);
	for (const char *line = errs; *line; ) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char *l = xstrndup(line, len);
		bool ok = strncmp(l, prefix, strlen(prefix)) == 0 &&
			  strstr(l + strlen(prefix), gist) != NULL;
		free(l);
		if (ok)
			return true;
		line += len + (nl != NULL);
	}
	return false;
}

/* Parses text, expects failure with n error lines (0: any), one of them
 * at where with gist in it. */
static void expect_errors(const char *text, size_t n, const char *where,
			  const char *gist)
{
	struct config *cfg = NULL;
	char *errs = NULL;
	int rc = config_parse("t.yaml", text, strlen(text), &cfg, &errs);

	assert_int_equal(rc, -EINVAL);
	assert_null(cfg);
	assert_non_null(errs);
	if (!has_error(errs, where, gist) || (n && count_lines(errs) != n))
		print_error("wanted %zu error(s), one at %s with '%s'; got:\n%s",
			    n, where, gist, errs);
	assert_true(has_error(errs, where, gist));
	if (n)
		assert_int_equal(count_lines(errs), n);
	free(errs);
}

/* ---- broken configs ------------------------------------------------------ */

/* Lines 1-3: a valid program and phase; cases add from line 4 on. */
#define HDR "program: {name: P}\n" \
	"phases:\n" \
	"  - {id: p1, name: one, start: 2025-08-04, end: 2026-01-16}\n"
/* Lines 4-7 after HDR: a pool without gpus; its mapping starts at 5:5. */
#define POOLH HDR "pools:\n" \
	"  - id: a\n" \
	"    provider: X\n" \
	"    gpu: B200\n"
/* Lines 1-2, then a block phase at lines 3-6 (start at 5:12, end at 6:10). */
#define PHH "program: {name: P}\n" \
	"phases:\n"
#define PHASE(id, start, end) \
	"  - id: " id "\n" \
	"    name: x\n" \
	"    start: " start "\n" \
	"    end: " end "\n"
/* Lines 4-7 after HDR; a token's mapping starts at 8:7, its role value is
 * at 9:13, the line after that at 10. */
#define TOKH HDR "consortia:\n" \
	"  - {id: lg, name: LG, lead: LG}\n" \
	"access:\n" \
	"  tokens:\n"
#define HASH1 "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define HASH2 "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"

struct bad {
	const char *name;
	const char *text;
	size_t n;		/* error lines expected; 0: any */
	const char *where;	/* "LINE:COL" */
	const char *gist;
};

static const struct bad bad[] = {
	{ "top_unknown_key", HDR "bogus: 1\n", 1, "4:1",
	  "unknown key 'bogus' at the top level" },
	{ "pool_unknown_key", POOLH "    gpus: 8\n    colour: red\n", 1, "9:5",
	  "unknown key 'colour' in pools[0]" },
	{ "duplicate_key", HDR "daemon:\n  log: a\n  log: b\n", 1, "6:3",
	  "duplicate key 'log' (first at 5:3)" },
	{ "map_for_string", HDR "daemon:\n  socket: {a: 1}\n", 1, "5:11",
	  "expected a string for 'socket', got a mapping" },
	{ "seq_for_section", HDR "daemon: [1, 2]\n", 1, "4:9",
	  "expected a mapping for 'daemon', got a sequence" },
	{ "scalar_for_section", "program: 1\n" "phases:\n"
	  "  - {id: p1, name: one, start: 2025-08-04, end: 2026-01-16}\n", 1,
	  "1:10", "expected a mapping for 'program', got a scalar" },
	{ "null_for_string", HDR "daemon:\n  socket: ~\n", 1, "5:11",
	  "expected a string for 'socket', got null" },
	{ "empty_string", HDR "daemon:\n  socket: \"\"\n", 1, "5:11",
	  "'socket' must not be empty" },
	{ "quoted_int", POOLH "    gpus: \"8\"\n", 1, "8:11",
	  "expected an integer for 'gpus', got a quoted string" },
	{ "zero_gpus", POOLH "    gpus: 0\n", 1, "8:11",
	  "'gpus' must be at least 1 (got 0)" },
	{ "negative_gpus", POOLH "    gpus: -8\n", 1, "8:11",
	  "'gpus' must be at least 1" },
	{ "fractional_gpus", POOLH "    gpus: 1.5\n", 1, "8:11",
	  "expected an integer for 'gpus', got '1.5'" },
	{ "huge_gpus", POOLH "    gpus: 99999999999999999999\n", 1, "8:11",
	  "'gpus' is out of range" },
	{ "zero_gpus_per_node", POOLH "    gpus: 8\n    gpus_per_node: 0\n", 1,
	  "9:20", "'gpus_per_node' must be at least 1" },
	{ "gpus_not_whole_nodes", POOLH "    gpus: 100\n    gpus_per_node: 8\n", 1,
	  "8:11", "gpus (100) must be a multiple of gpus_per_node (8)" },
	{ "lease_inverted", POOLH "    gpus: 8\n"
	  "    available_from: 2026-07-01\n    available_until: 2026-07-01\n", 1,
	  "10:22", "available_until (2026-07-01T00:00:00+09:00) must be after available_from" },
	{ "missing_gpus", POOLH, 1, "5:5", "missing required key 'gpus' in pools[0]" },
	{ "no_such_date", PHH PHASE("p1", "2026-02-30", "2026-03-01"), 1, "5:12",
	  "invalid time for 'start': '2026-02-30': no such date" },
	{ "not_a_leap_year", PHH PHASE("p1", "2025-02-29", "2025-03-01"), 1, "5:12",
	  "no such date" },
	{ "hour_24", PHH PHASE("p1", "2026-01-16T24:00", "2026-03-01"), 1, "5:12",
	  "no such time of day" },
	{ "time_trailing_junk", PHH PHASE("p1", "2026-01-16T09:00 KST", "2026-03-01"),
	  1, "5:12", "unexpected text after the time" },
	{ "phase_inverted", PHH PHASE("p1", "2026-03-01", "2026-03-01"), 1, "6:10",
	  "phase p1 ends (2026-03-01T00:00:00+09:00) at or before its start" },
	{ "phase_overlap", PHH PHASE("p1", "2026-01-01", "2026-03-01")
	  PHASE("p2", "2026-02-01", "2026-04-01"), 1, "9:12",
	  "phase p2 (from 2026-02-01T00:00:00+09:00) overlaps phase p1 (until 2026-03-01" },
	{ "phase_overlap_out_of_order", PHH PHASE("p2", "2026-02-01", "2026-04-01")
	  PHASE("p1", "2026-01-01", "2026-03-01"), 1, "5:12",
	  "phase p2 (from 2026-02-01T00:00:00+09:00) overlaps phase p1" },
	{ "phase_inside_another", PHH PHASE("big", "2026-01-01", "2026-12-01")
	  PHASE("a", "2026-02-01", "2026-03-01") PHASE("b", "2026-04-01", "2026-05-01"),
	  2, "13:12", "phase b (from 2026-04-01T00:00:00+09:00) overlaps phase big" },
	{ "duplicate_phase_id", PHH PHASE("p1", "2026-01-01", "2026-02-01")
	  PHASE("p1", "2026-02-01", "2026-03-01"), 1, "7:9",
	  "duplicate phase id 'p1' (first at 3:9)" },
	{ "bad_phase_id", PHH PHASE("\"p/1\"", "2026-01-01", "2026-02-01"), 1, "3:9",
	  "invalid id 'p/1'" },
	{ "no_phases", "program: {name: P}\nphases: []\n", 1, "2:9",
	  "'phases' needs at least 1 entry" },
	{ "duplicate_pool_id", POOLH "    gpus: 8\n"
	  "  - id: a\n    provider: Y\n    gpu: H200\n    gpus: 8\n", 1, "9:9",
	  "duplicate pool id 'a' (first at 5:9)" },
	{ "duplicate_consortium_id", HDR "consortia:\n"
	  "  - {id: lg, name: LG, lead: LG}\n  - {id: lg, name: LG2, lead: LG}\n",
	  1, "6:10", "duplicate consortium id 'lg' (first at 5:10)" },
	{ "consortium_not_slug", HDR "consortia:\n  - {id: LG, name: LG, lead: LG}\n",
	  1, "5:10", "invalid id 'LG': a consortium id is a slug" },
	{ "members_not_list", HDR "consortia:\n"
	  "  - {id: lg, name: LG, lead: LG, members: SNU}\n", 1, "5:43",
	  "expected a list of strings for 'members', got a scalar" },
	{ "missing_program", "phases:\n"
	  "  - {id: p1, name: one, start: 2025-08-04, end: 2026-01-16}\n", 1, "1:1",
	  "missing required key 'program'" },
	{ "missing_program_name", "program: {timezone: UTC}\nphases:\n"
	  "  - {id: p1, name: one, start: 2025-08-04, end: 2026-01-16}\n", 1, "1:10",
	  "missing required key 'name' in program" },
	{ "missing_phases", "program: {name: P}\n", 1, "1:1",
	  "missing required key 'phases'" },
	{ "bad_timezone", "program: {name: P, timezone: America/New_York}\nphases:\n"
	  "  - {id: p1, name: one, start: 2025-08-04, end: 2026-01-16}\n", 1, "1:30",
	  "unknown time zone 'America/New_York'" },
	{ "negative_grace", "program: {name: P, designation_grace_days: -1}\nphases:\n"
	  "  - {id: p1, name: one, start: 2025-08-04, end: 2026-01-16}\n", 1, "1:44",
	  "'designation_grace_days' must be at least 0" },
	{ "negative_retroactive", "program: {name: P, retroactive_days: -1}\nphases:\n"
	  "  - {id: p1, name: one, start: 2025-08-04, end: 2026-01-16}\n", 1, "1:38",
	  "'retroactive_days' must be at least 0" },
	{ "unknown_log_level", HDR "daemon:\n  log_level: verbose\n", 1, "5:14",
	  "unknown log_level 'verbose' (expected one of: debug, info, warn, error)" },
	/* and the bad bool does not also condemn the listen address */
	{ "bool_yes", HDR "daemon:\n  allow_plaintext_remote: yes\n  listen: 0.0.0.0:1\n", 1, "5:27",
	  "expected true or false for 'allow_plaintext_remote', got 'yes'" },
	{ "listen_remote_plaintext", HDR "daemon:\n  listen: 0.0.0.0:8470\n", 1, "5:11",
	  "plaintext HTTP on non-loopback address '0.0.0.0'" },
	{ "listen_remote_v6", HDR "daemon:\n  listen: \"[2001:db8::1]:8470\"\n", 1,
	  "5:11", "non-loopback address '2001:db8::1'" },
	{ "listen_no_port", HDR "daemon:\n  listen: localhost\n", 1, "5:11",
	  "invalid listen 'localhost': expected HOST:PORT" },
	{ "listen_bad_port", HDR "daemon:\n  listen: 127.0.0.1:70000\n", 1, "5:11",
	  "expected HOST:PORT" },
	{ "slurm_upper_cluster", HDR "pools:\n"
	  "  - {id: a, provider: X, gpu: B200, gpus: 8, slurm: {cluster: KR1, partition: b}}\n",
	  1, "5:63", "invalid cluster 'KR1': a Slurm cluster name is up to 32 lowercase letters" },
	{ "slurm_long_cluster", HDR "pools:\n"
	  "  - {id: a, provider: X, gpu: B200, gpus: 8, slurm: {cluster: abcdefghijabcdefghijabcdefghijabc, partition: b}}\n",
	  1, "5:63", "invalid cluster 'abcdefghijabcdefghijabcdefghijabc'" },
	{ "slurm_bad_partition", HDR "pools:\n"
	  "  - {id: a, provider: X, gpu: B200, gpus: 8, slurm: {cluster: kr1, partition: \"b,c\"}}\n",
	  1, "5:79", "invalid partition 'b,c': a Slurm partition name is up to 64 letters" },
	{ "slurm_missing_partition", HDR "pools:\n"
	  "  - {id: a, provider: X, gpu: B200, gpus: 8, slurm: {cluster: kr1}}\n",
	  1, "5:53", "missing required key 'partition' in pools[0].slurm" },
	{ "slurm_unknown_key", HDR "pools:\n"
	  "  - {id: a, provider: X, gpu: B200, gpus: 8, slurm: {cluster: kr1, partition: b, qos: x}}\n",
	  1, "5:82", "unknown key 'qos' in pools[0].slurm (expected one of: cluster, partition)" },
	{ "slurm_not_a_map", HDR "pools:\n"
	  "  - {id: a, provider: X, gpu: B200, gpus: 8, slurm: kr1}\n",
	  1, "5:53", "expected a mapping for 'slurm', got a scalar" },
	{ "slurm_partition_twice", HDR "pools:\n"
	  "  - {id: a, provider: X, gpu: B200, gpus: 8, slurm: {cluster: kr1, partition: b}}\n"
	  "  - {id: c, provider: X, gpu: H200, gpus: 8, slurm: {cluster: kr1, partition: b}}\n",
	  1, "6:53", "pool c: Slurm partition b of cluster kr1 is already pool a's" },
	{ "unknown_role", TOKH "    - name: t1\n      role: root\n      sha256: " HASH1 "\n",
	  1, "9:13", "unknown role 'root' (expected one of: consortium, operator, agent, admin)" },
	{ "token_needs_consortium", TOKH "    - name: t1\n      role: consortium\n"
	  "      sha256: " HASH1 "\n", 1, "8:7",
	  "missing required key 'consortium' (token t1 has role consortium)" },
	{ "token_unknown_consortium", TOKH "    - name: t1\n      role: consortium\n"
	  "      consortium: zz\n      sha256: " HASH1 "\n", 1, "10:19",
	  "token t1: unknown consortium 'zz'" },
	{ "token_consortium_wrong_role", TOKH "    - name: t1\n      role: admin\n"
	  "      consortium: lg\n      sha256: " HASH1 "\n", 1, "10:19",
	  "'consortium' is only for role consortium, not admin" },
	{ "token_hash_short", TOKH "    - name: t1\n      role: admin\n"
	  "      sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0\n",
	  1, "10:15", "malformed 'sha256': expected 64 hex digits, got 63" },
	{ "token_hash_not_hex", TOKH "    - name: t1\n      role: admin\n"
	  "      sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0g\n",
	  1, "10:15", "malformed 'sha256': expected 64 hex digits" },
	{ "token_missing_hash", TOKH "    - name: t1\n      role: admin\n", 1, "8:7",
	  "missing required key 'sha256' in access.tokens[0]" },
	{ "duplicate_token_name", TOKH "    - name: t1\n      role: admin\n"
	  "      sha256: " HASH1 "\n    - name: t1\n      role: admin\n"
	  "      sha256: " HASH2 "\n", 1, "11:13",
	  "duplicate token name 't1' (first at 8:13)" },
	{ "duplicate_token_hash", TOKH "    - name: t1\n      role: admin\n"
	  "      sha256: " HASH1 "\n    - name: t2\n      role: operator\n"
	  "      sha256: " HASH1 "\n", 1, "13:15",
	  "token t2 has the same sha256 as token t1" },
	{ "access_unknown_consortium", HDR "consortia:\n  - {id: lg, name: LG, lead: LG}\n"
	  "access:\n  consortia:\n    zz: {groups: [g]}\n", 1, "8:5",
	  "unknown consortium 'zz' in access.consortia" },
	{ "access_duplicate_consortium", HDR "consortia:\n  - {id: lg, name: LG, lead: LG}\n"
	  "access:\n  consortia:\n    lg: {groups: [a]}\n    lg: {groups: [b]}\n", 1,
	  "9:5", "duplicate key 'lg' (first at 8:5)" },
	{ "access_group_two_consortia", HDR "consortia:\n"
	  "  - {id: lg, name: LG, lead: LG}\n  - {id: skt, name: SKT, lead: SKT}\n"
	  "access:\n  consortia:\n    lg: {groups: [g]}\n    skt: {groups: [g]}\n", 1,
	  "10:20", "group 'g' already maps to consortium lg (at 9:19)" },
	{ "access_admins_not_map", HDR "access:\n  admins: [root]\n", 1, "5:11",
	  "expected a mapping for 'admins', got a sequence" },
	{ "anchor", HDR "daemon:\n  socket: &s a\n", 1, "5:11",
	  "anchor '&s': anchors and aliases are not allowed" },
	{ "alias", HDR "daemon:\n  socket: &s a\n  database: *s\n", 2, "6:13",
	  "alias '*s': aliases are not allowed" },
	{ "tag", HDR "daemon:\n  socket: !!str a\n", 1, "5:11",
	  "tags are not allowed" },
	{ "key_not_scalar", HDR "? [a]\n: b\n", 1, "4:3",
	  "mapping keys must be strings, not a sequence" },
	{ "syntax_error", HDR "daemon: a: b\n", 1, "4:10",
	  "syntax error: mapping values are not allowed in this context" },
	{ "syntax_error_unclosed", "program: {name: P\n", 1, "2:1",
	  "syntax error: did not find expected ',' or '}' (while parsing a flow mapping)" },
	{ "invalid_utf8", HDR "daemon:\n  log: \xff\n", 1, "5:8",
	  "syntax error: invalid leading UTF-8 octet" },
	/* issue 9, items 7 and 8: the socket's mode and the budgets */
	{ "socket_mode_not_octal", HDR "daemon:\n  socket_mode: 0999\n", 1, "5:16",
	  "expected an octal file mode such as 0660 for 'socket_mode', got '0999'" },
	{ "socket_mode_too_wide", HDR "daemon:\n  socket_mode: 1777\n", 1, "5:16",
	  "expected an octal file mode such as 0660 for 'socket_mode', got '1777'" },
	{ "socket_mode_quoted", HDR "daemon:\n  socket_mode: \"0660\"\n", 1, "5:16",
	  "for 'socket_mode', got a quoted '0660'" },
	{ "tcp_unknown_key", HDR "daemon:\n  tcp: {max_conns: 5}\n", 1, "5:9",
	  "unknown key 'max_conns' in daemon.tcp (expected one of: max_connections, "
	  "max_per_peer, first_byte_timeout)" },
	{ "tcp_per_peer_zero", HDR "daemon:\n  tcp: {max_per_peer: 0}\n", 1, "5:23",
	  "'max_per_peer' must be at least 1 (got 0)" },
	{ "tcp_not_map", HDR "daemon:\n  tcp: 16\n", 1, "5:8",
	  "expected a mapping for 'tcp', got a scalar" },
	{ "max_per_uid_quoted", HDR "daemon:\n  max_per_uid: \"32\"\n", 1, "5:16",
	  "expected an integer for 'max_per_uid', got a quoted string" },
	/* issue 9, item 18: a model that prints like B200 but is another one */
	{ "gpu_trailing_space", HDR "pools:\n  - {id: a, provider: X, gpu: \"B200 \", gpus: 8}\n",
	  1, "5:31", "invalid gpu 'B200 ': a GPU model must not end with white space" },
	{ "gpu_leading_space", HDR "pools:\n  - {id: a, provider: X, gpu: \" B200\", gpus: 8}\n",
	  1, "5:31", "a GPU model must not begin with white space" },
	{ "gpu_trailing_nbsp", HDR "pools:\n  - {id: a, provider: X, gpu: \"B200\u00a0\", gpus: 8}\n",
	  1, "5:31", "a GPU model must not end with white space" },
	/* issue 9, item 18: a consortium that could never be active */
	{ "joined_after_last_phase", HDR "consortia:\n"
	  "  - {id: lg, name: LG, lead: LG, joined: 2026-01-16}\n", 1, "5:42",
	  "consortium lg joins (2026-01-16T00:00:00+09:00) after the last phase ends "
	  "(2026-01-16T00:00:00+09:00)" },
	{ "joined_long_after", PHH PHASE("p1", "2025-08-04", "2026-01-16")
	  PHASE("p2", "2026-01-16", "2026-08-01")
	  "consortia:\n  - {id: lg, name: LG, lead: LG, joined: 2027-02-20}\n", 1, "12:42",
	  "after the last phase ends (2026-08-01T00:00:00+09:00)" },
	/* issue 14: transfers name the program reserve "reserve" */
	{ "reserve_id", HDR "consortia:\n  - {id: reserve, name: R, lead: R}\n", 1, "5:10",
	  "consortium id 'reserve' is taken: it names the program reserve" },
	/* issue 9, item 14: names obey the API's text rule */
	{ "name_control_char", HDR "consortia:\n  - {id: lg, name: \"LG\\x1f\", lead: LG}\n",
	  1, "5:20", "'name' must not contain control characters (U+001F at byte 2)" },
	{ "member_c1_control", HDR "consortia:\n"
	  "  - {id: lg, name: LG, lead: LG, members: [\"a\\u0085b\"]}\n", 1, "5:44",
	  "'members' must not contain control characters (U+0085 at byte 1)" },
	{ "provider_newline", HDR "pools:\n  - {id: a, provider: \"X\\nY\", gpu: B200, gpus: 8}\n",
	  1, "5:23", "'provider' must not contain control characters (U+000A at byte 1)" },
	{ "two_documents", HDR "---\nfoo: 1\n", 1, "4:1",
	  "only one YAML document is allowed" },
	{ "empty_file", "", 1, "1:1", "the configuration is empty" },
	{ "only_comments", "# nothing here\n\n", 1, "1:1", "the configuration is empty" },
	{ "top_not_map", "- a\n- b\n", 1, "1:1",
	  "expected a mapping at the top level, got a sequence" },
	{ "too_deep", HDR "x: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
	  1, "4:35", "nested too deeply" },
};

static void test_bad(void **state)
{
	const struct bad *b = *state;
	expect_errors(b->text, b->n, b->where, b->gist);
}

/* ---- several errors in one file ----------------------------------------- */

static void test_all_errors_reported(void **state)
{
	/* the errors lie in several sections, the program (read first) last */
	static const char text[] =
		"daemon:\n"					/* 1 */
		"  log_level: loud\n"				/* 2: 2:14 */
		"  sockets: x\n"				/* 3: 3:3 */
		"phases:\n"					/* 4 */
		"  - {id: p1, name: a, start: 2026-01-01, end: 2025-01-01}\n" /* 5 */
		"  - {id: p2, name: b, start: 2026-13-01, end: 2026-12-01}\n" /* 6 */
		"pools:\n"					/* 7 */
		"  - {id: x, provider: X, gpu: B200, gpus: 0}\n"	/* 8: 8:43 */
		"  - {id: x, provider: X, gpu: B200}\n"		/* 9: 9:5, 9:10 */
		"consortia:\n"					/* 10 */
		"  - {id: Bad, name: B, lead: B}\n"		/* 11: 11:10 */
		"program:\n"					/* 12 */
		"  name: P\n"					/* 13 */
		"  timezone: Mars/Olympus\n";			/* 14: 14:13 */
	struct config *cfg = NULL;
	char *errs = NULL;

	assert_int_equal(config_parse("t.yaml", text, strlen(text), &cfg, &errs),
			 -EINVAL);
	assert_null(cfg);
	static const char *const want[] = {
		"t.yaml:2:14: unknown log_level 'loud'",
		"t.yaml:3:3: unknown key 'sockets' in daemon",
		"t.yaml:5:47: phase p1 ends (2025-01-01T00:00:00+09:00) at or before its start",
		"t.yaml:6:30: invalid time for 'start': '2026-13-01': no such date",
		"t.yaml:8:43: 'gpus' must be at least 1",
		"t.yaml:9:5: missing required key 'gpus' in pools[1]",
		"t.yaml:9:10: duplicate pool id 'x' (first at 8:10)",
		"t.yaml:11:10: invalid id 'Bad'",
		"t.yaml:14:13: unknown time zone 'Mars/Olympus'",
	};
	/* sorted by position, one per line, nothing else */
	const char *p = errs;
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		if (strncmp(p, want[i], strlen(want[i])) != 0)
			print_error("line %zu: wanted '%s'; all:\n%s", i, want[i], errs);
		assert_true(strncmp(p, want[i], strlen(want[i])) == 0);
		p = strchr(p, '\n');
		assert_non_null(p);
		p++;
	}
	assert_string_equal(p, "");
	free(errs);
}

static void test_errors_from_file(void **state)
{
	struct config *cfg = NULL;
	char *errs = NULL;
	const char *path = SOURCE_ROOT "/tests/fixtures/config-errors.yaml";

	assert_int_equal(config_load(path, &cfg, &errs), -EINVAL);
	assert_null(cfg);
	assert_non_null(errs);
	/* every line names the file, as given */
	for (const char *p = errs; *p; p = strchr(p, '\n') + 1)
		assert_true(strncmp(p, path, strlen(path)) == 0 && p[strlen(path)] == ':');
	assert_int_equal(count_lines(errs), 3);
	char *want = xasprintf("%s:8:11: 'gpus' must be at least 1", path);
	assert_non_null(strstr(errs, want));
	free(want);
	free(errs);
}

static void test_load_missing_file(void **state)
{
	struct config *cfg = NULL;
	char *errs = NULL;

	assert_int_equal(config_load("/nonexistent/gpuledger.yaml", &cfg, &errs),
			 -ENOENT);
	assert_null(cfg);
	assert_non_null(strstr(errs, "/nonexistent/gpuledger.yaml: "));
	free(errs);
	assert_int_equal(config_load(SOURCE_ROOT "/config", &cfg, &errs), -EINVAL);
	assert_null(cfg);
	assert_non_null(strstr(errs, "/config: not a regular file"));
	free(errs);
	/* errors may be NULL */
	assert_int_equal(config_parse("t.yaml", "x", 1, &cfg, NULL), -EINVAL);
	assert_null(cfg);
}

/* ---- good configs -------------------------------------------------------- */

static void test_example_loads(void **state)
{
	struct config *cfg = NULL;
	char *errs = NULL;
	int rc = config_load(SOURCE_ROOT "/config/example.yaml", &cfg, &errs);

	if (rc != 0)
		print_error("%s", errs);
	assert_int_equal(rc, 0);
	assert_null(errs);

	assert_string_equal(cfg->program_name, "Sovereign AI Foundation Model");
	assert_string_equal(cfg->timezone, "Asia/Seoul");
	assert_int_equal(cfg->tz_offset, SEOUL);
	assert_int_equal(cfg->designation_grace_days, 180);
	assert_int_equal(cfg->retroactive_days, 7);
	assert_string_equal(cfg->socket, "var/gpuledger.sock");
	assert_string_equal(cfg->database, "var/gpuledger.db");
	assert_string_equal(cfg->log, "-");
	assert_int_equal(cfg->log_level, LOG_INFO);
	assert_null(cfg->listen);
	assert_string_equal(cfg->idempotency_retention, "30d");
	assert_false(cfg->allow_plaintext);

	assert_int_equal(cfg->admins.users.n, 1);
	assert_string_equal(cfg->admins.users.v[0], "root");
	assert_string_equal(cfg->admins.groups.v[0], "gpuledger-admin");
	assert_int_equal(cfg->operators.users.n, 0);
	assert_string_equal(cfg->operators.groups.v[0], "adm");
	assert_int_equal(cfg->n_consortium_access, 6);
	assert_int_equal(cfg->n_tokens, 0);

	assert_int_equal(cfg->n_phases, 3);
	assert_string_equal(cfg->phases[0].id, "p1");
	assert_int_equal(cfg->phases[0].start, T("2025-08-04"));
	assert_int_equal(cfg->phases[0].end, T("2026-01-16"));
	assert_int_equal(cfg->phases[1].start, cfg->phases[0].end);
	assert_int_equal(cfg->phases[2].start, cfg->phases[1].end);
	assert_int_equal(cfg->phases[2].end, T("2027-01-01"));

	assert_int_equal(cfg->n_pools, 6);
	const struct cfg_pool *p = config_pool(cfg, "skt-b200");
	assert_non_null(p);
	assert_ptr_equal(p, &cfg->pools[0]);	/* file order */
	assert_string_equal(p->provider, "SK Telecom");
	assert_string_equal(p->gpu, "B200");
	assert_int_equal(p->gpus, 1024);
	assert_true(p->available_from == TIME_MIN);
	assert_int_equal(p->available_until, T("2026-07-01"));
	assert_int_equal(p->gpus_per_node, 0);
	p = config_pool(cfg, "nhn-b200");
	assert_int_equal(p->gpus, 6120);
	assert_int_equal(p->gpus_per_node, 8);
	assert_int_equal(p->available_from, T("2026-07-01"));
	assert_true(p->available_until == TIME_MAX);
	assert_int_equal(config_pool(cfg, "kakao-b200")->gpus, 2040);
	assert_int_equal(config_pool(cfg, "ncloud-gov-h200")->gpus, 2296);
	assert_int_equal(config_pool(cfg, "ncloud-h200")->gpus, 1024);
	assert_string_equal(config_pool(cfg, "kt-h100")->gpu, "H100");

	assert_int_equal(cfg->n_consortia, 6);
	static const char *const ids[] = {"lg", "skt", "upstage", "naver", "ncai", "motif"};
	for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
		assert_string_equal(cfg->consortia[i].id, ids[i]);
		assert_string_equal(cfg->consortium_access[i].consortium, ids[i]);
		char *g = xasprintf("team-%s", ids[i]);
		assert_string_equal(cfg->consortium_access[i].groups.v[0], g);
		free(g);
	}
	const struct cfg_consortium *c = config_consortium(cfg, "lg");
	assert_string_equal(c->name, "LG AI Research");
	assert_int_equal(c->members.n, 6);
	assert_string_equal(c->members.v[5], "Riiid");
	assert_int_equal(c->joined, T("2025-08-04"));
	assert_int_equal(c->eligible_from, TIME_MIN);
	/* it leases its GPUs to the program: no support until H2 2026 */
	assert_int_equal(config_consortium(cfg, "skt")->eligible_from, T("2026-07-01"));
	c = config_consortium(cfg, "motif");
	assert_int_equal(c->joined, T("2026-02-20"));
	assert_string_equal(c->members.v[0], "Moreh");

	assert_true(config_has_gpu(cfg, "B200"));
	assert_true(config_has_gpu(cfg, "H100"));
	assert_false(config_has_gpu(cfg, "A100"));
	assert_string_equal(cfg->path, SOURCE_ROOT "/config/example.yaml");
	config_free(cfg);
}

struct table {
	char **path, **type, **def;
	bool *required, *restart;
	size_t n;
};

static void collect(const char *path, const char *type, const char *def,
		    bool required, bool restart, void *arg)
{
	struct table *t = arg;
	t->path = xreallocarray(t->path, t->n + 1, sizeof(char *));
	t->type = xreallocarray(t->type, t->n + 1, sizeof(char *));
	t->def = xreallocarray(t->def, t->n + 1, sizeof(char *));
	t->required = xreallocarray(t->required, t->n + 1, sizeof(bool));
	t->restart = xreallocarray(t->restart, t->n + 1, sizeof(bool));
	t->path[t->n] = xstrdup(path);
	t->type[t->n] = xstrdup(type);
	t->def[t->n] = def ? xstrdup(def) : NULL;
	t->required[t->n] = required;
	t->restart[t->n] = restart;
	t->n++;
}

static void table_free(struct table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->path[i]);
		free(t->type[i]);
		free(t->def[i]);
	}
	free(t->path);
	free(t->type);
	free(t->def);
	free(t->required);
	free(t->restart);
}

static const char *table_type(const struct table *t, const char *path)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->path[i], path) == 0)
			return t->type[i];
	return NULL;
}

struct walk {
	const struct table *table;
	const struct config *cfg;
	yaml_document_t *doc;
	size_t keys, leaves;
};

/*
 * Visits node of the example at table path tpath and real path rpath:
 * every key must be a row of the table, and every scalar must read back
 * through config__get() as the file wrote it.
 */
static void visit(struct walk *w, yaml_node_t *node, const char *tpath,
		  const char *rpath)
{
	const char *type = tpath[0] ? table_type(w->table, tpath) : "map";
	char buf[256];

	assert_non_null(type);
	if (node->type == YAML_MAPPING_NODE) {
		for (yaml_node_pair_t *pr = node->data.mapping.pairs.start;
		     pr < node->data.mapping.pairs.top; pr++) {
			yaml_node_t *k = yaml_document_get_node(w->doc, pr->key);
			const char *key = (const char *)k->data.scalar.value;
			char *tp, *rp;
			if (strcmp(type, "idmap") == 0)
				tp = xasprintf("%s.*", tpath);
			else
				tp = tpath[0] ? xasprintf("%s.%s", tpath, key) : xstrdup(key);
			rp = rpath[0] ? xasprintf("%s.%s", rpath, key) : xstrdup(key);
			if (table_type(w->table, tp) == NULL)
				print_error("key %s (%s) of the example is not in the table\n",
					    rp, tp);
			assert_non_null(table_type(w->table, tp));
			w->keys++;
			visit(w, yaml_document_get_node(w->doc, pr->value), tp, rp);
			free(tp);
			free(rp);
		}
	} else if (node->type == YAML_SEQUENCE_NODE && strcmp(type, "list") == 0) {
		size_t i = 0;
		for (yaml_node_item_t *it = node->data.sequence.items.start;
		     it < node->data.sequence.items.top; it++, i++) {
			char *tp = xasprintf("%s[]", tpath);
			char *rp = xasprintf("%s[%zu]", rpath, i);
			visit(w, yaml_document_get_node(w->doc, *it), tp, rp);
			free(tp);
			free(rp);
		}
	} else if (node->type == YAML_SEQUENCE_NODE) {
		assert_string_equal(type, "strings");
		struct buf b = {0};
		buf_puts(&b, "[");
		for (yaml_node_item_t *it = node->data.sequence.items.start;
		     it < node->data.sequence.items.top; it++)
			buf_printf(&b, "%s%s", it == node->data.sequence.items.start ? "" : ", ",
				   yaml_document_get_node(w->doc, *it)->data.scalar.value);
		buf_puts(&b, "]");
		assert_int_equal(config__get(w->cfg, rpath, buf, sizeof(buf)), 0);
		assert_string_equal(buf, b.data);
		buf_free(&b);
		w->leaves++;
	} else {
		const char *text = (const char *)node->data.scalar.value;
		assert_int_equal(config__get(w->cfg, rpath, buf, sizeof(buf)), 0);
		if (strcmp(type, "time") == 0)
			assert_int_equal(T(buf), T(text));
		else
			assert_string_equal(buf, text);
		w->leaves++;
	}
}

static void test_example_matches_table(void **state)
{
	const char *path = SOURCE_ROOT "/config/example.yaml";
	struct table t = {0};
	struct config *cfg = NULL;
	yaml_parser_t parser;
	yaml_document_t doc;
	FILE *f = fopen(path, "rb");

	config__keys(collect, &t);
	assert_true(t.n > 30);
	assert_string_equal(table_type(&t, "pools[].gpus"), "integer");
	assert_string_equal(table_type(&t, "access.consortia.*.groups"), "strings");

	assert_int_equal(config_load(path, &cfg, NULL), 0);
	assert_non_null(f);
	assert_true(yaml_parser_initialize(&parser));
	yaml_parser_set_input_file(&parser, f);
	assert_true(yaml_parser_load(&parser, &doc));

	struct walk w = { &t, cfg, &doc, 0, 0 };
	visit(&w, yaml_document_get_root_node(&doc), "", "");
	/* the whole file was looked at (100 keys, 85 leaf values today) */
	assert_true(w.keys >= 90);
	assert_true(w.leaves >= 75);

	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	fclose(f);
	config_free(cfg);
	table_free(&t);
}

static void test_defaults_from_table(void **state)
{
	/* only what is required, program last: defaults fill the rest */
	struct config *cfg = parse_ok(
		"phases:\n"
		"  - {id: p1, name: one, start: 2025-08-04, end: 2026-01-16}\n"
		"pools:\n"
		"  - {id: a, provider: X, gpu: B200, gpus: 8}\n"
		"consortia:\n"
		"  - {id: lg, name: LG AI연구원, lead: LG}\n"
		"program: {name: P}\n");
	struct table t = {0};
	char buf[128];
	size_t checked = 0;

	config__keys(collect, &t);
	for (size_t i = 0; i < t.n; i++) {
		if (t.def[i] == NULL)
			continue;
		assert_false(t.required[i]);
		/* the first entry of each list, which set no optional key */
		struct buf rp = {0};
		for (const char *p = t.path[i]; *p; p++) {
			if (p[0] == '[' && p[1] == ']') {
				buf_puts(&rp, "[0]");
				p++;
			} else {
				buf_append(&rp, p, 1);
			}
		}
		assert_int_equal(config__get(cfg, rp.data, buf, sizeof(buf)), 0);
		if (strcmp(rp.data, "consortia[0].joined") == 0)
			/* "not given": the start of the first phase */
			assert_int_equal(T(buf), T("2025-08-04"));
		else
			assert_string_equal(buf, t.def[i]);
		checked++;
		buf_free(&rp);
	}
	assert_int_equal(checked, 21);

	/* the same, by field */
	assert_string_equal(cfg->socket, "var/gpuledger.sock");
	assert_string_equal(cfg->database, "var/gpuledger.db");
	assert_string_equal(cfg->log, "-");
	assert_int_equal(cfg->log_level, LOG_INFO);
	assert_null(cfg->listen);
	assert_false(cfg->allow_plaintext);
	assert_int_equal(cfg->socket_mode, 0666);
	assert_null(cfg->socket_group);
	assert_int_equal(cfg->max_connections, 256);
	assert_int_equal(cfg->max_per_uid, 32);
	assert_int_equal(cfg->max_followers, 64);
	assert_int_equal(cfg->tcp_max_connections, 256);
	assert_int_equal(cfg->tcp_max_per_peer, 16);
	assert_int_equal(cfg->tcp_first_byte_timeout, 5);
	assert_string_equal(cfg->timezone, "Asia/Seoul");
	assert_int_equal(cfg->tz_offset, SEOUL);
	assert_int_equal(cfg->designation_grace_days, 0);
	assert_int_equal(cfg->retroactive_days, 7);
	assert_int_equal(cfg->admins.users.n + cfg->admins.groups.n +
			 cfg->operators.users.n + cfg->operators.groups.n, 0);
	assert_int_equal(cfg->n_consortium_access + cfg->n_tokens, 0);
	assert_true(cfg->pools[0].available_from == TIME_MIN);
	assert_true(cfg->pools[0].available_until == TIME_MAX);
	assert_int_equal(cfg->pools[0].gpus_per_node, 0);
	assert_int_equal(cfg->consortia[0].members.n, 0);
	assert_int_equal(cfg->consortia[0].joined, T("2025-08-04"));
	assert_string_equal(cfg->consortia[0].name, "LG AI연구원");

	assert_int_equal(config__get(cfg, "daemon.nope", buf, sizeof(buf)), -ENOENT);
	assert_int_equal(config__get(cfg, "pools[1].gpus", buf, sizeof(buf)), -ENOENT);
	assert_int_equal(config__get(cfg, "daemon", buf, sizeof(buf)), -EISDIR);
	table_free(&t);
	config_free(cfg);
}

static void test_timezone_read_first(void **state)
{
	/* dates mean midnight in program.timezone, though it comes last */
	struct config *cfg = parse_ok(
		"phases:\n"
		"  - {id: p1, name: one, start: 2025-08-04, end: 2026-01-16T12:00}\n"
		"  - {id: p2, name: two, start: 2026-01-16T21:00:00+09:00, end: 2026-02-01Z}\n"
		"program: {name: P, timezone: UTC}\n");
	int64_t t;

	assert_int_equal(cfg->tz_offset, 0);
	assert_int_equal(time_parse("2025-08-04T00:00:00Z", 0, &t, NULL), 0);
	assert_int_equal(cfg->phases[0].start, t);
	assert_int_equal(time_parse("2026-01-16T12:00:00Z", 0, &t, NULL), 0);
	assert_int_equal(cfg->phases[0].end, t);
	assert_int_equal(cfg->phases[1].start, t);
	config_free(cfg);
}

static void test_phases_sorted(void **state)
{
	struct config *cfg = parse_ok(
		"program: {name: P}\n"
		"phases:\n"
		"  - {id: p3, name: c, start: 2026-08-01, end: 2027-01-01}\n"
		"  - {id: p1, name: a, start: 2025-08-04, end: 2026-01-16}\n"
		"  - {id: p2, name: b, start: 2026-01-16, end: 2026-08-01}\n"
		"consortia:\n"
		"  - {id: x, name: X, lead: X}\n");

	assert_string_equal(cfg->phases[0].id, "p1");
	assert_string_equal(cfg->phases[1].id, "p2");
	assert_string_equal(cfg->phases[2].id, "p3");
	/* joined defaults to the earliest phase, not the first written */
	assert_int_equal(cfg->consortia[0].joined, T("2025-08-04"));
	config_free(cfg);
}

static void test_lookups(void **state)
{
	struct config *cfg = parse_ok(
		"program: {name: P}\n"
		"phases:\n"
		"  - {id: p1, name: a, start: 2025-08-04, end: 2026-01-16}\n"
		"  - {id: p2, name: b, start: 2026-02-01, end: 2026-08-01}\n"
		"pools:\n"
		"  - {id: a, provider: X, gpu: B200, gpus: 16, gpus_per_node: 8}\n"
		"consortia:\n"
		"  - {id: lg, name: LG, lead: LG}\n"
		"  - {id: my_team-2, name: M, lead: M, joined: 2026-02-20T09:30}\n");

	assert_ptr_equal(config_phase(cfg, "p2"), &cfg->phases[1]);
	assert_null(config_phase(cfg, "p9"));
	assert_null(config_pool(cfg, "b"));
	assert_null(config_consortium(cfg, "LG"));
	assert_int_equal(config_consortium(cfg, "my_team-2")->joined,
			 T("2026-02-20T09:30"));

	/* half-open phases, and a gap between them */
	assert_null(config_phase_at(cfg, T("2025-08-04") - 1));
	assert_ptr_equal(config_phase_at(cfg, T("2025-08-04")), &cfg->phases[0]);
	assert_ptr_equal(config_phase_at(cfg, T("2026-01-16") - 1), &cfg->phases[0]);
	assert_null(config_phase_at(cfg, T("2026-01-16")));
	assert_null(config_phase_at(cfg, T("2026-01-31T23:59:59")));
	assert_ptr_equal(config_phase_at(cfg, T("2026-02-01")), &cfg->phases[1]);
	assert_null(config_phase_at(cfg, T("2026-08-01")));
	assert_null(config_phase_at(cfg, TIME_MAX));
	assert_null(config_phase_at(cfg, TIME_MIN));
	config_free(cfg);
}

static void test_roles(void **state)
{
	enum role r = ROLE_NONE;

	assert_int_equal(role_parse("admin", &r), 0);
	assert_int_equal(r, ROLE_ADMIN);
	assert_int_equal(role_parse("operator", &r), 0);
	assert_int_equal(r, ROLE_OPERATOR);
	assert_int_equal(role_parse("consortium", &r), 0);
	assert_int_equal(r, ROLE_CONSORTIUM);
	assert_int_equal(role_parse("none", &r), -EINVAL);
	assert_int_equal(role_parse("Admin", &r), -EINVAL);
	assert_int_equal(role_parse("", &r), -EINVAL);
	assert_int_equal(r, ROLE_CONSORTIUM);
	assert_string_equal(role_name(ROLE_ADMIN), "admin");
	assert_string_equal(role_name(ROLE_OPERATOR), "operator");
	assert_string_equal(role_name(ROLE_CONSORTIUM), "consortium");
	assert_string_equal(role_name(ROLE_NONE), "none");
	assert_string_equal(role_name((enum role)42), "none");
}

static void test_tokens_and_access(void **state)
{
	struct config *cfg = parse_ok(
		HDR
		"consortia:\n"
		"  - {id: lg, name: LG, lead: LG}\n"
		"access:\n"
		"  admins: {users: [root, \"kim\"], groups: []}\n"
		"  consortia:\n"
		"    lg: {groups: [team-lg, lg-eng]}\n"
		"  tokens:\n"
		"    - {name: lg-ci, role: consortium, consortium: lg, sha256: \"" HASH1 "\"}\n"
		"    - {name: ops, role: operator, sha256: "
		"60303AE22B998861BCE3B28F33EEC1BE758A213C86C93C076DBE9F558C11C752}\n");

	assert_int_equal(cfg->admins.users.n, 2);
	assert_string_equal(cfg->admins.users.v[1], "kim");
	assert_int_equal(cfg->consortium_access[0].groups.n, 2);
	assert_int_equal(cfg->n_tokens, 2);
	assert_string_equal(cfg->tokens[0].name, "lg-ci");
	assert_int_equal(cfg->tokens[0].role, ROLE_CONSORTIUM);
	assert_string_equal(cfg->tokens[0].consortium, "lg");
	assert_int_equal(cfg->tokens[0].sha256[0], 0x9f);
	assert_int_equal(cfg->tokens[0].sha256[31], 0x08);
	assert_int_equal(cfg->tokens[1].role, ROLE_OPERATOR);
	assert_null(cfg->tokens[1].consortium);
	assert_int_equal(cfg->tokens[1].sha256[0], 0x60);	/* upper case hex */
	config_free(cfg);
}

/*
 * A consortium's access entry without groups (found by fuzzing: the check
 * sorted a NULL array) is accepted: it maps no group, like groups: [].
 */
static void test_access_consortium_without_groups(void **state)
{
	struct config *cfg = parse_ok(
		HDR
		"consortia:\n"
		"  - {id: lg, name: LG, lead: LG}\n"
		"  - {id: skt, name: SKT, lead: SKT}\n"
		"access: {consortia: {lg: {}, skt: {groups: []}}}\n");

	assert_int_equal(cfg->n_consortium_access, 2);
	assert_string_equal(cfg->consortium_access[0].consortium, "lg");
	assert_int_equal(cfg->consortium_access[0].groups.n, 0);
	assert_int_equal(cfg->consortium_access[1].groups.n, 0);
	config_free(cfg);
	/* one group is nothing to sort either */
	cfg = parse_ok(HDR "consortia:\n  - {id: lg, name: LG, lead: LG}\n"
		       "access: {consortia: {lg: {groups: [g]}}}\n");
	assert_int_equal(cfg->consortium_access[0].groups.n, 1);
	config_free(cfg);
}

/* Names may be any UTF-8 text without controls; a GPU model may hold a
 * space inside, and a consortium may join on the last phase's last day. */
static void test_text_names(void **state)
{
	struct config *cfg = parse_ok(
		HDR
		"pools:\n  - {id: a, provider: \"Naver Cloud \u2014 \ud55c\", gpu: RTX 6000, gpus: 8}\n"
		"consortia:\n"
		"  - {id: lg, name: \"LG AI\uc5f0\uad6c\uc6d0 \U0001F680\", lead: LG, joined: 2026-01-15}\n");

	assert_string_equal(cfg->pools[0].gpu, "RTX 6000");
	assert_string_equal(cfg->consortia[0].name, "LG AI\xec\x97\xb0\xea\xb5\xac\xec\x9b\x90 \xf0\x9f\x9a\x80");
	assert_int_equal(cfg->consortia[0].joined, T("2026-01-15"));
	config_free(cfg);
}

static void test_listen_loopback(void **state)
{
	static const char *const ok[] = {
		"  listen: 127.0.0.1:8470\n",
		"  listen: 127.1.2.3:1\n",
		"  listen: localhost:8470\n",
		"  listen: LocalHost:8470\n",
		"  listen: \"[::1]:8470\"\n",
		"  listen: \"[::ffff:127.0.0.1]:8470\"\n",
		"  listen: 0.0.0.0:8470\n  allow_plaintext_remote: true\n",
		"  allow_plaintext_remote: true\n  listen: \"[::]:65535\"\n",
		"  listen: ledger.example.org:8470\n  allow_plaintext_remote: true\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		char *text = xasprintf(HDR "daemon:\n%s", ok[i]);
		struct config *cfg = parse_ok(text);
		assert_non_null(cfg->listen);
		config_free(cfg);
		free(text);
	}
	static const char *const bad_listen[] = {
		"example.org:8470", "10.0.0.1:8470", "\"[::]:8470\"", "\"::1:8470\"",
		"127.0.0.1:0", "\"127.0.0.1:\"", "\":8470\"", "127.0.0.1:+80", "\"[::1]8470\"",
		"\"[nope]:80\"", "\"a b:80\"", "example.org:8470", "ip6-localhost:8470",
		"\"*:8470\"", "1.2.3:8470", "a_b:8470", "\"[127.0.0.1]:8470\"",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad_listen); i++) {
		char *text = xasprintf(HDR "daemon:\n  listen: %s\n", bad_listen[i]);
		expect_errors(text, 1, "5:11", "listen");
		free(text);
	}
}

/*
 * listen: localhost:PORT passed --check-config, then the daemon refused it.
 * The check and the server now read it with one parser and one loopback
 * rule (test_server.c's test_listen_names binds it); a name the server
 * could not bind is refused by the check too.
 */
static void test_listen_check_agrees_with_bind(void **state)
{
	struct config *cfg = parse_ok(HDR "daemon:\n  listen: localhost:8470\n");
	struct hostport hp;
	struct sockaddr_storage ss;
	const char *why = NULL;

	assert_int_equal(hostport_parse(cfg->listen, &hp), 0);
	assert_true(hostport_loopback(&hp));
	assert_int_equal(hostport_sockaddr(&hp, &ss, &why), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr),
			 INADDR_LOOPBACK);
	config_free(cfg);

	/* allowed remote, with a wildcard the server's old parser took */
	expect_errors(HDR "daemon:\n  listen: \"*:8470\"\n  allow_plaintext_remote: true\n",
		      1, "5:11", "invalid listen '*:8470': expected HOST:PORT");
}

/*
 * Consortium ids are slugs by slug_valid(), the validator the CLI's
 * --consortium shares: team_a is one, in both.
 */
static void test_consortium_slug_shared(void **state)
{
	struct config *cfg = parse_ok(HDR "consortia:\n"
				      "  - {id: team_a, name: A, lead: A}\n"
				      "  - {id: 0-b_c, name: B, lead: B}\n");
	for (size_t i = 0; i < cfg->n_consortia; i++)
		assert_true(slug_valid(cfg->consortia[i].id));
	assert_true(slug_valid("team_a"));
	config_free(cfg);

	static const char *const bad[] = { "Team_a", "_a", "\"-a\"", "a.b", "\"a b\"" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char *text = xasprintf(HDR "consortia:\n  - {id: %s, name: A, lead: A}\n",
				       bad[i]);
		expect_errors(text, 1, "5:10", "a consortium id is a slug");
		free(text);
	}
}

/* daemon.log_level reads log.c's list of names: every level, no other. */
static void test_log_levels_from_log(void **state)
{
	for (int l = 0; l < LOG_LEVELS; l++) {
		char *text = xasprintf(HDR "daemon:\n  log_level: %s\n",
				       log_level_name((enum log_level)l));
		struct config *cfg = parse_ok(text);
		assert_int_equal(cfg->log_level, l);
		enum log_level back;
		assert_int_equal(log_level_parse(log_level_name(cfg->log_level), &back), 0);
		assert_int_equal(back, l);
		config_free(cfg);
		free(text);
	}
	expect_errors(HDR "daemon:\n  log_level: Info\n", 1, "5:14",
		      "unknown log_level 'Info' (expected one of: debug, info, warn, error)");
}

/* The socket's access and the connection budgets (issue 9, items 7, 8). */
static void test_connection_keys(void **state)
{
	struct config *cfg = parse_ok(
		HDR
		"daemon:\n"
		"  socket_mode: 0660\n"
		"  socket_group: gpuledger\n"
		"  max_connections: 100\n"
		"  max_per_uid: 4\n"
		"  max_followers: 8\n"
		"  tcp:\n"
		"    max_connections: 50\n"
		"    max_per_peer: 2\n"
		"    first_byte_timeout: 1\n");
	char buf[64];

	assert_int_equal(cfg->socket_mode, 0660);
	assert_string_equal(cfg->socket_group, "gpuledger");
	assert_int_equal(cfg->max_connections, 100);
	assert_int_equal(cfg->max_per_uid, 4);
	assert_int_equal(cfg->max_followers, 8);
	assert_int_equal(cfg->tcp_max_connections, 50);
	assert_int_equal(cfg->tcp_max_per_peer, 2);
	assert_int_equal(cfg->tcp_first_byte_timeout, 1);
	assert_int_equal(config__get(cfg, "daemon.socket_mode", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "0660");
	assert_int_equal(config__get(cfg, "daemon.tcp.max_per_peer", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2");
	config_free(cfg);

	/* a mode of one digit is octal too; part of tcp defaults the rest */
	cfg = parse_ok(HDR "daemon:\n  socket_mode: 0\n  tcp: {max_per_peer: 3}\n");
	assert_int_equal(cfg->socket_mode, 0);
	assert_int_equal(cfg->tcp_max_per_peer, 3);
	assert_int_equal(cfg->tcp_max_connections, 256);
	assert_int_equal(cfg->tcp_first_byte_timeout, 5);
	config_free(cfg);

	/* the socket's keys need a restart; the budgets apply on reload */
	struct config *old = parse_ok(HDR "daemon:\n  socket_mode: 0600\n");
	struct config *new = parse_ok(HDR "daemon:\n  socket_mode: 0666\n"
				      "  socket_group: adm\n  max_per_uid: 2\n"
				      "  tcp: {max_per_peer: 1}\n");
	config_keep_restart_keys(old, new, NULL, NULL);
	assert_int_equal(new->socket_mode, 0600);
	assert_null(new->socket_group);
	assert_int_equal(new->max_per_uid, 2);
	assert_int_equal(new->tcp_max_per_peer, 1);
	config_free(old);
	config_free(new);
}

/* The reload rule, read back from the table. */
static void test_restart_rows(void **state)
{
	static const char *const want[] = {
		"daemon.socket", "daemon.socket_mode", "daemon.socket_group",
		"daemon.database", "daemon.log", "daemon.listen",
		"daemon.allow_plaintext_remote",
	};
	struct table t = {0};
	size_t n = 0;

	config__keys(collect, &t);
	for (size_t i = 0; i < t.n; i++) {
		if (!t.restart[i])
			continue;
		assert_true(n < ARRAY_SIZE(want));
		assert_string_equal(t.path[i], want[n]);
		n++;
	}
	assert_int_equal(n, ARRAY_SIZE(want));
	table_free(&t);
}

struct reported {
	char keys[8][64];
	size_t n;
};

static void report(void *arg, const char *key)
{
	struct reported *r = arg;
	assert_true(r->n < 8);
	snprintf(r->keys[r->n++], sizeof(r->keys[0]), "%s", key);
}

static void test_keep_restart_keys(void **state)
{
	struct config *old = parse_ok(HDR "consortia:\n  - {id: lg, name: LG, lead: LG}\n"
				      "daemon:\n  socket: a.sock\n  database: a.db\n"
				      "  log: a.log\n  log_level: info\n"
				      "  listen: 127.0.0.1:8470\n");
	/* everything changed: the restart keys go back, the rest stays new */
	struct config *new = parse_ok(HDR "consortia:\n  - {id: lg, name: LG2, lead: LG}\n"
				      "  - {id: team_a, name: A, lead: A}\n"
				      "daemon:\n  socket: b.sock\n  database: b.db\n"
				      "  log: \"-\"\n  log_level: debug\n"
				      "  listen: \"[::]:9000\"\n  allow_plaintext_remote: true\n");
	struct reported r = {0};

	config_keep_restart_keys(old, new, report, &r);
	assert_int_equal(r.n, 5);
	assert_string_equal(r.keys[0], "daemon.socket");
	assert_string_equal(r.keys[1], "daemon.database");
	assert_string_equal(r.keys[2], "daemon.log");
	assert_string_equal(r.keys[3], "daemon.listen");
	assert_string_equal(r.keys[4], "daemon.allow_plaintext_remote");
	assert_string_equal(new->socket, "a.sock");
	assert_string_equal(new->database, "a.db");
	assert_string_equal(new->log, "a.log");
	assert_string_equal(new->listen, "127.0.0.1:8470");
	assert_false(new->allow_plaintext);
	assert_ptr_not_equal(new->socket, old->socket);	/* copies, not shared */
	/* applied */
	assert_int_equal(new->log_level, LOG_DEBUG);
	assert_int_equal(new->n_consortia, 2);
	assert_string_equal(new->consortia[0].name, "LG2");
	/* old is only read */
	assert_string_equal(old->socket, "a.sock");
	assert_int_equal(old->log_level, LOG_INFO);

	/* a second reload of the same file: nothing left to report */
	r.n = 0;
	config_keep_restart_keys(old, new, report, &r);
	assert_int_equal(r.n, 0);
	config_free(new);

	/* a listener added, or taken away, needs a restart too (NULL is a value) */
	new = parse_ok(HDR "daemon:\n  socket: a.sock\n  database: a.db\n  log: a.log\n");
	config_keep_restart_keys(old, new, report, &r);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.keys[0], "daemon.listen");
	assert_string_equal(new->listen, "127.0.0.1:8470");
	config_keep_restart_keys(new, old, NULL, NULL);	/* report may be NULL */
	config_free(new);

	r.n = 0;
	new = parse_ok(HDR "daemon:\n  socket: a.sock\n  database: a.db\n  log: a.log\n");
	config_keep_restart_keys(new, old, report, &r);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.keys[0], "daemon.listen");
	assert_null(old->listen);
	config_free(new);
	config_free(old);
}

static void test_fixture_minimal(void **state)
{
	struct config *cfg = NULL;
	char *errs = NULL;

	assert_int_equal(config_load(SOURCE_ROOT "/tests/fixtures/config-minimal.yaml",
				     &cfg, &errs), 0);
	assert_int_equal(cfg->n_phases, 1);
	assert_int_equal(cfg->n_pools, 1);
	assert_int_equal(cfg->n_consortia, 1);
	config_free(cfg);
	config_free(NULL);
}

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_all_errors_reported),
		cmocka_unit_test(test_errors_from_file),
		cmocka_unit_test(test_load_missing_file),
		cmocka_unit_test(test_example_loads),
		cmocka_unit_test(test_example_matches_table),
		cmocka_unit_test(test_connection_keys),
		cmocka_unit_test(test_defaults_from_table),
		cmocka_unit_test(test_timezone_read_first),
		cmocka_unit_test(test_phases_sorted),
		cmocka_unit_test(test_lookups),
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_tokens_and_access),
		cmocka_unit_test(test_access_consortium_without_groups),
		cmocka_unit_test(test_text_names),
		cmocka_unit_test(test_listen_loopback),
		cmocka_unit_test(test_listen_check_agrees_with_bind),
		cmocka_unit_test(test_consortium_slug_shared),
		cmocka_unit_test(test_log_levels_from_log),
		cmocka_unit_test(test_restart_rows),
		cmocka_unit_test(test_keep_restart_keys),
		cmocka_unit_test(test_fixture_minimal),
	};
	struct CMUnitTest tests[ARRAY_SIZE(fixed) + ARRAY_SIZE(bad)];

	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
		tests[i] = fixed[i];
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		tests[ARRAY_SIZE(fixed) + i] = (struct CMUnitTest){
			.name = bad[i].name,
			.test_func = test_bad,
			.initial_state = (void *)&bad[i],
		};
	return _cmocka_run_group_tests("config", tests, ARRAY_SIZE(tests), NULL, NULL);
}
