#include "core/store.h"

#include <stdio.h>

#include <sqlite3.h>

void store_library_version(char *buf, size_t size)
{
	snprintf(buf, size, "SQLite %s", sqlite3_libversion());
}
