#include "agent/node.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/object.h"
#include "platform/board.h"
#include "platform/error.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

#define GiB (1024ULL * 1024 * 1024)
#define MiB (1024ULL * 1024)

static const time_t T0 = 1714557600; /* 2024-05-01T10:00:00Z */

static void pi4(struct board_facts *f)
{
	memset(f, 0, sizeof(*f));
	f->cpus = 4;
	f->memory_total = 3982284ULL * 1024;
	f->memory_available = 2 * GiB;
	f->pid_max = 32768;
	f->pids_in_use = 200;
	snprintf(f->architecture, sizeof(f->architecture), "arm64");
	snprintf(f->machine, sizeof(f->machine), "aarch64");
	snprintf(f->kernel_version, sizeof(f->kernel_version), "6.6.31+rpt-rpi-v8");
	snprintf(f->os_image, sizeof(f->os_image), "Debian GNU/Linux 12 (bookworm)");
	snprintf(f->machine_id, sizeof(f->machine_id), "0123456789abcdef0123456789abcdef");
	snprintf(f->system_uuid, sizeof(f->system_uuid), "0123456789abcdef0123456789abcdef");
	snprintf(f->boot_id, sizeof(f->boot_id), "6f1e2d3c-aaaa-bbbb-cccc-000000000001");
	snprintf(f->model, sizeof(f->model), "Raspberry Pi 4 Model B Rev 1.4");
	snprintf(f->hostname, sizeof(f->hostname), "Pi-1");
	f->storage_known = true;
	f->storage_capacity = 32 * GiB;
	f->storage_available = 20 * GiB;
	f->addresses[0] = (struct board_address){ AF_INET, "192.168.1.21" };
	f->addresses[1] = (struct board_address){ AF_INET6, "fd00::21" };
	f->address_count = 2;
}

static const char *at(const cJSON *node, const char *path)
{
	return object_string_at(node, path);
}

static const char *label(const cJSON *node, const char *key)
{
	const cJSON *labels =
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(node, "metadata"), "labels");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(labels, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *condition(const cJSON *status, const char *type)
{
	const cJSON *c;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(status, "conditions"))
	{
		if (strcmp(cJSON_GetObjectItemCaseSensitive(c, "type")->valuestring, type) == 0)
			return c;
	}
	unit_fail(__FILE__, __LINE__, "no %s condition", type);
}

static const char *condition_field(const cJSON *status, const char *type, const char *field)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(condition(status, type), field);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void check_valid(const cJSON *node)
{
	struct error err = { 0 };
	int r = object_validate(kind_lookup("v1", "Node"), node, &err);
	if (r < 0)
		unit_fail(__FILE__, __LINE__, "object_validate: %s", err.message);
}

TEST(node_object_for_a_pi)
{
	struct board_facts facts;
	pi4(&facts);
	struct node_options options = { .name = "pi-1", .labels = "zone=kitchen, bramble.io/camera=true" };
	cJSON *node = NULL;
	struct error err;
	CHECK_OK(node_build(&facts, &options, &node, &err));
	check_valid(node);
	CHECK_STR(at(node, "apiVersion"), "v1");
	CHECK_STR(at(node, "kind"), "Node");
	CHECK_STR(at(node, "metadata.name"), "pi-1");
	CHECK_STR(label(node, "kubernetes.io/arch"), "arm64");
	CHECK_STR(label(node, "beta.kubernetes.io/arch"), "arm64");
	CHECK_STR(label(node, "kubernetes.io/os"), "linux");
	CHECK_STR(label(node, "beta.kubernetes.io/os"), "linux");
	CHECK_STR(label(node, "kubernetes.io/hostname"), "pi-1");
	CHECK_STR(label(node, "node.bramble.io/model"), "Raspberry_Pi_4_Model_B_Rev_1.4");
	CHECK(label(node, "node.bramble.io/arm-variant") == NULL);
	CHECK_STR(label(node, "zone"), "kitchen");
	CHECK_STR(label(node, "bramble.io/camera"), "true");
	CHECK(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(node, "spec"), "taints") == NULL);
	CHECK(at(node, "spec.podCIDR") == NULL);

	CHECK_STR(at(node, "status.capacity.cpu"), "4");
	CHECK_STR(at(node, "status.capacity.memory"), "3982284Ki");
	CHECK_STR(at(node, "status.capacity.pods"), "110");
	CHECK_STR(at(node, "status.capacity.ephemeral-storage"), "33554432Ki");
	CHECK_STR(at(node, "status.allocatable.cpu"), "4");
	CHECK_STR(at(node, "status.allocatable.memory"), "3982284Ki");

	CHECK_STR(at(node, "status.nodeInfo.architecture"), "arm64");
	CHECK_STR(at(node, "status.nodeInfo.operatingSystem"), "linux");
	CHECK_STR(at(node, "status.nodeInfo.machineID"), "0123456789abcdef0123456789abcdef");
	CHECK_STR(at(node, "status.nodeInfo.bootID"), "6f1e2d3c-aaaa-bbbb-cccc-000000000001");
	CHECK_STR(at(node, "status.nodeInfo.kernelVersion"), "6.6.31+rpt-rpi-v8");
	CHECK_STR(at(node, "status.nodeInfo.osImage"), "Debian GNU/Linux 12 (bookworm)");
	CHECK_STR(at(node, "status.nodeInfo.containerRuntimeVersion"), "bramble://" BRAMBLE_VERSION);
	CHECK_STR(at(node, "status.nodeInfo.kubeletVersion"), "v1.30.0-bramble." BRAMBLE_VERSION);
	CHECK_STR(at(node, "status.nodeInfo.kubeProxyVersion"), "v1.30.0-bramble." BRAMBLE_VERSION);

	const cJSON *status = cJSON_GetObjectItemCaseSensitive(node, "status");
	const cJSON *port = cJSON_GetObjectItemCaseSensitive(
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(status, "daemonEndpoints"),
	                                         "kubeletEndpoint"),
	        "Port");
	CHECK_INT(port->valueint, ==, NODE_DEFAULT_PORT);

	const cJSON *addresses = cJSON_GetObjectItemCaseSensitive(status, "addresses");
	CHECK_INT(cJSON_GetArraySize(addresses), ==, 3);
	CHECK_STR(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(addresses, 0), "type")->valuestring,
	          "InternalIP");
	CHECK_STR(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(addresses, 0), "address")->valuestring,
	          "192.168.1.21");
	CHECK_STR(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(addresses, 1), "address")->valuestring,
	          "fd00::21");
	CHECK_STR(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(addresses, 2), "type")->valuestring, "Hostname");
	CHECK_STR(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(addresses, 2), "address")->valuestring, "pi-1");

	CHECK_STR(condition_field(status, "Ready", "status"), "True");
	CHECK_STR(condition_field(status, "Ready", "reason"), "KubeletReady");
	CHECK_STR(condition_field(status, "Ready", "message"), "kubelet is posting ready status");
	CHECK_STR(condition_field(status, "MemoryPressure", "status"), "False");
	CHECK_STR(condition_field(status, "MemoryPressure", "reason"), "KubeletHasSufficientMemory");
	CHECK_STR(condition_field(status, "DiskPressure", "reason"), "KubeletHasNoDiskPressure");
	CHECK_STR(condition_field(status, "PIDPressure", "reason"), "KubeletHasSufficientPID");
	/* Ready last, as the kubelet orders them */
	const cJSON *conditions = cJSON_GetObjectItemCaseSensitive(status, "conditions");
	CHECK_INT(cJSON_GetArraySize(conditions), ==, 4);
	CHECK_STR(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(conditions, 3), "type")->valuestring, "Ready");

	/* The JSON survives a round trip through the API's parser. */
	cleanup_free char *text = cJSON_PrintUnformatted(node);
	cJSON *parsed = NULL;
	CHECK_OK(object_parse(text, strlen(text), &parsed, &err));
	check_valid(parsed);
	cJSON_Delete(parsed);
	cJSON_Delete(node);
}

TEST(name_defaults_to_the_host_name_and_is_checked)
{
	struct board_facts facts;
	pi4(&facts);
	struct node_options options = { 0 };
	cJSON *node = NULL;
	struct error err;
	CHECK_OK(node_build(&facts, &options, &node, &err));
	CHECK_STR(at(node, "metadata.name"), "pi-1"); /* "Pi-1", lowercased */
	check_valid(node);
	cJSON_Delete(node);

	options.name = "Pi_1";
	CHECK_INT(node_build(&facts, &options, &node, &err), ==, -EINVAL);
	CHECK_STR(err.field, "name");
	CHECK_CONTAINS(err.message, "Pi_1");
}

TEST(arm_variant_label_on_32_bit_arm)
{
	struct board_facts facts;
	pi4(&facts);
	snprintf(facts.architecture, sizeof(facts.architecture), "arm");
	snprintf(facts.arm_variant, sizeof(facts.arm_variant), "v6");
	snprintf(facts.model, sizeof(facts.model), "Raspberry Pi Zero W Rev 1.1");
	struct node_options options = { .name = "zero" };
	cJSON *node = NULL;
	CHECK_OK(node_build(&facts, &options, &node, NULL));
	check_valid(node);
	CHECK_STR(label(node, "kubernetes.io/arch"), "arm");
	CHECK_STR(label(node, "node.bramble.io/arm-variant"), "v6");
	CHECK_STR(label(node, "node.bramble.io/model"), "Raspberry_Pi_Zero_W_Rev_1.1");
	CHECK_STR(at(node, "status.nodeInfo.architecture"), "arm");
	cJSON_Delete(node);
}

TEST(no_model_no_model_label)
{
	struct board_facts facts;
	pi4(&facts);
	facts.model[0] = '\0';
	struct node_options options = { .name = "vm-1" };
	cJSON *node = NULL;
	CHECK_OK(node_build(&facts, &options, &node, NULL));
	CHECK(label(node, "node.bramble.io/model") == NULL);
	check_valid(node);
	cJSON_Delete(node);
}

TEST(model_label_sanitizing)
{
	char buf[64];
	node_model_label("Raspberry Pi 4 Model B Rev 1.4", buf);
	CHECK_STR(buf, "Raspberry_Pi_4_Model_B_Rev_1.4");
	node_model_label("  Raspberry Pi Compute Module 4 Rev 1.0  ", buf);
	CHECK_STR(buf, "Raspberry_Pi_Compute_Module_4_Rev_1.0");
	node_model_label("Pine64 RockPro64 v2.1 (ROCKPro64)", buf);
	CHECK_STR(buf, "Pine64_RockPro64_v2.1_ROCKPro64");
	node_model_label("--==--", buf);
	CHECK_STR(buf, "");
	node_model_label("", buf);
	CHECK_STR(buf, "");
	node_model_label("a/b\\c\td\"e", buf);
	CHECK_STR(buf, "a_b_c_d_e");
	/* Long: cut to 63, still ending alphanumeric. */
	node_model_label("Very Long Board Name With Many Words That Goes On And On_ Past Sixty-Three Characters", buf);
	CHECK_INT(strlen(buf), <=, 63);
	CHECK(object_label_value_problem(buf) == NULL);
	char model[80];
	memset(model, 'x', 61);
	snprintf(model + 61, sizeof(model) - 61, " Y"); /* 61 + "_Y": exactly 63 */
	node_model_label(model, buf);
	CHECK_INT(strlen(buf), ==, 63);
	CHECK(strcmp(buf + 61, "_Y") == 0);
	memset(model, 'x', 62);
	snprintf(model + 62, sizeof(model) - 62, "  Y"); /* the cut falls on the '_', which goes */
	node_model_label(model, buf);
	CHECK_INT(strlen(buf), ==, 62);
	CHECK(object_label_value_problem(buf) == NULL);
}

TEST(reservations_and_clamping)
{
	struct board_facts facts;
	pi4(&facts);
	struct node_options options = {
		.name = "pi-1",
		.max_pods = 30,
		.reserved_cpu_millicores = 500,
		.reserved_memory_bytes = 256 * MiB,
		.reserved_ephemeral_bytes = 2 * GiB,
	};
	cJSON *node = NULL;
	CHECK_OK(node_build(&facts, &options, &node, NULL));
	check_valid(node);
	CHECK_STR(at(node, "status.capacity.cpu"), "4");
	CHECK_STR(at(node, "status.allocatable.cpu"), "3500m");
	CHECK_STR(at(node, "status.allocatable.memory"), "3720140Ki"); /* 3982284 - 262144 */
	CHECK_STR(at(node, "status.allocatable.ephemeral-storage"), "31457280Ki");
	CHECK_STR(at(node, "status.capacity.pods"), "30");
	CHECK_STR(at(node, "status.allocatable.pods"), "30");
	cJSON_Delete(node);

	options.reserved_cpu_millicores = 1000;
	node = node_update_status(NULL, &facts, &options, T0);
	CHECK_STR(at(node, "allocatable.cpu"), "3");
	cJSON_Delete(node);

	/* More reserved than there is: zero, never negative. */
	options.reserved_cpu_millicores = 9000;
	options.reserved_memory_bytes = 64 * GiB;
	options.reserved_ephemeral_bytes = 1024 * GiB;
	CHECK_OK(node_build(&facts, &options, &node, NULL));
	check_valid(node);
	CHECK_STR(at(node, "status.allocatable.cpu"), "0");
	CHECK_STR(at(node, "status.allocatable.memory"), "0Ki");
	CHECK_STR(at(node, "status.allocatable.ephemeral-storage"), "0Ki");
	cJSON_Delete(node);

	/* No data directory known: no ephemeral-storage at all rather than a made-up one. */
	facts.storage_known = false;
	node = node_update_status(NULL, &facts, &options, T0);
	CHECK(at(node, "capacity.ephemeral-storage") == NULL);
	cJSON_Delete(node);
}

TEST(taints)
{
	struct board_facts facts;
	pi4(&facts);
	struct node_options options = { .name = "pi-1",
		                        .taints = "bramble.io/edge=true:NoSchedule, dedicated:PreferNoSchedule" };
	cJSON *node = NULL;
	struct error err;
	CHECK_OK(node_build(&facts, &options, &node, &err));
	check_valid(node);
	const cJSON *taints =
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(node, "spec"), "taints");
	CHECK_INT(cJSON_GetArraySize(taints), ==, 2);
	const cJSON *t0 = cJSON_GetArrayItem(taints, 0), *t1 = cJSON_GetArrayItem(taints, 1);
	CHECK_STR(cJSON_GetObjectItemCaseSensitive(t0, "key")->valuestring, "bramble.io/edge");
	CHECK_STR(cJSON_GetObjectItemCaseSensitive(t0, "value")->valuestring, "true");
	CHECK_STR(cJSON_GetObjectItemCaseSensitive(t0, "effect")->valuestring, "NoSchedule");
	CHECK_STR(cJSON_GetObjectItemCaseSensitive(t1, "key")->valuestring, "dedicated");
	CHECK(cJSON_GetObjectItemCaseSensitive(t1, "value") == NULL);
	CHECK_STR(cJSON_GetObjectItemCaseSensitive(t1, "effect")->valuestring, "PreferNoSchedule");
	cJSON_Delete(node);

	static const struct {
		const char *taints, *message;
	} bad[] = {
		{ "novalue", "key=value:Effect" },
		{ "a=b:Sometimes", "Unsupported value: \"Sometimes\"" },
		{ "a=b:", "Unsupported value" },
		{ "=b:NoSchedule", "name part must be non-empty" },
		{ "bad key=b:NoSchedule", "bad key" },
		{ "a=bad value:NoExecute", "bad value" },
		{ "a:NoSchedule,a=x:NoSchedule", "Duplicate value" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		options.taints = bad[i].taints;
		node = NULL;
		CHECK_INT(node_build(&facts, &options, &node, &err), ==, -EINVAL);
		CHECK(node == NULL);
		CHECK_STR(err.field, "taints");
		CHECK_CONTAINS(err.message, bad[i].message);
	}
	/* Same key, other effect: allowed, as in Kubernetes. */
	options.taints = "a:NoSchedule,a:NoExecute";
	CHECK_OK(node_build(&facts, &options, &node, &err));
	check_valid(node);
	cJSON_Delete(node);
}

TEST(label_errors)
{
	struct board_facts facts;
	pi4(&facts);
	struct node_options options = { .name = "pi-1" };
	static const struct {
		const char *labels, *message;
	} bad[] = {
		{ "zone", "not key=value" },
		{ "zone=a b", "a valid label" },
		{ "kubernetes.io/arch=amd64", "set by the agent" },
		{ "node.bramble.io/model=fake", "set by the agent" },
		{ "a=1,a=2", "Duplicate value" },
		{ "/x=1", "prefix part must be non-empty" },
	};
	cJSON *node = NULL;
	struct error err;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		options.labels = bad[i].labels;
		CHECK_INT(node_build(&facts, &options, &node, &err), ==, -EINVAL);
		CHECK_STR(err.field, "labels");
		CHECK_CONTAINS(err.message, bad[i].message);
	}
	options.labels = " , empty= ,";
	CHECK_OK(node_build(&facts, &options, &node, &err));
	CHECK_STR(label(node, "empty"), "");
	check_valid(node);
	cJSON_Delete(node);
}

TEST(pressure_conditions)
{
	struct board_facts facts;
	pi4(&facts);
	struct node_options options = { .name = "pi-1" };
	facts.memory_available = 99 * MiB;
	facts.storage_capacity = 100 * GiB;
	facts.storage_available = 5 * GiB; /* 5% */
	facts.pids_in_use = 32000;         /* > 90% of 32768 */
	cJSON *status = node_update_status(NULL, &facts, &options, T0);
	CHECK_STR(condition_field(status, "MemoryPressure", "status"), "True");
	CHECK_STR(condition_field(status, "MemoryPressure", "reason"), "KubeletHasInsufficientMemory");
	CHECK_STR(condition_field(status, "MemoryPressure", "message"), "kubelet has insufficient memory available");
	CHECK_STR(condition_field(status, "DiskPressure", "status"), "True");
	CHECK_STR(condition_field(status, "DiskPressure", "reason"), "KubeletHasDiskPressure");
	CHECK_STR(condition_field(status, "PIDPressure", "status"), "True");
	CHECK_STR(condition_field(status, "PIDPressure", "reason"), "KubeletHasInsufficientPID");
	CHECK_STR(condition_field(status, "Ready", "status"), "True"); /* pressure is not NotReady */
	cJSON_Delete(status);

	/* Thresholds are options. */
	options.memory_pressure_bytes = 64 * MiB;
	options.disk_pressure_percent = 5;
	options.pid_pressure_percent = 99;
	status = node_update_status(NULL, &facts, &options, T0);
	CHECK_STR(condition_field(status, "MemoryPressure", "status"), "False");
	CHECK_STR(condition_field(status, "DiskPressure", "status"), "False"); /* exactly 5% is not below */
	CHECK_STR(condition_field(status, "PIDPressure", "status"), "False");
	cJSON_Delete(status);

	/* Unknown inputs are no pressure. */
	facts.storage_known = false;
	facts.pid_max = 0;
	options = (struct node_options){ .name = "pi-1", .not_ready_message = "container runtime is down" };
	status = node_update_status(NULL, &facts, &options, T0);
	CHECK_STR(condition_field(status, "DiskPressure", "status"), "False");
	CHECK_STR(condition_field(status, "PIDPressure", "status"), "False");
	CHECK_STR(condition_field(status, "Ready", "status"), "False");
	CHECK_STR(condition_field(status, "Ready", "reason"), "KubeletNotReady");
	CHECK_STR(condition_field(status, "Ready", "message"), "container runtime is down");
	cJSON_Delete(status);
}

TEST(transition_times_are_kept)
{
	struct board_facts facts;
	pi4(&facts);
	struct node_options options = { .name = "pi-1" };
	cJSON *first = node_update_status(NULL, &facts, &options, T0);
	CHECK_STR(condition_field(first, "Ready", "lastTransitionTime"), "2024-05-01T10:00:00Z");
	CHECK_STR(condition_field(first, "Ready", "lastHeartbeatTime"), "2024-05-01T10:00:00Z");

	/* Nothing changed: transitions stay, heartbeats move, and that is all. */
	facts.memory_available -= 10 * MiB;
	cJSON *second = node_update_status(first, &facts, &options, T0 + 60);
	CHECK_STR(condition_field(second, "Ready", "lastTransitionTime"), "2024-05-01T10:00:00Z");
	CHECK_STR(condition_field(second, "Ready", "lastHeartbeatTime"), "2024-05-01T10:01:00Z");
	CHECK_STR(condition_field(second, "MemoryPressure", "lastTransitionTime"), "2024-05-01T10:00:00Z");
	CHECK(node_status_equal(first, second));

	/* Memory runs low: that condition alone transitions. */
	facts.memory_available = 50 * MiB;
	cJSON *third = node_update_status(second, &facts, &options, T0 + 120);
	CHECK_STR(condition_field(third, "MemoryPressure", "status"), "True");
	CHECK_STR(condition_field(third, "MemoryPressure", "lastTransitionTime"), "2024-05-01T10:02:00Z");
	CHECK_STR(condition_field(third, "DiskPressure", "lastTransitionTime"), "2024-05-01T10:00:00Z");
	CHECK_STR(condition_field(third, "Ready", "lastTransitionTime"), "2024-05-01T10:00:00Z");
	CHECK(!node_status_equal(second, third));

	/* A previous status with a junk time is not trusted. */
	cJSON *c = (cJSON *)condition(third, "Ready");
	cJSON_ReplaceItemInObjectCaseSensitive(c, "lastTransitionTime", cJSON_CreateString("yesterday"));
	cJSON *fourth = node_update_status(third, &facts, &options, T0 + 180);
	CHECK_STR(condition_field(fourth, "Ready", "lastTransitionTime"), "2024-05-01T10:03:00Z");
	CHECK_STR(condition_field(fourth, "MemoryPressure", "lastTransitionTime"), "2024-05-01T10:02:00Z");

	cJSON_Delete(first);
	cJSON_Delete(second);
	cJSON_Delete(third);
	cJSON_Delete(fourth);
}

TEST(heartbeat_changes_only_heartbeat_times)
{
	struct board_facts facts;
	pi4(&facts);
	struct node_options options = { .name = "pi-1" };
	cJSON *status = node_update_status(NULL, &facts, &options, T0);
	cJSON *before = cJSON_Duplicate(status, true);
	CHECK_OK(node_heartbeat(status, T0 + 40));
	const cJSON *c;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(status, "conditions"))
	{
		CHECK_STR(cJSON_GetObjectItemCaseSensitive(c, "lastHeartbeatTime")->valuestring,
		          "2024-05-01T10:00:40Z");
		CHECK_STR(cJSON_GetObjectItemCaseSensitive(c, "lastTransitionTime")->valuestring,
		          "2024-05-01T10:00:00Z");
	}
	CHECK(!cJSON_Compare(before, status, true));
	CHECK(node_status_equal(before, status));

	/* The updated status is still a valid Node status. */
	cJSON *node = NULL;
	CHECK_OK(node_build(&facts, &options, &node, NULL));
	cJSON_ReplaceItemInObjectCaseSensitive(node, "status", cJSON_Duplicate(status, true));
	check_valid(node);

	cJSON *empty = cJSON_CreateObject();
	CHECK_INT(node_heartbeat(empty, T0), ==, -EINVAL);
	cJSON_Delete(empty);
	cJSON_Delete(node);
	cJSON_Delete(before);
	cJSON_Delete(status);
}

TEST(node_from_this_machine_validates)
{
	struct board_facts facts;
	struct error err;
	CHECK_OK(board_read(&facts, "/", "/", &err));
	struct node_options options = { .name = "this-board" };
	cJSON *node = NULL;
	CHECK_OK(node_build(&facts, &options, &node, &err));
	check_valid(node);
	cJSON_Delete(node);
}
