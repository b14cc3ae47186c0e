/* SPDX-License-Identifier: MIT */
/*
 * One parser per grammar: listen addresses, slugs and ids, allocation ids,
 * text fields, hex. Parsers here are strict (the whole string, no leading
 * signs or spaces) and never resolve or allocate unless their prototype
 * says so, so the config check and the code that acts on the value agree
 * by construction.
 */
#include "daemon/grammar.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "daemon/util.h"	/* its inline i64_*() only: see grammar.h */

/* ---- host:port ---------------------------------------------------------- */

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 1123 labels of 1-63 letters, digits and inner '-'; the last label
 * not all digits (RFC 3696), so a mistyped IPv4 address is not a name. */
static bool dns_name_valid(const char *s)
{
	size_t len = strlen(s);
	const char *label = s;

	if (len == 0 || len > HOSTPORT_HOST_MAX)
		return false;
	for (;;) {
		size_t n = strcspn(label, ".");
		bool digits = true;
		if (n == 0 || n > 63 || label[0] == '-' || label[n - 1] == '-')
			return false;
		for (size_t i = 0; i < n; i++) {
			if (!is_alnum(label[i]) && label[i] != '-')
				return false;
			digits = digits && is_digit(label[i]);
		}
		if (label[n] == '\0')
			return !digits;
		label += n + 1;
	}
}

static int port_parse(const char *s, uint16_t *port)
{
	unsigned v = 0;
	size_t n = 0;

	for (; is_digit(s[n]); n++) {
		if (n == 5)
			return -EINVAL;
		v = v * 10 + (unsigned)(s[n] - '0');
	}
	if (n == 0 || s[n] != '\0' || v < 1 || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int hostport_parse(const char *s, struct hostport *hp)
{
	const char *host = s, *colon;
	size_t hlen;
	struct in_addr a4;
	struct in6_addr a6;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			return -EINVAL;
		host = s + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strchr(s, ':');
		/* two colons: an IPv6 address without its brackets */
		if (colon == NULL || strchr(colon + 1, ':') != NULL)
			return -EINVAL;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen > HOSTPORT_HOST_MAX || port_parse(colon + 1, &hp->port) != 0)
		return -EINVAL;
	memcpy(hp->host, host, hlen);
	hp->host[hlen] = '\0';
	if (s[0] == '[') {
		hp->family = AF_INET6;
		return inet_pton(AF_INET6, hp->host, &a6) == 1 ? 0 : -EINVAL;
	}
	if (inet_pton(AF_INET, hp->host, &a4) == 1) {
		hp->family = AF_INET;
		return 0;
	}
	hp->family = AF_UNSPEC;
	return dns_name_valid(hp->host) ? 0 : -EINVAL;
}

static bool is_localhost(const char *name)
{
	return strcasecmp(name, "localhost") == 0;
}

bool hostport_loopback(const struct hostport *hp)
{
	struct in_addr a4;
	struct in6_addr a6;

	switch (hp->family) {
	case AF_INET:
		return inet_pton(AF_INET, hp->host, &a4) == 1 &&
		       (ntohl(a4.s_addr) >> 24) == 127;
	case AF_INET6:
		return inet_pton(AF_INET6, hp->host, &a6) == 1 &&
		       (IN6_IS_ADDR_LOOPBACK(&a6) ||
			(IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127));
	default:
		return is_localhost(hp->host);
	}
}

static int resolve(const struct hostport *hp, struct sockaddr_storage *ss,
		   const char **why)
{
	struct addrinfo hints = {
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_ADDRCONFIG,
	}, *res = NULL;
	int rc = getaddrinfo(hp->host, NULL, &hints, &res);

	if (rc != 0 || res == NULL) {
		*why = rc != 0 ? gai_strerror(rc) : "no address";
		if (res)
			freeaddrinfo(res);
		return -ENOENT;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(hp->port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(hp->port);
	freeaddrinfo(res);
	return 0;
}

int hostport_sockaddr(const struct hostport *hp, struct sockaddr_storage *ss,
		      const char **why)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	const char *v4 = hp->host;

	memset(ss, 0, sizeof(*ss));
	switch (hp->family) {
	case AF_INET6:
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(hp->port);
		if (inet_pton(AF_INET6, hp->host, &in6->sin6_addr) != 1)
			goto fail_literal;
		return 0;
	case AF_UNSPEC:
		if (!is_localhost(hp->host))
			return resolve(hp, ss, why);
		v4 = "127.0.0.1";	/* what hostport_loopback() promised */
		/* fall through */
	case AF_INET:
		in4->sin_family = AF_INET;
		in4->sin_port = htons(hp->port);
		if (inet_pton(AF_INET, v4, &in4->sin_addr) != 1)
			goto fail_literal;
		return 0;
	}
fail_literal:
	*why = "not an address";
	return -EINVAL;
}

/* ---- ids ---------------------------------------------------------------- */

bool slug_valid(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (const char *p = s; *p; p++) {
		bool ok = (*p >= 'a' && *p <= 'z') || is_digit(*p) ||
			  (p != s && (*p == '-' || *p == '_'));
		if (!ok)
			return false;
	}
	return true;
}

bool id_valid(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (const char *p = s; *p; p++) {
		bool ok = is_alnum(*p) ||
			  (p != s && (*p == '-' || *p == '_' || *p == '.'));
		if (!ok)
			return false;
	}
	return true;
}

/* ---- cluster names ------------------------------------------------------ */

/* Whether s is 1..max bytes, starting with a letter or digit, and every
 * later byte a letter or digit or one of more. */
static bool name_of(const char *s, size_t max, bool lower_only, const char *more)
{
	size_t n = 0;

	if (s == NULL || *s == '\0')
		return false;
	for (const char *p = s; *p; p++, n++) {
		bool letter = lower_only ? (*p >= 'a' && *p <= 'z') : is_alnum(*p) && !is_digit(*p);
		bool ok = letter || is_digit(*p) || (p != s && strchr(more, *p) != NULL);
		if (!ok || n >= max)
			return false;
	}
	return true;
}

bool slurm_cluster_valid(const char *s)
{
	return name_of(s, SLURM_CLUSTER_MAX, true, "-_");
}

bool slurm_partition_valid(const char *s)
{
	return name_of(s, SLURM_PARTITION_MAX, false, "-_.");
}

bool job_id_valid(const char *s)
{
	return name_of(s, JOB_ID_MAX, false, "-_.+");
}

/* ---- text --------------------------------------------------------------- */

size_t utf8_next(const char *s, size_t len, uint32_t *cp)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t c, min;
	size_t n;

	if (len == 0)
		return 0;
	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		c = p[0] & 0x1fu;
		n = 2;
		min = 0x80;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		c = p[0] & 0x0fu;
		n = 3;
		min = 0x800;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		c = p[0] & 0x07u;
		n = 4;
		min = 0x10000;
	} else {
		return 0;	/* a continuation byte, 0xc0/0xc1 or past 0xf4 */
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3fu);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

bool utf8_valid(const char *s, size_t len)
{
	return text_check(s, len, NULL, NULL) != -EILSEQ;
}

int text_check(const char *s, size_t len, size_t *at, uint32_t *cp)
{
	int rc = 0;
	size_t i = 0, bad = 0;
	uint32_t c = 0, ctl = 0;

	while (i < len) {
		size_t n = utf8_next(s + i, len - i, &c);
		if (n == 0) {
			rc = -EILSEQ;
			bad = i;
			break;
		}
		if (rc == 0 && (c < 0x20 || (c >= 0x7f && c <= 0x9f))) {
			rc = -EINVAL;	/* go on: bad UTF-8 later wins */
			bad = i;
			ctl = c;
		}
		i += n;
	}
	if (rc != 0 && at != NULL)
		*at = bad;
	if (rc == -EINVAL && cp != NULL)
		*cp = ctl;
	return rc;
}

/* ---- allocation ids ----------------------------------------------------- */

int alloc_id_parse(const char *s, int64_t *num)
{
	char back[ALLOC_ID_BUFSZ];
	int64_t v = 0;
	size_t n;

	if (s == NULL || s[0] != 'A' || s[1] != '-')
		return -EINVAL;
	n = strspn(s + 2, "0123456789");
	if (n < 6 || s[2 + n] != '\0')
		return -EINVAL;
	for (const char *p = s + 2; *p; p++)
		if (!i64_mul(v, 10, &v) || !i64_add(v, *p - '0', &v))
			return -ERANGE;
	/* only the padding may be zeros: one number, one id */
	if (v < 1 || strcmp(alloc_id_format(v, back, sizeof(back)), s) != 0)
		return -EINVAL;
	*num = v;
	return 0;
}

const char *alloc_id_format(int64_t num, char *buf, size_t len)
{
	snprintf(buf, len, "A-%06" PRId64, num);
	return buf;
}

/* ---- hex ---------------------------------------------------------------- */

int hex_decode(const char *hex, size_t hex_len, uint8_t *bin, size_t bin_len)
{
	const char *end = NULL;
	size_t got = 0;

	if (bin_len > SIZE_MAX / 2 || hex_len != 2 * bin_len)
		return -EINVAL;
	if (sodium_hex2bin(bin, bin_len, hex, hex_len, NULL, &got, &end) != 0 ||
	    got != bin_len || end != hex + hex_len)
		return -EINVAL;
	return 0;
}
