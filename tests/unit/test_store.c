#include "core/store.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "platform/error.h"
#include "platform/file.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

static const uint8_t key_a[STORE_SECRET_KEY_SIZE] = "0123456789abcdef0123456789abcdef";
static const uint8_t key_b[STORE_SECRET_KEY_SIZE] = "fedcba9876543210fedcba9876543210";

static char *db_path(void)
{
	return xasprintf("%s/store.db", unit_temp_dir());
}

static struct store *open_with(const char *path, const uint8_t *key, uint64_t change_log_limit, bool durable)
{
	struct store_options options = {
		.path = path, .secret_key = key, .change_log_limit = change_log_limit, .durable = durable
	};
	struct store *store = NULL;
	struct error err = { 0 };
	int r = store_open(&options, &store, &err);
	if (r < 0)
		unit_fail(__FILE__, __LINE__, "store_open %s: %s", path, err.message);
	return store;
}

static struct store *open_store(void)
{
	cleanup_free char *path = db_path();
	return open_with(path, key_a, 0, false);
}

static cJSON *object(const char *namespace, const char *name, const char *value)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "apiVersion", "v1");
	cJSON_AddStringToObject(o, "kind", "Thing");
	cJSON *metadata = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(metadata, "name", name);
	if (namespace[0])
		cJSON_AddStringToObject(metadata, "namespace", namespace);
	cJSON *data = cJSON_AddObjectToObject(o, "data");
	cJSON_AddStringToObject(data, "value", value);
	return o;
}

/* Applies one change; returns the result, the stored JSON in *ret_json when asked. */
static int apply(struct store *store, enum store_op op, const char *resource, const char *namespace, const char *name,
                 const char *value, uint64_t expected, char **ret_json, struct error *err)
{
	cJSON *o = op == STORE_DELETE ? NULL : object(namespace, name, value);
	struct store_request request = { op, resource, namespace, name, o, expected };
	int r = store_apply(store, &request, ret_json, NULL, err);
	cJSON_Delete(o);
	return r;
}

static void create(struct store *store, const char *resource, const char *namespace, const char *name,
                   const char *value)
{
	struct error err = { 0 };
	int r = apply(store, STORE_CREATE, resource, namespace, name, value, 0, NULL, &err);
	if (r < 0)
		unit_fail(__FILE__, __LINE__, "create %s/%s/%s: %s", resource, namespace, name, err.message);
}

static void commit(struct store *store)
{
	struct error err = { 0 };
	int r = store_commit(store, &err);
	if (r < 0)
		unit_fail(__FILE__, __LINE__, "store_commit: %s", err.message);
}

/* metadata.<field> of a JSON text, in a static buffer. */
static const char *field_of(const char *json, const char *field)
{
	static char value[256];
	cJSON *o = cJSON_Parse(json);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "metadata"), field);
	snprintf(value, sizeof(value), "%s", cJSON_IsString(v) ? v->valuestring : "(none)");
	cJSON_Delete(o);
	return value;
}

static const char *value_of(const char *json)
{
	static char value[256];
	cJSON *o = cJSON_Parse(json);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "data"), "value");
	snprintf(value, sizeof(value), "%s", cJSON_IsString(v) ? v->valuestring : "(none)");
	cJSON_Delete(o);
	return value;
}

TEST(library_version_is_read_from_sqlite)
{
	char buf[64], expect[64];
	store_library_version(buf, sizeof(buf));
	snprintf(expect, sizeof(expect), "SQLite %s", SQLITE_VERSION); /* header and library agree */
	CHECK_STR(buf, expect);
}

TEST(every_change_takes_the_next_revision_as_resource_version)
{
	struct store *store = open_store();
	CHECK_INT(store_revision(store), ==, 0);
	CHECK_INT(store_oldest_revision(store), ==, 1);
	cJSON *o = object("default", "a", "1");
	cJSON_AddStringToObject(cJSON_GetObjectItem(o, "metadata"), "resourceVersion", "999"); /* overwritten */
	struct store_request request = { STORE_CREATE, "pods", "default", "a", o, 0 };
	char *json = NULL;
	uint64_t revision = 0;
	CHECK_OK(store_apply(store, &request, &json, &revision, NULL));
	CHECK_INT(revision, ==, 1);
	CHECK_STR(field_of(json, "resourceVersion"), "1");
	/* The caller's object carries it too, as a string. */
	CHECK_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metadata"), "resourceVersion")->valuestring, "1");
	free(json);
	cJSON_Delete(o);
	CHECK_INT(store_revision(store), ==, 0); /* not committed yet */

	o = object("default", "b", "2");
	cJSON_DeleteItemFromObject(o, "metadata"); /* a missing metadata is created */
	struct store_request second = { STORE_CREATE, "configmaps", "default", "b", o, 0 };
	CHECK_OK(store_apply(store, &second, NULL, &revision, NULL));
	cJSON_Delete(o);
	CHECK_INT(revision, ==, 2);
	commit(store);
	CHECK_INT(store_revision(store), ==, 2);

	CHECK_OK(store_get(store, "configmaps", "default", "b", &json, NULL));
	CHECK_STR(field_of(json, "resourceVersion"), "2");
	free(json);
	CHECK_OK(apply(store, STORE_REPLACE, "pods", "default", "a", "3", 1, &json, NULL));
	CHECK_STR(field_of(json, "resourceVersion"), "3");
	CHECK_STR(value_of(json), "3");
	free(json);
	commit(store);
	CHECK_INT(store_revision(store), ==, 3);
	store_close(store);
}

TEST(create_replace_and_delete_refuse_what_does_not_fit)
{
	struct store *store = open_store();
	create(store, "pods", "default", "a", "1");
	commit(store);
	struct error err = { 0 };
	CHECK_INT(apply(store, STORE_CREATE, "pods", "default", "a", "x", 0, NULL, &err), ==, -EEXIST);
	CHECK_CONTAINS(err.message, "pods \"a\" already exists in namespace default");
	CHECK_INT(apply(store, STORE_REPLACE, "pods", "default", "b", "x", 0, NULL, &err), ==, -ENOENT);
	CHECK_CONTAINS(err.message, "pods \"b\" not found");
	CHECK_INT(apply(store, STORE_DELETE, "pods", "other", "a", NULL, 0, NULL, &err), ==, -ENOENT);
	CHECK_INT(store_get(store, "pods", "default", "b", &(char *){ NULL }, &err), ==, -ENOENT);
	/* The same name in another namespace or resource is another object. */
	create(store, "pods", "other", "a", "2");
	create(store, "configmaps", "default", "a", "3");

	char long_name[300];
	memset(long_name, 'n', sizeof(long_name));
	long_name[254] = '\0';
	CHECK_INT(apply(store, STORE_CREATE, "pods", "default", long_name, "x", 0, NULL, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "invalid name");
	long_name[253] = '\0';
	CHECK_OK(apply(store, STORE_CREATE, "pods", "default", long_name, "x", 0, NULL, NULL));
	long_name[64] = '\0';
	CHECK_INT(apply(store, STORE_CREATE, "pods", long_name, "a", "x", 0, NULL, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "invalid namespace");
	long_name[64] = 'n';
	long_name[65] = '\0';
	CHECK_INT(apply(store, STORE_CREATE, long_name, "default", "a", "x", 0, NULL, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "invalid resource");
	CHECK_INT(apply(store, STORE_CREATE, "pods", "default", "", "x", 0, NULL, &err), ==, -EINVAL);
	CHECK_INT(apply(store, STORE_CREATE, "pods", "a/b", "c", "x", 0, NULL, &err), ==, -EINVAL);
	struct store_request no_object = { STORE_CREATE, "pods", "default", "z", NULL, 0 };
	CHECK_INT(store_apply(store, &no_object, NULL, NULL, &err), ==, -EINVAL);
	cJSON *array = cJSON_CreateArray();
	struct store_request not_object = { STORE_REPLACE, "pods", "default", "a", array, 0 };
	CHECK_INT(store_apply(store, &not_object, NULL, NULL, &err), ==, -EINVAL);
	cJSON_Delete(array);
	/* Refused requests took no revision. */
	CHECK_INT(store_pending(store), ==, 3);
	commit(store);
	CHECK_INT(store_revision(store), ==, 4);

	CHECK_OK(apply(store, STORE_DELETE, "pods", "default", "a", NULL, 0, NULL, NULL));
	CHECK_INT(apply(store, STORE_DELETE, "pods", "default", "a", NULL, 0, NULL, &err), ==, -ENOENT);
	commit(store);
	CHECK_INT(store_get(store, "pods", "default", "a", &(char *){ NULL }, NULL), ==, -ENOENT);
	char *json = NULL;
	CHECK_OK(store_get(store, "pods", "other", "a", &json, NULL));
	CHECK_STR(value_of(json), "2");
	free(json);
	store_close(store);
}

TEST(a_stale_expected_revision_is_refused)
{
	struct store *store = open_store();
	create(store, "pods", "default", "a", "1");                                        /* revision 1 */
	CHECK_OK(apply(store, STORE_REPLACE, "pods", "default", "a", "2", 1, NULL, NULL)); /* 2 */
	commit(store);
	struct error err = { 0 };
	CHECK_INT(apply(store, STORE_REPLACE, "pods", "default", "a", "3", 1, NULL, &err), ==, -ESTALE);
	CHECK_CONTAINS(err.message, "resourceVersion 1 is not the current 2");
	CHECK_INT(apply(store, STORE_DELETE, "pods", "default", "a", NULL, 1, NULL, &err), ==, -ESTALE);
	CHECK_INT(store_pending(store), ==, 0);
	CHECK_OK(apply(store, STORE_REPLACE, "pods", "default", "a", "3", 2, NULL, NULL));
	CHECK_OK(apply(store, STORE_REPLACE, "pods", "default", "a", "4", 0, NULL, NULL)); /* 0: any */
	CHECK_INT(apply(store, STORE_DELETE, "pods", "default", "a", NULL, 3, NULL, &err), ==, -ESTALE);
	CHECK_OK(apply(store, STORE_DELETE, "pods", "default", "a", NULL, 4, NULL, NULL));
	commit(store);
	CHECK_INT(store_revision(store), ==, 5);
	store_close(store);
}

struct seen {
	int count;
	enum store_event types[16];
	uint64_t revisions[16];
	char names[16][32];
	char values[16][64];
	char previous[16][64];
	char resource_versions[16][24];
};

static void record(const struct store_change *change, void *data)
{
	struct seen *seen = data;
	if (seen->count >= 16)
		return;
	int i = seen->count++;
	seen->types[i] = change->type;
	seen->revisions[i] = change->revision;
	snprintf(seen->names[i], sizeof(seen->names[i]), "%s/%s/%s", change->resource, change->namespace, change->name);
	snprintf(seen->values[i], sizeof(seen->values[i]), "%s", value_of(change->object));
	snprintf(seen->previous[i], sizeof(seen->previous[i]), "%s",
	         change->previous ? value_of(change->previous) : "(null)");
	snprintf(seen->resource_versions[i], sizeof(seen->resource_versions[i]), "%s",
	         field_of(change->object, "resourceVersion"));
}

TEST(a_group_commit_reports_its_changes_in_order_after_the_commit)
{
	struct store *store = open_store();
	struct seen seen = { 0 };
	store_set_change_hook(store, record, &seen);
	create(store, "pods", "default", "a", "1");
	CHECK_OK(apply(store, STORE_REPLACE, "pods", "default", "a", "2", 1, NULL, NULL));
	create(store, "configmaps", "kube-system", "c", "3");
	CHECK_OK(apply(store, STORE_DELETE, "pods", "default", "a", NULL, 2, NULL, NULL));
	CHECK_INT(store_pending(store), ==, 4);
	CHECK_INT(seen.count, ==, 0); /* nothing is reported before it is durable */
	/* Reads see the open transaction. */
	char *json = NULL;
	CHECK_OK(store_get(store, "configmaps", "kube-system", "c", &json, NULL));
	free(json);
	commit(store);
	CHECK_INT(store_pending(store), ==, 0);
	CHECK_INT(seen.count, ==, 4);
	CHECK_INT(seen.types[0], ==, STORE_ADDED);
	CHECK_INT(seen.types[1], ==, STORE_MODIFIED);
	CHECK_INT(seen.types[2], ==, STORE_ADDED);
	CHECK_INT(seen.types[3], ==, STORE_DELETED);
	for (int i = 0; i < 4; i++)
		CHECK_INT(seen.revisions[i], ==, i + 1);
	CHECK_STR(seen.names[2], "configmaps/kube-system/c");
	CHECK_STR(seen.previous[0], "(null)");
	CHECK_STR(seen.values[1], "2");
	CHECK_STR(seen.previous[1], "1");
	/* A deletion reports the last state, stamped with the deletion's revision. */
	CHECK_STR(seen.values[3], "2");
	CHECK_STR(seen.previous[3], "2");
	CHECK_STR(seen.resource_versions[3], "4");
	/* A commit with nothing pending reports nothing. */
	commit(store);
	CHECK_INT(seen.count, ==, 4);
	store_close(store);
}

/* Fault injection (SQLite's own test style): a VFS wrapping the default one that can fail
 * every write to a WAL file, so COMMIT fails the way a dying SD card makes it fail. */
static sqlite3_vfs *real_vfs;
static sqlite3_vfs fault_vfs;
static bool fail_wal_writes;

struct fault_file {
	sqlite3_file base;
	sqlite3_file *real;
	bool wal;
};

#define REAL(file) (((struct fault_file *)(file))->real)

static int fault_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}
static int fault_read(sqlite3_file *f, void *buf, int amount, sqlite3_int64 offset)
{
	return REAL(f)->pMethods->xRead(REAL(f), buf, amount, offset);
}
static int fault_write(sqlite3_file *f, const void *buf, int amount, sqlite3_int64 offset)
{
	if (fail_wal_writes && ((struct fault_file *)f)->wal)
		return SQLITE_IOERR_WRITE;
	return REAL(f)->pMethods->xWrite(REAL(f), buf, amount, offset);
}
static int fault_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int fault_sync(sqlite3_file *f, int flags)
{
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int fault_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int fault_lock(sqlite3_file *f, int lock)
{
	return REAL(f)->pMethods->xLock(REAL(f), lock);
}
static int fault_unlock(sqlite3_file *f, int lock)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), lock);
}
static int fault_check_reserved_lock(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int fault_file_control(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int fault_sector_size(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int fault_device_characteristics(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int fault_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **out)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), page, size, extend, out);
}
static int fault_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}
static void fault_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int fault_shm_unmap(sqlite3_file *f, int delete_flag)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), delete_flag);
}
static int fault_fetch(sqlite3_file *f, sqlite3_int64 offset, int amount, void **out)
{
	return REAL(f)->pMethods->xFetch(REAL(f), offset, amount, out);
}
static int fault_unfetch(sqlite3_file *f, sqlite3_int64 offset, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), offset, p);
}

static const sqlite3_io_methods fault_methods = {
	3,
	fault_close,
	fault_read,
	fault_write,
	fault_truncate,
	fault_sync,
	fault_file_size,
	fault_lock,
	fault_unlock,
	fault_check_reserved_lock,
	fault_file_control,
	fault_sector_size,
	fault_device_characteristics,
	fault_shm_map,
	fault_shm_lock,
	fault_shm_barrier,
	fault_shm_unmap,
	fault_fetch,
	fault_unfetch,
};

static int fault_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags, int *out_flags)
{
	struct fault_file *f = (struct fault_file *)file;
	f->real = (sqlite3_file *)(f + 1);
	f->wal = (flags & SQLITE_OPEN_WAL) != 0;
	int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
	f->base.pMethods = rc == SQLITE_OK ? &fault_methods : NULL;
	return rc;
}

static void install_fault_vfs(void)
{
	real_vfs = sqlite3_vfs_find(NULL);
	fault_vfs = *real_vfs;
	fault_vfs.zName = "fault";
	fault_vfs.szOsFile = (int)sizeof(struct fault_file) + real_vfs->szOsFile;
	fault_vfs.xOpen = fault_open;
	fault_vfs.pNext = NULL;
	CHECK_INT(sqlite3_vfs_register(&fault_vfs, 1), ==, SQLITE_OK); /* the default from now on */
}

TEST(a_failed_commit_rolls_every_pending_change_back)
{
	install_fault_vfs();
	cleanup_free char *path = db_path();
	struct store *store = open_with(path, key_a, 0, true);
	struct seen seen = { 0 };
	store_set_change_hook(store, record, &seen);
	create(store, "pods", "default", "a", "1");
	commit(store);
	CHECK_INT(seen.count, ==, 1);

	create(store, "pods", "default", "b", "2");
	CHECK_OK(apply(store, STORE_REPLACE, "pods", "default", "a", "3", 0, NULL, NULL));
	CHECK_INT(store_pending(store), ==, 2);
	fail_wal_writes = true;
	struct error err = { 0 };
	int r = store_commit(store, &err);
	fail_wal_writes = false;
	CHECK_INT(r, <, 0);
	CHECK_CONTAINS(err.message, "committing 2 changes to ");
	CHECK_CONTAINS(err.message, path);
	CHECK_INT(seen.count, ==, 1); /* the hook never saw the lost changes */
	CHECK_INT(store_pending(store), ==, 0);
	CHECK_INT(store_revision(store), ==, 1);
	CHECK_INT(store_get(store, "pods", "default", "b", &(char *){ NULL }, NULL), ==, -ENOENT);
	char *json = NULL;
	CHECK_OK(store_get(store, "pods", "default", "a", &json, NULL));
	CHECK_STR(value_of(json), "1");
	free(json);

	/* The store goes on, reusing the revisions that were never committed. */
	uint64_t revision = 0;
	cJSON *o = object("default", "c", "4");
	struct store_request request = { STORE_CREATE, "pods", "default", "c", o, 0 };
	CHECK_OK(store_apply(store, &request, NULL, &revision, NULL));
	cJSON_Delete(o);
	CHECK_INT(revision, ==, 2);
	commit(store);
	CHECK_INT(seen.count, ==, 2);
	CHECK_INT(seen.revisions[1], ==, 2);
	store_close(store);

	store = open_with(path, key_a, 0, true);
	CHECK_INT(store_revision(store), ==, 2);
	CHECK_INT(store_get(store, "pods", "default", "b", &(char *){ NULL }, NULL), ==, -ENOENT);
	CHECK_OK(store_get(store, "pods", "default", "c", &json, NULL));
	free(json);
	store_close(store);
}

TEST(a_transaction_sqlite_rolls_back_fails_the_next_commit)
{
	/* A tiny page cache makes SQLite spill dirty pages into the WAL before the commit; a
	 * failing write there makes it roll the whole transaction back by itself. */
	install_fault_vfs();
	cleanup_free char *path = db_path();
	struct store_options options = { .path = path, .secret_key = key_a, .cache_kib = 64 };
	struct store *store = NULL;
	CHECK_OK(store_open(&options, &store, NULL));
	struct seen seen = { 0 };
	store_set_change_hook(store, record, &seen);
	create(store, "pods", "default", "kept", "1");
	commit(store);

	char value[1200];
	memset(value, 'v', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	create(store, "pods", "default", "first-of-group", "2");
	fail_wal_writes = true;
	struct error err = { 0 };
	int r = 0, applied = 0;
	for (int i = 0; i < 500 && r == 0; i++) {
		char name[32];
		snprintf(name, sizeof(name), "big-%d", i);
		r = apply(store, STORE_CREATE, "pods", "default", name, value, 0, NULL, &err);
		applied += r == 0;
	}
	fail_wal_writes = false;
	CHECK_INT(r, <, 0);
	CHECK_INT(applied, >, 0);
	CHECK_INT(store_pending(store), ==, 0);
	/* A change applied after the loss still fails with its group. */
	create(store, "pods", "default", "after-the-loss", "3");
	r = store_commit(store, &err);
	CHECK_INT(r, <, 0);
	CHECK_CONTAINS(err.message, "were lost");
	CHECK_INT(seen.count, ==, 1);
	CHECK_INT(store_revision(store), ==, 1);
	CHECK_INT(store_get(store, "pods", "default", "first-of-group", &(char *){ NULL }, NULL), ==, -ENOENT);
	CHECK_INT(store_get(store, "pods", "default", "after-the-loss", &(char *){ NULL }, NULL), ==, -ENOENT);
	CHECK_OK(store_commit(store, NULL)); /* reported once */

	create(store, "pods", "default", "later", "4");
	commit(store);
	CHECK_INT(seen.count, ==, 2);
	CHECK_INT(seen.revisions[1], ==, 2);
	store_close(store);
}

TEST(uncommitted_changes_vanish_at_close)
{
	cleanup_free char *path = db_path();
	struct store *store = open_with(path, key_a, 0, false);
	create(store, "pods", "default", "a", "1");
	commit(store);
	create(store, "pods", "default", "b", "2");
	CHECK_OK(apply(store, STORE_DELETE, "pods", "default", "a", NULL, 0, NULL, NULL));
	store_close(store);

	store = open_with(path, key_a, 0, false);
	CHECK_INT(store_revision(store), ==, 1);
	CHECK_INT(store_get(store, "pods", "default", "b", &(char *){ NULL }, NULL), ==, -ENOENT);
	char *json = NULL;
	CHECK_OK(store_get(store, "pods", "default", "a", &json, NULL));
	free(json);
	uint64_t revision = 0;
	cJSON *o = object("default", "b", "3");
	struct store_request request = { STORE_CREATE, "pods", "default", "b", o, 0 };
	CHECK_OK(store_apply(store, &request, NULL, &revision, NULL));
	cJSON_Delete(o);
	CHECK_INT(revision, ==, 2);
	commit(store);
	store_close(store);
}

TEST(objects_and_revision_survive_a_reopen)
{
	cleanup_free char *path = db_path();
	struct store *store = open_with(path, key_a, 0, true);
	for (int i = 0; i < 20; i++) {
		char name[16];
		snprintf(name, sizeof(name), "pod-%02d", i);
		create(store, "pods", "default", name, name);
		if (i % 7 == 0)
			commit(store);
	}
	commit(store);
	create(store, "secrets", "default", "s", "hush");
	commit(store);
	store_close(store);

	store = open_with(path, key_a, 0, true);
	CHECK_INT(store_revision(store), ==, 21);
	char *json = NULL;
	CHECK_OK(store_get(store, "pods", "default", "pod-13", &json, NULL));
	CHECK_STR(value_of(json), "pod-13");
	CHECK_STR(field_of(json, "resourceVersion"), "14");
	free(json);
	CHECK_OK(store_get(store, "secrets", "default", "s", &json, NULL));
	CHECK_STR(value_of(json), "hush");
	free(json);
	create(store, "pods", "default", "next", "x");
	commit(store);
	CHECK_INT(store_revision(store), ==, 22);
	store_close(store);
}

struct listing {
	char keys[32][48];
	int count;
	int stop_after; /* 0: never */
};

static int collect(const char *json, size_t length, void *data)
{
	struct listing *l = data;
	CHECK_INT(strlen(json), ==, length);
	if (l->stop_after && l->count == l->stop_after)
		return -ECANCELED;
	if (l->count < 32) {
		char namespace[24];
		snprintf(namespace, sizeof(namespace), "%s", field_of(json, "namespace"));
		snprintf(l->keys[l->count], sizeof(l->keys[0]), "%s/%s=%s", namespace, field_of(json, "name"),
		         value_of(json));
	}
	l->count++;
	return 0;
}

/* Lists into one comma-separated string, in a static buffer. */
static const char *list_text(struct store *store, const char *resource, const char *namespace, const char *after,
                             size_t limit, char **ret_continue)
{
	static char text[1024];
	struct listing l = { 0 };
	struct error err = { 0 };
	int r = store_list(store, resource, namespace, after, limit, collect, &l, ret_continue, &err);
	if (r < 0)
		unit_fail(__FILE__, __LINE__, "store_list: %s", err.message);
	text[0] = '\0';
	for (int i = 0; i < l.count && i < 32; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s%s", i ? "," : "", l.keys[i]);
	return text;
}

TEST(listing_is_in_namespace_and_name_order_with_pages)
{
	struct store *store = open_store();
	create(store, "pods", "b", "y", "1");
	create(store, "pods", "a", "z", "1");
	create(store, "pods", "c", "m", "1");
	create(store, "pods", "b", "a", "1");
	create(store, "pods", "a", "x", "1");
	create(store, "configmaps", "a", "other", "1");
	create(store, "nodes", "", "pi-2", "1");
	create(store, "nodes", "", "pi-1", "1");
	commit(store);
	char *next = (char *)"untouched";
	CHECK_STR(list_text(store, "pods", NULL, NULL, 0, &next), "a/x=1,a/z=1,b/a=1,b/y=1,c/m=1");
	CHECK(next == NULL);
	CHECK_STR(list_text(store, "pods", "b", NULL, 0, &next), "b/a=1,b/y=1");
	CHECK_STR(list_text(store, "pods", "d", NULL, 0, &next), "");
	CHECK_STR(list_text(store, "nodes", NULL, NULL, 0, &next), "(none)/pi-1=1,(none)/pi-2=1");
	CHECK_STR(list_text(store, "nodes", "", NULL, 0, &next), "(none)/pi-1=1,(none)/pi-2=1");
	CHECK_STR(list_text(store, "services", NULL, NULL, 0, &next), "");
	CHECK_STR(list_text(store, "pods", NULL, NULL, 5, &next), "a/x=1,a/z=1,b/a=1,b/y=1,c/m=1");
	CHECK(next == NULL); /* exactly the limit: the listing is complete */

	/* Pages of two, with a replace and a create behind the cursor between pages. */
	CHECK_STR(list_text(store, "pods", NULL, NULL, 2, &next), "a/x=1,a/z=1");
	CHECK_STR(next, "a/z");
	CHECK_OK(apply(store, STORE_REPLACE, "pods", "b", "a", "2", 0, NULL, NULL));
	CHECK_OK(apply(store, STORE_REPLACE, "pods", "a", "x", "2", 0, NULL, NULL));
	create(store, "pods", "a", "w", "1");
	commit(store);
	char *page2 = NULL;
	CHECK_STR(list_text(store, "pods", NULL, next, 2, &page2), "b/a=2,b/y=1");
	free(next);
	CHECK_STR(page2, "b/y");
	char *page3 = NULL;
	CHECK_STR(list_text(store, "pods", NULL, page2, 2, &page3), "c/m=1");
	CHECK(page3 == NULL);
	free(page2);

	/* In one namespace, and a continue key from another namespace. */
	CHECK_STR(list_text(store, "pods", "a", NULL, 1, &next), "a/w=1");
	CHECK_STR(next, "a/w");
	CHECK_STR(list_text(store, "pods", "a", next, 1, &page2), "a/x=2");
	free(next);
	CHECK_STR(list_text(store, "pods", "a", page2, 5, &page3), "a/z=1");
	CHECK(page3 == NULL);
	free(page2);
	CHECK_STR(list_text(store, "pods", "b", "a/x", 0, &next), "b/a=2,b/y=1");
	CHECK_STR(list_text(store, "pods", "a", "b/a", 0, &next), "");
	CHECK_STR(list_text(store, "pods", NULL, "b/a", 0, NULL), "b/y=1,c/m=1");

	/* A callback stops the listing with its own error; a bad key is refused. */
	struct listing l = { .stop_after = 2 };
	next = (char *)"untouched";
	CHECK_INT(store_list(store, "pods", NULL, NULL, 0, collect, &l, &next, NULL), ==, -ECANCELED);
	CHECK_INT(l.count, ==, 2);
	CHECK_STR(next, "untouched");
	struct error err = { 0 };
	CHECK_INT(store_list(store, "pods", NULL, "no-slash", 0, collect, &l, NULL, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "invalid continue key");
	store_close(store);
}

struct replay {
	int count;
	uint64_t revisions[32];
	enum store_event types[32];
	bool previous_seen;
	char last_value[64];
};

static void collect_change(const struct store_change *change, void *data)
{
	struct replay *r = data;
	if (r->count < 32) {
		r->revisions[r->count] = change->revision;
		r->types[r->count] = change->type;
	}
	r->count++;
	r->previous_seen |= change->previous != NULL;
	snprintf(r->last_value, sizeof(r->last_value), "%s", value_of(change->object));
}

TEST(changes_replay_until_compacted_away)
{
	cleanup_free char *path = db_path();
	struct store *store = open_with(path, key_a, 5, false);
	create(store, "pods", "default", "a", "1");
	create(store, "configmaps", "default", "c", "1");
	CHECK_OK(apply(store, STORE_REPLACE, "pods", "default", "a", "2", 0, NULL, NULL));
	commit(store);
	create(store, "pods", "default", "uncommitted", "1");

	struct replay r = { 0 };
	CHECK_OK(store_changes_since(store, NULL, 0, collect_change, &r, NULL));
	CHECK_INT(r.count, ==, 3); /* not the open transaction's change */
	CHECK_INT(r.revisions[2], ==, 3);
	CHECK_INT(r.types[0], ==, STORE_ADDED);
	CHECK_INT(r.types[2], ==, STORE_MODIFIED);
	CHECK(!r.previous_seen);
	r = (struct replay){ 0 };
	CHECK_OK(store_changes_since(store, "pods", 1, collect_change, &r, NULL));
	CHECK_INT(r.count, ==, 1);
	CHECK_INT(r.revisions[0], ==, 3);
	CHECK_STR(r.last_value, "2");
	commit(store); /* revision 4 */

	for (int i = 0; i < 6; i++) {
		char name[16];
		snprintf(name, sizeof(name), "p%d", i);
		create(store, "pods", "default", name, name);
	}
	CHECK_OK(apply(store, STORE_DELETE, "pods", "default", "a", NULL, 0, NULL, NULL));
	commit(store); /* revisions 5..11; the log keeps 7..11 */
	CHECK_INT(store_revision(store), ==, 11);
	CHECK_INT(store_oldest_revision(store), ==, 7);
	struct error err = { 0 };
	r = (struct replay){ 0 };
	CHECK_INT(store_changes_since(store, NULL, 5, collect_change, &r, &err), ==, -ERANGE);
	CHECK_CONTAINS(err.message, "re-list");
	CHECK_CONTAINS(err.message, "the oldest is 7");
	CHECK_INT(r.count, ==, 0);
	CHECK_OK(store_changes_since(store, NULL, 6, collect_change, &r, NULL));
	CHECK_INT(r.count, ==, 5);
	CHECK_INT(r.revisions[0], ==, 7);
	CHECK_INT(r.types[4], ==, STORE_DELETED);
	CHECK_STR(r.last_value, "2"); /* the deleted object's last state */
	r = (struct replay){ 0 };
	CHECK_OK(store_changes_since(store, NULL, 11, collect_change, &r, NULL));
	CHECK_INT(r.count, ==, 0);
	store_close(store);

	/* The compaction point survives a reopen, and so does the log. */
	store = open_with(path, key_a, 5, false);
	CHECK_INT(store_oldest_revision(store), ==, 7);
	CHECK_INT(store_revision(store), ==, 11);
	CHECK_INT(store_changes_since(store, "pods", 5, collect_change, &r, NULL), ==, -ERANGE);
	r = (struct replay){ 0 };
	CHECK_OK(store_changes_since(store, "pods", 6, collect_change, &r, NULL));
	CHECK_INT(r.count, ==, 5);
	store_close(store);
}

/* Whether the bytes of needle appear in the file (absent file: false). */
static bool file_contains(const char *path, const char *needle)
{
	char *data = NULL;
	size_t size = 0;
	if (file_read(path, 64 << 20, &data, &size, NULL) < 0)
		return false;
	bool found = memmem(data, size, needle, strlen(needle)) != NULL;
	free(data);
	return found;
}

static bool any_store_file_contains(const char *path, const char *needle)
{
	cleanup_free char *wal = xasprintf("%s-wal", path);
	return file_contains(path, needle) || file_contains(wal, needle);
}

static void count_secret(const struct store_change *change, void *data)
{
	char *seen = data;
	if (strcmp(change->resource, "secrets") == 0)
		snprintf(seen, 64, "%s", value_of(change->object));
}

TEST(secrets_are_encrypted_at_rest_and_decrypted_on_read)
{
	static const char secret[] = "hunter2-the-secret-value";
	static const char visible[] = "plain-configmap-value";
	cleanup_free char *path = db_path();
	struct store *store = open_with(path, key_a, 0, false);
	char hooked[64] = "";
	store_set_change_hook(store, count_secret, hooked);
	create(store, "secrets", "default", "db-password", secret);
	create(store, "configmaps", "default", "settings", visible);
	char *json = NULL;
	CHECK_OK(apply(store, STORE_REPLACE, "secrets", "default", "db-password", secret, 0, &json, NULL));
	CHECK_STR(value_of(json), secret); /* the caller gets plaintext back */
	free(json);
	commit(store);
	CHECK_STR(hooked, secret);

	/* The search works (the configmap is found) and finds no secret, in the WAL or the file. */
	CHECK(any_store_file_contains(path, visible));
	CHECK(!any_store_file_contains(path, secret));
	CHECK(!any_store_file_contains(path, "db-password\",\"namespace"));

	CHECK_OK(store_get(store, "secrets", "default", "db-password", &json, NULL));
	CHECK_STR(value_of(json), secret);
	CHECK_STR(field_of(json, "resourceVersion"), "3");
	free(json);
	CHECK_STR(list_text(store, "secrets", NULL, NULL, 0, NULL), "default/db-password=hunter2-the-secret-value");
	struct replay r = { 0 };
	CHECK_OK(store_changes_since(store, "secrets", 0, collect_change, &r, NULL));
	CHECK_INT(r.count, ==, 2);
	CHECK_STR(r.last_value, secret);
	CHECK_OK(apply(store, STORE_DELETE, "secrets", "default", "db-password", NULL, 0, NULL, NULL));
	commit(store);
	store_close(store); /* checkpoints the WAL into the file */
	CHECK(file_contains(path, visible));
	CHECK(!any_store_file_contains(path, secret));

	/* A ciphertext moved to another key (here: renamed in place) does not decrypt. */
	store = open_with(path, key_a, 0, false);
	create(store, "secrets", "default", "token", secret);
	commit(store);
	store_close(store);
	sqlite3 *db = NULL;
	CHECK_INT(sqlite3_open(path, &db), ==, SQLITE_OK);
	CHECK_INT(sqlite3_exec(db, "UPDATE objects SET name = 'moved' WHERE name = 'token'", NULL, NULL, NULL), ==,
	          SQLITE_OK);
	sqlite3_close(db);
	store = open_with(path, key_a, 0, false);
	struct error err = { 0 };
	CHECK_INT(store_get(store, "secrets", "default", "moved", &json, &err), ==, -EBADMSG);
	store_close(store);
}

TEST(a_wrong_secret_key_is_reported_on_read)
{
	cleanup_free char *path = db_path();
	struct store *store = open_with(path, key_a, 0, false);
	create(store, "secrets", "default", "s", "value");
	create(store, "configmaps", "default", "c", "value");
	commit(store);
	store_close(store);

	store = open_with(path, key_b, 0, false);
	char *json = NULL;
	struct error err = { 0 };
	CHECK_INT(store_get(store, "secrets", "default", "s", &json, &err), ==, -EBADMSG);
	CHECK_CONTAINS(err.message, "cannot decrypt secrets: wrong key in the data directory?");
	struct listing l = { 0 };
	CHECK_INT(store_list(store, "secrets", NULL, NULL, 0, collect, &l, NULL, &err), ==, -EBADMSG);
	CHECK_INT(store_changes_since(store, NULL, 0, collect_change, &(struct replay){ 0 }, &err), ==, -EBADMSG);
	/* Other resources are unaffected, and a replace with the wrong key is refused too. */
	CHECK_OK(store_get(store, "configmaps", "default", "c", &json, NULL));
	free(json);
	CHECK_INT(apply(store, STORE_REPLACE, "secrets", "default", "s", "new", 0, NULL, &err), ==, -EBADMSG);
	CHECK_INT(store_pending(store), ==, 0);
	store_close(store);

	/* Without any key: secrets cannot be written. */
	store = open_with(path, NULL, 0, false);
	CHECK_INT(apply(store, STORE_CREATE, "secrets", "default", "t", "v", 0, NULL, &err), ==, -ENOKEY);
	store_close(store);
}

struct file_state {
	bool exists;
	off_t size;
	struct timespec mtime;
	uint64_t checksum;
};

static struct file_state file_state(const char *path)
{
	struct file_state state = { 0 };
	struct stat st;
	if (stat(path, &st) < 0)
		return state;
	state.exists = true;
	state.size = st.st_size;
	state.mtime = st.st_mtim;
	char *data = NULL;
	size_t size = 0;
	CHECK_OK(file_read(path, 64 << 20, &data, &size, NULL));
	for (size_t i = 0; i < size; i++)
		state.checksum = state.checksum * 1099511628211u + (uint8_t)data[i];
	free(data);
	return state;
}

static void check_unchanged(const struct file_state *before, const struct file_state *after)
{
	CHECK_INT(before->exists, ==, after->exists);
	CHECK_INT(before->size, ==, after->size);
	CHECK_INT(before->mtime.tv_sec, ==, after->mtime.tv_sec);
	CHECK_INT(before->mtime.tv_nsec, ==, after->mtime.tv_nsec);
	CHECK(before->checksum == after->checksum);
}

static int count_only(const char *json, size_t length, void *data)
{
	(*(int *)data)++;
	return 0;
}

static void ignore_change(const struct store_change *change, void *data)
{
}

TEST(an_idle_store_writes_nothing)
{
	cleanup_free char *path = db_path();
	cleanup_free char *wal = xasprintf("%s-wal", path);
	struct store *store = open_with(path, key_a, 0, true);
	for (int i = 0; i < 50; i++) {
		char name[16];
		snprintf(name, sizeof(name), "pod-%d", i);
		create(store, i % 5 ? "pods" : "secrets", "default", name, "x");
	}
	commit(store);
	CHECK_OK(apply(store, STORE_REPLACE, "pods", "default", "pod-1", "y", 0, NULL, NULL));
	commit(store);
	/* The -shm file is left out: it is the WAL index, mmap'ed shared memory, and the
	 * first read after a commit may update a read mark in it. It is not the data on the
	 * card; the .db and -wal files are, and reads must not touch them. */
	struct file_state db_before = file_state(path), wal_before = file_state(wal);
	CHECK(wal_before.exists);
	struct timespec pause = { 0, 20 * 1000 * 1000 }; /* longer than the mtime granularity */
	nanosleep(&pause, NULL);
	for (int round = 0; round < 3; round++) {
		char *json = NULL;
		CHECK_OK(store_get(store, "pods", "default", "pod-1", &json, NULL));
		free(json);
		CHECK_OK(store_get(store, "secrets", "default", "pod-5", &json, NULL));
		free(json);
		CHECK_INT(store_get(store, "pods", "default", "absent", &json, NULL), ==, -ENOENT);
		int count = 0;
		CHECK_OK(store_list(store, "pods", NULL, NULL, 0, count_only, &count, NULL, NULL));
		CHECK_INT(count, ==, 40);
		CHECK_OK(store_changes_since(store, NULL, 0, ignore_change, NULL, NULL));
		CHECK_OK(store_commit(store, NULL)); /* nothing pending: no write either */
		nanosleep(&pause, NULL);
	}
	struct file_state db_after = file_state(path), wal_after = file_state(wal);
	check_unchanged(&db_before, &db_after);
	check_unchanged(&wal_before, &wal_after);
	store_close(store);
}

static char *integrity_check(const char *path)
{
	sqlite3 *db = NULL;
	CHECK_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
	sqlite3_stmt *stmt = NULL;
	CHECK_INT(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, NULL), ==, SQLITE_OK);
	CHECK_INT(sqlite3_step(stmt), ==, SQLITE_ROW);
	char *result = xstrdup((const char *)sqlite3_column_text(stmt, 0));
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return result;
}

TEST(acknowledged_commits_survive_kill_9)
{
	cleanup_free char *path = db_path();
	int pipe_fds[2];
	CHECK_OK(pipe(pipe_fds));
	pid_t child = fork();
	CHECK_OK(child);
	if (child == 0) {
		close(pipe_fds[0]);
		struct store *store = open_with(path, key_a, 100, true);
		for (uint32_t i = 0;; i++) {
			char name[32];
			snprintf(name, sizeof(name), "pod-%u", i);
			create(store, i % 3 ? "pods" : "secrets", "default", name, "payload-payload-payload");
			if (store_commit(store, NULL) < 0)
				_exit(2);
			uint32_t acknowledged = i + 1;
			if (write(pipe_fds[1], &acknowledged, sizeof(acknowledged)) != sizeof(acknowledged))
				_exit(3);
		}
	}
	close(pipe_fds[1]);
	uint32_t acknowledged = 0, value;
	while (acknowledged < 300 && read(pipe_fds[0], &value, sizeof(value)) == sizeof(value))
		acknowledged = value;
	kill(child, SIGKILL);
	int status;
	CHECK_INT(waitpid(child, &status, 0), ==, child);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	/* What the child announced before it died was acknowledged too. */
	while (read(pipe_fds[0], &value, sizeof(value)) == sizeof(value))
		acknowledged = value;
	close(pipe_fds[0]);
	CHECK_INT(acknowledged, >=, 300);

	cleanup_free char *integrity = integrity_check(path);
	CHECK_STR(integrity, "ok");
	struct store *store = open_with(path, key_a, 100, true);
	CHECK_INT(store_revision(store), >=, acknowledged);
	for (uint32_t i = 0; i < acknowledged; i++) {
		char name[32], *json = NULL;
		snprintf(name, sizeof(name), "pod-%u", i);
		struct error err = { 0 };
		int r = store_get(store, i % 3 ? "pods" : "secrets", "default", name, &json, &err);
		if (r < 0)
			unit_fail(__FILE__, __LINE__, "acknowledged %s of %u lost: %s", name, acknowledged,
			          err.message);
		CHECK_STR(field_of(json, "resourceVersion"), (snprintf(name, sizeof(name), "%u", i + 1), name));
		free(json);
	}
	CHECK_INT(store_oldest_revision(store), ==, store_revision(store) - 99);
	create(store, "pods", "default", "after-the-crash", "x");
	commit(store);
	store_close(store);
	cleanup_free char *again = integrity_check(path);
	CHECK_STR(again, "ok");
}

static int open_error(const char *path, struct error *err)
{
	struct store_options options = { .path = path, .secret_key = key_a };
	struct store *store = (struct store *)0x1;
	int r = store_open(&options, &store, err);
	if (r == 0)
		store_close(store);
	else
		CHECK(store == (struct store *)0x1); /* untouched on failure */
	return r;
}

TEST(bad_paths_are_reported_with_the_path)
{
	struct error err = { 0 };
	cleanup_free char *missing = xasprintf("%s/no/such/dir/store.db", unit_temp_dir());
	CHECK_INT(open_error(missing, &err), ==, -ENOENT);
	CHECK_CONTAINS(err.message, missing);

	cleanup_free char *file = xasprintf("%s/plain-file", unit_temp_dir());
	CHECK_OK(file_write_atomic(file, "x", 1, 0644, NULL));
	cleanup_free char *under_file = xasprintf("%s/store.db", file);
	CHECK_INT(open_error(under_file, &err), <, 0);
	CHECK_CONTAINS(err.message, under_file);

	/* Not a database at all. */
	cleanup_free char *garbage = xasprintf("%s/garbage.db", unit_temp_dir());
	char junk[8192];
	memset(junk, 'J', sizeof(junk));
	CHECK_OK(file_write_atomic(garbage, junk, sizeof(junk), 0644, NULL));
	CHECK_INT(open_error(garbage, &err), ==, -EIO);
	CHECK_CONTAINS(err.message, garbage);
	CHECK_CONTAINS(err.message, "not a database");

	/* A real store whose schema page was overwritten. */
	cleanup_free char *path = db_path();
	struct store *store = open_with(path, key_a, 0, false);
	create(store, "pods", "default", "a", "1");
	commit(store);
	store_close(store);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	CHECK_OK(fd);
	CHECK_INT(pwrite(fd, junk, 4096 - 100, 100), ==, 4096 - 100);
	close(fd);
	CHECK_INT(open_error(path, &err), ==, -EIO);
	CHECK_CONTAINS(err.message, path);
	CHECK_CONTAINS(err.message, "malformed");

	/* A directory where nothing can be created (as root too: /proc takes no files). */
	const char *read_only = "/proc/bramble-store-test.db";
	CHECK_INT(open_error(read_only, &err), <, 0);
	CHECK_CONTAINS(err.message, read_only);
	if (geteuid() != 0) {
		cleanup_free char *dir = xasprintf("%s/ro", unit_temp_dir());
		CHECK_OK(mkdir(dir, 0555));
		cleanup_free char *inside = xasprintf("%s/store.db", dir);
		CHECK_INT(open_error(inside, &err), ==, -EACCES);
		CHECK_CONTAINS(err.message, inside);
	}

	CHECK_INT(open_error("", &err), ==, -EINVAL);
}
