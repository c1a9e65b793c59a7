/* What the client verbs share: exit codes, the connection, requests with kubectl's error
 * messages, paged lists, waiting for an object to be gone, progress on a terminal, the
 * "-f FILE|DIR|-" reader, and the small formats (durations, ages, label lists, JSON).
 *
 * Exit codes scripts can rely on: 0 done, 1 an error (the server's, the network's, bad
 * input), 2 a usage error (unknown flag, missing or extra argument). Errors are carried in
 * a struct error and printed once by the verb with cli_print_error: "error: ..." or the
 * server's "Error from server (Reason): ..." as kubectl prints it. Progress (waiting for a
 * rollout, a drain, a deletion) goes to standard error, and only when it is a terminal.
 */
#ifndef BRAMBLE_TOOLS_CLI_H
#define BRAMBLE_TOOLS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "core/client.h"
#include "tools/manifest.h"

struct buffer;
struct error;
struct kind;

enum cli_exit {
	CLI_OK = 0,
	CLI_ERROR = 1,
	CLI_USAGE = 2,
};

#define CLI_MAX_FILES 64       /* -f options on one command line */
#define CLI_MAX_OBJECTS 100000 /* objects one list may return, all pages together */
#define CLI_LIST_PAGE 500      /* objects asked for per page */
#define CLI_SERVER_PREFIX "Error from server"

/* "error: <message>" on standard error, or the message alone when it is the server's. */
void cli_print_error(const struct error *err);
/* Prints err and returns the exit code for it (CLI_ERROR). */
int cli_fail(const struct error *err);
/* "error: <message>" and the verb's usage line: returns CLI_USAGE. */
int cli_usage_error(void (*usage)(FILE *), const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Opens a client with the configuration (path NULL: $BRAMBLE_CONFIG, ~/.config/...). */
int cli_connect(const char *config_path, struct client **ret_client, struct error *err);

/* One request; body may be NULL. 0 and the answer's JSON in ret_object (NULL for an empty
 * answer; ret_object may be NULL), or a negative errno: the network's error, or the
 * server's as "Error from server (Reason): message". */
int cli_call(struct client *client, enum client_method method, const char *path, const cJSON *body, cJSON **ret_object,
             struct error *err);

/* The same on one object; query ("dryRun=All") may be NULL. A 4.04 reads as kubectl's
 * `Error from server (NotFound): deployments.apps "web" not found` (-ENOENT). */
int cli_object_call(struct client *client, enum client_method method, const struct kind *kind, const char *namespace,
                    const char *name, const char *query, const cJSON *body, cJSON **ret_object, struct error *err);

/* Every object of a collection (namespace NULL: all namespaces; selectors may be NULL),
 * page after page, appended to the array items; ret_revision (may be NULL): the first
 * page's resourceVersion, from which a watch sees every later change. */
int cli_list(struct client *client, const struct kind *kind, const char *namespace, const char *labels,
             const char *fields, cJSON *items, char **ret_revision, struct error *err);

/* Appends "?key=value" or "&key=value" (the value percent-encoded) to a path. */
void cli_query(struct buffer *path, const char *key, const char *value);

/* Follows one object with CoAP Observe: fn sees it at once and after every change, and
 * NULL once it is gone; fn returns 0 to go on, anything else ends the following and is
 * returned. deadline_ms: a clock_monotonic_ms() value, or 0 for none; past it, -ETIMEDOUT
 * ("timed out waiting for the condition on deployments.apps/web"). */
typedef int (*cli_follow_fn)(const cJSON *object, void *data);
int cli_follow(struct client *client, const struct kind *kind, const char *namespace, const char *name,
               uint64_t deadline_ms, cli_follow_fn fn, void *data, struct error *err);

/* Waits, with Observe on the object, until it is gone (a 4.04, a DELETED event, or an
 * object with another uid in its place; uid NULL: any object counts). deadline_ms: a
 * clock_monotonic_ms() value, or 0 for none. 0 when gone, -ETIMEDOUT. */
int cli_wait_deleted(struct client *client, const struct kind *kind, const char *namespace, const char *name,
                     const char *uid, uint64_t deadline_ms, struct error *err);

/* --- progress on a terminal ---------------------------------------------------------------- */

/* Whether progress is shown: standard error is a terminal. */
bool cli_interactive(void);
/* Replaces the progress line ("\r" and erase) when interactive; nothing otherwise. */
void cli_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Erases the progress line, if one is shown. */
void cli_progress_end(void);

/* --- manifests: the -f reader shared by apply, create, delete ---------------------------- */

struct cli_files {
	const char *paths[CLI_MAX_FILES];
	size_t count;
};
int cli_files_add(struct cli_files *files, const char *path, struct error *err);
/* Reads every file, directory or "-" in order. */
int cli_files_read(const struct cli_files *files, struct manifest *ret_manifest, struct error *err);

/* Where a document goes: its kind, name and namespace (its own, else -n, else "default";
 * NULL for a cluster-scoped kind). Errors name the file and the document. */
struct cli_target {
	const struct kind *kind;
	const char *namespace;
	const char *name;
};
int cli_document_target(const struct manifest_document *document, const char *namespace_flag,
                        struct cli_target *ret_target, struct error *err);

/* --- formats ------------------------------------------------------------------------------- */

/* "30s", "5m", "1h30m", "250ms", "0"; a bare number is seconds. */
int cli_parse_duration(const char *text, int64_t *ret_ms, struct error *err);
/* kubectl's HumanDuration: "45s", "5m2s", "3h", "12d" ... */
void cli_human_duration(long long seconds, char *buf, size_t size);
/* The age of an RFC 3339 timestamp ("<unknown>" when absent or unreadable). */
void cli_age(const char *timestamp, time_t now, char *buf, size_t size);
/* "Mon, 01 Jan 2024 10:00:00 +0000" (kubectl describe's RFC 1123 with a numeric zone). */
void cli_time(const char *timestamp, char *buf, size_t size);
/* A string map as "k1=v1,k2=v2", keys sorted; "<none>" when empty or absent. */
void cli_format_map(const cJSON *map, const char *separator, struct buffer *out);
/* JSON indented by four spaces, as kubectl prints it. */
void cli_write_json(const cJSON *item, int indent, struct buffer *out);

/* Accessors that never return NULL: "" and 0 when absent. */
const char *cli_string(const cJSON *object, const char *dotted_path);
long long cli_number(const cJSON *object, const char *dotted_path);
const cJSON *cli_item(const cJSON *object, const char *dotted_path);

/* The controller of an object: its ownerReference with controller: true, or NULL. */
const cJSON *cli_controller_of(const cJSON *object);

#endif
