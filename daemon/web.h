/* SPDX-License-Identifier: MIT */
/*
 * The web page's files (web/), embedded at build time by web/embed.py. The
 * page holds no data: it signs in with the caller's token and reads the
 * JSON API like any client, so its files are the same for everyone and
 * need no credentials (routes with least role NONE in daemon/proto.def).
 */
#pragma once

#include <stddef.h>

struct web_file {
	const char *path;		/* "/", "/app.js" */
	const char *content_type;	/* "text/html; charset=utf-8" */
	const char *data;		/* len bytes, then a NUL */
	size_t len;
};

extern const struct web_file web_files[];
extern const unsigned web_file_count;

/* The file served at path, or NULL; static. */
const struct web_file *web_file(const char *path);
