#include "agent/build_info.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

#include "tests/unit/unit.h"

TEST(collects_every_library)
{
	struct build_info info;
	build_info_collect(&info);
	CHECK_STR(info.target, BRAMBLE_TARGET);
	CHECK_STR(info.version, BRAMBLE_VERSION);
	CHECK_CONTAINS(info.coap, "libcoap 4.3.");
	CHECK_CONTAINS(info.coap, "DTLS backend: Mbed TLS");
	CHECK_CONTAINS(info.tls, "Mbed TLS 3.6.");
	CHECK_CONTAINS(info.sqlite, "SQLite 3.");
	CHECK_CONTAINS(info.cgroup, "libcgroup 3.");
	CHECK_CONTAINS(info.archive, "libarchive 3.");
	CHECK_CONTAINS(info.archive, "zlib/1.");
	CHECK_CONTAINS(info.seccomp, "libseccomp 2.");
	CHECK_CONTAINS(info.yaml, "libyaml 0.2.");
	CHECK_CONTAINS(info.json, "cJSON 1.7.");
}

TEST(json_form_parses_back)
{
	struct build_info info;
	build_info_collect(&info);
	char *text = build_info_json(&info);
	cJSON *o = cJSON_Parse(text);
	CHECK(o != NULL);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o, "bramble")), BRAMBLE_VERSION);
	cJSON *libs = cJSON_GetObjectItem(o, "libraries");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(libs, "tls")), info.tls);
	cJSON_Delete(o);
	free(text);
}
