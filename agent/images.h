/* The image store: container images imported from OCI image layouts and `docker save`
 * archives, kept content-addressed by sha256 with their layers unpacked once for overlayfs.
 *
 * One store per board, under "<data-dir>/images". Calls that change the store take an
 * exclusive lock on it, so the agent and a `bramble image` command may share one; an import
 * holds it only to commit, not while it unpacks. Unpacking changes the process's working
 * directory for its duration: call from one thread only (the agent imports in a child).
 */
#ifndef BRAMBLE_AGENT_IMAGES_H
#define BRAMBLE_AGENT_IMAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct error;

/* "sha256:" + 64 hex digits + NUL */
#define IMAGES_DIGEST_MAX 72
/* Docker's limit on a whole reference ("registry:port/path/name:tag"). */
#define IMAGES_REFERENCE_MAX 256

struct images_store {
	char *dir;            /* the store's directory */
	uint64_t limit_bytes; /* disk usage limit of blobs + unpacked layers; 0 = none */
	const char *arch;     /* this board's Go architecture: "amd64", "arm64", "arm" */
	const char *variant;  /* "v6", "v7" for arm, else "" */
};

/* An image's configuration, what the runtime takes as defaults, and where its layers are. */
struct images_image {
	char digest[IMAGES_DIGEST_MAX]; /* of its config blob: the image's identity */
	char *architecture;             /* Go names, as in the config */
	char *variant;                  /* "" when the config has none */
	char *os;
	char **entrypoint; /* NULL-terminated; empty when unset */
	char **cmd;
	char **env;        /* "NAME=value" */
	char *working_dir; /* "" when unset */
	char *user;        /* "" when unset */
	char **layers;     /* unpacked layer directories, lowest first, NULL-terminated */
	size_t layer_count;
	uint64_t size; /* bytes of its blobs */
};

/* One row of images_list: a reference (or, for an image without one, its digest). */
struct images_entry {
	char reference[IMAGES_REFERENCE_MAX]; /* canonical ("docker.io/library/busybox:1.36") or "" */
	char digest[IMAGES_DIGEST_MAX];
	char architecture[32];
	uint64_t size;
};

/* Opens (creating it if needed) the store in dir; arch and variant default to this build's
 * target when NULL. The store keeps copies of the strings it needs. */
int images_open(struct images_store *store, const char *dir, uint64_t limit_bytes, const char *arch,
                const char *variant, struct error *err);
void images_close(struct images_store *store);

/* Imports every image of an OCI layout (directory or tar) or docker archive at path that is
 * for this board's architecture. On failure nothing of it is left in the store. */
int images_import(struct images_store *store, const char *path, struct error *err);

/* Looks an image up by reference ("busybox", "busybox:1.36", "docker.io/library/busybox",
 * "sha256:<hex>" or a unique prefix of at least 12 hex digits of its digest). */
int images_resolve(struct images_store *store, const char *reference, struct images_image *ret_image,
                   struct error *err);
void images_image_free(struct images_image *image);

/* Every reference and every image without one, sorted by reference. */
int images_list(struct images_store *store, struct images_entry **ret_entries, size_t *ret_count, struct error *err);

/* Removes a reference; a digest removes the image and all its references. Blobs and layers
 * no image uses any more are removed too (images_gc). */
int images_rm(struct images_store *store, const char *reference, struct error *err);

/* Removes blobs, unpacked layers and leftovers of interrupted imports no image references. */
int images_gc(struct images_store *store, struct error *err);

/* Bytes of blobs and unpacked layers in the store. */
int images_usage(struct images_store *store, uint64_t *ret_bytes, struct error *err);

/* Normalizes a reference as Docker does: "busybox" -> "docker.io/library/busybox:latest".
 * A digest reference ("sha256:<hex>") is returned as is. */
int images_normalize_reference(const char *reference, char ret[IMAGES_REFERENCE_MAX], struct error *err);

/* The short form `docker images` shows: "docker.io/library/busybox:1.36" -> "busybox:1.36". */
const char *images_familiar_reference(const char *canonical);

/* What `bramble image push` sends: the images of an archive, every blob verified by sha256,
 * none unpacked. A docker archive's images get an OCI manifest written for them. */
struct images_bundle_blob {
	char digest[IMAGES_DIGEST_MAX];
	char *path; /* a verified copy in the bundle's scratch directory */
	uint64_t size;
};

struct images_bundle_image {
	char **references; /* canonical */
	size_t reference_count;
	char platform[48]; /* "amd64", "arm/v7" */
	char *manifest;    /* OCI image manifest JSON */
	size_t manifest_length;
	struct images_bundle_blob *blobs; /* the config first, then the layers, lowest first */
	size_t blob_count;
	uint64_t size; /* of the blobs */
};

struct images_bundle {
	char *dir; /* scratch, removed by images_bundle_close */
	struct images_bundle_image *images;
	size_t count;
};

/* Reads an OCI layout (directory or tar) or docker archive into a scratch directory under
 * scratch_dir (NULL: /tmp); nothing is left there on failure. */
int images_bundle_open(const char *path, const char *scratch_dir, struct images_bundle *ret_bundle, struct error *err);
void images_bundle_close(struct images_bundle *bundle);

/* Whether this board runs images of a platform ("arm", "v6" on an armv7 board: yes), and the
 * board's own ("amd64", "arm/v7"). */
bool images_runs_platform(const struct images_store *store, const char *arch, const char *variant);
void images_board_platform(const struct images_store *store, char *out, size_t size);

/* Whether the store holds a blob (a puller skips it). */
int images_has_blob(struct images_store *store, const char *digest);

#endif
