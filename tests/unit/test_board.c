#include "platform/board.h"

#include <errno.h>
#include <libgen.h>
#include <string.h>
#include <sys/stat.h>

#include "platform/error.h"
#include "platform/file.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

/* Writes root/path (size bytes of data, which may hold NULs), making its directories. */
static void fake_file(const char *root, const char *path, const char *data, size_t size)
{
	cleanup_free char *full = xasprintf("%s/%s", root, path);
	cleanup_free char *dir = xstrdup(full);
	CHECK_OK(file_mkdir_p(dirname(dir), 0755, NULL));
	CHECK_OK(file_write_atomic(full, data, size, 0644, NULL));
}

#define FAKE(root, path, text) fake_file(root, path, text, strlen(text))

static const char MEMINFO[] = "MemTotal:        3982284 kB\n"
                              "MemFree:          123456 kB\n"
                              "MemAvailable:    3000000 kB\n"
                              "Buffers:           10000 kB\n"
                              "HugePages_Total:       0\n";

static const char PI4_MODEL[] = "Raspberry Pi 4 Model B Rev 1.4"; /* sizeof includes the NUL */

static const char *fake_pi(void)
{
	const char *root = unit_temp_dir();
	FAKE(root, "proc/meminfo", MEMINFO);
	FAKE(root, "sys/devices/system/cpu/online", "0-3\n");
	fake_file(root, "proc/device-tree/model", PI4_MODEL, sizeof(PI4_MODEL));
	FAKE(root, "etc/os-release",
	     "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n");
	FAKE(root, "etc/machine-id", "0123456789abcdef0123456789abcdef\n");
	FAKE(root, "proc/sys/kernel/random/boot_id", "6f1e2d3c-aaaa-bbbb-cccc-000000000001\n");
	FAKE(root, "proc/sys/kernel/pid_max", "4194304\n");
	FAKE(root, "proc/loadavg", "0.20 0.18 0.12 1/180 11206\n");
	FAKE(root, "sys/class/thermal/thermal_zone0/temp", "48312\n");
	cleanup_free char *data_dir = xasprintf("%s/var/lib/bramble", root);
	CHECK_OK(file_mkdir_p(data_dir, 0755, NULL));
	return root;
}

TEST(fake_raspberry_pi_tree)
{
	const char *root = fake_pi();
	struct board_facts facts;
	struct error err;
	CHECK_OK(board_read(&facts, root, "/var/lib/bramble", &err));
	CHECK_INT(facts.cpus, ==, 4);
	CHECK_INT(facts.memory_total, ==, 3982284ULL * 1024);
	CHECK_INT(facts.memory_available, ==, 3000000ULL * 1024);
	CHECK_STR(facts.model, "Raspberry Pi 4 Model B Rev 1.4");
	CHECK_STR(facts.os_image, "Debian GNU/Linux 12 (bookworm)");
	CHECK_STR(facts.machine_id, "0123456789abcdef0123456789abcdef");
	CHECK_STR(facts.system_uuid, "0123456789abcdef0123456789abcdef"); /* no DMI on a Pi */
	CHECK_STR(facts.boot_id, "6f1e2d3c-aaaa-bbbb-cccc-000000000001");
	CHECK_INT(facts.pid_max, ==, 4194304);
	CHECK_INT(facts.pids_in_use, ==, 180);
	CHECK(facts.temperature_known);
	CHECK_INT(facts.temperature_millicelsius, ==, 48312);
	CHECK(facts.storage_known);
	CHECK_INT(facts.storage_capacity, >, 0);
	CHECK_INT(facts.storage_available, <=, facts.storage_capacity);
	CHECK(facts.kernel_version[0]); /* from uname, whatever the root */
}

TEST(optional_files_may_be_missing)
{
	const char *root = unit_temp_dir();
	FAKE(root, "proc/meminfo", "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 10 kB\nCached: 20 kB\n");
	struct board_facts facts;
	struct error err;
	CHECK_OK(board_read(&facts, root, NULL, &err));
	CHECK_INT(facts.cpus, >=, 1);                      /* sysconf */
	CHECK_INT(facts.memory_available, ==, 130 * 1024); /* no MemAvailable: free + buffers + cached */
	CHECK_STR(facts.model, "");
	CHECK_STR(facts.os_image, "Linux");
	CHECK_STR(facts.machine_id, "");
	CHECK_INT(facts.pid_max, ==, 0);
	CHECK(!facts.temperature_known);
	CHECK(!facts.storage_known);
}

TEST(bad_files_are_errors)
{
	const char *root = unit_temp_dir();
	struct board_facts facts;
	struct error err;
	CHECK_INT(board_read(&facts, root, NULL, &err), ==, -ENOENT); /* meminfo is not optional */
	CHECK_CONTAINS(err.message, "meminfo");

	FAKE(root, "proc/meminfo", "MemFree: 100 kB\n");
	CHECK_INT(board_read(&facts, root, NULL, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "MemTotal");

	FAKE(root, "proc/meminfo", "MemTotal: lots kB\n");
	CHECK_INT(board_read(&facts, root, NULL, &err), ==, -EINVAL);

	FAKE(root, "proc/meminfo", MEMINFO);
	FAKE(root, "proc/sys/kernel/pid_max", "many\n");
	CHECK_INT(board_read(&facts, root, NULL, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "pid_max: not a number");

	FAKE(root, "proc/sys/kernel/pid_max", "32768\n");
	CHECK_INT(board_read(&facts, root, "/no/such/dir", &err), ==, -ENOENT);
	CHECK_CONTAINS(err.message, "data directory");

	/* A file past the bound is refused, not read whole. */
	char *big = xmalloc(BOARD_FILE_MAX + 10);
	memset(big, 'x', BOARD_FILE_MAX + 10);
	fake_file(root, "etc/os-release", big, BOARD_FILE_MAX + 10);
	free(big);
	CHECK_INT(board_read(&facts, root, NULL, &err), ==, -EFBIG);
}

TEST(cpu_list_forms)
{
	const char *root = unit_temp_dir();
	FAKE(root, "proc/meminfo", MEMINFO);
	struct board_facts facts;
	FAKE(root, "sys/devices/system/cpu/online", "0\n");
	CHECK_OK(board_read(&facts, root, NULL, NULL));
	CHECK_INT(facts.cpus, ==, 1);
	FAKE(root, "sys/devices/system/cpu/online", "0-3,5,7-8\n");
	CHECK_OK(board_read(&facts, root, NULL, NULL));
	CHECK_INT(facts.cpus, ==, 7);
	FAKE(root, "sys/devices/system/cpu/online", "garbage\n"); /* falls back to sysconf */
	CHECK_OK(board_read(&facts, root, NULL, NULL));
	CHECK_INT(facts.cpus, >=, 1);
}

TEST(os_release_quoting)
{
	const char *root = unit_temp_dir();
	FAKE(root, "proc/meminfo", MEMINFO);
	struct board_facts facts;
	FAKE(root, "etc/os-release", "ID=alpine\nPRETTY_NAME='Alpine Linux v3.20'\n");
	CHECK_OK(board_read(&facts, root, NULL, NULL));
	CHECK_STR(facts.os_image, "Alpine Linux v3.20");
	FAKE(root, "etc/os-release", "PRETTY_NAME=Plain\n");
	CHECK_OK(board_read(&facts, root, NULL, NULL));
	CHECK_STR(facts.os_image, "Plain");
	FAKE(root, "etc/os-release", "PRETTY_NAME=\"Say \\\"hi\\\"\"\n");
	CHECK_OK(board_read(&facts, root, NULL, NULL));
	CHECK_STR(facts.os_image, "Say \"hi\"");
}

TEST(architecture_names)
{
	const char *root = unit_temp_dir(); /* no cpuinfo */
	char arch[16], variant[8];
	board_read_architecture(root, "x86_64", arch, variant);
	CHECK_STR(arch, "amd64");
	CHECK_STR(variant, "");
	board_read_architecture(root, "armv7l", arch, variant);
	CHECK_STR(arch, "arm");
	CHECK_STR(variant, "v7");
	board_read_architecture(root, "armv6l", arch, variant);
	CHECK_STR(arch, "arm");
	CHECK_STR(variant, "v6");
	board_read_architecture(root, "aarch64", arch, variant);
#if defined(__arm__)
	CHECK_STR(arch, "arm"); /* a 32-bit userland on a 64-bit kernel */
#else
	CHECK_STR(arch, "arm64");
	CHECK_STR(variant, "");
#endif
}

TEST(arm_variant_from_cpuinfo)
{
	const char *root = unit_temp_dir();
	char arch[16], variant[8];
	/* Raspberry Pi 2 / 3 with a 32-bit kernel */
	FAKE(root, "proc/cpuinfo",
	     "processor\t: 0\nmodel name\t: ARMv7 Processor rev 4 (v7l)\n"
	     "BogoMIPS\t: 38.40\nCPU implementer\t: 0x41\nCPU architecture: 7\n"
	     "CPU variant\t: 0x0\nCPU part\t: 0xd03\n");
	board_read_architecture(root, "armv7l", arch, variant);
	CHECK_STR(arch, "arm");
	CHECK_STR(variant, "v7");
	/* Raspberry Pi 1 / Zero: an ARM1176 that says "CPU architecture: 7" */
	FAKE(root, "proc/cpuinfo",
	     "processor\t: 0\nmodel name\t: ARMv6-compatible processor rev 7 (v6l)\n"
	     "BogoMIPS\t: 697.95\nCPU implementer\t: 0x41\nCPU architecture: 7\n"
	     "CPU part\t: 0xb76\n");
	board_read_architecture(root, "armv6l", arch, variant);
	CHECK_STR(variant, "v6");
	board_read_architecture(root, "armv7l", arch, variant); /* the model name alone tells */
	CHECK_STR(variant, "v6");
	/* 32-bit Raspberry Pi OS on a Pi 4's 64-bit kernel: armv8l, CPU architecture 8 */
	FAKE(root, "proc/cpuinfo", "processor\t: 0\nBogoMIPS\t: 108.00\nCPU architecture: 8\n");
	board_read_architecture(root, "armv8l", arch, variant);
	CHECK_STR(arch, "arm");
	CHECK_STR(variant, "v8");
	/* A cpuinfo without the line (the host's under qemu-user): the machine name decides. */
	FAKE(root, "proc/cpuinfo", "processor\t: 0\nvendor_id\t: GenuineIntel\n");
	board_read_architecture(root, "armv6l", arch, variant);
	CHECK_STR(variant, "v6");
	/* Not ARM: the cpuinfo does not matter. */
	board_read_architecture(root, "x86_64", arch, variant);
	CHECK_STR(variant, "");
}

TEST(this_machine)
{
	struct board_facts facts;
	struct error err;
	CHECK_OK(board_read(&facts, "/", "/", &err));
	CHECK_INT(facts.cpus, >=, 1);
	CHECK_INT(facts.memory_total, >, 0);
	CHECK_INT(facts.memory_available, <=, facts.memory_total);
	CHECK(strcmp(facts.architecture, "amd64") == 0 || strcmp(facts.architecture, "arm64") == 0 ||
	      strcmp(facts.architecture, "arm") == 0);
#if defined(__x86_64__)
	CHECK_STR(facts.architecture, "amd64");
#elif defined(__aarch64__)
	CHECK_STR(facts.architecture, "arm64");
#elif defined(__arm__)
	CHECK_STR(facts.architecture, "arm");
	CHECK(strcmp(facts.arm_variant, "v6") == 0 || strcmp(facts.arm_variant, "v7") == 0 ||
	      strcmp(facts.arm_variant, "v8") == 0);
#endif
	CHECK(facts.kernel_version[0]);
	CHECK(facts.hostname[0]);
	CHECK(facts.os_image[0]);
	CHECK(facts.storage_known);
	CHECK_INT(facts.storage_capacity, >, 0);
	CHECK(facts.address_count <= BOARD_ADDRESSES_MAX);
	for (size_t i = 0; i < facts.address_count; i++)
		CHECK(strcmp(facts.addresses[i].text, "127.0.0.1") != 0 && strcmp(facts.addresses[i].text, "::1") != 0);
	/* Usage reads again without touching the static facts. */
	unsigned cpus = facts.cpus;
	CHECK_OK(board_read_usage(&facts, NULL, "/", &err));
	CHECK_INT(facts.cpus, ==, cpus);
}
