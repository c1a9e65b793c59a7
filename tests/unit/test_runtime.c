#include "drivers/runtime.h"

#include <errno.h>
#include <linux/capability.h>

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
