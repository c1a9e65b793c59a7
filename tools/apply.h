/* What `bramble apply` shares with `create` and `edit`: the dry-run modes and how an
 * existing object is updated from a manifest. */
#ifndef BRAMBLE_TOOLS_APPLY_H
#define BRAMBLE_TOOLS_APPLY_H

#include <cjson/cJSON.h>

struct error;
struct kind;

enum apply_dry_run {
	DRY_RUN_NONE,
	DRY_RUN_CLIENT, /* checked here with core/object.c's defaults and validation */
	DRY_RUN_SERVER, /* sent with dryRun=All: the server checks and stores nothing */
};

/* --dry-run's value (NULL: a bare --dry-run, kubectl's "client"). */
int apply_parse_dry_run(const char *value, enum apply_dry_run *ret, struct error *err);
/* " (dry run)", " (server dry run)" or "". */
const char *apply_dry_run_suffix(enum apply_dry_run dry_run);

/* The object as the server would store it on creation: defaults applied in place, then
 * validated (the field path named in err). */
int apply_check_locally(const struct kind *kind, cJSON *object, struct error *err);

/* current with the manifest's top-level fields (all but apiVersion, kind, metadata and
 * status), labels and annotations put in, defaults applied. */
cJSON *apply_desired(const struct kind *kind, const cJSON *current, const cJSON *manifest);

#endif
