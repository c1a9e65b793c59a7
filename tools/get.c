/* `bramble get KIND [NAME...] | TYPE/NAME...`: kubectl's get, over the CoAP API.
 *
 * Lists follow `continue` pages; tables are kubectl's (columns per kind, laid out by
 * tools/tabwriter.c). With -w the list is followed by a watch (CoAP Observe) from the
 * list's resourceVersion, and every change is printed as one more row, aligned with the
 * rows before it, until the command is interrupted. A watch notification too large for
 * one datagram ("truncated") is fetched block-wise with ?watch=1&resourceVersion=, then
 * the watch is set up again from where that left off; a resourceVersion the server no
 * longer has (4.04 Expired) makes a fresh list, as a Kubernetes reflector does.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "core/client.h"
#include "core/object.h"
#include "platform/buffer.h"
#include "platform/error.h"
#include "platform/memory.h"
#include "tools/cli.h"
#include "tools/kinds.h"
#include "tools/manifest.h"
#include "tools/tabwriter.h"
#include "tools/verbs.h"

#define GET_MAX_COLUMNS 16
#define GET_CELL_MAX 256

enum output { OUTPUT_TABLE, OUTPUT_WIDE, OUTPUT_JSON, OUTPUT_YAML, OUTPUT_NAME };

struct get_options {
	enum output output;
	bool all_namespaces;
	bool show_labels;
	bool show_kind;    /* NAME as TYPE/NAME (several kinds on one command line) */
	bool watch_events; /* --output-watch-events: an EVENT column / {type, object} */
	bool watching;     /* -w */
	bool header_done;  /* the table's header has been printed */
	struct tabwriter table;
	const struct kind *kind;
	int printed; /* objects printed so far (-o yaml separates them) */
};

/* --- table cells ------------------------------------------------------------------------- */

struct row {
	size_t count;
	const char *headers[GET_MAX_COLUMNS];
	char cells[GET_MAX_COLUMNS][GET_CELL_MAX];
};

static void column(struct row *row, const char *header, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void column(struct row *row, const char *header, const char *fmt, ...)
{
	if (row->count >= GET_MAX_COLUMNS)
		return;
	row->headers[row->count] = header;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(row->cells[row->count], GET_CELL_MAX, fmt, ap);
	va_end(ap);
	row->count++;
}

/* kubectl's TARGETS of an HPA: "cpu: 150%/50%" per metric ("<unknown>" before any). */
static void hpa_targets(struct row *row, const cJSON *hpa)
{
	char cell[GET_CELL_MAX] = "";
	size_t at = 0;
	const cJSON *metrics = cli_item(hpa, "spec.metrics"), *metric;
	cJSON *fallback = NULL;
	if (cJSON_GetArraySize(metrics) == 0) /* no metrics: cpu at 80% */
		metrics = fallback = cJSON_Parse("[{\"resource\":{\"name\":\"cpu\",\"target\":{\"type\":"
		                                 "\"Utilization\",\"averageUtilization\":80}}}]");
	cJSON_ArrayForEach(metric, metrics)
	{
		const char *name = cli_string(metric, "resource.name");
		bool utilization = strcmp(cli_string(metric, "resource.target.type"), "Utilization") == 0;
		char current[32] = "<unknown>", target[32];
		if (utilization)
			snprintf(target, sizeof(target), "%lld%%",
			         cli_number(metric, "resource.target.averageUtilization"));
		else
			snprintf(target, sizeof(target), "%s", cli_string(metric, "resource.target.averageValue"));
		const cJSON *status;
		cJSON_ArrayForEach(status, cli_item(hpa, "status.currentMetrics"))
		{
			if (strcmp(cli_string(status, "resource.name"), name) != 0)
				continue;
			if (utilization && cli_item(status, "resource.current.averageUtilization"))
				snprintf(current, sizeof(current), "%lld%%",
				         cli_number(status, "resource.current.averageUtilization"));
			else if (!utilization && cli_string(status, "resource.current.averageValue")[0])
				snprintf(current, sizeof(current), "%s",
				         cli_string(status, "resource.current.averageValue"));
		}
		int n = snprintf(cell + at, sizeof(cell) - at, "%s%s: %s/%s", at ? ", " : "", name, current, target);
		if (n < 0 || (size_t)n >= sizeof(cell) - at)
			break;
		at += (size_t)n;
	}
	cJSON_Delete(fallback);
	column(row, "TARGETS", "%s", cell);
}

static const char *or_none(const char *s)
{
	return s && s[0] ? s : "<none>";
}

static void age_of(const cJSON *object, char *buf, size_t size)
{
	cli_age(cli_string(object, "metadata.creationTimestamp"), time(NULL), buf, size);
}

/* kubectl's pod STATUS: the phase, or the reason a container waits or ended, Terminating. */
static const char *pod_status(const cJSON *pod, char *buf, size_t size)
{
	const char *reason = cli_string(pod, "status.reason");
	snprintf(buf, size, "%s",
	         reason[0]                            ? reason
	         : cli_string(pod, "status.phase")[0] ? cli_string(pod, "status.phase")
	                                              : "Pending");
	const cJSON *status;
	cJSON_ArrayForEach(status, cli_item(pod, "status.containerStatuses"))
	{
		const char *waiting = cli_string(status, "state.waiting.reason");
		const cJSON *terminated = cli_item(status, "state.terminated");
		if (waiting[0])
			snprintf(buf, size, "%s", waiting);
		else if (terminated && cli_string(terminated, "reason")[0])
			snprintf(buf, size, "%s", cli_string(terminated, "reason"));
		else if (terminated && cli_number(terminated, "signal"))
			snprintf(buf, size, "Signal:%lld", cli_number(terminated, "signal"));
		else if (terminated)
			snprintf(buf, size, "ExitCode:%lld", cli_number(terminated, "exitCode"));
	}
	if (cli_item(pod, "metadata.deletionTimestamp"))
		snprintf(buf, size, "%s", strcmp(reason, "NodeLost") == 0 ? "Unknown" : "Terminating");
	return buf;
}

static void service_ports(const cJSON *service, char *buf, size_t size)
{
	struct buffer b = BUFFER_INIT;
	const cJSON *port;
	cJSON_ArrayForEach(port, cli_item(service, "spec.ports"))
	{
		const char *protocol = cli_string(port, "protocol");
		long long node_port = cli_number(port, "nodePort");
		buffer_printf(&b, "%s%lld", b.length ? "," : "", cli_number(port, "port"));
		if (node_port)
			buffer_printf(&b, ":%lld", node_port);
		buffer_printf(&b, "/%s", protocol[0] ? protocol : "TCP");
	}
	snprintf(buf, size, "%s", or_none(b.data));
	buffer_free(&b);
}

/* The containers' names and images of a pod template, and a label selector, for -o wide. */
static void template_columns(struct row *row, const cJSON *object)
{
	struct buffer names = BUFFER_INIT, images = BUFFER_INIT, selector = BUFFER_INIT;
	const cJSON *container;
	cJSON_ArrayForEach(container, cli_item(object, "spec.template.spec.containers"))
	{
		buffer_printf(&names, "%s%s", names.length ? "," : "", cli_string(container, "name"));
		buffer_printf(&images, "%s%s", images.length ? "," : "", cli_string(container, "image"));
	}
	cli_format_map(cli_item(object, "spec.selector.matchLabels"), ",", &selector);
	column(row, "CONTAINERS", "%s", or_none(names.data));
	column(row, "IMAGES", "%s", or_none(images.data));
	column(row, "SELECTOR", "%s", selector.data);
	buffer_free(&names);
	buffer_free(&images);
	buffer_free(&selector);
}

static long long replicas_of(const cJSON *object)
{
	return cli_item(object, "spec.replicas") ? cli_number(object, "spec.replicas") : 1;
}

static void node_row(struct row *row, const cJSON *node, bool wide)
{
	struct buffer status = BUFFER_INIT, roles = BUFFER_INIT;
	const char *ready = "Unknown";
	const cJSON *condition;
	cJSON_ArrayForEach(condition, cli_item(node, "status.conditions"))
	{
		if (strcmp(cli_string(condition, "type"), "Ready") == 0)
			ready = strcmp(cli_string(condition, "status"), "True") == 0 ? "Ready" : "NotReady";
	}
	buffer_append_string(&status, ready);
	if (cJSON_IsTrue(cli_item(node, "spec.unschedulable")))
		buffer_append_string(&status, ",SchedulingDisabled");
	const cJSON *label;
	cJSON_ArrayForEach(label, cli_item(node, "metadata.labels"))
	{
		static const char prefix[] = "node-role.kubernetes.io/";
		if (strncmp(label->string, prefix, sizeof(prefix) - 1) == 0 && label->string[sizeof(prefix) - 1])
			buffer_printf(&roles, "%s%s", roles.length ? "," : "", label->string + sizeof(prefix) - 1);
	}
	column(row, "STATUS", "%s", status.data);
	column(row, "ROLES", "%s", or_none(roles.data));
	char age[32];
	age_of(node, age, sizeof(age));
	column(row, "AGE", "%s", age);
	column(row, "VERSION", "%s", or_none(cli_string(node, "status.nodeInfo.kubeletVersion")));
	if (wide) {
		const char *internal = "", *external = "";
		const cJSON *address;
		cJSON_ArrayForEach(address, cli_item(node, "status.addresses"))
		{
			if (!internal[0] && strcmp(cli_string(address, "type"), "InternalIP") == 0)
				internal = cli_string(address, "address");
			if (!external[0] && strcmp(cli_string(address, "type"), "ExternalIP") == 0)
				external = cli_string(address, "address");
		}
		column(row, "INTERNAL-IP", "%s", or_none(internal));
		column(row, "EXTERNAL-IP", "%s", or_none(external));
		column(row, "OS-IMAGE", "%s", or_none(cli_string(node, "status.nodeInfo.osImage")));
		column(row, "KERNEL-VERSION", "%s", or_none(cli_string(node, "status.nodeInfo.kernelVersion")));
		column(row, "CONTAINER-RUNTIME", "%s",
		       or_none(cli_string(node, "status.nodeInfo.containerRuntimeVersion")));
	}
	buffer_free(&status);
	buffer_free(&roles);
}

static void event_row(struct row *row, const cJSON *event)
{
	char seen[32], object[GET_CELL_MAX];
	const char *last = cli_string(event, "lastTimestamp");
	if (!last[0])
		last = cli_string(event, "eventTime");
	if (!last[0])
		last = cli_string(event, "metadata.creationTimestamp");
	cli_age(last, time(NULL), seen, sizeof(seen));
	snprintf(object, sizeof(object), "%s/%s", cli_string(event, "involvedObject.kind"),
	         cli_string(event, "involvedObject.name"));
	for (char *p = object; *p && *p != '/'; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	column(row, "LAST SEEN", "%s", seen);
	column(row, "TYPE", "%s", cli_string(event, "type"));
	column(row, "REASON", "%s", cli_string(event, "reason"));
	column(row, "OBJECT", "%s", object);
	column(row, "MESSAGE", "%s", cli_string(event, "message"));
}

/* One object's row for its kind, kubectl's columns (-o wide: its extra ones). */
static void fill_row(const struct kind *kind, const cJSON *object, const char *name, bool wide, struct row *row)
{
	const char *k = kind->name;
	char age[32];
	age_of(object, age, sizeof(age));
	if (strcmp(k, "Event") == 0) {
		event_row(row, object);
		return;
	}
	column(row, "NAME", "%s", name);
	if (strcmp(k, "Pod") == 0) {
		int total = cJSON_GetArraySize(cli_item(object, "spec.containers")), ready = 0;
		long long restarts = 0;
		const cJSON *status;
		cJSON_ArrayForEach(status, cli_item(object, "status.containerStatuses"))
		{
			ready += cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(status, "ready"));
			restarts += cli_number(status, "restartCount");
		}
		char text[64];
		column(row, "READY", "%d/%d", ready, total);
		column(row, "STATUS", "%s", pod_status(object, text, sizeof(text)));
		column(row, "RESTARTS", "%lld", restarts);
		column(row, "AGE", "%s", age);
		if (wide) {
			column(row, "IP", "%s", or_none(cli_string(object, "status.podIP")));
			column(row, "NODE", "%s", or_none(cli_string(object, "spec.nodeName")));
			column(row, "NOMINATED NODE", "%s", or_none(cli_string(object, "status.nominatedNodeName")));
			column(row, "READINESS GATES", "<none>");
		}
	} else if (strcmp(k, "Deployment") == 0) {
		column(row, "READY", "%lld/%lld", cli_number(object, "status.readyReplicas"), replicas_of(object));
		column(row, "UP-TO-DATE", "%lld", cli_number(object, "status.updatedReplicas"));
		column(row, "AVAILABLE", "%lld", cli_number(object, "status.availableReplicas"));
		column(row, "AGE", "%s", age);
		if (wide)
			template_columns(row, object);
	} else if (strcmp(k, "ReplicaSet") == 0) {
		column(row, "DESIRED", "%lld", replicas_of(object));
		column(row, "CURRENT", "%lld", cli_number(object, "status.replicas"));
		column(row, "READY", "%lld", cli_number(object, "status.readyReplicas"));
		column(row, "AGE", "%s", age);
		if (wide)
			template_columns(row, object);
	} else if (strcmp(k, "DaemonSet") == 0) {
		struct buffer selector = BUFFER_INIT;
		cli_format_map(cli_item(object, "spec.template.spec.nodeSelector"), ",", &selector);
		column(row, "DESIRED", "%lld", cli_number(object, "status.desiredNumberScheduled"));
		column(row, "CURRENT", "%lld", cli_number(object, "status.currentNumberScheduled"));
		column(row, "READY", "%lld", cli_number(object, "status.numberReady"));
		column(row, "UP-TO-DATE", "%lld", cli_number(object, "status.updatedNumberScheduled"));
		column(row, "AVAILABLE", "%lld", cli_number(object, "status.numberAvailable"));
		column(row, "NODE SELECTOR", "%s", selector.data);
		column(row, "AGE", "%s", age);
		buffer_free(&selector);
		if (wide)
			template_columns(row, object);
	} else if (strcmp(k, "Service") == 0) {
		char ports[GET_CELL_MAX];
		service_ports(object, ports, sizeof(ports));
		const char *type = cli_string(object, "spec.type");
		column(row, "TYPE", "%s", type[0] ? type : "ClusterIP");
		column(row, "CLUSTER-IP", "%s", or_none(cli_string(object, "spec.clusterIP")));
		column(row, "EXTERNAL-IP", "%s", "<none>");
		column(row, "PORT(S)", "%s", ports);
		column(row, "AGE", "%s", age);
		if (wide) {
			struct buffer selector = BUFFER_INIT;
			cli_format_map(cli_item(object, "spec.selector"), ",", &selector);
			column(row, "SELECTOR", "%s", selector.data);
			buffer_free(&selector);
		}
	} else if (strcmp(k, "Endpoints") == 0) {
		struct buffer endpoints = BUFFER_INIT;
		const cJSON *subset, *address, *port;
		cJSON_ArrayForEach(subset, cli_item(object, "subsets"))
		{
			cJSON_ArrayForEach(address, cli_item(subset, "addresses"))
			{
				bool any = false;
				cJSON_ArrayForEach(port, cli_item(subset, "ports"))
				{
					buffer_printf(&endpoints, "%s%s:%lld", endpoints.length ? "," : "",
					              cli_string(address, "ip"), cli_number(port, "port"));
					any = true;
				}
				if (!any)
					buffer_printf(&endpoints, "%s%s", endpoints.length ? "," : "",
					              cli_string(address, "ip"));
			}
		}
		column(row, "ENDPOINTS", "%s", or_none(endpoints.data));
		column(row, "AGE", "%s", age);
		buffer_free(&endpoints);
	} else if (strcmp(k, "ConfigMap") == 0) {
		column(row, "DATA", "%d",
		       cJSON_GetArraySize(cli_item(object, "data")) +
		               cJSON_GetArraySize(cli_item(object, "binaryData")));
		column(row, "AGE", "%s", age);
	} else if (strcmp(k, "Secret") == 0) {
		const char *type = cli_string(object, "type");
		column(row, "TYPE", "%s", type[0] ? type : "Opaque");
		column(row, "DATA", "%d", cJSON_GetArraySize(cli_item(object, "data")));
		column(row, "AGE", "%s", age);
	} else if (strcmp(k, "Namespace") == 0) {
		const char *phase = cli_string(object, "status.phase");
		column(row, "STATUS", "%s", phase[0] ? phase : "Active");
		column(row, "AGE", "%s", age);
	} else if (strcmp(k, "Node") == 0) {
		node_row(row, object, wide);
	} else if (strcmp(k, "Job") == 0) {
		long long completions =
		        cli_item(object, "spec.completions") ? cli_number(object, "spec.completions") : 1;
		column(row, "COMPLETIONS", "%lld/%lld", cli_number(object, "status.succeeded"), completions);
		column(row, "AGE", "%s", age);
	} else if (strcmp(k, "HorizontalPodAutoscaler") == 0) {
		column(row, "REFERENCE", "%s/%s", cli_string(object, "spec.scaleTargetRef.kind"),
		       cli_string(object, "spec.scaleTargetRef.name"));
		hpa_targets(row, object);
		column(row, "MINPODS", "%lld",
		       cli_item(object, "spec.minReplicas") ? cli_number(object, "spec.minReplicas") : 1);
		column(row, "MAXPODS", "%lld", cli_number(object, "spec.maxReplicas"));
		column(row, "REPLICAS", "%lld", cli_number(object, "status.currentReplicas"));
		column(row, "AGE", "%s", age);
	} else if (strcmp(k, "Lease") == 0) {
		column(row, "HOLDER", "%s", cli_string(object, "spec.holderIdentity"));
		column(row, "AGE", "%s", age);
	} else {
		column(row, "AGE", "%s", age);
	}
}

/* --- printing -------------------------------------------------------------------------------- */

/* Writes one object (a row, a name, JSON or YAML); event_type for --output-watch-events. */
static void print_object(struct get_options *o, const struct kind *kind, const cJSON *object, const char *event_type,
                         struct buffer *out)
{
	char type[KINDS_NAME_MAX], name[GET_CELL_MAX];
	kinds_type(kind, type, sizeof(type));
	snprintf(name, sizeof(name), "%s%s%s", o->show_kind ? type : "", o->show_kind ? "/" : "",
	         cli_string(object, "metadata.name"));
	cJSON *wrapped = NULL;
	if (event_type && o->watch_events && (o->output == OUTPUT_JSON || o->output == OUTPUT_YAML)) {
		wrapped = cJSON_CreateObject();
		cJSON_AddStringToObject(wrapped, "type", event_type);
		cJSON_AddItemReferenceToObject(wrapped, "object", (cJSON *)object);
		object = wrapped;
	}
	switch (o->output) {
	case OUTPUT_JSON:
		cli_write_json(object, 0, out);
		buffer_append_string(out, "\n");
		break;
	case OUTPUT_YAML:
		if (o->printed)
			buffer_append_string(out, "---\n");
		manifest_write_yaml(object, out);
		break;
	case OUTPUT_NAME:
		buffer_printf(out, "%s/%s\n", type, cli_string(object, "metadata.name"));
		break;
	default: {
		struct row row = { 0 };
		fill_row(kind, object, name, o->output == OUTPUT_WIDE, &row);
		bool namespace_column = o->all_namespaces && kind->namespaced;
		if (!o->header_done) {
			if (o->watch_events && event_type)
				tabwriter_write(&o->table, "EVENT\t");
			if (namespace_column)
				tabwriter_write(&o->table, "NAMESPACE\t");
			for (size_t i = 0; i < row.count; i++)
				tabwriter_printf(&o->table, "%s%s", row.headers[i],
				                 i + 1 < row.count || o->show_labels ? "\t" : "");
			tabwriter_write(&o->table, o->show_labels ? "LABELS\n" : "\n");
			o->header_done = true;
		}
		if (o->watch_events && event_type)
			tabwriter_printf(&o->table, "%s\t", event_type);
		if (namespace_column)
			tabwriter_printf(&o->table, "%s\t", cli_string(object, "metadata.namespace"));
		for (size_t i = 0; i < row.count; i++)
			tabwriter_printf(&o->table, "%s%s", row.cells[i],
			                 i + 1 < row.count || o->show_labels ? "\t" : "");
		if (o->show_labels) {
			struct buffer labels = BUFFER_INIT;
			cli_format_map(cli_item(object, "metadata.labels"), ",", &labels);
			tabwriter_write(&o->table, labels.data);
			buffer_free(&labels);
		}
		tabwriter_write(&o->table, "\n");
		break;
	}
	}
	o->printed++;
	cJSON_Delete(wrapped);
}

/* Prints what was fetched: one object, a List, or a table (the rows of consecutive objects
 * of one kind share a table). */
static void print_fetched(struct get_options *o, const struct kind *const *kinds, cJSON *items, bool single)
{
	struct buffer out = BUFFER_INIT;
	/* A List, except under -w: there every object is printed by itself, as changes are. */
	if ((o->output == OUTPUT_JSON || o->output == OUTPUT_YAML) && !single && !o->watching) {
		cJSON *list = cJSON_CreateObject();
		cJSON_AddStringToObject(list, "apiVersion", "v1");
		cJSON_AddItemReferenceToObject(list, "items", items);
		cJSON_AddStringToObject(list, "kind", "List");
		cJSON_AddStringToObject(cJSON_AddObjectToObject(list, "metadata"), "resourceVersion", "");
		if (o->output == OUTPUT_JSON) {
			cli_write_json(list, 0, &out);
			buffer_append_string(&out, "\n");
		} else {
			manifest_write_yaml(list, &out);
		}
		cJSON_Delete(list);
	} else {
		const cJSON *object;
		size_t i = 0;
		cJSON_ArrayForEach(object, items)
		{
			const struct kind *kind = kinds[i++];
			if (i > 1 && kind != kinds[i - 2] && o->output != OUTPUT_NAME && o->output != OUTPUT_JSON &&
			    o->output != OUTPUT_YAML) {
				tabwriter_flush(&o->table, &out);
				tabwriter_free(&o->table);
				tabwriter_init(&o->table, 6, 3, true);
				buffer_append_string(&out, "\n");
				o->header_done = false;
			}
			/* kubectl -w --output-watch-events: what was listed first counts as ADDED. */
			print_object(o, kind, object, o->watching && o->watch_events ? "ADDED" : NULL, &out);
		}
		tabwriter_flush(&o->table, &out);
	}
	fputs(out.data ? out.data : "", stdout);
	fflush(stdout);
	buffer_free(&out);
}

/* --- watching ---------------------------------------------------------------------------------- */

enum { NEWS_MORE = 0, NEWS_TRUNCATED = 1, NEWS_EXPIRED = 2, NEWS_FAILED = 3 };

struct watch_state {
	struct get_options *o;
	const struct kind *kind;
	char *revision;     /* the last resourceVersion seen */
	char *from;         /* truncated: the revision to fetch from */
	struct error error; /* NEWS_FAILED */
};

static void print_events(struct watch_state *s, const cJSON *news)
{
	struct buffer out = BUFFER_INIT;
	const cJSON *event;
	cJSON_ArrayForEach(event, cJSON_GetObjectItemCaseSensitive(news, "events"))
	{
		const cJSON *object = cJSON_GetObjectItemCaseSensitive(event, "object");
		if (cJSON_IsObject(object))
			print_object(s->o, s->kind, object, cli_string(event, "type"), &out);
	}
	tabwriter_flush(&s->o->table, &out);
	fputs(out.data ? out.data : "", stdout);
	fflush(stdout);
	buffer_free(&out);
	const char *rv = cli_string(news, "resourceVersion");
	if (rv[0]) {
		free(s->revision);
		s->revision = xstrdup(rv);
	}
}

static int on_news(int code, const char *body, size_t length, void *data)
{
	struct watch_state *s = data;
	cJSON *news = cJSON_ParseWithLength(body, length);
	int r = NEWS_MORE;
	if (code == 404 && strcmp(cli_string(news, "reason"), "Expired") == 0) {
		r = NEWS_EXPIRED;
	} else if (code >= 400) {
		error_set(&s->error, EIO, "%s (%s): %s", CLI_SERVER_PREFIX, cli_string(news, "reason"),
		          cli_string(news, "message"));
		r = NEWS_FAILED;
	} else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(news, "truncated"))) {
		free(s->from);
		s->from = xstrdup(cli_string(news, "from"));
		r = NEWS_TRUNCATED;
	} else if (strcmp(cli_string(news, "kind"), "WatchEvents") == 0) {
		print_events(s, news);
	}
	cJSON_Delete(news);
	return r;
}

static char *watch_path(const struct kind *kind, const char *namespace, const char *name, const char *labels,
                        const char *fields, const char *revision, bool replay)
{
	struct buffer path = BUFFER_INIT;
	char *base = kinds_path(kind, namespace, name);
	buffer_append_string(&path, base);
	free(base);
	if (labels && labels[0])
		cli_query(&path, "labelSelector", labels);
	if (fields && fields[0])
		cli_query(&path, "fieldSelector", fields);
	if (replay)
		cli_query(&path, "watch", "1");
	cli_query(&path, "resourceVersion", revision);
	return buffer_steal(&path);
}

/* Runs until interrupted or an error. */
static int watch(struct client *client, struct get_options *o, const struct kind *kind, const char *namespace,
                 const char *name, const char *labels, const char *fields, char *revision, struct error *err)
{
	struct watch_state s = { .o = o, .kind = kind, .revision = revision };
	int r;
	for (;;) {
		cleanup_free char *path = watch_path(kind, namespace, name, labels, fields, s.revision, false);
		r = client_watch(client, path, -1, on_news, &s, err);
		if (r < 0)
			break;
		if (r == NEWS_FAILED) {
			*err = s.error;
			r = -EIO;
			break;
		}
		if (r == NEWS_TRUNCATED) {
			cleanup_free char *replay = watch_path(kind, namespace, name, labels, fields, s.from, true);
			cJSON *news = NULL;
			if ((r = cli_call(client, CLIENT_GET, replay, NULL, &news, err)) < 0)
				break;
			print_events(&s, news);
			cJSON_Delete(news);
		} else if (r == NEWS_EXPIRED) {
			/* Too far behind: list again, print it, and watch from there. */
			cJSON *items = cJSON_CreateArray();
			char *fresh = NULL;
			cleanup_free char *by_name = name ? xasprintf("metadata.name=%s", name) : NULL;
			r = cli_list(client, kind, namespace, name ? NULL : labels, name ? by_name : fields, items,
			             &fresh, err);
			if (r == 0) {
				const struct kind **kinds =
				        xcalloc((size_t)cJSON_GetArraySize(items) + 1, sizeof(*kinds));
				for (int i = 0; i < cJSON_GetArraySize(items); i++)
					kinds[i] = kind;
				print_fetched(o, kinds, items, false);
				free(kinds);
				free(s.revision);
				s.revision = fresh;
			}
			cJSON_Delete(items);
			if (r < 0)
				break;
		}
		/* NEWS_MORE with the watch over: the server ended it; watch again from s.revision
		 * after a pause (a server that ends every watch at once is not asked in a loop). */
		if (r == NEWS_MORE)
			nanosleep(&(struct timespec){ 0, 500 * 1000 * 1000 }, NULL);
	}
	free(s.revision);
	free(s.from);
	return r;
}

/* --- the verb ------------------------------------------------------------------------------- */

/* "get deploy,svc,cm": each kind's list, one table each, names as TYPE/NAME. */
static int get_several(int argc, char **argv, struct get_options *o, const char *namespace, const char *labels,
                       const char *fields, const char *config, bool watching)
{
	if (watching)
		return cli_usage_error(NULL, "you may only watch one kind: a collection or a single object");
	if (optind + 1 < argc)
		return cli_usage_error(NULL, "names cannot follow a list of kinds: use TYPE/NAME");
	const struct kind *wanted[KINDS_MAX_ARGUMENTS];
	size_t count = 0;
	cleanup_free char *list = xstrdup(argv[optind]);
	struct error err = { 0 };
	for (char *save = NULL, *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		if (count >= KINDS_MAX_ARGUMENTS)
			return cli_usage_error(NULL, "more than %d kinds", KINDS_MAX_ARGUMENTS);
		if (!(wanted[count++] = kinds_resolve(name))) {
			error_set(&err, ENOENT, "the server doesn't have a resource type \"%s\"", name);
			return cli_fail(&err);
		}
	}
	struct client *client = NULL;
	if (cli_connect(config, &client, &err) < 0)
		return cli_fail(&err);
	cJSON *items = cJSON_CreateArray();
	const struct kind **kinds = NULL;
	int status = CLI_OK;
	for (size_t i = 0; i < count; i++) {
		int before = cJSON_GetArraySize(items);
		if (cli_list(client, wanted[i], o->all_namespaces ? NULL : namespace, labels, fields, items, NULL,
		             &err) < 0) {
			status = cli_fail(&err);
			break;
		}
		kinds = xrealloc(kinds, ((size_t)cJSON_GetArraySize(items) + 1) * sizeof(*kinds));
		for (int k = before; k < cJSON_GetArraySize(items); k++)
			kinds[k] = wanted[i];
	}
	client_close(client);
	o->show_kind = true;
	tabwriter_init(&o->table, 6, 3, true);
	if (status == CLI_OK && cJSON_GetArraySize(items) > 0)
		print_fetched(o, kinds, items, false);
	else if (status == CLI_OK && o->all_namespaces)
		fputs("No resources found\n", stderr);
	else if (status == CLI_OK)
		fprintf(stderr, "No resources found in %s namespace.\n", namespace);
	tabwriter_free(&o->table);
	free(kinds);
	cJSON_Delete(items);
	return status;
}

static void usage(FILE *out)
{
	fputs("usage: bramble get KIND [NAME...] | TYPE/NAME... [-n NAMESPACE | -A] [-l SELECTOR]\n"
	      "                 [--field-selector SELECTOR] [-o wide|json|yaml|name] [--show-labels]\n"
	      "                 [-w [--watch-only] [--output-watch-events]] [--config FILE]\n"
	      "\n"
	      "Lists objects of a kind (pods, po, deployments, deploy, rs, ds, svc, ep, cm, secrets, ns,\n"
	      "nodes, no, jobs, events, ev, hpa, leases) or shows the ones named, as kubectl get does.\n"
	      "-w prints each change as it happens (CoAP Observe), until interrupted.\n",
	      out);
}

int get_main(int argc, char **argv)
{
	enum { OPT_FIELDS = 256, OPT_CONFIG, OPT_SHOW_LABELS, OPT_WATCH_ONLY, OPT_WATCH_EVENTS, OPT_IGNORE };
	static const struct option long_options[] = {
		{ "namespace", required_argument, NULL, 'n' },
		{ "all-namespaces", no_argument, NULL, 'A' },
		{ "selector", required_argument, NULL, 'l' },
		{ "field-selector", required_argument, NULL, OPT_FIELDS },
		{ "output", required_argument, NULL, 'o' },
		{ "watch", no_argument, NULL, 'w' },
		{ "watch-only", no_argument, NULL, OPT_WATCH_ONLY },
		{ "output-watch-events", no_argument, NULL, OPT_WATCH_EVENTS },
		{ "show-labels", no_argument, NULL, OPT_SHOW_LABELS },
		{ "ignore-not-found", no_argument, NULL, OPT_IGNORE },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *namespace = NULL, *labels = NULL, *fields = NULL, *config = NULL;
	bool watching = false, watch_only = false, ignore_not_found = false;
	struct get_options o = { 0 };
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "n:Al:o:wh", long_options, NULL)) != -1) {
		switch (opt) {
		case 'n':
			namespace
			= optarg;
			break;
		case 'A':
			o.all_namespaces = true;
			break;
		case 'l':
			labels = optarg;
			break;
		case OPT_FIELDS:
			fields = optarg;
			break;
		case OPT_CONFIG:
			config = optarg;
			break;
		case 'w':
			watching = o.watching = true;
			break;
		case OPT_WATCH_ONLY:
			watching = watch_only = o.watching = true;
			break;
		case OPT_WATCH_EVENTS:
			o.watch_events = true;
			break;
		case OPT_SHOW_LABELS:
			o.show_labels = true;
			break;
		case OPT_IGNORE:
			ignore_not_found = true;
			break;
		case 'o':
			if (strcmp(optarg, "wide") == 0)
				o.output = OUTPUT_WIDE;
			else if (strcmp(optarg, "json") == 0)
				o.output = OUTPUT_JSON;
			else if (strcmp(optarg, "yaml") == 0)
				o.output = OUTPUT_YAML;
			else if (strcmp(optarg, "name") == 0)
				o.output = OUTPUT_NAME;
			else
				return cli_usage_error(
				        NULL,
				        "unable to match a printer suitable for the output format \"%s\", "
				        "the allowed formats are: json,name,wide,yaml",
				        optarg);
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
	if (!namespace)
	namespace = "default";
	if (optind < argc && strchr(argv[optind], ',') && !strchr(argv[optind], '/'))
		return get_several(argc, argv, &o, namespace, labels, fields, config, watching);
	struct kinds_selection *selection = xcalloc(1, sizeof(*selection));
	int r = kinds_select(argc - optind, argv + optind, selection, &err);
	if (r < 0) {
		free(selection);
		if (r == -EINVAL)
			return cli_usage_error(usage, "%s", err.message);
		return cli_fail(&err);
	}
	int status = CLI_OK;
	struct client *client = NULL;
	cJSON *items = cJSON_CreateArray();
	const struct kind **kinds = NULL;
	char *revision = NULL;
	if (o.all_namespaces && selection->count > 0) {
		status = cli_usage_error(NULL, "a resource cannot be retrieved by name across all namespaces");
		goto out;
	}
	if (watching && (selection->count > 1 || (!selection->kind && selection->count != 1))) {
		status = cli_usage_error(NULL, "you may only watch one kind: a collection or a single object");
		goto out;
	}
	if (!namespace)
	namespace = "default";
	if (cli_connect(config, &client, &err) < 0) {
		status = cli_fail(&err);
		goto out;
	}
	tabwriter_init(&o.table, 6, 3, true);
	kinds = xcalloc(selection->count + 1, sizeof(*kinds));
	if (selection->count > 0) {
		for (size_t i = 0; i < selection->count; i++) {
			if (selection->kinds[i] != selection->kinds[0])
				o.show_kind = true;
			cJSON *object = NULL;
			r = cli_object_call(client, CLIENT_GET, selection->kinds[i], namespace, selection->names[i],
			                    NULL, NULL, &object, &err);
			if (r == -ENOENT && ignore_not_found)
				continue;
			if (r < 0) {
				cli_print_error(&err);
				status = CLI_ERROR;
				if (r != -ENOENT)
					break;
				continue;
			}
			const char *rv = object_string_at(object, "metadata.resourceVersion");
			if (!revision && rv)
				revision = xstrdup(rv);
			kinds[cJSON_GetArraySize(items)] = selection->kinds[i];
			cJSON_AddItemToArray(items, object);
		}
	} else {
		r = cli_list(client, selection->kind, o.all_namespaces ? NULL : namespace, labels, fields, items,
		             &revision, &err);
		if (r < 0) {
			status = cli_fail(&err);
			goto out;
		}
		kinds = xrealloc(kinds, ((size_t)cJSON_GetArraySize(items) + 1) * sizeof(*kinds));
		for (int i = 0; i < cJSON_GetArraySize(items); i++)
			kinds[i] = selection->kind;
	}
	int count = cJSON_GetArraySize(items);
	bool single = selection->count == 1 && selection->kind;
	if (!watch_only &&
	    (count > 0 || (selection->count == 0 && (o.output == OUTPUT_JSON || o.output == OUTPUT_YAML))))
		print_fetched(&o, kinds, items, single);
	else if (!watch_only && count == 0 && selection->count == 0) {
		if (o.all_namespaces || !selection->kind->namespaced)
			fputs("No resources found\n", stderr);
		else
			fprintf(stderr, "No resources found in %s namespace.\n", namespace);
	}
	if (watching && status == CLI_OK) {
		const struct kind *kind = selection->kind ? selection->kind : selection->kinds[0];
		const char *name = selection->count ? selection->names[0] : NULL;
		o.kind = kind;
		if (!revision)
			revision = xstrdup("0");
		r = watch(client, &o, kind, o.all_namespaces ? NULL : namespace, name, labels, fields,
		          steal_pointer(&revision), &err);
		if (r < 0)
			status = cli_fail(&err);
	}
out:
	tabwriter_free(&o.table);
	free(revision);
	free(kinds);
	cJSON_Delete(items);
	client_close(client);
	free(selection);
	return status;
}
