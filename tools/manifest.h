/* Manifests as people keep them in git: YAML or JSON files, several documents a file.
 *
 *   manifest_read("deploy.yaml" | "manifests/" | "-")   a file, every *.yaml, *.yml and
 *                                                        *.json of a directory (sorted), stdin
 *
 * Each document becomes a cJSON object with the types Kubernetes' YAML decoder gives it
 * (plain true/false, null/~, integers, floats are JSON types; quoted scalars stay strings).
 * Errors name the file, the document and the line:
 *   "deploy.yaml: document 2, line 14: found character that cannot start any token (a tab?)"
 */
#ifndef BRAMBLE_TOOLS_MANIFEST_H
#define BRAMBLE_TOOLS_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

struct buffer;
struct error;

#define MANIFEST_MAX_FILE_SIZE (4 * 1024 * 1024)
#define MANIFEST_MAX_DOCUMENTS 1000 /* per file */
#define MANIFEST_MAX_FILES 1000     /* per directory */
#define MANIFEST_MAX_DEPTH 64
#define MANIFEST_MAX_NODES 1000000 /* per file, aliases expanded (no "billion laughs") */

struct manifest_document {
	char *source; /* the file's name as given ("manifests/web.yaml", "-" for stdin) */
	int index;    /* 1-based, within its file */
	int line;     /* where the document starts, 1-based */
	cJSON *object;
};

struct manifest {
	struct manifest_document *documents;
	size_t count;
	bool any_value; /* documents need not be Kubernetes objects (manifest_parse_value) */
};

/* Reads path ("-": standard input) and appends its documents. Every document must be a
 * mapping with apiVersion and kind (strings). */
int manifest_read(const char *path, struct manifest *manifest, struct error *err);

/* Parses text (YAML or JSON) read from source and appends its documents. */
int manifest_parse(const char *source, const char *text, size_t length, struct manifest *manifest, struct error *err);

/* Parses one YAML or JSON document of any shape (a patch): the value in *ret_value. */
int manifest_parse_value(const char *source, const char *text, size_t length, cJSON **ret_value, struct error *err);

void manifest_free(struct manifest *manifest);

/* Appends object as block-style YAML (what `-o yaml` prints), strings quoted where YAML
 * would read them as something else. */
void manifest_write_yaml(const cJSON *object, struct buffer *out);

#endif
