/* Shared by the client verbs (see tools/cli.h).
 *
 * The one piece of state is the progress line: whether one is on the terminal now, so the
 * next one replaces it and cli_progress_end can erase it.
 */
#include "tools/cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/object.h"
#include "platform/buffer.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/memory.h"
#include "tools/clientconfig.h"
#include "tools/kinds.h"

void cli_print_error(const struct error *err)
{
	const char *message = err && err->message[0] ? err->message : "unknown error";
	if (strncmp(message, CLI_SERVER_PREFIX, strlen(CLI_SERVER_PREFIX)) == 0)
		fprintf(stderr, "%s\n", message);
	else
		fprintf(stderr, "error: %s\n", message);
}

int cli_fail(const struct error *err)
{
	cli_progress_end();
	cli_print_error(err);
	return CLI_ERROR;
}

int cli_usage_error(void (*usage)(FILE *), const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("error: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs("\n", stderr);
	va_end(ap);
	if (usage)
		usage(stderr);
	return CLI_USAGE;
}

int cli_connect(const char *config_path, struct client **ret_client, struct error *err)
{
	return clientconfig_connect(config_path, ret_client, err);
}

/* "Error from server (NotFound): message", with the errno of the answer's code. */
static int server_error(const struct client_response *response, struct error *err)
{
	struct error parsed = { 0 };
	int r = client_response_error(response, &parsed);
	error_set(err, -r, "%s (%s): %s", CLI_SERVER_PREFIX, response->reason[0] ? response->reason : "InternalError",
	          response->message[0] ? response->message : parsed.message);
	if (err)
		snprintf(err->field, sizeof(err->field), "%s", response->field);
	return r;
}

int cli_call(struct client *client, enum client_method method, const char *path, const cJSON *body, cJSON **ret_object,
             struct error *err)
{
	cleanup_free char *text = body ? cJSON_PrintUnformatted(body) : NULL;
	struct client_response response;
	int r = client_request(client, method, path, text, text ? strlen(text) : 0, &response, err);
	if (r < 0)
		return r;
	if (response.code >= 400) {
		r = server_error(&response, err);
		client_response_clear(&response);
		return r;
	}
	cJSON *object = NULL;
	if (response.length) {
		object = cJSON_ParseWithLength(response.body, response.length);
		if (!object) {
			client_response_clear(&response);
			return error_set(err, EBADMSG, "the answer of %s to %s is not JSON", client_server(client),
			                 path);
		}
	}
	client_response_clear(&response);
	if (ret_object)
		*ret_object = object;
	else
		cJSON_Delete(object);
	return 0;
}

int cli_object_call(struct client *client, enum client_method method, const struct kind *kind, const char *namespace,
                    const char *name, const char *query, const cJSON *body, cJSON **ret_object, struct error *err)
{
	cleanup_free char *path = kinds_path(kind, kind->namespaced ? namespace : NULL, name);
	cleanup_free char *full = query ? xasprintf("%s?%s", path, query) : NULL;
	int r = cli_call(client, method, full ? full : path, body, ret_object, err);
	if (r == -ENOENT && strstr(err ? err->message : "", "(NotFound)")) {
		char resource[KINDS_NAME_MAX];
		kinds_resource(kind, resource, sizeof(resource));
		error_set(err, ENOENT, "%s (NotFound): %s \"%s\" not found", CLI_SERVER_PREFIX, resource, name);
	}
	return r;
}

void cli_query(struct buffer *path, const char *key, const char *value)
{
	buffer_append_string(path, path->data && strchr(path->data, '?') ? "&" : "?");
	buffer_append_string(path, key);
	buffer_append_string(path, "=");
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if (isalnum(*p) || strchr("-_.~,!()", *p))
			buffer_append(path, p, 1);
		else
			buffer_printf(path, "%%%02X", *p);
	}
}

int cli_list(struct client *client, const struct kind *kind, const char *namespace, const char *labels,
             const char *fields, cJSON *items, char **ret_revision, struct error *err)
{
	cleanup_free char *collection = kinds_path(kind, namespace, NULL);
	char *token = NULL, *revision = NULL;
	int r = 0;
	do {
		struct buffer path = BUFFER_INIT;
		buffer_append_string(&path, collection);
		char limit[16];
		snprintf(limit, sizeof(limit), "%d", CLI_LIST_PAGE);
		cli_query(&path, "limit", limit);
		if (labels && labels[0])
			cli_query(&path, "labelSelector", labels);
		if (fields && fields[0])
			cli_query(&path, "fieldSelector", fields);
		if (token)
			cli_query(&path, "continue", token);
		free(token);
		token = NULL;
		cJSON *list = NULL;
		r = cli_call(client, CLIENT_GET, path.data, NULL, &list, err);
		buffer_free(&path);
		if (r < 0)
			break;
		cJSON *page = cJSON_DetachItemFromObjectCaseSensitive(list, "items");
		const char *next = object_string_at(list, "metadata.continue");
		token = next && next[0] ? xstrdup(next) : NULL;
		const char *rv = object_string_at(list, "metadata.resourceVersion");
		if (!revision && rv)
			revision = xstrdup(rv);
		cJSON_Delete(list);
		if (!cJSON_IsArray(page)) {
			cJSON_Delete(page);
			r = error_set(err, EBADMSG, "the server's list of %s has no items", collection);
			break;
		}
		cJSON *object;
		while ((object = page->child)) {
			cJSON_DetachItemViaPointer(page, object);
			cJSON_AddItemToArray(items, object);
		}
		cJSON_Delete(page);
		if (cJSON_GetArraySize(items) > CLI_MAX_OBJECTS) {
			r = error_set(err, E2BIG,
			              "more than %d objects: narrow the list with -l, --field-selector or -n",
			              CLI_MAX_OBJECTS);
			break;
		}
	} while (token);
	free(token);
	if (r == 0 && ret_revision)
		*ret_revision = steal_pointer(&revision);
	free(revision);
	return r;
}

/* --- following one object ---------------------------------------------------------------------- */

struct follow_state {
	cli_follow_fn fn;
	void *data;
	int result;   /* fn's, once non-zero */
	bool recheck; /* the news did not fit a notification: GET the object */
	int code;     /* an error answer's */
};

static int follow_news(int code, const char *body, size_t length, void *data)
{
	struct follow_state *s = data;
	if (code == 404)
		return s->result = s->fn(NULL, s->data);
	if (code >= 400) {
		s->code = code;
		return -EIO;
	}
	cJSON *news = cJSON_ParseWithLength(body, length);
	if (!cJSON_IsObject(news)) {
		cJSON_Delete(news);
		s->recheck = true;
		return 1;
	}
	const char *kind = object_string_at(news, "kind");
	if (kind && strcmp(kind, "WatchEvents") == 0) {
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(news, "truncated")))
			s->recheck = true;
		const cJSON *event;
		cJSON_ArrayForEach(event, cJSON_GetObjectItemCaseSensitive(news, "events"))
		{
			const char *type = object_string_at(event, "type");
			const cJSON *object = cJSON_GetObjectItemCaseSensitive(event, "object");
			bool deleted = type && strcmp(type, "DELETED") == 0;
			if (!s->recheck && (s->result = s->fn(deleted ? NULL : object, s->data)) != 0)
				break;
		}
	} else {
		s->result = s->fn(news, s->data);
	}
	cJSON_Delete(news);
	return s->result != 0 || s->recheck ? 1 : 0;
}

int cli_follow(struct client *client, const struct kind *kind, const char *namespace, const char *name,
               uint64_t deadline_ms, cli_follow_fn fn, void *data, struct error *err)
{
	cleanup_free char *base = kinds_path(kind, kind->namespaced ? namespace : NULL, name);
	char resource[KINDS_NAME_MAX];
	kinds_resource(kind, resource, sizeof(resource));
	/* After the first look at the object the watch starts from its resourceVersion: the
	 * registration then answers with the (few) events since, not the whole object, which
	 * may not fit a datagram and would come back as "truncated" every time. */
	char revision[32] = "";
	for (;;) {
		cleanup_free char *path =
		        revision[0] ? xasprintf("%s?resourceVersion=%s", base, revision) : xstrdup(base);
		int timeout = -1;
		if (deadline_ms) {
			uint64_t now = clock_monotonic_ms();
			if (now >= deadline_ms)
				break;
			timeout = (int)(deadline_ms - now);
		}
		struct follow_state state = { fn, data, 0, false, 0 };
		int r = client_watch(client, path, timeout, follow_news, &state, err);
		if (state.result != 0)
			return state.result;
		bool gone_or_expired = r == -EIO && (state.code == 404 || state.code == 410);
		if (gone_or_expired)
			r = 0; /* the object went away, or the revision is too old: look at it again */
		if (r == -EIO && state.code)
			return error_set(err, EIO, "watching %s \"%s\" failed: the server answered %d.%02d", resource,
			                 name, state.code / 100, state.code % 100);
		if (r < 0)
			return r;
		/* The watch ended without a verdict: its time ran out, the server ended it, or the
		 * news did not fit. Look at the object itself, then watch again. */
		cJSON *object = NULL;
		r = cli_object_call(client, CLIENT_GET, kind, namespace, name, NULL, NULL, &object, err);
		if (r < 0 && r != -ENOENT)
			return r;
		const char *rv = object_string_at(object, "metadata.resourceVersion");
		snprintf(revision, sizeof(revision), "%s", rv ? rv : "");
		r = fn(object, data);
		cJSON_Delete(object);
		if (r != 0)
			return r;
		if (!state.recheck && timeout < 0)
			nanosleep(&(struct timespec){ 0, 200 * 1000 * 1000 }, NULL); /* the server ends our watches */
	}
	return error_set(err, ETIMEDOUT, "timed out waiting for the condition on %s/%s", resource, name);
}

struct deletion {
	const char *uid;
};

static int gone(const cJSON *object, void *data)
{
	const struct deletion *d = data;
	if (!object)
		return 1;
	const char *uid = object_string_at(object, "metadata.uid");
	return d->uid && uid && strcmp(uid, d->uid) != 0; /* another object in its place */
}

int cli_wait_deleted(struct client *client, const struct kind *kind, const char *namespace, const char *name,
                     const char *uid, uint64_t deadline_ms, struct error *err)
{
	struct deletion d = { uid };
	int r = cli_follow(client, kind, namespace, name, deadline_ms, gone, &d, err);
	return r > 0 ? 0 : r;
}

/* --- progress ----------------------------------------------------------------------------------- */

static bool progress_shown;

bool cli_interactive(void)
{
	return isatty(STDERR_FILENO) == 1;
}

void cli_progress(const char *fmt, ...)
{
	if (!cli_interactive())
		return;
	va_list ap;
	va_start(ap, fmt);
	fputs("\r\033[K", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fflush(stderr);
	progress_shown = true;
}

void cli_progress_end(void)
{
	if (!progress_shown)
		return;
	fputs("\r\033[K", stderr);
	fflush(stderr);
	progress_shown = false;
}

/* --- manifests ---------------------------------------------------------------------------------- */

int cli_files_add(struct cli_files *files, const char *path, struct error *err)
{
	if (files->count >= CLI_MAX_FILES)
		return error_set(err, E2BIG, "at most %d -f options", CLI_MAX_FILES);
	if (!path[0])
		return error_set(err, EINVAL, "-f needs a file, a directory or - (standard input)");
	files->paths[files->count++] = path;
	return 0;
}

int cli_files_read(const struct cli_files *files, struct manifest *ret_manifest, struct error *err)
{
	for (size_t i = 0; i < files->count; i++) {
		int r = manifest_read(files->paths[i], ret_manifest, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int cli_document_target(const struct manifest_document *d, const char *namespace_flag, struct cli_target *ret_target,
                        struct error *err)
{
	const char *api_version = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d->object, "apiVersion"));
	const char *kind_name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d->object, "kind"));
	const struct kind *kind = kind_lookup(api_version, kind_name);
	if (!kind) {
		const struct kind *other = NULL;
		for (size_t i = 0; i < kind_count() && !other; i++)
			if (strcmp(kind_at(i)->name, kind_name) == 0)
				other = kind_at(i);
		if (other)
			return error_set(
			        err, ENOENT,
			        "%s: document %d: no matches for kind \"%s\" in version \"%s\" (Bramble serves "
			        "%s as %s)",
			        d->source, d->index, kind_name, api_version, kind_name, other->api_version);
		return error_set(err, ENOENT,
		                 "%s: document %d: no matches for kind \"%s\" in version \"%s\" (Bramble does not "
		                 "serve it)",
		                 d->source, d->index, kind_name, api_version);
	}
	const char *name = object_name(d->object);
	if (!name || !name[0])
		return error_set(err, EINVAL, "%s: document %d: metadata.name: Required value", d->source, d->index);
	const char *namespace = NULL;
	if (kind->namespaced) {
		const char *own = object_namespace(d->object);
		if (own && namespace_flag && strcmp(own, namespace_flag) != 0)
			return error_set(
			        err, EINVAL,
			        "%s: document %d: the namespace from the provided object \"%s\" does not match "
			        "the namespace \"%s\". You must pass '--namespace=%s' to perform this "
			        "operation.",
			        d->source, d->index, own, namespace_flag, own);
		namespace = own ? own : namespace_flag ? namespace_flag : "default";
	}
	*ret_target = (struct cli_target){ kind, namespace, name };
	return 0;
}

/* --- formats ------------------------------------------------------------------------------------ */

int cli_parse_duration(const char *text, int64_t *ret_ms, struct error *err)
{
	const char *p = text;
	bool bare = *p != '\0';
	for (const char *q = p; *q; q++)
		bare = bare && isdigit((unsigned char)*q);
	int64_t total = 0;
	if (!*p)
		goto invalid;
	while (*p) {
		if (!isdigit((unsigned char)*p))
			goto invalid;
		char *end;
		errno = 0;
		long long n = strtoll(p, &end, 10);
		if (errno || n > 100000000)
			return error_set(err, ERANGE, "duration \"%s\" is too long", text);
		p = end;
		int64_t scale;
		if (bare)
			scale = 1000;
		else if (strncmp(p, "ms", 2) == 0)
			scale = 1, p += 2;
		else if (*p == 's')
			scale = 1000, p++;
		else if (*p == 'm')
			scale = 60000, p++;
		else if (*p == 'h')
			scale = 3600000, p++;
		else
			goto invalid;
		total += n * scale;
	}
	*ret_ms = total;
	return 0;
invalid:
	return error_set(err, EINVAL, "invalid duration \"%s\": use 30s, 5m, 1h30m", text);
}

void cli_human_duration(long long seconds, char *buf, size_t size)
{
	if (seconds < 0)
		seconds = 0;
	long long minutes = seconds / 60, hours = seconds / 3600, days = hours / 24;
	if (seconds < 120)
		snprintf(buf, size, "%llds", seconds);
	else if (minutes < 10 && seconds % 60)
		snprintf(buf, size, "%lldm%llds", minutes, seconds % 60);
	else if (minutes < 180)
		snprintf(buf, size, "%lldm", minutes);
	else if (hours < 8 && minutes % 60)
		snprintf(buf, size, "%lldh%lldm", hours, minutes % 60);
	else if (hours < 48)
		snprintf(buf, size, "%lldh", hours);
	else if (hours < 192 && hours % 24)
		snprintf(buf, size, "%lldd%lldh", days, hours % 24);
	else if (days < 365 * 2)
		snprintf(buf, size, "%lldd", days);
	else if (days < 365 * 8 && days % 365)
		snprintf(buf, size, "%lldy%lldd", days / 365, days % 365);
	else
		snprintf(buf, size, "%lldy", days / 365);
}

void cli_age(const char *timestamp, time_t now, char *buf, size_t size)
{
	time_t t;
	if (!timestamp || !timestamp[0] || clock_parse_rfc3339(timestamp, &t) < 0) {
		snprintf(buf, size, "<unknown>");
		return;
	}
	cli_human_duration((long long)(now - t), buf, size);
}

void cli_time(const char *timestamp, char *buf, size_t size)
{
	time_t t;
	struct tm tm;
	if (!timestamp || !timestamp[0] || clock_parse_rfc3339(timestamp, &t) < 0 || !localtime_r(&t, &tm) ||
	    !strftime(buf, size, "%a, %d %b %Y %H:%M:%S %z", &tm))
		snprintf(buf, size, "%s", timestamp && timestamp[0] ? timestamp : "<unset>");
}

static int compare_keys(const void *a, const void *b)
{
	return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

void cli_format_map(const cJSON *map, const char *separator, struct buffer *out)
{
	size_t n = 0;
	const cJSON *item;
	cJSON_ArrayForEach(item, map) n++;
	if (!cJSON_IsObject(map) || n == 0) {
		buffer_append_string(out, "<none>");
		return;
	}
	const cJSON **sorted = xcalloc(n, sizeof(*sorted));
	n = 0;
	cJSON_ArrayForEach(item, map) sorted[n++] = item;
	qsort(sorted, n, sizeof(*sorted), compare_keys);
	for (size_t i = 0; i < n; i++) {
		const char *value = cJSON_IsString(sorted[i]) ? sorted[i]->valuestring : "";
		buffer_printf(out, "%s%s=%s", i ? separator : "", sorted[i]->string, value);
	}
	free(sorted);
}

void cli_write_json(const cJSON *item, int indent, struct buffer *out)
{
	if (cJSON_IsObject(item) || cJSON_IsArray(item)) {
		bool object = cJSON_IsObject(item);
		if (!item->child) {
			buffer_append_string(out, object ? "{}" : "[]");
			return;
		}
		buffer_append_string(out, object ? "{\n" : "[\n");
		for (const cJSON *child = item->child; child; child = child->next) {
			buffer_printf(out, "%*s", indent + 4, "");
			if (object) {
				buffer_append_json_string(out, child->string);
				buffer_append_string(out, ": ");
			}
			cli_write_json(child, indent + 4, out);
			buffer_append_string(out, child->next ? ",\n" : "\n");
		}
		buffer_printf(out, "%*s%s", indent, "", object ? "}" : "]");
		return;
	}
	char *text = cJSON_PrintUnformatted(item);
	buffer_append_string(out, text);
	free(text);
}

const cJSON *cli_item(const cJSON *object, const char *dotted_path)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", dotted_path);
	const cJSON *item = object;
	for (char *save = NULL, *part = strtok_r(buf, ".", &save); part && item; part = strtok_r(NULL, ".", &save))
		item = cJSON_GetObjectItemCaseSensitive(item, part);
	return item;
}

const char *cli_string(const cJSON *object, const char *dotted_path)
{
	const char *s = cJSON_GetStringValue(cli_item(object, dotted_path));
	return s ? s : "";
}

long long cli_number(const cJSON *object, const char *dotted_path)
{
	const cJSON *item = cli_item(object, dotted_path);
	return cJSON_IsNumber(item) ? (long long)item->valuedouble : 0;
}

const cJSON *cli_controller_of(const cJSON *object)
{
	const cJSON *reference;
	cJSON_ArrayForEach(reference, cli_item(object, "metadata.ownerReferences"))
	{
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reference, "controller")))
			return reference;
	}
	return NULL;
}
