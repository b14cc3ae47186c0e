/* SPDX-License-Identifier: MIT */
/*
 * The small grammars that more than one place reads: a listen address
 * (HOST:PORT), a consortium slug, an id, an allocation id (A-000042),
 * UTF-8 text fields and hex. Each has one parser here, shared by the
 * config loader, the server, the store, the ledger and the CLI, because
 * two parsers of one grammar drift and users meet the drift first: a
 * config that passed
 * --check-config and then would not start, an id the config took and the
 * CLI refused. This module calls no other of ours (util.c decodes %XX
 * through hex_decode()), so any module may use it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ---- host:port ---------------------------------------------------------- */

#define HOSTPORT_HOST_MAX 253	/* the longest DNS name */

struct hostport {
	char host[HOSTPORT_HOST_MAX + 1];	/* without brackets */
	uint16_t port;				/* 1..65535 */
	int family;	/* AF_INET, AF_INET6 (literals), AF_UNSPEC (a name) */
};

/*
 * Parses "IPV4:PORT", "[IPV6]:PORT" or "NAME:PORT" (NAME a DNS name such as
 * localhost; an all-numeric last label is not a name, so "1.2.3:80" is
 * refused rather than read as 1.2.0.3). PORT is 1 to 65535, digits only.
 * Returns 0, or -EINVAL.
 */
int hostport_parse(const char *s, struct hostport *hp);

/*
 * Whether a plaintext listener on hp stays on this machine: a loopback
 * literal (127.0.0.0/8, ::1, ::ffff:127.x.y.z) or the name localhost. Any
 * other name counts as remote, since what it resolves to may change after
 * the check. Agrees with hostport_sockaddr(): localhost is bound as
 * 127.0.0.1 without asking the resolver.
 */
bool hostport_loopback(const struct hostport *hp);

/*
 * The address to bind for hp: a literal as written, localhost as
 * 127.0.0.1, any other name as the first address getaddrinfo() gives.
 * Returns 0, or -EINVAL (a literal that does not convert) or -ENOENT (the
 * name does not resolve) with *why set to a static text saying why.
 */
int hostport_sockaddr(const struct hostport *hp, struct sockaddr_storage *ss,
		      const char **why);

/* ---- ids ---------------------------------------------------------------- */

/*
 * A consortium id: a slug of lowercase letters, digits, '-' and '_',
 * starting with a letter or digit ("lg", "team_a", "my-team-2"). The one
 * rule for the config's consortia[].id and the CLI's --consortium.
 */
bool slug_valid(const char *s);

/*
 * A phase or pool id (and any other name that travels in URLs and logs):
 * letters, digits, '-', '_' and '.', starting with a letter or digit.
 */
bool id_valid(const char *s);

/* ---- cluster names ------------------------------------------------------ */

#define SLURM_CLUSTER_MAX 32	/* bytes of a cluster name */
#define SLURM_PARTITION_MAX 64	/* bytes of a partition name */
#define JOB_ID_MAX 64		/* bytes of a job id */

/*
 * A Slurm cluster name (pools[].slurm.cluster, the source of metered use):
 * lowercase letters, digits, '-' and '_', starting with a letter or digit,
 * at most SLURM_CLUSTER_MAX bytes. Lowercase because slurmdbd folds the
 * name to lower case (two spellings would be one cluster); short because
 * it names MySQL tables ("<cluster>_assoc_usage_month_table") and MySQL
 * identifiers end at 64 characters.
 */
bool slurm_cluster_valid(const char *s);

/*
 * A Slurm partition name: letters, digits, '-', '_' and '.', starting with
 * a letter or digit, at most SLURM_PARTITION_MAX bytes: nothing that
 * slurm.conf, scontrol or a shell would read as a separator.
 */
bool slurm_partition_valid(const char *s);

/*
 * A scheduler's job id, as metered use names it: letters, digits, '.',
 * '_', '+' and '-', starting with a letter or digit, at most JOB_ID_MAX
 * bytes. Covers Slurm's "4242", array tasks "4242_7" and heterogeneous
 * components "4242+1".
 */
bool job_id_valid(const char *s);

/* ---- text --------------------------------------------------------------- */

/*
 * The length in bytes (1-4) of the UTF-8 sequence at s[0..len) and its code
 * point in *cp; 0 when it is not one as RFC 3629 has it (a stray
 * continuation byte, a sequence cut short, an overlong form, a surrogate,
 * anything past U+10FFFF) or len is 0.
 */
size_t utf8_next(const char *s, size_t len, uint32_t *cp);

/* Whether s[0..len) is UTF-8 through and through. */
bool utf8_valid(const char *s, size_t len);

/*
 * A text field (a reason, a note, a name): UTF-8 without control
 * characters, C0 (U+0000-U+001F), DEL and C1 (U+007F-U+009F), so that
 * every JSON encoder writes it the same way (jansson, Python and RFC 8785
 * spell the escapes of controls differently). Returns 0, or -EILSEQ (not
 * UTF-8) or -EINVAL (a control character) with *at (if not NULL) the byte
 * offset of the first offender and *cp (if not NULL) the control's code
 * point. The one rule for the API's string fields, the config's names and
 * the CLI's text options.
 */
int text_check(const char *s, size_t len, size_t *at, uint32_t *cp);

/* ---- allocation ids ----------------------------------------------------- */

#define ALLOC_ID_BUFSZ 24	/* "A-" + 19 digits + NUL, with room to spare */

/*
 * Parses an allocation id as alloc_id_format() writes it: "A-" and the
 * number, zero-padded to six digits ("A-000042", "A-1000000"). Anything
 * else ("A-42", "A-0000042", "A-000000", "a-000001", signs, spaces) is
 * refused, so one number has one id. Returns 0 and *num >= 1, or -EINVAL
 * (or -ERANGE past INT64_MAX).
 */
int alloc_id_parse(const char *s, int64_t *num);

/* Writes "A-%06d" of num (>= 1) into buf (ALLOC_ID_BUFSZ bytes); returns buf. */
const char *alloc_id_format(int64_t num, char *buf, size_t len);

/* ---- hex ---------------------------------------------------------------- */

/*
 * Decodes exactly 2 * bin_len hex digits (either case, nothing else: no
 * spaces, no "0x") of hex into bin, by libsodium's constant-time
 * sodium_hex2bin(). Returns 0, or -EINVAL when hex_len is not 2 * bin_len
 * or a character is not a hex digit (bin is then unspecified).
 */
int hex_decode(const char *hex, size_t hex_len, uint8_t *bin, size_t bin_len);
