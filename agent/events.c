/* See events.h. Stateless: each Event is built, posted and forgotten. */
#include "agent/events.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/link.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/log.h"

static void on_event_written(const struct client_response *response, const struct error *err, void *data)
{
	(void)data;
	if (!response)
		log_debug("event not written: %s", err ? err->message : "no answer");
	else if (response->code >= 400)
		log_debug("event refused (%d): %s", response->code, response->message);
}

void event_post(struct link *link, const struct event_subject *about, const char *type, const char *reason,
                const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	event_postv(link, about, type, reason, fmt, ap);
	va_end(ap);
}

void event_postv(struct link *link, const struct event_subject *about, const char *type, const char *reason,
                 const char *fmt, va_list ap)
{
	if (!about->pod || !about->namespace || !link || !link_is_up(link))
		return;
	char message[ERROR_MESSAGE_MAX + 128], name[300], now[CLOCK_RFC3339_SIZE];
	vsnprintf(message, sizeof(message), fmt, ap);
	uint32_t suffix = (uint32_t)clock_monotonic_us() ^ (uint32_t)getpid();
	snprintf(name, sizeof(name), "%s.%08x", about->pod, suffix);
	clock_format_rfc3339(time(NULL), now);
	cJSON *event = cJSON_CreateObject();
	cJSON_AddStringToObject(event, "apiVersion", "v1");
	cJSON_AddStringToObject(event, "kind", "Event");
	cJSON *metadata = cJSON_AddObjectToObject(event, "metadata");
	cJSON_AddStringToObject(metadata, "name", name);
	cJSON_AddStringToObject(metadata, "namespace", about->namespace);
	cJSON *involved = cJSON_AddObjectToObject(event, "involvedObject");
	cJSON_AddStringToObject(involved, "apiVersion", "v1");
	cJSON_AddStringToObject(involved, "kind", "Pod");
	cJSON_AddStringToObject(involved, "namespace", about->namespace);
	cJSON_AddStringToObject(involved, "name", about->pod);
	if (about->uid && *about->uid)
		cJSON_AddStringToObject(involved, "uid", about->uid);
	if (about->container) {
		char field[160];
		snprintf(field, sizeof(field), "spec.containers{%s}", about->container);
		cJSON_AddStringToObject(involved, "fieldPath", field);
	}
	cJSON_AddStringToObject(event, "reason", reason);
	cJSON_AddStringToObject(event, "message", message);
	cJSON_AddStringToObject(event, "type", type);
	cJSON_AddNumberToObject(event, "count", 1);
	cJSON_AddStringToObject(event, "firstTimestamp", now);
	cJSON_AddStringToObject(event, "lastTimestamp", now);
	cJSON *source = cJSON_AddObjectToObject(event, "source");
	cJSON_AddStringToObject(source, "component", "kubelet");
	if (about->node)
		cJSON_AddStringToObject(source, "host", about->node);
	char *body = cJSON_PrintUnformatted(event);
	cJSON_Delete(event);
	char path[160];
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/events", about->namespace);
	link_request(link, CLIENT_POST, path, body, strlen(body), on_event_written, NULL, NULL);
	free(body);
}
