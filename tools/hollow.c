/* `bramble hollow-nodes --count N`: N simulated Nodes for scale tests, like Kubernetes'
 * kubemark. They register, heartbeat like a kubelet and report the pods bound to them
 * Running and Ready without starting anything; a pod being deleted is deleted for good at
 * once, as a kubelet does once its containers are stopped.
 *
 * Identity: the administrator's credential of the client configuration (--config, as every
 * client verb), since one process speaks for many Nodes; a node:<name> identity may only
 * write its own Node. The Nodes are spread over --sessions DTLS sessions (asynchronous,
 * core/link.c) with at most WINDOW requests in flight on each.
 *
 * State:
 *   nodes   name, registered or not; registration retried on every heartbeat round until
 *           it succeeds (409: it exists, so it is taken over)
 *   pods    every pod seen bound to one of ours, by namespace/name: SEEN -> WRITING (status
 *           PATCH in flight) -> RUNNING (acknowledged); deleting pods get a final DELETE
 *   watch   one: pods with spec.nodeName set, from a paged list's resourceVersion; a
 *           truncated notification resumes from its "from"; an expired one lists again
 *   work    a FIFO of requests to send, drained as answers free room in the window
 *
 * Output: a line per --report seconds, and with --expect-pods N one line when N pods are
 * bound and one when N are Running, with wall-clock milliseconds, for benchmarks:
 *   hollow-nodes: bound 10000 pods first_ms=... last_ms=...
 * and, from the scheduler's own count (GET /metrics every METRICS_POLL_MS on a session of
 * its own, so that it never waits behind pod traffic), when it had bound N more pods than
 * when this started:
 *   hollow-nodes: scheduled 10000 pods at_ms=...
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "core/link.h"
#include "core/object.h"
#include "platform/buffer.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/log.h"
#include "platform/loop.h"
#include "platform/map.h"
#include "platform/memory.h"
#include "tools/cli.h"
#include "tools/clientconfig.h"
#include "tools/verbs.h"

#define HOLLOW_MAX_NODES 100000
#define HOLLOW_MAX_SESSIONS 16
#define HOLLOW_NAME_MAX 64
#define WINDOW 32 /* requests in flight per session */
#define HEARTBEAT_SLICES 8
#define METRICS_POLL_MS 20

static void usage(FILE *out)
{
	fputs("usage: bramble hollow-nodes --count N [--prefix NAME] [--server coaps://ADDRESS:PORT]\n"
	      "                            [--sessions N] [--heartbeat SECONDS] [--cpu CORES] [--memory SIZE]\n"
	      "                            [--max-pods N] [--arch ARCH] [--labels k=v,...] [--duration SECONDS]\n"
	      "                            [--report SECONDS] [--expect-pods N] [--config FILE]\n"
	      "\n"
	      "Registers N simulated Nodes (<prefix>-00000 ...) that heartbeat and report the pods bound\n"
	      "to them Running without running anything, for scale tests (like kubemark). Uses the\n"
	      "administrator's credential of the client configuration. Runs until SIGINT/SIGTERM or\n"
	      "--duration.\n",
	      out);
}

struct options {
	long count, sessions, heartbeat_s, max_pods, duration_s, report_s, expect;
	const char *prefix, *server, *cpu, *memory, *arch, *labels, *config;
};

struct hollow_node {
	char name[HOLLOW_NAME_MAX];
	bool registered, in_flight;
};

enum pod_state { POD_SEEN, POD_WRITING, POD_RUNNING, POD_DELETING };

struct hollow_pod {
	enum pod_state state;
	bool counted_running;
};

enum work_type { WORK_REGISTER, WORK_HEARTBEAT, WORK_POD_RUNNING, WORK_POD_DELETE };

struct work {
	struct work *next;
	enum work_type type;
	long node;
	char *path, *body; /* pods */
	char *key;
};

struct session {
	struct hollow *h;
	struct link *link;
	int in_flight;
	bool up;
};

struct hollow {
	struct options o;
	struct loop *loop;
	struct session sessions[HOLLOW_MAX_SESSIONS];
	struct hollow_node *nodes;
	long registered;
	struct map pods; /* namespace/name -> struct hollow_pod */
	struct work *head, *tail;
	struct link_observation *watch;
	char revision[24];
	bool listing;
	char *list_continue;
	uint64_t heartbeat_slice;
	char started[CLOCK_RFC3339_SIZE];
	long bound, running, pod_ip_counter;
	int64_t first_bound_ms, last_bound_ms, first_running_ms, last_running_ms;
	bool bound_reported, running_reported;
	struct link *metrics;     /* --expect-pods: the scheduler's count, on a session of its own */
	long long scheduled_base; /* its count at the first answer; -1 before */
	bool metrics_in_flight, scheduled_reported;
};

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- pods by key --------------------------------------------------------------------------- */

static struct hollow_pod *pod_find(struct hollow *h, const char *key, bool create)
{
	struct hollow_pod *p = map_get(&h->pods, key);
	if (!p && create) {
		p = xcalloc(1, sizeof(*p));
		map_put(&h->pods, key, p);
	}
	return p;
}

static void pod_forget(struct hollow *h, const char *key)
{
	free(map_remove(&h->pods, key));
}

/* The index of one of our nodes, or -1. */
static long node_index(const struct hollow *h, const char *name)
{
	size_t n = strlen(h->o.prefix);
	if (!name || strncmp(name, h->o.prefix, n) != 0 || name[n] != '-')
		return -1;
	char *end;
	long i = strtol(name + n + 1, &end, 10);
	if (*end || i < 0 || i >= h->o.count || strcmp(h->nodes[i].name, name) != 0)
		return -1;
	return i;
}

/* --- the work queue --------------------------------------------------------------------------- */

static void pump(struct hollow *h);

static void queue(struct hollow *h, struct work *w)
{
	if (h->tail)
		h->tail->next = w;
	else
		h->head = w;
	h->tail = w;
}

static void work_free(struct work *w)
{
	free(w->path);
	free(w->body);
	free(w->key);
	free(w);
}

struct in_flight {
	struct session *session;
	struct work *work;
};

static void node_conditions(cJSON *status, const char *now, const char *since)
{
	static const struct {
		const char *type, *status, *reason;
	} conditions[] = {
		{ "Ready", "True", "KubeletReady" },
		{ "MemoryPressure", "False", "KubeletHasSufficientMemory" },
		{ "DiskPressure", "False", "KubeletHasNoDiskPressure" },
		{ "PIDPressure", "False", "KubeletHasSufficientPID" },
	};
	cJSON *list = cJSON_AddArrayToObject(status, "conditions");
	for (size_t i = 0; i < ARRAY_SIZE(conditions); i++) {
		cJSON *c = cJSON_CreateObject();
		cJSON_AddStringToObject(c, "type", conditions[i].type);
		cJSON_AddStringToObject(c, "status", conditions[i].status);
		cJSON_AddStringToObject(c, "lastHeartbeatTime", now);
		cJSON_AddStringToObject(c, "lastTransitionTime", since);
		cJSON_AddStringToObject(c, "reason", conditions[i].reason);
		cJSON_AddStringToObject(c, "message", "hollow node");
		cJSON_AddItemToArray(list, c);
	}
}

static cJSON *node_status(const struct hollow *h, long index, const char *now)
{
	cJSON *status = cJSON_CreateObject();
	static const char *const lists[] = { "capacity", "allocatable" };
	char pods[24], address[32];
	snprintf(pods, sizeof(pods), "%ld", h->o.max_pods);
	for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
		cJSON *l = cJSON_AddObjectToObject(status, lists[i]);
		cJSON_AddStringToObject(l, "cpu", h->o.cpu);
		cJSON_AddStringToObject(l, "memory", h->o.memory);
		cJSON_AddStringToObject(l, "pods", pods);
	}
	node_conditions(status, now, h->started);
	snprintf(address, sizeof(address), "10.%ld.%ld.%ld", 200 + index / 62500 % 50, index / 250 % 250,
	         index % 250 + 1);
	cJSON *addresses = cJSON_AddArrayToObject(status, "addresses");
	cJSON *a = cJSON_CreateObject();
	cJSON_AddStringToObject(a, "type", "InternalIP");
	cJSON_AddStringToObject(a, "address", address);
	cJSON_AddItemToArray(addresses, a);
	a = cJSON_CreateObject();
	cJSON_AddStringToObject(a, "type", "Hostname");
	cJSON_AddStringToObject(a, "address", h->nodes[index].name);
	cJSON_AddItemToArray(addresses, a);
	cJSON *info = cJSON_AddObjectToObject(status, "nodeInfo");
	cJSON_AddStringToObject(info, "architecture", h->o.arch);
	cJSON_AddStringToObject(info, "operatingSystem", "linux");
	cJSON_AddStringToObject(info, "kubeletVersion", "bramble-hollow");
	return status;
}

static char *node_json(const struct hollow *h, long index, const char *now)
{
	cJSON *node = cJSON_CreateObject();
	cJSON_AddStringToObject(node, "apiVersion", "v1");
	cJSON_AddStringToObject(node, "kind", "Node");
	cJSON *metadata = cJSON_AddObjectToObject(node, "metadata");
	cJSON_AddStringToObject(metadata, "name", h->nodes[index].name);
	cJSON *labels = cJSON_AddObjectToObject(metadata, "labels");
	cJSON_AddStringToObject(labels, "kubernetes.io/hostname", h->nodes[index].name);
	cJSON_AddStringToObject(labels, "kubernetes.io/arch", h->o.arch);
	cJSON_AddStringToObject(labels, "kubernetes.io/os", "linux");
	cJSON_AddStringToObject(labels, "bramble.io/hollow", "true");
	if (h->o.labels) {
		char copy[512];
		snprintf(copy, sizeof(copy), "%s", h->o.labels);
		char *save = NULL;
		for (char *pair = strtok_r(copy, ",", &save); pair; pair = strtok_r(NULL, ",", &save)) {
			char *eq = strchr(pair, '=');
			if (!eq)
				continue;
			*eq = '\0';
			cJSON_DeleteItemFromObjectCaseSensitive(labels, pair);
			cJSON_AddStringToObject(labels, pair, eq + 1);
		}
	}
	cJSON_AddObjectToObject(node, "spec");
	cJSON_AddItemToObject(node, "status", node_status(h, index, now));
	char *text = cJSON_PrintUnformatted(node);
	cJSON_Delete(node);
	return text;
}

static void on_answer(const struct client_response *response, const struct error *err, void *data)
{
	struct in_flight *f = data;
	struct session *s = f->session;
	struct hollow *h = s->h;
	struct work *w = f->work;
	free(f);
	s->in_flight--;
	int code = response ? response->code : 0;
	switch (w->type) {
	case WORK_REGISTER:
	case WORK_HEARTBEAT:
		h->nodes[w->node].in_flight = false;
		if (code == 201 || (code == 409 && w->type == WORK_REGISTER) || (code < 300 && code > 0)) {
			if (!h->nodes[w->node].registered) {
				h->nodes[w->node].registered = true;
				h->registered++;
				if (h->registered == h->o.count) {
					printf("hollow-nodes: registered %ld nodes at_ms=%lld\n", h->registered,
					       (long long)wall_ms());
					fflush(stdout);
				}
			}
		} else if (code == 404) {
			if (h->nodes[w->node].registered)
				h->registered--;
			h->nodes[w->node].registered = false; /* deleted: registered again */
		} else {
			log_debug("hollow node %s: %d %s", h->nodes[w->node].name, code,
			          response ? response->message : err->message);
		}
		break;
	case WORK_POD_RUNNING: {
		struct hollow_pod *p = pod_find(h, w->key, false);
		if (p && p->state == POD_WRITING) {
			if (code > 0 && code < 300) {
				p->state = POD_RUNNING;
				if (!p->counted_running) {
					p->counted_running = true;
					int64_t now = wall_ms();
					if (!h->running++)
						h->first_running_ms = now;
					h->last_running_ms = now;
				}
			} else {
				p->state = POD_SEEN; /* tried again on its next event */
				if (code != 404)
					log_warnx("hollow-nodes: pod %s: status not written: %d %s", w->key, code,
					          response ? response->message : err->message);
			}
		}
		break;
	}
	case WORK_POD_DELETE:
		if (code == 0 || (code >= 300 && code != 404)) {
			struct hollow_pod *p = pod_find(h, w->key, false);
			if (p)
				p->state = POD_SEEN;
		}
		break;
	}
	work_free(w);
	if (h->o.expect > 0 && h->running >= h->o.expect && !h->running_reported) {
		h->running_reported = true;
		printf("hollow-nodes: running %ld pods first_ms=%lld last_ms=%lld\n", h->running,
		       (long long)h->first_running_ms, (long long)h->last_running_ms);
		fflush(stdout);
	}
	pump(h);
}

static struct session *session_for(struct hollow *h, long node)
{
	struct session *s = &h->sessions[(node < 0 ? 0 : node) % h->o.sessions];
	if (s->up && s->in_flight < WINDOW)
		return s;
	for (long i = 0; i < h->o.sessions; i++) /* pods: any session with room */
		if (node < 0 && h->sessions[i].up && h->sessions[i].in_flight < WINDOW)
			return &h->sessions[i];
	return NULL;
}

static void pump(struct hollow *h)
{
	struct work *kept = NULL, *kept_tail = NULL;
	int passes = 0;
	while (h->head && passes < 4 * WINDOW * HOLLOW_MAX_SESSIONS) {
		struct work *w = h->head;
		h->head = w->next;
		if (!h->head)
			h->tail = NULL;
		w->next = NULL;
		bool node_work = w->type == WORK_REGISTER || w->type == WORK_HEARTBEAT;
		struct session *s = session_for(h, node_work ? w->node : -1);
		if (!s) {
			/* This one's session is busy or down: keep it, look further. */
			if (kept_tail)
				kept_tail->next = w;
			else
				kept = w;
			kept_tail = w;
			passes++;
			continue;
		}
		char now[CLOCK_RFC3339_SIZE];
		clock_format_rfc3339(time(NULL), now);
		enum client_method method = CLIENT_PATCH;
		cleanup_free char *path = NULL, *body = NULL;
		if (w->type == WORK_REGISTER) {
			method = CLIENT_POST;
			path = xstrdup("/api/v1/nodes");
			body = node_json(h, w->node, now);
		} else if (w->type == WORK_HEARTBEAT) {
			path = xasprintf("/api/v1/nodes/%s/status", h->nodes[w->node].name);
			cJSON *patch = cJSON_CreateObject();
			cJSON_AddItemToObject(patch, "status", node_status(h, w->node, now));
			body = cJSON_PrintUnformatted(patch);
			cJSON_Delete(patch);
		} else {
			method = w->type == WORK_POD_DELETE ? CLIENT_DELETE : CLIENT_PATCH;
			path = xstrdup(w->path);
			body = w->body ? xstrdup(w->body) : NULL;
		}
		struct in_flight *f = xcalloc(1, sizeof(*f));
		f->session = s;
		f->work = w;
		struct error err;
		if (link_request(s->link, method, path, body, body ? strlen(body) : 0, on_answer, f, &err) < 0) {
			free(f);
			if (node_work)
				h->nodes[w->node].in_flight = false;
			else if (w->key) {
				struct hollow_pod *p = pod_find(h, w->key, false);
				if (p)
					p->state = POD_SEEN;
			}
			work_free(w);
			continue;
		}
		s->in_flight++;
	}
	if (kept) {
		kept_tail->next = h->head;
		h->head = kept;
		if (!h->tail)
			h->tail = kept_tail;
	}
}

/* --- nodes ------------------------------------------------------------------------------------ */

static void queue_node(struct hollow *h, long i)
{
	if (h->nodes[i].in_flight)
		return;
	struct work *w = xcalloc(1, sizeof(*w));
	w->type = h->nodes[i].registered ? WORK_HEARTBEAT : WORK_REGISTER;
	w->node = i;
	h->nodes[i].in_flight = true;
	queue(h, w);
}

static void on_heartbeat(struct loop *loop, void *data)
{
	struct hollow *h = data;
	uint64_t slice = h->heartbeat_slice++ % HEARTBEAT_SLICES;
	for (long i = (long)slice; i < h->o.count; i += HEARTBEAT_SLICES)
		if (h->sessions[i % h->o.sessions].up)
			queue_node(h, i);
	pump(h);
	loop_add_timer(loop, (uint64_t)h->o.heartbeat_s * 1000 / HEARTBEAT_SLICES, on_heartbeat, h);
}

/* --- pods ---------------------------------------------------------------------------------------- */

static void pod_running_work(struct hollow *h, const cJSON *pod, long node, const char *key)
{
	char now[CLOCK_RFC3339_SIZE], ip[32];
	clock_format_rfc3339(time(NULL), now);
	long n = h->pod_ip_counter++;
	snprintf(ip, sizeof(ip), "10.%ld.%ld.%ld", 100 + node / 250 % 100, node % 250, n % 250 + 1);
	cJSON *patch = cJSON_CreateObject();
	cJSON *status = cJSON_AddObjectToObject(patch, "status");
	cJSON_AddStringToObject(status, "phase", "Running");
	cJSON_AddStringToObject(status, "podIP", ip);
	cJSON_AddStringToObject(status, "startTime", now);
	cJSON *conditions = cJSON_AddArrayToObject(status, "conditions");
	static const char *const types[] = { "PodScheduled", "Initialized", "ContainersReady", "Ready" };
	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		cJSON *c = cJSON_CreateObject();
		cJSON_AddStringToObject(c, "type", types[i]);
		cJSON_AddStringToObject(c, "status", "True");
		cJSON_AddStringToObject(c, "lastTransitionTime", now);
		cJSON_AddItemToArray(conditions, c);
	}
	cJSON *statuses = cJSON_AddArrayToObject(status, "containerStatuses");
	const cJSON *container;
	cJSON_ArrayForEach(container, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod, "spec"),
	                                                               "containers"))
	{
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(container, "name"));
		const char *image = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(container, "image"));
		cJSON *s = cJSON_CreateObject();
		cJSON_AddStringToObject(s, "name", name ? name : "main");
		cJSON_AddBoolToObject(s, "ready", 1);
		cJSON_AddNumberToObject(s, "restartCount", 0);
		cJSON_AddStringToObject(s, "image", image ? image : "");
		cJSON_AddBoolToObject(s, "started", 1);
		cJSON *running = cJSON_AddObjectToObject(cJSON_AddObjectToObject(s, "state"), "running");
		cJSON_AddStringToObject(running, "startedAt", now);
		cJSON_AddItemToArray(statuses, s);
	}
	struct work *w = xcalloc(1, sizeof(*w));
	w->type = WORK_POD_RUNNING;
	w->node = -1;
	const char *slash = strchr(key, '/');
	w->path = xasprintf("/api/v1/namespaces/%.*s/pods/%s/status", (int)(slash - key), key, slash + 1);
	w->body = cJSON_PrintUnformatted(patch);
	w->key = xstrdup(key);
	cJSON_Delete(patch);
	queue(h, w);
}

static void pod_seen(struct hollow *h, const char *type, const cJSON *pod)
{
	const char *node_name = object_string_at(pod, "spec.nodeName");
	long node = node_index(h, node_name);
	const char *ns = object_namespace(pod), *name = object_name(pod);
	if (!ns || !name)
		return;
	cleanup_free char *key = xasprintf("%s/%s", ns, name);
	if (node < 0 || (type && strcmp(type, "DELETED") == 0)) {
		pod_forget(h, key);
		return;
	}
	struct hollow_pod *p = pod_find(h, key, false);
	if (!p) {
		p = pod_find(h, key, true);
		int64_t now = wall_ms();
		if (!h->bound++)
			h->first_bound_ms = now;
		h->last_bound_ms = now;
		if (h->o.expect > 0 && h->bound >= h->o.expect && !h->bound_reported) {
			h->bound_reported = true;
			printf("hollow-nodes: bound %ld pods first_ms=%lld last_ms=%lld\n", h->bound,
			       (long long)h->first_bound_ms, (long long)h->last_bound_ms);
			fflush(stdout);
		}
	}
	const char *phase = object_string_at(pod, "status.phase");
	if (object_string_at(pod, "metadata.deletionTimestamp")) {
		if (p->state == POD_DELETING)
			return;
		p->state = POD_DELETING;
		struct work *w = xcalloc(1, sizeof(*w));
		w->type = WORK_POD_DELETE;
		w->node = -1;
		w->path = xasprintf("/api/v1/namespaces/%s/pods/%s?gracePeriodSeconds=0", ns, name);
		w->key = xstrdup(key);
		queue(h, w);
		return;
	}
	if (phase && (strcmp(phase, "Running") == 0 || strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0))
		return;
	if (p->state != POD_SEEN && p->state != POD_RUNNING)
		return;
	p->state = POD_WRITING;
	pod_running_work(h, pod, node, key);
}

static void start_watch(struct hollow *h);
static void start_list(struct hollow *h);
static void catch_up(struct hollow *h);

static void on_pods(int code, const char *body, size_t length, const struct error *err, void *data)
{
	struct hollow *h = data;
	if (code != 205) {
		h->watch = NULL;
		if (code == 0)
			return; /* the link went down: listed again when it is back */
		log_info("hollow-nodes: pod watch ended (%d: %s): listing again", code, err ? err->message : "");
		h->revision[0] = '\0';
		start_list(h);
		return;
	}
	cJSON *doc = cJSON_ParseWithLength(body, length);
	if (!doc)
		return;
	const char *rv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "resourceVersion"));
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "truncated"))) {
		const char *from = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "from"));
		snprintf(h->revision, sizeof(h->revision), "%s", from ? from : "");
		link_observe_cancel(h->sessions[0].link, h->watch);
		h->watch = NULL;
		cJSON_Delete(doc);
		if (h->revision[0])
			catch_up(h);
		else
			start_list(h);
		return;
	}
	const cJSON *event;
	cJSON_ArrayForEach(event, cJSON_GetObjectItemCaseSensitive(doc, "events"))
	{
		pod_seen(h, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(event, "type")),
		         cJSON_GetObjectItemCaseSensitive(event, "object"));
	}
	if (rv)
		snprintf(h->revision, sizeof(h->revision), "%s", rv);
	cJSON_Delete(doc);
	pump(h);
}

#define BOUND_PODS "fieldSelector=spec.nodeName%21%3D"
#define CATCH_UP_SMALL 4096 /* a catch-up answer this small: the watch resumes */
#define CATCH_UP_EVENTS 500 /* events per catch-up answer (~750 KB) */

/* The events a truncated notification left out, fetched with plain GETs (whose block-wise
 * answers no notification can interleave with) until the gap is small; then the watch
 * resumes from there, with an answer that fits one datagram. */
static void on_catch_up(const struct client_response *response, const struct error *err, void *data)
{
	struct hollow *h = data;
	h->listing = false;
	if (!response || response->code != 205) {
		if (response && response->code == 404) {
			h->revision[0] = '\0'; /* expired: list again */
			start_list(h);
		} else {
			log_warnx("hollow-nodes: catching up: %s", response ? response->message : err->message);
		}
		return;
	}
	cJSON *doc = cJSON_ParseWithLength(response->body, response->length);
	if (!doc)
		return;
	const cJSON *event;
	cJSON_ArrayForEach(event, cJSON_GetObjectItemCaseSensitive(doc, "events"))
	{
		pod_seen(h, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(event, "type")),
		         cJSON_GetObjectItemCaseSensitive(event, "object"));
	}
	const char *rv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "resourceVersion"));
	if (rv)
		snprintf(h->revision, sizeof(h->revision), "%s", rv);
	cJSON_Delete(doc);
	if (response->length > CATCH_UP_SMALL)
		catch_up(h);
	else
		start_watch(h);
	pump(h);
}

static void catch_up(struct hollow *h)
{
	if (h->listing || !h->sessions[0].up)
		return;
	cleanup_free char *path = xasprintf("/api/v1/pods?%s&watch=1&limit=%d&resourceVersion=%s", BOUND_PODS,
	                                    CATCH_UP_EVENTS, h->revision);
	struct error err;
	if (link_request(h->sessions[0].link, CLIENT_GET, path, NULL, 0, on_catch_up, h, &err) == 0)
		h->listing = true;
}

static void start_watch(struct hollow *h)
{
	if (h->watch || !h->sessions[0].up)
		return;
	cleanup_free char *path = xasprintf("/api/v1/pods?%s&resourceVersion=%s", BOUND_PODS, h->revision);
	struct error err;
	if (link_observe(h->sessions[0].link, path, on_pods, h, &h->watch, &err) < 0)
		log_warnx("hollow-nodes: cannot watch pods: %s", err.message);
}

static void list_page(struct hollow *h);

static void on_list(const struct client_response *response, const struct error *err, void *data)
{
	struct hollow *h = data;
	h->listing = false;
	cJSON *doc = response && response->code == 205 ? cJSON_ParseWithLength(response->body, response->length) : NULL;
	if (!doc) {
		log_warnx("hollow-nodes: listing pods: %s", response ? response->message : err->message);
		return; /* tried again when the link comes back */
	}
	if (!h->list_continue) {
		const char *rv = object_string_at(doc, "metadata.resourceVersion");
		snprintf(h->revision, sizeof(h->revision), "%s", rv ? rv : "");
	}
	const cJSON *item;
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(doc, "items")) pod_seen(h, NULL, item);
	free(h->list_continue);
	const char *next = object_string_at(doc, "metadata.continue");
	h->list_continue = next ? xstrdup(next) : NULL;
	cJSON_Delete(doc);
	if (h->list_continue)
		list_page(h);
	else
		catch_up(h);
	pump(h);
}

static void list_page(struct hollow *h)
{
	struct buffer path = BUFFER_INIT;
	buffer_append_string(&path, "/api/v1/pods?" BOUND_PODS "&limit=500");
	if (h->list_continue)
		cli_query(&path, "continue", h->list_continue);
	struct error err;
	if (link_request(h->sessions[0].link, CLIENT_GET, path.data, NULL, 0, on_list, h, &err) == 0)
		h->listing = true;
	buffer_free(&path);
}

static void start_list(struct hollow *h)
{
	if (h->listing || !h->sessions[0].up)
		return;
	free(h->list_continue);
	h->list_continue = NULL;
	list_page(h);
}

/* --- the scheduler's count ------------------------------------------------------------------------ */

static void on_metrics(const struct client_response *response, const struct error *err, void *data)
{
	(void)err;
	struct hollow *h = data;
	h->metrics_in_flight = false;
	if (!response || response->code != 205 || !response->body)
		return;
	static const char name[] = "scheduler_schedule_attempts_total{result=\"scheduled\"} ";
	const char *at = strstr(response->body, name);
	if (!at)
		return;
	long long count = strtoll(at + strlen(name), NULL, 10);
	if (h->scheduled_base < 0)
		h->scheduled_base = count;
	if (!h->scheduled_reported && count - h->scheduled_base >= h->o.expect) {
		h->scheduled_reported = true;
		printf("hollow-nodes: scheduled %lld pods at_ms=%lld\n", count - h->scheduled_base,
		       (long long)wall_ms());
		fflush(stdout);
	}
}

static void on_metrics_due(struct loop *loop, void *data)
{
	struct hollow *h = data;
	if (h->scheduled_reported)
		return;
	struct error err;
	if (!h->metrics_in_flight &&
	    link_request(h->metrics, CLIENT_GET, "/metrics", NULL, 0, on_metrics, h, &err) == 0)
		h->metrics_in_flight = true;
	loop_add_timer(loop, METRICS_POLL_MS, on_metrics_due, h);
}

/* --- sessions, reports, the end ------------------------------------------------------------------ */

static void on_state(struct link *link, bool up, void *data)
{
	(void)link;
	struct session *s = data;
	struct hollow *h = s->h;
	s->up = up;
	if (!up) {
		if (s == &h->sessions[0]) { /* requests in flight are answered with an error */
			h->watch = NULL;
			h->listing = false;
		}
		return;
	}
	if (s == &h->sessions[0]) {
		if (h->revision[0])
			catch_up(h);
		else
			start_list(h);
	}
	long index = s - h->sessions;
	for (long i = index; i < h->o.count; i += h->o.sessions)
		if (!h->nodes[i].registered)
			queue_node(h, i);
	pump(h);
}

static void on_report(struct loop *loop, void *data)
{
	struct hollow *h = data;
	long queued = 0;
	for (struct work *w = h->head; w; w = w->next)
		queued++;
	fprintf(stderr, "hollow-nodes: %ld/%ld nodes registered, %ld pods bound, %ld running, %ld requests queued\n",
	        h->registered, h->o.count, h->bound, h->running, queued);
	/* A watch or catch-up lost with its session while another was starting: start again. */
	if (h->sessions[0].up && !h->watch && !h->listing) {
		if (h->revision[0])
			catch_up(h);
		else
			start_list(h);
	}
	loop_add_timer(loop, (uint64_t)h->o.report_s * 1000, on_report, h);
}

static void on_stop(struct loop *loop, void *data)
{
	(void)data;
	loop_stop(loop);
}

static void on_signal(struct loop *loop, int signo, void *data)
{
	(void)signo;
	on_stop(loop, data);
}

static int parse_long(const char *text, long min, long max, long *ret)
{
	char *end;
	long v = strtol(text, &end, 10);
	if (!text[0] || *end || v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

int hollow_main(int argc, char **argv)
{
	struct hollow h = { .o = { .count = 0,
		                   .sessions = 4,
		                   .heartbeat_s = 4,
		                   .max_pods = 110,
		                   .report_s = 5,
		                   .prefix = "hollow",
		                   .cpu = "4",
		                   .memory = "8Gi",
		                   .arch = "amd64" } };
	static const struct option long_options[] = {
		{ "count", required_argument, NULL, 'c' },
		{ "prefix", required_argument, NULL, 'p' },
		{ "server", required_argument, NULL, 's' },
		{ "sessions", required_argument, NULL, 'S' },
		{ "heartbeat", required_argument, NULL, 'H' },
		{ "cpu", required_argument, NULL, 'C' },
		{ "memory", required_argument, NULL, 'm' },
		{ "max-pods", required_argument, NULL, 'P' },
		{ "arch", required_argument, NULL, 'a' },
		{ "labels", required_argument, NULL, 'l' },
		{ "duration", required_argument, NULL, 'd' },
		{ "report", required_argument, NULL, 'r' },
		{ "expect-pods", required_argument, NULL, 'e' },
		{ "config", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct options *o = &h.o;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		int r = 0;
		switch (opt) {
		case 'c':
			r = parse_long(optarg, 1, HOLLOW_MAX_NODES, &o->count);
			break;
		case 'p':
			o->prefix = optarg;
			break;
		case 's':
			o->server = optarg;
			break;
		case 'S':
			r = parse_long(optarg, 1, HOLLOW_MAX_SESSIONS, &o->sessions);
			break;
		case 'H':
			r = parse_long(optarg, 1, 300, &o->heartbeat_s);
			break;
		case 'C':
			o->cpu = optarg;
			break;
		case 'm':
			o->memory = optarg;
			break;
		case 'P':
			r = parse_long(optarg, 1, 10000, &o->max_pods);
			break;
		case 'a':
			o->arch = optarg;
			break;
		case 'l':
			o->labels = optarg;
			break;
		case 'd':
			r = parse_long(optarg, 1, 86400 * 365, &o->duration_s);
			break;
		case 'r':
			r = parse_long(optarg, 1, 3600, &o->report_s);
			break;
		case 'e':
			r = parse_long(optarg, 1, 10000000, &o->expect);
			break;
		case 'f':
			o->config = optarg;
			break;
		case 'h':
			usage(stdout);
			return CLI_OK;
		default:
			usage(stderr);
			return CLI_USAGE;
		}
		for (size_t i = 0; r < 0 && long_options[i].name; i++)
			if (long_options[i].val == opt)
				return cli_usage_error(usage, "--%s: '%s' is out of range or not a number",
				                       long_options[i].name, optarg);
	}
	if (optind != argc || o->count == 0)
		return cli_usage_error(usage, "--count N is required (1 to %d)", HOLLOW_MAX_NODES);
	if (strlen(o->prefix) > 40 || !o->prefix[0])
		return cli_usage_error(usage, "--prefix: 1 to 40 characters");
	if (o->sessions > o->count)
		o->sessions = o->count;

	struct error err = { 0 };
	struct clientconfig config;
	char path[CLIENTCONFIG_PATH_MAX];
	clientconfig_path(o->config, path, sizeof(path));
	if (clientconfig_load(path, &config, &err) < 0)
		return cli_fail(&err);
	const char *server = o->server ? o->server : config.server;
	log_set_level(LOG_LEVEL_WARN); /* libcoap's retries are not the user's business */
	if (loop_new(&h.loop) < 0) {
		clientconfig_clear(&config);
		error_set(&err, ENOMEM, "no event loop");
		return cli_fail(&err);
	}
	h.nodes = xcalloc((size_t)o->count, sizeof(*h.nodes));
	for (long i = 0; i < o->count; i++)
		snprintf(h.nodes[i].name, sizeof(h.nodes[i].name), "%s-%05ld", o->prefix, i);
	clock_format_rfc3339(time(NULL), h.started);
	int r = 0;
	for (long i = 0; i < o->sessions && r == 0; i++) {
		/* A server binding ten thousand pods answers late: patience before a session is
		 * taken for lost. */
		struct link_options lo = { .servers = { server },
			                   .identity = config.identity,
			                   .key = config.key,
			                   .request_timeout_ms = 30000 };
		h.sessions[i].h = &h;
		r = link_new(h.loop, &lo, &h.sessions[i].link, &err);
		if (r == 0)
			link_set_state_hook(h.sessions[i].link, on_state, &h.sessions[i]);
	}
	h.scheduled_base = -1;
	if (r == 0 && o->expect > 0) {
		struct link_options lo = { .servers = { server }, .identity = config.identity, .key = config.key };
		r = link_new(h.loop, &lo, &h.metrics, &err);
		if (r == 0)
			loop_add_timer(h.loop, METRICS_POLL_MS, on_metrics_due, &h);
	}
	clientconfig_clear(&config);
	if (r == 0) {
		fprintf(stderr, "hollow-nodes: %ld nodes %s-00000... on %s over %ld sessions\n", o->count, o->prefix,
		        server, o->sessions);
		loop_add_signal(h.loop, SIGINT, on_signal, &h);
		loop_add_signal(h.loop, SIGTERM, on_signal, &h);
		loop_add_timer(h.loop, (uint64_t)o->heartbeat_s * 1000 / HEARTBEAT_SLICES, on_heartbeat, &h);
		loop_add_timer(h.loop, (uint64_t)o->report_s * 1000, on_report, &h);
		if (o->duration_s)
			loop_add_timer(h.loop, (uint64_t)o->duration_s * 1000, on_stop, &h);
		r = loop_run(h.loop);
		if (r < 0)
			error_set(&err, -r, "event loop: %s", strerror(-r));
		fprintf(stderr, "hollow-nodes: stopped: %ld/%ld nodes registered, %ld pods bound, %ld running\n",
		        h.registered, o->count, h.bound, h.running);
	}
	if (h.watch)
		link_observe_cancel(h.sessions[0].link, h.watch);
	for (long i = 0; i < o->sessions; i++)
		link_free(h.sessions[i].link);
	link_free(h.metrics);
	for (struct work *w = h.head, *next; w; w = next) {
		next = w->next;
		work_free(w);
	}
	map_each(e, &h.pods)
	{
		free(e->value);
	}
	map_clear(&h.pods);
	free(h.list_continue);
	free(h.nodes);
	loop_free(h.loop);
	return r < 0 ? cli_fail(&err) : CLI_OK;
}
