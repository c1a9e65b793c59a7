/* Image pulls: the images a board's pods need, fetched from the control plane's registry
 * (core/registry.h) over the agent's asynchronous link, verified by sha256 and imported into
 * the board's image store (agent/images.h). See the design comment in imagepull.c.
 *
 * imagePullPolicy as Kubernetes has it: Never (the store only), IfNotPresent (pull when
 * missing), Always (ask the control plane which image the name means, pull when it differs);
 * without one, Always for ":latest" (or no tag) and IfNotPresent otherwise. Pods needing the
 * same image share one pull.
 */
#ifndef BRAMBLE_AGENT_IMAGEPULL_H
#define BRAMBLE_AGENT_IMAGEPULL_H

#include <stdint.h>

struct error;
struct images_store;
struct imagepull;
struct link;
struct loop;

struct imagepull_options {
	struct loop *loop;
	struct link *link;
	struct images_store *store;
	uint64_t backoff_initial_ms; /* after a failed pull, no new one for this long (10 s) ... */
	uint64_t backoff_max_ms;     /* ... doubling up to this (300 s) */
	uint64_t progress_ms;        /* progress reported at most this often (1 s) */
};

/* A pull has ended: err NULL when the image is in the store, else why not, with the reason a
 * container shows (ErrImagePull). */
typedef void (*imagepull_done_fn)(void *data, const char *reason, const struct error *err);

/* Who waits for an image: a pull records Events for it (Pulling, Pulled, Failed), as a kubelet
 * does, and reports its progress ("Pulling image "x": 4.2MB of 12.0MB (35%)") to progress(data)
 * when set. Copied; may be NULL (no events, no progress). */
struct imagepull_who {
	const char *namespace, *pod, *uid, *container, *node;
	void (*progress)(void *data, const char *message);
};

struct imagepull *imagepull_new(const struct imagepull_options *options);
/* Kills an import in progress; pending callbacks are not called. */
void imagepull_free(struct imagepull *pulls);

/* Whether `image` may be used now, per policy (NULL or "": the default for its tag):
 *   0             it is in the store: images_resolve() it
 *   -EINPROGRESS  a pull runs (started now or shared); done(data) is called once when it ends
 *                 and err says "pulling image ..."
 *   other         it cannot be had now: *ret_reason is ErrImageNeverPull, ImagePullBackOff
 *                 (a pull failed recently: err repeats why) or InvalidImageName, err says why */
int imagepull_ensure(struct imagepull *pulls, const char *image, const char *policy, const struct imagepull_who *who,
                     imagepull_done_fn done, void *data, const char **ret_reason, struct error *err);
/* Forgets every callback registered with data (its owner is going away). */
void imagepull_cancel(struct imagepull *pulls, void *data);

/* Pulls running now (for tests). */
unsigned imagepull_active(const struct imagepull *pulls);

#endif
