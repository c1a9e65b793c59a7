/* The verbs of the `bramble` multi-call binary, one file each under tools/. */
#ifndef BRAMBLE_TOOLS_VERBS_H
#define BRAMBLE_TOOLS_VERBS_H

#include <stddef.h>

int version_main(int argc, char **argv);
int init_main(int argc, char **argv);
int image_main(int argc, char **argv);
int run_main(int argc, char **argv);
int container_main(int argc, char **argv);

int get_main(int argc, char **argv);
int apply_main(int argc, char **argv);
int delete_main(int argc, char **argv);

/* Shared by the client verbs (tools/get.c). */
struct kind;
/* "po", "pods", "deployment.apps", "Deployment" ... ; NULL when unknown. */
const struct kind *get_resolve_kind(const char *name);
/* The API path of a collection (name NULL) or an object; namespace NULL: all namespaces. */
char *get_object_path(const struct kind *kind, const char *namespace, const char *name);
/* "deployments.apps", "configmaps": how kubectl names a resource in messages. */
void get_resource_name(const struct kind *kind, char *buf, size_t size);
/* "deployment.apps", "configmap": the prefix of kubectl's "TYPE/NAME". */
void get_type_name(const struct kind *kind, char *buf, size_t size);

#endif
