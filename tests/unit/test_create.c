#include "tools/create.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "platform/error.h"
#include "tests/unit/unit.h"

static char *print(const cJSON *item)
{
	static char *text;
	free(text);
	text = item ? cJSON_PrintUnformatted(item) : NULL;
	return text ? text : "(none)";
}

static const char *write_file(const char *name, const char *content, size_t size)
{
	static char path[512];
	snprintf(path, sizeof(path), "%s/%s", unit_temp_dir(), name);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	fwrite(content, 1, size, f);
	fclose(f);
	return path;
}

TEST(configmaps_from_literals_files_and_env_files)
{
	struct create_sources *s = calloc(1, sizeof(*s));
	struct error err = { 0 };
	char file_source[600], binary_source[600], env_source[600];
	snprintf(file_source, sizeof(file_source), "%s", write_file("app.conf", "port=80\n", 8));
	snprintf(binary_source, sizeof(binary_source), "logo=%s", write_file("logo.png", "\x89PNG\0\1", 6));
	snprintf(env_source, sizeof(env_source), "%s", write_file("app.env", "# comment\nA=1\n\nB=x y\n", 20));
	s->literals[s->literal_count++] = "greeting=hello=world";
	s->files[s->file_count++] = file_source;
	s->files[s->file_count++] = binary_source;
	s->env_files[s->env_file_count++] = env_source;
	cJSON *cm = NULL;
	CHECK_OK(create_data_object("web", "default", s, NULL, &cm, &err));
	CHECK_STR(print(cm),
	          "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"web\",\"namespace\":"
	          "\"default\"},\"data\":{\"app.conf\":\"port=80\\n\",\"greeting\":\"hello=world\",\"A\":\"1\","
	          "\"B\":\"x y\"},\"binaryData\":{\"logo\":\"iVBORwAB\"}}");
	cJSON_Delete(cm);
	s->literals[s->literal_count++] = "greeting=again";
	CHECK_INT(create_data_object("web", "default", s, NULL, &cm, &err), ==, -EEXIST);
	CHECK_STR(err.message,
	          "cannot add key \"greeting\", another key by that name already exists in ConfigMap \"web\"");
	free(s);
}

TEST(secrets_are_base64_with_their_type)
{
	struct create_sources *s = calloc(1, sizeof(*s));
	struct error err = { 0 };
	s->literals[s->literal_count++] = "password=hunter2";
	cJSON *secret = NULL;
	CHECK_OK(create_data_object("db", "team", s, "Opaque", &secret, &err));
	CHECK_STR(print(secret),
	          "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"db\",\"namespace\":"
	          "\"team\"},\"data\":{\"password\":\"aHVudGVyMg==\"},\"type\":\"Opaque\"}");
	cJSON_Delete(secret);
	s->literals[0] = "novalue";
	CHECK_INT(create_data_object("db", "team", s, "Opaque", &secret, &err), ==, -EINVAL);
	CHECK_STR(err.message, "invalid literal source novalue, expected key=value");
	free(s);
}

TEST(deployments_and_services_as_kubectl_generates_them)
{
	struct error err = { 0 };
	cJSON *d = NULL;
	const char *images[] = { "registry.local:5000/team/web_app:1.2", "busybox@sha256:abc" };
	CHECK_OK(create_deployment("web", "default", images, 2, 3, 8080, &d, &err));
	CHECK_STR(print(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "spec"), "template"), "spec")),
	          "{\"containers\":[{\"image\":\"registry.local:5000/team/web_app:1.2\",\"name\":\"web-app\",\"ports\":"
	          "[{\"containerPort\":8080}]},{\"image\":\"busybox@sha256:abc\",\"name\":\"busybox\"}]}");
	CHECK_STR(print(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "spec"), "selector")),
	          "{\"matchLabels\":{\"app\":\"web\"}}");
	cJSON_Delete(d);
	cJSON *s = NULL;
	const char *tcp[] = { "80:8080", "443" };
	CHECK_OK(create_service("web", "default", tcp, 2, NULL, &s, &err));
	CHECK_STR(print(cJSON_GetObjectItem(s, "spec")),
	          "{\"ports\":[{\"name\":\"80-8080\",\"port\":80,\"protocol\":\"TCP\",\"targetPort\":8080},"
	          "{\"name\":\"443\",\"port\":443,\"protocol\":\"TCP\",\"targetPort\":443}],\"selector\":{\"app\":"
	          "\"web\"},"
	          "\"type\":\"ClusterIP\"}");
	cJSON_Delete(s);
	const char *bad[] = { "80:99999" };
	CHECK_INT(create_service("web", "default", bad, 1, NULL, &s, &err), ==, -EINVAL);
	CHECK_INT(create_service("web", "default", NULL, 0, NULL, &s, &err), ==, -EINVAL);
	CHECK_OK(create_service("web", "default", NULL, 0, "None", &s, &err)); /* headless */
	cJSON_Delete(s);
}
