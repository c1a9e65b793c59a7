/* The board as a Kubernetes Node.
 *
 * What goes into the Node, and why:
 *   metadata.name      the configured node name, else the host name lowercased (the kubelet's
 *                      default). It is also the agent's identity (node:<name>).
 *   metadata.labels    kubernetes.io/{arch,os,hostname} and their beta.kubernetes.io twins
 *                      (the kubelet still sets the twins; old manifests select on them), so a
 *                      nodeSelector or DaemonSet written for Kubernetes picks the right boards;
 *                      node.bramble.io/model (the device-tree model as a label value, so pods
 *                      can ask for "Raspberry_Pi_4_Model_B_Rev_1.4") and, on 32-bit ARM,
 *                      node.bramble.io/arm-variant (v6 boards cannot run armv7 images); then the
 *                      user's labels. A user label may not replace one of these.
 *   spec.taints        the user's, parsed like the kubelet's --register-with-taints. No
 *                      podCIDR: the control plane assigns it.
 *   status.capacity    cpu (cores), memory and ephemeral-storage (Ki, of the data directory's
 *                      filesystem), pods (max_pods). allocatable = capacity minus the
 *                      reservations, never below zero. Unlike the kubelet, the eviction
 *                      threshold is not subtracted as well: a board with 512 MiB cannot spare it
 *                      twice; reserve it explicitly if wanted.
 *   status.conditions  MemoryPressure, DiskPressure, PIDPressure, Ready, in the kubelet's order
 *                      and words. Pressure: MemAvailable below the threshold (100Mi); less than
 *                      10% of the data filesystem available; threads above 90% of pid_max.
 *   status.addresses   an InternalIP for each address of the board (IPv4 first), then Hostname.
 *   status.nodeInfo    ids and versions: kubeletVersion and kubeProxyVersion are
 *                      "v1.30.0-bramble.<version>", valid semver that tools comparing versions
 *                      with the API server's accept; containerRuntimeVersion "bramble://<version>".
 *                      systemUUID is the DMI uuid, or the machine id where there is none (Pis).
 *   status.daemonEndpoints.kubeletEndpoint.Port  where the agent answers (logs, stats).
 *
 * Heartbeats: lastHeartbeatTime of every condition is the only thing that changes on a beat
 * (node_heartbeat). lastTransitionTime moves only when a condition's status changes
 * (node_update_status keeps it from the previous status). So the agent sends a full status
 * update when node_status_equal says something else changed, and otherwise only a heartbeat,
 * which the control plane keeps in memory (README: "Heartbeats stay in memory").
 */
#include "agent/node.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/object.h"
#include "platform/board.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/memory.h"

#ifndef BRAMBLE_VERSION
#define BRAMBLE_VERSION "0.0.0"
#endif

static const char *const AGENT_LABELS[] = {
	"kubernetes.io/arch",    "kubernetes.io/os", "kubernetes.io/hostname", "beta.kubernetes.io/arch",
	"beta.kubernetes.io/os", NODE_MODEL_LABEL,   NODE_ARM_VARIANT_LABEL,
};

static const char *const TAINT_EFFECTS[] = { "NoSchedule", "PreferNoSchedule", "NoExecute" };

void node_model_label(const char *model, char buf[64])
{
	size_t n = 0;
	for (const char *p = model; *p && n < 63; p++) {
		char c = *p;
		bool allowed = isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-';
		if (allowed)
			buf[n++] = c;
		else if (n > 0 && buf[n - 1] != '_')
			buf[n++] = '_';
	}
	buf[n] = '\0';
	/* A label value starts and ends with an alphanumeric character. */
	size_t start = 0;
	while (start < n && !isalnum((unsigned char)buf[start]))
		start++;
	while (n > start && !isalnum((unsigned char)buf[n - 1]))
		n--;
	memmove(buf, buf + start, n - start);
	buf[n - start] = '\0';
}

static void lowercase(char *dst, size_t size, const char *src)
{
	size_t n = 0;
	for (; src[n] && n + 1 < size; n++)
		dst[n] = (char)tolower((unsigned char)src[n]);
	dst[n] = '\0';
}

/* Next comma-separated item of *list, trimmed, in buf; false at the end. */
static bool next_item(const char **list, char *buf, size_t size, bool *ret_too_long)
{
	const char *p = *list;
	while (*p == ',' || isspace((unsigned char)*p))
		p++;
	if (!*p)
		return false;
	const char *end = strchr(p, ',');
	if (!end)
		end = p + strlen(p);
	*list = end;
	while (end > p && isspace((unsigned char)end[-1]))
		end--;
	size_t length = (size_t)(end - p);
	*ret_too_long = length >= size;
	if (length >= size)
		length = size - 1;
	memcpy(buf, p, length);
	buf[length] = '\0';
	return true;
}

static bool agent_label(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(AGENT_LABELS); i++)
		if (strcmp(key, AGENT_LABELS[i]) == 0)
			return true;
	return false;
}

static int add_user_labels(cJSON *labels, const char *list, struct error *err)
{
	char item[512];
	bool too_long;
	size_t count = 0;
	while (list && next_item(&list, item, sizeof(item), &too_long)) {
		if (too_long)
			return error_set_field(err, EINVAL, "labels", "Invalid value: \"%.64s...\": too long", item);
		if (++count > NODE_LABELS_MAX)
			return error_set_field(err, EINVAL, "labels", "Too many: more than %d labels", NODE_LABELS_MAX);
		char *equals = strchr(item, '=');
		if (!equals)
			return error_set_field(err, EINVAL, "labels", "Invalid value: \"%s\": not key=value", item);
		*equals = '\0';
		const char *key = item, *value = equals + 1, *problem;
		if ((problem = object_label_key_problem(key)))
			return error_set_field(err, EINVAL, "labels", "Invalid value: \"%s\": %s", key, problem);
		if ((problem = object_label_value_problem(value)))
			return error_set_field(err, EINVAL, "labels", "Invalid value: \"%s\": %s", value, problem);
		if (agent_label(key))
			return error_set_field(err, EINVAL, "labels", "Forbidden: \"%s\" is set by the agent", key);
		if (cJSON_GetObjectItemCaseSensitive(labels, key))
			return error_set_field(err, EINVAL, "labels", "Duplicate value: \"%s\"", key);
		cJSON_AddStringToObject(labels, key, value);
	}
	return 0;
}

/* "key=value:Effect" or "key:Effect" -> {"key", "value", "effect"}. */
static int parse_taints(const char *list, cJSON **ret_taints, struct error *err)
{
	cJSON *taints = cJSON_CreateArray();
	char item[512];
	bool too_long;
	size_t count = 0;
	int r = 0;
	while (list && next_item(&list, item, sizeof(item), &too_long)) {
		if (too_long) {
			r = error_set_field(err, EINVAL, "taints", "Invalid value: \"%.64s...\": too long", item);
			goto fail;
		}
		if (++count > NODE_TAINTS_MAX) {
			r = error_set_field(err, EINVAL, "taints", "Too many: more than %d taints", NODE_TAINTS_MAX);
			goto fail;
		}
		char *colon = strrchr(item, ':');
		if (!colon) {
			r = error_set_field(err, EINVAL, "taints",
			                    "Invalid value: \"%s\": a taint is key=value:Effect or key:Effect", item);
			goto fail;
		}
		*colon = '\0';
		const char *effect = colon + 1, *key = item, *value = "", *problem;
		bool known = false;
		for (size_t i = 0; i < ARRAY_SIZE(TAINT_EFFECTS); i++)
			known = known || strcmp(effect, TAINT_EFFECTS[i]) == 0;
		if (!known) {
			r = error_set_field(err, EINVAL, "taints",
			                    "Unsupported value: \"%s\": supported values: \"NoSchedule\", "
			                    "\"PreferNoSchedule\", \"NoExecute\"",
			                    effect);
			goto fail;
		}
		char *equals = strchr(item, '=');
		if (equals) {
			*equals = '\0';
			value = equals + 1;
		}
		if ((problem = object_label_key_problem(key))) {
			r = error_set_field(err, EINVAL, "taints", "Invalid value: \"%s\": %s", key, problem);
			goto fail;
		}
		if ((problem = object_label_value_problem(value))) {
			r = error_set_field(err, EINVAL, "taints", "Invalid value: \"%s\": %s", value, problem);
			goto fail;
		}
		const cJSON *other;
		cJSON_ArrayForEach(other, taints)
		{
			if (strcmp(cJSON_GetObjectItemCaseSensitive(other, "key")->valuestring, key) == 0 &&
			    strcmp(cJSON_GetObjectItemCaseSensitive(other, "effect")->valuestring, effect) == 0) {
				r = error_set_field(
				        err, EINVAL, "taints",
				        "Duplicate value: \"%s:%s\": taints must be unique by key and effect", key,
				        effect);
				goto fail;
			}
		}
		cJSON *taint = cJSON_CreateObject();
		cJSON_AddStringToObject(taint, "key", key);
		if (*value)
			cJSON_AddStringToObject(taint, "value", value);
		cJSON_AddStringToObject(taint, "effect", effect);
		cJSON_AddItemToArray(taints, taint);
	}
	*ret_taints = taints;
	return 0;
fail:
	cJSON_Delete(taints);
	return r;
}

static void add_cpu(cJSON *object, uint64_t millicores)
{
	char text[32];
	if (millicores % 1000 == 0)
		snprintf(text, sizeof(text), "%" PRIu64, millicores / 1000);
	else
		snprintf(text, sizeof(text), "%" PRIu64 "m", millicores);
	cJSON_AddStringToObject(object, "cpu", text);
}

static void add_kibibytes(cJSON *object, const char *name, uint64_t bytes)
{
	char text[32];
	snprintf(text, sizeof(text), "%" PRIu64 "Ki", bytes / 1024);
	cJSON_AddStringToObject(object, name, text);
}

static uint64_t minus(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

static void add_resources(cJSON *status, const struct board_facts *facts, const struct node_options *options)
{
	char pods[16];
	snprintf(pods, sizeof(pods), "%u", options->max_pods ? options->max_pods : NODE_DEFAULT_MAX_PODS);
	uint64_t cpu = (uint64_t)(facts->cpus ? facts->cpus : 1) * 1000;
	for (int allocatable = 0; allocatable <= 1; allocatable++) {
		cJSON *r = cJSON_AddObjectToObject(status, allocatable ? "allocatable" : "capacity");
		add_cpu(r, allocatable ? minus(cpu, options->reserved_cpu_millicores) : cpu);
		if (facts->storage_known)
			add_kibibytes(r, "ephemeral-storage",
			              allocatable ? minus(facts->storage_capacity, options->reserved_ephemeral_bytes)
			                          : facts->storage_capacity);
		add_kibibytes(r, "memory",
		              allocatable ? minus(facts->memory_total, options->reserved_memory_bytes)
		                          : facts->memory_total);
		cJSON_AddStringToObject(r, "pods", pods);
	}
}

struct condition {
	const char *type;
	bool on; /* the condition's status is "True" */
	const char *reason, *message;
};

static void conditions_of(const struct board_facts *facts, const struct node_options *options, struct condition ret[4])
{
	uint64_t memory_threshold =
	        options->memory_pressure_bytes ? options->memory_pressure_bytes : NODE_DEFAULT_MEMORY_PRESSURE_BYTES;
	uint64_t disk_percent =
	        options->disk_pressure_percent ? options->disk_pressure_percent : NODE_DEFAULT_DISK_PRESSURE_PERCENT;
	uint64_t pid_percent =
	        options->pid_pressure_percent ? options->pid_pressure_percent : NODE_DEFAULT_PID_PRESSURE_PERCENT;

	bool memory = facts->memory_total > 0 && facts->memory_available < memory_threshold;
	bool disk = facts->storage_known && facts->storage_available * 100 < facts->storage_capacity * disk_percent;
	bool pid = facts->pid_max > 0 && facts->pids_in_use * 100 > facts->pid_max * pid_percent;

	ret[0] = (struct condition){ "MemoryPressure", memory,
		                     memory ? "KubeletHasInsufficientMemory" : "KubeletHasSufficientMemory",
		                     memory ? "kubelet has insufficient memory available"
		                            : "kubelet has sufficient memory available" };
	ret[1] = (struct condition){ "DiskPressure", disk, disk ? "KubeletHasDiskPressure" : "KubeletHasNoDiskPressure",
		                     disk ? "kubelet has disk pressure" : "kubelet has no disk pressure" };
	ret[2] = (struct condition){ "PIDPressure", pid, pid ? "KubeletHasInsufficientPID" : "KubeletHasSufficientPID",
		                     pid ? "kubelet has insufficient PID available"
		                         : "kubelet has sufficient PID available" };
	bool ready = !options->not_ready_message;
	ret[3] = (struct condition){ "Ready", ready, ready ? "KubeletReady" : "KubeletNotReady",
		                     ready ? "kubelet is posting ready status" : options->not_ready_message };
}

static const cJSON *find_condition(const cJSON *status, const char *type)
{
	const cJSON *conditions = cJSON_GetObjectItemCaseSensitive(status, "conditions"), *c;
	cJSON_ArrayForEach(c, conditions)
	{
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "type");
		if (cJSON_IsString(t) && strcmp(t->valuestring, type) == 0)
			return c;
	}
	return NULL;
}

static void add_conditions(cJSON *status, const cJSON *old_status, const struct board_facts *facts,
                           const struct node_options *options, time_t now)
{
	struct condition conditions[4];
	conditions_of(facts, options, conditions);
	char now_text[CLOCK_RFC3339_SIZE];
	clock_format_rfc3339(now, now_text);
	cJSON *array = cJSON_AddArrayToObject(status, "conditions");
	for (size_t i = 0; i < ARRAY_SIZE(conditions); i++) {
		const char *value = conditions[i].on ? "True" : "False";
		const char *transition = now_text;
		const cJSON *old = old_status ? find_condition(old_status, conditions[i].type) : NULL;
		if (old) {
			const cJSON *old_value = cJSON_GetObjectItemCaseSensitive(old, "status");
			const cJSON *old_time = cJSON_GetObjectItemCaseSensitive(old, "lastTransitionTime");
			time_t parsed;
			if (cJSON_IsString(old_value) && strcmp(old_value->valuestring, value) == 0 &&
			    cJSON_IsString(old_time) && clock_parse_rfc3339(old_time->valuestring, &parsed) == 0)
				transition = old_time->valuestring;
		}
		cJSON *c = cJSON_CreateObject();
		cJSON_AddStringToObject(c, "type", conditions[i].type);
		cJSON_AddStringToObject(c, "status", value);
		cJSON_AddStringToObject(c, "lastHeartbeatTime", now_text);
		cJSON_AddStringToObject(c, "lastTransitionTime", transition);
		cJSON_AddStringToObject(c, "reason", conditions[i].reason);
		cJSON_AddStringToObject(c, "message", conditions[i].message);
		cJSON_AddItemToArray(array, c);
	}
}

/* The host name as Kubernetes uses it: lowercased. */
static void node_hostname(const struct board_facts *facts, char buf[BOARD_TEXT_MAX])
{
	lowercase(buf, BOARD_TEXT_MAX, facts->hostname);
}

static void add_address(cJSON *addresses, const char *type, const char *address)
{
	cJSON *a = cJSON_CreateObject();
	cJSON_AddStringToObject(a, "type", type);
	cJSON_AddStringToObject(a, "address", address);
	cJSON_AddItemToArray(addresses, a);
}

cJSON *node_update_status(const cJSON *old_status, const struct board_facts *facts, const struct node_options *options,
                          time_t now)
{
	const char *version = options->version ? options->version : BRAMBLE_VERSION;
	cJSON *status = cJSON_CreateObject();
	add_resources(status, facts, options);
	add_conditions(status, old_status, facts, options, now);

	cJSON *addresses = cJSON_AddArrayToObject(status, "addresses");
	for (size_t i = 0; i < facts->address_count && i < BOARD_ADDRESSES_MAX; i++)
		add_address(addresses, "InternalIP", facts->addresses[i].text);
	char hostname[BOARD_TEXT_MAX];
	node_hostname(facts, hostname);
	if (options->name && options->name[0])
		add_address(addresses, "Hostname", options->name);
	else if (hostname[0])
		add_address(addresses, "Hostname", hostname);

	cJSON *endpoints = cJSON_AddObjectToObject(status, "daemonEndpoints");
	cJSON *kubelet = cJSON_AddObjectToObject(endpoints, "kubeletEndpoint");
	cJSON_AddNumberToObject(kubelet, "Port", options->port ? options->port : NODE_DEFAULT_PORT);

	cleanup_free char *kubelet_version = xasprintf("%s-bramble.%s", NODE_KUBERNETES_VERSION, version);
	cleanup_free char *runtime_version = xasprintf("bramble://%s", version);
	cJSON *info = cJSON_AddObjectToObject(status, "nodeInfo");
	cJSON_AddStringToObject(info, "machineID", facts->machine_id);
	cJSON_AddStringToObject(info, "systemUUID", facts->system_uuid[0] ? facts->system_uuid : facts->machine_id);
	cJSON_AddStringToObject(info, "bootID", facts->boot_id);
	cJSON_AddStringToObject(info, "kernelVersion", facts->kernel_version);
	cJSON_AddStringToObject(info, "osImage", facts->os_image);
	cJSON_AddStringToObject(info, "containerRuntimeVersion", runtime_version);
	cJSON_AddStringToObject(info, "kubeletVersion", kubelet_version);
	cJSON_AddStringToObject(info, "kubeProxyVersion", kubelet_version);
	cJSON_AddStringToObject(info, "operatingSystem", "linux");
	cJSON_AddStringToObject(info, "architecture", facts->architecture);
	return status;
}

int node_heartbeat(cJSON *node_status, time_t now)
{
	cJSON *conditions = cJSON_GetObjectItemCaseSensitive(node_status, "conditions"), *c;
	if (!cJSON_IsArray(conditions) || cJSON_GetArraySize(conditions) == 0)
		return -EINVAL;
	char now_text[CLOCK_RFC3339_SIZE];
	clock_format_rfc3339(now, now_text);
	cJSON_ArrayForEach(c, conditions)
	{
		if (!cJSON_IsObject(c))
			continue;
		if (cJSON_GetObjectItemCaseSensitive(c, "lastHeartbeatTime"))
			cJSON_ReplaceItemInObjectCaseSensitive(c, "lastHeartbeatTime", cJSON_CreateString(now_text));
		else
			cJSON_AddStringToObject(c, "lastHeartbeatTime", now_text);
	}
	return 0;
}

static cJSON *without_heartbeats(const cJSON *status)
{
	cJSON *copy = cJSON_Duplicate(status, true);
	cJSON *conditions = cJSON_GetObjectItemCaseSensitive(copy, "conditions"), *c;
	cJSON_ArrayForEach(c, conditions)
	{
		cJSON_DeleteItemFromObjectCaseSensitive(c, "lastHeartbeatTime");
	}
	return copy;
}

bool node_status_equal(const cJSON *a, const cJSON *b)
{
	if (!a || !b)
		return a == b;
	cJSON *x = without_heartbeats(a), *y = without_heartbeats(b);
	bool equal = cJSON_Compare(x, y, true);
	cJSON_Delete(x);
	cJSON_Delete(y);
	return equal;
}

int node_build(const struct board_facts *facts, const struct node_options *options, cJSON **ret_node, struct error *err)
{
	char hostname[BOARD_TEXT_MAX];
	node_hostname(facts, hostname);
	const char *name = options->name && options->name[0] ? options->name : hostname;
	if (!object_valid_dns_subdomain(name))
		return error_set_field(err, EINVAL, "name",
		                       "Invalid value: \"%s\": a node name must be a lowercase RFC 1123 subdomain "
		                       "(lowercase letters, digits, '-' and '.')",
		                       name);
	/* The hostname label is the node name when one is configured (as k3s' --node-name,
	 * which overrides the host name), else the host name when it is a label value. */
	const char *hostname_label =
	        (options->name && options->name[0]) || !hostname[0] || object_label_value_problem(hostname) ? name
	                                                                                                    : hostname;

	cJSON *taints = NULL;
	int r = parse_taints(options->taints, &taints, err);
	if (r < 0)
		return r;

	cJSON *node = cJSON_CreateObject();
	cJSON_AddStringToObject(node, "apiVersion", "v1");
	cJSON_AddStringToObject(node, "kind", "Node");
	cJSON *metadata = cJSON_AddObjectToObject(node, "metadata");
	cJSON_AddStringToObject(metadata, "name", name);
	cJSON *labels = cJSON_AddObjectToObject(metadata, "labels");
	cJSON_AddStringToObject(labels, "beta.kubernetes.io/arch", facts->architecture);
	cJSON_AddStringToObject(labels, "beta.kubernetes.io/os", "linux");
	cJSON_AddStringToObject(labels, "kubernetes.io/arch", facts->architecture);
	if (!object_label_value_problem(hostname_label))
		cJSON_AddStringToObject(labels, "kubernetes.io/hostname", hostname_label);
	cJSON_AddStringToObject(labels, "kubernetes.io/os", "linux");
	char model[64];
	node_model_label(facts->model, model);
	if (model[0])
		cJSON_AddStringToObject(labels, NODE_MODEL_LABEL, model);
	if (facts->arm_variant[0])
		cJSON_AddStringToObject(labels, NODE_ARM_VARIANT_LABEL, facts->arm_variant);
	r = add_user_labels(labels, options->labels, err);
	if (r < 0) {
		cJSON_Delete(taints);
		cJSON_Delete(node);
		return r;
	}

	cJSON *spec = cJSON_AddObjectToObject(node, "spec");
	if (cJSON_GetArraySize(taints) > 0)
		cJSON_AddItemToObject(spec, "taints", taints);
	else
		cJSON_Delete(taints);
	cJSON_AddItemToObject(node, "status", node_update_status(NULL, facts, options, time(NULL)));
	*ret_node = node;
	return 0;
}

int node_check_labels(const char *list, struct error *err)
{
	cJSON *labels = cJSON_CreateObject();
	int r = add_user_labels(labels, list, err);
	cJSON_Delete(labels);
	return r;
}

int node_check_taints(const char *list, struct error *err)
{
	cJSON *taints = NULL;
	int r = parse_taints(list, &taints, err);
	cJSON_Delete(taints);
	return r;
}
