/* See podspec.h. Stateless but for the volume directories it writes. */
#include "agent/podspec.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/images.h"
#include "core/object.h"
#include "core/scheduler.h"
#include "drivers/runtime.h"
#include "platform/cgroups.h"
#include "platform/error.h"
#include "platform/file.h"
#include "platform/memory.h"

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define VOLUME_FILE_MAX (1024 * 1024)

/* --- string vectors -------------------------------------------------------------------- */

struct strv {
	char **items;
	size_t count, size;
};

static void strv_add(struct strv *v, char *owned)
{
	if (v->count + 2 > v->size) {
		v->size = v->size ? v->size * 2 : 16;
		v->items = xrealloc(v->items, v->size * sizeof(*v->items));
	}
	v->items[v->count++] = owned;
	v->items[v->count] = NULL;
}

/* NAME=value replacing an earlier NAME. */
static void env_set(struct strv *v, const char *name, size_t name_len, const char *value, size_t value_len)
{
	char *entry = xasprintf("%.*s=%.*s", (int)name_len, name, (int)value_len, value);
	for (size_t i = 0; i < v->count; i++) {
		if (strncmp(v->items[i], entry, name_len + 1) == 0) {
			free(v->items[i]);
			v->items[i] = entry;
			return;
		}
	}
	strv_add(v, entry);
}

void podspec_strv_free(char **strv)
{
	for (char **p = strv; p && *p; p++)
		free(*p);
	free(strv);
}

static char **strv_finish(struct strv *v)
{
	if (!v->items)
		v->items = xcalloc(1, sizeof(char *));
	return v->items;
}

static void strv_clear(struct strv *v)
{
	podspec_strv_free(v->items);
	memset(v, 0, sizeof(*v));
}

/* --- command ----------------------------------------------------------------------------- */

static int add_strings(struct strv *v, const cJSON *array, const char *where, const char *field, struct error *err)
{
	const cJSON *item;
	size_t i = 0;
	cJSON_ArrayForEach(item, array)
	{
		if (!cJSON_IsString(item))
			return error_set(err, EINVAL, "%s.%s[%zu]: must be a string", where, field, i);
		strv_add(v, xstrdup(item->valuestring));
		i++;
	}
	return 0;
}

int podspec_command(const cJSON *container, const struct images_image *image, const char *where, char ***ret_argv,
                    struct error *err)
{
	struct strv v = { 0 };
	const cJSON *command = cJSON_GetObjectItemCaseSensitive(container, "command");
	const cJSON *args = cJSON_GetObjectItemCaseSensitive(container, "args");
	int r = 0;
	if (cJSON_GetArraySize(command) > 0) {
		r = add_strings(&v, command, where, "command", err);
	} else if (image) {
		for (char **p = image->entrypoint; p && *p; p++)
			strv_add(&v, xstrdup(*p));
	}
	if (r == 0 && cJSON_GetArraySize(args) > 0)
		r = add_strings(&v, args, where, "args", err);
	else if (r == 0 && cJSON_GetArraySize(command) == 0 && image)
		for (char **p = image->cmd; p && *p; p++)
			strv_add(&v, xstrdup(*p));
	if (r == 0 && v.count == 0)
		r = error_set(err, EINVAL,
		              "%s: no command: the image has no Entrypoint or Cmd and the container gives no "
		              "command",
		              where);
	if (r < 0) {
		strv_clear(&v);
		return r;
	}
	*ret_argv = strv_finish(&v);
	return 0;
}

/* --- environment ------------------------------------------------------------------------- */

static int base64_value(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes standard base64 (padding optional); NULL when it is not base64. */
static char *base64_decode(const char *s, size_t *ret_length)
{
	size_t n = strlen(s);
	char *out = xmalloc(n / 4 * 3 + 4);
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '=')
			break;
		int v = base64_value((unsigned char)s[i]);
		if (v < 0) {
			free(out);
			return NULL;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	*ret_length = o;
	return out;
}

/* The value of key in a ConfigMap (data, binaryData) or Secret (data base64, stringData);
 * NULL when absent. */
static char *config_value(const cJSON *object, bool secret, const char *key, size_t *ret_length)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(object, "data"), key);
	if (cJSON_IsString(v)) {
		if (secret)
			return base64_decode(v->valuestring, ret_length);
		*ret_length = strlen(v->valuestring);
		return xstrdup(v->valuestring);
	}
	v = cJSON_GetObjectItemCaseSensitive(
	        cJSON_GetObjectItemCaseSensitive(object, secret ? "stringData" : "binaryData"), key);
	if (!cJSON_IsString(v))
		return NULL;
	if (!secret)
		return base64_decode(v->valuestring, ret_length);
	*ret_length = strlen(v->valuestring);
	return xstrdup(v->valuestring);
}

static const cJSON *config_object(const cJSON *config, bool secret, const char *name)
{
	return cJSON_GetObjectItemCaseSensitive(
	        cJSON_GetObjectItemCaseSensitive(config, secret ? "secrets" : "configmaps"), name);
}

static bool is_optional(const cJSON *ref)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ref, "optional"));
}

/* envFrom: every key of a ConfigMap or Secret, with an optional prefix. */
static int add_env_from(struct strv *v, const cJSON *container, const cJSON *config, const char *where,
                        struct error *err)
{
	const cJSON *source;
	size_t i = 0;
	cJSON_ArrayForEach(source, cJSON_GetObjectItemCaseSensitive(container, "envFrom"))
	{
		const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(source, "prefix");
		for (int secret = 0; secret < 2; secret++) {
			const cJSON *ref =
			        cJSON_GetObjectItemCaseSensitive(source, secret ? "secretRef" : "configMapRef");
			const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "name"));
			if (!ref || !name)
				continue;
			const cJSON *object = config_object(config, secret, name);
			if (!object) {
				if (is_optional(ref))
					continue;
				return error_set(err, ENOENT, "%s.envFrom[%zu]: %s \"%s\" not found", where, i,
				                 secret ? "secret" : "configmap", name);
			}
			const char *maps[] = { "data", secret ? "stringData" : "binaryData" };
			for (size_t m = 0; m < 2; m++) {
				const cJSON *item;
				cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(object, maps[m]))
				{
					size_t length;
					cleanup_free char *value = config_value(object, secret, item->string, &length);
					if (!value)
						continue;
					cleanup_free char *key =
					        xasprintf("%s%s", cJSON_IsString(prefix) ? prefix->valuestring : "",
					                  item->string);
					env_set(v, key, strlen(key), value, length);
				}
			}
		}
		i++;
	}
	return 0;
}

static const char *field_ref_value(const cJSON *pod, const char *path, const char *pod_ip, const char *host_ip)
{
	if (strcmp(path, "status.podIP") == 0)
		return pod_ip ? pod_ip : "";
	if (strcmp(path, "status.hostIP") == 0)
		return host_ip ? host_ip : "";
	static const char *const allowed[] = { "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
		                               "spec.serviceAccountName" };
	for (size_t i = 0; i < ARRAY_SIZE(allowed); i++)
		if (strcmp(path, allowed[i]) == 0) {
			const char *v = object_string_at(pod, path);
			return v ? v : "";
		}
	return NULL;
}

static int add_env(struct strv *v, const cJSON *pod, const cJSON *container, const cJSON *config, const char *pod_ip,
                   const char *host_ip, const char *where, struct error *err)
{
	const cJSON *item;
	size_t i = 0;
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(container, "env"))
	{
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "name"));
		if (!name || !name[0])
			return error_set(err, EINVAL, "%s.env[%zu].name: Required value", where, i);
		const cJSON *value = cJSON_GetObjectItemCaseSensitive(item, "value");
		const cJSON *from = cJSON_GetObjectItemCaseSensitive(item, "valueFrom");
		if (cJSON_IsString(value) || !from) {
			const char *text = cJSON_IsString(value) ? value->valuestring : "";
			env_set(v, name, strlen(name), text, strlen(text));
			i++;
			continue;
		}
		const cJSON *field = cJSON_GetObjectItemCaseSensitive(from, "fieldRef");
		if (field) {
			const char *path = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(field, "fieldPath"));
			const char *text = path ? field_ref_value(pod, path, pod_ip, host_ip) : NULL;
			if (!text)
				return error_set(err, EINVAL,
				                 "%s.env[%zu].valueFrom.fieldRef.fieldPath: Unsupported value: \"%s\"",
				                 where, i, path ? path : "");
			env_set(v, name, strlen(name), text, strlen(text));
			i++;
			continue;
		}
		const cJSON *resource = cJSON_GetObjectItemCaseSensitive(from, "resourceFieldRef");
		if (resource) {
			const char *what = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(resource, "resource"));
			const char *dot = what ? strchr(what, '.') : NULL;
			const cJSON *section = dot ? cJSON_GetObjectItemCaseSensitive(
			                                     cJSON_GetObjectItemCaseSensitive(container, "resources"),
			                                     strncmp(what, "limits", 6) == 0 ? "limits" : "requests")
			                           : NULL;
			const char *q =
			        section ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(section, dot + 1))
			                : NULL;
			int64_t n = 0;
			bool cpu = dot && strcmp(dot + 1, "cpu") == 0;
			if (q && scheduler_parse_quantity(q, cpu ? 3 : 0, &n) < 0)
				q = NULL;
			char text[32];
			/* As the kubelet: cpu in whole cores rounded up, memory in bytes. */
			snprintf(text, sizeof(text), "%lld", (long long)(cpu ? (n + 999) / 1000 : n));
			if (!q)
				snprintf(text, sizeof(text), "0");
			env_set(v, name, strlen(name), text, strlen(text));
			i++;
			continue;
		}
		for (int secret = 0; secret < 2; secret++) {
			const cJSON *ref =
			        cJSON_GetObjectItemCaseSensitive(from, secret ? "secretKeyRef" : "configMapKeyRef");
			if (!ref)
				continue;
			const char *ref_name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "name"));
			const char *key = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "key"));
			const char *kind = secret ? "secret" : "configmap";
			const char *field_name = secret ? "secretKeyRef" : "configMapKeyRef";
			if (!ref_name || !key)
				return error_set(err, EINVAL, "%s.env[%zu].valueFrom.%s: name and key are required",
				                 where, i, field_name);
			const cJSON *object = config_object(config, secret, ref_name);
			size_t length = 0;
			cleanup_free char *text = object ? config_value(object, secret, key, &length) : NULL;
			if (!text) {
				if (is_optional(ref))
					break;
				if (!object)
					return error_set(err, ENOENT, "%s.env[%zu].valueFrom.%s: %s \"%s\" not found",
					                 where, i, field_name, kind, ref_name);
				return error_set(err, ENOENT,
				                 "%s.env[%zu].valueFrom.%s: couldn't find key %s in %s %s/%s", where, i,
				                 field_name, key, kind, object_namespace(object), ref_name);
			}
			env_set(v, name, strlen(name), text, length);
			break;
		}
		i++;
	}
	return 0;
}

int podspec_env(const cJSON *pod, const cJSON *container, const struct images_image *image, const cJSON *config,
                const char *pod_ip, const char *host_ip, const char *where, char ***ret_env, struct error *err)
{
	struct strv v = { 0 };
	bool has_path = false;
	for (char **p = image ? image->env : NULL; p && *p; p++) {
		const char *eq = strchr(*p, '=');
		if (!eq)
			continue;
		has_path = has_path || strncmp(*p, "PATH=", 5) == 0;
		env_set(&v, *p, (size_t)(eq - *p), eq + 1, strlen(eq + 1));
	}
	if (!has_path)
		strv_add(&v, xstrdup(DEFAULT_PATH));
	const char *hostname = object_name(pod);
	if (cJSON_IsTrue(
	            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod, "spec"), "hostNetwork")))
		hostname = NULL; /* the board's own, as the kubelet leaves it */
	if (hostname)
		env_set(&v, "HOSTNAME", 8, hostname, strlen(hostname));
	int r = add_env_from(&v, container, config, where, err);
	if (r == 0)
		r = add_env(&v, pod, container, config, pod_ip, host_ip, where, err);
	if (r < 0) {
		strv_clear(&v);
		return r;
	}
	*ret_env = strv_finish(&v);
	return 0;
}

/* --- user, security ------------------------------------------------------------------- */

static bool number_at(const cJSON *object, const char *key, long long *ret)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(object, key);
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > UINT_MAX - 1)
		return false;
	*ret = (long long)v->valuedouble;
	return true;
}

int podspec_user(const cJSON *pod, const cJSON *container, const struct images_image *image, const char *where,
                 uid_t *ret_uid, gid_t *ret_gid, struct error *err)
{
	const cJSON *contexts[] = {
		cJSON_GetObjectItemCaseSensitive(container, "securityContext"),
		cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod, "spec"), "securityContext"),
	};
	uid_t uid = 0;
	gid_t gid = 0;
	bool have_uid = false, have_gid = false;
	if (image && image->user && image->user[0]) {
		char *end;
		unsigned long u = strtoul(image->user, &end, 10);
		if (end != image->user && (*end == '\0' || *end == ':')) {
			uid = (uid_t)u;
			gid = *end == ':' ? (gid_t)strtoul(end + 1, NULL, 10) : (gid_t)u;
		} else if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(contexts[0], "runAsUser")) &&
		           !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(contexts[1], "runAsUser"))) {
			return error_set(err, ENOTSUP,
			                 "%s: the image's User \"%s\" is a name: set securityContext.runAsUser", where,
			                 image->user);
		}
	}
	for (size_t i = 0; i < 2; i++) {
		long long n;
		if (!have_uid && number_at(contexts[i], "runAsUser", &n)) {
			uid = (uid_t)n;
			have_uid = true;
			if (!have_gid)
				gid = (gid_t)n;
		}
		if (!have_gid && number_at(contexts[i], "runAsGroup", &n)) {
			gid = (gid_t)n;
			have_gid = true;
		}
	}
	*ret_uid = uid;
	*ret_gid = gid;
	return 0;
}

static int capability_mask(const cJSON *names, const char *where, const char *list, uint64_t *ret, struct error *err)
{
	const cJSON *item;
	uint64_t mask = 0;
	cJSON_ArrayForEach(item, names)
	{
		const char *name = cJSON_GetStringValue(item);
		if (name && strcmp(name, "ALL") == 0) {
			mask = ~0ULL;
			continue;
		}
		int bit = name ? runtime_capability_from_name(name) : -EINVAL;
		if (bit < 0)
			return error_set(err, EINVAL, "%s.securityContext.capabilities.%s: unknown capability \"%s\"",
			                 where, list, name ? name : "");
		mask |= 1ULL << bit;
	}
	*ret = mask;
	return 0;
}

int podspec_security(const cJSON *container, const char *where, uint64_t *ret_add, uint64_t *ret_drop,
                     bool *ret_read_only_root, struct error *err)
{
	const cJSON *context = cJSON_GetObjectItemCaseSensitive(container, "securityContext");
	*ret_add = *ret_drop = 0;
	*ret_read_only_root = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(context, "readOnlyRootFilesystem"));
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(context, "privileged")))
		return error_set(err, ENOTSUP,
		                 "%s.securityContext.privileged: privileged containers are not supported: add "
		                 "the capabilities the container needs",
		                 where);
	const cJSON *caps = cJSON_GetObjectItemCaseSensitive(context, "capabilities");
	int r = capability_mask(cJSON_GetObjectItemCaseSensitive(caps, "add"), where, "add", ret_add, err);
	if (r == 0)
		r = capability_mask(cJSON_GetObjectItemCaseSensitive(caps, "drop"), where, "drop", ret_drop, err);
	return r;
}

int podspec_limits(const cJSON *container, const char *where, struct cgroups_limits *ret_limits, struct error *err)
{
	memset(ret_limits, 0, sizeof(*ret_limits));
	const cJSON *resources = cJSON_GetObjectItemCaseSensitive(container, "resources");
	const cJSON *requests = cJSON_GetObjectItemCaseSensitive(resources, "requests");
	const cJSON *limits = cJSON_GetObjectItemCaseSensitive(resources, "limits");
	struct {
		const cJSON *section;
		const char *section_name, *name;
		int scale;
	} fields[] = { { requests, "requests", "cpu", 3 }, /* scheduler_parse_quantity: 10^-scale units */
		       { limits, "limits", "cpu", 3 },
		       { limits, "limits", "memory", 0 } };
	int64_t values[3] = { 0, 0, 0 };
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		const cJSON *q = cJSON_GetObjectItemCaseSensitive(fields[i].section, fields[i].name);
		if (!q)
			continue;
		char text[64];
		if (cJSON_IsNumber(q))
			snprintf(text, sizeof(text), "%.17g", q->valuedouble);
		else
			snprintf(text, sizeof(text), "%s", cJSON_IsString(q) ? q->valuestring : "?");
		if (scheduler_parse_quantity(text, fields[i].scale, &values[i]) < 0 || values[i] < 0)
			return error_set(err, EINVAL, "%s.resources.%s.%s: quantity \"%s\" is not valid", where,
			                 fields[i].section_name, fields[i].name, text);
	}
	/* As Kubernetes: a limit without a request requests the limit. */
	int64_t request = values[0] ? values[0] : values[1];
	ret_limits->cpu_request_millicores = (uint32_t)(request > UINT32_MAX ? UINT32_MAX : request);
	ret_limits->cpu_limit_millicores = (uint32_t)(values[1] > UINT32_MAX ? UINT32_MAX : values[1]);
	ret_limits->memory_limit_bytes = (uint64_t)values[2];
	if (ret_limits->memory_limit_bytes && ret_limits->memory_limit_bytes < CGROUPS_MEMORY_MIN)
		return error_set(err, EINVAL,
		                 "%s.resources.limits.memory: %llu bytes is below the smallest limit that can run "
		                 "anything (1Mi)",
		                 where, (unsigned long long)ret_limits->memory_limit_bytes);
	return 0;
}

/* --- config references ------------------------------------------------------------------- */

static void add_ref(cJSON *refs, bool secret, const char *name)
{
	cJSON *list = cJSON_GetObjectItemCaseSensitive(refs, secret ? "secrets" : "configmaps");
	const cJSON *item;
	cJSON_ArrayForEach(item, list)
	{
		if (strcmp(item->valuestring, name) == 0)
			return;
	}
	cJSON_AddItemToArray(list, cJSON_CreateString(name));
}

cJSON *podspec_config_refs(const cJSON *pod)
{
	cJSON *refs = cJSON_CreateObject();
	cJSON_AddArrayToObject(refs, "configmaps");
	cJSON_AddArrayToObject(refs, "secrets");
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
	const cJSON *volume;
	cJSON_ArrayForEach(volume, cJSON_GetObjectItemCaseSensitive(spec, "volumes"))
	{
		const char *cm = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
		        cJSON_GetObjectItemCaseSensitive(volume, "configMap"), "name"));
		const char *secret = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
		        cJSON_GetObjectItemCaseSensitive(volume, "secret"), "secretName"));
		if (cm)
			add_ref(refs, false, cm);
		if (secret)
			add_ref(refs, true, secret);
	}
	static const char *const lists[] = { "initContainers", "containers" };
	for (size_t l = 0; l < ARRAY_SIZE(lists); l++) {
		const cJSON *container;
		cJSON_ArrayForEach(container, cJSON_GetObjectItemCaseSensitive(spec, lists[l]))
		{
			const cJSON *item;
			cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(container, "env"))
			{
				const cJSON *from = cJSON_GetObjectItemCaseSensitive(item, "valueFrom");
				for (int s = 0; s < 2; s++) {
					const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
					        cJSON_GetObjectItemCaseSensitive(from, s ? "secretKeyRef"
					                                                 : "configMapKeyRef"),
					        "name"));
					if (name)
						add_ref(refs, s, name);
				}
			}
			cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(container, "envFrom"))
			{
				for (int s = 0; s < 2; s++) {
					const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
					        cJSON_GetObjectItemCaseSensitive(item,
					                                         s ? "secretRef" : "configMapRef"),
					        "name"));
					if (name)
						add_ref(refs, s, name);
				}
			}
		}
	}
	return refs;
}

/* --- volumes ----------------------------------------------------------------------------- */

static bool safe_relative_path(const char *path)
{
	if (!path[0] || path[0] == '/')
		return false;
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, "/");
		if ((n == 2 && strncmp(p, "..", 2) == 0) || n == 0)
			return false;
		p += n;
		if (*p == '/')
			p++;
	}
	return true;
}

/* Writes the keys of a ConfigMap or Secret as the kubelet does, so that a container sees an
 * update all at once even though the volume directory is bind-mounted into it:
 *
 *   dir/..<serial>/key     the files of one version
 *   dir/..data -> ..<serial>   swapped with one rename
 *   dir/key -> ..data/key  (top-level names)
 */
static int write_config_volume(const cJSON *volume, const cJSON *source, bool secret, const cJSON *object,
                               const char *dir, struct error *err)
{
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(volume, "name"));
	long long mode = 0644;
	number_at(source, "defaultMode", &mode);
	int r = file_mkdir_p(dir, 0755, err);
	if (r < 0)
		return r;
	char old_target[64] = "";
	cleanup_free char *data_link = xasprintf("%s/..data", dir);
	ssize_t n = readlink(data_link, old_target, sizeof(old_target) - 1);
	old_target[n > 0 ? n : 0] = '\0';
	unsigned serial = old_target[0] ? (unsigned)strtoul(old_target + 2, NULL, 10) + 1 : 1;
	char version[32];
	snprintf(version, sizeof(version), "..%u", serial);
	cleanup_free char *fresh = xasprintf("%s/%s", dir, version);
	file_remove_tree(fresh);
	if ((r = file_mkdir_p(fresh, 0755, err)) < 0)
		return r;
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(source, "items");
	const char *maps[] = { "data", secret ? "stringData" : "binaryData" };
	struct strv tops = { 0 };
	char *tmp_link = NULL;
	for (size_t m = 0; m < 2 && object; m++) {
		const cJSON *item;
		cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(object, maps[m]))
		{
			const char *path = item->string;
			long long item_mode = mode;
			if (cJSON_IsArray(items)) {
				const cJSON *want, *found = NULL;
				cJSON_ArrayForEach(want, items)
				{
					const char *key =
					        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(want, "key"));
					if (key && strcmp(key, item->string) == 0)
						found = want;
				}
				if (!found)
					continue;
				path = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(found, "path"));
				number_at(found, "mode", &item_mode);
			}
			if (!path || !safe_relative_path(path) || strncmp(path, "..", 2) == 0) {
				r = error_set(err, EINVAL,
				              "spec.volumes[%s].items: path \"%s\" must be relative and stay inside "
				              "the volume",
				              name, path ? path : "");
				goto fail;
			}
			size_t length;
			cleanup_free char *value = config_value(object, secret, item->string, &length);
			if (!value)
				continue;
			cleanup_free char *file = xasprintf("%s/%s", fresh, path);
			char *slash = strrchr(file, '/');
			*slash = '\0';
			if ((r = file_mkdir_p(file, 0755, err)) < 0)
				goto fail;
			*slash = '/';
			if ((r = file_write_atomic(file, value, length, (mode_t)(item_mode & 0777), err)) < 0)
				goto fail;
			strv_add(&tops, xstrndup(path, strcspn(path, "/")));
		}
	}
	tmp_link = xasprintf("%s/..data_tmp", dir);
	unlink(tmp_link);
	if (symlink(version, tmp_link) < 0 || rename(tmp_link, data_link) < 0) {
		r = error_set_errno(err, errno, "swap %s", data_link);
		goto fail;
	}
	for (size_t i = 0; i < tops.count; i++) {
		cleanup_free char *link = xasprintf("%s/%s", dir, tops.items[i]);
		cleanup_free char *target = xasprintf("..data/%s", tops.items[i]);
		struct stat st;
		if (lstat(link, &st) == 0 && S_ISLNK(st.st_mode))
			continue;
		if (symlink(target, link) < 0) {
			r = error_set_errno(err, errno, "symlink %s", link);
			goto fail;
		}
	}
	if (old_target[0]) {
		cleanup_free char *old = xasprintf("%s/%s", dir, old_target);
		file_remove_tree(old);
	}
	strv_clear(&tops);
	free(tmp_link);
	return 0;
fail:
	strv_clear(&tops);
	free(tmp_link);
	file_remove_tree(fresh);
	return r;
}

static int check_host_path(const cJSON *host_path, const char *name, struct error *err)
{
	const char *path = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(host_path, "path"));
	const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(host_path, "type"));
	if (!path || path[0] != '/')
		return error_set(err, EINVAL, "spec.volumes[%s].hostPath.path: must be an absolute path", name);
	struct stat st;
	bool exists = stat(path, &st) == 0;
	if (!type || !type[0])
		return 0;
	if (strcmp(type, "DirectoryOrCreate") == 0) {
		if (!exists)
			return file_mkdir_p(path, 0755, err);
		if (!S_ISDIR(st.st_mode))
			return error_set(err, ENOTDIR, "spec.volumes[%s].hostPath: %s is not a directory", name, path);
		return 0;
	}
	if (strcmp(type, "FileOrCreate") == 0) {
		if (!exists) {
			int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
			if (fd < 0)
				return error_set_errno(err, errno, "spec.volumes[%s].hostPath: create %s", name, path);
			close(fd);
		}
		return 0;
	}
	if (!exists)
		return error_set(err, ENOENT, "spec.volumes[%s].hostPath: %s does not exist (type %s)", name, path,
		                 type);
	bool ok = strcmp(type, "Directory") == 0     ? S_ISDIR(st.st_mode)
	          : strcmp(type, "File") == 0        ? S_ISREG(st.st_mode)
	          : strcmp(type, "Socket") == 0      ? S_ISSOCK(st.st_mode)
	          : strcmp(type, "CharDevice") == 0  ? S_ISCHR(st.st_mode)
	          : strcmp(type, "BlockDevice") == 0 ? S_ISBLK(st.st_mode)
	                                             : false;
	if (!ok)
		return error_set(err, EINVAL, "spec.volumes[%s].hostPath: %s is not of type %s", name, path, type);
	return 0;
}

/* emptyDir with medium: Memory is a tmpfs of its own, as the kubelet makes it, sized by
 * sizeLimit (the kernel's default, half the memory, without one): writes beyond it fail
 * with ENOSPC. Mounted once: a pod set up again (an agent restart) keeps its contents.
 * It is detached with the pod's directory (file_unmount_below). */
static int mount_memory_medium(const cJSON *source, const char *name, const char *path, struct error *err)
{
	const char *medium = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(source, "medium"));
	if (!medium || strcmp(medium, "Memory") != 0)
		return 0;
	struct stat here, parent;
	cleanup_free char *up = xasprintf("%s/..", path);
	if (stat(path, &here) == 0 && stat(up, &parent) == 0 && here.st_dev != parent.st_dev)
		return 0; /* mounted already */
	char options[64] = "mode=1777";
	const char *limit = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(source, "sizeLimit"));
	int64_t bytes = 0;
	if (limit && (scheduler_parse_quantity(limit, 0, &bytes) < 0 || bytes <= 0))
		return error_set(err, EINVAL, "spec.volumes[%s].emptyDir.sizeLimit: \"%s\" is not a size", name, limit);
	if (bytes > 0)
		snprintf(options, sizeof(options), "mode=1777,size=%lld", (long long)bytes);
	if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, options) < 0)
		return error_set_errno(err, errno, "spec.volumes[%s].emptyDir: mount a tmpfs on %s", name, path);
	return 0;
}

int podspec_volumes_write(const cJSON *pod, const cJSON *config, const char *dir, struct error *err)
{
	const cJSON *volume;
	int r = file_mkdir_p(dir, 0700, err);
	if (r < 0)
		return r;
	cJSON_ArrayForEach(volume,
	                   cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod, "spec"), "volumes"))
	{
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(volume, "name"));
		if (!name || !object_valid_dns_label(name))
			return error_set(err, EINVAL, "spec.volumes: name \"%s\" is not a DNS label", name ? name : "");
		cleanup_free char *path = xasprintf("%s/%s", dir, name);
		const cJSON *source;
		if ((source = cJSON_GetObjectItemCaseSensitive(volume, "emptyDir"))) {
			r = file_mkdir_p(path, 0777, err);
			if (r == 0)
				chmod(path, 0777); /* as the kubelet: any user of the pod may write */
			if (r == 0)
				r = mount_memory_medium(source, name, path, err);
		} else if ((source = cJSON_GetObjectItemCaseSensitive(volume, "configMap"))) {
			const char *cm = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(source, "name"));
			const cJSON *object = cm ? config_object(config, false, cm) : NULL;
			if (!object && !is_optional(source))
				return error_set(err, ENOENT, "spec.volumes[%s].configMap: configmap \"%s\" not found",
				                 name, cm ? cm : "");
			r = write_config_volume(volume, source, false, object, path, err);
		} else if ((source = cJSON_GetObjectItemCaseSensitive(volume, "secret"))) {
			const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(source, "secretName"));
			const cJSON *object = s ? config_object(config, true, s) : NULL;
			if (!object && !is_optional(source))
				return error_set(err, ENOENT, "spec.volumes[%s].secret: secret \"%s\" not found", name,
				                 s ? s : "");
			r = write_config_volume(volume, source, true, object, path, err);
		} else if ((source = cJSON_GetObjectItemCaseSensitive(volume, "hostPath"))) {
			r = check_host_path(source, name, err);
		} else {
			const cJSON *first = NULL, *item;
			cJSON_ArrayForEach(item, volume)
			{
				if (strcmp(item->string, "name") != 0 && !first)
					first = item;
			}
			return error_set(err, ENOTSUP,
			                 "spec.volumes[%s]: volume type \"%s\" is not supported (emptyDir, hostPath, "
			                 "configMap, secret)",
			                 name, first ? first->string : "");
		}
		if (r < 0)
			return r;
	}
	return 0;
}

static const cJSON *find_volume(const cJSON *pod, const char *name)
{
	const cJSON *volume;
	cJSON_ArrayForEach(volume,
	                   cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod, "spec"), "volumes"))
	{
		const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(volume, "name"));
		if (n && strcmp(n, name) == 0)
			return volume;
	}
	return NULL;
}

void podspec_mounts_free(struct runtime_mount *mounts, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free((char *)mounts[i].source);
		free((char *)mounts[i].target);
	}
	free(mounts);
}

int podspec_mounts(const cJSON *pod, const cJSON *container, const char *volumes_dir, const char *where,
                   struct runtime_mount **ret_mounts, size_t *ret_count, struct error *err)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(container, "volumeMounts");
	size_t n = (size_t)cJSON_GetArraySize(list), count = 0;
	if (n > RUNTIME_MAX_MOUNTS)
		return error_set(err, EINVAL, "%s.volumeMounts: more than %d mounts", where, RUNTIME_MAX_MOUNTS);
	struct runtime_mount *mounts = xcalloc(n + 1, sizeof(*mounts));
	const cJSON *item;
	int r = 0;
	cJSON_ArrayForEach(item, list)
	{
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "name"));
		const char *target = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "mountPath"));
		const char *sub = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "subPath"));
		const cJSON *volume = name ? find_volume(pod, name) : NULL;
		if (!volume) {
			r = error_set(err, EINVAL, "%s.volumeMounts[%zu].name: no volume named \"%s\"", where, count,
			              name ? name : "");
			break;
		}
		if (!target || target[0] != '/') {
			r = error_set(err, EINVAL, "%s.volumeMounts[%zu].mountPath: must be an absolute path", where,
			              count);
			break;
		}
		if (sub && sub[0] && !safe_relative_path(sub)) {
			r = error_set(err, EINVAL,
			              "%s.volumeMounts[%zu].subPath: must be relative and stay inside the volume",
			              where, count);
			break;
		}
		const cJSON *host = cJSON_GetObjectItemCaseSensitive(volume, "hostPath");
		char *source = host ? xstrdup(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(host, "path")))
		                    : xasprintf("%s/%s", volumes_dir, name);
		if (sub && sub[0]) {
			char *joined = xasprintf("%s/%s", source, sub);
			free(source);
			source = joined;
		}
		bool read_only = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "readOnly")) ||
		                 cJSON_GetObjectItemCaseSensitive(volume, "configMap") ||
		                 cJSON_GetObjectItemCaseSensitive(volume, "secret");
		mounts[count++] = (struct runtime_mount){ source, xstrdup(target), read_only };
	}
	if (r < 0) {
		podspec_mounts_free(mounts, count);
		return r;
	}
	*ret_mounts = mounts;
	*ret_count = count;
	return 0;
}
