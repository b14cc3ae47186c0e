/* SPDX-License-Identifier: MIT */
/*
 * A main() for the fuzz targets in builds without libFuzzer (gcc, the
 * ordinary and the ASan builds): runs every file named, or every file of
 * every directory named, through LLVMFuzzerTestOneInput() once, so that the
 * seed corpus and the regression inputs of each target run in every build.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		perror(path);
		return 1;
	}
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap);
	size_t r;
	while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap)
			buf = realloc(buf, cap *= 2);
	}
	fclose(f);
	if (buf == NULL)
		abort();
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
	int rc = 0, files = 0;

	for (int i = 1; i < argc; i++) {
		struct stat sb;
		if (stat(argv[i], &sb) != 0) {
			perror(argv[i]);
			return 1;
		}
		if (!S_ISDIR(sb.st_mode)) {
			rc |= run_file(argv[i]);
			files++;
			continue;
		}
		struct dirent **list;
		int n = scandir(argv[i], &list, NULL, by_name);
		for (int j = 0; j < n; j++) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", argv[i], list[j]->d_name);
			if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
				rc |= run_file(path);
				files++;
			}
			free(list[j]);
		}
		free(list);
	}
	printf("%d inputs, no crash\n", files);
	return rc;
}
