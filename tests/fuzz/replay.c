/* Replays a fuzz target's corpus without libFuzzer: each file given (or each file in each
 * directory given) is passed once to LLVMFuzzerTestOneInput. `make test` runs the corpora
 * this way under AddressSanitizer and UBSan; a crash fails the run. */
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
	if (!f) {
		perror(path);
		return -1;
	}
	static uint8_t buffer[1 << 20];
	size_t size = fread(buffer, 1, sizeof(buffer), f);
	fclose(f);
	/* A private copy of exactly the input's length, so an overread is caught. */
	uint8_t *copy = malloc(size ? size : 1);
	memcpy(copy, buffer, size);
	LLVMFuzzerTestOneInput(copy, size);
	free(copy);
	return 0;
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			perror(argv[i]);
			failed++;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			run_file(argv[i]) == 0 ? passed++ : failed++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			run_file(path) == 0 ? passed++ : failed++;
		}
		if (d)
			closedir(d);
	}
	printf("fuzz replay: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
