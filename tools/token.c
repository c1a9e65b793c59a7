/* `bramble token create|ls|rm`: join tokens, as `kubeadm token` makes them (core/bootstrap.h
 * has their shape and the join). A token is a Secret kube-system/bootstrap-token-<id> of
 * type bootstrap.kubernetes.io/token, written through the API like any other object; `rm`
 * revokes it by annotating it bramble.io/revoked-at, so a board that tries it later is told
 * it was revoked. `create` prints the join string: the token and the cluster hash. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/base64.h>

#include "core/bootstrap.h"
#include "core/client.h"
#include "core/object.h"
#include "platform/buffer.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/memory.h"
#include "tools/cli.h"
#include "tools/clientconfig.h"
#include "tools/tabwriter.h"
#include "tools/verbs.h"

#define TOKEN_DEFAULT_TTL_MS (24LL * 3600 * 1000)
#define TOKEN_DESCRIPTION_MAX 256

static void usage(FILE *out)
{
	fputs("usage: bramble token create [--ttl DURATION] [--description TEXT] [--print-config] [--config FILE]\n"
	      "       bramble token ls [--config FILE]\n"
	      "       bramble token rm ID... [--config FILE]\n"
	      "\n"
	      "Join tokens let a board join the cluster: put the string `create` prints in the board's\n"
	      "bramble.conf as [agent] token, beside [agent] server. It holds the token and the hash of\n"
	      "the cluster key, which the board checks the server holds.\n"
	      "  --ttl DURATION     how long the token may be used (24h, 30m, 0: no expiry); default 24h\n"
	      "  --description TEXT what the token is for, shown by `ls`\n"
	      "  --print-config     print the [agent] section for the board instead of the bare token\n"
	      "  rm ID              revoke: boards trying the token are told it was revoked\n",
	      out);
}

static const struct kind *secret_kind(void)
{
	return kind_lookup("v1", "Secret");
}

/* A data value of a Secret, decoded into buf ("" when absent). */
static const char *data_value(const cJSON *secret, const char *key, char *buf, size_t size)
{
	const cJSON *item = cli_item(secret, "data");
	item = cJSON_GetObjectItemCaseSensitive(item, key);
	size_t out = 0;
	buf[0] = '\0';
	if (cJSON_IsString(item) &&
	    mbedtls_base64_decode((unsigned char *)buf, size - 1, &out, (const unsigned char *)item->valuestring,
	                          strlen(item->valuestring)) == 0)
		buf[out] = '\0';
	else
		buf[0] = '\0';
	return buf;
}

static int cluster_hash(struct client *client, char hash[BOOTSTRAP_HASH_SIZE], struct error *err)
{
	char nonce[BOOTSTRAP_NONCE_HEX_SIZE];
	int r = bootstrap_random_nonce(nonce, err);
	if (r < 0)
		return r;
	cJSON *request = cJSON_CreateObject(), *answer = NULL;
	cJSON_AddStringToObject(request, "nonce", nonce);
	r = cli_call(client, CLIENT_POST, "/bootstrap/cluster", request, &answer, err);
	cJSON_Delete(request);
	if (r == -ENOENT)
		return error_set(err, ENOTSUP, "the server at %s does not let boards join (no /bootstrap/cluster)",
		                 client_server(client));
	if (r < 0)
		return r;
	const char *text = cli_string(answer, "clusterHash");
	if (strncmp(text, "sha256:", 7) != 0 || strlen(text) != BOOTSTRAP_HASH_SIZE - 1) {
		cJSON_Delete(answer);
		return error_set(err, EPROTO, "the server's answer has no cluster hash");
	}
	snprintf(hash, BOOTSTRAP_HASH_SIZE, "%s", text);
	cJSON_Delete(answer);
	return 0;
}

static int token_create(struct client *client, int64_t ttl_ms, const char *description, bool print_config,
                        struct error *err)
{
	struct bootstrap_token token;
	int r = cluster_hash(client, token.hash, err);
	char hash[BOOTSTRAP_HASH_SIZE];
	if (r < 0)
		return r;
	memcpy(hash, token.hash, sizeof(hash));
	if ((r = bootstrap_token_generate(&token, err)) < 0)
		return r;
	memcpy(token.hash, hash, sizeof(hash));
	char name[64];
	snprintf(name, sizeof(name), "bootstrap-token-%s", token.id);
	cJSON *secret = cJSON_CreateObject();
	cJSON_AddStringToObject(secret, "apiVersion", "v1");
	cJSON_AddStringToObject(secret, "kind", "Secret");
	cJSON *metadata = cJSON_AddObjectToObject(secret, "metadata");
	cJSON_AddStringToObject(metadata, "name", name);
	cJSON_AddStringToObject(metadata, "namespace", BOOTSTRAP_NAMESPACE);
	cJSON_AddStringToObject(secret, "type", BOOTSTRAP_TOKEN_TYPE);
	cJSON *data = cJSON_AddObjectToObject(secret, "stringData");
	cJSON_AddStringToObject(data, "token-id", token.id);
	cJSON_AddStringToObject(data, "token-secret", token.secret);
	if (ttl_ms > 0) {
		char expiration[CLOCK_RFC3339_SIZE];
		clock_format_rfc3339(time(NULL) + (time_t)((ttl_ms + 999) / 1000), expiration);
		cJSON_AddStringToObject(data, "expiration", expiration);
	}
	if (description && description[0])
		cJSON_AddStringToObject(data, "description", description);
	cJSON_AddStringToObject(data, "usage-bootstrap-authentication", "true");
	char path[160];
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets", BOOTSTRAP_NAMESPACE);
	r = cli_call(client, CLIENT_POST, path, secret, NULL, err);
	cJSON_Delete(secret);
	if (r < 0) {
		explicit_bzero(&token, sizeof(token));
		return r;
	}
	char text[128];
	bootstrap_token_format(&token, text, sizeof(text));
	explicit_bzero(&token, sizeof(token));
	if (print_config)
		printf("[agent]\nserver = %s\ntoken = %s\n", client_server(client), text);
	else
		printf("%s\n", text);
	explicit_bzero(text, sizeof(text));
	return 0;
}

static int compare_names(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
	return strcmp(cli_string(x, "metadata.name"), cli_string(y, "metadata.name"));
}

static int token_list(struct client *client, struct error *err)
{
	cJSON *items = cJSON_CreateArray();
	int r = cli_list(client, secret_kind(), BOOTSTRAP_NAMESPACE, NULL, NULL, items, NULL, err);
	if (r < 0) {
		cJSON_Delete(items);
		return r;
	}
	size_t count = 0, n = (size_t)cJSON_GetArraySize(items);
	const cJSON **tokens = xcalloc(n + 1, sizeof(*tokens));
	const cJSON *item;
	cJSON_ArrayForEach(item, items)
	{
		if (strcmp(cli_string(item, "type"), BOOTSTRAP_TOKEN_TYPE) == 0)
			tokens[count++] = item;
	}
	qsort(tokens, count, sizeof(*tokens), compare_names);
	if (count == 0) {
		fprintf(stderr, "No join tokens found.\n");
		free(tokens);
		cJSON_Delete(items);
		return 0;
	}
	struct tabwriter w;
	tabwriter_init(&w, 0, 3, false);
	tabwriter_write(&w, "ID\tTTL\tEXPIRES\tSTATUS\tDESCRIPTION\n");
	time_t now = time(NULL);
	for (size_t i = 0; i < count; i++) {
		char id[32], expiration[64], description[TOKEN_DESCRIPTION_MAX * 2], ttl[32] = "<forever>";
		data_value(tokens[i], "token-id", id, sizeof(id));
		data_value(tokens[i], "expiration", expiration, sizeof(expiration));
		data_value(tokens[i], "description", description, sizeof(description));
		const cJSON *annotations = cli_item(tokens[i], "metadata.annotations");
		const cJSON *revoked = cJSON_GetObjectItemCaseSensitive(annotations, BOOTSTRAP_REVOKED_ANNOTATION);
		time_t expires = 0;
		const char *status = "valid";
		if (expiration[0] && clock_parse_rfc3339(expiration, &expires) == 0) {
			if (expires > now)
				cli_human_duration((long long)(expires - now), ttl, sizeof(ttl));
			else
				snprintf(ttl, sizeof(ttl), "<expired>");
			if (expires <= now)
				status = "expired";
		}
		if (cJSON_IsString(revoked))
			status = "revoked";
		tabwriter_printf(&w, "%s\t%s\t%s\t%s\t%s\n", id, ttl, expiration[0] ? expiration : "<never>", status,
		                 description[0] ? description : "<none>");
	}
	struct buffer out = BUFFER_INIT;
	tabwriter_flush(&w, &out);
	fwrite(out.data, 1, out.length, stdout);
	buffer_free(&out);
	tabwriter_free(&w);
	free(tokens);
	cJSON_Delete(items);
	return 0;
}

static int token_remove(struct client *client, const char *id, struct error *err)
{
	char name[64];
	if (strlen(id) != BOOTSTRAP_TOKEN_ID_LENGTH || strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789") != strlen(id))
		return error_set(err, EINVAL,
		                 "'%s' is not a token id (6 lowercase letters and digits, as `bramble token "
		                 "ls` shows; not the whole token)",
		                 id);
	snprintf(name, sizeof(name), "bootstrap-token-%s", id);
	cJSON *secret = NULL;
	int r = cli_object_call(client, CLIENT_GET, secret_kind(), BOOTSTRAP_NAMESPACE, name, NULL, NULL, &secret, err);
	if (r == -ENOENT)
		return error_set(err, ENOENT, "join token \"%s\" not found", id);
	if (r < 0)
		return r;
	bool is_token = strcmp(cli_string(secret, "type"), BOOTSTRAP_TOKEN_TYPE) == 0;
	const cJSON *annotations = cli_item(secret, "metadata.annotations");
	bool revoked = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(annotations, BOOTSTRAP_REVOKED_ANNOTATION));
	cJSON_Delete(secret);
	if (!is_token)
		return error_set(err, EINVAL, "secret %s/%s is not a join token", BOOTSTRAP_NAMESPACE, name);
	if (revoked) {
		printf("join token \"%s\" was revoked already\n", id);
		return 0;
	}
	char now[CLOCK_RFC3339_SIZE];
	clock_format_rfc3339(time(NULL), now);
	cJSON *patch = cJSON_CreateObject();
	cJSON *meta = cJSON_AddObjectToObject(patch, "metadata");
	cJSON_AddStringToObject(cJSON_AddObjectToObject(meta, "annotations"), BOOTSTRAP_REVOKED_ANNOTATION, now);
	r = cli_object_call(client, CLIENT_PATCH, secret_kind(), BOOTSTRAP_NAMESPACE, name, NULL, patch, NULL, err);
	cJSON_Delete(patch);
	if (r < 0)
		return r;
	printf("join token \"%s\" revoked\n", id);
	return 0;
}

int token_main(int argc, char **argv)
{
	enum { OPT_CONFIG = 256, OPT_TTL, OPT_DESCRIPTION, OPT_PRINT_CONFIG };
	static const struct option long_options[] = {
		{ "ttl", required_argument, NULL, OPT_TTL },
		{ "description", required_argument, NULL, OPT_DESCRIPTION },
		{ "print-config", no_argument, NULL, OPT_PRINT_CONFIG },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL, *description = NULL;
	int64_t ttl_ms = TOKEN_DEFAULT_TTL_MS;
	bool print_config = false, ttl_given = false, description_given = false;
	struct error err = { 0 };
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		switch (opt) {
		case OPT_TTL:
			if (cli_parse_duration(optarg, &ttl_ms, &err) < 0 || ttl_ms < 0)
				return cli_usage_error(usage, "--ttl: %s", err.message[0] ? err.message : "negative");
			ttl_given = true;
			break;
		case OPT_DESCRIPTION:
			if (strlen(optarg) > TOKEN_DESCRIPTION_MAX)
				return cli_usage_error(usage, "--description: at most %d characters",
				                       TOKEN_DESCRIPTION_MAX);
			description = optarg;
			description_given = true;
			break;
		case OPT_PRINT_CONFIG:
			print_config = true;
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
	if (optind >= argc)
		return cli_usage_error(usage, "give a subcommand: create, ls or rm");
	const char *sub = argv[optind++];
	bool create = strcmp(sub, "create") == 0;
	bool list = strcmp(sub, "ls") == 0 || strcmp(sub, "list") == 0;
	bool remove = strcmp(sub, "rm") == 0 || strcmp(sub, "delete") == 0 || strcmp(sub, "revoke") == 0;
	if (!create && !list && !remove)
		return cli_usage_error(usage, "unknown subcommand '%s' (create, ls, rm)", sub);
	if (!create && (ttl_given || description_given || print_config))
		return cli_usage_error(usage, "--ttl, --description and --print-config go with create");
	if ((create || list) && optind < argc)
		return cli_usage_error(usage, "unexpected argument '%s'", argv[optind]);
	if (remove && optind >= argc)
		return cli_usage_error(usage, "give the id of the token to revoke (bramble token ls shows them)");
	struct client *client = NULL;
	int r = cli_connect(config, &client, &err);
	if (r < 0)
		return cli_fail(&err);
	int status = CLI_OK;
	if (create)
		r = token_create(client, ttl_ms, description, print_config, &err);
	else if (list)
		r = token_list(client, &err);
	else {
		for (; optind < argc; optind++) {
			if (token_remove(client, argv[optind], &err) < 0) {
				cli_print_error(&err);
				status = CLI_ERROR;
			}
		}
		r = 0;
	}
	client_close(client);
	if (r < 0)
		return cli_fail(&err);
	return status;
}
