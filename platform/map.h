/* A string-keyed hash map, iterated in insertion order: the controllers' caches and
 * indexes, the API server's watch index. Keys are copied; values are the caller's.
 * A zeroed struct map is an empty map. */
#ifndef BRAMBLE_PLATFORM_MAP_H
#define BRAMBLE_PLATFORM_MAP_H

#include <stddef.h>
#include <stdint.h>

#define MAP_HASH_SEED 2166136261u /* FNV-1a's offset basis */

/* FNV-1a 32 of length bytes, continuing from h (MAP_HASH_SEED to start). */
uint32_t map_hash(const void *data, size_t length, uint32_t h);

struct map_entry {
	struct map_entry *next_in_bucket;
	struct map_entry *prev, *next; /* insertion order */
	uint32_t hash;
	char *key;
	void *value;
};

struct map {
	struct map_entry **buckets;
	size_t bucket_count, count;
	struct map_entry *first, *last;
};

void *map_get(const struct map *map, const char *key);
/* Sets key to value; returns the value it replaces (NULL when new). */
void *map_put(struct map *map, const char *key, void *value);
/* Removes key; returns its value (NULL when absent). */
void *map_remove(struct map *map, const char *key);
/* Frees the map's own memory, not the values. */
void map_clear(struct map *map);
#define map_each(entry, map) for (struct map_entry *entry = (map)->first; entry; entry = entry->next)

#endif
