/* `bramble image import FILE | ls | rm REF`: the board's image store, by hand.
 *
 * The store is <data-dir>/images, the one the agent uses; each call locks it, so this may run
 * beside a running agent.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/images.h"
#include "platform/error.h"
#include "platform/memory.h"
#include "tools/verbs.h"

static void usage(FILE *out)
{
	fputs("usage: bramble image import FILE [--data-dir DIR] [--limit BYTES]\n"
	      "       bramble image ls [--data-dir DIR]\n"
	      "       bramble image rm REFERENCE [--data-dir DIR]\n"
	      "       bramble image gc [--data-dir DIR]\n"
	      "\n"
	      "Imports an OCI image layout (directory or tar) or a `docker save` archive into this\n"
	      "board's image store, lists the images, removes one (by name:tag or sha256 digest).\n"
	      "  --data-dir DIR   default /var/lib/bramble; the store is DIR/images\n"
	      "  --limit BYTES    refuse an import that would make the store larger (K, M, G suffixes)\n",
	      out);
}

/* "64M" -> 67108864; -1 when it is not a size. */
static int parse_size(const char *text, uint64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long value = strtoull(text, &end, 10);
	if (errno || end == text || text[0] == '-')
		return -1;
	uint64_t unit = 1;
	if (*end == 'K' || *end == 'k')
		unit = 1024, end++;
	else if (*end == 'M' || *end == 'm')
		unit = 1024 * 1024, end++;
	else if (*end == 'G' || *end == 'g')
		unit = 1024 * 1024 * 1024, end++;
	if (*end || value > UINT64_MAX / unit)
		return -1;
	*ret = value * unit;
	return 0;
}

static void human_size(uint64_t bytes, char *out, size_t size)
{
	if (bytes >= 1000 * 1000 * 1000)
		snprintf(out, size, "%.1fGB", (double)bytes / 1e9);
	else if (bytes >= 1000 * 1000)
		snprintf(out, size, "%.1fMB", (double)bytes / 1e6);
	else if (bytes >= 1000)
		snprintf(out, size, "%.1fkB", (double)bytes / 1e3);
	else
		snprintf(out, size, "%" PRIu64 "B", bytes);
}

static int list(struct images_store *store, struct error *err)
{
	struct images_entry *entries = NULL;
	size_t count = 0;
	int r = images_list(store, &entries, &count, err);
	if (r < 0)
		return r;
	printf("%-40s %-12s %-9s %s\n", "REFERENCE", "DIGEST", "SIZE", "ARCH");
	for (size_t i = 0; i < count; i++) {
		char size[32];
		human_size(entries[i].size, size, sizeof(size));
		printf("%-40s %-12.12s %-9s %s\n",
		       entries[i].reference[0] ? images_familiar_reference(entries[i].reference) : "<none>",
		       entries[i].digest + 7, size, entries[i].architecture);
	}
	free(entries);
	return 0;
}

int image_main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "data-dir", required_argument, NULL, 'd' },
		{ "limit", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *data_dir = "/var/lib/bramble";
	uint64_t limit = 0;
	int opt;
	optind = 0; /* reinitialise getopt: options may come before or after the command */
	while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'd':
			data_dir = optarg;
			break;
		case 'l':
			if (parse_size(optarg, &limit) < 0) {
				fprintf(stderr, "bramble image: --limit '%s' is not a size (bytes, or with K, M, G)\n",
				        optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *command = argv[optind];
	int operands = argc - optind - 1;
	const char *operand = operands > 0 ? argv[optind + 1] : NULL;
	bool needs_operand = strcmp(command, "import") == 0 || strcmp(command, "rm") == 0;
	bool known = needs_operand || strcmp(command, "ls") == 0 || strcmp(command, "gc") == 0;
	if (!known) {
		fprintf(stderr, "bramble image: unknown command '%s'\n", command);
		usage(stderr);
		return 2;
	}
	if (operands != (needs_operand ? 1 : 0)) {
		fprintf(stderr, "bramble image %s: %s\n", command,
		        needs_operand ? "takes exactly one argument" : "takes no arguments");
		usage(stderr);
		return 2;
	}

	struct error err = { 0 };
	struct images_store store;
	cleanup_free char *dir = xasprintf("%s/images", data_dir);
	int r = images_open(&store, dir, limit, NULL, NULL, &err);
	if (r == 0) {
		if (strcmp(command, "import") == 0) {
			r = images_import(&store, operand, &err);
			if (r == 0)
				r = list(&store, &err);
		} else if (strcmp(command, "ls") == 0) {
			r = list(&store, &err);
		} else if (strcmp(command, "rm") == 0) {
			r = images_rm(&store, operand, &err);
			if (r == 0)
				printf("removed %s\n", operand);
		} else {
			r = images_gc(&store, &err);
		}
	}
	images_close(&store);
	if (r < 0) {
		fprintf(stderr, "bramble image %s: %s\n", command, err.message);
		return 1;
	}
	return 0;
}
