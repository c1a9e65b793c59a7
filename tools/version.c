/* `bramble version`: this binary's version, target and linked libraries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/build_info.h"
#include "tools/verbs.h"

int version_main(int argc, char **argv)
{
	struct build_info info;
	build_info_collect(&info);
	if (argc > 1 && (strcmp(argv[1], "-o") == 0 || strcmp(argv[1], "--output") == 0) && argc > 2 &&
	    strcmp(argv[2], "json") == 0) {
		char *json = build_info_json(&info);
		puts(json);
		free(json);
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "usage: bramble version [-o json]\n");
		return 2;
	}
	printf("Bramble %s (%s)\n", info.version, info.target);
	printf("  %s\n", info.coap);
	printf("  %s\n", info.tls);
	printf("  %s\n", info.sqlite);
	printf("  %s\n", info.cgroup);
	printf("  %s\n", info.archive);
	printf("  %s\n", info.seccomp);
	printf("  %s\n", info.yaml);
	printf("  %s\n", info.json);
	return 0;
}
