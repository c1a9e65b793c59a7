/* Control groups through libcgroup, on cgroup v1 and v2.
 * (The containment issue grows this module; today it reports the library it links.) */
#ifndef BRAMBLE_PLATFORM_CGROUPS_H
#define BRAMBLE_PLATFORM_CGROUPS_H

#include <stddef.h>

/* "libcgroup 3.1.0", read from the library. */
void cgroups_library_version(char *buf, size_t size);

#endif
