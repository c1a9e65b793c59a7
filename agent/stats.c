/* See stats.h. State: the previous sample of the node (cpu busy time, when) and of each
 * container (keyed "<pod uid>/<container>": cpu time, when), and whether a report is in
 * flight. A sample replaces the previous one; containers not seen in a sample are
 * forgotten (their pod is gone), so the table is bounded by what runs here
 * (STATS_MAX_CONTAINERS at most).
 */
#include "agent/stats.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/link.h"
#include "core/object.h"
#include "platform/board.h"
#include "platform/buffer.h"
#include "platform/cgroups.h"
#include "platform/clock.h"
#include "platform/cpustat.h"
#include "platform/error.h"
#include "platform/log.h"
#include "platform/memory.h"

struct sample {
	char *key; /* uid/container */
	uint64_t cpu_ns;
	uint64_t at_ms;
	bool seen;
};

struct stats {
	struct cgroups *cgroups;
	char *node_name;
	struct board_facts facts;
	bool facts_read;
	struct cpustat node_cpu;
	uint64_t node_at_ms; /* 0: no sample yet */
	struct sample *samples;
	size_t sample_count;
	bool in_flight;
};

uint64_t stats_millicores(uint64_t cpu_ns, uint64_t elapsed_ms)
{
	if (elapsed_ms == 0)
		return 0;
	/* ns / (ms * 1e6) cores = ns / (ms * 1e3) millicores, rounded to nearest */
	return (cpu_ns + elapsed_ms * 500) / (elapsed_ms * 1000);
}

struct stats *stats_new(struct cgroups *cgroups, const char *node_name)
{
	struct stats *s = xcalloc(1, sizeof(*s));
	s->cgroups = cgroups;
	s->node_name = xstrdup(node_name);
	return s;
}

void stats_free(struct stats *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->sample_count; i++)
		free(s->samples[i].key);
	free(s->samples);
	free(s->node_name);
	free(s);
}

static struct sample *sample_of(struct stats *s, const char *key)
{
	for (size_t i = 0; i < s->sample_count; i++)
		if (strcmp(s->samples[i].key, key) == 0)
			return &s->samples[i];
	if (s->sample_count == STATS_MAX_CONTAINERS)
		return NULL;
	s->samples = xrealloc(s->samples, (s->sample_count + 1) * sizeof(*s->samples));
	struct sample *n = &s->samples[s->sample_count++];
	*n = (struct sample){ .key = xstrdup(key) };
	return n;
}

static void forget_unseen(struct stats *s)
{
	for (size_t i = 0; i < s->sample_count;) {
		if (!s->samples[i].seen) {
			free(s->samples[i].key);
			s->samples[i] = s->samples[--s->sample_count];
			continue;
		}
		s->samples[i++].seen = false;
	}
}

/* One container: {"name":..,"cpu":..,"memory":..} appended when it has a previous sample. */
static bool sample_container(struct stats *s, struct cgroups_group *pod_group, const char *uid, const char *name,
                             uint64_t now_ms, struct buffer *out, bool first)
{
	struct cgroups_group *group = NULL;
	struct cgroups_usage usage;
	if (cgroups_container_open(pod_group, name, &group, NULL) < 0)
		return false;
	int r = cgroups_usage(group, &usage, NULL);
	cgroups_group_free(group);
	if (r < 0)
		return false;
	cleanup_free char *key = xasprintf("%s/%s", uid, name);
	struct sample *prev = sample_of(s, key);
	if (!prev)
		return false;
	bool report = prev->at_ms && now_ms > prev->at_ms && usage.cpu_time_ns >= prev->cpu_ns;
	uint64_t cpu = report ? stats_millicores(usage.cpu_time_ns - prev->cpu_ns, now_ms - prev->at_ms) : 0;
	prev->cpu_ns = usage.cpu_time_ns;
	prev->at_ms = now_ms;
	prev->seen = true;
	if (!report)
		return false;
	uint64_t working_set = usage.memory_current_bytes > usage.memory_inactive_file_bytes
	                               ? usage.memory_current_bytes - usage.memory_inactive_file_bytes
	                               : 0;
	buffer_append_string(out, first ? "{\"name\":" : ",{\"name\":");
	buffer_append_json_string(out, name);
	buffer_printf(out, ",\"cpu\":%" PRIu64 ",\"memory\":%" PRIu64 "}", cpu, working_set);
	return true;
}

static void sample_pod(struct stats *s, const cJSON *pod, uint64_t now_ms, struct buffer *out, size_t *pods)
{
	const char *uid = object_string_at(pod, "metadata.uid"), *name = object_name(pod);
	const char *ns = object_namespace(pod);
	struct cgroups_group *pod_group = NULL;
	if (!uid || !name || !s->cgroups || cgroups_pod_open(s->cgroups, uid, &pod_group, NULL) < 0)
		return;
	struct buffer containers = BUFFER_INIT;
	size_t count = 0;
	const cJSON *c;
	cJSON_ArrayForEach(
	        c, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod, "spec"), "containers"))
	{
		const char *cname = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "name"));
		if (cname && sample_container(s, pod_group, uid, cname, now_ms, &containers, count == 0))
			count++;
	}
	cgroups_group_free(pod_group);
	if (count) {
		buffer_append_string(out, *pods ? ",{\"namespace\":" : "{\"namespace\":");
		buffer_append_json_string(out, ns ? ns : "default");
		buffer_append_string(out, ",\"name\":");
		buffer_append_json_string(out, name);
		buffer_append_string(out, ",\"uid\":");
		buffer_append_json_string(out, uid);
		buffer_append_string(out, ",\"containers\":[");
		buffer_append(out, containers.data, containers.length);
		buffer_append_string(out, "]}");
		(*pods)++;
	}
	buffer_free(&containers);
}

char *stats_sample(struct stats *s, const cJSON *const *pods, size_t count, uint64_t now_ms, int64_t wall_s)
{
	struct cpustat cpu;
	if (cpustat_read(NULL, &cpu, NULL) < 0)
		return NULL;
	if (!s->facts_read && board_read(&s->facts, NULL, NULL, NULL) < 0)
		return NULL;
	s->facts_read = true;
	board_read_usage(&s->facts, NULL, NULL, NULL);
	uint64_t previous_ms = s->node_at_ms;
	struct cpustat previous = s->node_cpu;
	s->node_cpu = cpu;
	s->node_at_ms = now_ms;
	struct buffer pod_text = BUFFER_INIT;
	size_t reported = 0;
	for (size_t i = 0; i < count; i++)
		sample_pod(s, pods[i], now_ms, &pod_text, &reported);
	forget_unseen(s);
	if (!previous_ms || now_ms <= previous_ms || cpu.busy_ns < previous.busy_ns) {
		buffer_free(&pod_text);
		return NULL;
	}
	uint64_t window = now_ms - previous_ms;
	uint64_t memory = s->facts.memory_total > s->facts.memory_available
	                          ? s->facts.memory_total - s->facts.memory_available
	                          : 0;
	char stamp[CLOCK_RFC3339_SIZE];
	clock_format_rfc3339((time_t)wall_s, stamp);
	struct buffer b = BUFFER_INIT;
	buffer_printf(&b,
	              "{\"timestamp\":\"%s\",\"window\":%" PRIu64 ",\"usage\":{\"cpu\":%" PRIu64 ",\"memory\":%" PRIu64
	              "},\"pods\":[",
	              stamp, window, stats_millicores(cpu.busy_ns - previous.busy_ns, window), memory);
	if (pod_text.data)
		buffer_append(&b, pod_text.data, pod_text.length);
	buffer_append_string(&b, "]}");
	buffer_free(&pod_text);
	return buffer_steal(&b);
}

static void on_reported(const struct client_response *response, const struct error *err, void *data)
{
	struct stats *s = data;
	s->in_flight = false;
	if (!response)
		log_debug("metrics not reported: %s", err->message);
	else if (response->code >= 300)
		log_warnx("metrics of node %s refused: %s", s->node_name, response->message);
}

void stats_report(struct stats *s, struct link *link, const cJSON *const *pods, size_t count)
{
	if (!s || s->in_flight || !link_is_up(link))
		return;
	char *body = stats_sample(s, pods, count, clock_monotonic_ms(), (int64_t)time(NULL));
	if (!body)
		return;
	cleanup_free char *path = xasprintf("/apis/metrics.k8s.io/v1beta1/nodes/%s", s->node_name);
	struct error err;
	if (link_request(link, CLIENT_PUT, path, body, strlen(body), on_reported, s, &err) == 0)
		s->in_flight = true;
	free(body);
}
