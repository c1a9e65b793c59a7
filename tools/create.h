/* `bramble create`: the objects kubectl's create generators make, built here so that
 * `--dry-run=client -o yaml` prints them as they would be sent. */
#ifndef BRAMBLE_TOOLS_CREATE_H
#define BRAMBLE_TOOLS_CREATE_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

struct error;

#define CREATE_MAX_SOURCES 256
#define CREATE_MAX_FILE_SIZE (1024 * 1024) /* Kubernetes' limit for a ConfigMap or Secret */

/* Where a ConfigMap's or Secret's keys come from, in order. */
struct create_sources {
	size_t literal_count, file_count, env_file_count;
	const char *literals[CREATE_MAX_SOURCES];  /* "key=value" */
	const char *files[CREATE_MAX_SOURCES];     /* "path" or "key=path"; a directory: its files */
	const char *env_files[CREATE_MAX_SOURCES]; /* KEY=VALUE lines, '#' comments */
};

/* A ConfigMap (text in data, other bytes base64 in binaryData), or a Secret of the type
 * (values base64 in data) when secret_type is not NULL. A key given twice is refused. */
int create_data_object(const char *name, const char *namespace, const struct create_sources *sources,
                       const char *secret_type, cJSON **ret_object, struct error *err);

/* kubectl create deployment: label app=NAME, one container per image named after it. */
int create_deployment(const char *name, const char *namespace, const char *const *images, size_t image_count,
                      long replicas, long port, cJSON **ret_object, struct error *err);

/* kubectl create service clusterip: "--tcp PORT[:TARGET]" ports named "PORT-TARGET",
 * selector app=NAME; cluster_ip "None" makes a headless Service (no ports needed). */
int create_service(const char *name, const char *namespace, const char *const *tcp, size_t tcp_count,
                   const char *cluster_ip, cJSON **ret_object, struct error *err);

#endif
