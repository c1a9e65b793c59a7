/* See board.h. Each fact has one small reader; board_read runs them all. */
#include "platform/board.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "platform/error.h"
#include "platform/file.h"
#include "platform/memory.h"

static char *board_path(const char *root, const char *path)
{
	if (!root || !*root)
		root = "/";
	while (*path == '/')
		path++;
	size_t length = strlen(root);
	return xasprintf("%s%s%s", root, length > 0 && root[length - 1] == '/' ? "" : "/", path);
}

/* Reads root/path. Returns 1 with *ret_data set, 0 when the file is absent (or not ours to
 * read, as DMI ids are for non-root users), or a negative code with err set. */
static int read_optional(const char *root, const char *path, char **ret_data, size_t *ret_size, struct error *err)
{
	cleanup_free char *full = board_path(root, path);
	struct error local;
	int r = file_read(full, BOARD_FILE_MAX, ret_data, ret_size, &local);
	if (r == -ENOENT || r == -ENOTDIR || r == -EACCES || r == -EPERM || r == -ENXIO || r == -ENODEV)
		return 0;
	if (r < 0) {
		if (err)
			*err = local;
		return r;
	}
	return 1;
}

/* Copies s without surrounding white space into buf, cut to fit. */
static void copy_trimmed(char *buf, size_t size, const char *s, size_t length)
{
	while (length > 0 && isspace((unsigned char)*s)) {
		s++;
		length--;
	}
	while (length > 0 && (isspace((unsigned char)s[length - 1]) || s[length - 1] == '\0'))
		length--;
	if (length >= size)
		length = size - 1;
	memmove(buf, s, length);
	buf[length] = '\0';
}

static int parse_u64(const char *s, uint64_t *ret)
{
	while (*s == ' ' || *s == '\t')
		s++;
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	while (*end == ' ' || *end == '\t' || *end == '\n')
		end++;
	if (*end != '\0')
		return -EINVAL;
	*ret = v;
	return 0;
}

/* "0-3,5,7-8" -> 7; 0 for text that is not such a list. */
static unsigned count_cpu_list(const char *s)
{
	unsigned count = 0;
	while (*s && *s != '\n') {
		if (!isdigit((unsigned char)*s))
			return 0;
		char *end;
		unsigned long first = strtoul(s, &end, 10), last = first;
		s = end;
		if (*s == '-') {
			s++;
			if (!isdigit((unsigned char)*s))
				return 0;
			last = strtoul(s, &end, 10);
			s = end;
		}
		if (last < first || last - first >= 65536)
			return 0;
		count += (unsigned)(last - first + 1);
		if (*s == ',')
			s++;
		else if (*s && *s != '\n')
			return 0;
	}
	return count;
}

static int read_cpus(struct board_facts *facts, const char *root, struct error *err)
{
	cleanup_free char *data = NULL;
	int r = read_optional(root, "/sys/devices/system/cpu/online", &data, NULL, err);
	if (r < 0)
		return r;
	facts->cpus = r > 0 ? count_cpu_list(data) : 0;
	if (facts->cpus == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		facts->cpus = n > 0 ? (unsigned)n : 1;
	}
	return 0;
}

/* The value in bytes of one "Key:   1234 kB" line of /proc/meminfo; -ENOENT when absent. */
static int meminfo_value(const char *data, const char *key, uint64_t *ret)
{
	size_t key_length = strlen(key);
	for (const char *line = data; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		if (strncmp(line, key, key_length) != 0 || line[key_length] != ':')
			continue;
		const char *p = line + key_length + 1;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		errno = 0;
		char *end;
		unsigned long long v = strtoull(p, &end, 10);
		if (errno == ERANGE)
			return -ERANGE;
		uint64_t multiplier = 1;
		if (strncmp(end, " kB", 3) == 0)
			multiplier = 1024;
		else if (*end != '\n' && *end != '\0')
			return -EINVAL;
		if (v > UINT64_MAX / multiplier)
			return -ERANGE;
		*ret = v * multiplier;
		return 0;
	}
	return -ENOENT;
}

static int read_memory(struct board_facts *facts, const char *root, bool total, struct error *err)
{
	cleanup_free char *path = board_path(root, "/proc/meminfo");
	cleanup_free char *data = NULL;
	int r = file_read(path, BOARD_FILE_MAX, &data, NULL, err);
	if (r < 0)
		return r;
	if (total) {
		r = meminfo_value(data, "MemTotal", &facts->memory_total);
		if (r < 0 || facts->memory_total == 0)
			return error_set(err, EINVAL, "%s: no valid MemTotal line", path);
	}
	r = meminfo_value(data, "MemAvailable", &facts->memory_available);
	if (r == -ENOENT) {
		/* Kernels before 3.14: the estimate the kernel itself later adopted, roughly. */
		uint64_t free_ = 0, buffers = 0, cached = 0;
		if (meminfo_value(data, "MemFree", &free_) < 0)
			return error_set(err, EINVAL, "%s: neither MemAvailable nor MemFree", path);
		(void)meminfo_value(data, "Buffers", &buffers);
		(void)meminfo_value(data, "Cached", &cached);
		facts->memory_available = free_ + buffers + cached;
		r = 0;
	}
	if (r < 0)
		return error_set(err, EINVAL, "%s: MemAvailable is not a number of kB", path);
	if (facts->memory_total && facts->memory_available > facts->memory_total)
		facts->memory_available = facts->memory_total;
	return 0;
}

static int read_number(const char *root, const char *path, uint64_t *ret, struct error *err)
{
	cleanup_free char *data = NULL;
	int r = read_optional(root, path, &data, NULL, err);
	if (r <= 0)
		return r;
	if (parse_u64(data, ret) < 0) {
		cleanup_free char *full = board_path(root, path);
		return error_set(err, EINVAL, "%s: not a number: \"%.32s\"", full, data);
	}
	return 1;
}

static int read_text(const char *root, const char *path, char *buf, size_t size, struct error *err)
{
	cleanup_free char *data = NULL;
	size_t length = 0;
	buf[0] = '\0';
	int r = read_optional(root, path, &data, &length, err);
	if (r <= 0)
		return r;
	copy_trimmed(buf, size, data, strnlen(data, length)); /* device-tree strings end in NUL */
	return 1;
}

/* PRETTY_NAME="Debian GNU/Linux 12 (bookworm)" -> Debian GNU/Linux 12 (bookworm) */
static void os_release_pretty_name(const char *data, char *buf, size_t size)
{
	for (const char *line = data; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		if (strncmp(line, "PRETTY_NAME=", 12) != 0)
			continue;
		const char *p = line + 12;
		char quote = (*p == '"' || *p == '\'') ? *p++ : 0;
		size_t n = 0;
		for (; *p && *p != '\n' && *p != quote && n + 1 < size; p++) {
			if (*p == '\\' && quote == '"' && p[1] && p[1] != '\n')
				p++;
			buf[n++] = *p;
		}
		buf[n] = '\0';
		copy_trimmed(buf, size, buf, n);
		return;
	}
}

static int read_os_image(struct board_facts *facts, const char *root, struct error *err)
{
	cleanup_free char *data = NULL;
	int r = read_optional(root, "/etc/os-release", &data, NULL, err);
	if (r == 0)
		r = read_optional(root, "/usr/lib/os-release", &data, NULL, err);
	if (r < 0)
		return r;
	facts->os_image[0] = '\0';
	if (r > 0)
		os_release_pretty_name(data, facts->os_image, sizeof(facts->os_image));
	if (!facts->os_image[0])
		snprintf(facts->os_image, sizeof(facts->os_image), "Linux");
	return 0;
}

/* The value of the first "key : value" line of /proc/cpuinfo, or "". */
static void cpuinfo_value(const char *data, const char *key, char *buf, size_t size)
{
	buf[0] = '\0';
	size_t key_length = strlen(key);
	for (const char *line = data; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		if (strncasecmp(line, key, key_length) != 0)
			continue;
		const char *p = line + key_length;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != ':')
			continue;
		p++;
		const char *end = strchr(p, '\n');
		copy_trimmed(buf, size, p, end ? (size_t)(end - p) : strlen(p));
		return;
	}
}

void board_read_architecture(const char *root, const char *machine, char architecture[16], char arm_variant[8])
{
	static const struct {
		const char *machine, *architecture;
	} names[] = {
		{ "x86_64", "amd64" }, { "amd64", "amd64" },     { "aarch64", "arm64" }, { "aarch64_be", "arm64" },
		{ "arm64", "arm64" },  { "i386", "386" },        { "i486", "386" },      { "i586", "386" },
		{ "i686", "386" },     { "ppc64le", "ppc64le" }, { "s390x", "s390x" },   { "riscv64", "riscv64" },
	};
	arm_variant[0] = '\0';
	snprintf(architecture, 16, "%s", machine);
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(machine, names[i].machine) == 0)
			snprintf(architecture, 16, "%s", names[i].architecture);
	if (strncmp(machine, "arm", 3) == 0 && strcmp(architecture, "arm64") != 0)
		snprintf(architecture, 16, "arm");
#if defined(__arm__)
	if (strcmp(architecture, "arm64") == 0)
		snprintf(architecture, 16, "arm"); /* 32-bit userland on a 64-bit kernel */
#endif
	if (strcmp(architecture, "arm") != 0)
		return;

	/* The variant, as containerd derives it: "CPU architecture" of /proc/cpuinfo, with the
	 * Raspberry Pi 1 / Zero quirk (an ARM1176 reports 7; its model name says ARMv6). */
	cleanup_free char *data = NULL;
	char value[32] = "", model[BOARD_TEXT_MAX] = "";
	if (read_optional(root, "/proc/cpuinfo", &data, NULL, NULL) > 0) {
		cpuinfo_value(data, "CPU architecture", value, sizeof(value));
		cpuinfo_value(data, "model name", model, sizeof(model));
	}
	int number = 0;
	if (value[0] >= '1' && value[0] <= '9')
		number = atoi(value);
	else if (strncmp(value, "AArch64", 7) == 0)
		number = 8;
	else if (strncmp(machine, "armv", 4) == 0 && isdigit((unsigned char)machine[4]))
		number = atoi(machine + 4); /* qemu-user shows the host's cpuinfo */
	if (number == 7 && (strncmp(machine, "armv6", 5) == 0 || strstr(model, "ARMv6")))
		number = 6;
	if (number >= 5 && number <= 8)
		snprintf(arm_variant, 8, "v%d", number);
}

static bool address_wanted(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const unsigned char *a =
		        (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
		return a[0] != 127 && !(a[0] == 169 && a[1] == 254) && !(a[0] == 0);
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		return !IN6_IS_ADDR_LOOPBACK(a) && !IN6_IS_ADDR_LINKLOCAL(a) && !IN6_IS_ADDR_UNSPECIFIED(a);
	}
	return false;
}

/* IPv4 before IPv6 (the first is the node's primary address, as with the kubelet). */
static int read_addresses(struct board_facts *facts, struct error *err)
{
	struct ifaddrs *list;
	facts->address_count = 0;
	if (getifaddrs(&list) < 0)
		return error_set_errno(err, errno, "getifaddrs");
	const int families[] = { AF_INET, AF_INET6 };
	for (size_t f = 0; f < ARRAY_SIZE(families); f++) {
		for (struct ifaddrs *i = list; i && facts->address_count < BOARD_ADDRESSES_MAX; i = i->ifa_next) {
			/* Bramble's own links (the pod bridge, the proxy's service link) hold pod and
			 * Service addresses, not the board's. */
			if (!i->ifa_addr || i->ifa_addr->sa_family != families[f] || !(i->ifa_flags & IFF_UP) ||
			    (i->ifa_flags & IFF_LOOPBACK) || !address_wanted(i->ifa_addr) ||
			    strncmp(i->ifa_name, "bramble", 7) == 0)
				continue;
			struct board_address *a = &facts->addresses[facts->address_count];
			const void *raw =
			        families[f] == AF_INET
			                ? (const void *)&((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr
			                : (const void *)&((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr;
			if (!inet_ntop(families[f], raw, a->text, sizeof(a->text)))
				continue;
			a->family = families[f];
			bool seen = false;
			for (size_t k = 0; k < facts->address_count; k++)
				seen = seen || strcmp(facts->addresses[k].text, a->text) == 0;
			if (!seen)
				facts->address_count++;
		}
	}
	freeifaddrs(list);
	return 0;
}

static int read_storage(struct board_facts *facts, const char *root, const char *data_dir, struct error *err)
{
	facts->storage_known = false;
	facts->storage_capacity = facts->storage_available = 0;
	if (!data_dir || !*data_dir)
		return 0;
	cleanup_free char *path = board_path(root, data_dir);
	struct statvfs st;
	if (statvfs(path, &st) < 0)
		return error_set_errno(err, errno, "statvfs %s (the data directory)", path);
	facts->storage_capacity = (uint64_t)st.f_blocks * st.f_frsize;
	facts->storage_available = (uint64_t)st.f_bavail * st.f_frsize;
	facts->storage_known = true;
	return 0;
}

/* "0.20 0.18 0.12 1/80 11206": the fourth field's total counts every thread. */
static int read_pids_in_use(struct board_facts *facts, const char *root, struct error *err)
{
	cleanup_free char *data = NULL;
	facts->pids_in_use = 0;
	int r = read_optional(root, "/proc/loadavg", &data, NULL, err);
	if (r <= 0)
		return r;
	unsigned long long running, total;
	if (sscanf(data, "%*s %*s %*s %llu/%llu", &running, &total) != 2) {
		cleanup_free char *path = board_path(root, "/proc/loadavg");
		return error_set(err, EINVAL, "%s: no running/total field", path);
	}
	facts->pids_in_use = total;
	return 0;
}

static int read_temperature(struct board_facts *facts, const char *root, struct error *err)
{
	cleanup_free char *data = NULL;
	facts->temperature_known = false;
	int r = read_optional(root, "/sys/class/thermal/thermal_zone0/temp", &data, NULL, err);
	if (r <= 0)
		return r;
	char *end;
	errno = 0;
	long v = strtol(data, &end, 10);
	if (end == data || errno || v < -273150 || v > 1000000)
		return 0; /* a sensor in error reads as junk; the temperature is only informative */
	facts->temperature_millicelsius = (int)v;
	facts->temperature_known = true;
	return 0;
}

int board_read_usage(struct board_facts *facts, const char *root, const char *data_dir, struct error *err)
{
	int r = read_memory(facts, root, false, err);
	if (r < 0)
		return r;
	r = read_storage(facts, root, data_dir, err);
	if (r < 0)
		return r;
	r = read_pids_in_use(facts, root, err);
	if (r < 0)
		return r;
	r = read_temperature(facts, root, err);
	if (r < 0)
		return r;
	return read_addresses(facts, err);
}

int board_read(struct board_facts *facts, const char *root, const char *data_dir, struct error *err)
{
	memset(facts, 0, sizeof(*facts));
	struct utsname u;
	if (uname(&u) < 0)
		return error_set_errno(err, errno, "uname");
	snprintf(facts->machine, sizeof(facts->machine), "%s", u.machine);
	snprintf(facts->kernel_version, sizeof(facts->kernel_version), "%s", u.release);
	snprintf(facts->hostname, sizeof(facts->hostname), "%s", u.nodename);
	board_read_architecture(root, facts->machine, facts->architecture, facts->arm_variant);

	int r = read_cpus(facts, root, err);
	if (r < 0)
		return r;
	r = read_memory(facts, root, true, err);
	if (r < 0)
		return r;
	r = read_number(root, "/proc/sys/kernel/pid_max", &facts->pid_max, err);
	if (r < 0)
		return r;
	r = read_os_image(facts, root, err);
	if (r < 0)
		return r;
	if ((r = read_text(root, "/etc/machine-id", facts->machine_id, sizeof(facts->machine_id), err)) < 0 ||
	    (r = read_text(root, "/proc/sys/kernel/random/boot_id", facts->boot_id, sizeof(facts->boot_id), err)) < 0 ||
	    (r = read_text(root, "/proc/device-tree/model", facts->model, sizeof(facts->model), err)) < 0 ||
	    (r = read_text(root, "/sys/class/dmi/id/product_uuid", facts->system_uuid, sizeof(facts->system_uuid),
	                   err)) < 0)
		return r;
	for (char *p = facts->system_uuid; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (!facts->system_uuid[0])
		snprintf(facts->system_uuid, sizeof(facts->system_uuid), "%s", facts->machine_id);
	return board_read_usage(facts, root, data_dir, err);
}
