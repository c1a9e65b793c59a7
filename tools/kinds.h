/* The kinds as the client verbs name them: kubectl's resource names, short names and
 * "TYPE/NAME" arguments, and the API paths of collections and objects.
 *
 *   kinds_resolve("deploy")               the Deployment kind ("po", "pods", "Pod",
 *                                         "deployment.apps", "deployments.apps" ...)
 *   kinds_path(kind, "default", "web")    "/apis/apps/v1/namespaces/default/deployments/web"
 *   kinds_select(argc, argv, &selection)  "KIND [NAME...]" or "TYPE/NAME..."
 */
#ifndef BRAMBLE_TOOLS_KINDS_H
#define BRAMBLE_TOOLS_KINDS_H

#include <stddef.h>

struct error;
struct kind;

#define KINDS_MAX_ARGUMENTS 256 /* names on one command line */
#define KINDS_NAME_MAX 128      /* "horizontalpodautoscalers.autoscaling" fits */

/* By any of kubectl's names for it, case-insensitive; NULL when Bramble does not serve it. */
const struct kind *kinds_resolve(const char *name);

/* The API path of a collection (name NULL) or an object; namespace NULL (or a
 * cluster-scoped kind): not in a namespace, which for a namespaced kind's collection
 * means every namespace. The caller frees it. */
char *kinds_path(const struct kind *kind, const char *namespace, const char *name);

/* "deployments.apps", "configmaps": how kubectl names a resource in its messages. */
void kinds_resource(const struct kind *kind, char *buf, size_t size);
/* "deployment.apps", "configmap": the TYPE of kubectl's "TYPE/NAME" output. */
void kinds_type(const struct kind *kind, char *buf, size_t size);

/* What the resource arguments of a verb name: "KIND" (kind set, no names: the collection),
 * "KIND NAME..." or "TYPE/NAME..." (one kind per name). */
struct kinds_selection {
	const struct kind *kind; /* the KIND of the first form; NULL in the TYPE/NAME form */
	size_t count;
	const struct kind *kinds[KINDS_MAX_ARGUMENTS];
	const char *names[KINDS_MAX_ARGUMENTS]; /* pointers into argv */
};

/* -ENOENT (an unknown kind, in kubectl's words) or -EINVAL (arguments that do not make a
 * selection: none, a KIND before TYPE/NAME, an empty name, too many). */
int kinds_select(int argc, char **argv, struct kinds_selection *ret_selection, struct error *err);

#endif
