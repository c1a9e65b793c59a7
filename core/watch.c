/* See watch.h for the protocol. State kept per watch:
 *
 *   session, token       where notifications go (the session is referenced while watched)
 *   spec                 what it watches (owned copies)
 *   delivered            the revision of the last event sent (or the registration revision)
 *   queue                events committed since, not yet sent; bounded by WATCH_QUEUE_MAX_BYTES
 *   truncated            events were dropped from the queue: the next notification says so
 *
 * The hub keeps every watch in one list (flushes, removals) and, for matching changes, in
 * one group: watches whose field selector names a single spec.nodeName (a kubelet's own
 * pods) are grouped by resource and node, so that a change is matched against the watches
 * of its old and new node only, not against a thousand kubelets'; all others share the
 * unindexed group.
 *
 * Life of a watch:
 *   watch_add --> [idle] --watch_on_change (match)--> [queued] --watch_flush--> [idle]
 *   any state --watch_remove / watch_remove_session--> freed
 */
#include "core/watch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/object.h"
#include "core/selector.h"
#include "core/store.h"
#include "platform/buffer.h"
#include "platform/error.h"
#include "platform/log.h"
#include "platform/map.h"
#include "platform/memory.h"

#define WATCH_TOKEN_MAX 8
#define WATCH_OBSERVE_MASK 0xffffffu /* the Observe option carries 24 bits */

struct queued_event {
	struct queued_event *next;
	uint64_t revision;
	size_t charged; /* what it counts against WATCH_QUEUE_MAX_BYTES */
	size_t length;
	char text[]; /* {"type":"...","object":{...}} */
};

#define WATCH_INDEX_FIELD "spec.nodeName"

struct watch {
	struct watch *next;
	struct watch *next_in_group;
	char *group_key; /* resource_key "\n" node name; NULL: unindexed */
	coap_session_t *session;
	uint8_t token[WATCH_TOKEN_MAX];
	size_t token_length;
	struct watch_spec spec;
	uint32_t sequence;
	uint64_t delivered;
	uint64_t last_queued;
	struct queued_event *head, *tail;
	size_t queued_bytes;
	bool truncated;
};

struct watch_hub {
	struct watch *watches;
	struct watch *unindexed; /* by next_in_group */
	struct map groups;       /* group key -> first watch of the group, by next_in_group */
	size_t count;
	size_t per_session_limit;
};

struct watch_hub *watch_hub_new(size_t per_session_limit)
{
	struct watch_hub *hub = xcalloc(1, sizeof(*hub));
	hub->per_session_limit = per_session_limit ? per_session_limit : WATCH_DEFAULT_PER_SESSION;
	return hub;
}

static void clear_queue(struct watch *w)
{
	for (struct queued_event *e = w->head, *next; e; e = next) {
		next = e->next;
		free(e);
	}
	w->head = w->tail = NULL;
	w->queued_bytes = 0;
}

static void group_remove(struct watch_hub *hub, struct watch *w)
{
	struct watch *head = w->group_key ? map_get(&hub->groups, w->group_key) : hub->unindexed;
	struct watch **p = &head;
	while (*p != w)
		p = &(*p)->next_in_group;
	*p = w->next_in_group;
	if (!w->group_key)
		hub->unindexed = head;
	else if (head)
		map_put(&hub->groups, w->group_key, head);
	else
		map_remove(&hub->groups, w->group_key);
}

static void group_add(struct watch_hub *hub, struct watch *w)
{
	const char *node = selector_required_value(w->spec.fields, WATCH_INDEX_FIELD);
	if (!node) {
		w->next_in_group = hub->unindexed;
		hub->unindexed = w;
		return;
	}
	w->group_key = xasprintf("%s\n%s", w->spec.resource_key, node);
	w->next_in_group = map_get(&hub->groups, w->group_key);
	map_put(&hub->groups, w->group_key, w);
}

static void free_watch(struct watch_hub *hub, struct watch *w)
{
	group_remove(hub, w);
	free(w->group_key);
	clear_queue(w);
	selector_free(w->spec.labels);
	selector_free(w->spec.fields);
	free((char *)w->spec.namespace);
	free((char *)w->spec.name);
	free((char *)w->spec.resource_key);
	coap_session_release(w->session);
	free(w);
}

void watch_hub_free(struct watch_hub *hub)
{
	if (!hub)
		return;
	for (struct watch *w = hub->watches, *next; w; w = next) {
		next = w->next;
		free_watch(hub, w);
	}
	map_clear(&hub->groups);
	free(hub);
}

size_t watch_count(const struct watch_hub *hub)
{
	return hub->count;
}

static bool same_token(const struct watch *w, const coap_session_t *session, const coap_bin_const_t *token)
{
	return w->session == session && w->token_length == token->length &&
	       memcmp(w->token, token->s, token->length) == 0;
}

void watch_remove(struct watch_hub *hub, const coap_session_t *session, const coap_bin_const_t *token)
{
	for (struct watch **p = &hub->watches; *p; p = &(*p)->next) {
		if (same_token(*p, session, token)) {
			struct watch *w = *p;
			*p = w->next;
			hub->count--;
			free_watch(hub, w);
			return;
		}
	}
}

void watch_remove_session(struct watch_hub *hub, const coap_session_t *session)
{
	struct watch **p = &hub->watches;
	while (*p) {
		struct watch *w = *p;
		if (w->session == session) {
			*p = w->next;
			hub->count--;
			free_watch(hub, w);
		} else {
			p = &w->next;
		}
	}
}

int watch_add(struct watch_hub *hub, coap_session_t *session, const coap_bin_const_t *token, struct watch_spec *spec,
              uint32_t *ret_sequence, struct error *err)
{
	if (token->length > WATCH_TOKEN_MAX) {
		selector_free(spec->labels);
		selector_free(spec->fields);
		return error_set(err, EINVAL, "token longer than %d bytes", WATCH_TOKEN_MAX);
	}
	watch_remove(hub, session, token);
	size_t mine = 0;
	for (struct watch *w = hub->watches; w; w = w->next)
		if (w->session == session)
			mine++;
	if (mine >= hub->per_session_limit) {
		selector_free(spec->labels);
		selector_free(spec->fields);
		return error_set(err, EBUSY, "this client already has %zu watches (limit %zu); cancel some first", mine,
		                 hub->per_session_limit);
	}
	struct watch *w = xcalloc(1, sizeof(*w));
	w->session = coap_session_reference(session);
	memcpy(w->token, token->s, token->length);
	w->token_length = token->length;
	w->spec = *spec;
	w->spec.namespace = spec->namespace ? xstrdup(spec->namespace) : NULL;
	w->spec.name = spec->name ? xstrdup(spec->name) : NULL;
	w->spec.resource_key = xstrdup(spec->resource_key);
	w->delivered = w->last_queued = spec->revision;
	w->sequence = 2; /* 0 and 1 are reserved-looking; any start value is allowed */
	w->next = hub->watches;
	hub->watches = w;
	group_add(hub, w);
	hub->count++;
	*ret_sequence = w->sequence;
	return 0;
}

bool watch_spec_matches(const struct watch_spec *spec, const cJSON *object)
{
	if (!object)
		return false;
	if (spec->namespace) {
		const char *ns = object_namespace(object);
		if (!ns || strcmp(ns, spec->namespace) != 0)
			return false;
	}
	if (spec->name) {
		const char *name = object_name(object);
		if (!name || strcmp(name, spec->name) != 0)
			return false;
	}
	if (spec->labels && !selector_matches(spec->labels, object))
		return false;
	if (spec->fields && !selector_matches(spec->fields, object))
		return false;
	return true;
}

static void enqueue(struct watch *w, const char *type, const struct store_change *change)
{
	if (change->revision <= w->delivered)
		return; /* already part of what the registration answered */
	w->last_queued = change->revision;
	if (w->truncated)
		return;
	size_t object_length = strlen(change->object);
	size_t length = object_length + strlen(type) + 32;
	if (w->queued_bytes + length > WATCH_QUEUE_MAX_BYTES) {
		clear_queue(w);
		w->truncated = true;
		return;
	}
	struct queued_event *e = xmalloc(sizeof(*e) + length);
	int n = snprintf(e->text, length, "{\"type\":\"%s\",\"object\":%s}", type, change->object);
	e->length = (size_t)n;
	e->revision = change->revision;
	e->charged = length;
	e->next = NULL;
	if (w->tail)
		w->tail->next = e;
	else
		w->head = e;
	w->tail = e;
	w->queued_bytes += length;
}

/* Queues the change for one watch: ADDED, MODIFIED or DELETED as the watch sees it (a pod
 * bound to the watched node is ADDED to it; one moved away is DELETED). */
static void match_one(struct watch *w, const struct store_change *change, const cJSON *object, const cJSON *previous)
{
	if (strcmp(w->spec.resource_key, change->resource) != 0)
		return;
	bool now = watch_spec_matches(&w->spec, object);
	bool before = previous && watch_spec_matches(&w->spec, previous);
	switch (change->type) {
	case STORE_ADDED:
		if (now)
			enqueue(w, "ADDED", change);
		break;
	case STORE_MODIFIED:
		if (now && (before || !change->previous))
			enqueue(w, "MODIFIED", change);
		else if (now)
			enqueue(w, "ADDED", change);
		else if (before)
			enqueue(w, "DELETED", change);
		break;
	case STORE_DELETED:
		if (now)
			enqueue(w, "DELETED", change);
		break;
	}
}

static void match_group(struct watch_hub *hub, const struct store_change *change, const cJSON *object,
                        const cJSON *previous, const char *node)
{
	cleanup_free char *key = xasprintf("%s\n%s", change->resource, node);
	for (struct watch *w = map_get(&hub->groups, key); w; w = w->next_in_group)
		match_one(w, change, object, previous);
}

void watch_on_change(const struct store_change *change, void *data)
{
	struct watch_hub *hub = data;
	bool wanted = hub->groups.count > 0;
	for (struct watch *w = hub->unindexed; w && !wanted; w = w->next_in_group)
		wanted = strcmp(w->spec.resource_key, change->resource) == 0;
	if (!wanted)
		return;
	cJSON *object = cJSON_Parse(change->object);
	cJSON *previous = change->previous ? cJSON_Parse(change->previous) : NULL;
	watch_on_parsed_change(hub, change, object, previous);
	cJSON_Delete(object);
	cJSON_Delete(previous);
}

void watch_on_parsed_change(struct watch_hub *hub, const struct store_change *change, const cJSON *object,
                            const cJSON *previous)
{
	for (struct watch *w = hub->unindexed; w; w = w->next_in_group)
		match_one(w, change, object, previous);
	if (hub->groups.count > 0) {
		/* An absent field reads as "", as the selector reads it. */
		const char *node = object ? object_string_at(object, WATCH_INDEX_FIELD) : NULL;
		const char *was = previous ? object_string_at(previous, WATCH_INDEX_FIELD) : NULL;
		match_group(hub, change, object, previous, node ? node : "");
		if (previous && strcmp(was ? was : "", node ? node : "") != 0)
			match_group(hub, change, object, previous, was ? was : "");
	}
}

static bool send_notification(struct watch *w, const char *payload, size_t length)
{
	coap_pdu_t *pdu = coap_pdu_init(COAP_MESSAGE_CON, COAP_RESPONSE_CODE_CONTENT, coap_new_message_id(w->session),
	                                coap_session_max_pdu_size(w->session));
	if (!pdu)
		return false;
	uint8_t buf[4];
	w->sequence = (w->sequence + 1) & WATCH_OBSERVE_MASK;
	bool ok = coap_add_token(pdu, w->token_length, w->token) &&
	          coap_add_option(pdu, COAP_OPTION_OBSERVE, coap_encode_var_safe(buf, sizeof(buf), w->sequence), buf) &&
	          coap_add_option(pdu, COAP_OPTION_CONTENT_FORMAT,
	                          coap_encode_var_safe(buf, sizeof(buf), COAP_MEDIATYPE_APPLICATION_JSON), buf) &&
	          coap_add_data(pdu, length, (const uint8_t *)payload);
	if (!ok) {
		coap_delete_pdu(pdu);
		return false;
	}
	return coap_send(w->session, pdu) != COAP_INVALID_MID;
}

#define NOTIFICATION_OVERHEAD (sizeof("{\"kind\":\"WatchEvents\",\"resourceVersion\":\"\",\"events\":[]}") + 20)

/* Sends the queued events from the head in notifications that fit a datagram each, in
 * order; returns how many were sent. An event too big for a datagram by itself, or a send
 * that fails, ends it: the rest goes as one truncated notification. */
static size_t flush_one(struct watch *w, struct buffer *events, struct buffer *b)
{
	size_t sent = 0;
	size_t room = coap_session_max_pdu_size(w->session);
	room = room > 64 ? room - 64 : 0; /* token, options and header */
	while (w->head && !w->truncated) {
		buffer_reset(events);
		struct queued_event *last = NULL;
		for (struct queued_event *e = w->head; e; e = e->next) {
			if (last && NOTIFICATION_OVERHEAD + events->length + 1 + e->length > room)
				break;
			if (last)
				buffer_append(events, ",", 1);
			buffer_append(events, e->text, e->length);
			last = e;
		}
		if (NOTIFICATION_OVERHEAD + events->length > room) { /* one event alone does not fit */
			w->truncated = true;
			break;
		}
		buffer_reset(b);
		buffer_printf(b, "{\"kind\":\"WatchEvents\",\"resourceVersion\":\"%" PRIu64 "\",\"events\":[",
		              last->revision);
		buffer_append(b, events->data, events->length);
		buffer_append_string(b, "]}");
		if (!send_notification(w, b->data, b->length)) {
			log_warnx("watch: cannot send a notification; the watch will be told to catch up");
			w->truncated = true;
			break;
		}
		sent++;
		w->delivered = last->revision;
		struct queued_event *rest = last->next;
		for (struct queued_event *e = w->head, *next; e != rest; e = next) {
			next = e->next;
			w->queued_bytes -= e->charged;
			free(e);
		}
		w->head = rest;
		if (!rest)
			w->tail = NULL;
	}
	if (w->truncated) {
		buffer_reset(b);
		buffer_printf(b,
		              "{\"kind\":\"WatchEvents\",\"resourceVersion\":\"%" PRIu64
		              "\",\"truncated\":true,\"from\":\"%" PRIu64 "\"}",
		              w->last_queued, w->delivered);
		if (send_notification(w, b->data, b->length)) {
			sent++;
			w->delivered = w->last_queued;
			w->truncated = false;
		} else {
			log_warnx("watch: cannot send a notification; the watch will be told to catch up");
		}
		clear_queue(w);
	}
	return sent;
}

size_t watch_flush(struct watch_hub *hub)
{
	size_t sent = 0;
	struct buffer events = BUFFER_INIT, b = BUFFER_INIT;
	for (struct watch *w = hub->watches; w; w = w->next)
		if (w->head || w->truncated)
			sent += flush_one(w, &events, &b);
	buffer_free(&events);
	buffer_free(&b);
	return sent;
}
