/* See map.h. The map's state: entries in a doubly linked list (insertion order, so that
 * iteration is stable) and, by hash, in power-of-two buckets that double when the entries
 * outnumber them; a removal unlinks from both. */
#include "platform/map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "platform/memory.h"

uint32_t map_hash(const void *data, size_t length, uint32_t h)
{
	for (size_t i = 0; i < length; i++) {
		h ^= ((const uint8_t *)data)[i];
		h *= 16777619u;
	}
	return h;
}

static struct map_entry *map_find(const struct map *map, const char *key, uint32_t hash)
{
	if (!map->bucket_count)
		return NULL;
	for (struct map_entry *e = map->buckets[hash & (map->bucket_count - 1)]; e; e = e->next_in_bucket)
		if (e->hash == hash && strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

void *map_get(const struct map *map, const char *key)
{
	struct map_entry *e = map_find(map, key, map_hash(key, strlen(key), MAP_HASH_SEED));
	return e ? e->value : NULL;
}

static void map_grow(struct map *map)
{
	size_t n = map->bucket_count ? map->bucket_count * 2 : 16;
	struct map_entry **buckets = xcalloc(n, sizeof(*buckets));
	for (struct map_entry *e = map->first; e; e = e->next) {
		e->next_in_bucket = buckets[e->hash & (n - 1)];
		buckets[e->hash & (n - 1)] = e;
	}
	free(map->buckets);
	map->buckets = buckets;
	map->bucket_count = n;
}

void *map_put(struct map *map, const char *key, void *value)
{
	uint32_t hash = map_hash(key, strlen(key), MAP_HASH_SEED);
	struct map_entry *e = map_find(map, key, hash);
	if (e) {
		void *old = e->value;
		e->value = value;
		return old;
	}
	if (map->count + 1 > map->bucket_count)
		map_grow(map);
	e = xcalloc(1, sizeof(*e));
	e->hash = hash;
	e->key = xstrdup(key);
	e->value = value;
	e->next_in_bucket = map->buckets[hash & (map->bucket_count - 1)];
	map->buckets[hash & (map->bucket_count - 1)] = e;
	e->prev = map->last;
	if (map->last)
		map->last->next = e;
	else
		map->first = e;
	map->last = e;
	map->count++;
	return NULL;
}

void *map_remove(struct map *map, const char *key)
{
	if (!map->bucket_count)
		return NULL;
	uint32_t hash = map_hash(key, strlen(key), MAP_HASH_SEED);
	for (struct map_entry **p = &map->buckets[hash & (map->bucket_count - 1)]; *p; p = &(*p)->next_in_bucket) {
		struct map_entry *e = *p;
		if (e->hash != hash || strcmp(e->key, key) != 0)
			continue;
		*p = e->next_in_bucket;
		if (e->prev)
			e->prev->next = e->next;
		else
			map->first = e->next;
		if (e->next)
			e->next->prev = e->prev;
		else
			map->last = e->prev;
		void *value = e->value;
		free(e->key);
		free(e);
		map->count--;
		return value;
	}
	return NULL;
}

void map_clear(struct map *map)
{
	for (struct map_entry *e = map->first, *next; e; e = next) {
		next = e->next;
		free(e->key);
		free(e);
	}
	free(map->buckets);
	memset(map, 0, sizeof(*map));
}
