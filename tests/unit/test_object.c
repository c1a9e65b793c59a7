#include "core/object.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "platform/error.h"
#include "platform/memory.h"
#include "tests/unit/unit.h"

/* JSON written with single quotes, for legibility: {'a': 'b'} */
static char *json(const char *text)
{
	char *s = xstrdup(text);
	for (char *p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	return s;
}

static cJSON *parse(const char *text)
{
	cleanup_free char *s = json(text);
	struct error err = { 0 };
	cJSON *object = NULL;
	int r = object_parse(s, strlen(s), &object, &err);
	if (r < 0)
		unit_fail(__FILE__, __LINE__, "parse: %s", err.message);
	return object;
}

static const struct kind *kind_of(const cJSON *object)
{
	const struct kind *kind = kind_lookup(object_string_at(object, "apiVersion"), object_string_at(object, "kind"));
	if (!kind)
		unit_fail(__FILE__, __LINE__, "no kind for the manifest");
	return kind;
}

/* The manifest with the merge patch applied, defaulted and validated: the error (code 0
 * when the object is valid). */
static struct error check_patched(const char *manifest, const char *patch)
{
	struct error err = { 0 };
	cJSON *object = parse(manifest);
	if (patch) {
		cJSON *p = parse(patch);
		CHECK_OK(object_merge_patch(object, p, &err));
		cJSON_Delete(p);
	}
	const struct kind *kind = kind_of(object);
	object_apply_defaults(kind, object);
	int r = object_validate(kind, object, &err);
	CHECK_INT(r, ==, err.code ? -EINVAL : 0);
	cJSON_Delete(object);
	return err;
}

#define CHECK_VALID(manifest, patch)                                                                                   \
	do {                                                                                                           \
		struct error e_ = check_patched(manifest, patch);                                                      \
		if (e_.code)                                                                                           \
			unit_fail(__FILE__, __LINE__, "expected valid, got: %s", e_.message);                          \
	} while (0)

#define CHECK_INVALID(manifest, patch, want_field, want_message)                                                       \
	do {                                                                                                           \
		struct error e_ = check_patched(manifest, patch);                                                      \
		CHECK_INT(e_.code, ==, EINVAL);                                                                        \
		CHECK_STR(e_.field, want_field);                                                                       \
		CHECK_CONTAINS(e_.message, want_message);                                                              \
	} while (0)

static const char POD[] = "{'apiVersion': 'v1', 'kind': 'Pod',"
                          " 'metadata': {'name': 'web', 'namespace': 'default', 'labels': {'app': 'web'}},"
                          " 'spec': {'containers': [{'name': 'web', 'image': 'nginx:1.25',"
                          "   'ports': [{'containerPort': 80}]}]}}";

static const char DEPLOYMENT[] =
        "{'apiVersion': 'apps/v1', 'kind': 'Deployment',"
        " 'metadata': {'name': 'web', 'namespace': 'shop', 'labels': {'app.kubernetes.io/name': 'web'}},"
        " 'spec': {'replicas': 3,"
        "   'selector': {'matchLabels': {'app': 'web'}},"
        "   'template': {'metadata': {'labels': {'app': 'web', 'tier': 'front'}},"
        "     'spec': {'containers': [{'name': 'web', 'image': 'registry.local:5000/shop/web:2.1',"
        "       'ports': [{'name': 'http', 'containerPort': 8080}],"
        "       'env': [{'name': 'MODE', 'value': 'prod'},"
        "               {'name': 'TOKEN', 'valueFrom': {'secretKeyRef': {'name': 'web', 'key': 'token'}}}],"
        "       'envFrom': [{'configMapRef': {'name': 'web'}}],"
        "       'resources': {'requests': {'cpu': '100m', 'memory': '64Mi'}, 'limits': {'cpu': 0.5, 'memory': "
        "'128Mi'}},"
        "       'readinessProbe': {'httpGet': {'path': '/healthz', 'port': 'http'}},"
        "       'livenessProbe': {'tcpSocket': {'port': 8080}, 'initialDelaySeconds': 5},"
        "       'volumeMounts': [{'name': 'config', 'mountPath': '/etc/web', 'readOnly': true}]}],"
        "     'volumes': [{'name': 'config', 'configMap': {'name': 'web'}}],"
        "     'nodeSelector': {'kubernetes.io/arch': 'arm64'},"
        "     'tolerations': [{'key': 'bramble.io/edge', 'operator': 'Exists', 'effect': 'NoSchedule'}]}}}}";

static const char SERVICE[] =
        "{'apiVersion': 'v1', 'kind': 'Service', 'metadata': {'name': 'web', 'namespace': 'shop'},"
        " 'spec': {'selector': {'app': 'web'},"
        "   'ports': [{'name': 'http', 'port': 80, 'targetPort': 'http'}]}}";

static const char CONFIGMAP[] =
        "{'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'web', 'namespace': 'shop'},"
        " 'data': {'app.properties': 'color=blue', 'LOG_LEVEL': 'info'}}";

static const char SECRET[] = "{'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {'name': 'web', 'namespace': 'shop'},"
                             " 'type': 'Opaque', 'data': {'token': 'c2VjcmV0'}}";

static const char JOB[] =
        "{'apiVersion': 'batch/v1', 'kind': 'Job', 'metadata': {'name': 'pi'},"
        " 'spec': {'template': {'spec': {'restartPolicy': 'Never',"
        "   'containers': [{'name': 'pi', 'image': 'perl:5.34', 'command': ['perl', '-e', 'print 1']}]}}}}";

static const char DAEMONSET[] = "{'apiVersion': 'apps/v1', 'kind': 'DaemonSet', 'metadata': {'name': 'agent'},"
                                " 'spec': {'selector': {'matchLabels': {'app': 'agent'}},"
                                "   'template': {'metadata': {'labels': {'app': 'agent'}},"
                                "     'spec': {'containers': [{'name': 'agent', 'image': 'agent'}]}}}}";

/* Every value of `given` is in `result` unchanged (arrays element by element). */
static bool contains_all(const cJSON *given, const cJSON *result)
{
	if (cJSON_IsObject(given)) {
		const cJSON *item;
		cJSON_ArrayForEach(item, given)
		{
			if (!contains_all(item, cJSON_GetObjectItemCaseSensitive(result, item->string)))
				return false;
		}
		return cJSON_IsObject(result);
	}
	if (cJSON_IsArray(given)) {
		if (!cJSON_IsArray(result) || cJSON_GetArraySize(given) != cJSON_GetArraySize(result))
			return false;
		for (int i = 0; i < cJSON_GetArraySize(given); i++)
			if (!contains_all(cJSON_GetArrayItem(given, i), cJSON_GetArrayItem(result, i)))
				return false;
		return true;
	}
	return result && cJSON_Compare(given, result, true);
}

/* ---- kinds ---- */

TEST(kinds_are_found_by_manifest_and_by_url)
{
	const struct kind *deployment = kind_lookup("apps/v1", "Deployment");
	CHECK(deployment);
	CHECK_STR(deployment->resource, "deployments");
	CHECK_STR(deployment->list_kind, "DeploymentList");
	CHECK(deployment->namespaced && deployment->has_status);
	CHECK(kind_by_resource("apps", "v1", "deployments") == deployment);
	CHECK(kind_by_resource("", "v1", "pods") == kind_lookup("v1", "Pod"));
	CHECK(kind_by_resource("", "v1", "endpoints") == kind_lookup("v1", "Endpoints"));
	CHECK(kind_by_resource("autoscaling", "v2", "horizontalpodautoscalers") ==
	      kind_lookup("autoscaling/v2", "HorizontalPodAutoscaler"));
	CHECK(kind_by_resource("coordination.k8s.io", "v1", "leases") ==
	      kind_lookup("coordination.k8s.io/v1", "Lease"));
	CHECK(!kind_lookup("v1", "Deployment"));
	CHECK(!kind_lookup("apps/v1beta1", "Deployment"));
	CHECK(!kind_lookup("v1", "PersistentVolume"));
	CHECK(!kind_lookup(NULL, "Pod"));
	CHECK(!kind_by_resource("apps", "v1", "pods"));
	CHECK(!kind_lookup("v1", "Node")->namespaced);
	CHECK(!kind_lookup("v1", "Namespace")->namespaced);
	CHECK(kind_lookup("v1", "Node")->has_status);
	CHECK(!kind_lookup("v1", "ConfigMap")->has_status);
	CHECK_INT(kind_count(), ==, 14);
	for (size_t i = 0; i < kind_count(); i++) {
		const struct kind *k = kind_at(i);
		CHECK(kind_lookup(k->api_version, k->name) == k);
		CHECK(kind_by_resource(k->group, k->version, k->resource) == k);
	}
	CHECK(!kind_at(kind_count()));
}

/* ---- parsing ---- */

TEST(parse_reports_the_byte_offset_of_bad_json)
{
	struct error err = { 0 };
	cJSON *object = NULL;
	const char *text = "{\"kind\": \"Pod\", \"x\": }";
	CHECK_INT(object_parse(text, strlen(text), &object, &err), ==, -EINVAL);
	CHECK_STR(err.message, "invalid JSON at byte 21");
	CHECK(!object);
	CHECK_INT(object_parse("", 0, &object, &err), ==, -EINVAL);
	CHECK_INT(object_parse("[1, 2]", 6, &object, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "must be an object");
	CHECK_INT(object_parse("\"pod\"", 5, &object, &err), ==, -EINVAL);
	CHECK_INT(object_parse("{} {}", 5, &object, &err), ==, -EINVAL);
	CHECK_STR(err.message, "invalid JSON at byte 3: data after the top-level value");
	CHECK_INT(object_parse("{\"a\": \"x\\u0000y\"}", 17, &object, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "NUL");
}

TEST(parse_reads_only_the_given_length)
{
	struct error err = { 0 };
	cJSON *object = NULL;
	const char *text = "{\"a\": 1}garbage that is not part of the body";
	CHECK_OK(object_parse(text, 8, &object, &err));
	CHECK(cJSON_IsNumber(cJSON_GetObjectItem(object, "a")));
	cJSON_Delete(object);
	CHECK_OK(object_parse("{\"a\": 1}\n  ", 11, &object, &err));
	cJSON_Delete(object);
}

TEST(parse_refuses_deep_nesting_without_recursing)
{
	struct error err = { 0 };
	cJSON *object = NULL;
	size_t length = 10 * 1024 * 1024;
	char *text = xmalloc(length);
	memset(text, '[', length);
	CHECK_INT(object_parse(text, length, &object, &err), ==, -EINVAL);
	CHECK_STR(err.message, "invalid JSON at byte 32: nested deeper than 32 levels");
	/* exactly the limit is fine; brackets inside strings do not count */
	char ok[256] = "{\"s\": \"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\", \"a\":";
	for (int i = 0; i < OBJECT_MAX_DEPTH - 1; i++)
		strcat(ok, "[");
	for (int i = 0; i < OBJECT_MAX_DEPTH - 1; i++)
		strcat(ok, "]");
	strcat(ok, "}");
	CHECK_OK(object_parse(ok, strlen(ok), &object, &err));
	cJSON_Delete(object);
	free(text);
}

/* ---- accessors ---- */

TEST(accessors_read_metadata_and_dotted_paths)
{
	cJSON *pod = parse(POD);
	CHECK_STR(object_name(pod), "web");
	CHECK_STR(object_namespace(pod), "default");
	CHECK_STR(object_string_at(pod, "metadata.labels.app"), "web");
	CHECK_STR(object_string_at(pod, "kind"), "Pod");
	CHECK(!object_string_at(pod, "spec.nodeName"));
	CHECK(!object_string_at(pod, "spec.containers"));
	CHECK(!object_string_at(pod, "metadata.name.x"));
	cJSON *empty = cJSON_CreateObject();
	CHECK(!object_name(empty));
	cJSON *metadata = object_metadata(empty);
	CHECK(cJSON_IsObject(metadata));
	CHECK(object_metadata(empty) == metadata);
	CHECK(object_metadata(pod) == cJSON_GetObjectItem(pod, "metadata"));
	cJSON_Delete(empty);
	cJSON_Delete(pod);
}

TEST(dns_names)
{
	CHECK(object_valid_dns_label("web-1"));
	CHECK(object_valid_dns_label("1a"));
	CHECK(!object_valid_dns_label("-web"));
	CHECK(!object_valid_dns_label("web-"));
	CHECK(!object_valid_dns_label("Web"));
	CHECK(!object_valid_dns_label("a.b"));
	CHECK(!object_valid_dns_label(""));
	char name[300];
	memset(name, 'a', 63);
	name[63] = '\0';
	CHECK(object_valid_dns_label(name));
	name[63] = 'a';
	name[64] = '\0';
	CHECK(!object_valid_dns_label(name));
	CHECK(object_valid_dns_subdomain(name));
	CHECK(object_valid_dns_subdomain("example.com"));
	CHECK(object_valid_dns_subdomain("pi-1.local"));
	CHECK(!object_valid_dns_subdomain("example..com"));
	CHECK(!object_valid_dns_subdomain(".example"));
	CHECK(!object_valid_dns_subdomain("example_com"));
	memset(name, 'a', 254);
	name[254] = '\0';
	CHECK(!object_valid_dns_subdomain(name));
	name[253] = '\0';
	CHECK(object_valid_dns_subdomain(name));
}

/* ---- realistic manifests ---- */

TEST(realistic_manifests_pass_and_keep_every_given_value)
{
	const char *manifests[] = { POD, DEPLOYMENT, SERVICE, CONFIGMAP, SECRET, JOB, DAEMONSET };
	for (size_t i = 0; i < ARRAY_SIZE(manifests); i++) {
		cJSON *given = parse(manifests[i]);
		cJSON *object = cJSON_Duplicate(given, true);
		const struct kind *kind = kind_of(object);
		struct error err = { 0 };
		object_apply_defaults(kind, object);
		if (object_validate(kind, object, &err) < 0)
			unit_fail(__FILE__, __LINE__, "manifest %zu: %s", i, err.message);
		CHECK(contains_all(given, object));
		/* Validation leaves the object as it is; defaults are idempotent. */
		cJSON *again = cJSON_Duplicate(object, true);
		object_apply_defaults(kind, again);
		CHECK(cJSON_Compare(again, object, true));
		CHECK_OK(object_validate(kind, object, &err));
		cJSON_Delete(again);
		cJSON_Delete(object);
		cJSON_Delete(given);
	}
}

TEST(kubectl_style_nulls_and_empty_objects_are_accepted)
{
	CHECK_VALID(DEPLOYMENT, "{'metadata': {'creationTimestamp': null}, 'status': {},"
	                        " 'spec': {'strategy': {}, 'template': {'metadata': {'creationTimestamp': null},"
	                        "   'spec': {'containers': [{'name': 'web', 'image': 'web', 'resources': {}}]}}}}");
}

TEST(every_kind_accepts_a_typical_object)
{
	CHECK_VALID("{'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': 'shop'},"
	            " 'spec': {'finalizers': ['kubernetes']}, 'status': {'phase': 'Active'}}",
	            NULL);
	CHECK_VALID(
	        "{'apiVersion': 'v1', 'kind': 'Node', 'metadata': {'name': 'pi-1', 'labels': {'kubernetes.io/arch': "
	        "'arm64'}},"
	        " 'spec': {'podCIDR': '10.42.1.0/24', 'podCIDRs': ['10.42.1.0/24'], 'unschedulable': false,"
	        "   'taints': [{'key': 'node.kubernetes.io/not-ready', 'effect': 'NoExecute', 'timeAdded': "
	        "'2024-05-01T10:00:00Z'}]},"
	        " 'status': {'capacity': {'cpu': '4', 'memory': '3884Mi', 'pods': '110'},"
	        "   'allocatable': {'cpu': '3800m', 'memory': '3.5Gi', 'pods': 110},"
	        "   'conditions': [{'type': 'Ready', 'status': 'True', 'lastHeartbeatTime': '2024-05-01T10:00:00Z',"
	        "     'lastTransitionTime': '2024-05-01T10:00:00+02:00', 'reason': 'KubeletReady', 'message': 'ok'}],"
	        "   'addresses': [{'type': 'InternalIP', 'address': '192.168.1.21'}, {'type': 'Hostname', 'address': "
	        "'pi-1'}],"
	        "   'daemonEndpoints': {'kubeletEndpoint': {'Port': 10250}},"
	        "   'nodeInfo': {'architecture': 'arm64', 'operatingSystem': 'linux', 'kernelVersion': '6.6.31',"
	        "     'osImage': 'Debian', 'kubeletVersion': 'bramble-0.1', 'machineID': 'm', 'systemUUID': 's',"
	        "     'bootID': 'b', 'containerRuntimeVersion': 'bramble://0.1', 'kubeProxyVersion': 'bramble-0.1'},"
	        "   'images': [{'names': ['nginx:1.25'], 'sizeBytes': 1000}]}}",
	        NULL);
	CHECK_VALID("{'apiVersion': 'apps/v1', 'kind': 'ReplicaSet', 'metadata': {'name': 'web-5d8f'},"
	            " 'spec': {'replicas': 2, 'selector': {'matchExpressions': [{'key': 'app', 'operator': 'In', "
	            "'values': ['web']}]},"
	            "   'template': {'metadata': {'labels': {'app': 'web'}}, 'spec': {'containers': [{'name': 'w', "
	            "'image': 'w'}]}}},"
	            " 'status': {'replicas': 2, 'readyReplicas': 1, 'observedGeneration': 1}}",
	            NULL);
	CHECK_VALID("{'apiVersion': 'v1', 'kind': 'Endpoints', 'metadata': {'name': 'web', 'namespace': 'shop'},"
	            " 'subsets': [{'addresses': [{'ip': '10.42.1.5', 'nodeName': 'pi-1',"
	            "   'targetRef': {'kind': 'Pod', 'name': 'web-1', 'namespace': 'shop', 'uid': 'u'}}],"
	            "   'notReadyAddresses': [{'ip': 'fd00::5'}], 'ports': [{'name': 'http', 'port': 8080, 'protocol': "
	            "'TCP'}]}]}",
	            NULL);
	CHECK_VALID("{'apiVersion': 'v1', 'kind': 'Event', 'metadata': {'name': 'web-1.17c5', 'namespace': 'shop'},"
	            " 'involvedObject': {'kind': 'Pod', 'name': 'web-1', 'namespace': 'shop', 'apiVersion': 'v1'},"
	            " 'reason': 'Started', 'message': 'Started container web', 'type': 'Normal', 'count': 1,"
	            " 'source': {'component': 'kubelet', 'host': 'pi-1'}, 'firstTimestamp': '2024-05-01T10:00:00Z',"
	            " 'lastTimestamp': '2024-05-01T10:00:00Z', 'eventTime': '2024-05-01T10:00:00.123456Z',"
	            " 'reportingComponent': 'kubelet', 'reportingInstance': 'pi-1', 'action': 'Start'}",
	            NULL);
	CHECK_VALID(
	        "{'apiVersion': 'autoscaling/v2', 'kind': 'HorizontalPodAutoscaler', 'metadata': {'name': 'web'},"
	        " 'spec': {'scaleTargetRef': {'apiVersion': 'apps/v1', 'kind': 'Deployment', 'name': 'web'},"
	        "   'minReplicas': 2, 'maxReplicas': 10,"
	        "   'metrics': [{'type': 'Resource', 'resource': {'name': 'cpu', 'target': {'type': 'Utilization', "
	        "'averageUtilization': 70}}}],"
	        "   'behavior': {'scaleDown': {'stabilizationWindowSeconds': 300,"
	        "     'policies': [{'type': 'Percent', 'value': 50, 'periodSeconds': 60}], 'selectPolicy': 'Max'}}},"
	        " 'status': {'currentReplicas': 2, 'desiredReplicas': 3,"
	        "   'currentMetrics': [{'type': 'Resource', 'resource': {'name': 'cpu', 'current': "
	        "{'averageUtilization': 80}}}]}}",
	        NULL);
	CHECK_VALID("{'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease', 'metadata': {'name': 'pi-1', "
	            "'namespace': 'kube-node-lease'},"
	            " 'spec': {'holderIdentity': 'pi-1', 'leaseDurationSeconds': 40, 'renewTime': "
	            "'2024-05-01T10:00:00.000000Z',"
	            "   'acquireTime': '2024-05-01T09:00:00Z', 'leaseTransitions': 0}}",
	            NULL);
}

TEST(pod_with_probes_volumes_env_affinity_and_status_is_valid)
{
	CHECK_VALID(
	        POD,
	        "{'spec': {'initContainers': [{'name': 'init', 'image': 'busybox', 'command': ['sh', '-c', 'true']}],"
	        " 'containers': [{'name': 'web', 'image': 'nginx', 'workingDir': '/srv', 'args': ['-g', 'daemon off;'],"
	        "   'ports': [{'name': 'http', 'containerPort': 80, 'hostPort': 8080, 'protocol': 'TCP', 'hostIP': "
	        "'0.0.0.0'}],"
	        "   'env': [{'name': 'POD', 'valueFrom': {'fieldRef': {'fieldPath': 'metadata.name'}}},"
	        "           {'name': 'MEM', 'valueFrom': {'resourceFieldRef': {'resource': 'limits.memory', 'divisor': "
	        "'1Mi'}}},"
	        "           {'name': 'C', 'valueFrom': {'configMapKeyRef': {'name': 'c', 'key': 'k', 'optional': "
	        "true}}}],"
	        "   'envFrom': [{'prefix': 'S_', 'secretRef': {'name': 's'}}],"
	        "   'startupProbe': {'exec': {'command': ['cat', '/tmp/ready']}, 'failureThreshold': 30},"
	        "   'livenessProbe': {'httpGet': {'path': '/', 'port': 80, 'scheme': 'HTTPS',"
	        "     'httpHeaders': [{'name': 'X', 'value': 'y'}]}, 'terminationGracePeriodSeconds': 10},"
	        "   'lifecycle': {'preStop': {'exec': {'command': ['nginx', '-s', 'quit']}}, 'postStart': {'sleep': "
	        "{'seconds': 1}}},"
	        "   'securityContext': {'runAsUser': 1000, 'runAsNonRoot': true, 'readOnlyRootFilesystem': true,"
	        "     'allowPrivilegeEscalation': false, 'capabilities': {'drop': ['ALL'], 'add': "
	        "['NET_BIND_SERVICE']}},"
	        "   'volumeMounts': [{'name': 'cache', 'mountPath': '/cache'}, {'name': 'dev', 'mountPath': "
	        "'/dev/i2c-1'},"
	        "                    {'name': 's', 'mountPath': '/s', 'subPath': 'x'}],"
	        "   'stdin': false, 'tty': false, 'terminationMessagePolicy': 'FallbackToLogsOnError'}],"
	        " 'volumes': [{'name': 'cache', 'emptyDir': {'medium': 'Memory', 'sizeLimit': '64Mi'}},"
	        "   {'name': 'dev', 'hostPath': {'path': '/dev/i2c-1', 'type': 'CharDevice'}},"
	        "   {'name': 's', 'secret': {'secretName': 's', 'items': [{'key': 'a', 'path': 'a', 'mode': 256}], "
	        "'defaultMode': 256}}],"
	        " 'affinity': {'nodeAffinity': {'requiredDuringSchedulingIgnoredDuringExecution': {'nodeSelectorTerms':"
	        "     [{'matchExpressions': [{'key': 'kubernetes.io/arch', 'operator': 'In', 'values': ['arm64', "
	        "'arm']}]}]},"
	        "   'preferredDuringSchedulingIgnoredDuringExecution': [{'weight': 10, 'preference':"
	        "     {'matchExpressions': [{'key': 'disk', 'operator': 'Exists'}]}}]},"
	        "   'podAntiAffinity': {'preferredDuringSchedulingIgnoredDuringExecution': [{'weight': 100,"
	        "     'podAffinityTerm': {'labelSelector': {'matchLabels': {'app': 'web'}}, 'topologyKey': "
	        "'kubernetes.io/hostname'}}]}},"
	        " 'tolerations': [{'key': 'k', 'operator': 'Equal', 'value': 'v', 'effect': 'NoExecute', "
	        "'tolerationSeconds': 30},"
	        "   {'operator': 'Exists'}],"
	        " 'nodeName': 'pi-1', 'serviceAccountName': 'default', 'hostNetwork': false, 'hostname': 'web',"
	        " 'priority': 0, 'priorityClassName': 'edge', 'activeDeadlineSeconds': 60,"
	        " 'securityContext': {'fsGroup': 2000, 'runAsGroup': 3000}, 'imagePullSecrets': [{'name': 'reg'}]},"
	        "'status': {'phase': 'Running', 'podIP': '10.42.1.5', 'podIPs': [{'ip': '10.42.1.5'}], 'hostIP': "
	        "'192.168.1.21',"
	        " 'startTime': '2024-05-01T10:00:00Z', 'qosClass': 'Burstable',"
	        " 'conditions': [{'type': 'Ready', 'status': 'True', 'lastProbeTime': null, 'lastTransitionTime': "
	        "'2024-05-01T10:00:00Z'}],"
	        " 'containerStatuses': [{'name': 'web', 'ready': true, 'restartCount': 2, 'image': 'nginx', 'imageID': "
	        "'sha256:ab',"
	        "   'containerID': 'bramble://1', 'started': true, 'state': {'running': {'startedAt': "
	        "'2024-05-01T10:00:00Z'}},"
	        "   'lastState': {'terminated': {'exitCode': 137, 'reason': 'OOMKilled', 'finishedAt': "
	        "'2024-05-01T09:59:00Z'}}}]}}");
}

/* ---- schema errors: unknown fields, types, enums, ranges ---- */

TEST(unknown_fields_are_named_by_their_full_path)
{
	CHECK_INVALID(DEPLOYMENT,
	              "{'spec': {'template': {'spec': {'containers': [{'name': 'a', 'image': 'a'},"
	              " {'name': 'b', 'image': 'b', 'imagePullPolicyy': 'Always'}]}}}}",
	              "spec.template.spec.containers[1].imagePullPolicyy",
	              "spec.template.spec.containers[1].imagePullPolicyy: unknown field");
	CHECK_INVALID(POD, "{'metadata': {'managedFields': []}}", "metadata.managedFields", "unknown field");
	CHECK_INVALID(POD, "{'spec': {'topologySpreadConstraints': []}}", "spec.topologySpreadConstraints",
	              "unknown field");
	CHECK_INVALID(POD, "{'extra': 1}", "extra", "extra: unknown field");
	CHECK_INVALID(CONFIGMAP, "{'spec': {}}", "spec", "unknown field");
	CHECK_INVALID(POD, "{'spec': {'volumes': [{'name': 'v', 'persistentVolumeClaim': {'claimName': 'x'}}]}}",
	              "spec.volumes[0].persistentVolumeClaim", "unknown field");
}

TEST(duplicate_fields_are_refused)
{
	struct error err = { 0 };
	cJSON *pod = parse("{'apiVersion': 'v1', 'kind': 'Pod', 'kind': 'Pod', 'metadata': {'name': 'a'},"
	                   " 'spec': {'containers': [{'name': 'a', 'image': 'a'}]}}");
	CHECK_INT(object_validate(kind_lookup("v1", "Pod"), pod, &err), ==, -EINVAL);
	CHECK_STR(err.message, "kind: duplicate field");
	cJSON_Delete(pod);
}

TEST(types_are_checked)
{
	CHECK_INVALID(DEPLOYMENT, "{'spec': {'replicas': 'three'}}", "spec.replicas",
	              "spec.replicas: Invalid value: \"three\": must be of type integer");
	CHECK_INVALID(DEPLOYMENT, "{'spec': {'replicas': 1.5}}", "spec.replicas",
	              "Invalid value: 1.5: must be of type integer");
	CHECK_INVALID(POD, "{'spec': {'hostNetwork': 'yes'}}", "spec.hostNetwork", "must be of type boolean");
	CHECK_INVALID(POD, "{'spec': {'containers': {'name': 'a'}}}", "spec.containers",
	              "Invalid value: \"object\": must be of type array");
	CHECK_INVALID(POD, "{'metadata': {'labels': {'a': 1}}}", "metadata.labels[a]", "must be of type string");
	CHECK_INVALID(POD, "{'metadata': 'web'}", "metadata", "must be of type object");
	CHECK_INVALID(SERVICE, "{'spec': {'ports': [{'port': 80, 'targetPort': true}]}}", "spec.ports[0].targetPort",
	              "must be of type integer or string");
}

TEST(required_values)
{
	CHECK_INVALID(POD, "{'spec': {'containers': []}}", "spec.containers", "spec.containers: Required value");
	CHECK_INVALID(POD, "{'spec': {'containers': [{'name': 'web'}]}}", "spec.containers[0].image",
	              "spec.containers[0].image: Required value");
	CHECK_INVALID(POD, "{'spec': null}", "spec", "spec: Required value");
	struct error err = { 0 };
	cJSON *pod = parse(
	        "{'kind': 'Pod', 'metadata': {'name': 'a'}, 'spec': {'containers': [{'name': 'a', 'image': 'a'}]}}");
	CHECK_INT(object_validate(kind_lookup("v1", "Pod"), pod, &err), ==, -EINVAL);
	CHECK_STR(err.message, "apiVersion: Required value");
	cJSON_Delete(pod);
	CHECK_INVALID(POD, "{'metadata': {'name': null}}", "metadata.name", "metadata.name: Required value");
	CHECK_VALID(POD, "{'metadata': {'name': null, 'generateName': 'web-'}}");
	CHECK_INVALID(SERVICE, "{'spec': {'ports': [{'name': 'http'}]}}", "spec.ports[0].port", "Required value");
	CHECK_INVALID(SERVICE, "{'spec': {'ports': []}}", "spec.ports", "Required value");
	CHECK_VALID(SERVICE, "{'spec': {'ports': [], 'clusterIP': 'None'}}");
}

TEST(enums_use_kubernetes_wording)
{
	CHECK_INVALID(POD, "{'spec': {'containers': [{'name': 'a', 'image': 'a', 'imagePullPolicy': 'Foo'}]}}",
	              "spec.containers[0].imagePullPolicy",
	              "spec.containers[0].imagePullPolicy: Unsupported value: \"Foo\": supported values: \"Always\", "
	              "\"IfNotPresent\", \"Never\"");
	CHECK_INVALID(POD, "{'spec': {'restartPolicy': 'Sometimes'}}", "spec.restartPolicy",
	              "Unsupported value: \"Sometimes\"");
	CHECK_INVALID(POD, "{'spec': {'dnsPolicy': 'Google'}}", "spec.dnsPolicy", "Unsupported value");
	CHECK_INVALID(POD, "{'spec': {'dnsPolicy': 'None'}}", "spec.dnsConfig",
	              "must provide `dnsConfig` when `dnsPolicy` is None");
	CHECK_INVALID(POD, "{'spec': {'dnsConfig': {'nameservers': ['1.1.1.1', '1.0.0.1', '8.8.8.8', '9.9.9.9']}}}",
	              "spec.dnsConfig.nameservers", "must not have more than 3 nameservers");
	CHECK_INVALID(POD, "{'spec': {'dnsConfig': {'nameservers': ['one.one']}}}", "spec.dnsConfig.nameservers[0]",
	              "");
	CHECK_INVALID(POD,
	              "{'spec': {'containers': [{'name': 'a', 'image': 'a', 'ports': [{'containerPort': 1, 'protocol': "
	              "'ICMP'}]}]}}",
	              "spec.containers[0].ports[0].protocol", "supported values: \"TCP\", \"UDP\", \"SCTP\"");
	CHECK_INVALID(POD, "{'status': {'phase': 'Sleeping'}}", "status.phase", "Unsupported value");
}

TEST(ranges_and_lengths)
{
	CHECK_INVALID(DEPLOYMENT, "{'spec': {'replicas': -1}}", "spec.replicas",
	              "spec.replicas: Invalid value: -1: must be greater than or equal to 0");
	CHECK_VALID(DEPLOYMENT, "{'spec': {'replicas': 0}}");
	CHECK_INVALID(POD, "{'spec': {'containers': [{'name': 'a', 'image': 'a', 'ports': [{'containerPort': 0}]}]}}",
	              "spec.containers[0].ports[0].containerPort",
	              "Invalid value: 0: must be greater than or equal to 1");
	CHECK_INVALID(POD,
	              "{'spec': {'containers': [{'name': 'a', 'image': 'a', 'ports': [{'containerPort': 65536}]}]}}",
	              "spec.containers[0].ports[0].containerPort",
	              "Invalid value: 65536: must be less than or equal to 65535");
	CHECK_INVALID(SERVICE, "{'spec': {'ports': [{'port': 80, 'targetPort': 70000}]}}", "spec.ports[0].targetPort",
	              "must be between 1 and 65535, inclusive");
	CHECK_INVALID(POD, "{'spec': {'terminationGracePeriodSeconds': -5}}", "spec.terminationGracePeriodSeconds",
	              "Invalid value: -5: must be greater than or equal to 0");
	CHECK_INVALID(POD,
	              "{'spec': {'containers': [{'name': 'a', 'image': 'a', 'readinessProbe': {'exec': {}, "
	              "'periodSeconds': 0}}]}}",
	              "spec.containers[0].readinessProbe.periodSeconds", "must be greater than or equal to 1");
	CHECK_INVALID("{'apiVersion': 'autoscaling/v2', 'kind': 'HorizontalPodAutoscaler', 'metadata': {'name': 'h'},"
	              " 'spec': {'scaleTargetRef': {'kind': 'Deployment', 'name': 'web'}, 'minReplicas': 5, "
	              "'maxReplicas': 2}}",
	              NULL, "spec.maxReplicas", "must be greater than or equal to `minReplicas`");
}

/* ---- metadata ---- */

TEST(names_follow_the_kind)
{
	CHECK_INVALID(POD, "{'metadata': {'name': 'Web_1'}}", "metadata.name",
	              "metadata.name: Invalid value: \"Web_1\": a lowercase RFC 1123 subdomain");
	CHECK_VALID(POD, "{'metadata': {'name': 'web.v1-2'}}");
	char patch[400];
	char long_name[70];
	memset(long_name, 'a', 64);
	long_name[64] = '\0';
	snprintf(patch, sizeof(patch), "{'metadata': {'name': '%s'}}", long_name);
	CHECK_INVALID(SERVICE, patch, "metadata.name", "must be no more than 63 characters");
	CHECK_VALID(CONFIGMAP, patch);
	CHECK_INVALID("{'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': 'a.b'}}", NULL, "metadata.name",
	              "RFC 1123 label");
	CHECK_INVALID(SERVICE, "{'metadata': {'name': '1web'}}", "metadata.name", "DNS-1035 label");
	CHECK_INVALID(POD, "{'metadata': {'namespace': 'Shop'}}", "metadata.namespace", "RFC 1123 label");
	CHECK_INVALID("{'apiVersion': 'v1', 'kind': 'Node', 'metadata': {'name': 'pi-1', 'namespace': 'default'}}",
	              NULL, "metadata.namespace", "Forbidden: not allowed on this type");
	/* the API server fills the namespace of a namespaced object from its URL */
	CHECK_VALID(POD, "{'metadata': {'namespace': null}}");
}

TEST(label_and_annotation_syntax)
{
	CHECK_VALID(POD, "{'metadata': {'labels': {'app.kubernetes.io/name': 'web', 'empty': '', 'A_b.c': 'X-1'}}}");
	CHECK_INVALID(POD, "{'metadata': {'labels': {'bad key': 'x'}}}", "metadata.labels",
	              "metadata.labels: Invalid value: \"bad key\": name part must consist of alphanumeric characters");
	CHECK_INVALID(POD, "{'metadata': {'labels': {'Example.com/a': 'x'}}}", "metadata.labels", "prefix part");
	CHECK_INVALID(POD, "{'metadata': {'labels': {'/a': 'x'}}}", "metadata.labels", "prefix part must be non-empty");
	CHECK_INVALID(POD, "{'metadata': {'labels': {'a/': 'x'}}}", "metadata.labels", "name part must be non-empty");
	CHECK_INVALID(POD, "{'metadata': {'labels': {'a': '-x'}}}", "metadata.labels",
	              "Invalid value: \"-x\": a valid label must be an empty string");
	CHECK_INVALID(POD,
	              "{'metadata': {'labels': {'a': "
	              "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'}}}",
	              "metadata.labels", "must be no more than 63 characters");
	CHECK_VALID(
	        POD,
	        "{'metadata': {'annotations': {'kubectl.kubernetes.io/last-applied-configuration': '{\\\"a\\\": 1}',"
	        " 'note': 'any text at all, even: spaces!'}}}");
	CHECK_INVALID(POD, "{'metadata': {'annotations': {'a b': 'x'}}}", "metadata.annotations", "name part");
	CHECK_INVALID(POD, "{'metadata': {'creationTimestamp': 'yesterday'}}", "metadata.creationTimestamp",
	              "RFC 3339");
	CHECK_VALID(POD,
	            "{'metadata': {'ownerReferences': [{'apiVersion': 'apps/v1', 'kind': 'ReplicaSet', 'name': 'r',"
	            " 'uid': 'u', 'controller': true, 'blockOwnerDeletion': true}], 'finalizers': "
	            "['bramble.io/cleanup']}}");
	CHECK_INVALID(POD, "{'metadata': {'ownerReferences': [{'apiVersion': 'v1', 'kind': 'K', 'name': 'r'}]}}",
	              "metadata.ownerReferences[0].uid", "Required value");
	CHECK_INVALID(POD,
	              "{'metadata': {'ownerReferences': [{'apiVersion': 'v1', 'kind': 'K', 'name': 'a', 'uid': '1', "
	              "'controller': true},"
	              " {'apiVersion': 'v1', 'kind': 'K', 'name': 'b', 'uid': '2', 'controller': true}]}}",
	              "metadata.ownerReferences", "Only one reference can have Controller set to true");
}

TEST(api_version_and_kind_must_match)
{
	struct error err = { 0 };
	cJSON *pod = parse(POD);
	CHECK_INT(object_validate(kind_lookup("apps/v1", "Deployment"), pod, &err), ==, -EINVAL);
	CHECK_STR(err.field, "apiVersion");
	CHECK_STR(err.message, "apiVersion: Invalid value: \"v1\": must be \"apps/v1\"");
	CHECK_INT(object_validate(kind_lookup("v1", "Service"), pod, &err), ==, -EINVAL);
	CHECK_STR(err.message, "kind: Invalid value: \"Pod\": must be \"Service\"");
	cJSON_Delete(pod);
}

/* ---- pod rules ---- */

TEST(container_and_volume_names)
{
	CHECK_INVALID(POD, "{'spec': {'containers': [{'name': 'Web', 'image': 'a'}]}}", "spec.containers[0].name",
	              "RFC 1123 label");
	CHECK_INVALID(POD, "{'spec': {'containers': [{'name': 'a', 'image': 'a'}, {'name': 'a', 'image': 'b'}]}}",
	              "spec.containers[1].name", "spec.containers[1].name: Duplicate value: \"a\"");
	CHECK_INVALID(POD, "{'spec': {'initContainers': [{'name': 'web', 'image': 'a'}]}}", "spec.containers[0].name",
	              "Duplicate value: \"web\"");
	CHECK_INVALID(POD, "{'spec': {'volumes': [{'name': 'v', 'emptyDir': {}}, {'name': 'v', 'emptyDir': {}}]}}",
	              "spec.volumes[1].name", "Duplicate value: \"v\"");
	CHECK_INVALID(POD,
	              "{'spec': {'containers': [{'name': 'a', 'image': 'a', 'volumeMounts': [{'name': 'cache', "
	              "'mountPath': '/c'}]}]}}",
	              "spec.containers[0].volumeMounts[0].name", "Not found: \"cache\"");
	CHECK_INVALID(POD, "{'spec': {'volumes': [{'name': 'v'}]}}", "spec.volumes[0]",
	              "Required value: must specify volume type");
	CHECK_INVALID(POD, "{'spec': {'volumes': [{'name': 'v', 'emptyDir': {}, 'hostPath': {'path': '/x'}}]}}",
	              "spec.volumes[0].hostPath", "Forbidden: may not specify more than 1 volume type");
	CHECK_INVALID(POD, "{'spec': {'volumes': [{'name': 'v', 'hostPath': {'path': '/x', 'type': 'Pipe'}}]}}",
	              "spec.volumes[0].hostPath.type", "Unsupported value");
}

TEST(probes_env_and_quantities)
{
	CHECK_INVALID(POD,
	              "{'spec': {'containers': [{'name': 'a', 'image': 'a', 'livenessProbe': {'periodSeconds': 5}}]}}",
	              "spec.containers[0].livenessProbe", "must specify handler type");
	CHECK_INVALID(POD,
	              "{'spec': {'containers': [{'name': 'a', 'image': 'a', 'livenessProbe': {'exec': {}, 'tcpSocket': "
	              "{'port': 1}}}]}}",
	              "spec.containers[0].livenessProbe.tcpSocket", "may not specify more than 1 handler type");
	CHECK_INVALID(POD,
	              "{'spec': {'containers': [{'name': 'a', 'image': 'a', 'livenessProbe': {'httpGet': {'port': "
	              "'Http_Port'}}}]}}",
	              "spec.containers[0].livenessProbe.httpGet.port", "must be a port name");
	CHECK_INVALID(POD,
	              "{'spec': {'containers': [{'name': 'a', 'image': 'a', 'env': [{'name': 'X', 'value': 'v',"
	              " 'valueFrom': {'fieldRef': {'fieldPath': 'metadata.name'}}}]}]}}",
	              "spec.containers[0].env[0].valueFrom", "may not be specified when `value` is not empty");
	CHECK_INVALID(
	        POD, "{'spec': {'containers': [{'name': 'a', 'image': 'a', 'env': [{'name': 'X', 'valueFrom': {}}]}]}}",
	        "spec.containers[0].env[0].valueFrom", "Required value");
	const char *good[] = { "100m", "0.5", "64Mi", "1G", "2e3", "1E", "12Ki", "1.5Gi", "+3", "5e-3", ".5" };
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		char patch[200];
		snprintf(patch, sizeof(patch),
		         "{'spec': {'containers': [{'name': 'a', 'image': 'a', 'resources': {'limits': {'cpu': "
		         "'%s'}}}]}}",
		         good[i]);
		CHECK_VALID(POD, patch);
	}
	const char *bad[] = { "abc", "1.2.3", "64MB", "m", "1e", "", "1 Gi", "1Mi2", "0x10" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char patch[200];
		snprintf(patch, sizeof(patch),
		         "{'spec': {'containers': [{'name': 'a', 'image': 'a', 'resources': {'requests': {'memory': "
		         "'%s'}}}]}}",
		         bad[i]);
		struct error e = check_patched(POD, patch);
		if (!e.code)
			unit_fail(__FILE__, __LINE__, "quantity \"%s\" accepted", bad[i]);
		CHECK_STR(e.field, "spec.containers[0].resources.requests[memory]");
		CHECK_CONTAINS(e.message, "quantities must match the regular expression");
	}
	CHECK_INVALID(
	        POD,
	        "{'spec': {'containers': [{'name': 'a', 'image': 'a', 'resources': {'requests': {'cpu': '-1'}}}]}}",
	        "spec.containers[0].resources.requests[cpu]", "must be greater than or equal to 0");
}

TEST(tolerations_and_taints)
{
	CHECK_INVALID(POD, "{'spec': {'tolerations': [{'key': 'k', 'operator': 'Exists', 'value': 'v'}]}}",
	              "spec.tolerations[0].operator", "value must be empty when `operator` is 'Exists'");
	CHECK_INVALID(POD, "{'spec': {'tolerations': [{'key': 'k', 'operator': 'Like'}]}}",
	              "spec.tolerations[0].operator",
	              "Unsupported value: \"Like\": supported values: \"Exists\", \"Equal\"");
	CHECK_INVALID(POD, "{'spec': {'tolerations': [{'operator': 'Equal', 'value': 'v'}]}}",
	              "spec.tolerations[0].operator", "operator must be Exists when `key` is empty");
	CHECK_INVALID(POD, "{'spec': {'tolerations': [{'key': 'k', 'effect': 'NoSchedule', 'tolerationSeconds': 5}]}}",
	              "spec.tolerations[0].effect", "effect must be 'NoExecute'");
	CHECK_INVALID(POD, "{'spec': {'tolerations': [{'key': 'k', 'effect': 'Never'}]}}", "spec.tolerations[0].effect",
	              "supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"");
	CHECK_INVALID("{'apiVersion': 'v1', 'kind': 'Node', 'metadata': {'name': 'pi'},"
	              " 'spec': {'taints': [{'key': 'k', 'effect': 'NoRun'}]}}",
	              NULL, "spec.taints[0].effect", "Unsupported value: \"NoRun\"");
	CHECK_INVALID(
	        "{'apiVersion': 'v1', 'kind': 'Node', 'metadata': {'name': 'pi'}, 'spec': {'taints': [{'key': 'k'}]}}",
	        NULL, "spec.taints[0].effect", "Required value");
}

TEST(affinity_requirements)
{
	CHECK_INVALID(POD,
	              "{'spec': {'affinity': {'nodeAffinity': {'requiredDuringSchedulingIgnoredDuringExecution':"
	              " {'nodeSelectorTerms': [{'matchExpressions': [{'key': 'a', 'operator': 'In'}]}]}}}}}",
	              "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]."
	              "matchExpressions[0].values",
	              "Required value");
	CHECK_INVALID(POD,
	              "{'spec': {'affinity': {'podAffinity': {'requiredDuringSchedulingIgnoredDuringExecution':"
	              " [{'labelSelector': {'matchExpressions': [{'key': 'a', 'operator': 'Has'}]}, 'topologyKey': "
	              "'zone'}]}}}}",
	              "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector."
	              "matchExpressions[0].operator",
	              "Unsupported value: \"Has\"");
	CHECK_INVALID(POD,
	              "{'spec': {'affinity': {'podAffinity': {'requiredDuringSchedulingIgnoredDuringExecution':"
	              " [{'labelSelector': {}}]}}}}",
	              "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey",
	              "Required value");
}

/* ---- workload rules ---- */

TEST(workload_selectors_must_match_template_labels)
{
	CHECK_INVALID(DEPLOYMENT, "{'spec': {'selector': {'matchLabels': {'app': 'api'}}}}",
	              "spec.template.metadata.labels",
	              "spec.template.metadata.labels: Invalid value: {\"app\":\"web\",\"tier\":\"front\"}: `selector` "
	              "does not "
	              "match template `labels`");
	CHECK_INVALID(DEPLOYMENT, "{'spec': {'selector': null}}", "spec.selector", "spec.selector: Required value");
	CHECK_INVALID(DEPLOYMENT, "{'spec': {'selector': {'matchLabels': null}}}", "spec.selector",
	              "empty selector is invalid for deployment");
	CHECK_INVALID(DEPLOYMENT,
	              "{'spec': {'selector': {'matchExpressions': [{'key': 'app', 'operator': 'Matches', 'values': "
	              "['x']}]}}}",
	              "spec.selector.matchExpressions[0].operator",
	              "spec.selector.matchExpressions[0].operator: Unsupported value: \"Matches\"");
	CHECK_VALID(DEPLOYMENT,
	            "{'spec': {'selector': {'matchLabels': null, 'matchExpressions': [{'key': 'tier', 'operator': "
	            "'In', 'values': ['front', 'back']}, {'key': 'canary', 'operator': 'DoesNotExist'}]}}}");
	CHECK_INVALID(DAEMONSET, "{'spec': {'template': {'metadata': {'labels': null}}}}",
	              "spec.template.metadata.labels", "does not match");
	CHECK_INVALID(DEPLOYMENT, "{'spec': {'template': null}}", "spec.template", "Required value");
	/* a Job's selector is optional, but must match when given */
	CHECK_VALID(JOB, NULL);
	CHECK_INVALID(JOB, "{'spec': {'selector': {'matchLabels': {'a': 'b'}}}}", "spec.template.metadata.labels",
	              "does not match");
}

TEST(workload_restart_policies)
{
	CHECK_INVALID(DEPLOYMENT, "{'spec': {'template': {'spec': {'restartPolicy': 'Never'}}}}",
	              "spec.template.spec.restartPolicy",
	              "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"");
	CHECK_INVALID(DAEMONSET, "{'spec': {'template': {'spec': {'restartPolicy': 'OnFailure'}}}}",
	              "spec.template.spec.restartPolicy", "Unsupported value");
	CHECK_INVALID(JOB, "{'spec': {'template': {'spec': {'restartPolicy': 'Always'}}}}",
	              "spec.template.spec.restartPolicy",
	              "Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"");
	CHECK_INVALID(JOB, "{'spec': {'template': {'spec': {'restartPolicy': null}}}}",
	              "spec.template.spec.restartPolicy", "Required value: valid values: \"OnFailure\", \"Never\"");
	CHECK_VALID(JOB, "{'spec': {'template': {'spec': {'restartPolicy': 'OnFailure'}}}}");
}

TEST(deployment_strategies)
{
	CHECK_INVALID(DEPLOYMENT, "{'spec': {'strategy': {'type': 'Recreate', 'rollingUpdate': {'maxSurge': 1}}}}",
	              "spec.strategy.rollingUpdate",
	              "Forbidden: may not be specified when strategy `type` is 'Recreate'");
	CHECK_VALID(DEPLOYMENT, "{'spec': {'strategy': {'type': 'Recreate'}}}");
	CHECK_INVALID(DEPLOYMENT, "{'spec': {'strategy': {'rollingUpdate': {'maxSurge': 0, 'maxUnavailable': '0%'}}}}",
	              "spec.strategy.rollingUpdate.maxUnavailable", "may not be 0 when `maxSurge` is 0");
	CHECK_INVALID(DEPLOYMENT, "{'spec': {'strategy': {'rollingUpdate': {'maxSurge': '0%', 'maxUnavailable': 0}}}}",
	              "spec.strategy.rollingUpdate.maxUnavailable",
	              "Invalid value: 0: may not be 0 when `maxSurge` is 0");
	CHECK_VALID(DEPLOYMENT, "{'spec': {'strategy': {'rollingUpdate': {'maxSurge': 1, 'maxUnavailable': 0}}}}");
	CHECK_INVALID(DEPLOYMENT, "{'spec': {'strategy': {'rollingUpdate': {'maxUnavailable': '150%'}}}}",
	              "spec.strategy.rollingUpdate.maxUnavailable", "must not be greater than 100%");
	CHECK_INVALID(DEPLOYMENT, "{'spec': {'strategy': {'rollingUpdate': {'maxSurge': 'half'}}}}",
	              "spec.strategy.rollingUpdate.maxSurge", "a valid percent string");
	CHECK_INVALID(DEPLOYMENT, "{'spec': {'strategy': {'type': 'BlueGreen'}}}", "spec.strategy.type",
	              "supported values: \"RollingUpdate\", \"Recreate\"");
	CHECK_INVALID(DAEMONSET, "{'spec': {'updateStrategy': {'type': 'Recreate'}}}", "spec.updateStrategy.type",
	              "supported values: \"RollingUpdate\", \"OnDelete\"");
	CHECK_INVALID(DAEMONSET, "{'spec': {'updateStrategy': {'rollingUpdate': {'maxUnavailable': 0}}}}",
	              "spec.updateStrategy.rollingUpdate.maxUnavailable", "may not be 0 when `maxSurge` is 0");
	CHECK_VALID(DAEMONSET, "{'spec': {'updateStrategy': {'type': 'OnDelete'}}}");
}

/* ---- services, config, secrets ---- */

TEST(service_rules)
{
	CHECK_INVALID(SERVICE, "{'spec': {'type': 'LoadBalancer'}}", "spec.type",
	              "spec.type: Unsupported value: \"LoadBalancer\": not supported by Bramble");
	CHECK_INVALID(SERVICE, "{'spec': {'type': 'ExternalName'}}", "spec.type", "not supported by Bramble");
	CHECK_VALID(SERVICE,
	            "{'spec': {'type': 'NodePort', 'ports': [{'name': 'http', 'port': 80, 'nodePort': 30080}],"
	            " 'externalTrafficPolicy': 'Local', 'sessionAffinity': 'ClientIP',"
	            " 'sessionAffinityConfig': {'clientIP': {'timeoutSeconds': 600}}, 'ipFamilies': ['IPv4'],"
	            " 'ipFamilyPolicy': 'SingleStack', 'clusterIP': '10.43.0.10', 'clusterIPs': ['10.43.0.10'],"
	            " 'publishNotReadyAddresses': true, 'internalTrafficPolicy': 'Cluster'}}");
	CHECK_INVALID(SERVICE, "{'spec': {'ports': [{'name': 'http', 'port': 80, 'nodePort': 30080}]}}",
	              "spec.ports[0].nodePort", "may not be used when `type` is 'ClusterIP'");
	CHECK_INVALID(SERVICE, "{'spec': {'ports': [{'name': 'a', 'port': 80, 'protocol': 'HTTP'}]}}",
	              "spec.ports[0].protocol",
	              "Unsupported value: \"HTTP\": supported values: \"TCP\", \"UDP\", \"SCTP\"");
	CHECK_INVALID(SERVICE, "{'spec': {'ports': [{'name': 'a', 'port': 80}, {'port': 443}]}}", "spec.ports[1].name",
	              "Required value");
	CHECK_INVALID(SERVICE, "{'spec': {'ports': [{'name': 'a', 'port': 80}, {'name': 'a', 'port': 443}]}}",
	              "spec.ports[1].name", "Duplicate value: \"a\"");
	CHECK_INVALID(SERVICE, "{'spec': {'clusterIP': '10.43.0.300'}}", "spec.clusterIP", "valid IP address");
	CHECK_INVALID(SERVICE, "{'spec': {'sessionAffinity': 'Sticky'}}", "spec.sessionAffinity",
	              "supported values: \"None\", \"ClientIP\"");
	CHECK_INVALID(SERVICE, "{'spec': {'ipFamilies': ['IPv5']}}", "spec.ipFamilies[0]", "Unsupported value");
}

TEST(configmap_and_secret_rules)
{
	CHECK_INVALID(CONFIGMAP, "{'data': {'bad/key': 'x'}}", "data[bad/key]", "a valid config key must consist of");
	CHECK_VALID(CONFIGMAP, "{'binaryData': {'logo.png': 'iVBORw0KGgo='}, 'immutable': true}");
	CHECK_INVALID(CONFIGMAP, "{'binaryData': {'LOG_LEVEL': 'aW5mbw=='}}", "binaryData[LOG_LEVEL]",
	              "duplicate of key present in data");
	CHECK_INVALID(CONFIGMAP, "{'binaryData': {'x': 'not base64!'}}", "binaryData[x]", "must be valid base64");
	CHECK_INVALID(SECRET, "{'data': {'token': 'c2VjcmV0='}}", "data[token]", "must be valid base64");
	CHECK_INVALID(SECRET, "{'data': {'token': 'abc'}}", "data[token]",
	              "data[token]: Invalid value: \"<value omitted>\"");
	CHECK_VALID(SECRET,
	            "{'data': {'a': '', 'b': 'YQ==', 'c': 'YWI=', 'd': 'YWJj\\nZGVm'}, 'stringData': {'e': 'plain'},"
	            " 'type': 'kubernetes.io/basic-auth'}");
	CHECK_INVALID(SECRET, "{'stringData': {'a b': 'x'}}", "stringData[a b]", "valid config key");
	CHECK_INVALID(SECRET, "{'data': {'..': 'YQ=='}}", "data[..]", "valid config key");
}

TEST(events_namespaces_and_hpa)
{
	const char *event = "{'apiVersion': 'v1', 'kind': 'Event', 'metadata': {'name': 'e'},"
	                    " 'involvedObject': {'kind': 'Pod', 'name': 'p'}}";
	CHECK_VALID(event, NULL);
	CHECK_INVALID(event, "{'type': 'Error'}", "type", "supported values: \"Normal\", \"Warning\"");
	CHECK_INVALID(event, "{'involvedObject': null}", "involvedObject", "Required value");
	CHECK_INVALID(
	        "{'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': 'n'}, 'status': {'phase': 'Gone'}}",
	        NULL, "status.phase", "Unsupported value");
	const char *hpa =
	        "{'apiVersion': 'autoscaling/v2', 'kind': 'HorizontalPodAutoscaler', 'metadata': {'name': 'h'},"
	        " 'spec': {'scaleTargetRef': {'kind': 'Deployment', 'name': 'web'}, 'maxReplicas': 4}}";
	CHECK_VALID(hpa, NULL);
	CHECK_INVALID(hpa,
	              "{'spec': {'metrics': [{'type': 'Pods', 'resource': {'name': 'cpu', 'target': {'type': 'Value', "
	              "'value': 1}}}]}}",
	              "spec.metrics[0].type", "supported values: \"Resource\"");
	CHECK_INVALID(hpa,
	              "{'spec': {'metrics': [{'type': 'Resource', 'resource': {'name': 'cpu', 'target': {'type': "
	              "'Utilization'}}}]}}",
	              "spec.metrics[0].resource.target.averageUtilization", "Required value");
	CHECK_INVALID(hpa, "{'spec': {'behavior': {'scaleUp': {'stabilizationWindowSeconds': 4000}}}}",
	              "spec.behavior.scaleUp.stabilizationWindowSeconds", "must be less than or equal to 3600");
}

/* ---- defaults ---- */

static cJSON *defaulted(const char *manifest, const char *patch)
{
	cJSON *object = parse(manifest);
	struct error err = { 0 };
	if (patch) {
		cJSON *p = parse(patch);
		CHECK_OK(object_merge_patch(object, p, &err));
		cJSON_Delete(p);
	}
	object_apply_defaults(kind_of(object), object);
	return object;
}

static long long number_at(const cJSON *object, const char *dotted_path)
{
	char path[256];
	snprintf(path, sizeof(path), "%s", dotted_path);
	const cJSON *at = object;
	for (char *part = strtok(path, "."); part; part = strtok(NULL, "."))
		at = cJSON_GetObjectItemCaseSensitive(at, part);
	const cJSON *v = at;
	if (!cJSON_IsNumber(v))
		unit_fail(__FILE__, __LINE__, "%s is not a number", dotted_path);
	return (long long)v->valuedouble;
}

TEST(pod_defaults)
{
	cJSON *pod = defaulted(
	        POD,
	        "{'spec': {'containers': [{'name': 'a', 'image': 'nginx:1.25', 'ports': [{'containerPort': 80}],"
	        "  'readinessProbe': {'httpGet': {'port': 80}}, 'livenessProbe': {'exec': {'command': ['true']}}},"
	        " {'name': 'b', 'image': 'nginx'}, {'name': 'c', 'image': 'nginx:latest'},"
	        " {'name': 'd', 'image': 'registry:5000/nginx'}, {'name': 'e', 'image': 'nginx@sha256:abcd'},"
	        " {'name': 'f', 'image': 'nginx:1', 'imagePullPolicy': 'Never'}],"
	        " 'volumes': [{'name': 'c', 'configMap': {'name': 'x'}}, {'name': 's', 'secret': {'secretName': 'x'}},"
	        "  {'name': 'e', 'emptyDir': {}}]}}");
	CHECK_STR(object_string_at(pod, "spec.restartPolicy"), "Always");
	CHECK_STR(object_string_at(pod, "spec.dnsPolicy"), "ClusterFirst");
	CHECK_STR(object_string_at(pod, "spec.schedulerName"), "default-scheduler");
	CHECK_INT(number_at(pod, "spec.terminationGracePeriodSeconds"), ==, 30);
	const cJSON *containers = cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "spec"), "containers");
	const char *policies[] = { "IfNotPresent", "Always", "Always", "Always", "IfNotPresent", "Never" };
	for (int i = 0; i < 6; i++) {
		const cJSON *c = cJSON_GetArrayItem(containers, i);
		CHECK_STR(object_string_at(c, "imagePullPolicy"), policies[i]);
		CHECK_STR(object_string_at(c, "terminationMessagePath"), "/dev/termination-log");
		CHECK_STR(object_string_at(c, "terminationMessagePolicy"), "File");
	}
	const cJSON *a = cJSON_GetArrayItem(containers, 0);
	CHECK_STR(object_string_at(cJSON_GetArrayItem(cJSON_GetObjectItem(a, "ports"), 0), "protocol"), "TCP");
	CHECK_INT(number_at(a, "readinessProbe.timeoutSeconds"), ==, 1);
	CHECK_INT(number_at(a, "readinessProbe.periodSeconds"), ==, 10);
	CHECK_INT(number_at(a, "readinessProbe.successThreshold"), ==, 1);
	CHECK_INT(number_at(a, "readinessProbe.failureThreshold"), ==, 3);
	CHECK_INT(number_at(a, "livenessProbe.periodSeconds"), ==, 10);
	CHECK_STR(object_string_at(a, "readinessProbe.httpGet.scheme"), "HTTP");
	CHECK_STR(object_string_at(a, "readinessProbe.httpGet.path"), "/");
	const cJSON *volumes = cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "spec"), "volumes");
	CHECK_INT(number_at(cJSON_GetArrayItem(volumes, 0), "configMap.defaultMode"), ==, 420);
	CHECK_INT(number_at(cJSON_GetArrayItem(volumes, 1), "secret.defaultMode"), ==, 420);
	CHECK(!cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(volumes, 2), "emptyDir"), "defaultMode"));
	struct error err = { 0 };
	CHECK_OK(object_validate(kind_lookup("v1", "Pod"), pod, &err));
	cJSON_Delete(pod);
}

TEST(defaults_never_overwrite_given_values)
{
	cJSON *pod = defaulted(
	        POD,
	        "{'spec': {'restartPolicy': 'Never', 'dnsPolicy': 'Default', 'terminationGracePeriodSeconds': 0,"
	        " 'schedulerName': 'edge', 'containers': [{'name': 'a', 'image': 'a', 'terminationMessagePath': '/t',"
	        "  'ports': [{'containerPort': 53, 'protocol': 'UDP'}],"
	        "  'livenessProbe': {'httpGet': {'port': 1, 'path': '/h', 'scheme': 'HTTPS'}, 'periodSeconds': 3}}]}}");
	CHECK_STR(object_string_at(pod, "spec.restartPolicy"), "Never");
	CHECK_STR(object_string_at(pod, "spec.dnsPolicy"), "Default");
	CHECK_STR(object_string_at(pod, "spec.schedulerName"), "edge");
	CHECK_INT(number_at(pod, "spec.terminationGracePeriodSeconds"), ==, 0);
	const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "spec"), "containers"), 0);
	CHECK_STR(object_string_at(c, "terminationMessagePath"), "/t");
	CHECK_STR(object_string_at(cJSON_GetArrayItem(cJSON_GetObjectItem(c, "ports"), 0), "protocol"), "UDP");
	CHECK_INT(number_at(c, "livenessProbe.periodSeconds"), ==, 3);
	CHECK_STR(object_string_at(c, "livenessProbe.httpGet.path"), "/h");
	CHECK_STR(object_string_at(c, "livenessProbe.httpGet.scheme"), "HTTPS");
	cJSON_Delete(pod);
	/* wrong types are left for validation to report */
	pod = defaulted(POD, "{'spec': {'dnsPolicy': 7, 'containers': 'none'}}");
	CHECK(cJSON_IsNumber(cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "spec"), "dnsPolicy")));
	cJSON_Delete(pod);
	cJSON *odd = parse("{'apiVersion': 'v1', 'kind': 'Pod', 'spec': [1], 'metadata': 3}");
	object_apply_defaults(kind_lookup("v1", "Pod"), odd);
	cJSON_Delete(odd);
}

TEST(workload_defaults)
{
	cJSON *d = defaulted(DEPLOYMENT, "{'spec': {'replicas': null}}");
	CHECK_INT(number_at(d, "spec.replicas"), ==, 1);
	CHECK_INT(number_at(d, "spec.revisionHistoryLimit"), ==, 10);
	CHECK_INT(number_at(d, "spec.progressDeadlineSeconds"), ==, 600);
	CHECK_STR(object_string_at(d, "spec.strategy.type"), "RollingUpdate");
	CHECK_STR(object_string_at(d, "spec.strategy.rollingUpdate.maxSurge"), "25%");
	CHECK_STR(object_string_at(d, "spec.strategy.rollingUpdate.maxUnavailable"), "25%");
	CHECK_STR(object_string_at(d, "spec.template.spec.restartPolicy"), "Always");
	CHECK_STR(object_string_at(d, "spec.template.spec.dnsPolicy"), "ClusterFirst");
	cJSON_Delete(d);
	d = defaulted(DEPLOYMENT, "{'spec': {'strategy': {'type': 'Recreate'}}}");
	CHECK(!cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "spec"), "strategy"), "rollingUpdate"));
	cJSON_Delete(d);
	d = defaulted(DEPLOYMENT, "{'spec': {'strategy': {'rollingUpdate': {'maxSurge': 2}}}}");
	CHECK_INT(number_at(d, "spec.strategy.rollingUpdate.maxSurge"), ==, 2);
	CHECK_STR(object_string_at(d, "spec.strategy.rollingUpdate.maxUnavailable"), "25%");
	cJSON_Delete(d);

	cJSON *rs = defaulted(
	        "{'apiVersion': 'apps/v1', 'kind': 'ReplicaSet', 'metadata': {'name': 'r'},"
	        " 'spec': {'selector': {'matchLabels': {'a': 'b'}}, 'template': {'metadata': {'labels': {'a': 'b'}},"
	        "   'spec': {'containers': [{'name': 'c', 'image': 'c:1'}]}}}}",
	        NULL);
	CHECK_INT(number_at(rs, "spec.replicas"), ==, 1);
	CHECK_STR(object_string_at(rs, "spec.template.spec.restartPolicy"), "Always");
	cJSON_Delete(rs);

	cJSON *ds = defaulted(DAEMONSET, NULL);
	CHECK_STR(object_string_at(ds, "spec.updateStrategy.type"), "RollingUpdate");
	CHECK_INT(number_at(ds, "spec.updateStrategy.rollingUpdate.maxUnavailable"), ==, 1);
	CHECK_INT(number_at(ds, "spec.revisionHistoryLimit"), ==, 10);
	CHECK_STR(object_string_at(ds, "spec.template.spec.restartPolicy"), "Always");
	cJSON_Delete(ds);

	cJSON *job = defaulted(JOB, "{'spec': {'template': {'spec': {'restartPolicy': null}}}}");
	CHECK_INT(number_at(job, "spec.completions"), ==, 1);
	CHECK_INT(number_at(job, "spec.parallelism"), ==, 1);
	CHECK_INT(number_at(job, "spec.backoffLimit"), ==, 6);
	CHECK_STR(object_string_at(job, "spec.completionMode"), "NonIndexed");
	CHECK(!object_string_at(job, "spec.template.spec.restartPolicy"));
	CHECK_STR(object_string_at(job, "spec.template.spec.dnsPolicy"), "ClusterFirst");
	CHECK(!cJSON_GetObjectItem(cJSON_GetObjectItem(job, "spec"), "selector"));
	cJSON_Delete(job);
	/* a work queue: parallelism without completions keeps completions unset */
	job = defaulted(JOB, "{'spec': {'parallelism': 3}}");
	CHECK(!cJSON_GetObjectItem(cJSON_GetObjectItem(job, "spec"), "completions"));
	cJSON_Delete(job);
}

TEST(service_secret_and_hpa_defaults)
{
	cJSON *s = defaulted(
	        SERVICE, "{'spec': {'ports': [{'port': 80}, {'port': 53, 'protocol': 'UDP', 'targetPort': 5353}]}}");
	CHECK_STR(object_string_at(s, "spec.type"), "ClusterIP");
	CHECK_STR(object_string_at(s, "spec.sessionAffinity"), "None");
	const cJSON *ports = cJSON_GetObjectItem(cJSON_GetObjectItem(s, "spec"), "ports");
	CHECK_INT(number_at(cJSON_GetArrayItem(ports, 0), "targetPort"), ==, 80);
	CHECK_STR(object_string_at(cJSON_GetArrayItem(ports, 0), "protocol"), "TCP");
	CHECK_INT(number_at(cJSON_GetArrayItem(ports, 1), "targetPort"), ==, 5353);
	CHECK_STR(object_string_at(cJSON_GetArrayItem(ports, 1), "protocol"), "UDP");
	cJSON_Delete(s);
	s = defaulted(SERVICE, "{'spec': {'ports': [{'name': 'h', 'port': 80, 'targetPort': 'http'}]}}");
	CHECK_STR(object_string_at(cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(s, "spec"), "ports"), 0),
	                           "targetPort"),
	          "http");
	cJSON_Delete(s);
	cJSON *secret = defaulted(SECRET, "{'type': null}");
	CHECK_STR(object_string_at(secret, "type"), "Opaque");
	cJSON_Delete(secret);
	/* stringData is folded into data, encoded, as the Kubernetes API server does */
	secret = defaulted(SECRET, "{'stringData': {'token': 'hunter2', 'user': 'ab'}, 'data': {'keep': 'YQ=='}}");
	CHECK(!cJSON_GetObjectItem(secret, "stringData"));
	CHECK_STR(object_string_at(secret, "data.token"), "aHVudGVyMg==");
	CHECK_STR(object_string_at(secret, "data.user"), "YWI=");
	CHECK_STR(object_string_at(secret, "data.keep"), "YQ==");
	cJSON_Delete(secret);
	secret = defaulted(
	        "{'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {'name': 's'}, 'stringData': {'a': 'abc'}}", NULL);
	CHECK_STR(object_string_at(secret, "data.a"), "YWJj");
	cJSON_Delete(secret);
	secret = defaulted(SECRET, "{'stringData': {'a': 1}}");
	CHECK(cJSON_GetObjectItem(secret, "stringData"));
	cJSON_Delete(secret);
	cJSON *hpa = defaulted(
	        "{'apiVersion': 'autoscaling/v2', 'kind': 'HorizontalPodAutoscaler', 'metadata': {'name': 'h'},"
	        " 'spec': {'scaleTargetRef': {'kind': 'Deployment', 'name': 'web'}, 'maxReplicas': 4}}",
	        NULL);
	CHECK_INT(number_at(hpa, "spec.minReplicas"), ==, 1);
	cJSON_Delete(hpa);
}

/* ---- merge patch: the examples of RFC 7386, appendix A ---- */

TEST(merge_patch_follows_rfc7386_appendix)
{
	static const char *const cases[][3] = {
		{ "{'a':'b'}", "{'a':'c'}", "{'a':'c'}" },
		{ "{'a':'b'}", "{'b':'c'}", "{'a':'b','b':'c'}" },
		{ "{'a':'b'}", "{'a':null}", "{}" },
		{ "{'a':'b','b':'c'}", "{'a':null}", "{'b':'c'}" },
		{ "{'a':['b']}", "{'a':'c'}", "{'a':'c'}" },
		{ "{'a':'c'}", "{'a':['b']}", "{'a':['b']}" },
		{ "{'a':{'b':'c'}}", "{'a':{'b':'d','c':null}}", "{'a':{'b':'d'}}" },
		{ "{'a':[{'b':'c'}]}", "{'a':[1]}", "{'a':[1]}" },
		{ "{'e':null}", "{'a':1}", "{'e':null,'a':1}" },
		{ "{}", "{'a':{'bb':{'ccc':null}}}", "{'a':{'bb':{}}}" },
		{ "{'a':'x'}", "{'a':{'b':null,'c':1}}", "{'a':{'c':1}}" },
		{ "{'a':{'b':1}}", "{}", "{'a':{'b':1}}" },
		{ "{'a':[1,2]}", "{'a':[null,{'b':null}]}", "{'a':[null,{'b':null}]}" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		cJSON *target = parse(cases[i][0]), *patch = parse(cases[i][1]), *want = parse(cases[i][2]);
		struct error err = { 0 };
		CHECK_OK(object_merge_patch(target, patch, &err));
		if (!cJSON_Compare(target, want, true)) {
			char *got = cJSON_PrintUnformatted(target);
			unit_fail(__FILE__, __LINE__, "case %zu: got %s", i, got);
		}
		cJSON_Delete(target);
		cJSON_Delete(patch);
		cJSON_Delete(want);
	}
}

TEST(merge_patch_refuses_non_objects)
{
	struct error err = { 0 };
	cJSON *target = parse("{'a':1}");
	cJSON *array = cJSON_CreateArray();
	CHECK_INT(object_merge_patch(target, array, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "must be a JSON object");
	CHECK_INT(object_merge_patch(array, target, &err), ==, -EINVAL);
	cJSON_Delete(array);
	cJSON_Delete(target);
}

TEST(spec_equality)
{
	cJSON *a = parse(DEPLOYMENT), *b = parse(DEPLOYMENT);
	CHECK(object_spec_equal(a, b));
	cJSON *patch = parse("{'metadata': {'labels': {'x': 'y'}}, 'status': {'replicas': 3}}");
	struct error err = { 0 };
	CHECK_OK(object_merge_patch(b, patch, &err));
	CHECK(object_spec_equal(a, b));
	cJSON_Delete(patch);
	patch = parse("{'spec': {'replicas': 4}}");
	CHECK_OK(object_merge_patch(b, patch, &err));
	CHECK(!object_spec_equal(a, b));
	cJSON_Delete(patch);
	cJSON *c = parse(CONFIGMAP), *d = parse(CONFIGMAP);
	CHECK(object_spec_equal(c, d));
	CHECK(!object_spec_equal(a, c));
	cJSON_Delete(a);
	cJSON_Delete(b);
	cJSON_Delete(c);
	cJSON_Delete(d);
}

TEST(lists_checked_pairwise_are_bounded)
{
	cJSON *pod = parse(POD);
	cJSON *containers = cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "spec"), "containers");
	for (int i = 0; i < 64; i++) {
		cJSON *c = cJSON_Duplicate(cJSON_GetArrayItem(containers, 0), true);
		char name[16];
		snprintf(name, sizeof(name), "c%d", i);
		cJSON_ReplaceItemInObject(c, "name", cJSON_CreateString(name));
		cJSON_AddItemToArray(containers, c);
	}
	struct error err = { 0 };
	CHECK_INT(object_validate(kind_lookup("v1", "Pod"), pod, &err), ==, -EINVAL);
	CHECK_STR(err.message, "spec.containers: Too many: 65: must have at most 64 items");
	cJSON_Delete(pod);
}

TEST(errors_are_bounded_for_huge_names)
{
	/* A field name far longer than the error's buffers is cut, not overflowed. */
	size_t length = 5000;
	char *name = xmalloc(length + 1);
	memset(name, 'x', length);
	name[length] = '\0';
	cJSON *pod = parse(POD);
	cJSON_AddNumberToObject(cJSON_GetObjectItem(pod, "spec"), name, 1);
	struct error err = { 0 };
	CHECK_INT(object_validate(kind_lookup("v1", "Pod"), pod, &err), ==, -EINVAL);
	CHECK_CONTAINS(err.message, "unknown field");
	CHECK(strlen(err.field) < ERROR_FIELD_MAX);
	cJSON_Delete(pod);
	free(name);
}

TEST(events_are_written_as_kubernetes_components_write_them)
{
	cJSON *event = object_event_new(&(struct object_event){ .namespace = "shop",
	                                                        .api_version = "v1",
	                                                        .kind = "Pod",
	                                                        .object_namespace = "shop",
	                                                        .name = "web-1",
	                                                        .uid = "",
	                                                        .field_path = "spec.containers{main}",
	                                                        .type = "Warning",
	                                                        .reason = "Unhealthy",
	                                                        .message = "Liveness probe failed",
	                                                        .component = "kubelet",
	                                                        .host = "pi-1",
	                                                        .now = "2026-12-04T20:00:00Z" });
	const char *name = object_name(event);
	CHECK(strncmp(name, "web-1.", 6) == 0 && strlen(name) == 14);
	CHECK_STR(object_namespace(event), "shop");
	CHECK_STR(object_string_at(event, "involvedObject.fieldPath"), "spec.containers{main}");
	CHECK(object_string_at(event, "involvedObject.uid") == NULL); /* empty: left out */
	CHECK_STR(object_string_at(event, "source.host"), "pi-1");
	CHECK_STR(object_string_at(event, "lastTimestamp"), "2026-12-04T20:00:00Z");
	CHECK_INT(cJSON_GetObjectItem(event, "count")->valueint, ==, 1);
	struct error err = { 0 };
	CHECK_OK(object_validate(kind_lookup("v1", "Event"), event, &err));
	cJSON_Delete(event);
}
