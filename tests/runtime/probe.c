/* A probe for the containment tests: built statically and copied into a test root
 * filesystem, it tries what a container must not do and prints what the kernel said.
 *   probe syscalls      one line per attempt: "<name> <errno name or ok>"
 *   probe fds           the open descriptors, space-separated
 *   probe hog MIB       allocates and touches MIB mebibytes, then prints "survived"
 *   probe forks         forks (children sleep) until fork fails; prints how many it made
 *   probe burn MS       spins for MS milliseconds of wall time; prints the percentage of it
 *                       that was cpu time
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void report(const char *what, long r)
{
	printf("%s %s\n", what, r < 0 ? (errno == EPERM ? "EPERM" : strerror(errno)) : "ok");
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "fds") == 0) {
		DIR *d = opendir("/proc/self/fd");
		int self = dirfd(d);
		struct dirent *e;
		while ((e = readdir(d)))
			if (e->d_name[0] != '.' && atoi(e->d_name) != self)
				printf("%s ", e->d_name);
		printf("\n");
		return 0;
	}
	if (argc > 2 && strcmp(argv[1], "hog") == 0) {
		size_t size = (size_t)atoi(argv[2]) << 20;
		char *p = malloc(size);
		for (size_t i = 0; p && i < size; i += 4096)
			p[i] = 1;
		printf("survived\n");
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "forks") == 0) {
		int made = 0;
		for (; made < 10000; made++) {
			pid_t pid = fork();
			if (pid < 0)
				break;
			if (pid == 0) {
				sleep(5);
				_exit(0);
			}
		}
		printf("%d\n", made);
		return 0;
	}
	if (argc > 2 && strcmp(argv[1], "burn") == 0) {
		struct timespec start, now, cpu;
		clock_gettime(CLOCK_MONOTONIC, &start);
		long wall_ms = atol(argv[2]), elapsed;
		do {
			clock_gettime(CLOCK_MONOTONIC, &now);
			elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
		} while (elapsed < wall_ms);
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
		printf("%ld\n", (cpu.tv_sec * 1000 + cpu.tv_nsec / 1000000) * 100 / elapsed);
		return 0;
	}
	report("mount", mount("none", "/tmp", "tmpfs", 0, NULL));
	report("unshare", unshare(CLONE_NEWNS));
	report("keyctl", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0));
	report("ptrace", ptrace(PTRACE_ATTACH, 1, NULL, NULL));
	report("setns", syscall(SYS_setns, 0, 0));
	report("bpf", syscall(SYS_bpf, 0, NULL, 0));
	report("reboot", syscall(SYS_reboot, 0, 0, 0, NULL));
	report("swapon", syscall(SYS_swapon, "/x", 0));
	report("init_module", syscall(SYS_init_module, NULL, 0, ""));
	report("clone_newuser", syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL));
	return 0;
}
