/* SPDX-License-Identifier: MIT */
/*
 * Tests of the shared grammars: listen addresses (and that the loopback
 * check agrees with the address bound), consortium slugs and ids (team_a,
 * which the config always took and the CLI once refused), allocation ids
 * (one number, one id, a round trip), UTF-8 and text fields (no control
 * characters) and hex through libsodium.
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

#include "daemon/grammar.h"
#include "daemon/util.h"

static struct hostport hp_ok(const char *s)
{
	struct hostport hp;
	int rc = hostport_parse(s, &hp);
	if (rc != 0)
		print_error("hostport_parse(\"%s\") = %d\n", s, rc);
	assert_int_equal(rc, 0);
	return hp;
}

static void test_hostport_parse(void **state)
{
	struct hostport hp = hp_ok("127.0.0.1:8470");
	assert_string_equal(hp.host, "127.0.0.1");
	assert_int_equal(hp.port, 8470);
	assert_int_equal(hp.family, AF_INET);

	hp = hp_ok("localhost:1");
	assert_string_equal(hp.host, "localhost");
	assert_int_equal(hp.port, 1);
	assert_int_equal(hp.family, AF_UNSPEC);

	hp = hp_ok("[::1]:65535");
	assert_string_equal(hp.host, "::1");
	assert_int_equal(hp.port, 65535);
	assert_int_equal(hp.family, AF_INET6);

	hp = hp_ok("[::]:8470");
	assert_int_equal(hp.family, AF_INET6);
	hp = hp_ok("0.0.0.0:08470");	/* leading zeros are still the port */
	assert_int_equal(hp.port, 8470);
	hp = hp_ok("gpu-ledger.example.org:443");
	assert_int_equal(hp.family, AF_UNSPEC);
	hp = hp_ok("LocalHost:80");
	assert_int_equal(hp.family, AF_UNSPEC);

	static const char *const bad[] = {
		"", "localhost", ":8470", "127.0.0.1:", "127.0.0.1:0",
		"127.0.0.1:65536", "127.0.0.1:99999", "127.0.0.1:123456",
		"127.0.0.1:+80", "127.0.0.1:-80", "127.0.0.1: 80", "127.0.0.1:8x",
		"::1:8470", "[::1]8470", "[::1]", "[nope]:80", "[127.0.0.1]:80",
		"[]:80", "a b:80", "*:8470", "1.2.3:80", "999.1.1.1:80",
		"-host:80", "host-:80", "a..b:80", ".a:80", "a.:80", "h_st:80",
		"[fe80::1%eth0]:80", "localhost:80:80",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct hostport x;
		if (hostport_parse(bad[i], &x) != -EINVAL)
			fail_msg("hostport_parse(\"%s\") accepted", bad[i]);
	}

	/* the longest name fits, one more does not */
	char name[HOSTPORT_HOST_MAX + 16];
	size_t n = 0;
	while (n + 2 <= HOSTPORT_HOST_MAX) {
		name[n++] = 'a';
		name[n++] = '.';
	}
	name[n++] = 'a';
	assert_int_equal(n, HOSTPORT_HOST_MAX);
	snprintf(name + n, sizeof(name) - n, ":80");
	struct hostport x;
	assert_int_equal(hostport_parse(name, &x), 0);
	memmove(name + 1, name, strlen(name) + 1);
	name[0] = 'b';
	assert_int_equal(hostport_parse(name, &x), -EINVAL);
}

/* What the server would bind for s, as text, and the port. */
static void bound(const char *s, char *addr, size_t len, int *port)
{
	struct hostport hp = hp_ok(s);
	struct sockaddr_storage ss;
	const char *why = NULL;

	assert_int_equal(hostport_sockaddr(&hp, &ss, &why), 0);
	assert_null(why);
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &in->sin_addr, addr, (socklen_t)len);
		*port = ntohs(in->sin_port);
	} else {
		const struct sockaddr_in6 *in = (const struct sockaddr_in6 *)&ss;
		assert_int_equal(ss.ss_family, AF_INET6);
		inet_ntop(AF_INET6, &in->sin6_addr, addr, (socklen_t)len);
		*port = ntohs(in->sin6_port);
	}
}

static void test_hostport_loopback_agrees(void **state)
{
	static const struct {
		const char *s;
		bool loopback;
		const char *addr;	/* what is bound */
	} cases[] = {
		{ "127.0.0.1:8470", true, "127.0.0.1" },
		{ "127.1.2.3:8470", true, "127.1.2.3" },
		{ "localhost:8470", true, "127.0.0.1" },
		{ "LOCALHOST:8470", true, "127.0.0.1" },
		{ "[::1]:8470", true, "::1" },
		{ "[::ffff:127.0.0.1]:8470", true, "::ffff:127.0.0.1" },
		{ "0.0.0.0:8470", false, "0.0.0.0" },
		{ "10.0.0.1:8470", false, "10.0.0.1" },
		{ "128.0.0.1:8470", false, "128.0.0.1" },
		{ "[::]:8470", false, "::" },
		{ "[2001:db8::1]:8470", false, "2001:db8::1" },
		{ "[::ffff:10.0.0.1]:8470", false, "::ffff:10.0.0.1" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct hostport hp = hp_ok(cases[i].s);
		char addr[INET6_ADDRSTRLEN];
		int port;
		if (hostport_loopback(&hp) != cases[i].loopback)
			fail_msg("%s: loopback should be %d", cases[i].s,
				 cases[i].loopback);
		bound(cases[i].s, addr, sizeof(addr), &port);
		assert_string_equal(addr, cases[i].addr);
		assert_int_equal(port, 8470);
	}

	/* a name other than localhost is remote, whatever it resolves to */
	struct hostport hp = hp_ok("ip6-localhost:80");
	assert_false(hostport_loopback(&hp));
	hp = hp_ok("gpu-ledger.example.org:80");
	assert_false(hostport_loopback(&hp));

	/* a name that cannot resolve says so (".invalid" never does) */
	struct sockaddr_storage ss;
	const char *why = NULL;
	hp = hp_ok("no-such-host.invalid:80");
	assert_int_equal(hostport_sockaddr(&hp, &ss, &why), -ENOENT);
	assert_non_null(why);
}

static void test_slug(void **state)
{
	static const char *const ok[] = {
		"lg", "team_a", "team-a", "my_team-2", "a", "0", "9lives", "a_", "a-",
		"skt", "upstage",
	};
	static const char *const bad[] = {
		"", "LG", "Team", "_a", "-a", "a.b", "a b", "a/b", "ü", "a\n",
		"lg ", "team%5Fa",
	};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		if (!slug_valid(ok[i]))
			fail_msg("slug_valid(\"%s\") refused", ok[i]);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (slug_valid(bad[i]))
			fail_msg("slug_valid(\"%s\") accepted", bad[i]);
	assert_false(slug_valid(NULL));
}

static void test_slurm_names(void **state)
{
	static const char *const clusters[] = {
		"kr1", "gpu-cluster_2", "0", "abcdefghijabcdefghijabcdefghijab",
	};
	static const char *const not_clusters[] = {
		"", "KR1", "-kr", "_kr", "kr.1", "kr 1", "abcdefghijabcdefghijabcdefghijabc",
	};
	static const char *const partitions[] = { "b200", "GPU.big-1_x", "P" };
	static const char *const not_partitions[] = { "", ".p", "p,q", "p=q", "p q", "p/q" };
	static const char *const jobs[] = { "4242", "4242_7", "4242+1", "job.1-a" };
	static const char *const not_jobs[] = { "", "_1", "4242_[1-3]", "1 2", "1;2" };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(clusters); i++)
		if (!slurm_cluster_valid(clusters[i]))
			fail_msg("slurm_cluster_valid(\"%s\") refused", clusters[i]);
	for (size_t i = 0; i < ARRAY_SIZE(not_clusters); i++)
		if (slurm_cluster_valid(not_clusters[i]))
			fail_msg("slurm_cluster_valid(\"%s\") accepted", not_clusters[i]);
	for (size_t i = 0; i < ARRAY_SIZE(partitions); i++)
		if (!slurm_partition_valid(partitions[i]))
			fail_msg("slurm_partition_valid(\"%s\") refused", partitions[i]);
	for (size_t i = 0; i < ARRAY_SIZE(not_partitions); i++)
		if (slurm_partition_valid(not_partitions[i]))
			fail_msg("slurm_partition_valid(\"%s\") accepted", not_partitions[i]);
	for (size_t i = 0; i < ARRAY_SIZE(jobs); i++)
		if (!job_id_valid(jobs[i]))
			fail_msg("job_id_valid(\"%s\") refused", jobs[i]);
	for (size_t i = 0; i < ARRAY_SIZE(not_jobs); i++)
		if (job_id_valid(not_jobs[i]))
			fail_msg("job_id_valid(\"%s\") accepted", not_jobs[i]);
	char longest[JOB_ID_MAX + 2];
	memset(longest, '7', sizeof(longest));
	longest[JOB_ID_MAX] = '\0';
	assert_true(job_id_valid(longest));
	longest[JOB_ID_MAX] = '7';
	longest[JOB_ID_MAX + 1] = '\0';
	assert_false(job_id_valid(longest));
	assert_false(slurm_cluster_valid(NULL));
	assert_false(job_id_valid(NULL));
}

static void test_id(void **state)
{
	static const char *const ok[] = {
		"p1", "skt-b200", "Pool_1", "v1.2", "A", "0", "ncloud-gov-h200",
	};
	static const char *const bad[] = {
		"", "-p", "_p", ".p", "p/1", "p 1", "p:1", "\xed\x95\x9c",
	};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		if (!id_valid(ok[i]))
			fail_msg("id_valid(\"%s\") refused", ok[i]);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (id_valid(bad[i]))
			fail_msg("id_valid(\"%s\") accepted", bad[i]);
	assert_false(id_valid(NULL));
	/* every slug is an id */
	assert_true(id_valid("team_a"));
}

static void test_utf8(void **state)
{
	static const struct {
		const char *s;
		size_t n;	/* bytes of the first sequence; 0 = refused */
		uint32_t cp;
	} cases[] = {
		{ "A", 1, 0x41 },
		{ "\xc2\x80", 2, 0x80 },
		{ "\xdf\xbf", 2, 0x7ff },
		{ "\xe0\xa0\x80", 3, 0x800 },
		{ "\xed\x9f\xbf", 3, 0xd7ff },
		{ "\xef\xbf\xbf", 3, 0xffff },
		{ "\xf0\x90\x80\x80", 4, 0x10000 },
		{ "\xf0\x9f\x9a\x80", 4, 0x1f680 },	/* the rocket emoji */
		{ "\xf4\x8f\xbf\xbf", 4, 0x10ffff },
		{ "\x80", 0, 0 },			/* a stray continuation */
		{ "\xc0\x80", 0, 0 },		/* overlong NUL */
		{ "\xc1\xbf", 0, 0 },		/* overlong */
		{ "\xe0\x9f\xbf", 0, 0 },		/* overlong */
		{ "\xf0\x8f\xbf\xbf", 0, 0 },	/* overlong */
		{ "\xed\xa0\x80", 0, 0 },		/* a surrogate */
		{ "\xf4\x90\x80\x80", 0, 0 },	/* past U+10FFFF */
		{ "\xf5\x80\x80\x80", 0, 0 },
		{ "\xff", 0, 0 },
		{ "\xe2\x82", 0, 0 },		/* cut short */
		{ "\xe2(\xa1", 0, 0 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint32_t cp = 0;
		size_t n = utf8_next(cases[i].s, strlen(cases[i].s), &cp);
		if (n != cases[i].n || (n && cp != cases[i].cp))
			fail_msg("case %zu: utf8_next = %zu, U+%04X", i, n, (unsigned)cp);
		assert_int_equal(utf8_valid(cases[i].s, strlen(cases[i].s)), cases[i].n != 0);
	}
	assert_int_equal(utf8_next("", 0, NULL), 0);
	/* the length given is the end: a sequence is not read past it */
	assert_int_equal(utf8_next("\xc3\xa9", 1, NULL), 0);
	assert_true(utf8_valid("LG AI\xec\x97\xb0\xea\xb5\xac\xec\x9b\x90", 14));
}

/* Text fields refuse what JSON encoders disagree on: issue 9, item 14. */
static void test_text(void **state)
{
	static const char *const ok[] = {
		"", "pilot", "stage 1 \xe2\x80\x94 correction", "LG AI\xec\x97\xb0\xea\xb5\xac\xec\x9b\x90",
		"\xf0\x9f\x9a\x80 launch", "~", "\xc2\xa0", "\xc2\xa0\xe2\x80\xa8",
	};
	static const struct {
		const char *s;
		int rc;
		size_t at;
		uint32_t cp;
	} bad[] = {
		{ "a\x1f" "b", -EINVAL, 1, 0x1f },	/* what once verified and failed the recipe */
		{ "\t", -EINVAL, 0, 0x09 },
		{ "line\nbreak", -EINVAL, 4, 0x0a },
		{ "cr\r", -EINVAL, 2, 0x0d },
		{ "del\x7f", -EINVAL, 3, 0x7f },
		{ "c1 \xc2\x85", -EINVAL, 3, 0x85 },	/* NEL */
		{ "c1 \xc2\x9f", -EINVAL, 3, 0x9f },
		{ "\xff", -EILSEQ, 0, 0 },
		{ "ok \xed\xa0\x80", -EILSEQ, 3, 0 },
		{ "\x01 then \xff", -EILSEQ, 7, 0 },	/* not UTF-8 wins */
	};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		if (text_check(ok[i], strlen(ok[i]), NULL, NULL) != 0)
			fail_msg("text_check(\"%s\") refused", ok[i]);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		size_t at = 99;
		uint32_t cp = 0;
		int rc = text_check(bad[i].s, strlen(bad[i].s), &at, &cp);
		if (rc != bad[i].rc || at != bad[i].at || (rc == -EINVAL && cp != bad[i].cp))
			fail_msg("case %zu: text_check = %d at %zu U+%04X", i, rc, at, (unsigned)cp);
	}
	/* a NUL inside the given length is a control character */
	assert_int_equal(text_check("a\0b", 3, NULL, NULL), -EINVAL);
}

static void test_alloc_id(void **state)
{
	char buf[ALLOC_ID_BUFSZ];
	int64_t num = -1;

	assert_string_equal(alloc_id_format(42, buf, sizeof(buf)), "A-000042");
	assert_string_equal(alloc_id_format(1, buf, sizeof(buf)), "A-000001");
	assert_string_equal(alloc_id_format(999999, buf, sizeof(buf)), "A-999999");
	assert_string_equal(alloc_id_format(1000000, buf, sizeof(buf)), "A-1000000");
	assert_string_equal(alloc_id_format(INT64_MAX, buf, sizeof(buf)),
			    "A-9223372036854775807");

	assert_int_equal(alloc_id_parse("A-000042", &num), 0);
	assert_int_equal(num, 42);
	assert_int_equal(alloc_id_parse("A-1000000", &num), 0);
	assert_int_equal(num, 1000000);
	assert_int_equal(alloc_id_parse("A-9223372036854775807", &num), 0);
	assert_true(num == INT64_MAX);

	/* round trip */
	static const int64_t nums[] = { 1, 9, 10, 99999, 100000, 999999, 1000000,
					123456789, INT64_MAX };
	for (size_t i = 0; i < ARRAY_SIZE(nums); i++) {
		assert_int_equal(alloc_id_parse(alloc_id_format(nums[i], buf, sizeof(buf)),
						&num), 0);
		assert_true(num == nums[i]);
	}

	num = 7;
	static const char *const bad[] = {
		"", "A", "A-", "A-42", "A-00042", "A-0000042", "A-000000", "A-0000000",
		"a-000001", "B-000001", "A000001", "A--00001", "A-+00001", "A- 00001",
		"A-000001 ", "A-00000x", "A-000000000000000000000000000001",
		"A-01000000",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (alloc_id_parse(bad[i], &num) == 0)
			fail_msg("alloc_id_parse(\"%s\") accepted", bad[i]);
	assert_int_equal(alloc_id_parse("A-9223372036854775808", &num), -ERANGE);
	assert_int_equal(alloc_id_parse(NULL, &num), -EINVAL);
	assert_int_equal(num, 7);	/* untouched */
}

static void test_hex(void **state)
{
	uint8_t b[4];

	assert_int_equal(hex_decode("00ff10Ab", 8, b, 4), 0);
	assert_int_equal(b[0], 0x00);
	assert_int_equal(b[1], 0xff);
	assert_int_equal(b[2], 0x10);
	assert_int_equal(b[3], 0xab);
	assert_int_equal(hex_decode("7e", 2, b, 1), 0);
	assert_int_equal(b[0], 0x7e);
	/* only the length given is read */
	assert_int_equal(hex_decode("2Dzz", 2, b, 1), 0);
	assert_int_equal(b[0], 0x2d);

	assert_int_equal(hex_decode("00ff10a", 7, b, 4), -EINVAL);	/* short */
	assert_int_equal(hex_decode("00ff10ab00", 10, b, 4), -EINVAL);	/* long */
	assert_int_equal(hex_decode("00ff10ag", 8, b, 4), -EINVAL);
	assert_int_equal(hex_decode("00 f10ab", 8, b, 4), -EINVAL);
	assert_int_equal(hex_decode("0x", 2, b, 1), -EINVAL);
	assert_int_equal(hex_decode("+1", 2, b, 1), -EINVAL);
	assert_int_equal(hex_decode("1\0", 2, b, 1), -EINVAL);
	assert_int_equal(hex_decode("00:f", 4, b, 2), -EINVAL);

	/* a sha256 as the config writes it */
	const char *h = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
	uint8_t sha[32];
	assert_int_equal(hex_decode(h, strlen(h), sha, sizeof(sha)), 0);
	assert_int_equal(sha[0], 0x9f);
	assert_int_equal(sha[31], 0x08);
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostport_parse),
		cmocka_unit_test(test_hostport_loopback_agrees),
		cmocka_unit_test(test_slug),
		cmocka_unit_test(test_slurm_names),
		cmocka_unit_test(test_id),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_alloc_id),
		cmocka_unit_test(test_hex),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
