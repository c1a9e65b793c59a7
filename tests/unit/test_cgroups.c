#include "platform/cgroups.h"

#include <stdio.h>

#include "tests/unit/unit.h"

TEST(library_version_is_read_from_libcgroup)
{
	char buf[64];
	int major = -1, minor = -1, release = -1;
	cgroups_library_version(buf, sizeof(buf));
	CHECK_INT(sscanf(buf, "libcgroup %d.%d.%d", &major, &minor, &release), ==, 3);
	CHECK_INT(major, >=, 3);
}
