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
int controllers_prepare_job(cJSON *job, struct error *err)
{
	(void)job;
	(void)err;
	return 0;
}
void controllers_prepare_job_update(const cJSON *stored, cJSON *updated)
{
	(void)stored;
	(void)updated;
}
