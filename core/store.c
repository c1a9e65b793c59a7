/* The store: objects in SQLite (WAL), one global revision, a change log for watches.
 *
 * Schema (version STORE_SCHEMA_VERSION, created on first open):
 *
 *   objects (resource, namespace, name) UNIQUE -> revision, body
 *       The current state of every object. body is the JSON text, or for "secrets" an
 *       AES-256-GCM BLOB (see below). A rowid table with a unique index rather than a
 *       WITHOUT ROWID table: a pod is ~1.2 KB, more than a WITHOUT ROWID b-tree keeps in a
 *       4 KiB page (~1000 bytes), so every row would spill to an overflow page of its own
 *       (measured: 47 MB instead of 14 MB for 10,000 pods).
 *   changes revision INTEGER PRIMARY KEY -> resource, namespace, name, type, body
 *       One row per applied change (type: 0 added, 1 modified, 2 deleted), body as in
 *       objects (for a deletion: the last state, with the deletion's resourceVersion, as
 *       Kubernetes reports it). Appends go to the right edge of the b-tree.
 *   meta key -> value: 'schema', 'revision', 'compacted'
 *       'revision' and 'compacted' are written only by commits that compact the log: a
 *       commit that does not compact writes no extra page. On open the counters are the
 *       larger of meta and what the change log shows (max(revision), min(revision) - 1).
 *
 * Invariants:
 *   - store_apply() is the only writer; every change takes revision applied + 1 and gets a
 *     change-log row, so the log holds exactly revisions compacted+1 .. applied, gapless.
 *   - committed <= applied; they differ only while a transaction is open, by the number of
 *     pending changes. store_revision() reports committed; readers of the log never see
 *     revisions above committed (the open transaction is visible to this connection).
 *   - The change hook runs only for committed changes, after COMMIT returned, in order.
 *   - Nothing but a commit writes: no timers, no checkpoints of our own (SQLite's
 *     auto-checkpoint runs inside a commit), so an idle store leaves the disk alone.
 *   - Plaintext of a secret never reaches the database file or the WAL.
 *   - No object is cached in memory: reads go to SQLite, whose page cache is bounded by
 *     cache_kib; pending changes are held only until the next commit.
 *
 * Transaction states:
 *
 *     IDLE --store_apply (BEGIN IMMEDIATE)--> OPEN --store_apply--> OPEN (one more pending)
 *     OPEN --store_commit: COMMIT ok--> IDLE, then the hook runs for each pending change
 *     OPEN --store_commit: COMMIT fails--> ROLLBACK, applied = committed --> IDLE (error)
 *     OPEN --SQLite rolls back by itself (I/O error, disk full)--> LOST
 *     LOST --store_commit--> ROLLBACK of anything applied since --> IDLE (error: the group's
 *          writers must not be acknowledged)
 *     OPEN --store_close--> ROLLBACK (uncommitted changes vanish)
 *
 * Each store_apply runs inside a SAVEPOINT, so a change either lands whole (object row and
 * log row) or not at all, without disturbing the other changes of the group.
 *
 * Secrets at rest: "BSG1" + 12-byte random nonce + ciphertext + 16-byte GCM tag, with the
 * associated data "resource/namespace/name" so a ciphertext cannot be moved to another key.
 */
#include "core/store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/gcm.h>
#include <sqlite3.h>

#include "platform/error.h"
#include "platform/memory.h"

#define STORE_SCHEMA_VERSION 1
#define STORE_DEFAULT_CACHE_KIB 2048
#define STORE_RESOURCE_MAX 64
#define STORE_NAMESPACE_MAX 63
#define STORE_NAME_MAX 253

#define SECRET_MAGIC "BSG1"
#define SECRET_MAGIC_SIZE 4
#define SECRET_NONCE_SIZE 12
#define SECRET_TAG_SIZE 16
#define SECRET_OVERHEAD (SECRET_MAGIC_SIZE + SECRET_NONCE_SIZE + SECRET_TAG_SIZE)

enum statement {
	STMT_GET,
	STMT_LIST_ALL,
	STMT_LIST_NAMESPACE,
	STMT_UPSERT,
	STMT_DELETE,
	STMT_INSERT_CHANGE,
	STMT_CHANGES,
	STMT_COMPACT,
	STMT_META_SET,
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_SAVEPOINT,
	STMT_RELEASE,
	STMT_ROLLBACK_TO,
	STMT_COUNT
};

static const char *const statement_sql[STMT_COUNT] = {
	[STMT_GET] = "SELECT revision, body FROM objects WHERE resource = ?1 AND namespace = ?2 AND name = ?3",
	[STMT_LIST_ALL] =
	        "SELECT namespace, name, body FROM objects WHERE resource = ?1 AND (namespace, name) > (?2, ?3)"
	        " ORDER BY namespace, name LIMIT ?4",
	[STMT_LIST_NAMESPACE] = "SELECT namespace, name, body FROM objects WHERE resource = ?1 AND namespace = ?2"
	                        " AND name > ?3 ORDER BY name LIMIT ?4",
	[STMT_UPSERT] = "INSERT INTO objects (resource, namespace, name, revision, body) VALUES (?1, ?2, ?3, ?4, ?5)"
	                " ON CONFLICT (resource, namespace, name) DO UPDATE SET revision = excluded.revision,"
	                " body = excluded.body",
	[STMT_DELETE] = "DELETE FROM objects WHERE resource = ?1 AND namespace = ?2 AND name = ?3",
	[STMT_INSERT_CHANGE] = "INSERT INTO changes (revision, resource, namespace, name, type, body)"
	                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[STMT_CHANGES] = "SELECT revision, resource, namespace, name, type, body FROM changes"
	                 " WHERE revision > ?1 AND revision <= ?2 AND (?3 IS NULL OR resource = ?3) ORDER BY revision",
	[STMT_COMPACT] = "DELETE FROM changes WHERE revision <= ?1",
	[STMT_META_SET] = "INSERT INTO meta (key, value) VALUES (?1, ?2)"
	                  " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
	[STMT_BEGIN] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
	[STMT_SAVEPOINT] = "SAVEPOINT store_apply",
	[STMT_RELEASE] = "RELEASE store_apply",
	[STMT_ROLLBACK_TO] = "ROLLBACK TO store_apply",
};

static const char schema_sql[] =
        "CREATE TABLE IF NOT EXISTS objects ("
        " resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,"
        " revision INTEGER NOT NULL, body BLOB NOT NULL,"
        " UNIQUE (resource, namespace, name));"
        "CREATE TABLE IF NOT EXISTS changes ("
        " revision INTEGER PRIMARY KEY, resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,"
        " type INTEGER NOT NULL, body BLOB NOT NULL);"
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', 1), ('revision', 0), ('compacted', 0);";

struct pending_change {
	enum store_event type;
	uint64_t revision;
	char *resource, *namespace, *name;
	char *object;   /* plaintext JSON */
	char *previous; /* plaintext JSON or NULL */
};

struct store {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *statements[STMT_COUNT];
	uint64_t committed;        /* revision of the last committed change */
	uint64_t applied;          /* revision of the last applied change (== committed when idle) */
	uint64_t compacted;        /* the change log holds revisions compacted+1 .. committed */
	uint64_t change_log_limit; /* > 0 */
	bool in_transaction;
	bool listing; /* a store_list is stepping STMT_LIST_*: a nested one would reset it */
	bool replaying;
	struct error lost; /* LOST state: set when SQLite rolled the open transaction back */
	struct pending_change *pending;
	size_t pending_count, pending_capacity;
	store_change_fn hook;
	void *hook_data;
	/* Secrets: the GCM key schedule, and a random generator seeded on first use. */
	bool have_key;
	mbedtls_gcm_context gcm;
	bool rng_ready;
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context rng;
};

/* SQLite result codes as errno values: the OS error when SQLite saw one. */
static int errno_of(sqlite3 *db, int rc)
{
	switch (rc & 0xff) {
	case SQLITE_NOMEM:
		return ENOMEM;
	case SQLITE_FULL:
		return ENOSPC;
	case SQLITE_READONLY:
		return EROFS;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return EBUSY;
	case SQLITE_CONSTRAINT:
		return EEXIST;
	case SQLITE_CANTOPEN:
	case SQLITE_IOERR:
	case SQLITE_PERM:
		if (db && sqlite3_system_errno(db) > 0)
			return sqlite3_system_errno(db);
		return (rc & 0xff) == SQLITE_PERM ? EACCES : EIO;
	default:
		return EIO;
	}
}

/* Sets err to "<what>: <SQLite's message>" and returns the negative errno. */
static int sql_error(struct store *s, int rc, struct error *err, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static int sql_error(struct store *s, int rc, struct error *err, const char *fmt, ...)
{
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	const char *message = s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
	return error_set(err, errno_of(s->db, rc), "%s: %s", what, message);
}

/* Runs a cached statement that returns no rows. */
static int run(struct store *s, enum statement which)
{
	sqlite3_stmt *stmt = s->statements[which];
	int rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static bool is_secret(const char *resource)
{
	return strcmp(resource, "secrets") == 0;
}

static char *associated_data(const char *resource, const char *namespace, const char *name)
{
	return xasprintf("%s/%s/%s", resource, namespace, name);
}

static int seal_secret(struct store *s, const char *resource, const char *namespace, const char *name,
                       const char *plain, size_t length, uint8_t **ret_blob, size_t *ret_size, struct error *err)
{
	if (!s->have_key)
		return error_set(err, ENOKEY, "cannot store secrets/%s/%s: the store was opened without a secret key",
		                 namespace, name);
	if (!s->rng_ready) {
		static const char personalization[] = "bramble store nonces";
		mbedtls_entropy_init(&s->entropy);
		mbedtls_ctr_drbg_init(&s->rng);
		int r = mbedtls_ctr_drbg_seed(&s->rng, mbedtls_entropy_func, &s->entropy,
		                              (const unsigned char *)personalization, sizeof(personalization) - 1);
		if (r != 0) {
			mbedtls_ctr_drbg_free(&s->rng);
			mbedtls_entropy_free(&s->entropy);
			return error_set(err, EIO,
			                 "cannot seed the random generator for secret nonces (mbedTLS -0x%04x)",
			                 (unsigned)-r);
		}
		s->rng_ready = true;
	}
	size_t size = SECRET_OVERHEAD + length;
	uint8_t *blob = xmalloc(size);
	memcpy(blob, SECRET_MAGIC, SECRET_MAGIC_SIZE);
	uint8_t *nonce = blob + SECRET_MAGIC_SIZE, *cipher = nonce + SECRET_NONCE_SIZE, *tag = cipher + length;
	int r = mbedtls_ctr_drbg_random(&s->rng, nonce, SECRET_NONCE_SIZE);
	cleanup_free char *ad = associated_data(resource, namespace, name);
	if (r == 0)
		r = mbedtls_gcm_crypt_and_tag(&s->gcm, MBEDTLS_GCM_ENCRYPT, length, nonce, SECRET_NONCE_SIZE,
		                              (const unsigned char *)ad, strlen(ad), (const unsigned char *)plain,
		                              cipher, SECRET_TAG_SIZE, tag);
	if (r != 0) {
		free(blob);
		return error_set(err, EIO, "cannot encrypt secrets/%s/%s (mbedTLS -0x%04x)", namespace, name,
		                 (unsigned)-r);
	}
	*ret_blob = blob;
	*ret_size = size;
	return 0;
}

static int open_secret(struct store *s, const char *resource, const char *namespace, const char *name, const void *data,
                       size_t size, char **ret_plain, size_t *ret_length, struct error *err)
{
	if (!s->have_key)
		return error_set(err, ENOKEY, "cannot read secrets/%s/%s: the store was opened without a secret key",
		                 namespace, name);
	const uint8_t *blob = data;
	if (!blob || size < SECRET_OVERHEAD || memcmp(blob, SECRET_MAGIC, SECRET_MAGIC_SIZE) != 0)
		return error_set(err, EBADMSG,
		                 "cannot decrypt secrets/%s/%s: the stored value is not an encrypted secret", namespace,
		                 name);
	size_t length = size - SECRET_OVERHEAD;
	const uint8_t *nonce = blob + SECRET_MAGIC_SIZE, *cipher = nonce + SECRET_NONCE_SIZE, *tag = cipher + length;
	char *plain = xmalloc(length + 1);
	cleanup_free char *ad = associated_data(resource, namespace, name);
	int r = mbedtls_gcm_auth_decrypt(&s->gcm, length, nonce, SECRET_NONCE_SIZE, (const unsigned char *)ad,
	                                 strlen(ad), tag, SECRET_TAG_SIZE, cipher, (unsigned char *)plain);
	if (r != 0) {
		free(plain);
		return error_set(err, EBADMSG,
		                 "cannot decrypt secrets: wrong key in the data directory? (secrets/%s/%s in %s)",
		                 namespace, name, s->path);
	}
	plain[length] = '\0';
	*ret_plain = plain;
	if (ret_length)
		*ret_length = length;
	return 0;
}

/* The body in column `column` as plaintext: borrowed from SQLite (*ret_owned NULL, valid
 * until the statement moves) or, for a secret, decrypted into *ret_owned. */
static int column_body(struct store *s, sqlite3_stmt *stmt, int column, const char *resource, const char *namespace,
                       const char *name, const char **ret_text, size_t *ret_length, char **ret_owned, struct error *err)
{
	*ret_owned = NULL;
	if (is_secret(resource)) {
		const void *blob = sqlite3_column_blob(stmt, column);
		size_t size = (size_t)sqlite3_column_bytes(stmt, column);
		int r = open_secret(s, resource, namespace, name, blob, size, ret_owned, ret_length, err);
		if (r < 0)
			return r;
		*ret_text = *ret_owned;
		return 0;
	}
	const char *text = (const char *)sqlite3_column_text(stmt, column);
	if (!text)
		return error_set(err, EIO, "reading %s/%s/%s from %s: %s", resource, namespace, name, s->path,
		                 sqlite3_errmsg(s->db));
	*ret_text = text;
	*ret_length = (size_t)sqlite3_column_bytes(stmt, column);
	return 0;
}

static int check_key(const char *resource, const char *namespace, const char *name, struct error *err)
{
	if (!resource || !resource[0] || strlen(resource) > STORE_RESOURCE_MAX || strchr(resource, '/'))
		return error_set(err, EINVAL, "invalid resource \"%.80s\": 1 to %d characters, no '/'",
		                 resource ? resource : "(null)", STORE_RESOURCE_MAX);
	/* No '/' in a namespace: it ends the namespace in a continue key. */
	if (!namespace || strlen(namespace) > STORE_NAMESPACE_MAX || strchr(namespace, '/'))
		return error_set(err, EINVAL, "invalid namespace \"%.80s\": at most %d characters, no '/'",
		                 namespace ? namespace : "(null)", STORE_NAMESPACE_MAX);
	if (name && (!name[0] || strlen(name) > STORE_NAME_MAX))
		return error_set(err, EINVAL, "invalid name \"%.80s\": 1 to %d characters", name, STORE_NAME_MAX);
	return 0;
}

static int read_meta(struct store *s, const char *key, uint64_t *ret_value, struct error *err)
{
	sqlite3_stmt *stmt;
	int rc = sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = ?1", -1, &stmt, NULL);
	if (rc != SQLITE_OK)
		return sql_error(s, rc, err, "reading the store %s", s->path);
	sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	*ret_value = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(stmt, 0) : 0;
	sqlite3_finalize(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sql_error(s, rc, err, "reading meta '%s' of the store %s", key, s->path);
	return 0;
}

static int read_number(struct store *s, const char *sql, uint64_t *ret_value, bool *ret_null, struct error *err)
{
	sqlite3_stmt *stmt;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL);
	if (rc != SQLITE_OK)
		return sql_error(s, rc, err, "reading the store %s", s->path);
	rc = sqlite3_step(stmt);
	*ret_null = rc != SQLITE_ROW || sqlite3_column_type(stmt, 0) == SQLITE_NULL;
	*ret_value = *ret_null ? 0 : (uint64_t)sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sql_error(s, rc, err, "reading the store %s", s->path);
	return 0;
}

static int setup(struct store *s, const struct store_options *options, struct error *err)
{
	/* The first statement reads the file: a file that is not a database fails here. */
	int rc = sqlite3_exec(s->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sql_error(s, rc, err, "cannot open the store %s", s->path);
	size_t cache_kib = options->cache_kib ? options->cache_kib : STORE_DEFAULT_CACHE_KIB;
	char pragmas[256];
	snprintf(pragmas, sizeof(pragmas),
	         "PRAGMA synchronous = %s; PRAGMA cache_size = -%zu; PRAGMA mmap_size = 0;"
	         " PRAGMA temp_store = MEMORY; PRAGMA foreign_keys = OFF;",
	         options->durable ? "FULL" : "NORMAL", cache_kib);
	rc = sqlite3_exec(s->db, pragmas, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sql_error(s, rc, err, "cannot configure the store %s", s->path);

	/* Create the schema only when it is missing, so opening an existing store writes nothing. */
	bool no_value;
	uint64_t tables;
	int r = read_number(s, "SELECT count(*) FROM sqlite_schema WHERE name IN ('objects', 'changes', 'meta')",
	                    &tables, &no_value, err);
	if (r < 0)
		return r;
	if (tables != 3) {
		rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(s->db, schema_sql, NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			r = sql_error(s, rc, err, "cannot create the schema of the store %s", s->path);
			if (!sqlite3_get_autocommit(s->db))
				sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			return r;
		}
	}
	uint64_t version, meta_revision, meta_compacted, last, first;
	bool empty;
	if ((r = read_meta(s, "schema", &version, err)) < 0 ||
	    (r = read_meta(s, "revision", &meta_revision, err)) < 0 ||
	    (r = read_meta(s, "compacted", &meta_compacted, err)) < 0)
		return r;
	if (version != STORE_SCHEMA_VERSION)
		return error_set(err, EPROTO,
		                 "the store %s has schema version %" PRIu64 ", this Bramble knows version %d", s->path,
		                 version, STORE_SCHEMA_VERSION);
	if ((r = read_number(s, "SELECT max(revision) FROM changes", &last, &empty, err)) < 0 ||
	    (r = read_number(s, "SELECT min(revision) FROM changes", &first, &empty, err)) < 0)
		return r;
	s->committed = last > meta_revision ? last : meta_revision;
	s->compacted = meta_compacted;
	if (!empty && first - 1 > s->compacted)
		s->compacted = first - 1;
	s->applied = s->committed;

	for (int i = 0; i < STMT_COUNT; i++) {
		rc = sqlite3_prepare_v3(s->db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->statements[i],
		                        NULL);
		if (rc != SQLITE_OK)
			return sql_error(s, rc, err, "preparing statement %d on the store %s", i, s->path);
	}
	return 0;
}

int store_open(const struct store_options *options, struct store **ret_store, struct error *err)
{
	if (!options || !options->path || !options->path[0])
		return error_set(err, EINVAL, "no store path given");
	struct store *s = xcalloc(1, sizeof(*s));
	s->path = xstrdup(options->path);
	s->change_log_limit = options->change_log_limit ? options->change_log_limit : STORE_DEFAULT_CHANGE_LOG_LIMIT;
	mbedtls_gcm_init(&s->gcm);
	if (options->secret_key) {
		int r = mbedtls_gcm_setkey(&s->gcm, MBEDTLS_CIPHER_ID_AES, options->secret_key,
		                           STORE_SECRET_KEY_SIZE * 8);
		if (r != 0) {
			store_close(s);
			return error_set(err, EINVAL, "cannot use the secret key for %s (mbedTLS -0x%04x)",
			                 options->path, (unsigned)-r);
		}
		s->have_key = true;
	}
	int rc = sqlite3_open_v2(options->path, &s->db,
	                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	int r;
	if (rc != SQLITE_OK) {
		r = sql_error(s, rc, err, "cannot open the store %s", options->path);
		store_close(s);
		return r;
	}
	sqlite3_extended_result_codes(s->db, 1);
	r = setup(s, options, err);
	/* SQLite opens a file it may not write read-only, silently: refuse it here rather
	 * than at the first write. */
	if (r == 0 && sqlite3_db_readonly(s->db, "main") == 1)
		r = error_set(err, EROFS, "cannot open the store %s: the file is read-only", options->path);
	if (r < 0) {
		store_close(s);
		return r;
	}
	*ret_store = s;
	return 0;
}

static void pending_free(struct pending_change *pending, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(pending[i].resource);
		free(pending[i].namespace);
		free(pending[i].name);
		free(pending[i].object);
		free(pending[i].previous);
	}
	free(pending);
}

/* Back to IDLE without committing: the pending changes and their revisions are gone. */
static void discard_transaction(struct store *s)
{
	pending_free(s->pending, s->pending_count);
	s->pending = NULL;
	s->pending_count = s->pending_capacity = 0;
	s->applied = s->committed;
	s->in_transaction = false;
}

/* After a failed statement: SQLite may have rolled the whole transaction back (I/O error,
 * disk full). Then the pending changes are lost and the next commit must say so. */
static void check_transaction_lost(struct store *s, size_t lost_before)
{
	if (!s->in_transaction || !sqlite3_get_autocommit(s->db))
		return;
	if (lost_before > 0)
		error_set(&s->lost, errno_of(s->db, sqlite3_extended_errcode(s->db)),
		          "%zu uncommitted changes to the store %s were lost: %s", lost_before, s->path,
		          sqlite3_errmsg(s->db));
	discard_transaction(s);
}

void store_close(struct store *store)
{
	if (!store)
		return;
	if (store->in_transaction && store->db && !sqlite3_get_autocommit(store->db))
		sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
	pending_free(store->pending, store->pending_count);
	for (int i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(store->statements[i]);
	sqlite3_close(store->db);
	mbedtls_gcm_free(&store->gcm); /* zeroes the key schedule */
	if (store->rng_ready) {
		mbedtls_ctr_drbg_free(&store->rng);
		mbedtls_entropy_free(&store->entropy);
	}
	free(store->path);
	free(store);
}

uint64_t store_revision(const struct store *store)
{
	return store->committed;
}

uint64_t store_oldest_revision(const struct store *store)
{
	return store->compacted + 1;
}

void store_set_change_hook(struct store *store, store_change_fn fn, void *data)
{
	store->hook = fn;
	store->hook_data = data;
}

size_t store_pending(const struct store *store)
{
	return store->pending_count;
}

/* The stored object at key: its revision and plaintext JSON; -ENOENT when absent. */
static int lookup(struct store *s, const char *resource, const char *namespace, const char *name,
                  uint64_t *ret_revision, char **ret_object, struct error *err)
{
	sqlite3_stmt *stmt = s->statements[STMT_GET];
	sqlite3_bind_text(stmt, 1, resource, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, namespace, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt), r;
	if (rc == SQLITE_DONE) {
		r = error_set(err, ENOENT, "%s \"%s\" not found%s%s", resource, name,
		              namespace[0] ? " in namespace " : "", namespace);
	} else if (rc != SQLITE_ROW) {
		r = sql_error(s, rc, err, "reading %s/%s/%s from %s", resource, namespace, name, s->path);
	} else {
		const char *text;
		size_t length;
		char *owned;
		r = column_body(s, stmt, 1, resource, namespace, name, &text, &length, &owned, err);
		if (r == 0) {
			if (ret_revision)
				*ret_revision = (uint64_t)sqlite3_column_int64(stmt, 0);
			*ret_object = owned ? owned : xstrndup(text, length);
		}
	}
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	return r;
}

int store_get(struct store *store, const char *resource, const char *namespace, const char *name, char **ret_object,
              struct error *err)
{
	int r = check_key(resource, namespace, name ? name : "", err);
	if (r < 0)
		return r;
	return lookup(store, resource, namespace, name, NULL, ret_object, err);
}

int store_list(struct store *store, const char *resource, const char *namespace, const char *continue_from,
               size_t limit, store_object_fn fn, void *data, char **ret_continue, struct error *err)
{
	int r = check_key(resource, namespace ? namespace : "", NULL, err);
	if (r < 0)
		return r;
	if (store->listing)
		return error_set(err, EBUSY, "listing %s: a listing callback may not list the store", resource);
	/* The continue key is "namespace/name" of the last object returned. */
	cleanup_free char *after_namespace = NULL, *last_name = NULL;
	const char *after_name = "";
	if (continue_from && continue_from[0]) {
		const char *slash = strchr(continue_from, '/');
		if (!slash || slash - continue_from > STORE_NAMESPACE_MAX || strlen(slash + 1) > STORE_NAME_MAX)
			return error_set(err, EINVAL,
			                 "invalid continue key \"%.80s\": expected one from a previous listing",
			                 continue_from);
		after_namespace = xstrndup(continue_from, (size_t)(slash - continue_from));
		after_name = slash + 1;
	}
	sqlite3_stmt *stmt;
	if (namespace) {
		stmt = store->statements[STMT_LIST_NAMESPACE];
		if (after_namespace) {
			int order = strcmp(after_namespace, namespace);
			if (order > 0) { /* resumes past this namespace: nothing left */
				if (ret_continue)
					*ret_continue = NULL;
				return 0;
			}
			if (order < 0)
				after_name = "";
		}
		sqlite3_bind_text(stmt, 2, namespace, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 3, after_name, -1, SQLITE_TRANSIENT);
	} else {
		/* Copied (TRANSIENT): the loop below replaces these strings while stepping. */
		stmt = store->statements[STMT_LIST_ALL];
		sqlite3_bind_text(stmt, 2, after_namespace ? after_namespace : "", -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(stmt, 3, after_name, -1, SQLITE_TRANSIENT);
	}
	sqlite3_bind_text(stmt, 1, resource, -1, SQLITE_STATIC);
	/* One row more than asked tells whether the listing is complete. */
	sqlite3_bind_int64(stmt, 4, limit ? (sqlite3_int64)limit + 1 : -1);
	store->listing = true;
	size_t count = 0;
	char *next = NULL;
	int rc;
	r = 0;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *row_namespace = (const char *)sqlite3_column_text(stmt, 0);
		const char *row_name = (const char *)sqlite3_column_text(stmt, 1);
		if (!row_namespace || !row_name) {
			r = sql_error(store, SQLITE_NOMEM, err, "listing %s", resource);
			break;
		}
		if (limit && count == limit) {
			next = xasprintf("%s/%s", after_namespace, after_name);
			break;
		}
		const char *text;
		size_t length;
		char *owned;
		r = column_body(store, stmt, 2, resource, row_namespace, row_name, &text, &length, &owned, err);
		if (r < 0)
			break;
		r = fn(text, length, data);
		free(owned);
		if (r < 0)
			break;
		r = 0;
		count++;
		/* Remember this row's key: the continue key if the next row is one too many. */
		free(after_namespace);
		after_namespace = xstrdup(row_namespace);
		free(last_name);
		last_name = xstrdup(row_name);
		after_name = last_name;
	}
	if (r == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = sql_error(store, rc, err, "listing %s in %s", resource, store->path);
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	store->listing = false;
	if (r < 0) {
		free(next);
		return r;
	}
	if (ret_continue)
		*ret_continue = next;
	else
		free(next);
	return 0;
}

static void pending_add(struct store *s, enum store_event type, uint64_t revision, const struct store_request *request,
                        char *object, char *previous)
{
	if (s->pending_count == s->pending_capacity) {
		s->pending_capacity = s->pending_capacity ? 2 * s->pending_capacity : 16;
		s->pending = xrealloc(s->pending, s->pending_capacity * sizeof(*s->pending));
	}
	s->pending[s->pending_count++] = (struct pending_change){
		.type = type,
		.revision = revision,
		.resource = xstrdup(request->resource),
		.namespace = xstrdup(request->namespace),
		.name = xstrdup(request->name),
		.object = object,
		.previous = previous,
	};
}

/* Writes metadata.resourceVersion = revision (a decimal string, as Kubernetes has it). */
static int set_resource_version(cJSON *object, uint64_t revision, struct error *err)
{
	cJSON *metadata = cJSON_GetObjectItemCaseSensitive(object, "metadata");
	if (!metadata)
		metadata = cJSON_AddObjectToObject(object, "metadata");
	else if (!cJSON_IsObject(metadata))
		return error_set_field(err, EINVAL, "metadata", "must be an object");
	char digits[24];
	snprintf(digits, sizeof(digits), "%" PRIu64, revision);
	cJSON *value = cJSON_CreateString(digits);
	if (!value)
		abort(); /* out of memory */
	if (cJSON_GetObjectItemCaseSensitive(metadata, "resourceVersion"))
		cJSON_ReplaceItemInObjectCaseSensitive(metadata, "resourceVersion", value);
	else
		cJSON_AddItemToObject(metadata, "resourceVersion", value);
	return 0;
}

static char *print_json(const cJSON *object)
{
	char *text = cJSON_PrintUnformatted(object);
	if (!text) {
		fprintf(stderr, "bramble: out of memory printing JSON\n");
		abort();
	}
	return text;
}

/* Binds body text (or, for a secret, its ciphertext) to parameter `index`. */
static int bind_body(struct store *s, sqlite3_stmt *stmt, int index, const struct store_request *request,
                     const char *text, uint8_t **ret_blob, struct error *err)
{
	*ret_blob = NULL;
	if (!is_secret(request->resource)) {
		sqlite3_bind_text(stmt, index, text, -1, SQLITE_STATIC);
		return 0;
	}
	size_t size = 0;
	int r = seal_secret(s, request->resource, request->namespace, request->name, text, strlen(text), ret_blob,
	                    &size, err);
	if (r < 0)
		return r;
	sqlite3_bind_blob(stmt, index, *ret_blob, (int)size, SQLITE_STATIC);
	return 0;
}

/* The object row and the log row of one change, inside the open transaction. */
static int write_change(struct store *s, const struct store_request *request, enum store_event type, uint64_t revision,
                        const char *text, struct error *err)
{
	cleanup_free uint8_t *object_blob = NULL, *change_blob = NULL;
	int rc = run(s, STMT_SAVEPOINT);
	if (rc != SQLITE_OK)
		return sql_error(s, rc, err, "starting a change in %s", s->path);
	sqlite3_stmt *stmt;
	int r = 0;
	if (type == STORE_DELETED) {
		stmt = s->statements[STMT_DELETE];
		sqlite3_bind_text(stmt, 1, request->resource, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 2, request->namespace, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 3, request->name, -1, SQLITE_STATIC);
	} else {
		stmt = s->statements[STMT_UPSERT];
		sqlite3_bind_text(stmt, 1, request->resource, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 2, request->namespace, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 3, request->name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 4, (sqlite3_int64)revision);
		r = bind_body(s, stmt, 5, request, text, &object_blob, err);
	}
	if (r == 0) {
		rc = sqlite3_step(stmt);
		if (rc != SQLITE_DONE)
			r = sql_error(s, rc, err, "writing %s/%s/%s to %s", request->resource, request->namespace,
			              request->name, s->path);
	}
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);

	if (r == 0) {
		/* A fresh nonce for the log row too: one nonce never encrypts two messages. */
		stmt = s->statements[STMT_INSERT_CHANGE];
		sqlite3_bind_int64(stmt, 1, (sqlite3_int64)revision);
		sqlite3_bind_text(stmt, 2, request->resource, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 3, request->namespace, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 4, request->name, -1, SQLITE_STATIC);
		sqlite3_bind_int(stmt, 5, (int)type);
		r = bind_body(s, stmt, 6, request, text, &change_blob, err);
		if (r == 0) {
			rc = sqlite3_step(stmt);
			if ((rc & 0xff) == SQLITE_CONSTRAINT)
				r = error_set(err, EBUSY,
				              "revision %" PRIu64 " is already in the change log of %s:"
				              " is another process writing this store?",
				              revision, s->path);
			else if (rc != SQLITE_DONE)
				r = sql_error(s, rc, err, "logging the change of %s/%s/%s in %s", request->resource,
				              request->namespace, request->name, s->path);
		}
		sqlite3_reset(stmt);
		sqlite3_clear_bindings(stmt);
	}
	if (r < 0 && !sqlite3_get_autocommit(s->db))
		run(s, STMT_ROLLBACK_TO);
	if (!sqlite3_get_autocommit(s->db)) {
		rc = run(s, STMT_RELEASE);
		if (rc != SQLITE_OK && r == 0)
			r = sql_error(s, rc, err, "finishing a change in %s", s->path);
	}
	return r;
}

static int check_request(const struct store_request *request, struct error *err)
{
	if (!request)
		return error_set(err, EINVAL, "no store request");
	int r = check_key(request->resource, request->namespace, request->name ? request->name : "", err);
	if (r < 0)
		return r;
	switch (request->op) {
	case STORE_CREATE:
	case STORE_REPLACE:
		if (!cJSON_IsObject(request->object))
			return error_set(err, EINVAL, "%s %s/%s: the object must be a JSON object", request->resource,
			                 request->namespace, request->name);
		return 0;
	case STORE_DELETE:
		return 0;
	}
	return error_set(err, EINVAL, "unknown store operation %d", (int)request->op);
}

int store_apply(struct store *store, const struct store_request *request, char **ret_object, uint64_t *ret_revision,
                struct error *err)
{
	int r = check_request(request, err);
	if (r < 0)
		return r;
	bool began = false;
	if (!store->in_transaction) {
		int rc = run(store, STMT_BEGIN);
		if (rc != SQLITE_OK)
			return sql_error(store, rc, err, "starting a transaction on %s", store->path);
		store->in_transaction = began = true;
	}
	size_t pending_before = store->pending_count;
	uint64_t stored_revision = 0;
	cleanup_free char *previous = NULL;
	r = lookup(store, request->resource, request->namespace, request->name, &stored_revision, &previous, err);
	bool exists = r == 0;
	if (r < 0 && r != -ENOENT)
		goto fail;
	r = 0;
	enum store_event type = request->op == STORE_CREATE    ? STORE_ADDED
	                        : request->op == STORE_REPLACE ? STORE_MODIFIED
	                                                       : STORE_DELETED;
	if (type == STORE_ADDED && exists) {
		r = error_set(err, EEXIST, "%s \"%s\" already exists%s%s", request->resource, request->name,
		              request->namespace[0] ? " in namespace " : "", request->namespace);
		goto fail;
	}
	if (type != STORE_ADDED && !exists) {
		r = error_set(err, ENOENT, "%s \"%s\" not found%s%s", request->resource, request->name,
		              request->namespace[0] ? " in namespace " : "", request->namespace);
		goto fail;
	}
	if (type != STORE_ADDED && request->expected_revision && request->expected_revision != stored_revision) {
		r = error_set(err, ESTALE,
		              "%s \"%s\" has been modified: resourceVersion %" PRIu64 " is not the current %" PRIu64,
		              request->resource, request->name, request->expected_revision, stored_revision);
		goto fail;
	}

	uint64_t revision = store->applied + 1;
	char *text;
	if (type == STORE_DELETED) {
		/* The last state, stamped with the deletion's revision (what Kubernetes' DELETED
		 * events carry, so a watcher resuming from it does not see the deletion twice). */
		cJSON *last = cJSON_Parse(previous);
		if (last && set_resource_version(last, revision, NULL) == 0)
			text = print_json(last);
		else
			text = xstrdup(previous);
		cJSON_Delete(last);
	} else {
		r = set_resource_version(request->object, revision, err);
		if (r < 0)
			goto fail;
		text = print_json(request->object);
	}
	r = write_change(store, request, type, revision, text, err);
	if (r < 0) {
		free(text);
		goto fail;
	}
	store->applied = revision;
	if (ret_object)
		*ret_object = xstrdup(text);
	if (ret_revision)
		*ret_revision = revision;
	pending_add(store, type, revision, request, text, exists ? steal_pointer(&previous) : NULL);
	return 0;

fail:
	if (began && store->pending_count == 0 && !sqlite3_get_autocommit(store->db)) {
		/* Nothing to keep: leave no empty transaction holding the write lock. */
		run(store, STMT_ROLLBACK);
		store->in_transaction = false;
	}
	check_transaction_lost(store, pending_before);
	return r;
}

/* Deletes the oldest log rows beyond the limit, in the open transaction. */
static int compact(struct store *s, uint64_t *ret_compacted, struct error *err)
{
	*ret_compacted = s->compacted;
	if (s->applied - s->compacted <= s->change_log_limit)
		return 0;
	uint64_t compacted = s->applied - s->change_log_limit;
	sqlite3_stmt *stmt = s->statements[STMT_COMPACT];
	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)compacted);
	int rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE)
		return sql_error(s, rc, err, "compacting the change log of %s", s->path);
	static const char *const keys[] = { "compacted", "revision" };
	uint64_t values[] = { compacted, s->applied };
	stmt = s->statements[STMT_META_SET];
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		sqlite3_bind_text(stmt, 1, keys[i], -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 2, (sqlite3_int64)values[i]);
		rc = sqlite3_step(stmt);
		sqlite3_reset(stmt);
		if (rc != SQLITE_DONE)
			return sql_error(s, rc, err, "recording the compaction of %s", s->path);
	}
	sqlite3_clear_bindings(stmt);
	*ret_compacted = compacted;
	return 0;
}

int store_commit(struct store *store, struct error *err)
{
	if (store->lost.code) {
		/* Changes of this group were lost: fail the whole group, including changes applied
		 * since, so no writer of the group is told its change is durable. */
		if (store->in_transaction && !sqlite3_get_autocommit(store->db))
			run(store, STMT_ROLLBACK);
		discard_transaction(store);
		int code = store->lost.code;
		if (err)
			*err = store->lost;
		error_clear(&store->lost);
		return -code;
	}
	if (!store->in_transaction)
		return 0;
	uint64_t compacted;
	int r = compact(store, &compacted, err);
	if (r == 0) {
		int rc = run(store, STMT_COMMIT);
		if (rc != SQLITE_OK)
			r = sql_error(store, rc, err, "committing %zu changes to %s", store->pending_count,
			              store->path);
	}
	if (r < 0) {
		if (!sqlite3_get_autocommit(store->db))
			run(store, STMT_ROLLBACK);
		discard_transaction(store);
		return r;
	}
	store->committed = store->applied;
	store->compacted = compacted;
	store->in_transaction = false;
	/* Detach the list first: a hook may apply new changes, which start the next group. */
	struct pending_change *pending = steal_pointer(&store->pending);
	size_t count = store->pending_count;
	store->pending_count = store->pending_capacity = 0;
	for (size_t i = 0; i < count && store->hook; i++) {
		const struct pending_change *p = &pending[i];
		struct store_change change = {
			.type = p->type,
			.revision = p->revision,
			.resource = p->resource,
			.namespace = p->namespace,
			.name = p->name,
			.object = p->object,
			.previous = p->previous,
		};
		store->hook(&change, store->hook_data);
	}
	pending_free(pending, count);
	return 0;
}

int store_changes_since(struct store *store, const char *resource, uint64_t after, store_change_fn fn, void *data,
                        struct error *err)
{
	if (resource) {
		int r = check_key(resource, "", NULL, err);
		if (r < 0)
			return r;
	}
	if (after < store->compacted)
		return error_set(err, ERANGE,
		                 "changes after revision %" PRIu64 " are no longer in the change log of %s"
		                 " (the oldest is %" PRIu64 "): re-list",
		                 after, store->path, store->compacted + 1);
	if (store->replaying)
		return error_set(err, EBUSY, "a change callback may not replay the change log");
	sqlite3_stmt *stmt = store->statements[STMT_CHANGES];
	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)after);
	sqlite3_bind_int64(stmt, 2, (sqlite3_int64)store->committed);
	if (resource)
		sqlite3_bind_text(stmt, 3, resource, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(stmt, 3);
	store->replaying = true;
	int rc, r = 0;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *row_resource = (const char *)sqlite3_column_text(stmt, 1);
		const char *row_namespace = (const char *)sqlite3_column_text(stmt, 2);
		const char *row_name = (const char *)sqlite3_column_text(stmt, 3);
		if (!row_resource || !row_namespace || !row_name) {
			r = sql_error(store, SQLITE_NOMEM, err, "replaying the change log of %s", store->path);
			break;
		}
		int type = sqlite3_column_int(stmt, 4);
		if (type < STORE_ADDED || type > STORE_DELETED) {
			r = error_set(err, EIO, "the change log of %s holds an unknown change type %d at revision %lld",
			              store->path, type, sqlite3_column_int64(stmt, 0));
			break;
		}
		const char *text;
		size_t length;
		char *owned;
		r = column_body(store, stmt, 5, row_resource, row_namespace, row_name, &text, &length, &owned, err);
		if (r < 0)
			break;
		struct store_change change = {
			.type = (enum store_event)type,
			.revision = (uint64_t)sqlite3_column_int64(stmt, 0),
			.resource = row_resource,
			.namespace = row_namespace,
			.name = row_name,
			.object = text,
			.previous = NULL,
		};
		fn(&change, data);
		free(owned);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sql_error(store, rc, err, "replaying the change log of %s", store->path);
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	store->replaying = false;
	return r;
}

void store_library_version(char *buf, size_t size)
{
	snprintf(buf, size, "SQLite %s", sqlite3_libversion());
}
