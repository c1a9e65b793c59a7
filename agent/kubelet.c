/* The kubelet's side facing the control plane.
 *
 * State:
 *   link            the asynchronous CoAP/DTLS link (core/link), reconnecting by itself
 *   node            the Node as last sent (status), whether it is registered, the heartbeat timer
 *   pods            one entry per pod bound here: the running pod (agent/pod), the status
 *                   last written and whether a write is due or in flight
 *   watch, revision the Observe on "pods with spec.nodeName=<me>" and the last revision seen;
 *                   fetching/missed: a catch-up GET under way, notifications seen meanwhile
 *
 * When the link comes up: register the Node (POST, or PATCH of its status when it exists),
 * then watch the pods bound here: a GET of the list (no revision yet) or of the events since
 * the last revision seen (after a reconnect, or from the pod cache after a restart), then an
 * Observe from there (see fetch_pods). A control plane that comes back sees no relist from
 * every board at once: only a board whose revision fell out of the change log lists again.
 *
 * A pod seen for the first time has its ConfigMaps and Secrets fetched, then starts. A pod
 * with a deletionTimestamp is stopped within its grace period; once its containers are gone
 * the kubelet deletes it for good (DELETE with gracePeriodSeconds=0), as Kubernetes' does.
 * Status writes are merge patches of status, at most one in flight per pod, sent only when
 * the patch would change the status the API holds: the newest of the object last received
 * from the watch and the object the last write returned (by resourceVersion). Every object
 * received is compared again, so a status someone else changed (the node lifecycle
 * controller marking pods not Ready while the board was unreachable) is put right; the
 * status last written is never sent again while the API holds nothing newer (so that
 * whatever the API server normalises cannot start a write loop). Heartbeats are PATCHes of the Node's
 * status that change only heartbeat times: the control plane keeps those in memory.
 *
 * Autonomy (DESIGN.md section 7). Pods outlive the agent: kubelet_free releases them
 * (pod_release) and every pod starts through pod_adopt, which re-opens what an earlier agent
 * process left running. The pod cache (agent/podcache) holds the pods bound here, their
 * ConfigMaps and Secrets, and the watch's revision; each watch notification is one cache
 * transaction, which writes only what changed. At start, before any control plane: static
 * pods, then the cached pods (adopted or started afresh), then pod state directories that
 * neither names are removed (pod_discard_orphan). The revision comes from the cache, so
 * the first watch resumes rather than lists.
 *
 * Static pods ([agent] static-pods, agent/staticpods): entries with is_static, never stopped
 * by the API. Their status goes to a mirror pod, made once connected (the Node's uid known,
 * the watch answered):
 *     no mirror --ensure_mirror (POST)--> in flight --201--> mirror_uid set, status written
 *                                                   --409--> conflict: GET it; ours: adopted;
 *                                                            another manifest's: deleted
 *     mirror deleted (DELETED event, status 404) --> no mirror (made again)
 *     manifest removed or changed (SIGHUP: kubelet_reload) --> retiring: stopped, then the
 *                                                              mirror deleted, entry freed
 * A mirror pod in the watch that no static pod here claims is deleted.
 */
#include "agent/kubelet.h"

#include <dirent.h>
#include <errno.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/config.h"
#include "agent/events.h"
#include "agent/imagepull.h"
#include "agent/images.h"
#include "agent/log_server.h"
#include "agent/network.h"
#include "agent/node.h"
#include "agent/pod.h"
#include "agent/podcache.h"
#include "agent/podspec.h"
#include "agent/staticpods.h"
#include "agent/stats.h"
#include "core/object.h"
#include "drivers/runtime.h"
#include "platform/board.h"
#include "platform/cgroups.h"
#include "platform/error.h"
#include "platform/file.h"
#include "platform/log.h"
#include "platform/loop.h"
#include "platform/memory.h"

#define KUBELET_PATH_MAX 512
#define KUBELET_STATUS_REFRESH_BEATS 6 /* a full status (usage, conditions) every 6th beat */

struct entry {
	struct entry *next;
	struct kubelet *kubelet;
	char *uid, *namespace, *name;
	cJSON *object;          /* latest from the API */
	struct pod *pod;        /* NULL while its config is being fetched */
	cJSON *config;          /* {"configmaps": {...}, "secrets": {...}} gathered for the start */
	int fetches;            /* config requests in flight */
	char *sent_status;      /* the last status the API acknowledged */
	uint64_t sent_revision; /* the resourceVersion that write made */
	cJSON *api_status;      /* the status the API holds, as far as we know (NULL: none) */
	uint64_t api_revision;  /* the resourceVersion it came with */
	bool status_due, status_in_flight;
	bool deleted_in_api; /* gone from the API: nothing to write back */
	bool final_delete_sent;
	bool stopped; /* pod_terminate has finished */
	/* Static pods (from [agent] static-pods): their uid is the manifest's config hash. */
	bool is_static;
	bool retiring;         /* its manifest is gone or changed: stopping for good */
	char *mirror_uid;      /* the mirror pod in the API, when known */
	bool mirror_in_flight; /* a create is under way */
	bool mirror_conflict;  /* the name is taken (an older mirror): wait for the watch */
};

struct kubelet {
	struct loop *loop;
	const struct config *config;
	struct link *link;
	const struct runtime_ops *driver;
	struct images_store images;
	struct imagepull *pulls;
	struct cgroups *cgroups;
	char *state_dir, *log_dir;
	char host_ip[BOARD_ADDRESS_TEXT_MAX];
	struct pod_env pod_env;

	struct board_facts facts;
	struct node_options node_options;
	cJSON *node_status; /* as last sent */
	bool node_registered, node_in_flight;
	unsigned beats;
	struct loop_timer *heartbeat_timer;

	struct entry *entries;
	struct link_observation *watch;
	char revision[24]; /* "" until a list or event was seen */
	struct loop_timer *flush_timer;
	struct loop_timer *rewatch_timer;
	bool watch_synced; /* the watch has answered since the link came up */
	bool fetching;     /* a GET of the list or of events is under way */
	bool missed;       /* and notifications came meanwhile: fetch again after it */

	int static_watch_fd;                    /* inotify on [agent] static-pods, or -1 */
	struct loop_timer *static_reload_timer; /* a burst of changes is read once */

	struct podcache *cache;        /* NULL when it cannot be opened: no autonomy, still a kubelet */
	char *node_uid;                /* the Node's metadata.uid (owner of mirror pods) */
	struct stats *stats;           /* usage reported beside each heartbeat (agent/stats.c) */
	struct log_server *log_server; /* `bramble logs` answered from here (agent/log_server.c) */
};

static void start_watch(struct kubelet *k);
static void flush_statuses(struct kubelet *k);

static bool pod_terminating_object(const cJSON *object)
{
	return object_string_at(object, "metadata.deletionTimestamp") != NULL;
}

size_t kubelet_pod_count(const struct kubelet *kubelet)
{
	size_t n = 0;
	for (const struct entry *e = kubelet->entries; e; e = e->next)
		n++;
	return n;
}

/* --- entries ------------------------------------------------------------------------------ */

static struct entry *find_entry(struct kubelet *k, const char *uid)
{
	for (struct entry *e = k->entries; e; e = e->next)
		if (strcmp(e->uid, uid) == 0)
			return e;
	return NULL;
}

static void free_entry(struct kubelet *k, struct entry *e)
{
	for (struct entry **p = &k->entries; *p; p = &(*p)->next) {
		if (*p == e) {
			*p = e->next;
			break;
		}
	}
	pod_free(e->pod);
	cJSON_Delete(e->object);
	free(e->mirror_uid);
	cJSON_Delete(e->config);
	free(e->sent_status);
	cJSON_Delete(e->api_status);
	free(e->uid);
	free(e->namespace);
	free(e->name);
	free(e);
}

static char *pod_path(const struct entry *e, const char *suffix)
{
	return xasprintf("/api/v1/namespaces/%s/pods/%s%s", e->namespace, e->name, suffix);
}

/* --- the local cache (agent/podcache) --------------------------------------------------- */

static void cache_pod(struct kubelet *k, const cJSON *object)
{
	struct error err;
	if (k->cache && podcache_pod_put(k->cache, object, &err) < 0)
		log_warnx("%s", err.message);
}

static void uncache_pod(struct kubelet *k, const char *uid)
{
	struct error err;
	if (k->cache && podcache_pod_delete(k->cache, uid, &err) < 0)
		log_warnx("%s", err.message);
}

static void cache_config(struct kubelet *k, bool secret, const cJSON *object)
{
	struct error err;
	if (k->cache && podcache_config_put(k->cache, secret, object, &err) < 0)
		log_warnx("%s", err.message);
}

/* --- status write-back ----------------------------------------------------------------- */

struct status_write {
	struct kubelet *kubelet;
	char *uid;
	char *status; /* what was sent */
};

static uint64_t revision_of(const cJSON *object)
{
	const char *rv = object_string_at(object, "metadata.resourceVersion");
	return rv ? strtoull(rv, NULL, 10) : 0;
}

/* The API's copy of the pod's status as of object (from the watch, or the answer to a
 * write), unless a newer one is known already. */
static void api_status_seen(struct entry *e, const cJSON *object)
{
	uint64_t revision = revision_of(object);
	if (e->api_status && revision < e->api_revision)
		return;
	cJSON_Delete(e->api_status);
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(object, "status");
	e->api_status = cJSON_IsObject(status) ? cJSON_Duplicate(status, 1) : cJSON_CreateObject();
	e->api_revision = revision;
}

/* Whether writing status (text: its JSON) would change the pod as the API has it. */
static bool status_differs(const struct entry *e, const cJSON *status, const char *text)
{
	if (e->sent_status && e->sent_revision >= e->api_revision && strcmp(text, e->sent_status) == 0)
		return false; /* written, and nothing newer seen since */
	if (!e->api_status)
		return true;
	cJSON *merged = cJSON_Duplicate(e->api_status, 1);
	bool differs = object_merge_patch(merged, status, NULL) < 0 || !cJSON_Compare(merged, e->api_status, true);
	cJSON_Delete(merged);
	return differs;
}

static void schedule_flush(struct kubelet *k);

static void on_status_written(const struct client_response *response, const struct error *err, void *data)
{
	struct status_write *w = data;
	struct entry *e = find_entry(w->kubelet, w->uid);
	if (e) {
		e->status_in_flight = false;
		if (response && response->code < 300) {
			cJSON *object = response->body ? cJSON_ParseWithLength(response->body, response->length) : NULL;
			free(e->sent_status);
			e->sent_status = w->status;
			w->status = NULL;
			/* the answer is the pod as written: its revision is the newest we know */
			e->sent_revision = object ? revision_of(object) : e->api_revision;
			if (object)
				api_status_seen(e, object);
			cJSON_Delete(object);
		} else {
			if (response && response->code == 404 && e->is_static) {
				free(e->mirror_uid); /* the mirror pod is gone: made again */
				e->mirror_uid = NULL;
				e->status_due = true;
			} else if (response && response->code == 404) {
				e->deleted_in_api = true; /* gone: the watch will say so */
			} else {
				log_warnx("pod %s/%s: status not written: %s", e->namespace, e->name,
				          response ? response->message : err->message);
				e->status_due = true;
			}
		}
		if (e->status_due)
			schedule_flush(w->kubelet);
	}
	free(w->status);
	free(w->uid);
	free(w);
}

static void write_status(struct kubelet *k, struct entry *e)
{
	if (!e->pod || e->deleted_in_api || e->status_in_flight || (e->is_static && !e->mirror_uid))
		return; /* still due: sent after the write in flight (or once the mirror pod exists) */
	e->status_due = false;
	cJSON *status = pod_status(e->pod);
	char *text = cJSON_PrintUnformatted(status);
	bool differs = status_differs(e, status, text);
	cJSON_Delete(status);
	if (!differs) {
		free(text);
		return;
	}
	cleanup_free char *body = xasprintf("{\"status\":%s}", text);
	cleanup_free char *path = pod_path(e, "/status");
	struct status_write *w = xcalloc(1, sizeof(*w));
	w->kubelet = k;
	w->uid = xstrdup(e->uid);
	w->status = text;
	struct error err;
	if (link_request(k->link, CLIENT_PATCH, path, body, strlen(body), on_status_written, w, &err) < 0) {
		e->status_due = true; /* sent when the link is back */
		free(w->uid);
		free(w->status);
		free(w);
		return;
	}
	e->status_in_flight = true;
}

static void flush_due(struct loop *loop, void *data)
{
	(void)loop;
	struct kubelet *k = data;
	k->flush_timer = NULL;
	flush_statuses(k);
}

static void schedule_flush(struct kubelet *k)
{
	if (!k->flush_timer)
		k->flush_timer = loop_add_timer(k->loop, 0, flush_due, k);
}

static void on_final_delete(const struct client_response *response, const struct error *err, void *data)
{
	struct status_write *w = data;
	struct entry *e = find_entry(w->kubelet, w->uid);
	if (e && (!response || (response->code >= 300 && response->code != 404))) {
		log_warnx("pod %s/%s: final delete failed: %s", e->namespace, e->name,
		          response ? response->message : err->message);
		e->final_delete_sent = false; /* tried again on the next flush */
	} else if (e) {
		free_entry(w->kubelet, e);
	}
	free(w->uid);
	free(w);
}

/* A stopped pod that the API still has (with a deletionTimestamp): delete it for good. */
static void final_delete(struct kubelet *k, struct entry *e)
{
	if (e->final_delete_sent)
		return;
	cleanup_free char *path = pod_path(e, "?gracePeriodSeconds=0");
	struct status_write *w = xcalloc(1, sizeof(*w));
	w->kubelet = k;
	w->uid = xstrdup(e->uid);
	struct error err;
	if (link_request(k->link, CLIENT_DELETE, path, NULL, 0, on_final_delete, w, &err) < 0) {
		free(w->uid);
		free(w);
		return;
	}
	e->final_delete_sent = true;
}

static void delete_mirror(struct kubelet *k, const char *namespace, const char *name);
static void ensure_mirror(struct kubelet *k, struct entry *e);
static bool mirror_owned_by_another(struct kubelet *k, const struct entry *e);

static void flush_statuses(struct kubelet *k)
{
	bool up = link_is_up(k->link);
	for (struct entry *e = k->entries, *next; e; e = next) {
		next = e->next;
		if (e->stopped && e->is_static) {
			/* A static pod whose manifest went: its mirror goes too (or with the next list). */
			if (up && !mirror_owned_by_another(k, e))
				delete_mirror(k, e->namespace, e->name);
			free_entry(k, e);
			continue;
		}
		if (!up)
			continue;
		if (e->is_static)
			ensure_mirror(k, e);
		if (e->stopped) {
			if (e->deleted_in_api)
				free_entry(k, e);
			else
				final_delete(k, e);
			continue;
		}
		if (e->status_due)
			write_status(k, e);
	}
}

static void on_pod_event(struct pod *pod, const char *container, const char *type, const char *reason,
                         const char *message, void *data)
{
	struct kubelet *k = data;
	struct event_subject about = { pod_namespace(pod), pod_name(pod), pod_uid(pod), container,
		                       k->config->node_name };
	event_post(k->link, &about, type, reason, "%s", message);
}

static void on_pod_status_changed(struct pod *pod, void *data)
{
	struct kubelet *k = data;
	struct error err;
	if (pod_save_state(pod, &err) < 0) /* for a later agent process to adopt it */
		log_warnx("pod %s/%s: %s", pod_namespace(pod), pod_name(pod), err.message);
	struct entry *e = find_entry(k, pod_uid(pod));
	if (!e)
		return;
	e->status_due = true;
	schedule_flush(k);
}

static void on_pod_terminated(struct pod *pod, void *data)
{
	struct kubelet *k = data;
	struct entry *e = find_entry(k, pod_uid(pod));
	if (!e)
		return;
	if (pod_evicted(pod) && !pod_terminating_object(e->object)) {
		e->status_due = true; /* Failed, Evicted: kept in the API until it is deleted there */
		schedule_flush(k);
		return;
	}
	e->stopped = true;
	schedule_flush(k);
}

/* --- starting pods: their ConfigMaps and Secrets first ------------------------------------- */

static void start_pod(struct kubelet *k, struct entry *e)
{
	/* Adopted when an earlier agent process left it running. */
	e->pod = pod_adopt(&k->pod_env, e->object, e->config);
	e->status_due = true;
	schedule_flush(k);
}

struct fetch {
	struct kubelet *kubelet;
	char *uid;
	bool secret;
	bool refresh; /* a running pod's object fetched again (refresh_config) */
	char *name;
};

static void refreshed(struct kubelet *k, struct entry *e, const struct fetch *f, cJSON *object)
{
	cJSON *map = cJSON_GetObjectItemCaseSensitive(e->config, f->secret ? "secrets" : "configmaps");
	const cJSON *had = cJSON_GetObjectItemCaseSensitive(map, f->name);
	if (!object || !map || (had && cJSON_Compare(had, object, 1))) {
		cJSON_Delete(object); /* gone (kept as it was, as the kubelet does) or unchanged */
		return;
	}
	cache_config(k, f->secret, object);
	cJSON_DeleteItemFromObjectCaseSensitive(map, f->name);
	cJSON_AddItemToObject(map, f->name, object);
	if (e->pod)
		pod_update_config(e->pod, e->config);
}

static void on_config_fetched(const struct client_response *response, const struct error *err, void *data)
{
	struct fetch *f = data;
	struct entry *e = find_entry(f->kubelet, f->uid);
	if (e && f->refresh) {
		cJSON *object = response && response->code == 205
		                        ? cJSON_ParseWithLength(response->body, response->length)
		                        : NULL;
		refreshed(f->kubelet, e, f, object);
	} else if (e) {
		e->fetches--;
		cJSON *object = NULL;
		if (response && response->code == 205)
			object = cJSON_ParseWithLength(response->body, response->length);
		if (object)
			cache_config(f->kubelet, f->secret, object);
		if (object)
			cJSON_AddItemToObject(
			        cJSON_GetObjectItemCaseSensitive(e->config, f->secret ? "secrets" : "configmaps"),
			        f->name, object);
		else
			log_warnx("pod %s/%s: %s %s: %s", e->namespace, e->name, f->secret ? "secret" : "configmap",
			          f->name, response ? response->message : err->message);
		if (e->fetches == 0 && !e->pod && !pod_terminating_object(e->object))
			start_pod(f->kubelet, e);
	}
	free(f->uid);
	free(f->name);
	free(f);
}

static void fetch_config_and_start(struct kubelet *k, struct entry *e)
{
	cJSON_Delete(e->config);
	e->config = cJSON_CreateObject();
	cJSON_AddObjectToObject(e->config, "configmaps");
	cJSON_AddObjectToObject(e->config, "secrets");
	cJSON *refs = podspec_config_refs(e->object);
	for (int secret = 0; secret < 2; secret++) {
		const cJSON *name;
		cJSON_ArrayForEach(name, cJSON_GetObjectItemCaseSensitive(refs, secret ? "secrets" : "configmaps"))
		{
			cleanup_free char *path = xasprintf("/api/v1/namespaces/%s/%s/%s", e->namespace,
			                                    secret ? "secrets" : "configmaps", name->valuestring);
			struct fetch *f = xcalloc(1, sizeof(*f));
			f->kubelet = k;
			f->uid = xstrdup(e->uid);
			f->secret = secret;
			f->name = xstrdup(name->valuestring);
			struct error err;
			if (link_request(k->link, CLIENT_GET, path, NULL, 0, on_config_fetched, f, &err) < 0) {
				free(f->uid);
				free(f->name);
				free(f);
				continue; /* missing: the pod reports CreateContainerConfigError */
			}
			e->fetches++;
		}
	}
	cJSON_Delete(refs);
	if (e->fetches == 0)
		start_pod(k, e);
}

/* ConfigMaps and Secrets change under running pods: each one a running pod uses is read
 * again every few heartbeats (as the kubelet's TTL cache does), and the pod's volumes are
 * rewritten when it changed. Reads only; nothing is written when nothing changed. */
static void refresh_config(struct kubelet *k)
{
	for (struct entry *e = k->entries; e; e = e->next) {
		if (e->pod && !e->stopped)
			pod_check_volumes(e->pod); /* emptyDir sizeLimit, checked as often */
		if (!e->pod || e->stopped || e->fetches > 0 || !e->config || pod_terminating_object(e->object))
			continue;
		cJSON *refs = podspec_config_refs(e->object);
		for (int secret = 0; secret < 2; secret++) {
			const cJSON *name;
			cJSON_ArrayForEach(name,
			                   cJSON_GetObjectItemCaseSensitive(refs, secret ? "secrets" : "configmaps"))
			{
				cleanup_free char *path =
				        xasprintf("/api/v1/namespaces/%s/%s/%s", e->namespace,
				                  secret ? "secrets" : "configmaps", name->valuestring);
				struct fetch *f = xcalloc(1, sizeof(*f));
				*f = (struct fetch){ k, xstrdup(e->uid), secret, true, xstrdup(name->valuestring) };
				struct error err;
				if (link_request(k->link, CLIENT_GET, path, NULL, 0, on_config_fetched, f, &err) < 0) {
					free(f->uid);
					free(f->name);
					free(f);
				}
			}
		}
		cJSON_Delete(refs);
	}
}

/* --- the pods bound here ------------------------------------------------------------------- */

static int64_t grace_of(const cJSON *object)
{
	const cJSON *g = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(object, "metadata"),
	                                                  "deletionGracePeriodSeconds");
	if (cJSON_IsNumber(g) && g->valuedouble >= 0)
		return (int64_t)g->valuedouble;
	g = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(object, "spec"),
	                                     "terminationGracePeriodSeconds");
	return cJSON_IsNumber(g) && g->valuedouble >= 0 ? (int64_t)g->valuedouble : 30;
}

static void stop_entry(struct kubelet *k, struct entry *e, int64_t grace)
{
	if (e->pod && pod_terminated(e->pod)) {
		e->stopped = true; /* evicted and stopped before: nothing more to stop */
		schedule_flush(k);
	} else if (e->pod) {
		pod_terminate(e->pod, grace);
	} else {
		e->stopped = true; /* never started: nothing to stop */
		schedule_flush(k);
	}
}

static struct entry *new_entry(struct kubelet *k, const cJSON *object)
{
	struct entry *e = xcalloc(1, sizeof(*e));
	e->kubelet = k;
	e->uid = xstrdup(object_string_at(object, "metadata.uid"));
	e->name = xstrdup(object_name(object));
	e->namespace = xstrdup(object_namespace(object) ? object_namespace(object) : "default");
	e->object = cJSON_Duplicate(object, 1);
	e->next = k->entries;
	k->entries = e;
	return e;
}

static bool finished_object(const cJSON *object)
{
	const char *phase = object_string_at(object, "status.phase");
	return phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0);
}

static void mirror_seen(struct kubelet *k, const cJSON *object);
static void mirror_gone(struct kubelet *k, const cJSON *object);

/* An object as the API has it now (ADDED / MODIFIED, or an item of a list). */
static void pod_seen(struct kubelet *k, const cJSON *object)
{
	const char *uid = object_string_at(object, "metadata.uid");
	const char *name = object_name(object);
	const char *node = object_string_at(object, "spec.nodeName");
	if (!uid || !name || !node || strcmp(node, k->config->node_name) != 0)
		return;
	if (staticpods_mirror_hash(object)) {
		mirror_seen(k, object);
		return;
	}
	struct entry *e = find_entry(k, uid);
	if (!e) {
		if (finished_object(object))
			return; /* finished before (and kept by the API): nothing to run */
		cache_pod(k, object);
		e = new_entry(k, object);
		api_status_seen(e, object);
		if (pod_terminating_object(object)) {
			e->stopped = true; /* deleted before it ever ran here */
			schedule_flush(k);
			return;
		}
		fetch_config_and_start(k, e);
		return;
	}
	if (e->is_static)
		return; /* a static pod's uid in the API: not a pod of ours to follow */
	cache_pod(k, object);
	cJSON_Delete(e->object);
	e->object = cJSON_Duplicate(object, 1);
	api_status_seen(e, object);
	if (e->pod && !e->stopped) {
		e->status_due = true; /* written only when the API's copy differs from ours */
		schedule_flush(k);
	}
	if (e->pod)
		pod_update(e->pod, object);
	if (pod_terminating_object(object))
		stop_entry(k, e, grace_of(object));
}

static void pod_gone(struct kubelet *k, const cJSON *object)
{
	if (staticpods_mirror_hash(object)) {
		mirror_gone(k, object);
		return;
	}
	const char *uid = object_string_at(object, "metadata.uid");
	if (uid)
		uncache_pod(k, uid);
	struct entry *e = uid ? find_entry(k, uid) : NULL;
	if (!e || e->is_static)
		return;
	e->deleted_in_api = true;
	stop_entry(k, e, 0);
}

static void discard_orphans(struct kubelet *k);

static void remember_revision(struct kubelet *k, const char *rv)
{
	if (rv && rv[0])
		snprintf(k->revision, sizeof(k->revision), "%s", rv);
}

/* A list: pods not in it are gone. */
static void apply_list(struct kubelet *k, const cJSON *list)
{
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(list, "items");
	for (struct entry *e = k->entries; e; e = e->next) {
		if (e->is_static) {
			/* Mirror pods are found again among the items. */
			free(e->mirror_uid);
			e->mirror_uid = NULL;
			e->mirror_conflict = false;
			continue;
		}
		bool present = false;
		const cJSON *item;
		cJSON_ArrayForEach(item, items)
		{
			const char *uid = object_string_at(item, "metadata.uid");
			present = present || (uid && strcmp(uid, e->uid) == 0);
		}
		if (!present)
			uncache_pod(k, e->uid);
		if (!present && !e->stopped) {
			e->deleted_in_api = true;
			stop_entry(k, e, 0);
		}
	}
	const cJSON *item;
	cJSON_ArrayForEach(item, items) pod_seen(k, item);
	remember_revision(k, object_string_at(list, "metadata.resourceVersion"));
	discard_orphans(k); /* left by an earlier agent, deleted since */
	network_pods_listed_json(k->pod_env.network, items);
}

static void apply_events(struct kubelet *k, const cJSON *doc)
{
	const cJSON *event;
	cJSON_ArrayForEach(event, cJSON_GetObjectItemCaseSensitive(doc, "events"))
	{
		const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(event, "type"));
		const cJSON *object = cJSON_GetObjectItemCaseSensitive(event, "object");
		if (!type || !object)
			continue;
		if (strcmp(type, "DELETED") == 0)
			pod_gone(k, object);
		else
			pod_seen(k, object);
		remember_revision(k, object_string_at(object, "metadata.resourceVersion"));
	}
	remember_revision(k, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "resourceVersion")));
}

/* The watch of the pods bound here, as agent/network.c watches: catch up by plain GETs (the
 * list when there is no revision yet, else the events since the revision), then Observe
 * from there. Big answers come block-wise only to GETs: an Observe whose first answer
 * spanned blocks would be restarted (its events lost) by every notification arriving
 * meanwhile. A notification too big for a datagram ("truncated") is fetched the same way;
 * notifications that arrive during a fetch are covered by fetching again after it. */
static void fetch_pods(struct kubelet *k);

static void rewatch_due(struct loop *loop, void *data)
{
	(void)loop;
	struct kubelet *k = data;
	k->rewatch_timer = NULL;
	start_watch(k);
}

static void rewatch_soon(struct kubelet *k, uint64_t delay_ms)
{
	if (k->watch) {
		link_observe_cancel(k->link, k->watch);
		k->watch = NULL;
	}
	k->fetching = false;
	if (!k->rewatch_timer)
		k->rewatch_timer = loop_add_timer(k->loop, delay_ms, rewatch_due, k);
}

/* A list or a batch of events: what it changes reaches the cache in one transaction, with
 * the revision it brings us to (see podcache.c: never ahead of what is stored). */
static void apply_pods(struct kubelet *k, const cJSON *doc)
{
	struct error err;
	k->watch_synced = true;
	if (k->cache && podcache_begin(k->cache, &err) < 0)
		log_warnx("%s", err.message);
	if (cJSON_GetObjectItemCaseSensitive(doc, "items"))
		apply_list(k, doc);
	else
		apply_events(k, doc);
	if (k->cache && podcache_commit(k->cache, k->revision, false, &err) < 0)
		log_warnx("%s", err.message);
	schedule_flush(k); /* statuses, mirror pods to make */
}

static void on_pods_notified(int code, const char *body, size_t length, const struct error *err, void *data)
{
	struct kubelet *k = data;
	if (code != 205) {
		k->watch = NULL; /* ended */
		if (code == 0) {
			log_debug("pod watch ended: %s", err ? err->message : "");
			return; /* the link is down; watched again when it is up */
		}
		/* Too old a revision (the change log moved on): list again. */
		log_info("pod watch refused (%d: %s): listing again", code, err ? err->message : "");
		k->revision[0] = '\0';
		rewatch_soon(k, 1000);
		return;
	}
	if (k->fetching) {
		k->missed = true; /* covered by fetching again */
		return;
	}
	cJSON *doc = cJSON_ParseWithLength(body, length);
	if (!doc) {
		log_warnx("pod watch: a notification that is not JSON");
		return;
	}
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "truncated")))
		fetch_pods(k); /* did not fit a datagram: fetched from the revision we have */
	else
		apply_pods(k, doc);
	cJSON_Delete(doc);
}

static void observe_pods(struct kubelet *k)
{
	if (k->watch || !link_is_up(k->link))
		return;
	char path[KUBELET_PATH_MAX];
	snprintf(path, sizeof(path), "/api/v1/pods?fieldSelector=spec.nodeName%%3D%s&resourceVersion=%s",
	         k->config->node_name, k->revision);
	struct error err;
	if (link_observe(k->link, path, on_pods_notified, k, &k->watch, &err) < 0) {
		log_warnx("cannot watch this node's pods: %s", err.message);
		rewatch_soon(k, 1000);
	}
}

static void on_pods_fetched(const struct client_response *response, const struct error *err, void *data)
{
	struct kubelet *k = data;
	if (!k->fetching)
		return; /* given up on (rewatch_soon): a newer fetch follows */
	k->fetching = false;
	if (!response) {
		log_debug("pods: %s", err->message);
		return; /* the link is down: fetched again when it is up */
	}
	if (response->code != 205) {
		/* 4.04 Expired: the revision is older than the change log keeps. */
		log_info("pods since revision %s: %d %s: listing again", k->revision, response->code,
		         response->message);
		k->revision[0] = '\0';
		rewatch_soon(k, 1000);
		return;
	}
	cJSON *doc = cJSON_ParseWithLength(response->body, response->length);
	if (!doc) {
		log_warnx("pods: an answer that is not JSON");
		rewatch_soon(k, 1000);
		return;
	}
	apply_pods(k, doc);
	cJSON_Delete(doc);
	if (k->missed) {
		k->missed = false;
		fetch_pods(k);
		return;
	}
	observe_pods(k);
}

/* A GET of the list (no revision yet) or of the events since the revision. */
static void fetch_pods(struct kubelet *k)
{
	char path[KUBELET_PATH_MAX];
	if (k->revision[0])
		snprintf(path, sizeof(path),
		         "/api/v1/pods?fieldSelector=spec.nodeName%%3D%s&watch=1&resourceVersion=%s",
		         k->config->node_name, k->revision);
	else
		snprintf(path, sizeof(path), "/api/v1/pods?fieldSelector=spec.nodeName%%3D%s", k->config->node_name);
	struct error err;
	if (link_request(k->link, CLIENT_GET, path, NULL, 0, on_pods_fetched, k, &err) < 0) {
		log_debug("pods: %s", err.message);
		return;
	}
	k->fetching = true;
	k->missed = false;
}

/* The pod watch: catch up with plain GETs (the list first, or the events since the revision
 * the cache or the last notification left), then Observe from there. Big answers come
 * block-wise only to GETs: an Observe whose first answer spanned blocks would be restarted by
 * libcoap for every notification that arrived meanwhile (the API server answers such a
 * registration with {"truncated":true} instead). A notification too big for a datagram is
 * fetched the same way; notifications during a fetch are covered by fetching again. After a
 * reconnect this resumes from the revision: no relist. */
static void start_watch(struct kubelet *k)
{
	if (k->watch || k->fetching || !link_is_up(k->link))
		return;
	fetch_pods(k);
}

/* --- static pods and their mirror pods --------------------------------------------------- */

static void fetch_mirror(struct kubelet *k, struct entry *e);

static struct entry *find_static(struct kubelet *k, const char *uid)
{
	struct entry *e = uid ? find_entry(k, uid) : NULL;
	return e && e->is_static ? e : NULL;
}

/* Another static pod of the same name (an edited manifest) whose mirror pod exists. */
static bool mirror_owned_by_another(struct kubelet *k, const struct entry *e)
{
	for (const struct entry *o = k->entries; o; o = o->next)
		if (o != e && o->is_static && o->mirror_uid && strcmp(o->name, e->name) == 0 &&
		    strcmp(o->namespace, e->namespace) == 0)
			return true;
	return false;
}

static void on_mirror_deleted(const struct client_response *response, const struct error *err, void *data)
{
	char *what = data;
	if (!response || (response->code >= 300 && response->code != 404))
		log_warnx("mirror pod %s not deleted: %s", what, response ? response->message : err->message);
	free(what);
}

static void delete_mirror(struct kubelet *k, const char *namespace, const char *name)
{
	cleanup_free char *path = xasprintf("/api/v1/namespaces/%s/pods/%s?gracePeriodSeconds=0", namespace, name);
	char *what = xasprintf("%s/%s", namespace, name);
	struct error err;
	if (link_request(k->link, CLIENT_DELETE, path, NULL, 0, on_mirror_deleted, what, &err) < 0)
		free(what);
}

static void on_mirror_created(const struct client_response *response, const struct error *err, void *data)
{
	struct status_write *w = data;
	struct entry *e = find_static(w->kubelet, w->uid);
	if (e) {
		e->mirror_in_flight = false;
		cJSON *object = response && response->code == 201 && response->body
		                        ? cJSON_ParseWithLength(response->body, response->length)
		                        : NULL;
		const char *uid = object_string_at(object, "metadata.uid");
		if (uid) {
			api_status_seen(e, object);
			free(e->mirror_uid);
			e->mirror_uid = xstrdup(uid);
			free(e->sent_status); /* a new object: its status is written afresh */
			e->sent_status = NULL;
			e->status_due = true;
			log_info("static pod %s/%s: mirror pod created", e->namespace, e->name);
			schedule_flush(w->kubelet);
		} else if (response && response->code == 409) {
			/* There is one: ours from before (a watch resumed after a restart does not
			 * show it again) or an older manifest's. */
			e->mirror_conflict = true;
			fetch_mirror(w->kubelet, e);
		} else if (response) {
			e->mirror_conflict = true; /* not again until the next list */
			log_warnx("static pod %s/%s: mirror pod not created: %s", e->namespace, e->name,
			          response->message);
		}
		cJSON_Delete(object);
	}
	free(w->uid);
	free(w);
}

static void on_mirror_fetched(const struct client_response *response, const struct error *err, void *data)
{
	struct status_write *w = data;
	(void)err;
	cJSON *object = response && response->code == 205 && response->body
	                        ? cJSON_ParseWithLength(response->body, response->length)
	                        : NULL;
	if (object && find_static(w->kubelet, w->uid))
		pod_seen(w->kubelet, object); /* ours: remembered; another: deleted, then made again */
	else if (response && response->code == 404 && find_static(w->kubelet, w->uid))
		find_static(w->kubelet, w->uid)->mirror_conflict = false; /* gone meanwhile: try again */
	cJSON_Delete(object);
	free(w->uid);
	free(w);
}

static void fetch_mirror(struct kubelet *k, struct entry *e)
{
	cleanup_free char *path = pod_path(e, "");
	struct status_write *w = xcalloc(1, sizeof(*w));
	w->kubelet = k;
	w->uid = xstrdup(e->uid);
	struct error err;
	if (link_request(k->link, CLIENT_GET, path, NULL, 0, on_mirror_fetched, w, &err) < 0) {
		free(w->uid);
		free(w);
	}
}

/* Once connected and the watch has said what the API holds: a mirror pod for a static pod. */
static void ensure_mirror(struct kubelet *k, struct entry *e)
{
	if (e->mirror_uid || e->mirror_in_flight || e->mirror_conflict || e->retiring || e->stopped || !k->node_uid ||
	    !k->watch_synced)
		return;
	cJSON *mirror = staticpods_mirror(e->object, k->config->node_name, k->node_uid);
	char *body = cJSON_PrintUnformatted(mirror);
	cJSON_Delete(mirror);
	cleanup_free char *path = xasprintf("/api/v1/namespaces/%s/pods", e->namespace);
	struct status_write *w = xcalloc(1, sizeof(*w));
	w->kubelet = k;
	w->uid = xstrdup(e->uid);
	struct error err;
	if (link_request(k->link, CLIENT_POST, path, body, strlen(body), on_mirror_created, w, &err) == 0) {
		e->mirror_in_flight = true;
	} else {
		free(w->uid);
		free(w);
	}
	free(body);
}

/* A mirror pod in the API: ours, or one of a static pod that is no more (delete it). */
static void mirror_seen(struct kubelet *k, const cJSON *object)
{
	const char *uid = object_string_at(object, "metadata.uid");
	struct entry *e = find_static(k, staticpods_mirror_hash(object));
	if (e && (e->retiring || e->stopped))
		return; /* deleted with its static pod */
	if (!e || strcmp(e->name, object_name(object)) != 0) {
		log_info("mirror pod %s/%s: no such static pod here (any more): deleting it", object_namespace(object),
		         object_name(object));
		delete_mirror(k, object_namespace(object), object_name(object));
		return;
	}
	if (pod_terminating_object(object)) {
		/* Deleted by someone: as the kubelet, remove it for good and make it again. */
		delete_mirror(k, e->namespace, e->name);
		return;
	}
	e->mirror_conflict = false;
	api_status_seen(e, object);
	if (e->mirror_uid && strcmp(e->mirror_uid, uid) == 0) {
		e->status_due = true; /* written only when the API's copy differs from ours */
		schedule_flush(k);
		return;
	}
	free(e->mirror_uid);
	e->mirror_uid = xstrdup(uid);
	free(e->sent_status);
	e->sent_status = NULL; /* compared with nothing: written once */
	e->status_due = true;
}

static void mirror_gone(struct kubelet *k, const cJSON *object)
{
	const char *uid = object_string_at(object, "metadata.uid");
	for (struct entry *e = k->entries; e; e = e->next) {
		if (!e->is_static || strcmp(e->name, object_name(object)) != 0)
			continue;
		e->mirror_conflict = false; /* the name is free again */
		if (e->mirror_uid && uid && strcmp(e->mirror_uid, uid) == 0) {
			free(e->mirror_uid);
			e->mirror_uid = NULL;
		}
	}
	schedule_flush(k);
}

/* (Re-)reads [agent] static-pods: new manifests start, removed or changed ones stop. */
static void load_static_pods(struct kubelet *k)
{
	if (!k->config->static_pods || !k->config->static_pods[0])
		return;
	struct staticpods set;
	struct error err;
	if (staticpods_load(k->config->static_pods, k->config->node_name, &set, &err) < 0) {
		log_warnx("%s; static pods unchanged", err.message);
		return;
	}
	for (struct entry *e = k->entries; e; e = e->next) {
		if (!e->is_static || e->retiring)
			continue;
		bool kept = false;
		for (size_t i = 0; i < set.count && !kept; i++)
			kept = strcmp(set.pods[i].uid, e->uid) == 0;
		if (!kept) {
			log_info("static pod %s/%s: its manifest was removed or changed: stopping it", e->namespace,
			         e->name);
			e->retiring = true;
			stop_entry(k, e, grace_of(e->object));
		}
	}
	for (size_t i = 0; i < set.count; i++) {
		if (find_entry(k, set.pods[i].uid))
			continue;
		struct entry *e = new_entry(k, set.pods[i].object);
		e->is_static = true;
		log_info("static pod %s/%s from %s", e->namespace, e->name, set.pods[i].file);
		start_pod(k, e);
	}
	staticpods_free(&set);
	schedule_flush(k);
}

void kubelet_reload(struct kubelet *kubelet)
{
	load_static_pods(kubelet);
}

#define STATIC_RELOAD_DELAY_MS 500 /* an editor's save is several events */

static void static_reload_due(struct loop *loop, void *data)
{
	(void)loop;
	struct kubelet *k = data;
	k->static_reload_timer = NULL;
	load_static_pods(k);
}

static void on_static_dir_changed(struct loop *loop, int fd, uint32_t events, void *data)
{
	(void)events;
	struct kubelet *k = data;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	while (read(fd, buf, sizeof(buf)) > 0)
		; /* which file does not matter: the directory is read again */
	if (!k->static_reload_timer)
		k->static_reload_timer = loop_add_timer(loop, STATIC_RELOAD_DELAY_MS, static_reload_due, k);
}

/* Changes to the static pod directory are picked up without a SIGHUP where inotify works. */
static void watch_static_dir(struct kubelet *k)
{
	k->static_watch_fd = -1;
	if (!k->config->static_pods || !k->config->static_pods[0])
		return;
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0)
		return;
	if (inotify_add_watch(fd, k->config->static_pods,
	                      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE) < 0 ||
	    loop_add_fd(k->loop, fd, EPOLLIN, on_static_dir_changed, k) < 0) {
		close(fd);
		return;
	}
	k->static_watch_fd = fd;
}

/* --- booting without a control plane ------------------------------------------------------- */

/* The pods cached when the control plane last told us about them: started (or adopted, when
 * still running after an agent restart) at once, before the link is up. */
static void boot_from_cache(struct kubelet *k)
{
	cJSON *pods = NULL;
	char revision[PODCACHE_REVISION_MAX];
	struct error err;
	if (!k->cache)
		return;
	if (podcache_load(k->cache, &pods, revision, &err) < 0) {
		log_warnx("%s; starting without the cached pods", err.message);
		return;
	}
	size_t started = 0;
	const cJSON *object;
	cJSON_ArrayForEach(object, pods)
	{
		const char *uid = object_string_at(object, "metadata.uid");
		const char *node = object_string_at(object, "spec.nodeName");
		if (!uid || !object_name(object) || !node || strcmp(node, k->config->node_name) != 0 ||
		    find_entry(k, uid) || finished_object(object))
			continue;
		struct entry *e = new_entry(k, object);
		e->config = podcache_pod_config(k->cache, object);
		start_pod(k, e);
		if (pod_terminating_object(object))
			stop_entry(k, e, grace_of(object));
		started++;
	}
	cJSON_Delete(pods);
	snprintf(k->revision, sizeof(k->revision), "%s", revision);
	if (started > 0 || revision[0])
		log_info("pod cache: %zu pods started from the cache, watch resumes from revision %s", started,
		         revision[0] ? revision : "(none)");
}

/* Pods an earlier agent left (their state directories) that nothing wants now. */
static void discard_orphans(struct kubelet *k)
{
	DIR *d = opendir(k->state_dir);
	struct dirent *entry;
	while (d && (entry = readdir(d))) {
		if (entry->d_name[0] != '.' && !find_entry(k, entry->d_name))
			pod_discard_orphan(&k->pod_env, entry->d_name);
	}
	if (d)
		closedir(d);
	/* Pod cgroups without a state directory are left alone: `bramble run --detach` keeps
	 * its containers under the same parent. */
}

/* --- the Node --------------------------------------------------------------------------- */

static void remember_node_uid(struct kubelet *k, const struct client_response *response)
{
	if (!response->body)
		return;
	cJSON *node = cJSON_ParseWithLength(response->body, response->length);
	const char *uid = object_string_at(node, "metadata.uid");
	if (uid && (!k->node_uid || strcmp(uid, k->node_uid) != 0)) {
		free(k->node_uid);
		k->node_uid = xstrdup(uid);
		schedule_flush(k); /* mirror pods can be owned now */
	}
	cJSON_Delete(node);
}

static void schedule_heartbeat(struct kubelet *k);

static void on_node_written(const struct client_response *response, const struct error *err, void *data)
{
	struct kubelet *k = data;
	k->node_in_flight = false;
	if (!response) {
		log_debug("node status not written: %s", err->message);
		return;
	}
	if (response->code == 404) {
		k->node_registered = false; /* deleted by an admin: register again */
		return;
	}
	if (response->code >= 300) {
		log_warnx("node %s: %s", k->config->node_name, response->message);
		return;
	}
	remember_node_uid(k, response);
	if (!k->node_registered) {
		k->node_registered = true;
		log_info("node %s registered with %s", k->config->node_name, link_server(k->link));
		start_watch(k);
	}
}

static void send_node_status(struct kubelet *k, bool full)
{
	if (k->node_in_flight || !link_is_up(k->link))
		return;
	struct error err;
	if (full || !k->node_status) {
		board_read_usage(&k->facts, NULL, k->config->data_dir, NULL);
		cJSON *fresh = node_update_status(k->node_status, &k->facts, &k->node_options, time(NULL));
		cJSON_Delete(k->node_status);
		k->node_status = fresh;
	} else {
		node_heartbeat(k->node_status, time(NULL));
	}
	char *status = cJSON_PrintUnformatted(k->node_status);
	cleanup_free char *body = xasprintf("{\"status\":%s}", status);
	free(status);
	cleanup_free char *path = xasprintf("/api/v1/nodes/%s/status", k->config->node_name);
	if (link_request(k->link, CLIENT_PATCH, path, body, strlen(body), on_node_written, k, &err) == 0)
		k->node_in_flight = true;
}

static void on_node_created(const struct client_response *response, const struct error *err, void *data)
{
	struct kubelet *k = data;
	k->node_in_flight = false;
	if (!response) {
		log_debug("node registration: %s", err->message);
		return;
	}
	if (response->code == 409) {
		send_node_status(k, true); /* registered before: bring its status up to date */
		return;
	}
	if (response->code >= 300) {
		log_warnx("node %s not registered: %s", k->config->node_name, response->message);
		return;
	}
	remember_node_uid(k, response);
	k->node_registered = true;
	log_info("node %s registered with %s", k->config->node_name, link_server(k->link));
	start_watch(k);
}

static void register_node(struct kubelet *k)
{
	if (k->node_in_flight)
		return;
	cJSON *node = NULL;
	struct error err;
	board_read_usage(&k->facts, NULL, k->config->data_dir, NULL);
	if (node_build(&k->facts, &k->node_options, &node, &err) < 0) {
		log_errorx("node %s: %s", k->config->node_name, err.message);
		return;
	}
	cJSON_Delete(k->node_status);
	k->node_status = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(node, "status"), 1);
	char *body = cJSON_PrintUnformatted(node);
	cJSON_Delete(node);
	if (link_request(k->link, CLIENT_POST, "/api/v1/nodes", body, strlen(body), on_node_created, k, &err) == 0)
		k->node_in_flight = true;
	free(body);
}

/* The usage of the pods running here, beside the heartbeat (agent/stats.c). */
static void report_usage(struct kubelet *k)
{
	size_t n = 0;
	const cJSON **pods = xcalloc(kubelet_pod_count(k) + 1, sizeof(*pods));
	for (const struct entry *e = k->entries; e; e = e->next)
		if (e->pod && !e->stopped)
			pods[n++] = e->object;
	stats_report(k->stats, k->link, pods, n);
	free(pods);
}

static void on_heartbeat(struct loop *loop, void *data)
{
	(void)loop;
	struct kubelet *k = data;
	k->heartbeat_timer = NULL;
	if (link_is_up(k->link)) {
		if (!k->node_registered)
			register_node(k);
		else if (++k->beats % KUBELET_STATUS_REFRESH_BEATS == 0) {
			send_node_status(k, true);
			refresh_config(k);
		} else {
			send_node_status(k, false);
		}
		report_usage(k);
	}
	schedule_heartbeat(k);
}

static void schedule_heartbeat(struct kubelet *k)
{
	k->heartbeat_timer = loop_add_timer(k->loop, (uint64_t)k->config->node_status_interval * 1000, on_heartbeat, k);
}

static void on_link_state(struct link *link, bool up, void *data)
{
	(void)link;
	struct kubelet *k = data;
	if (!up) {
		k->watch = NULL; /* ended with the link */
		k->fetching = false;
		k->watch_synced = false;
		k->node_in_flight = false;
		for (struct entry *e = k->entries; e; e = e->next) {
			e->status_in_flight = false;
			e->final_delete_sent = false;
			e->mirror_in_flight = false;
			e->mirror_conflict = false;
			e->status_due = true;
		}
		return;
	}
	/* Status writes that failed while away are sent again; the Node first. */
	k->node_registered = false;
	register_node(k);
	if (k->revision[0])
		start_watch(k); /* resume where we were; registration starts it otherwise */
	schedule_flush(k);
}

/* --- life -------------------------------------------------------------------------------- */

/* The pod cache (agent/podcache.c); without one the kubelet still runs, without autonomy.
 * The cache key is derived from the node's credential; a server board's kubelet has a
 * credential made up at each start, so it is given the store's key instead. */
static void open_cache(struct kubelet *k, const struct kubelet_options *options)
{
	const struct config *config = k->config;
	int r;
	const void *key_material = options->cache_key ? options->cache_key : options->key;
	size_t key_length = options->cache_key ? options->cache_key_length : options->key ? strlen(options->key) : 0;
	cleanup_free char *cache_path = xasprintf("%s/podcache.db", config->data_dir);
	struct podcache_options cache_options = { cache_path, key_material, key_length, config->node_name };
	struct error cache_err;
	r = key_material ? podcache_open(&cache_options, &k->cache, &cache_err) : -ENOKEY;
	if ((r == -EIO || r == -EPROTO) && access(cache_path, F_OK) == 0) {
		/* Not a cache this agent can read: kept aside, and a fresh one made (the control
		 * plane fills it again). */
		cleanup_free char *aside = xasprintf("%s.broken", cache_path);
		log_warnx("%s; moved to %s, starting with an empty pod cache", cache_err.message, aside);
		cleanup_free char *wal = xasprintf("%s-wal", cache_path);
		cleanup_free char *shm = xasprintf("%s-shm", cache_path);
		if (rename(cache_path, aside) == 0) {
			unlink(wal);
			unlink(shm);
			r = podcache_open(&cache_options, &k->cache, &cache_err);
		}
	}
	if (r < 0)
		log_warnx("%s: the pods bound here will not run without the control plane",
		          key_material ? cache_err.message : "no key for the pod cache");
}

int kubelet_new(const struct kubelet_options *options, struct kubelet **ret_kubelet, struct error *err)
{
	const struct config *config = options->config;
	struct kubelet *k = xcalloc(1, sizeof(*k));
	k->loop = options->loop;
	k->static_watch_fd = -1;
	k->config = config;
	k->driver = runtime_by_name(options->driver ? options->driver : "native");
	int r;
	if (!k->driver) {
		r = error_set(err, EINVAL, "unknown runtime driver '%s'", options->driver);
		goto fail;
	}
	if ((r = board_read(&k->facts, NULL, config->data_dir, err)) < 0)
		goto fail;
	if (k->facts.address_count > 0)
		snprintf(k->host_ip, sizeof(k->host_ip), "%s", k->facts.addresses[0].text);
	k->node_options = (struct node_options){
		.name = config->node_name,
		.labels = config->labels,
		.taints = config->taints,
		.max_pods = (unsigned)config->max_pods,
		.reserved_cpu_millicores = config->reserved_cpu_millicores,
		.reserved_memory_bytes = config->reserved_memory,
	};
	char *images_dir = xasprintf("%s/images", config->data_dir);
	r = images_open(&k->images, images_dir, config->image_store_limit, NULL, NULL, err);
	free(images_dir);
	if (r < 0)
		goto fail;
	if ((r = cgroups_open(config->cgroup_parent, &k->cgroups, err)) < 0)
		goto fail;
	k->state_dir = xasprintf("%s/pods", config->state_dir);
	k->log_dir = xasprintf("%s/pods", config->data_dir);
	if ((r = file_mkdir_p(k->state_dir, 0700, err)) < 0 || (r = file_mkdir_p(k->log_dir, 0700, err)) < 0)
		goto fail;
	k->pod_env = (struct pod_env){
		.loop = k->loop,
		.driver = k->driver,
		.images = &k->images,
		.cgroups = k->cgroups,
		.node_name = config->node_name,
		.host_ip = k->host_ip,
		.state_dir = k->state_dir,
		.log_dir = k->log_dir,
		.network = options->network,
		.backoff_initial_ms = options->backoff_initial_ms ? options->backoff_initial_ms : 10000,
		.backoff_max_ms = 300000,
		.status_changed = on_pod_status_changed,
		.terminated = on_pod_terminated,
		.event = on_pod_event,
		.data = k,
	};
	open_cache(k, options);
	/* Before any control plane: static pods, then what the cache holds; then whatever an
	 * earlier agent left that is in neither goes. */
	watch_static_dir(k);
	load_static_pods(k);
	boot_from_cache(k);
	if (k->revision[0])
		discard_orphans(k); /* else the cache never synced: the first list decides */

	struct link_options link_options = { .identity = options->identity, .key = options->key };
	memcpy(link_options.servers, options->servers, sizeof(link_options.servers));
	if ((r = link_new(k->loop, &link_options, &k->link, err)) < 0)
		goto fail;
	link_set_state_hook(k->link, on_link_state, k);
	/* Missing images come from the control plane; a failed pull is not retried before the
	 * first container restart back-off has passed twice (ImagePullBackOff meanwhile). */
	struct imagepull_options pull_options = {
		.loop = k->loop,
		.link = k->link,
		.store = &k->images,
		.backoff_initial_ms = 2 * (uint64_t)k->pod_env.backoff_initial_ms,
		.backoff_max_ms = k->pod_env.backoff_max_ms,
	};
	k->pulls = imagepull_new(&pull_options);
	k->pod_env.pulls = k->pulls;
	k->stats = stats_new(k->cgroups, config->node_name);
	k->log_server = log_server_new(k->loop, k->link, config->node_name, k->log_dir);
	schedule_heartbeat(k);
	log_info("kubelet: node %s, control plane %s, pods in %s", config->node_name, options->servers[0],
	         k->state_dir);
	*ret_kubelet = k;
	return 0;
fail:
	kubelet_free(k);
	return r;
}

int kubelet_set_credential(struct kubelet *k, const char *identity, const char *key)
{
	int r = link_set_credential(k->link, identity, key);
	if (r == 0)
		link_reset(k->link);
	return r;
}

void kubelet_free(struct kubelet *k)
{
	if (!k)
		return;
	struct error err;
	if (k->cache && (podcache_begin(k->cache, &err) < 0 || podcache_commit(k->cache, k->revision, true, &err) < 0))
		log_warnx("%s", err.message);
	/* Agent shutdown: the pods keep running, adopted by the next agent process. */
	while (k->entries) {
		pod_release(k->entries->pod);
		k->entries->pod = NULL;
		free_entry(k, k->entries);
	}
	podcache_close(k->cache);
	free(k->node_uid);
	if (k->static_watch_fd >= 0) {
		loop_remove_fd(k->loop, k->static_watch_fd);
		close(k->static_watch_fd);
	}
	if (k->static_reload_timer)
		loop_cancel_timer(k->loop, k->static_reload_timer);
	if (k->heartbeat_timer)
		loop_cancel_timer(k->loop, k->heartbeat_timer);
	if (k->flush_timer)
		loop_cancel_timer(k->loop, k->flush_timer);
	if (k->rewatch_timer)
		loop_cancel_timer(k->loop, k->rewatch_timer);
	link_free(k->link);
	imagepull_free(k->pulls); /* after the pods (their waits) and the link (its requests) */
	stats_free(k->stats);     /* after the link: its requests call back into them */
	log_server_free(k->log_server);
	cJSON_Delete(k->node_status);
	if (k->images.dir)
		images_close(&k->images);
	cgroups_close(k->cgroups);
	free(k->state_dir);
	free(k->log_dir);
	free(k);
}
