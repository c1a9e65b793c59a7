/* The store: SQLite, one global revision, a change log for watches.
 * (The control-plane issue grows this module; today it reports the library it links.) */
#ifndef BRAMBLE_CORE_STORE_H
#define BRAMBLE_CORE_STORE_H

#include <stddef.h>

/* "SQLite 3.46.1", read from the library. */
void store_library_version(char *buf, size_t size);

#endif
