/* What this binary is: Bramble's version, its target, and the libraries linked into it,
 * each version read from the library itself at run time. */
#ifndef BRAMBLE_AGENT_BUILD_INFO_H
#define BRAMBLE_AGENT_BUILD_INFO_H

#define BUILD_INFO_TEXT_MAX 96

struct build_info {
	const char *version; /* Bramble's */
	const char *target;  /* x86_64, arm64, armhf, armv6 */
	char coap[BUILD_INFO_TEXT_MAX];
	char tls[BUILD_INFO_TEXT_MAX];
	char sqlite[BUILD_INFO_TEXT_MAX];
	char cgroup[BUILD_INFO_TEXT_MAX];
	char archive[BUILD_INFO_TEXT_MAX * 2];
	char seccomp[BUILD_INFO_TEXT_MAX];
	char yaml[BUILD_INFO_TEXT_MAX];
	char json[BUILD_INFO_TEXT_MAX];
};

void build_info_collect(struct build_info *info);

/* As a JSON object (the API's /version answer); the caller frees it. */
char *build_info_json(const struct build_info *info);

#endif
