/* `bramble version`: this binary's version, target and linked libraries (the client), and
 * the server's, from GET /version, as kubectl version shows both.
 *
 * The server is asked when a client configuration is given (--config, $BRAMBLE_CONFIG) or
 * exists at ~/.config/bramble/config; without one (a board that only runs the agent) the
 * client's version alone is printed. --client never asks.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "agent/build_info.h"
#include "core/client.h"
#include "platform/buffer.h"
#include "platform/error.h"
#include "platform/memory.h"
#include "tools/cli.h"
#include "tools/clientconfig.h"
#include "tools/verbs.h"

static void usage(FILE *out)
{
	fputs("usage: bramble version [--client] [-o json] [--config FILE]\n", out);
}

int version_main(int argc, char **argv)
{
	enum { OPT_CONFIG = 256, OPT_CLIENT };
	static const struct option long_options[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "client", no_argument, NULL, OPT_CLIENT },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL;
	bool json = false, client_only = false;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "o:h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'o':
			if (strcmp(optarg, "json") != 0)
				return cli_usage_error(usage, "--output must be json");
			json = true;
			break;
		case OPT_CLIENT:
			client_only = true;
			break;
		case OPT_CONFIG:
			config = optarg;
			break;
		case 'h':
			usage(stdout);
			return CLI_OK;
		default:
			usage(stderr);
			return CLI_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage_error(usage, "unexpected argument '%s'", argv[optind]);
	struct build_info info;
	build_info_collect(&info);
	char path[CLIENTCONFIG_PATH_MAX];
	clientconfig_path(config, path, sizeof(path));
	bool ask = !client_only && (config || getenv("BRAMBLE_CONFIG") || access(path, F_OK) == 0);
	struct error err = { 0 };
	cJSON *server = NULL;
	char address[CLIENTCONFIG_VALUE_MAX] = "";
	int failed = 0;
	if (ask) {
		struct client *client = NULL;
		failed = cli_connect(config, &client, &err) < 0 ||
		         cli_call(client, CLIENT_GET, "/version", NULL, &server, &err) < 0;
		if (client)
			snprintf(address, sizeof(address), "%s", client_server(client));
		client_close(client);
	}
	if (json) {
		cJSON *both = cJSON_CreateObject();
		char *mine = build_info_json(&info);
		cJSON_AddItemToObject(both, "clientVersion", cJSON_Parse(mine));
		free(mine);
		if (server)
			cJSON_AddItemToObject(both, "serverVersion", steal_pointer(&server));
		struct buffer out = BUFFER_INIT;
		cli_write_json(both, 0, &out);
		printf("%s\n", out.data);
		buffer_free(&out);
		cJSON_Delete(both);
	} else {
		printf("Bramble %s (%s)\n", info.version, info.target);
		const char *const libraries[] = { info.coap,    info.tls,     info.sqlite, info.cgroup,
			                          info.archive, info.seccomp, info.yaml,   info.json };
		for (size_t i = 0; i < ARRAY_SIZE(libraries); i++)
			printf("  %s\n", libraries[i]);
		if (server) {
			const char *version = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(server, "bramble"));
			const char *target = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(server, "target"));
			printf("Server Version: Bramble %s (%s) at %s\n", version ? version : "?",
			       target ? target : "?", address);
		}
	}
	cJSON_Delete(server);
	fflush(stdout);
	if (failed)
		return cli_fail(&err);
	return CLI_OK;
}
