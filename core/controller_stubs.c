#include "core/controller.h"
static int nothing(struct controllers *c, const char *key, struct error *err)
{
	(void)c;
	(void)key;
	(void)err;
	return 0;
}
const struct controller_ops daemonset_controller = { .name = "daemonset", .sync = nothing };
const struct controller_ops job_controller = { .name = "job", .sync = nothing };
const struct controller_ops endpoints_controller = { .name = "endpoints", .sync = nothing };
const struct controller_ops garbage_controller = { .name = "garbage", .sync = nothing };
const struct controller_ops namespace_controller = { .name = "namespace", .sync = nothing };
const struct controller_ops node_lifecycle_controller = { .name = "nodelifecycle", .sync = nothing };
void garbage_free_index(struct controllers *c)
{
	(void)c;
}
int controllers_prepare_job(cJSON *job, struct error *err)
{
	(void)job;
	(void)err;
	return 0;
}
