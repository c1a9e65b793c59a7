/* The pod cache: one SQLite file, <data-dir>/podcache.db.
 *
 * Schema (version PODCACHE_SCHEMA_VERSION, made on first open):
 *
 *   pods (uid) -> body            the pod as last seen from the API, stripped (below)
 *   configs (kind, namespace, name) -> body
 *                                 kind 0: a ConfigMap (JSON text); 1: a Secret, encrypted
 *   meta (key) -> value           'schema', 'revision' (of the pod watch)
 *
 * Invariants:
 *   - Nothing is written unless what is stored changes: a pod is stored without
 *     metadata.resourceVersion, metadata.managedFields and its status (only status.phase is
 *     kept, so a finished pod is not run again at boot), so the status writes the kubelet
 *     itself makes, and the heartbeat traffic, cost no SD card write. An idle board writes
 *     nothing.
 *   - The revision is written only together with another change of the batch (or when the
 *     caller insists, at a clean shutdown). The stored revision is therefore never newer
 *     than the state stored with it: resuming a watch from it replays a few events too many,
 *     never too few. Changes of a batch commit together (one transaction).
 *   - A Secret's plaintext never reaches the file: "BPC1" + 12-byte random nonce +
 *     AES-256-GCM ciphertext + 16-byte tag, with "namespace/name" as associated data (a
 *     ciphertext cannot be moved to another name). The key is HKDF-SHA256 (RFC 5869) of the
 *     node's credential key, salt "bramble-podcache-v1", info "secrets:<node name>": a
 *     board whose credential is replaced cannot read its old Secrets (they are then treated
 *     as missing until fetched again), and the file alone reveals nothing.
 *   - ConfigMaps and Secrets no cached pod uses are deleted with the last pod using them.
 *
 * Batches:  IDLE --podcache_begin (BEGIN)--> OPEN --put/delete--> OPEN
 *           OPEN --podcache_commit--> IDLE (COMMIT; a batch that wrote nothing touched no page)
 */
#include "agent/podcache.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <mbedtls/gcm.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <sqlite3.h>

#include "agent/podspec.h"
#include "core/object.h"
#include "platform/error.h"
#include "platform/log.h"
#include "platform/memory.h"

#define PODCACHE_SCHEMA_VERSION "1"
#define SEALED_MAGIC "BPC1"
#define SEALED_MAGIC_SIZE 4
#define SEALED_NONCE_SIZE 12
#define SEALED_TAG_SIZE 16
#define SEALED_OVERHEAD (SEALED_MAGIC_SIZE + SEALED_NONCE_SIZE + SEALED_TAG_SIZE)
#define PODCACHE_KEY_SIZE 32

struct podcache {
	char *path;
	sqlite3 *db;
	mbedtls_gcm_context gcm;
	bool in_batch;
	bool batch_changed;
	bool batch_deleted_pod;
	uint64_t commits;
};

static const char schema_sql[] =
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE IF NOT EXISTS pods (uid TEXT PRIMARY KEY, body TEXT NOT NULL);"
        "CREATE TABLE IF NOT EXISTS configs (kind INTEGER NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,"
        " body BLOB NOT NULL, PRIMARY KEY (kind, namespace, name));"
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', '" PODCACHE_SCHEMA_VERSION "');";

static int sql_error(struct podcache *c, int rc, struct error *err, const char *what)
{
	int code = (rc & 0xff) == SQLITE_FULL                                     ? ENOSPC
	           : (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED   ? EBUSY
	           : (rc & 0xff) == SQLITE_READONLY || (rc & 0xff) == SQLITE_PERM ? EACCES
	           : (rc & 0xff) == SQLITE_CANTOPEN                               ? ENOENT
	                                                                          : EIO;
	return error_set(err, code, "pod cache %s: %s: %s%s", c->path, what,
	                 c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc),
	                 code == EBUSY ? " (is another agent running with this data directory?)" : "");
}

uint64_t podcache_commits(const struct podcache *cache)
{
	return cache->commits;
}

/* --- secrets ----------------------------------------------------------------------------- */

static int derive_key(struct podcache *c, const struct podcache_options *options, struct error *err)
{
	static const char salt[] = "bramble-podcache-v1";
	cleanup_free char *info = xasprintf("secrets:%s", options->node_name ? options->node_name : "");
	unsigned char key[PODCACHE_KEY_SIZE];
	int r = mbedtls_hkdf(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), (const unsigned char *)salt,
	                     sizeof(salt) - 1, options->key_material, options->key_material_length,
	                     (const unsigned char *)info, strlen(info), key, sizeof(key));
	if (r == 0)
		r = mbedtls_gcm_setkey(&c->gcm, MBEDTLS_CIPHER_ID_AES, key, PODCACHE_KEY_SIZE * 8);
	explicit_bzero(key, sizeof(key));
	if (r != 0)
		return error_set(err, EINVAL, "pod cache %s: cannot derive the secrets key (mbedTLS -0x%04x)", c->path,
		                 (unsigned)-r);
	return 0;
}

static int seal(struct podcache *c, const char *ad, const char *text, unsigned char **ret_blob, size_t *ret_size,
                struct error *err)
{
	size_t length = strlen(text);
	unsigned char *blob = xmalloc(length + SEALED_OVERHEAD);
	memcpy(blob, SEALED_MAGIC, SEALED_MAGIC_SIZE);
	unsigned char *nonce = blob + SEALED_MAGIC_SIZE;
	if (getrandom(nonce, SEALED_NONCE_SIZE, 0) != SEALED_NONCE_SIZE) {
		free(blob);
		return error_set_errno(err, errno, "pod cache: no randomness for a nonce");
	}
	int r = mbedtls_gcm_crypt_and_tag(&c->gcm, MBEDTLS_GCM_ENCRYPT, length, nonce, SEALED_NONCE_SIZE,
	                                  (const unsigned char *)ad, strlen(ad), (const unsigned char *)text,
	                                  nonce + SEALED_NONCE_SIZE, SEALED_TAG_SIZE,
	                                  nonce + SEALED_NONCE_SIZE + length);
	if (r != 0) {
		free(blob);
		return error_set(err, EIO, "pod cache: cannot encrypt secret %s (mbedTLS -0x%04x)", ad, (unsigned)-r);
	}
	*ret_blob = blob;
	*ret_size = length + SEALED_OVERHEAD;
	return 0;
}

static int unseal(struct podcache *c, const char *ad, const unsigned char *blob, size_t size, char **ret_text,
                  struct error *err)
{
	if (size < SEALED_OVERHEAD || memcmp(blob, SEALED_MAGIC, SEALED_MAGIC_SIZE) != 0)
		return error_set(err, EINVAL, "pod cache: secret %s is not an encrypted value", ad);
	size_t length = size - SEALED_OVERHEAD;
	const unsigned char *nonce = blob + SEALED_MAGIC_SIZE;
	char *text = xmalloc(length + 1);
	int r = mbedtls_gcm_auth_decrypt(&c->gcm, length, nonce, SEALED_NONCE_SIZE, (const unsigned char *)ad,
	                                 strlen(ad), nonce + SEALED_NONCE_SIZE + length, SEALED_TAG_SIZE,
	                                 nonce + SEALED_NONCE_SIZE, (unsigned char *)text);
	if (r != 0) {
		explicit_bzero(text, length + 1);
		free(text);
		return error_set(err, EACCES, "pod cache: secret %s does not decrypt (the node's credential changed?)",
		                 ad);
	}
	text[length] = '\0';
	*ret_text = text;
	return 0;
}

static void free_secret_text(char *text)
{
	if (text) {
		explicit_bzero(text, strlen(text));
		free(text);
	}
}

/* --- open / close ------------------------------------------------------------------------ */

int podcache_open(const struct podcache_options *options, struct podcache **ret_cache, struct error *err)
{
	struct podcache *c = xcalloc(1, sizeof(*c));
	c->path = xstrdup(options->path);
	mbedtls_gcm_init(&c->gcm);
	int r = derive_key(c, options, err);
	if (r < 0)
		goto fail;
	int rc = sqlite3_open_v2(options->path, &c->db,
	                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		r = sql_error(c, rc, err, "cannot open");
		goto fail;
	}
	sqlite3_extended_result_codes(c->db, 1);
	/* No lookaside buffer (~120 KiB a connection): the cache is touched a few times a minute. */
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_LOOKASIDE, NULL, 0, 0);
	/* WAL with synchronous NORMAL: a commit appends to the log, no fsync of the database per
	 * change; a power cut loses at most the last changes, which the control plane has.
	 * Exclusive locking, set first: the WAL index lives in memory, not in a -shm file whose
	 * pages reading transactions would dirty (no disk writes at idle); one agent per file. */
	rc = sqlite3_exec(c->db,
	                  "PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
	                  " PRAGMA cache_size = -64;",
	                  NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		r = sql_error(c, rc, err, "not a database");
		goto fail;
	}
	/* Create the schema only when missing, so opening an existing cache writes nothing. */
	sqlite3_stmt *stmt = NULL;
	rc = sqlite3_prepare_v2(c->db, "SELECT value FROM meta WHERE key = 'schema'", -1, &stmt, NULL);
	bool have_schema = rc == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW;
	char version[16] = "";
	if (have_schema)
		snprintf(version, sizeof(version), "%s", (const char *)sqlite3_column_text(stmt, 0));
	sqlite3_finalize(stmt);
	if (!have_schema) {
		rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(c->db, schema_sql, NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			r = sql_error(c, rc, err, "cannot create the schema");
			goto fail;
		}
	} else if (strcmp(version, PODCACHE_SCHEMA_VERSION) != 0) {
		r = error_set(err, EPROTO,
		              "pod cache %s has schema version %s, this Bramble knows %s (remove the file)", c->path,
		              version, PODCACHE_SCHEMA_VERSION);
		goto fail;
	}
	sqlite3_db_release_memory(c->db);
	*ret_cache = c;
	return 0;
fail:
	podcache_close(c);
	return r;
}

void podcache_close(struct podcache *c)
{
	if (!c)
		return;
	if (c->in_batch)
		podcache_commit(c, NULL, false, NULL);
	sqlite3_close_v2(c->db);
	mbedtls_gcm_free(&c->gcm);
	free(c->path);
	free(c);
}

/* --- batches ------------------------------------------------------------------------------ */

int podcache_begin(struct podcache *c, struct error *err)
{
	if (c->in_batch)
		return 0;
	int rc = sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sql_error(c, rc, err, "begin");
	c->in_batch = true;
	c->batch_changed = c->batch_deleted_pod = false;
	return 0;
}

static int exec_bound(struct podcache *c, const char *sql, const char *a, const char *b, struct error *err)
{
	sqlite3_stmt *stmt;
	int rc = sqlite3_prepare_v2(c->db, sql, -1, &stmt, NULL);
	if (rc == SQLITE_OK) {
		if (a)
			sqlite3_bind_text(stmt, 1, a, -1, SQLITE_STATIC);
		if (b)
			sqlite3_bind_text(stmt, 2, b, -1, SQLITE_STATIC);
		rc = sqlite3_step(stmt);
		sqlite3_finalize(stmt);
	}
	if (rc != SQLITE_DONE && rc != SQLITE_OK)
		return sql_error(c, rc, err, "write");
	return 0;
}

static int collect_garbage(struct podcache *c, struct error *err);

int podcache_commit(struct podcache *c, const char *revision, bool always, struct error *err)
{
	if (!c->in_batch)
		return 0;
	int r = 0;
	if (c->batch_deleted_pod)
		r = collect_garbage(c, err);
	if (r == 0 && revision && revision[0] && (c->batch_changed || always)) {
		/* Only when it differs: a clean shutdown at the stored revision writes nothing. */
		sqlite3_stmt *stmt;
		bool same = false;
		if (sqlite3_prepare_v2(c->db, "SELECT value FROM meta WHERE key = 'revision'", -1, &stmt, NULL) ==
		    SQLITE_OK) {
			same = sqlite3_step(stmt) == SQLITE_ROW &&
			       strcmp((const char *)sqlite3_column_text(stmt, 0), revision) == 0;
			sqlite3_finalize(stmt);
		}
		if (!same) {
			r = exec_bound(c, "INSERT OR REPLACE INTO meta (key, value) VALUES ('revision', ?1)", revision,
			               NULL, err);
			c->batch_changed = true;
		}
	}
	c->in_batch = false;
	int rc = sqlite3_exec(c->db, r == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
	if (r == 0 && rc != SQLITE_OK) {
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		return sql_error(c, rc, err, "commit");
	}
	if (r == 0 && c->batch_changed)
		c->commits++;
	sqlite3_db_release_memory(c->db); /* the agent's RSS budget: pages are re-read when needed */
	return r;
}

/* Runs one change inside the open batch, or in a batch of its own. */
#define IN_BATCH(c, err, body)                                                                                         \
	({                                                                                                             \
		bool own_ = !(c)->in_batch;                                                                            \
		int r_ = own_ ? podcache_begin((c), (err)) : 0;                                                        \
		if (r_ == 0)                                                                                           \
			r_ = (body);                                                                                   \
		if (own_ && (c)->in_batch) {                                                                           \
			int rc_ = podcache_commit((c), NULL, false, r_ < 0 ? NULL : (err));                            \
			if (r_ >= 0 && rc_ < 0)                                                                        \
				r_ = rc_;                                                                              \
		}                                                                                                      \
		r_;                                                                                                    \
	})

/* --- pods ---------------------------------------------------------------------------------- */

/* The pod as cached: no resourceVersion, managedFields or status beyond its phase. */
static char *stripped_text(const cJSON *pod)
{
	cJSON *copy = cJSON_Duplicate(pod, 1);
	cJSON *metadata = cJSON_GetObjectItemCaseSensitive(copy, "metadata");
	cJSON_DeleteItemFromObjectCaseSensitive(metadata, "resourceVersion");
	cJSON_DeleteItemFromObjectCaseSensitive(metadata, "managedFields");
	cJSON *status = cJSON_DetachItemFromObjectCaseSensitive(copy, "status");
	const char *phase = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(status, "phase"));
	if (phase)
		cJSON_AddStringToObject(cJSON_AddObjectToObject(copy, "status"), "phase", phase);
	cJSON_Delete(status);
	char *text = cJSON_PrintUnformatted(copy);
	cJSON_Delete(copy);
	return text;
}

/* 1 when the row's body equals the bytes given. */
static int row_equals(struct podcache *c, const char *sql, int kind, const char *a, const char *b, const void *body,
                      size_t size, bool *ret_equal, struct error *err)
{
	sqlite3_stmt *stmt;
	int rc = sqlite3_prepare_v2(c->db, sql, -1, &stmt, NULL);
	if (rc != SQLITE_OK)
		return sql_error(c, rc, err, "read");
	int n = 1;
	if (kind >= 0)
		sqlite3_bind_int(stmt, n++, kind);
	sqlite3_bind_text(stmt, n++, a, -1, SQLITE_STATIC);
	if (b)
		sqlite3_bind_text(stmt, n, b, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	*ret_equal = rc == SQLITE_ROW && (size_t)sqlite3_column_bytes(stmt, 0) == size &&
	             memcmp(sqlite3_column_blob(stmt, 0), body, size) == 0;
	sqlite3_finalize(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sql_error(c, rc, err, "read");
	return 0;
}

static int pod_put(struct podcache *c, const cJSON *pod, struct error *err)
{
	const char *uid = object_string_at(pod, "metadata.uid");
	if (!uid)
		return error_set(err, EINVAL, "pod cache: a pod without metadata.uid");
	cleanup_free char *text = stripped_text(pod);
	bool equal;
	int r = row_equals(c, "SELECT body FROM pods WHERE uid = ?1", -1, uid, NULL, text, strlen(text), &equal, err);
	if (r < 0 || equal)
		return r;
	if ((r = exec_bound(c, "INSERT OR REPLACE INTO pods (uid, body) VALUES (?1, ?2)", uid, text, err)) < 0)
		return r;
	c->batch_changed = true;
	return 1;
}

int podcache_pod_put(struct podcache *c, const cJSON *pod, struct error *err)
{
	return IN_BATCH(c, err, pod_put(c, pod, err));
}

static int pod_delete(struct podcache *c, const char *uid, struct error *err)
{
	int r = exec_bound(c, "DELETE FROM pods WHERE uid = ?1", uid, NULL, err);
	if (r == 0 && sqlite3_changes(c->db) > 0) {
		c->batch_changed = true;
		c->batch_deleted_pod = true;
	}
	return r;
}

int podcache_pod_delete(struct podcache *c, const char *uid, struct error *err)
{
	return IN_BATCH(c, err, pod_delete(c, uid, err));
}

/* Calls fn for each cached pod (parsed), until fn returns non-zero. */
static int each_pod(struct podcache *c, int (*fn)(cJSON *pod, void *data), void *data, struct error *err)
{
	sqlite3_stmt *stmt;
	int rc = sqlite3_prepare_v2(c->db, "SELECT uid, body FROM pods ORDER BY rowid", -1, &stmt, NULL);
	if (rc != SQLITE_OK)
		return sql_error(c, rc, err, "read");
	int n = 0, r = 0;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && n++ < PODCACHE_MAX_PODS) {
		cJSON *pod = cJSON_ParseWithLength((const char *)sqlite3_column_text(stmt, 1),
		                                   (size_t)sqlite3_column_bytes(stmt, 1));
		if (!pod) {
			log_warnx("pod cache %s: pod %s is not JSON; ignored", c->path,
			          (const char *)sqlite3_column_text(stmt, 0));
			continue;
		}
		r = fn(pod, data);
		if (r != 0)
			break;
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sql_error(c, rc, err, "read");
	return r < 0 ? r : 0;
}

/* --- ConfigMaps and Secrets ------------------------------------------------------------------ */

static char *associated_data(const cJSON *object)
{
	const char *ns = object_namespace(object);
	return xasprintf("%s/%s", ns ? ns : "default", object_name(object) ? object_name(object) : "");
}

static int config_put(struct podcache *c, bool secret, const cJSON *object, struct error *err)
{
	const char *name = object_name(object);
	const char *ns = object_namespace(object) ? object_namespace(object) : "default";
	if (!name)
		return error_set(err, EINVAL, "pod cache: a %s without a name", secret ? "Secret" : "ConfigMap");
	cJSON *copy = cJSON_Duplicate(object, 1);
	cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(copy, "metadata"), "managedFields");
	char *text = cJSON_PrintUnformatted(copy);
	cJSON_Delete(copy);
	cleanup_free char *ad = associated_data(object);
	int r = 0;
	bool equal = false;
	sqlite3_stmt *stmt;
	int rc = sqlite3_prepare_v2(c->db, "SELECT body FROM configs WHERE kind = ?1 AND namespace = ?2 AND name = ?3",
	                            -1, &stmt, NULL);
	if (rc != SQLITE_OK) {
		r = sql_error(c, rc, err, "read");
		goto out;
	}
	sqlite3_bind_int(stmt, 1, secret);
	sqlite3_bind_text(stmt, 2, ns, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, name, -1, SQLITE_STATIC);
	if (sqlite3_step(stmt) == SQLITE_ROW) {
		const void *blob = sqlite3_column_blob(stmt, 0);
		size_t size = (size_t)sqlite3_column_bytes(stmt, 0);
		if (!secret) {
			equal = size == strlen(text) && memcmp(blob, text, size) == 0;
		} else {
			char *old = NULL;
			if (unseal(c, ad, blob, size, &old, NULL) == 0)
				equal = strcmp(old, text) == 0;
			free_secret_text(old);
		}
	}
	sqlite3_finalize(stmt);
	if (equal)
		goto out;
	unsigned char *body = (unsigned char *)text;
	size_t size = strlen(text);
	unsigned char *sealed = NULL;
	if (secret) {
		if ((r = seal(c, ad, text, &sealed, &size, err)) < 0)
			goto out;
		body = sealed;
	}
	rc = sqlite3_prepare_v2(c->db,
	                        "INSERT OR REPLACE INTO configs (kind, namespace, name, body) VALUES (?1, ?2, ?3, ?4)",
	                        -1, &stmt, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int(stmt, 1, secret);
		sqlite3_bind_text(stmt, 2, ns, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 3, name, -1, SQLITE_STATIC);
		sqlite3_bind_blob(stmt, 4, body, (int)size, SQLITE_STATIC);
		rc = sqlite3_step(stmt);
		sqlite3_finalize(stmt);
	}
	free(sealed);
	if (rc != SQLITE_DONE && rc != SQLITE_OK) {
		r = sql_error(c, rc, err, "write");
		goto out;
	}
	c->batch_changed = true;
	r = 1;
out:
	if (secret)
		explicit_bzero(text, strlen(text));
	free(text);
	return r;
}

int podcache_config_put(struct podcache *c, bool secret, const cJSON *object, struct error *err)
{
	return IN_BATCH(c, err, config_put(c, secret, object, err));
}

/* The object stored under (kind, namespace, name), decrypted; NULL when absent or unreadable. */
static cJSON *config_get(struct podcache *c, bool secret, const char *ns, const char *name)
{
	sqlite3_stmt *stmt;
	if (sqlite3_prepare_v2(c->db, "SELECT body FROM configs WHERE kind = ?1 AND namespace = ?2 AND name = ?3", -1,
	                       &stmt, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_int(stmt, 1, secret);
	sqlite3_bind_text(stmt, 2, ns, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, name, -1, SQLITE_STATIC);
	cJSON *object = NULL;
	if (sqlite3_step(stmt) == SQLITE_ROW) {
		const void *blob = sqlite3_column_blob(stmt, 0);
		size_t size = (size_t)sqlite3_column_bytes(stmt, 0);
		if (!secret) {
			object = cJSON_ParseWithLength(blob, size);
		} else {
			char *text = NULL;
			struct error err;
			cleanup_free char *ad = xasprintf("%s/%s", ns, name);
			if (unseal(c, ad, blob, size, &text, &err) == 0)
				object = cJSON_Parse(text);
			else
				log_warnx("%s", err.message);
			free_secret_text(text);
		}
	}
	sqlite3_finalize(stmt);
	return object;
}

cJSON *podcache_pod_config(struct podcache *c, const cJSON *pod)
{
	const char *ns = object_namespace(pod) ? object_namespace(pod) : "default";
	cJSON *config = cJSON_CreateObject();
	cJSON *maps = cJSON_AddObjectToObject(config, "configmaps");
	cJSON *secrets = cJSON_AddObjectToObject(config, "secrets");
	cJSON *refs = podspec_config_refs(pod);
	for (int secret = 0; secret < 2; secret++) {
		const cJSON *name;
		cJSON_ArrayForEach(name, cJSON_GetObjectItemCaseSensitive(refs, secret ? "secrets" : "configmaps"))
		{
			if (!cJSON_IsString(name) ||
			    cJSON_GetObjectItemCaseSensitive(secret ? secrets : maps, name->valuestring))
				continue;
			cJSON *object = config_get(c, secret, ns, name->valuestring);
			if (object)
				cJSON_AddItemToObject(secret ? secrets : maps, name->valuestring, object);
		}
	}
	cJSON_Delete(refs);
	return config;
}

/* Names ("kind/namespace/name") every cached pod uses, as keys of an object. */
static int add_refs(cJSON *pod, void *data)
{
	cJSON *used = data;
	const char *ns = object_namespace(pod) ? object_namespace(pod) : "default";
	cJSON *refs = podspec_config_refs(pod);
	for (int secret = 0; secret < 2; secret++) {
		const cJSON *name;
		cJSON_ArrayForEach(name, cJSON_GetObjectItemCaseSensitive(refs, secret ? "secrets" : "configmaps"))
		{
			if (!cJSON_IsString(name))
				continue;
			cleanup_free char *key = xasprintf("%d/%s/%s", secret, ns, name->valuestring);
			if (!cJSON_GetObjectItemCaseSensitive(used, key))
				cJSON_AddTrueToObject(used, key);
		}
	}
	cJSON_Delete(refs);
	cJSON_Delete(pod);
	return 0;
}

static int collect_garbage(struct podcache *c, struct error *err)
{
	cJSON *used = cJSON_CreateObject();
	int r = each_pod(c, add_refs, used, err);
	sqlite3_stmt *stmt = NULL;
	cJSON *doomed = cJSON_CreateArray();
	if (r == 0 &&
	    sqlite3_prepare_v2(c->db, "SELECT kind, namespace, name FROM configs", -1, &stmt, NULL) == SQLITE_OK) {
		while (sqlite3_step(stmt) == SQLITE_ROW) {
			cleanup_free char *key = xasprintf("%d/%s/%s", sqlite3_column_int(stmt, 0),
			                                   (const char *)sqlite3_column_text(stmt, 1),
			                                   (const char *)sqlite3_column_text(stmt, 2));
			if (!cJSON_GetObjectItemCaseSensitive(used, key))
				cJSON_AddItemToArray(doomed, cJSON_CreateString(key));
		}
		sqlite3_finalize(stmt);
	}
	const cJSON *key;
	cJSON_ArrayForEach(key, doomed)
	{
		char kind[2] = { key->valuestring[0], '\0' };
		const char *ns = key->valuestring + 2;
		const char *slash = strchr(ns, '/');
		cleanup_free char *namespace = xstrndup(ns, (size_t)(slash - ns));
		sqlite3_stmt *del;
		if (sqlite3_prepare_v2(c->db, "DELETE FROM configs WHERE kind = ?1 AND namespace = ?2 AND name = ?3",
		                       -1, &del, NULL) != SQLITE_OK)
			continue;
		sqlite3_bind_int(del, 1, kind[0] - '0');
		sqlite3_bind_text(del, 2, namespace, -1, SQLITE_STATIC);
		sqlite3_bind_text(del, 3, slash + 1, -1, SQLITE_STATIC);
		if (sqlite3_step(del) != SQLITE_DONE && r == 0)
			r = sql_error(c, sqlite3_errcode(c->db), err, "delete");
		sqlite3_finalize(del);
	}
	cJSON_Delete(doomed);
	cJSON_Delete(used);
	return r;
}

/* --- reading back ------------------------------------------------------------------------------- */

static int add_pod(cJSON *pod, void *data)
{
	cJSON_AddItemToArray(data, pod);
	return 0;
}

int podcache_load(struct podcache *c, cJSON **ret_pods, char ret_revision[PODCACHE_REVISION_MAX], struct error *err)
{
	cJSON *pods = cJSON_CreateArray();
	int r = each_pod(c, add_pod, pods, err);
	if (r < 0) {
		cJSON_Delete(pods);
		return r;
	}
	ret_revision[0] = '\0';
	sqlite3_stmt *stmt;
	if (sqlite3_prepare_v2(c->db, "SELECT value FROM meta WHERE key = 'revision'", -1, &stmt, NULL) == SQLITE_OK) {
		if (sqlite3_step(stmt) == SQLITE_ROW)
			snprintf(ret_revision, PODCACHE_REVISION_MAX, "%s", (const char *)sqlite3_column_text(stmt, 0));
		sqlite3_finalize(stmt);
	}
	*ret_pods = pods;
	return 0;
}
