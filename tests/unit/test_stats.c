/* agent/stats: rates from cpu time, and the report of a real pod cgroup. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/stats.h"
#include "platform/cgroups.h"
#include "platform/clock.h"
#include "platform/error.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

TEST(millicores_are_cpu_time_over_elapsed_time)
{
	CHECK_INT(stats_millicores(1000000000ull, 1000), ==, 1000); /* 1 s of cpu in 1 s */
	CHECK_INT(stats_millicores(250000000ull, 1000), ==, 250);
	CHECK_INT(stats_millicores(3000000000ull, 1500), ==, 2000); /* two cores busy */
	CHECK_INT(stats_millicores(400000ull, 1000), ==, 0);        /* 0.4m rounds to 0 */
	CHECK_INT(stats_millicores(600000ull, 1000), ==, 1);
	CHECK_INT(stats_millicores(5, 0), ==, 0);
}

TEST(a_busy_container_is_reported_from_its_second_sample)
{
	if (geteuid() != 0)
		return; /* cgroups need root; CI runs as root */
	char parent[64];
	snprintf(parent, sizeof(parent), "bramble-stats-test-%d", (int)getpid());
	struct cgroups *cg = NULL;
	struct error err = { 0 };
	if (cgroups_open(parent, &cg, &err) < 0)
		unit_fail(__FILE__, __LINE__, "cgroups_open: %s", err.message);
	/* Nothing may fail before the cleanup below: the checks come after it. */
	struct cgroups_limits none = { 0 };
	struct cgroups_group *pod = NULL, *ctr = NULL;
	int created = cgroups_pod_create(cg, "uid-1", &none, &pod, &err);
	if (created == 0)
		created = cgroups_container_create(pod, "burn", &none, &ctr, &err);
	pid_t child = created == 0 ? fork() : -1;
	if (child == 0) {
		alarm(5); /* never outlives the test */
		for (;;)
			;
	}
	int attached = child > 0 ? cgroups_attach(ctr, child, NULL) : -1;
	cJSON *object = cJSON_Parse("{\"metadata\":{\"name\":\"busy\",\"namespace\":\"default\",\"uid\":\"uid-1\"},"
	                            "\"spec\":{\"containers\":[{\"name\":\"burn\"},{\"name\":\"absent\"}]}}");
	const cJSON *pods[] = { object };
	struct stats *stats = stats_new(cg, "pi-1");
	char *first = stats_sample(stats, pods, 1, clock_monotonic_ms(), time(NULL));
	usleep(500000);
	char *second = stats_sample(stats, pods, 1, clock_monotonic_ms(), time(NULL));
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	stats_free(stats);
	cJSON_Delete(object);
	cgroups_group_free(ctr);
	if (pod)
		cgroups_remove(pod, CGROUPS_REMOVE_KILL, NULL);
	cgroups_group_free(pod);
	cgroups_remove_parent(cg, CGROUPS_REMOVE_KILL, NULL);
	cgroups_close(cg);

	if (created < 0)
		unit_fail(__FILE__, __LINE__, "cgroups: %s", err.message);
	CHECK_OK(attached);
	CHECK(first == NULL); /* no previous sample of the node: no rate yet */
	CHECK(second != NULL);
	CHECK_CONTAINS(second, "\"usage\":{\"cpu\":");
	CHECK_CONTAINS(second, "\"pods\":[{\"namespace\":\"default\",\"name\":\"busy\",\"uid\":\"uid-1\","
	                       "\"containers\":[{\"name\":\"burn\",\"cpu\":");
	cJSON *report = cJSON_Parse(second);
	const cJSON *containers =
	        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(report, "pods"), 0), "containers");
	double cpu = cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(containers, 0), "cpu"));
	CHECK(cpu >= 20); /* a spinning process: most of a core, less on a loaded machine */
	CHECK_INT(cJSON_GetArraySize(containers), ==, 1); /* "absent" has no cgroup */
	cJSON_Delete(report);
	free(second);
}
