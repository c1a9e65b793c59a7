#include "drivers/runtime.h"

#include <errno.h>
#include <linux/capability.h>
#include <sys/wait.h>

#include "platform/cgroups.h"
#include "platform/error.h"

#include "tests/unit/unit.h"

TEST(default_capabilities_are_podmans)
{
	uint64_t expected = (1ull << CAP_CHOWN) | (1ull << CAP_DAC_OVERRIDE) | (1ull << CAP_FOWNER) |
	                    (1ull << CAP_FSETID) | (1ull << CAP_KILL) | (1ull << CAP_NET_BIND_SERVICE) |
	                    (1ull << CAP_SETFCAP) | (1ull << CAP_SETGID) | (1ull << CAP_SETPCAP) |
	                    (1ull << CAP_SETUID) | (1ull << CAP_SYS_CHROOT);
	CHECK_INT(runtime_default_capabilities(), ==, expected);
	CHECK_INT(runtime_default_capabilities(), ==, 0x800405fbull);
}

TEST(capability_names_as_kubernetes_writes_them)
{
	CHECK_INT(runtime_capability_from_name("NET_ADMIN"), ==, CAP_NET_ADMIN);
	CHECK_INT(runtime_capability_from_name("CAP_SYS_ADMIN"), ==, CAP_SYS_ADMIN);
	CHECK_INT(runtime_capability_from_name("net_raw"), ==, CAP_NET_RAW);
	CHECK_INT(runtime_capability_from_name("BPF"), ==, CAP_BPF);
	CHECK_INT(runtime_capability_from_name("FLY"), ==, -EINVAL);
}

TEST(drivers_are_found_by_name)
{
	CHECK(runtime_by_name("native") == &runtime_native);
	CHECK(runtime_by_name("docker") == NULL);
}

TEST(the_process_driver_runs_waits_and_reports_no_stats_without_a_cgroup)
{
	const struct runtime_ops *driver = runtime_by_name("process");
	struct runtime_sandbox *sandbox;
	struct runtime_container *container;
	struct error err;
	CHECK_OK(driver->sandbox_create(&(struct sandbox_spec){ "unit", true, NULL }, &sandbox, &err));
	static const char *const argv[] = { "/bin/sh", "-c", "exit 3", NULL };
	static const char *const env[] = { "PATH=/bin:/usr/bin", NULL };
	struct container_spec spec = { .name = "unit", .argv = argv, .env = env, .stdout_fd = -1, .stderr_fd = -1 };
	CHECK_OK(driver->create(sandbox, &spec, &container, &err));
	CHECK_OK(driver->start(container, &err));
	int status = 0;
	CHECK_OK(driver->wait(container, &status));
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3);
	struct cgroups_usage usage;
	CHECK_INT(driver->stats(container, &usage, &err), ==, -ENODATA);
	driver->remove(container);
	driver->sandbox_destroy(sandbox);
}
