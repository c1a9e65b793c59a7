/* `bramble create`: kubectl's create, from manifests or from its generators.
 *
 *   bramble create -f FILE|DIR|-
 *   bramble create namespace NAME
 *   bramble create configmap NAME [--from-literal=K=V] [--from-file=[K=]PATH] [--from-env-file=PATH]
 *   bramble create secret generic NAME [same sources] [--type=TYPE]
 *   bramble create deployment NAME --image=IMAGE [--image=...] [--replicas=N] [--port=N]
 *   bramble create service clusterip NAME --tcp=PORT[:TARGET] [--clusterip=IP|None]
 *
 * Unlike apply, create fails on an object that exists (AlreadyExists), as kubectl's does.
 * --dry-run=client builds and checks the object here (core/object.c's validation),
 * --dry-run=server has the server check it (dryRun=All); -o yaml|json|name prints it.
 */
#include "tools/create.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mbedtls/base64.h>

#include "core/client.h"
#include "core/object.h"
#include "platform/buffer.h"
#include "platform/error.h"
#include "platform/file.h"
#include "platform/memory.h"
#include "tools/apply.h"
#include "tools/cli.h"
#include "tools/kinds.h"
#include "tools/manifest.h"
#include "tools/verbs.h"

/* --- building objects -------------------------------------------------------------------- */

static cJSON *new_object(const char *api_version, const char *kind, const char *name, const char *namespace)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "apiVersion", api_version);
	cJSON_AddStringToObject(o, "kind", kind);
	cJSON *metadata = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(metadata, "name", name);
	if (namespace)
		cJSON_AddStringToObject(metadata, "namespace", namespace);
	return o;
}

static char *base64(const unsigned char *data, size_t size)
{
	size_t length = 0;
	mbedtls_base64_encode(NULL, 0, &length, data, size);
	char *text = xmalloc(length + 1);
	if (mbedtls_base64_encode((unsigned char *)text, length + 1, &length, data, size) != 0)
		abort(); /* the size was just computed */
	text[length] = '\0';
	return text;
}

static bool valid_utf8(const unsigned char *s, size_t size)
{
	for (size_t i = 0; i < size;) {
		unsigned char c = s[i];
		size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
		if (!n || i + n > size || (n == 2 && c < 0xc2))
			return false;
		for (size_t k = 1; k < n; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
		i += n;
	}
	return true;
}

struct data_builder {
	cJSON *object;
	bool secret;
	const char *what; /* "ConfigMap \"x\"" for messages */
};

static int add_key(struct data_builder *b, const char *key, const unsigned char *value, size_t size, struct error *err)
{
	if (!key[0])
		return error_set(err, EINVAL, "a key may not be empty");
	cJSON *data = cJSON_GetObjectItemCaseSensitive(b->object, "data");
	cJSON *binary = cJSON_GetObjectItemCaseSensitive(b->object, "binaryData");
	if (cJSON_GetObjectItemCaseSensitive(data, key) || cJSON_GetObjectItemCaseSensitive(binary, key))
		return error_set(err, EEXIST, "cannot add key \"%s\", another key by that name already exists in %s",
		                 key, b->what);
	bool text = !b->secret && valid_utf8(value, size) && !memchr(value, '\0', size);
	if (!text && !b->secret && !binary)
		binary = cJSON_AddObjectToObject(b->object, "binaryData");
	if (!data)
		data = cJSON_AddObjectToObject(b->object, "data");
	if (text) {
		char *copy = xstrndup((const char *)value, size);
		cJSON_AddStringToObject(data, key, copy);
		free(copy);
	} else {
		char *encoded = base64(value, size);
		cJSON_AddStringToObject(b->secret ? data : binary, key, encoded);
		free(encoded);
	}
	return 0;
}

static int add_file(struct data_builder *b, const char *key, const char *path, struct error *err)
{
	char *content = NULL;
	size_t size = 0;
	int r = file_read(path, CREATE_MAX_FILE_SIZE, &content, &size, err);
	if (r < 0)
		return r;
	r = add_key(b, key, (const unsigned char *)content, size, err);
	free(content);
	return r;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* --from-file=[KEY=]PATH: a file under its base name (or KEY), or a directory's regular files. */
static int add_file_source(struct data_builder *b, const char *source, struct error *err)
{
	const char *equals = strchr(source, '=');
	cleanup_free char *key = equals ? xstrndup(source, (size_t)(equals - source)) : NULL;
	const char *path = equals ? equals + 1 : source;
	if (equals && (!key[0] || !path[0]))
		return error_set(err, EINVAL, "key names or file paths cannot be empty: '%s'", source);
	struct stat st;
	if (stat(path, &st) < 0)
		return error_set_errno(err, errno, "%s", path);
	if (!S_ISDIR(st.st_mode)) {
		const char *slash = strrchr(path, '/');
		return add_file(b, key ? key : slash ? slash + 1 : path, path, err);
	}
	if (key)
		return error_set(err, EINVAL, "cannot give a key name for a directory path: '%s'", source);
	DIR *dir = opendir(path);
	if (!dir)
		return error_set_errno(err, errno, "%s", path);
	char **names = NULL;
	size_t count = 0;
	struct dirent *entry;
	while ((entry = readdir(dir)) && count < CREATE_MAX_SOURCES) {
		cleanup_free char *file = xasprintf("%s/%s", path, entry->d_name);
		if (entry->d_name[0] == '.' || stat(file, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		names = xrealloc(names, (count + 1) * sizeof(*names));
		names[count++] = xstrdup(entry->d_name);
	}
	closedir(dir);
	qsort(names, count, sizeof(*names), compare_names);
	int r = 0;
	for (size_t i = 0; i < count; i++) {
		if (r == 0) {
			cleanup_free char *file = xasprintf("%s/%s", path, names[i]);
			r = add_file(b, names[i], file, err);
		}
		free(names[i]);
	}
	free(names);
	return r;
}

static int add_env_file(struct data_builder *b, const char *path, struct error *err)
{
	char *content = NULL;
	size_t size = 0;
	int r = file_read(path, CREATE_MAX_FILE_SIZE, &content, &size, err);
	if (r < 0)
		return r;
	int number = 0;
	for (char *save = NULL, *line = strtok_r(content, "\n", &save); line && r == 0;
	     line = strtok_r(NULL, "\n", &save)) {
		number++;
		while (*line == ' ' || *line == '\t')
			line++;
		size_t n = strlen(line);
		while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
			line[--n] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		char *equals = strchr(line, '=');
		if (!equals) {
			r = error_set(err, EINVAL, "%s:%d: expected KEY=VALUE", path, number);
			break;
		}
		*equals = '\0';
		r = add_key(b, line, (const unsigned char *)equals + 1, strlen(equals + 1), err);
	}
	free(content);
	return r;
}

int create_data_object(const char *name, const char *namespace, const struct create_sources *sources,
                       const char *secret_type, cJSON **ret_object, struct error *err)
{
	char what[300];
	snprintf(what, sizeof(what), "%s \"%s\"", secret_type ? "Secret" : "ConfigMap", name);
	struct data_builder b = { new_object("v1", secret_type ? "Secret" : "ConfigMap", name, namespace),
		                  secret_type != NULL, what };
	int r = 0;
	for (size_t i = 0; i < sources->file_count && r == 0; i++)
		r = add_file_source(&b, sources->files[i], err);
	for (size_t i = 0; i < sources->literal_count && r == 0; i++) {
		const char *literal = sources->literals[i], *equals = strchr(literal, '=');
		if (!equals || equals == literal) {
			r = error_set(err, EINVAL, "invalid literal source %s, expected key=value", literal);
			break;
		}
		cleanup_free char *key = xstrndup(literal, (size_t)(equals - literal));
		r = add_key(&b, key, (const unsigned char *)equals + 1, strlen(equals + 1), err);
	}
	for (size_t i = 0; i < sources->env_file_count && r == 0; i++)
		r = add_env_file(&b, sources->env_files[i], err);
	if (r < 0) {
		cJSON_Delete(b.object);
		return r;
	}
	if (secret_type)
		cJSON_AddStringToObject(b.object, "type", secret_type);
	*ret_object = b.object;
	return 0;
}

/* kubectl: the image's last path segment without tag or digest; '_' and '.' become '-'. */
static void container_name(const char *image, char *buf, size_t size)
{
	const char *slash = strrchr(image, '/');
	snprintf(buf, size, "%s", slash ? slash + 1 : image);
	buf[strcspn(buf, ":@")] = '\0';
	for (char *p = buf; *p; p++)
		if (*p == '_' || *p == '.')
			*p = '-';
}

int create_deployment(const char *name, const char *namespace, const char *const *images, size_t image_count,
                      long replicas, long port, cJSON **ret_object, struct error *err)
{
	if (image_count == 0)
		return error_set(err, EINVAL, "required flag(s) \"image\" not set");
	cJSON *d = new_object("apps/v1", "Deployment", name, namespace);
	cJSON_AddStringToObject(cJSON_AddObjectToObject(cJSON_GetObjectItem(d, "metadata"), "labels"), "app", name);
	cJSON *spec = cJSON_AddObjectToObject(d, "spec");
	cJSON_AddNumberToObject(spec, "replicas", (double)replicas);
	cJSON_AddStringToObject(cJSON_AddObjectToObject(cJSON_AddObjectToObject(spec, "selector"), "matchLabels"),
	                        "app", name);
	cJSON *template = cJSON_AddObjectToObject(spec, "template");
	cJSON_AddStringToObject(cJSON_AddObjectToObject(cJSON_AddObjectToObject(template, "metadata"), "labels"), "app",
	                        name);
	cJSON *containers = cJSON_AddArrayToObject(cJSON_AddObjectToObject(template, "spec"), "containers");
	for (size_t i = 0; i < image_count; i++) {
		char container[256];
		container_name(images[i], container, sizeof(container));
		/* Two images of one name get numbered names (kubectl adds a random suffix). */
		for (size_t k = 0; k < i; k++) {
			char other[256];
			container_name(images[k], other, sizeof(other));
			if (strcmp(other, container) == 0) {
				size_t n = strlen(container);
				snprintf(container + n, sizeof(container) - n, "-%zu", i + 1);
				break;
			}
		}
		cJSON *c = cJSON_CreateObject();
		cJSON_AddStringToObject(c, "image", images[i]);
		cJSON_AddStringToObject(c, "name", container);
		if (i == 0 && port >= 0) {
			cJSON *p = cJSON_CreateObject();
			cJSON_AddNumberToObject(p, "containerPort", (double)port);
			cJSON_AddItemToArray(cJSON_AddArrayToObject(c, "ports"), p);
		}
		cJSON_AddItemToArray(containers, c);
	}
	*ret_object = d;
	return 0;
}

static int parse_port(const char *text, long *ret)
{
	char *end;
	long v = strtol(text, &end, 10);
	if (!text[0] || *end || v < 1 || v > 65535)
		return -EINVAL;
	*ret = v;
	return 0;
}

int create_service(const char *name, const char *namespace, const char *const *tcp, size_t tcp_count,
                   const char *cluster_ip, cJSON **ret_object, struct error *err)
{
	bool headless = cluster_ip && strcmp(cluster_ip, "None") == 0;
	if (tcp_count == 0 && !headless)
		return error_set(err, EINVAL, "at least one tcp port specifier must be provided (--tcp PORT[:TARGET])");
	cJSON *s = new_object("v1", "Service", name, namespace);
	cJSON_AddStringToObject(cJSON_AddObjectToObject(cJSON_GetObjectItem(s, "metadata"), "labels"), "app", name);
	cJSON *spec = cJSON_AddObjectToObject(s, "spec");
	cJSON *ports = cJSON_AddArrayToObject(spec, "ports");
	for (size_t i = 0; i < tcp_count; i++) {
		const char *colon = strchr(tcp[i], ':');
		cleanup_free char *first = colon ? xstrndup(tcp[i], (size_t)(colon - tcp[i])) : xstrdup(tcp[i]);
		long port, target = 0;
		if (parse_port(first, &port) < 0 || (colon && parse_port(colon + 1, &target) < 0)) {
			cJSON_Delete(s);
			return error_set(err, EINVAL, "--tcp %s: expected PORT or PORT:TARGET, ports 1 to 65535",
			                 tcp[i]);
		}
		if (!colon)
			target = port;
		cJSON *p = cJSON_CreateObject();
		char port_name[32];
		snprintf(port_name, sizeof(port_name), colon ? "%ld-%ld" : "%ld", port, target);
		cJSON_AddStringToObject(p, "name", port_name);
		cJSON_AddNumberToObject(p, "port", (double)port);
		cJSON_AddStringToObject(p, "protocol", "TCP");
		cJSON_AddNumberToObject(p, "targetPort", (double)target);
		cJSON_AddItemToArray(ports, p);
	}
	cJSON_AddStringToObject(cJSON_AddObjectToObject(spec, "selector"), "app", name);
	if (cluster_ip)
		cJSON_AddStringToObject(spec, "clusterIP", cluster_ip);
	cJSON_AddStringToObject(spec, "type", "ClusterIP");
	*ret_object = s;
	return 0;
}

/* --- the verb ----------------------------------------------------------------------------- */

static void usage(FILE *out)
{
	fputs("usage: bramble create -f FILE|DIR|- [-f ...]\n"
	      "       bramble create namespace NAME\n"
	      "       bramble create configmap NAME [--from-literal=KEY=VALUE] [--from-file=[KEY=]PATH]\n"
	      "                                     [--from-env-file=PATH]\n"
	      "       bramble create secret generic NAME [the same sources] [--type=TYPE]\n"
	      "       bramble create deployment NAME --image=IMAGE [--image=...] [--replicas=N] [--port=N]\n"
	      "       bramble create service clusterip NAME --tcp=PORT[:TARGET] [--tcp=...] [--clusterip=IP|None]\n"
	      "options: -n NAMESPACE, --dry-run=none|client|server, -o yaml|json|name, --config FILE\n",
	      out);
}

enum output { OUTPUT_DEFAULT, OUTPUT_YAML, OUTPUT_JSON, OUTPUT_NAME };

struct create_context {
	struct client *client;
	enum apply_dry_run dry_run;
	enum output output;
	const char *config;
};

static void print_result(const struct create_context *c, const struct kind *kind, const cJSON *object)
{
	char type[KINDS_NAME_MAX];
	kinds_type(kind, type, sizeof(type));
	struct buffer out = BUFFER_INIT;
	switch (c->output) {
	case OUTPUT_YAML:
		manifest_write_yaml(object, &out);
		break;
	case OUTPUT_JSON:
		cli_write_json(object, 0, &out);
		buffer_append_string(&out, "\n");
		break;
	case OUTPUT_NAME:
		buffer_printf(&out, "%s/%s\n", type, cli_string(object, "metadata.name"));
		break;
	default:
		buffer_printf(&out, "%s/%s created%s\n", type, cli_string(object, "metadata.name"),
		              apply_dry_run_suffix(c->dry_run));
		break;
	}
	fputs(out.data ? out.data : "", stdout);
	buffer_free(&out);
}

/* Creates (or checks) one object: 0, 1 it failed (printed), -1 the server cannot be reached
 * (printed). source: the manifest document, or NULL. */
static int create_one(struct create_context *c, cJSON *object, const struct manifest_document *source)
{
	struct error err = { 0 };
	const struct kind *kind = kind_lookup(object_string_at(object, "apiVersion"), object_string_at(object, "kind"));
	char resource[KINDS_NAME_MAX];
	kinds_resource(kind, resource, sizeof(resource));
	if (c->dry_run == DRY_RUN_CLIENT) {
		/* Print what would be sent; check a copy as the server would. */
		cJSON *checked = cJSON_Duplicate(object, 1);
		int r = apply_check_locally(kind, checked, &err);
		cJSON_Delete(checked);
		if (r < 0) {
			if (source)
				fprintf(stderr, "error: %s: document %d: %s \"%s\" is invalid: %s\n", source->source,
				        source->index, resource, object_name(object), err.message);
			else
				fprintf(stderr, "error: %s \"%s\" is invalid: %s\n", resource, object_name(object),
				        err.message);
			return -EINVAL;
		}
		print_result(c, kind, object);
		return 0;
	}
	if (!c->client && cli_connect(c->config, &c->client, &err) < 0) {
		cli_print_error(&err);
		return -1;
	}
	cleanup_free char *collection = kinds_path(kind, object_namespace(object), NULL);
	cleanup_free char *path = c->dry_run == DRY_RUN_SERVER ? xasprintf("%s?dryRun=All", collection) : NULL;
	cJSON *created = NULL;
	int r = cli_call(c->client, CLIENT_POST, path ? path : collection, object, &created, &err);
	if (r < 0) {
		const char *colon = strstr(err.message, "): ");
		if (source && colon && strncmp(err.message, CLI_SERVER_PREFIX, strlen(CLI_SERVER_PREFIX)) == 0)
			fprintf(stderr, "%.*s: error when creating \"%s\" (document %d): %s\n",
			        (int)(colon + 1 - err.message), err.message, source->source, source->index, colon + 3);
		else
			cli_print_error(&err);
		return strncmp(err.message, CLI_SERVER_PREFIX, strlen(CLI_SERVER_PREFIX)) == 0 ? 1 : -1;
	}
	if (c->output == OUTPUT_YAML || c->output == OUTPUT_JSON) {
		/* A write's answer may be cut to fit one datagram: print the object whole. */
		cJSON *whole = NULL;
		if (c->dry_run == DRY_RUN_NONE && cli_object_call(c->client, CLIENT_GET, kind, object_namespace(object),
		                                                  object_name(object), NULL, NULL, &whole, &err) == 0) {
			cJSON_Delete(created);
			created = whole;
		}
	}
	print_result(c, kind, created ? created : object);
	cJSON_Delete(created);
	return 0;
}

int create_main(int argc, char **argv)
{
	enum {
		OPT_CONFIG = 256,
		OPT_DRY_RUN,
		OPT_LITERAL,
		OPT_FILE,
		OPT_ENV_FILE,
		OPT_TYPE,
		OPT_IMAGE,
		OPT_REPLICAS,
		OPT_PORT,
		OPT_TCP,
		OPT_CLUSTER_IP,
	};
	static const struct option long_options[] = {
		{ "filename", required_argument, NULL, 'f' },
		{ "namespace", required_argument, NULL, 'n' },
		{ "output", required_argument, NULL, 'o' },
		{ "dry-run", optional_argument, NULL, OPT_DRY_RUN },
		{ "from-literal", required_argument, NULL, OPT_LITERAL },
		{ "from-file", required_argument, NULL, OPT_FILE },
		{ "from-env-file", required_argument, NULL, OPT_ENV_FILE },
		{ "type", required_argument, NULL, OPT_TYPE },
		{ "image", required_argument, NULL, OPT_IMAGE },
		{ "replicas", required_argument, NULL, OPT_REPLICAS },
		{ "port", required_argument, NULL, OPT_PORT },
		{ "tcp", required_argument, NULL, OPT_TCP },
		{ "clusterip", required_argument, NULL, OPT_CLUSTER_IP },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct create_context c = { 0 };
	struct cli_files files = { 0 };
	struct create_sources *sources = xcalloc(1, sizeof(*sources));
	const char *images[CREATE_MAX_SOURCES], *tcp[CREATE_MAX_SOURCES];
	size_t image_count = 0, tcp_count = 0;
	const char *namespace = NULL, *secret_type = NULL, *cluster_ip = NULL;
	long replicas = 1, port = -1;
	struct error err = { 0 };
	int status = CLI_OK, opt;
	cJSON *object = NULL;
	struct manifest manifest = { 0 };
	optind = 1;
	while ((opt = getopt_long(argc, argv, "f:n:o:h", long_options, NULL)) != -1) {
		size_t *count = NULL;
		const char **list = NULL;
		switch (opt) {
		case 'f':
			if (cli_files_add(&files, optarg, &err) < 0) {
				status = cli_usage_error(NULL, "%s", err.message);
				goto out;
			}
			break;
		case 'n':
			namespace
			= optarg;
			break;
		case 'o':
			if (strcmp(optarg, "yaml") == 0)
				c.output = OUTPUT_YAML;
			else if (strcmp(optarg, "json") == 0)
				c.output = OUTPUT_JSON;
			else if (strcmp(optarg, "name") == 0)
				c.output = OUTPUT_NAME;
			else {
				status = cli_usage_error(NULL,
				                         "unable to match a printer suitable for the output format "
				                         "\"%s\", the allowed formats are: json,name,yaml",
				                         optarg);
				goto out;
			}
			break;
		case OPT_DRY_RUN:
			if (apply_parse_dry_run(optarg, &c.dry_run, &err) < 0) {
				status = cli_usage_error(NULL, "%s", err.message);
				goto out;
			}
			break;
		case OPT_LITERAL:
			count = &sources->literal_count, list = sources->literals;
			break;
		case OPT_FILE:
			count = &sources->file_count, list = sources->files;
			break;
		case OPT_ENV_FILE:
			count = &sources->env_file_count, list = sources->env_files;
			break;
		case OPT_IMAGE:
			count = &image_count, list = images;
			break;
		case OPT_TCP:
			count = &tcp_count, list = tcp;
			break;
		case OPT_TYPE:
			secret_type = optarg;
			break;
		case OPT_CLUSTER_IP:
			cluster_ip = optarg;
			break;
		case OPT_REPLICAS:
		case OPT_PORT: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (!optarg[0] || *end || v < 0 || v > (opt == OPT_PORT ? 65535 : 1000000)) {
				status = cli_usage_error(NULL, "--%s takes a number, not '%s'",
				                         opt == OPT_PORT ? "port" : "replicas", optarg);
				goto out;
			}
			*(opt == OPT_PORT ? &port : &replicas) = v;
			break;
		}
		case OPT_CONFIG:
			c.config = optarg;
			break;
		case 'h':
			usage(stdout);
			goto out;
		default:
			usage(stderr);
			status = CLI_USAGE;
			goto out;
		}
		if (count) {
			if (*count >= CREATE_MAX_SOURCES) {
				status = cli_usage_error(NULL, "at most %d of each option", CREATE_MAX_SOURCES);
				goto out;
			}
			list[(*count)++] = optarg;
		}
	}
	int left = argc - optind;
	char **args = argv + optind;
	if (files.count > 0) {
		if (left > 0) {
			status = cli_usage_error(usage, "unexpected argument '%s' with -f", args[0]);
			goto out;
		}
		if (cli_files_read(&files, &manifest, &err) < 0) {
			status = cli_fail(&err);
			goto out;
		}
		for (size_t i = 0; i < manifest.count; i++) {
			struct manifest_document *d = &manifest.documents[i];
			struct cli_target target;
			if (cli_document_target(d, namespace, &target, &err) < 0) {
				cli_print_error(&err);
				status = CLI_ERROR;
				continue;
			}
			if (target.namespace) {
				/* target.namespace may be the string about to be replaced. */
				cleanup_free char *own = xstrdup(target.namespace);
				cJSON_DeleteItemFromObjectCaseSensitive(object_metadata(d->object), "namespace");
				cJSON_AddStringToObject(object_metadata(d->object), "namespace", own);
			}
			int r = create_one(&c, d->object, d);
			if (r != 0)
				status = CLI_ERROR;
			if (r < 0)
				break;
		}
		goto out;
	}
	if (left < 1) {
		status = cli_usage_error(usage, "you must specify -f FILE or what to create");
		goto out;
	}
	const char *what = args[0];
	const char *ns = namespace ? namespace : "default";
	int r;
	if (strcmp(what, "namespace") == 0 || strcmp(what, "ns") == 0) {
		if (left != 2) {
			status = cli_usage_error(usage, "create namespace takes exactly one NAME");
			goto out;
		}
		object = new_object("v1", "Namespace", args[1], NULL);
		r = 0;
	} else if (strcmp(what, "configmap") == 0 || strcmp(what, "cm") == 0 ||
	           (strcmp(what, "secret") == 0 && left >= 2 && strcmp(args[1], "generic") == 0)) {
		bool secret = strcmp(what, "secret") == 0;
		if (left != (secret ? 3 : 2)) {
			status = cli_usage_error(usage, "create %s takes exactly one NAME",
			                         secret ? "secret generic" : "configmap");
			goto out;
		}
		r = create_data_object(args[left - 1], ns, sources,
		                       secret ? (secret_type ? secret_type : "Opaque") : NULL, &object, &err);
	} else if (strcmp(what, "secret") == 0) {
		status = cli_usage_error(usage,
		                         "create secret: Bramble makes generic secrets: create secret generic NAME");
		goto out;
	} else if (strcmp(what, "deployment") == 0 || strcmp(what, "deploy") == 0) {
		if (left != 2) {
			status = cli_usage_error(usage, "create deployment takes exactly one NAME");
			goto out;
		}
		if (image_count == 0) {
			status = cli_usage_error(usage, "required flag(s) \"image\" not set");
			goto out;
		}
		r = create_deployment(args[1], ns, images, image_count, replicas, port, &object, &err);
	} else if (strcmp(what, "service") == 0 || strcmp(what, "svc") == 0) {
		if (left != 3 || strcmp(args[1], "clusterip") != 0) {
			status = cli_usage_error(usage,
			                         "create service: Bramble makes clusterip services: create service "
			                         "clusterip NAME --tcp=PORT[:TARGET]");
			goto out;
		}
		r = create_service(args[2], ns, tcp, tcp_count, cluster_ip, &object, &err);
		if (r == -EINVAL && tcp_count == 0) {
			status = cli_usage_error(usage, "%s", err.message);
			goto out;
		}
	} else {
		status = cli_usage_error(usage,
		                         "cannot create '%s': use -f, or one of namespace, configmap, secret generic, "
		                         "deployment, service clusterip",
		                         what);
		goto out;
	}
	if (r < 0) {
		status = cli_fail(&err);
		goto out;
	}
	if (create_one(&c, object, NULL) != 0)
		status = CLI_ERROR;
out:
	cJSON_Delete(object);
	manifest_free(&manifest);
	client_close(c.client);
	free(sources);
	return status;
}
