#include "platform/cgroups.h"

#include <stdio.h>

#include <libcgroup.h>

void cgroups_library_version(char *buf, size_t size)
{
	const struct cgroup_library_version *v = cgroup_version();
	if (v)
		snprintf(buf, size, "libcgroup %d.%d.%d", v->major, v->minor, v->release);
	else
		snprintf(buf, size, "libcgroup (unknown version)");
}
