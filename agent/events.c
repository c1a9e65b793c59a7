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
#include "core/object.h"
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
	char message[ERROR_MESSAGE_MAX + 128], now[CLOCK_RFC3339_SIZE], field[160];
	vsnprintf(message, sizeof(message), fmt, ap);
	clock_format_rfc3339(time(NULL), now);
	if (about->container)
		snprintf(field, sizeof(field), "spec.containers{%s}", about->container);
	cJSON *event = object_event_new(&(struct object_event){ .namespace = about->namespace,
	                                                        .api_version = "v1",
	                                                        .kind = "Pod",
	                                                        .object_namespace = about->namespace,
	                                                        .name = about->pod,
	                                                        .uid = about->uid,
	                                                        .field_path = about->container ? field : NULL,
	                                                        .type = type,
	                                                        .reason = reason,
	                                                        .message = message,
	                                                        .component = "kubelet",
	                                                        .host = about->node,
	                                                        .now = now });
	char *body = cJSON_PrintUnformatted(event);
	cJSON_Delete(event);
	char path[160];
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/events", about->namespace);
	link_request(link, CLIENT_POST, path, body, strlen(body), on_event_written, NULL, NULL);
	free(body);
}
