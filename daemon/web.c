/* SPDX-License-Identifier: MIT */
/*
 * Lookup of the embedded web page's files by path (the table is generated
 * from web/ by web/embed.py).
 */
#include "daemon/web.h"

#include <string.h>

const struct web_file *web_file(const char *path)
{
	for (unsigned i = 0; i < web_file_count; i++)
		if (strcmp(web_files[i].path, path) == 0)
			return &web_files[i];
	return NULL;
}
