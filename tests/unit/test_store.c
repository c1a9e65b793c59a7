#include "core/store.h"

#include <stdio.h>

#include <sqlite3.h>

#include "tests/unit/unit.h"

TEST(library_version_is_read_from_sqlite)
{
	char buf[64], expect[64];
	store_library_version(buf, sizeof(buf));
	snprintf(expect, sizeof(expect), "SQLite %s", SQLITE_VERSION); /* header and library agree */
	CHECK_STR(buf, expect);
}
