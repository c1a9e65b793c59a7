/* Board facts: what the kernel and the board say about this machine.
 *
 * The agent describes its board to the control plane as a Node (agent/node.c) from these
 * facts. Every reader takes a root prefix ("/" or NULL for the real machine) under which
 * /proc, /sys and /etc are looked up, so tests can point it at a fake tree. Files are read
 * bounded (BOARD_FILE_MAX); optional files that are missing (device-tree model, thermal
 * zone, DMI uuid, os-release on a minimal image) leave their fact empty or unknown and are
 * not errors. Facts that come from system calls (uname, getifaddrs, sysconf) are read from
 * the running kernel whatever the root.
 */
#ifndef BRAMBLE_PLATFORM_BOARD_H
#define BRAMBLE_PLATFORM_BOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct error;

#define BOARD_FILE_MAX (256 * 1024) /* /proc/cpuinfo of a 64-core machine is ~60 KB */
#define BOARD_TEXT_MAX 128
#define BOARD_ID_MAX 64
#define BOARD_ADDRESS_TEXT_MAX 46 /* INET6_ADDRSTRLEN */
#define BOARD_ADDRESSES_MAX 16

struct board_address {
	int family; /* AF_INET or AF_INET6 */
	char text[BOARD_ADDRESS_TEXT_MAX];
};

struct board_facts {
	/* static: read once at start-up */
	unsigned cpus;         /* online CPUs */
	uint64_t memory_total; /* bytes (MemTotal) */
	uint64_t pid_max;
	char architecture[16];               /* as Kubernetes names it: amd64, arm64, arm, or the machine name */
	char arm_variant[8];                 /* "v6", "v7" for 32-bit ARM; "" otherwise */
	char machine[BOARD_TEXT_MAX];        /* uname machine: aarch64, armv7l, x86_64 */
	char kernel_version[BOARD_TEXT_MAX]; /* uname release */
	char os_image[BOARD_TEXT_MAX];       /* PRETTY_NAME of /etc/os-release; "Linux" without one */
	char machine_id[BOARD_ID_MAX];       /* /etc/machine-id; "" when absent */
	char system_uuid[BOARD_ID_MAX];      /* DMI product uuid (lowercase), else the machine id */
	char boot_id[BOARD_ID_MAX];
	char model[BOARD_TEXT_MAX]; /* /proc/device-tree/model: "Raspberry Pi 4 Model B Rev 1.4"; "" */
	char hostname[BOARD_TEXT_MAX];

	/* usage: read again for every status update (board_read_usage) */
	uint64_t memory_available;  /* bytes (MemAvailable) */
	bool storage_known;         /* false when no data directory was given or statvfs failed */
	uint64_t storage_capacity;  /* bytes of the data directory's filesystem */
	uint64_t storage_available; /* bytes available to unprivileged users */
	uint64_t pids_in_use;       /* threads, as /proc/loadavg counts them; 0 when unknown */
	bool temperature_known;
	int temperature_millicelsius;                        /* thermal_zone0 */
	struct board_address addresses[BOARD_ADDRESSES_MAX]; /* up, non-loopback, not link-local */
	size_t address_count;
};

/* All facts. root: "/" or NULL for this machine; data_dir: the directory whose filesystem
 * holds pods' ephemeral storage (looked up under root), NULL to leave storage unknown.
 * Fails only when a mandatory fact is unreadable or unparsable (/proc/meminfo, uname). */
int board_read(struct board_facts *facts, const char *root, const char *data_dir, struct error *err);

/* Only the facts that change while the board runs (the "usage" part above). */
int board_read_usage(struct board_facts *facts, const char *root, const char *data_dir, struct error *err);

/* The Kubernetes architecture for a uname machine name, with the ARM variant read from
 * root's /proc/cpuinfo ("CPU architecture: 7" -> "v7"; else from the machine name,
 * "armv6l" -> "v6"). A 32-bit ARM binary on a 64-bit kernel (Raspberry Pi OS 32-bit) is
 * "arm": pods run with this userland, as the kubelet reports its own GOARCH. */
void board_read_architecture(const char *root, const char *machine, char architecture[16], char arm_variant[8]);

#endif
