#include "agent/build_info.h"

#include <stdio.h>

#include <archive.h>
#include <cjson/cJSON.h>
#include <seccomp.h>
#include <yaml.h>

#include "core/store.h"
#include "core/transport.h"
#include "platform/cgroups.h"
#include "platform/memory.h"

#ifndef BRAMBLE_VERSION
#define BRAMBLE_VERSION "unknown"
#endif
#ifndef BRAMBLE_TARGET
#define BRAMBLE_TARGET "unknown"
#endif

void build_info_collect(struct build_info *info)
{
	info->version = BRAMBLE_VERSION;
	info->target = BRAMBLE_TARGET;
	transport_library_versions(info->coap, sizeof(info->coap), info->tls, sizeof(info->tls));
	store_library_version(info->sqlite, sizeof(info->sqlite));
	cgroups_library_version(info->cgroup, sizeof(info->cgroup));
	snprintf(info->archive, sizeof(info->archive), "%s", archive_version_details());
	const struct scmp_version *sv = seccomp_version();
	snprintf(info->seccomp, sizeof(info->seccomp), "libseccomp %u.%u.%u", sv->major, sv->minor, sv->micro);
	snprintf(info->yaml, sizeof(info->yaml), "libyaml %s", yaml_get_version_string());
	snprintf(info->json, sizeof(info->json), "cJSON %s", cJSON_Version());
}

char *build_info_json(const struct build_info *info)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "bramble", info->version);
	cJSON_AddStringToObject(o, "target", info->target);
	cJSON *libs = cJSON_AddObjectToObject(o, "libraries");
	cJSON_AddStringToObject(libs, "coap", info->coap);
	cJSON_AddStringToObject(libs, "tls", info->tls);
	cJSON_AddStringToObject(libs, "sqlite", info->sqlite);
	cJSON_AddStringToObject(libs, "cgroup", info->cgroup);
	cJSON_AddStringToObject(libs, "archive", info->archive);
	cJSON_AddStringToObject(libs, "seccomp", info->seccomp);
	cJSON_AddStringToObject(libs, "yaml", info->yaml);
	cJSON_AddStringToObject(libs, "json", info->json);
	char *text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!text)
		abort(); /* cJSON fails only when out of memory */
	return text;
}
