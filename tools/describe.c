/* `bramble describe KIND [NAME_PREFIX...] | TYPE/NAME...`: kubectl's describe.
 *
 * Each kind's sections follow kubectl's describers (k8s.io/kubectl/pkg/describe), laid out
 * by the same tab writer (minimum width 0, padding 2) with the same indentation levels.
 * The object's Events come from GET events?fieldSelector=involvedObject.name=N,
 * involvedObject.kind=K, in the object's namespace (all namespaces for a cluster-scoped
 * object). The API server's field selectors know involvedObject.name and .kind but not
 * .namespace or .uid, so those two are checked here: an event about another namespace's
 * object, or about an earlier object of the same name (another uid), is left out.
 * As in kubectl, a NAME that matches no object exactly describes every object whose name
 * starts with it.
 */
#include "tools/describe.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/client.h"
#include "core/object.h"
#include "core/scheduler.h"
#include "platform/buffer.h"
#include "platform/error.h"
#include "platform/memory.h"
#include "tools/cli.h"
#include "tools/kinds.h"
#include "tools/manifest.h"
#include "tools/rollout.h"
#include "tools/tabwriter.h"
#include "tools/verbs.h"

#define DESCRIBE_MAX_ANNOTATION 140 /* kubectl's maxAnnotationLen */

/* kubectl's PrefixWriter: text at an indentation level (two spaces a level). */
struct writer {
	struct tabwriter table;
	struct buffer *out;
};

static void put(struct writer *w, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void put(struct writer *w, int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = xvasprintf(fmt, ap);
	va_end(ap);
	tabwriter_printf(&w->table, "%*s%s", level * 2, "", text);
	free(text);
}

static void flush(struct writer *w)
{
	tabwriter_flush(&w->table, w->out);
}

static const char *or_none(const char *s)
{
	return s && s[0] ? s : "<none>";
}

static const char *boolean(const cJSON *item)
{
	return cJSON_IsTrue(item) ? "true" : "false";
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of a map, sorted; the caller frees the array (not the strings). */
static const char **sorted_keys(const cJSON *map, size_t *ret_count)
{
	size_t n = 0;
	const cJSON *item;
	cJSON_ArrayForEach(item, map) n++;
	const char **keys = xcalloc(n + 1, sizeof(*keys));
	n = 0;
	if (cJSON_IsObject(map))
		cJSON_ArrayForEach(item, map) keys[n++] = item->string;
	qsort(keys, n, sizeof(*keys), compare_strings);
	*ret_count = n;
	return keys;
}

/* printLabelsMultiline: "Labels:\tk=v\n\tk2=v2\n" */
static void labels_multiline(struct writer *w, const char *title, const cJSON *map)
{
	put(w, 0, "%s:\t", title);
	size_t n;
	const char **keys = sorted_keys(map, &n);
	if (n == 0)
		put(w, 0, "<none>\n");
	for (size_t i = 0; i < n; i++)
		put(w, 0, "%s%s=%s\n", i ? "\t" : "", keys[i],
		    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(map, keys[i])) ?: "");
	free(keys);
}

/* printAnnotationsMultiline: long or multi-line values on lines of their own. */
static void annotations_multiline(struct writer *w, const char *title, const cJSON *map)
{
	put(w, 0, "%s:\t", title);
	size_t n;
	const char **keys = sorted_keys(map, &n);
	size_t shown = 0;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(keys[i], "kubectl.kubernetes.io/last-applied-configuration") == 0)
			continue;
		const char *value = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(map, keys[i])) ?: "";
		if (shown++)
			put(w, 0, "\t");
		size_t length = strlen(value);
		if (length && value[length - 1] == '\n')
			length--;
		if (length + strlen(keys[i]) + 2 > DESCRIBE_MAX_ANNOTATION || memchr(value, '\n', length)) {
			put(w, 0, "%s:\n", keys[i]);
			const char *line = value, *end = value + length;
			while (line <= end) {
				const char *newline = memchr(line, '\n', (size_t)(end - line));
				size_t size = (size_t)((newline ? newline : end) - line);
				if (size > DESCRIBE_MAX_ANNOTATION - 2)
					put(w, 0, "\t  %.*s...\n", DESCRIBE_MAX_ANNOTATION - 5, line);
				else
					put(w, 0, "\t  %.*s\n", (int)size, line);
				if (!newline)
					break;
				line = newline + 1;
			}
		} else {
			put(w, 0, "%s: %.*s\n", keys[i], (int)length, value);
		}
	}
	if (shown == 0)
		put(w, 0, "<none>\n");
	free(keys);
}

static void tolerations_multiline(struct writer *w, const char *title, const cJSON *tolerations)
{
	put(w, 0, "%s:\t", title);
	if (cJSON_GetArraySize(tolerations) == 0) {
		put(w, 0, "<none>\n");
		return;
	}
	int i = 0;
	const cJSON *t;
	cJSON_ArrayForEach(t, tolerations)
	{
		struct buffer line = BUFFER_INIT;
		const char *key = cli_string(t, "key"), *value = cli_string(t, "value"),
		           *effect = cli_string(t, "effect");
		buffer_append_string(&line, key);
		if (value[0])
			buffer_printf(&line, "=%s", value);
		if (effect[0])
			buffer_printf(&line, ":%s", effect);
		if (strcmp(cli_string(t, "operator"), "Exists") == 0 && !value[0])
			buffer_append_string(&line, key[0] || effect[0] ? " op=Exists" : "op=Exists");
		if (cli_item(t, "tolerationSeconds"))
			buffer_printf(&line, " for %llds", cli_number(t, "tolerationSeconds"));
		put(w, 0, "%s%s\n", i++ ? "\t" : "", line.data ? line.data : "");
		buffer_free(&line);
	}
}

static void taint_text(const cJSON *taint, struct buffer *out)
{
	const char *value = cli_string(taint, "value");
	buffer_printf(out, "%s%s%s:%s", cli_string(taint, "key"), value[0] ? "=" : "", value,
	              cli_string(taint, "effect"));
}

/* A label selector object: "app=web,tier in (a,b)", "<none>" when empty. */
static void format_selector(const cJSON *selector, struct buffer *out)
{
	size_t start = out->length;
	size_t n;
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(selector, "matchLabels");
	const char **keys = sorted_keys(labels, &n);
	for (size_t i = 0; i < n; i++)
		buffer_printf(out, "%s%s=%s", out->length > start ? "," : "", keys[i],
		              cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(labels, keys[i])) ?: "");
	free(keys);
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(selector, "matchExpressions"))
	{
		const char *op = cli_string(e, "operator");
		const char *sep = out->length > start ? "," : "";
		if (strcmp(op, "Exists") == 0) {
			buffer_printf(out, "%s%s", sep, cli_string(e, "key"));
		} else if (strcmp(op, "DoesNotExist") == 0) {
			buffer_printf(out, "%s!%s", sep, cli_string(e, "key"));
		} else {
			buffer_printf(out, "%s%s %s (", sep, cli_string(e, "key"),
			              strcmp(op, "In") == 0 ? "in" : "notin");
			const cJSON *v;
			bool first = true;
			cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(e, "values"))
			{
				buffer_printf(out, "%s%s", first ? "" : ",", cJSON_GetStringValue(v) ?: "");
				first = false;
			}
			buffer_append_string(out, ")");
		}
	}
	if (out->length == start)
		buffer_append_string(out, "<none>");
}

static const char *controlled_by(const cJSON *object, char *buf, size_t size)
{
	const cJSON *owner = cli_controller_of(object);
	if (!owner)
		return NULL;
	snprintf(buf, size, "%s/%s", cli_string(owner, "kind"), cli_string(owner, "name"));
	return buf;
}

/* --- containers and pod templates ------------------------------------------------------------- */

static void port_text(const cJSON *value, struct buffer *out)
{
	if (cJSON_IsNumber(value))
		buffer_printf(out, "%lld", (long long)value->valuedouble);
	else if (cJSON_IsString(value))
		buffer_append_string(out, value->valuestring);
}

/* kubectl's DescribeProbe. */
static void probe_text(const cJSON *probe, struct buffer *out)
{
	char attrs[160];
	snprintf(attrs, sizeof(attrs), "delay=%llds timeout=%llds period=%llds #success=%lld #failure=%lld",
	         cli_number(probe, "initialDelaySeconds"),
	         cli_item(probe, "timeoutSeconds") ? cli_number(probe, "timeoutSeconds") : 1,
	         cli_item(probe, "periodSeconds") ? cli_number(probe, "periodSeconds") : 10,
	         cli_item(probe, "successThreshold") ? cli_number(probe, "successThreshold") : 1,
	         cli_item(probe, "failureThreshold") ? cli_number(probe, "failureThreshold") : 3);
	const cJSON *http = cli_item(probe, "httpGet"), *tcp = cli_item(probe, "tcpSocket"),
	            *exec = cli_item(probe, "exec");
	if (exec) {
		buffer_append_string(out, "exec [");
		const cJSON *arg;
		bool first = true;
		cJSON_ArrayForEach(arg, cJSON_GetObjectItemCaseSensitive(exec, "command"))
		{
			buffer_printf(out, "%s%s", first ? "" : " ", cJSON_GetStringValue(arg) ?: "");
			first = false;
		}
		buffer_printf(out, "] %s", attrs);
	} else if (http) {
		const char *scheme = cli_string(http, "scheme");
		buffer_printf(out, "http-get %s://%s:", strcmp(scheme, "HTTPS") == 0 ? "https" : "http",
		              cli_string(http, "host"));
		port_text(cli_item(http, "port"), out);
		buffer_printf(out, "%s %s", cli_string(http, "path"), attrs);
	} else if (tcp) {
		buffer_printf(out, "tcp-socket %s:", cli_string(tcp, "host"));
		port_text(cli_item(tcp, "port"), out);
		buffer_printf(out, " %s", attrs);
	} else {
		buffer_printf(out, "unknown %s", attrs);
	}
}

static void container_state(struct writer *w, const char *title, const cJSON *state)
{
	char when[64], finished[64];
	const cJSON *running = cli_item(state, "running"), *waiting = cli_item(state, "waiting"),
	            *terminated = cli_item(state, "terminated");
	if (running) {
		cli_time(cli_string(running, "startedAt"), when, sizeof(when));
		put(w, 2, "%s:\tRunning\n", title);
		put(w, 3, "Started:\t%s\n", when);
	} else if (terminated) {
		put(w, 2, "%s:\tTerminated\n", title);
		if (cli_string(terminated, "reason")[0])
			put(w, 3, "Reason:\t%s\n", cli_string(terminated, "reason"));
		if (cli_string(terminated, "message")[0])
			put(w, 3, "Message:\t%s\n", cli_string(terminated, "message"));
		put(w, 3, "Exit Code:\t%lld\n", cli_number(terminated, "exitCode"));
		if (cli_number(terminated, "signal") > 0)
			put(w, 3, "Signal:\t%lld\n", cli_number(terminated, "signal"));
		cli_time(cli_string(terminated, "startedAt"), when, sizeof(when));
		cli_time(cli_string(terminated, "finishedAt"), finished, sizeof(finished));
		put(w, 3, "Started:\t%s\n", when);
		put(w, 3, "Finished:\t%s\n", finished);
	} else {
		put(w, 2, "%s:\tWaiting\n", title);
		if (waiting && cli_string(waiting, "reason")[0])
			put(w, 3, "Reason:\t%s\n", cli_string(waiting, "reason"));
	}
}

static void resources(struct writer *w, const char *title, const cJSON *list)
{
	size_t n;
	const char **keys = sorted_keys(list, &n);
	if (n)
		put(w, 2, "%s:\n", title);
	for (size_t i = 0; i < n; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(list, keys[i]);
		if (cJSON_IsNumber(v))
			put(w, 3, "%s:\t%lld\n", keys[i], (long long)v->valuedouble);
		else
			put(w, 3, "%s:\t%s\n", keys[i], cJSON_GetStringValue(v) ?: "");
	}
	free(keys);
}

static bool optional(const cJSON *reference)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reference, "optional"));
}

static void environment(struct writer *w, const cJSON *container)
{
	const cJSON *from = cli_item(container, "envFrom"), *e;
	if (cJSON_GetArraySize(from) > 0) {
		put(w, 2, "Environment Variables from:\n");
		cJSON_ArrayForEach(e, from)
		{
			const cJSON *cm = cli_item(e, "configMapRef"), *secret = cli_item(e, "secretRef");
			const cJSON *ref = cm ? cm : secret;
			const char *prefix = cli_string(e, "prefix");
			if (prefix[0])
				put(w, 3, "%s\t%s with prefix '%s'\tOptional: %s\n", cli_string(ref, "name"),
				    cm ? "ConfigMap" : "Secret", prefix, optional(ref) ? "true" : "false");
			else
				put(w, 3, "%s\t%s\tOptional: %s\n", cli_string(ref, "name"),
				    cm ? "ConfigMap" : "Secret", optional(ref) ? "true" : "false");
		}
	}
	const cJSON *env = cli_item(container, "env");
	put(w, 2, "Environment:%s\n", cJSON_GetArraySize(env) ? "" : "\t<none>");
	cJSON_ArrayForEach(e, env)
	{
		const char *name = cli_string(e, "name");
		const cJSON *from_value = cli_item(e, "valueFrom");
		if (!from_value) {
			const char *value = cli_string(e, "value"), *line = value;
			bool first = true;
			do {
				const char *newline = strchr(line, '\n');
				int size = (int)(newline ? (size_t)(newline - line) : strlen(line));
				if (first)
					put(w, 3, "%s:\t%.*s\n", name, size, line);
				else
					put(w, 3, "\t%.*s\n", size, line);
				first = false;
				line = newline ? newline + 1 : NULL;
			} while (line);
			continue;
		}
		const cJSON *field = cli_item(from_value, "fieldRef"),
		            *resource = cli_item(from_value, "resourceFieldRef"),
		            *secret = cli_item(from_value, "secretKeyRef"),
		            *cm = cli_item(from_value, "configMapKeyRef");
		if (field)
			put(w, 3, "%s:\t (%s:%s)\n", name,
			    cli_string(field, "apiVersion")[0] ? cli_string(field, "apiVersion") : "v1",
			    cli_string(field, "fieldPath"));
		else if (resource)
			put(w, 3, "%s:\t (%s)\n", name, cli_string(resource, "resource"));
		else if (secret)
			put(w, 3, "%s:\t<set to the key '%s' in secret '%s'>\tOptional: %s\n", name,
			    cli_string(secret, "key"), cli_string(secret, "name"), optional(secret) ? "true" : "false");
		else if (cm)
			put(w, 3, "%s:\t<set to the key '%s' of config map '%s'>\tOptional: %s\n", name,
			    cli_string(cm, "key"), cli_string(cm, "name"), optional(cm) ? "true" : "false");
	}
}

static int compare_mounts(const void *a, const void *b)
{
	return strcmp(cli_string(*(const cJSON *const *)a, "mountPath"),
	              cli_string(*(const cJSON *const *)b, "mountPath"));
}

static void mounts(struct writer *w, const cJSON *container)
{
	const cJSON *list = cli_item(container, "volumeMounts"), *m;
	size_t n = (size_t)cJSON_GetArraySize(list), i = 0;
	put(w, 2, "Mounts:%s\n", n ? "" : "\t<none>");
	const cJSON **sorted = xcalloc(n + 1, sizeof(*sorted));
	cJSON_ArrayForEach(m, list) sorted[i++] = m;
	qsort(sorted, n, sizeof(*sorted), compare_mounts);
	for (i = 0; i < n; i++) {
		const char *sub = cli_string(sorted[i], "subPath");
		char flags[160];
		snprintf(flags, sizeof(flags), "%s%s%s%s", cJSON_IsTrue(cli_item(sorted[i], "readOnly")) ? "ro" : "rw",
		         sub[0] ? ",path=\"" : "", sub, sub[0] ? "\"" : "");
		put(w, 3, "%s from %s (%s)\n", cli_string(sorted[i], "mountPath"), cli_string(sorted[i], "name"),
		    flags);
	}
	free(sorted);
}

static const cJSON *status_of(const cJSON *statuses, const char *name)
{
	const cJSON *s;
	cJSON_ArrayForEach(s, statuses)
	{
		if (strcmp(cli_string(s, "name"), name) == 0)
			return s;
	}
	return NULL;
}

/* describeContainers: statuses NULL for a template; space "" for a pod, "  " in a template. */
static void containers(struct writer *w, const char *title, const cJSON *list, const cJSON *statuses, const char *space)
{
	put(w, 0, "%s%s:%s\n", space, title, cJSON_GetArraySize(list) ? "" : " <none>");
	const cJSON *c;
	cJSON_ArrayForEach(c, list)
	{
		const cJSON *status = status_of(statuses, cli_string(c, "name"));
		put(w, 1, "%s%s:\n", space[0] ? " " : "", cli_string(c, "name"));
		if (status)
			put(w, 2, "Container ID:\t%s\n", cli_string(status, "containerID"));
		put(w, 2, "Image:\t%s\n", cli_string(c, "image"));
		if (status)
			put(w, 2, "Image ID:\t%s\n", cli_string(status, "imageID"));
		struct buffer ports = BUFFER_INIT, host_ports = BUFFER_INIT;
		const cJSON *p;
		cJSON_ArrayForEach(p, cli_item(c, "ports"))
		{
			const char *protocol = cli_string(p, "protocol")[0] ? cli_string(p, "protocol") : "TCP";
			buffer_printf(&ports, "%s%lld/%s", ports.length ? ", " : "", cli_number(p, "containerPort"),
			              protocol);
			buffer_printf(&host_ports, "%s%lld/%s", host_ports.length ? ", " : "",
			              cli_number(p, "hostPort"), protocol);
		}
		bool several = ports.data && strchr(ports.data, ',');
		put(w, 2, "%s:\t%s\n", several ? "Ports" : "Port", or_none(ports.data));
		put(w, 2, "%s:\t%s\n", several ? "Host Ports" : "Host Port", or_none(host_ports.data));
		buffer_free(&ports);
		buffer_free(&host_ports);
		static const char *const lists[] = { "command", "args" };
		static const char *const titles[] = { "Command", "Args" };
		for (size_t k = 0; k < 2; k++) {
			const cJSON *items = cli_item(c, lists[k]), *item;
			if (cJSON_GetArraySize(items) == 0)
				continue;
			put(w, 2, "%s:\n", titles[k]);
			cJSON_ArrayForEach(item, items) put(w, 3, "%s\n", cJSON_GetStringValue(item) ?: "");
		}
		if (status) {
			container_state(w, "State", cli_item(status, "state"));
			if (cli_item(status, "lastState.terminated"))
				container_state(w, "Last State", cli_item(status, "lastState"));
			put(w, 2, "Ready:\t%s\n", cJSON_IsTrue(cli_item(status, "ready")) ? "True" : "False");
			put(w, 2, "Restart Count:\t%lld\n", cli_number(status, "restartCount"));
		}
		resources(w, "Limits", cli_item(c, "resources.limits"));
		resources(w, "Requests", cli_item(c, "resources.requests"));
		static const char *const probes[] = { "livenessProbe", "readinessProbe", "startupProbe" };
		static const char *const probe_titles[] = { "Liveness", "Readiness", "Startup" };
		for (size_t k = 0; k < 3; k++) {
			const cJSON *probe = cli_item(c, probes[k]);
			if (!probe)
				continue;
			struct buffer text = BUFFER_INIT;
			probe_text(probe, &text);
			put(w, 2, "%s:\t%s\n", probe_titles[k], text.data);
			buffer_free(&text);
		}
		environment(w, c);
		mounts(w, c);
	}
}

static void volumes(struct writer *w, const cJSON *list, const char *space)
{
	if (cJSON_GetArraySize(list) == 0) {
		put(w, 0, "%sVolumes:\t<none>\n", space);
		return;
	}
	put(w, 0, "%sVolumes:\n", space);
	const cJSON *v;
	cJSON_ArrayForEach(v, list)
	{
		put(w, 1, "%s%s:\n", space[0] ? " " : "", cli_string(v, "name"));
		const cJSON *cm = cli_item(v, "configMap"), *secret = cli_item(v, "secret"),
		            *empty = cli_item(v, "emptyDir"), *host = cli_item(v, "hostPath"),
		            *claim = cli_item(v, "persistentVolumeClaim");
		if (cm) {
			put(w, 2, "Type:\tConfigMap (a volume populated by a ConfigMap)\n");
			put(w, 2, "Name:\t%s\n", cli_string(cm, "name"));
			put(w, 2, "Optional:\t%s\n", boolean(cli_item(cm, "optional")));
		} else if (secret) {
			put(w, 2, "Type:\tSecret (a volume populated by a Secret)\n");
			put(w, 2, "SecretName:\t%s\n", cli_string(secret, "secretName"));
			put(w, 2, "Optional:\t%s\n", boolean(cli_item(secret, "optional")));
		} else if (empty) {
			put(w, 2, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n");
			put(w, 2, "Medium:\t%s\n", cli_string(empty, "medium"));
			const cJSON *limit = cli_item(empty, "sizeLimit");
			if (cJSON_IsNumber(limit))
				put(w, 2, "SizeLimit:\t%lld\n", (long long)limit->valuedouble);
			else
				put(w, 2, "SizeLimit:\t%s\n", cJSON_IsString(limit) ? limit->valuestring : "<unset>");
		} else if (host) {
			put(w, 2, "Type:\tHostPath (bare host directory volume)\n");
			put(w, 2, "Path:\t%s\n", cli_string(host, "path"));
			put(w, 2, "HostPathType:\t%s\n", cli_string(host, "type"));
		} else if (claim) {
			put(w, 2,
			    "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same "
			    "namespace)\n");
			put(w, 2, "ClaimName:\t%s\n", cli_string(claim, "claimName"));
			put(w, 2, "ReadOnly:\t%s\n", boolean(cli_item(claim, "readOnly")));
		} else {
			put(w, 1, "<unknown>\n");
		}
	}
}

static void pod_template(struct writer *w, const cJSON *template)
{
	put(w, 0, "Pod Template:\n");
	if (!template) {
		put(w, 1, "<unset>");
		return;
	}
	labels_multiline(w, "  Labels", cli_item(template, "metadata.labels"));
	if (cJSON_GetArraySize(cli_item(template, "metadata.annotations")) > 0)
		annotations_multiline(w, "  Annotations", cli_item(template, "metadata.annotations"));
	const char *account = cli_string(template, "spec.serviceAccountName");
	if (account[0])
		put(w, 1, "Service Account:\t%s\n", account);
	if (cJSON_GetArraySize(cli_item(template, "spec.initContainers")) > 0)
		containers(w, "Init Containers", cli_item(template, "spec.initContainers"), NULL, "  ");
	containers(w, "Containers", cli_item(template, "spec.containers"), NULL, "  ");
	volumes(w, cli_item(template, "spec.volumes"), "  ");
	const char *priority_class = cli_string(template, "spec.priorityClassName");
	if (priority_class[0])
		put(w, 1, "Priority Class Name:\t%s\n", priority_class);
	labels_multiline(w, "  Node-Selectors", cli_item(template, "spec.nodeSelector"));
	tolerations_multiline(w, "  Tolerations", cli_item(template, "spec.tolerations"));
}

void describe_pod_template(const cJSON *template, struct buffer *out)
{
	struct writer w = { .out = out };
	tabwriter_init(&w.table, 0, 2, false);
	pod_template(&w, template);
	flush(&w);
	tabwriter_free(&w.table);
}

/* --- events -------------------------------------------------------------------------------------- */

static const char *event_time(const cJSON *event, const char *which)
{
	const char *t = cli_string(event, which);
	if (!t[0])
		t = cli_string(event, "eventTime");
	if (!t[0])
		t = cli_string(event, "metadata.creationTimestamp");
	return t;
}

static int compare_events(const void *a, const void *b)
{
	return strcmp(event_time(*(const cJSON *const *)a, "lastTimestamp"),
	              event_time(*(const cJSON *const *)b, "lastTimestamp"));
}

static void events_section(struct writer *w, const cJSON *events)
{
	size_t n = (size_t)cJSON_GetArraySize(events), i = 0;
	if (n == 0) {
		put(w, 0, "Events:\t<none>\n");
		return;
	}
	flush(w);
	const cJSON **sorted = xcalloc(n, sizeof(*sorted));
	const cJSON *e;
	cJSON_ArrayForEach(e, events) sorted[i++] = e;
	qsort(sorted, n, sizeof(*sorted), compare_events);
	put(w, 0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n");
	put(w, 1, "----\t------\t----\t----\t-------\n");
	time_t now = time(NULL);
	for (i = 0; i < n; i++) {
		e = sorted[i];
		char first[32], last[32], interval[96];
		cli_age(event_time(e, "firstTimestamp"), now, first, sizeof(first));
		long long count = cli_number(e, "count");
		if (cli_item(e, "series")) {
			cli_age(cli_string(e, "series.lastObservedTime"), now, last, sizeof(last));
			snprintf(interval, sizeof(interval), "%s (x%lld over %s)", last, cli_number(e, "series.count"),
			         first);
		} else if (count > 1) {
			cli_age(event_time(e, "lastTimestamp"), now, last, sizeof(last));
			snprintf(interval, sizeof(interval), "%s (x%lld over %s)", last, count, first);
		} else {
			snprintf(interval, sizeof(interval), "%s", first);
		}
		const char *source = cli_string(e, "source.component");
		if (!source[0])
			source = cli_string(e, "reportingComponent");
		const char *message = cli_string(e, "message");
		while (*message == ' ' || *message == '\n')
			message++;
		size_t length = strlen(message);
		while (length && (message[length - 1] == ' ' || message[length - 1] == '\n'))
			length--;
		put(w, 1, "%s\t%s\t%s\t%s\t%.*s\n", cli_string(e, "type"), cli_string(e, "reason"), interval, source,
		    (int)length, message);
	}
	free(sorted);
}

/* --- one object per kind ---------------------------------------------------------------------------- */

/* Kubernetes' QoS class, for a pod whose status does not say it yet. */
static const char *qos_class(const cJSON *p)
{
	bool any = false, guaranteed = true;
	const cJSON *c;
	cJSON_ArrayForEach(c, cli_item(p, "spec.containers"))
	{
		const cJSON *requests = cli_item(c, "resources.requests"), *limits = cli_item(c, "resources.limits");
		any |= cJSON_GetArraySize(requests) > 0 || cJSON_GetArraySize(limits) > 0;
		static const char *const names[] = { "cpu", "memory" };
		for (size_t i = 0; i < 2; i++) {
			const cJSON *limit = cJSON_GetObjectItemCaseSensitive(limits, names[i]);
			const cJSON *request = cJSON_GetObjectItemCaseSensitive(requests, names[i]);
			if (!limit || (request && !cJSON_Compare(request, limit, 1)))
				guaranteed = false;
		}
	}
	return !any ? "BestEffort" : guaranteed ? "Guaranteed" : "Burstable";
}

static void pod(struct writer *w, const cJSON *p)
{
	char when[64], owner[300];
	put(w, 0, "Name:\t%s\n", cli_string(p, "metadata.name"));
	put(w, 0, "Namespace:\t%s\n", cli_string(p, "metadata.namespace"));
	put(w, 0, "Priority:\t%lld\n", cli_number(p, "spec.priority"));
	if (cli_string(p, "spec.priorityClassName")[0])
		put(w, 0, "Priority Class Name:\t%s\n", cli_string(p, "spec.priorityClassName"));
	if (cli_string(p, "spec.serviceAccountName")[0])
		put(w, 0, "Service Account:\t%s\n", cli_string(p, "spec.serviceAccountName"));
	const char *node = cli_string(p, "spec.nodeName");
	if (node[0])
		put(w, 0, "Node:\t%s/%s\n", node, cli_string(p, "status.hostIP"));
	else
		put(w, 0, "Node:\t<none>\n");
	if (cli_string(p, "status.startTime")[0]) {
		cli_time(cli_string(p, "status.startTime"), when, sizeof(when));
		put(w, 0, "Start Time:\t%s\n", when);
	}
	labels_multiline(w, "Labels", cli_item(p, "metadata.labels"));
	annotations_multiline(w, "Annotations", cli_item(p, "metadata.annotations"));
	const char *deletion = cli_string(p, "metadata.deletionTimestamp");
	if (deletion[0]) {
		char age[32];
		cli_age(deletion, time(NULL), age, sizeof(age));
		put(w, 0, "Status:\tTerminating (lasts %s)\n", age);
		put(w, 0, "Termination Grace Period:\t%llds\n", cli_number(p, "metadata.deletionGracePeriodSeconds"));
	} else {
		put(w, 0, "Status:\t%s\n",
		    cli_string(p, "status.phase")[0] ? cli_string(p, "status.phase") : "Pending");
	}
	if (cli_string(p, "status.reason")[0])
		put(w, 0, "Reason:\t%s\n", cli_string(p, "status.reason"));
	if (cli_string(p, "status.message")[0])
		put(w, 0, "Message:\t%s\n", cli_string(p, "status.message"));
	put(w, 0, "IP:\t%s\n", cli_string(p, "status.podIP"));
	const cJSON *ips = cli_item(p, "status.podIPs"), *ip;
	if (cJSON_GetArraySize(ips) == 0) {
		put(w, 0, "IPs:\t<none>\n");
	} else {
		put(w, 0, "IPs:\n");
		cJSON_ArrayForEach(ip, ips) put(w, 1, "IP:\t%s\n", cli_string(ip, "ip"));
	}
	if (controlled_by(p, owner, sizeof(owner)))
		put(w, 0, "Controlled By:\t%s\n", owner);
	if (cli_string(p, "status.nominatedNodeName")[0])
		put(w, 0, "NominatedNodeName:\t%s\n", cli_string(p, "status.nominatedNodeName"));
	if (cJSON_GetArraySize(cli_item(p, "spec.initContainers")) > 0)
		containers(w, "Init Containers", cli_item(p, "spec.initContainers"),
		           cli_item(p, "status.initContainerStatuses"), "");
	containers(w, "Containers", cli_item(p, "spec.containers"), cli_item(p, "status.containerStatuses"), "");
	const cJSON *conditions = cli_item(p, "status.conditions"), *c;
	if (cJSON_GetArraySize(conditions) > 0) {
		put(w, 0, "Conditions:\n  Type\tStatus\n");
		cJSON_ArrayForEach(c, conditions)
		        put(w, 1, "%s \t%s \n", cli_string(c, "type"), cli_string(c, "status"));
	}
	volumes(w, cli_item(p, "spec.volumes"), "");
	const char *qos = cli_string(p, "status.qosClass");
	put(w, 0, "QoS Class:\t%s\n", qos[0] ? qos : qos_class(p));
	labels_multiline(w, "Node-Selectors", cli_item(p, "spec.nodeSelector"));
	tolerations_multiline(w, "Tolerations", cli_item(p, "spec.tolerations"));
}

static void replicasets_by_name(const cJSON *list, struct buffer *out)
{
	const cJSON *rs;
	size_t start = out->length;
	cJSON_ArrayForEach(rs, list)
	{
		buffer_printf(out, "%s%s (%lld/%lld replicas created)", out->length > start ? ", " : "",
		              cli_string(rs, "metadata.name"), cli_number(rs, "status.replicas"),
		              cli_item(rs, "spec.replicas") ? cli_number(rs, "spec.replicas") : 1);
	}
	if (out->length == start)
		buffer_append_string(out, "<none>");
}

static void conditions_with_reason(struct writer *w, const cJSON *object)
{
	const cJSON *conditions = cli_item(object, "status.conditions"), *c;
	if (cJSON_GetArraySize(conditions) == 0)
		return;
	put(w, 0, "Conditions:\n  Type\tStatus\tReason\n");
	put(w, 1, "----\t------\t------\n");
	cJSON_ArrayForEach(c, conditions)
	        put(w, 1, "%s \t%s\t%s\n", cli_string(c, "type"), cli_string(c, "status"), cli_string(c, "reason"));
}

static void deployment(struct writer *w, const cJSON *d, const cJSON *replicasets)
{
	char when[64];
	struct buffer text = BUFFER_INIT;
	put(w, 0, "Name:\t%s\n", cli_string(d, "metadata.name"));
	put(w, 0, "Namespace:\t%s\n", cli_string(d, "metadata.namespace"));
	cli_time(cli_string(d, "metadata.creationTimestamp"), when, sizeof(when));
	put(w, 0, "CreationTimestamp:\t%s\n", when);
	labels_multiline(w, "Labels", cli_item(d, "metadata.labels"));
	annotations_multiline(w, "Annotations", cli_item(d, "metadata.annotations"));
	format_selector(cli_item(d, "spec.selector"), &text);
	put(w, 0, "Selector:\t%s\n", text.data);
	put(w, 0, "Replicas:\t%lld desired | %lld updated | %lld total | %lld available | %lld unavailable\n",
	    cli_item(d, "spec.replicas") ? cli_number(d, "spec.replicas") : 1, cli_number(d, "status.updatedReplicas"),
	    cli_number(d, "status.replicas"), cli_number(d, "status.availableReplicas"),
	    cli_number(d, "status.unavailableReplicas"));
	const char *strategy = cli_string(d, "spec.strategy.type");
	put(w, 0, "StrategyType:\t%s\n", strategy[0] ? strategy : "RollingUpdate");
	put(w, 0, "MinReadySeconds:\t%lld\n", cli_number(d, "spec.minReadySeconds"));
	const cJSON *rolling = cli_item(d, "spec.strategy.rollingUpdate");
	if (rolling) {
		struct buffer unavailable = BUFFER_INIT, surge = BUFFER_INIT;
		port_text(cli_item(rolling, "maxUnavailable"), &unavailable);
		port_text(cli_item(rolling, "maxSurge"), &surge);
		put(w, 0, "RollingUpdateStrategy:\t%s max unavailable, %s max surge\n", unavailable.data ?: "25%",
		    surge.data ?: "25%");
		buffer_free(&unavailable);
		buffer_free(&surge);
	}
	pod_template(w, cli_item(d, "spec.template"));
	conditions_with_reason(w, d);
	if (replicasets) {
		const cJSON *new_rs = rollout_new_replicaset(d, replicasets), *rs;
		cJSON *old = cJSON_CreateArray(), *fresh = cJSON_CreateArray();
		cJSON_ArrayForEach(rs, replicasets)
		{
			if (rs == new_rs)
				cJSON_AddItemReferenceToArray(fresh, (cJSON *)rs);
			else if (cli_number(rs, "spec.replicas") != 0)
				cJSON_AddItemReferenceToArray(old, (cJSON *)rs);
		}
		buffer_reset(&text);
		replicasets_by_name(old, &text);
		put(w, 0, "OldReplicaSets:\t%s\n", text.data);
		buffer_reset(&text);
		replicasets_by_name(fresh, &text);
		put(w, 0, "NewReplicaSet:\t%s\n", text.data);
		cJSON_Delete(old);
		cJSON_Delete(fresh);
	}
	buffer_free(&text);
}

static void replicaset(struct writer *w, const cJSON *rs, const cJSON *pods)
{
	char owner[300];
	struct buffer text = BUFFER_INIT;
	put(w, 0, "Name:\t%s\n", cli_string(rs, "metadata.name"));
	put(w, 0, "Namespace:\t%s\n", cli_string(rs, "metadata.namespace"));
	format_selector(cli_item(rs, "spec.selector"), &text);
	put(w, 0, "Selector:\t%s\n", text.data);
	buffer_free(&text);
	labels_multiline(w, "Labels", cli_item(rs, "metadata.labels"));
	annotations_multiline(w, "Annotations", cli_item(rs, "metadata.annotations"));
	if (controlled_by(rs, owner, sizeof(owner)))
		put(w, 0, "Controlled By:\t%s\n", owner);
	put(w, 0, "Replicas:\t%lld current / %lld desired\n", cli_number(rs, "status.replicas"),
	    cli_item(rs, "spec.replicas") ? cli_number(rs, "spec.replicas") : 1);
	int running = 0, waiting = 0, succeeded = 0, failed = 0;
	const cJSON *p;
	cJSON_ArrayForEach(p, pods)
	{
		const char *phase = cli_string(p, "status.phase");
		running += strcmp(phase, "Running") == 0;
		waiting += strcmp(phase, "Pending") == 0 || !phase[0];
		succeeded += strcmp(phase, "Succeeded") == 0;
		failed += strcmp(phase, "Failed") == 0;
	}
	put(w, 0, "Pods Status:\t%d Running / %d Waiting / %d Succeeded / %d Failed\n", running, waiting, succeeded,
	    failed);
	pod_template(w, cli_item(rs, "spec.template"));
	conditions_with_reason(w, rs);
}

static void service(struct writer *w, const cJSON *s, const cJSON *endpoints)
{
	struct buffer text = BUFFER_INIT;
	put(w, 0, "Name:\t%s\n", cli_string(s, "metadata.name"));
	put(w, 0, "Namespace:\t%s\n", cli_string(s, "metadata.namespace"));
	labels_multiline(w, "Labels", cli_item(s, "metadata.labels"));
	annotations_multiline(w, "Annotations", cli_item(s, "metadata.annotations"));
	cli_format_map(cli_item(s, "spec.selector"), ",", &text);
	put(w, 0, "Selector:\t%s\n", text.data);
	const char *type = cli_string(s, "spec.type");
	put(w, 0, "Type:\t%s\n", type[0] ? type : "ClusterIP");
	if (cli_string(s, "spec.ipFamilyPolicy")[0])
		put(w, 0, "IP Family Policy:\t%s\n", cli_string(s, "spec.ipFamilyPolicy"));
	buffer_reset(&text);
	const cJSON *item;
	cJSON_ArrayForEach(item, cli_item(s, "spec.ipFamilies"))
	        buffer_printf(&text, "%s%s", text.length ? "," : "", cJSON_GetStringValue(item) ?: "");
	put(w, 0, "IP Families:\t%s\n", or_none(text.data));
	put(w, 0, "IP:\t%s\n", cli_string(s, "spec.clusterIP"));
	buffer_reset(&text);
	cJSON_ArrayForEach(item, cli_item(s, "spec.clusterIPs"))
	        buffer_printf(&text, "%s%s", text.length ? "," : "", cJSON_GetStringValue(item) ?: "");
	put(w, 0, "IPs:\t%s\n", or_none(text.data));
	if (strcmp(type, "ExternalName") == 0)
		put(w, 0, "External Name:\t%s\n", cli_string(s, "spec.externalName"));
	const cJSON *port;
	cJSON_ArrayForEach(port, cli_item(s, "spec.ports"))
	{
		const char *name = cli_string(port, "name"), *protocol = cli_string(port, "protocol");
		if (!protocol[0])
			protocol = "TCP";
		put(w, 0, "Port:\t%s\t%lld/%s\n", name[0] ? name : "<unset>", cli_number(port, "port"), protocol);
		buffer_reset(&text);
		port_text(cli_item(port, "targetPort"), &text);
		put(w, 0, "TargetPort:\t%s/%s\n", text.data ? text.data : "", protocol);
		if (cli_number(port, "nodePort"))
			put(w, 0, "NodePort:\t%s\t%lld/%s\n", name[0] ? name : "<unset>", cli_number(port, "nodePort"),
			    protocol);
		/* The endpoints of this port (by name), at most three shown, as kubectl does. */
		buffer_reset(&text);
		int count = 0;
		const cJSON *subset, *address, *p;
		cJSON_ArrayForEach(subset, cli_item(endpoints, "subsets"))
		{
			cJSON_ArrayForEach(p, cli_item(subset, "ports"))
			{
				if (strcmp(cli_string(p, "name"), name) != 0)
					continue;
				cJSON_ArrayForEach(address, cli_item(subset, "addresses"))
				{
					if (count++ < 3)
						buffer_printf(&text, "%s%s:%lld", text.length ? "," : "",
						              cli_string(address, "ip"), cli_number(p, "port"));
				}
			}
		}
		if (count > 3)
			buffer_printf(&text, " + %d more...", count - 3);
		put(w, 0, "Endpoints:\t%s\n", or_none(text.data));
	}
	const char *affinity = cli_string(s, "spec.sessionAffinity");
	put(w, 0, "Session Affinity:\t%s\n", affinity[0] ? affinity : "None");
	if (cli_string(s, "spec.externalTrafficPolicy")[0])
		put(w, 0, "External Traffic Policy:\t%s\n", cli_string(s, "spec.externalTrafficPolicy"));
	if (cli_string(s, "spec.internalTrafficPolicy")[0])
		put(w, 0, "Internal Traffic Policy:\t%s\n", cli_string(s, "spec.internalTrafficPolicy"));
	buffer_free(&text);
}

static void configmap(struct writer *w, const cJSON *cm)
{
	put(w, 0, "Name:\t%s\n", cli_string(cm, "metadata.name"));
	put(w, 0, "Namespace:\t%s\n", cli_string(cm, "metadata.namespace"));
	labels_multiline(w, "Labels", cli_item(cm, "metadata.labels"));
	annotations_multiline(w, "Annotations", cli_item(cm, "metadata.annotations"));
	/* Values are written as they are, past the tab writer (they may hold tabs). */
	flush(w);
	buffer_append_string(w->out, "\nData\n====\n");
	size_t n;
	const cJSON *data = cli_item(cm, "data");
	const char **keys = sorted_keys(data, &n);
	for (size_t i = 0; i < n; i++)
		buffer_printf(w->out, "%s:\n----\n%s\n", keys[i],
		              cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data, keys[i])) ?: "");
	free(keys);
	buffer_append_string(w->out, "\nBinaryData\n====\n");
	const cJSON *binary = cli_item(cm, "binaryData");
	keys = sorted_keys(binary, &n);
	for (size_t i = 0; i < n; i++) {
		const char *value = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(binary, keys[i])) ?: "";
		size_t length = strlen(value), bytes = length / 4 * 3;
		bytes -= length >= 1 && value[length - 1] == '=';
		bytes -= length >= 2 && value[length - 2] == '=';
		buffer_printf(w->out, "%s: %zu bytes\n", keys[i], bytes);
	}
	free(keys);
	buffer_append_string(w->out, "\n");
}

static void secret(struct writer *w, const cJSON *s)
{
	put(w, 0, "Name:\t%s\n", cli_string(s, "metadata.name"));
	put(w, 0, "Namespace:\t%s\n", cli_string(s, "metadata.namespace"));
	labels_multiline(w, "Labels", cli_item(s, "metadata.labels"));
	annotations_multiline(w, "Annotations", cli_item(s, "metadata.annotations"));
	const char *type = cli_string(s, "type");
	put(w, 0, "\nType:\t%s\n", type[0] ? type : "Opaque");
	put(w, 0, "\nData\n====\n");
	size_t n;
	const cJSON *data = cli_item(s, "data");
	const char **keys = sorted_keys(data, &n);
	for (size_t i = 0; i < n; i++) {
		/* The size of the value, never the value. */
		const char *value = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data, keys[i])) ?: "";
		size_t length = strlen(value), bytes = length / 4 * 3;
		bytes -= length >= 1 && value[length - 1] == '=';
		bytes -= length >= 2 && value[length - 2] == '=';
		put(w, 0, "%s:\t%zu bytes\n", keys[i], bytes);
	}
	free(keys);
}

static void namespace(struct writer *w, const cJSON *ns)
{
	put(w, 0, "Name:\t%s\n", cli_string(ns, "metadata.name"));
	labels_multiline(w, "Labels", cli_item(ns, "metadata.labels"));
	annotations_multiline(w, "Annotations", cli_item(ns, "metadata.annotations"));
	const char *phase = cli_string(ns, "status.phase");
	put(w, 0, "Status:\t%s\n", phase[0] ? phase : "Active");
	put(w, 0, "\nNo resource quota.\n");
	put(w, 0, "\nNo LimitRange resource.\n");
}

/* Sums of quantities in Kubernetes' canonical form: millicores, bytes. */
static void cpu_text(int64_t milli, char *buf, size_t size)
{
	if (milli % 1000 == 0)
		snprintf(buf, size, "%lld", (long long)(milli / 1000));
	else
		snprintf(buf, size, "%lldm", (long long)milli);
}

static void bytes_text(int64_t bytes, char *buf, size_t size)
{
	static const char *const units[] = { "Ki", "Mi", "Gi", "Ti" };
	int unit = -1;
	while (unit < 3 && bytes != 0 && bytes % 1024 == 0) {
		bytes /= 1024;
		unit++;
	}
	snprintf(buf, size, "%lld%s", (long long)bytes, unit >= 0 ? units[unit] : "");
}

static int64_t quantity(const cJSON *list, const char *name, int scale)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(list, name);
	int64_t value = 0;
	if (cJSON_IsNumber(v))
		return (int64_t)(v->valuedouble * (scale == 3 ? 1000 : 1));
	if (cJSON_IsString(v) && scheduler_parse_quantity(v->valuestring, scale, &value) == 0)
		return value;
	return 0;
}

/* A pod's requests and limits of cpu (millicores) and memory (bytes), containers summed. */
static void pod_resources(const cJSON *p, int64_t ret[4])
{
	const cJSON *c;
	memset(ret, 0, 4 * sizeof(*ret));
	cJSON_ArrayForEach(c, cli_item(p, "spec.containers"))
	{
		ret[0] += quantity(cli_item(c, "resources.requests"), "cpu", 3);
		ret[1] += quantity(cli_item(c, "resources.limits"), "cpu", 3);
		ret[2] += quantity(cli_item(c, "resources.requests"), "memory", 0);
		ret[3] += quantity(cli_item(c, "resources.limits"), "memory", 0);
	}
}

static long long percent(int64_t part, int64_t whole)
{
	return whole > 0 ? (long long)((double)part / (double)whole * 100) : 0;
}

static void node(struct writer *w, const cJSON *n, const cJSON *pods)
{
	char when[64];
	struct buffer text = BUFFER_INIT;
	put(w, 0, "Name:\t%s\n", cli_string(n, "metadata.name"));
	const cJSON *label;
	cJSON_ArrayForEach(label, cli_item(n, "metadata.labels"))
	{
		static const char prefix[] = "node-role.kubernetes.io/";
		if (strncmp(label->string, prefix, sizeof(prefix) - 1) == 0 && label->string[sizeof(prefix) - 1])
			buffer_printf(&text, "%s%s", text.length ? "," : "", label->string + sizeof(prefix) - 1);
	}
	put(w, 0, "Roles:\t%s\n", or_none(text.data));
	labels_multiline(w, "Labels", cli_item(n, "metadata.labels"));
	annotations_multiline(w, "Annotations", cli_item(n, "metadata.annotations"));
	cli_time(cli_string(n, "metadata.creationTimestamp"), when, sizeof(when));
	put(w, 0, "CreationTimestamp:\t%s\n", when);
	const cJSON *taints = cli_item(n, "spec.taints"), *t;
	put(w, 0, "Taints:\t");
	if (cJSON_GetArraySize(taints) == 0)
		put(w, 0, "<none>\n");
	int i = 0;
	cJSON_ArrayForEach(t, taints)
	{
		buffer_reset(&text);
		taint_text(t, &text);
		put(w, 0, "%s%s\n", i++ ? "\t" : "", text.data);
	}
	put(w, 0, "Unschedulable:\t%s\n", boolean(cli_item(n, "spec.unschedulable")));
	const cJSON *conditions = cli_item(n, "status.conditions"), *c;
	if (cJSON_GetArraySize(conditions) > 0) {
		put(w, 0, "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n");
		put(w, 1, "----\t------\t-----------------\t------------------\t------\t-------\n");
		cJSON_ArrayForEach(c, conditions)
		{
			char beat[64], change[64];
			cli_time(cli_string(c, "lastHeartbeatTime"), beat, sizeof(beat));
			cli_time(cli_string(c, "lastTransitionTime"), change, sizeof(change));
			put(w, 1, "%s \t%s \t%s \t%s \t%s \t%s\n", cli_string(c, "type"), cli_string(c, "status"), beat,
			    change, cli_string(c, "reason"), cli_string(c, "message"));
		}
	}
	put(w, 0, "Addresses:\n");
	const cJSON *address;
	cJSON_ArrayForEach(address, cli_item(n, "status.addresses"))
	        put(w, 1, "%s:\t%s\n", cli_string(address, "type"), cli_string(address, "address"));
	static const char *const lists[] = { "capacity", "allocatable" };
	static const char *const titles[] = { "Capacity", "Allocatable" };
	for (size_t k = 0; k < 2; k++) {
		char path[32];
		snprintf(path, sizeof(path), "status.%s", lists[k]);
		const cJSON *list = cli_item(n, path);
		size_t count;
		const char **keys = sorted_keys(list, &count);
		if (count)
			put(w, 0, "%s:\n", titles[k]);
		for (size_t j = 0; j < count; j++) {
			const cJSON *v = cJSON_GetObjectItemCaseSensitive(list, keys[j]);
			if (cJSON_IsNumber(v))
				put(w, 0, "  %s:\t%lld\n", keys[j], (long long)v->valuedouble);
			else
				put(w, 0, "  %s:\t%s\n", keys[j], cJSON_GetStringValue(v) ?: "");
		}
		free(keys);
	}
	static const char *const info[][2] = {
		{ "Machine ID", "machineID" },
		{ "System UUID", "systemUUID" },
		{ "Boot ID", "bootID" },
		{ "Kernel Version", "kernelVersion" },
		{ "OS Image", "osImage" },
		{ "Operating System", "operatingSystem" },
		{ "Architecture", "architecture" },
		{ "Container Runtime Version", "containerRuntimeVersion" },
		{ "Kubelet Version", "kubeletVersion" },
		{ "Kube-Proxy Version", "kubeProxyVersion" },
	};
	put(w, 0, "System Info:\n");
	for (size_t k = 0; k < ARRAY_SIZE(info); k++) {
		char path[64];
		snprintf(path, sizeof(path), "status.nodeInfo.%s", info[k][1]);
		put(w, 0, "  %s:\t%s\n", info[k][0], cli_string(n, path));
	}
	if (cli_string(n, "spec.podCIDR")[0])
		put(w, 0, "PodCIDR:\t%s\n", cli_string(n, "spec.podCIDR"));
	buffer_reset(&text);
	const cJSON *cidr;
	cJSON_ArrayForEach(cidr, cli_item(n, "spec.podCIDRs"))
	        buffer_printf(&text, "%s%s", text.length ? "," : "", cJSON_GetStringValue(cidr) ?: "");
	if (text.length)
		put(w, 0, "PodCIDRs:\t%s\n", text.data);
	if (cli_string(n, "spec.providerID")[0])
		put(w, 0, "ProviderID:\t%s\n", cli_string(n, "spec.providerID"));
	/* Non-terminated pods and what they ask of the node's allocatable resources. */
	const cJSON *allocatable = cli_item(n, "status.allocatable");
	if (cJSON_GetArraySize(allocatable) == 0)
		allocatable = cli_item(n, "status.capacity");
	int64_t cpu = quantity(allocatable, "cpu", 3), memory = quantity(allocatable, "memory", 0);
	put(w, 0, "Non-terminated Pods:\t(%d in total)\n", cJSON_GetArraySize(pods));
	put(w, 1, "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n");
	put(w, 1, "---------\t----\t\t------------\t----------\t---------------\t-------------\t---\n");
	int64_t total[4] = { 0 };
	const cJSON *p;
	cJSON_ArrayForEach(p, pods)
	{
		int64_t r[4];
		pod_resources(p, r);
		char a[32], b[32], c2[32], d[32], age[32];
		cpu_text(r[0], a, sizeof(a));
		cpu_text(r[1], b, sizeof(b));
		bytes_text(r[2], c2, sizeof(c2));
		bytes_text(r[3], d, sizeof(d));
		cli_age(cli_string(p, "metadata.creationTimestamp"), time(NULL), age, sizeof(age));
		put(w, 1, "%s\t%s\t\t%s (%lld%%)\t%s (%lld%%)\t%s (%lld%%)\t%s (%lld%%)\t%s\n",
		    cli_string(p, "metadata.namespace"), cli_string(p, "metadata.name"), a, percent(r[0], cpu), b,
		    percent(r[1], cpu), c2, percent(r[2], memory), d, percent(r[3], memory), age);
		for (int k = 0; k < 4; k++)
			total[k] += r[k];
	}
	char a[32], b[32], c2[32], d[32];
	cpu_text(total[0], a, sizeof(a));
	cpu_text(total[1], b, sizeof(b));
	bytes_text(total[2], c2, sizeof(c2));
	bytes_text(total[3], d, sizeof(d));
	put(w, 0, "Allocated resources:\n  (Total limits may be over 100 percent, i.e., overcommitted.)\n");
	put(w, 1, "Resource\tRequests\tLimits\n");
	put(w, 1, "--------\t--------\t------\n");
	put(w, 1, "cpu\t%s (%lld%%)\t%s (%lld%%)\n", a, percent(total[0], cpu), b, percent(total[1], cpu));
	put(w, 1, "memory\t%s (%lld%%)\t%s (%lld%%)\n", c2, percent(total[2], memory), d, percent(total[3], memory));
	buffer_free(&text);
}

/* Kinds without a describer of their own: metadata, then the spec (or the object's other
 * fields) as YAML. */
static void generic(struct writer *w, const cJSON *object)
{
	char when[64];
	put(w, 0, "Name:\t%s\n", cli_string(object, "metadata.name"));
	if (cli_string(object, "metadata.namespace")[0])
		put(w, 0, "Namespace:\t%s\n", cli_string(object, "metadata.namespace"));
	labels_multiline(w, "Labels", cli_item(object, "metadata.labels"));
	annotations_multiline(w, "Annotations", cli_item(object, "metadata.annotations"));
	cli_time(cli_string(object, "metadata.creationTimestamp"), when, sizeof(when));
	put(w, 0, "CreationTimestamp:\t%s\n", when);
	flush(w);
	const cJSON *field;
	cJSON_ArrayForEach(field, object)
	{
		if (strcmp(field->string, "apiVersion") == 0 || strcmp(field->string, "kind") == 0 ||
		    strcmp(field->string, "metadata") == 0)
			continue;
		cJSON *one = cJSON_CreateObject();
		cJSON_AddItemReferenceToObject(one, field->string, (cJSON *)field);
		struct buffer yaml = BUFFER_INIT;
		manifest_write_yaml(one, &yaml);
		/* "spec:" -> "Spec:" as kubectl titles its sections. */
		if (yaml.data && yaml.data[0] >= 'a' && yaml.data[0] <= 'z')
			yaml.data[0] = (char)(yaml.data[0] - 'a' + 'A');
		buffer_append_string(w->out, yaml.data ? yaml.data : "");
		buffer_free(&yaml);
		cJSON_Delete(one);
	}
}

void describe_object(const char *kind, const cJSON *object, const cJSON *events, const cJSON *related,
                     struct buffer *out)
{
	struct writer w = { .out = out };
	tabwriter_init(&w.table, 0, 2, false);
	if (strcmp(kind, "Pod") == 0)
		pod(&w, object);
	else if (strcmp(kind, "Deployment") == 0)
		deployment(&w, object, related);
	else if (strcmp(kind, "ReplicaSet") == 0)
		replicaset(&w, object, related);
	else if (strcmp(kind, "Service") == 0)
		service(&w, object, related);
	else if (strcmp(kind, "ConfigMap") == 0)
		configmap(&w, object);
	else if (strcmp(kind, "Secret") == 0)
		secret(&w, object);
	else if (strcmp(kind, "Namespace") == 0)
	namespace(&w, object);
	else if (strcmp(kind, "Node") == 0) node(&w, object, related);
	else generic(&w, object);
	if (events)
		events_section(&w, events);
	flush(&w);
	tabwriter_free(&w.table);
}

/* --- fetching ------------------------------------------------------------------------------------ */

/* kubectl shows no Events for Secrets and Namespaces. */
static bool has_events(const struct kind *kind)
{
	return strcmp(kind->name, "Secret") != 0 && strcmp(kind->name, "Namespace") != 0 &&
	       strcmp(kind->name, "Event") != 0;
}

static int fetch_events(struct client *client, const struct kind *kind, const cJSON *object, cJSON *ret_events,
                        struct error *err)
{
	const char *name = object_name(object), *namespace = object_namespace(object);
	const char *uid = object_string_at(object, "metadata.uid");
	cleanup_free char *fields = xasprintf("involvedObject.name=%s,involvedObject.kind=%s", name, kind->name);
	cJSON *all = cJSON_CreateArray();
	int r = cli_list(client, kinds_resolve("events"), kind->namespaced ? namespace : NULL, NULL, fields, all, NULL,
	                 err);
	cJSON *event;
	while (r == 0 && (event = all->child)) {
		cJSON_DetachItemViaPointer(all, event);
		/* The two fields the API server cannot select on. */
		const char *about_namespace = object_string_at(event, "involvedObject.namespace");
		const char *about_uid = object_string_at(event, "involvedObject.uid");
		bool keep = (!kind->namespaced || !about_namespace || !about_namespace[0] ||
		             strcmp(about_namespace, namespace) == 0) &&
		            (!uid || !about_uid || !about_uid[0] || strcmp(about_uid, uid) == 0 ||
		             strcmp(kind->name, "Node") == 0 /* kubelets use the node's name as its uid */);
		if (keep)
			cJSON_AddItemToArray(ret_events, event);
		else
			cJSON_Delete(event);
	}
	cJSON_Delete(all);
	return r;
}

/* What else a kind's description shows. */
static int fetch_related(struct client *client, const struct kind *kind, const cJSON *object, cJSON **ret_related,
                         struct error *err)
{
	*ret_related = NULL;
	const char *namespace = object_namespace(object), *name = object_name(object);
	if (strcmp(kind->name, "Deployment") == 0) {
		*ret_related = cJSON_CreateArray();
		return rollout_replicasets(client, object, *ret_related, err);
	}
	if (strcmp(kind->name, "ReplicaSet") == 0) {
		cJSON *all = cJSON_CreateArray();
		*ret_related = cJSON_CreateArray();
		int r = cli_list(client, kinds_resolve("pods"), namespace, NULL, NULL, all, NULL, err);
		const char *uid = object_string_at(object, "metadata.uid");
		cJSON *p;
		while (r == 0 && (p = all->child)) {
			cJSON_DetachItemViaPointer(all, p);
			const cJSON *owner = cli_controller_of(p);
			if (uid && owner && strcmp(cli_string(owner, "uid"), uid) == 0)
				cJSON_AddItemToArray(*ret_related, p);
			else
				cJSON_Delete(p);
		}
		cJSON_Delete(all);
		return r;
	}
	if (strcmp(kind->name, "Node") == 0) {
		*ret_related = cJSON_CreateArray();
		cleanup_free char *fields =
		        xasprintf("spec.nodeName=%s,status.phase!=Succeeded,status.phase!=Failed", name);
		return cli_list(client, kinds_resolve("pods"), NULL, NULL, fields, *ret_related, NULL, err);
	}
	if (strcmp(kind->name, "Service") == 0) {
		int r = cli_object_call(client, CLIENT_GET, kinds_resolve("endpoints"), namespace, name, NULL, NULL,
		                        ret_related, err);
		return r == -ENOENT ? 0 : r;
	}
	return 0;
}

static int describe_one(struct client *client, const struct kind *kind, const cJSON *object, bool first,
                        struct error *err)
{
	cJSON *events = has_events(kind) ? cJSON_CreateArray() : NULL, *related = NULL;
	int r = 0;
	if (events && (r = fetch_events(client, kind, object, events, err)) < 0)
		goto out;
	if ((r = fetch_related(client, kind, object, &related, err)) < 0)
		goto out;
	struct buffer out = BUFFER_INIT;
	if (!first)
		buffer_append_string(&out, "\n\n");
	describe_object(kind->name, object, events, related, &out);
	fputs(out.data ? out.data : "", stdout);
	buffer_free(&out);
out:
	cJSON_Delete(events);
	cJSON_Delete(related);
	return r;
}

static void usage(FILE *out)
{
	fputs("usage: bramble describe KIND [NAME_PREFIX...] | TYPE/NAME... [-n NAMESPACE | -A] [-l SELECTOR]\n"
	      "                        [--config FILE]\n"
	      "\n"
	      "Shows objects in detail, with their Events, as kubectl describe does. A NAME that matches\n"
	      "no object exactly describes every object whose name starts with it.\n",
	      out);
}

int describe_main(int argc, char **argv)
{
	enum { OPT_CONFIG = 256 };
	static const struct option long_options[] = {
		{ "namespace", required_argument, NULL, 'n' },
		{ "all-namespaces", no_argument, NULL, 'A' },
		{ "selector", required_argument, NULL, 'l' },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *namespace = "default", *labels = NULL, *config = NULL;
	bool all_namespaces = false;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "n:Al:h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'n':
			namespace
			= optarg;
			break;
		case 'A':
			all_namespaces = true;
			break;
		case 'l':
			labels = optarg;
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
	struct error err = { 0 };
	struct kinds_selection *selection = xcalloc(1, sizeof(*selection));
	int r = kinds_select(argc - optind, argv + optind, selection, &err);
	if (r < 0) {
		free(selection);
		return r == -ENOENT ? cli_fail(&err) : cli_usage_error(usage, "%s", err.message);
	}
	if (selection->count > 0 && (labels || all_namespaces)) {
		free(selection);
		return cli_usage_error(usage, "names cannot be given together with -l or -A");
	}
	struct client *client = NULL;
	if (cli_connect(config, &client, &err) < 0) {
		free(selection);
		return cli_fail(&err);
	}
	int status = CLI_OK;
	bool first = true;
	if (selection->count == 0) {
		cJSON *items = cJSON_CreateArray();
		r = cli_list(client, selection->kind, all_namespaces ? NULL : namespace, labels, NULL, items, NULL,
		             &err);
		if (r == 0 && cJSON_GetArraySize(items) == 0) {
			if (all_namespaces || !selection->kind->namespaced)
				fputs("No resources found\n", stderr);
			else
				fprintf(stderr, "No resources found in %s namespace.\n", namespace);
		}
		const cJSON *object;
		cJSON_ArrayForEach(object, items)
		{
			if (r < 0)
				break;
			r = describe_one(client, selection->kind, object, first, &err);
			first = false;
		}
		cJSON_Delete(items);
		if (r < 0)
			status = cli_fail(&err);
	}
	for (size_t i = 0; i < selection->count && status == CLI_OK; i++) {
		const struct kind *kind = selection->kinds[i];
		cJSON *object = NULL, *matches = cJSON_CreateArray();
		r = cli_object_call(client, CLIENT_GET, kind, namespace, selection->names[i], NULL, NULL, &object,
		                    &err);
		if (r == 0) {
			cJSON_AddItemToArray(matches, object);
		} else if (r == -ENOENT && !selection->kind) {
			/* TYPE/NAME: exactly that one. */
		} else if (r == -ENOENT) {
			/* kubectl: a name that matches nothing is a prefix. */
			struct error list_err = { 0 };
			cJSON *all = cJSON_CreateArray();
			if (cli_list(client, kind, namespace, NULL, NULL, all, NULL, &list_err) < 0) {
				err = list_err;
				r = -EIO;
			}
			cJSON *candidate;
			size_t length = strlen(selection->names[i]);
			while ((candidate = all->child)) {
				cJSON_DetachItemViaPointer(all, candidate);
				if (strncmp(cli_string(candidate, "metadata.name"), selection->names[i], length) == 0)
					cJSON_AddItemToArray(matches, candidate);
				else
					cJSON_Delete(candidate);
			}
			cJSON_Delete(all);
		}
		if (cJSON_GetArraySize(matches) == 0 && r < 0) {
			cli_print_error(&err);
			status = CLI_ERROR;
		}
		const cJSON *match;
		cJSON_ArrayForEach(match, matches)
		{
			if (describe_one(client, kind, match, first, &err) < 0) {
				status = cli_fail(&err);
				break;
			}
			first = false;
		}
		cJSON_Delete(matches);
	}
	client_close(client);
	free(selection);
	return status;
}
