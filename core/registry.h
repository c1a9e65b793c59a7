/* The control plane's image registry: blobs kept content-addressed as files in the server's
 * data directory (never in the store), image references (name:tag, per platform) pointing
 * at manifests, uploads that become visible only once complete and verified.
 *
 *   GET    /registry/v1/images                 every reference and platform
 *   GET    /registry/v1/images/{reference}     one reference: its platforms and manifests
 *   PUT    /registry/v1/images/{reference}     an OCI image manifest (JSON): tags it, once every
 *                                              blob it names is here and its config is readable
 *   DELETE /registry/v1/images/{reference}[?platform=arm64]
 *   POST   /registry/v1/uploads                {"digest","size"}: 2.04 {"exists":true} when the
 *                                              blob is here, else 2.01 {"upload":ID,"chunk":N}
 *   PUT    /registry/v1/uploads/{id}?offset=N  the next chunk (block-wise); 2.04 {"offset"}; the last one
 *                                              commits: 2.01, or 4.00 on a digest mismatch
 *   DELETE /registry/v1/uploads/{id}           abandons an upload
 *   GET    /registry/v1/blobs/{digest}?offset=N   up to REGISTRY_CHUNK bytes of a blob (block-wise)
 *   DELETE /registry/v1/blobs/{digest}        a blob no image uses (a push that failed cleans up)
 *
 * References are canonical ("docker.io/library/busybox:1.36"): clients normalize them. Admins
 * may do everything, nodes only GET. Chunks bound what a request holds in memory (libcoap
 * assembles each request and answer whole) on the server and on a small board alike.
 */
#ifndef BRAMBLE_CORE_REGISTRY_H
#define BRAMBLE_CORE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <coap3/coap.h>

struct error;
struct loop;
struct registry;

#define REGISTRY_PATH_PREFIX "registry/"
#define REGISTRY_CHUNK (256 * 1024)         /* bytes per upload chunk and per blob read */
#define REGISTRY_UPLOADS_MAX 16             /* uploads in progress at once */
#define REGISTRY_UPLOAD_IDLE_MS (60 * 1000) /* an upload without a chunk this long is dropped */
#define REGISTRY_MANIFEST_MAX (1024 * 1024) /* manifests and configs */
#define REGISTRY_REFERENCE_MAX 256
#define REGISTRY_DEFAULT_BLOB_MAX (4ULL << 30) /* one blob, when the options say nothing */
#define REGISTRY_GC_GRACE_S (10 * 60)          /* an unreferenced blob younger than this may be a push's */

struct registry_options {
	const char *dir;      /* <data-dir>/registry */
	uint64_t limit_bytes; /* of all blobs; 0: none */
	uint64_t blob_max;    /* one blob; 0: REGISTRY_DEFAULT_BLOB_MAX */
	struct loop *loop;    /* for the timer that drops idle uploads; NULL: swept on requests only */
};

/* Opens (creating) the registry; uploads a previous run left are removed, unreferenced blobs
 * collected. */
int registry_open(const struct registry_options *options, struct registry **ret_registry, struct error *err);
void registry_free(struct registry *registry);

/* --- the blob store (what the CoAP handlers call; public for the unit tests) ----------------- */

bool registry_blob_exists(struct registry *registry, const char *digest);
/* Starts an upload of a blob of `size` bytes that must hash to `digest`: -EEXIST when the
 * blob is here already, -EFBIG over the limits, -EBUSY with too many uploads at once. */
int registry_upload_begin(struct registry *registry, const char *digest, uint64_t size, char ret_id[33],
                          struct error *err);
/* Appends the chunk at offset (which must be where the upload is); when the declared size is
 * reached the blob is verified and committed (*ret_done = true). Any failure drops the upload. */
int registry_upload_write(struct registry *registry, const char *id, uint64_t offset, const void *data, size_t length,
                          bool *ret_done, uint64_t *ret_received, struct error *err);
int registry_upload_abort(struct registry *registry, const char *id, struct error *err);
/* Drops uploads idle for longer than idle_ms; returns how many. */
int registry_upload_expire(struct registry *registry, uint64_t idle_ms);
size_t registry_upload_count(const struct registry *registry);

/* Up to max bytes of a blob from offset, as a read-only mapping of its file (what the CoAP
 * answer sends from); total: the blob's size. */
struct registry_mapping {
	void *base;
	size_t map_length;
	const uint8_t *data; /* length bytes from the offset asked for */
	size_t length;
	uint64_t total;
};
int registry_blob_map(struct registry *registry, const char *digest, uint64_t offset, size_t max,
                      struct registry_mapping **ret_mapping, struct error *err);
void registry_mapping_free(struct registry_mapping *mapping);

/* Tags a manifest (its blobs must all be here). *ret_entry (may be NULL): what was recorded. */
int registry_manifest_put(struct registry *registry, const char *reference, const char *manifest, size_t length,
                          cJSON **ret_entry, struct error *err);
/* {"reference", "platforms": [{platform, architecture, variant, os, manifest, manifestSize,
 * config, size, pushed}]} or -ENOENT. */
int registry_lookup(struct registry *registry, const char *reference, cJSON **ret_json, struct error *err);
/* {"images": [{reference, platform, ..., size}]} sorted by reference. */
cJSON *registry_list(struct registry *registry);
/* Removes a blob no reference uses: -EBUSY when one does. */
int registry_blob_remove(struct registry *registry, const char *digest, struct error *err);
/* Removes a reference (platform NULL: every platform) and the blobs only it used. */
int registry_remove(struct registry *registry, const char *reference, const char *platform, struct error *err);
/* Removes blobs no reference uses that are older than grace_s. Returns how many. */
int registry_gc(struct registry *registry, int64_t grace_s, struct error *err);
/* Bytes of blobs stored. */
uint64_t registry_usage(const struct registry *registry);

/* --- CoAP ---------------------------------------------------------------------------------- */

/* Serves a request whose path starts with REGISTRY_PATH_PREFIX (returns true), else false. */
bool registry_serve(struct registry *registry, const char *path, const char *identity, coap_resource_t *resource,
                    coap_session_t *session, const coap_pdu_t *request, const coap_string_t *query,
                    coap_pdu_t *response);

#endif
