/* Kind names and paths for the client verbs (see tools/kinds.h). */
#include "tools/kinds.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/object.h"
#include "platform/buffer.h"
#include "platform/error.h"
#include "platform/memory.h"

/* kubectl's short names for the kinds Bramble serves. */
static const struct {
	const char *alias;
	const char *resource;
} short_names[] = {
	{ "po", "pods" },
	{ "deploy", "deployments" },
	{ "svc", "services" },
	{ "cm", "configmaps" },
	{ "ns", "namespaces" },
	{ "no", "nodes" },
	{ "ds", "daemonsets" },
	{ "rs", "replicasets" },
	{ "ep", "endpoints" },
	{ "ev", "events" },
	{ "hpa", "horizontalpodautoscalers" },
};

static void lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

const struct kind *kinds_resolve(const char *name)
{
	char want[KINDS_NAME_MAX], group[KINDS_NAME_MAX] = "";
	if (!name || !name[0] || strlen(name) >= sizeof(want))
		return NULL;
	snprintf(want, sizeof(want), "%s", name);
	lower(want);
	char *dot = strchr(want, '.');
	if (dot) { /* "deployments.apps", "deploy.apps" */
		snprintf(group, sizeof(group), "%s", dot + 1);
		*dot = '\0';
	}
	for (size_t i = 0; i < ARRAY_SIZE(short_names); i++)
		if (strcmp(want, short_names[i].alias) == 0)
			snprintf(want, sizeof(want), "%s", short_names[i].resource);
	for (size_t i = 0; i < kind_count(); i++) {
		const struct kind *k = kind_at(i);
		if (dot && strcmp(group, k->group) != 0)
			continue;
		char singular[KINDS_NAME_MAX];
		snprintf(singular, sizeof(singular), "%s", k->name);
		lower(singular);
		if (strcmp(want, k->resource) == 0 || strcmp(want, singular) == 0)
			return k;
	}
	return NULL;
}

char *kinds_path(const struct kind *kind, const char *namespace, const char *name)
{
	struct buffer b = BUFFER_INIT;
	if (kind->group[0])
		buffer_printf(&b, "/apis/%s", kind->api_version);
	else
		buffer_printf(&b, "/api/%s", kind->version);
	if (kind->namespaced && namespace)
		buffer_printf(&b, "/namespaces/%s", namespace);
	buffer_printf(&b, "/%s", kind->resource);
	if (name)
		buffer_printf(&b, "/%s", name);
	return buffer_steal(&b);
}

void kinds_resource(const struct kind *kind, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s%s", kind->resource, kind->group[0] ? "." : "", kind->group);
}

void kinds_type(const struct kind *kind, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s%s", kind->name, kind->group[0] ? "." : "", kind->group);
	for (char *p = buf; *p && *p != '.'; p++)
		*p = (char)tolower((unsigned char)*p);
}

static int unknown_kind(struct error *err, const char *name, size_t length)
{
	return error_set(err, ENOENT, "the server doesn't have a resource type \"%.*s\"", (int)length, name);
}

int kinds_select(int argc, char **argv, struct kinds_selection *ret_selection, struct error *err)
{
	struct kinds_selection *s = ret_selection;
	memset(s, 0, sizeof(*s));
	if (argc < 1)
		return error_set(err, EINVAL, "you must specify the type of resource (pods, deployments, svc, cm ...)");
	bool slashed = strchr(argv[0], '/') != NULL;
	if (!slashed) {
		s->kind = kinds_resolve(argv[0]);
		if (!s->kind)
			return unknown_kind(err, argv[0], strlen(argv[0]));
	}
	for (int i = slashed ? 0 : 1; i < argc; i++) {
		const char *arg = argv[i], *slash = strchr(arg, '/');
		if (s->count >= KINDS_MAX_ARGUMENTS)
			return error_set(err, EINVAL, "more than %d names", KINDS_MAX_ARGUMENTS);
		if (!slashed && slash)
			return error_set(err, EINVAL,
			                 "there is no need to specify a resource type as a separate argument when "
			                 "passing arguments in resource/name form (e.g. 'bramble get %s' instead of "
			                 "'bramble get %s %s')",
			                 arg, argv[0], arg);
		if (slashed && !slash)
			return error_set(err, EINVAL,
			                 "arguments in resource/name form must have a single resource and name");
		if (!slash) {
			if (!arg[0])
				return error_set(err, EINVAL, "a resource name may not be empty");
			s->kinds[s->count] = s->kind;
			s->names[s->count++] = arg;
			continue;
		}
		const char *name = slash + 1;
		if (slash == arg || !name[0] || strchr(name, '/'))
			return error_set(err, EINVAL,
			                 "arguments in resource/name form must have a single resource and name");
		char type[KINDS_NAME_MAX];
		if ((size_t)(slash - arg) >= sizeof(type))
			return unknown_kind(err, arg, (size_t)(slash - arg));
		snprintf(type, sizeof(type), "%.*s", (int)(slash - arg), arg);
		const struct kind *kind = kinds_resolve(type);
		if (!kind)
			return unknown_kind(err, arg, (size_t)(slash - arg));
		s->kinds[s->count] = kind;
		s->names[s->count++] = name;
	}
	return 0;
}
