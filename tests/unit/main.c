/* Runs the registered unit tests, each in a child process. Usage: unit-tests [FILTER...]
 * where a FILTER matches a module ("loop") or a test ("loop:timers_fire_in_order"). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/unit/unit.h"

#define UNIT_TIME_LIMIT_SECONDS 60

static struct unit_test *tests, **tests_tail = &tests;
static char temp_dir[256];

void unit_register(struct unit_test *test)
{
	*tests_tail = test;
	tests_tail = &test->next;
}

void unit_fail(const char *file, int line, const char *fmt, ...)
{
	fprintf(stderr, "    %s:%d: ", file, line);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	_exit(1);
}

const char *unit_temp_dir(void)
{
	return temp_dir;
}

uint16_t unit_free_udp_port(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
		unit_fail(__FILE__, __LINE__, "no free UDP port: %s", strerror(errno));
	close(fd);
	return ntohs(sin.sin_port);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* "tests/unit/test_loop.c" -> "loop" */
static void module_of(const char *file, char *buf, size_t size)
{
	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;
	if (strncmp(base, "test_", 5) == 0)
		base += 5;
	snprintf(buf, size, "%s", base);
	char *dot = strrchr(buf, '.');
	if (dot)
		*dot = '\0';
}

/* Arguments select modules or module:test names; "-module" leaves a module out. */
static int selected(const struct unit_test *t, int argc, char **argv)
{
	char module[64], full[192];
	module_of(t->file, module, sizeof(module));
	snprintf(full, sizeof(full), "%s:%s", module, t->name);
	int positives = 0, chosen = 0;
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-') {
			if (strcmp(argv[i] + 1, module) == 0 || strcmp(argv[i] + 1, full) == 0)
				return 0;
			continue;
		}
		positives++;
		if (strcmp(argv[i], module) == 0 || strcmp(argv[i], full) == 0)
			chosen = 1;
	}
	return positives == 0 || chosen;
}

static int run_one(const struct unit_test *t)
{
	/* The parent makes and removes the directory, so a failing test leaves nothing. */
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(temp_dir, sizeof(temp_dir), "%s/bramble-unit.XXXXXX", base);
	if (!mkdtemp(temp_dir)) {
		fprintf(stderr, "    mkdtemp %s: %s\n", temp_dir, strerror(errno));
		return 0;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 0;
	}
	if (pid == 0) {
		alarm(UNIT_TIME_LIMIT_SECONDS);
		t->run();
		exit(0); /* not _exit: LeakSanitizer checks for leaks at exit (make check) */
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	nftw(temp_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (WIFSIGNALED(status))
		fprintf(stderr, "    killed by signal %d%s\n", WTERMSIG(status),
		        WTERMSIG(status) == SIGALRM ? " (time limit)" : "");
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	int passed = 0, failed = 0;
	for (struct unit_test *t = tests; t; t = t->next) {
		if (!selected(t, argc, argv))
			continue;
		char module[64];
		module_of(t->file, module, sizeof(module));
		int ok = run_one(t);
		printf("%s %s:%s\n", ok ? "ok  " : "FAIL", module, t->name);
		if (ok)
			passed++;
		else
			failed++;
	}
	printf("unit: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
