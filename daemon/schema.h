/* SPDX-License-Identifier: MIT */
/*
 * The schema files schema/NNNN-*.sql, embedded at build time by
 * schema/embed.py in file-name order: schema_files[i] brings the database
 * from user_version i to i + 1. Only the store reads them.
 */
#pragma once

struct schema_file {
	const char *name;	/* "0001-init.sql" */
	const char *sql;
};

extern const struct schema_file schema_files[];
extern const unsigned schema_count;
