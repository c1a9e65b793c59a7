/* Prober benchmark: figures only, no assertions (timing on a shared machine is not a test).
 *
 *   bench-prober [PROBERS [SECONDS]]     (default: 40 probers of each kind, 10 s)
 *
 * Runs PROBERS HTTP, PROBERS TCP and PROBERS/4 exec probers with a 100 ms period against a
 * forked HTTP server on loopback (and /bin/true) for SECONDS, then prints attempts made and
 * the prober's own CPU per attempt (getrusage of this process: the server and the commands
 * are other processes; the commands' CPU is shown apart). The idle cost for a board follows:
 * attempts/s at the real periods (a pod with two probes at periodSeconds 10 makes 0.2/s)
 * times the CPU per attempt.
 */
#include "agent/prober.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "platform/clock.h"
#include "platform/error.h"
#include "platform/loop.h"
#include "platform/memory.h"

static unsigned long attempts[3];

static void on_update(struct prober *prober, const struct prober_update *update, void *data)
{
	if (update->message)
		fprintf(stderr, "unexpected: %s\n", update->message);
}

static int fork_exec(void *data, const char *const *argv, int output_fd, pid_t *ret_pid, struct error *err)
{
	attempts[2]++;
	pid_t pid = fork();
	if (pid < 0)
		return error_set_errno(err, errno, "fork");
	if (pid == 0) {
		sigset_t all;
		sigfillset(&all);
		sigprocmask(SIG_UNBLOCK, &all, NULL);
		dup2(output_fd, 1);
		dup2(output_fd, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	*ret_pid = pid;
	return 0;
}

static volatile sig_atomic_t server_stopping;

static void on_term(int signo)
{
	server_stopping = 1;
}

/* A server answering 200 on every connection; on SIGTERM it writes how many it accepted
 * (HTTP and TCP attempts alike) to report_fd and exits. */
static pid_t start_server(uint16_t *ret_port, int report_fd)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	socklen_t length = sizeof(a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 512) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &length) < 0) {
		perror("bench-prober: server socket");
		exit(1);
	}
	*ret_port = ntohs(a.sin_port);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		struct sigaction action = { .sa_handler = on_term }; /* no SA_RESTART: accept returns */
		sigaction(SIGTERM, &action, NULL);
		sigset_t all;
		sigfillset(&all);
		sigprocmask(SIG_UNBLOCK, &all, NULL);
		unsigned long accepted = 0;
		for (;;) {
			int c = accept(fd, NULL, NULL);
			if (server_stopping) {
				if (write(report_fd, &accepted, sizeof(accepted)) < 0)
					perror("bench-prober: report");
				_exit(0);
			}
			if (c < 0)
				continue;
			accepted++;
			char request[4096];
			size_t n = 0;
			ssize_t r;
			while (n < sizeof(request) - 1 && (r = read(c, request + n, sizeof(request) - 1 - n)) > 0) {
				n += (size_t)r;
				request[n] = '\0';
				if (strstr(request, "\r\n\r\n"))
					break;
			}
			static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
			if (write(c, ok, sizeof(ok) - 1) < 0)
				perror("bench-prober: write");
			close(c);
		}
	}
	close(fd);
	return pid;
}

static double cpu_ms(int who)
{
	struct rusage u;
	getrusage(who, &u);
	return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 +
	       (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e3;
}

static struct probe_spec *spec_of(const char *json, enum probe_kind kind)
{
	cJSON *container = cJSON_Parse(json);
	struct probe_spec *spec = NULL;
	struct error err = { 0 };
	if (!container || prober_parse_probe(container, kind, NULL, &spec, &err) < 0 || !spec) {
		fprintf(stderr, "bench-prober: %s\n", err.message);
		exit(1);
	}
	cJSON_Delete(container);
	spec->period_ms = 100;
	return spec;
}

int main(int argc, char **argv)
{
	int count = argc > 1 ? atoi(argv[1]) : 40;
	int seconds = argc > 2 ? atoi(argv[2]) : 10;
	uint16_t port;
	int report[2];
	if (pipe(report) < 0)
		return 1;
	pid_t server = start_server(&port, report[1]);
	struct loop *loop = NULL;
	if (loop_new(&loop) < 0)
		return 1;
	char json[512];
	snprintf(json, sizeof(json),
	         "{\"readinessProbe\":{\"httpGet\":{\"port\":%u,\"path\":\"/healthz\"}},"
	         "\"livenessProbe\":{\"tcpSocket\":{\"port\":%u}},"
	         "\"startupProbe\":{\"exec\":{\"command\":[\"/bin/true\"]}}}",
	         port, port);
	struct probe_spec *http = spec_of(json, PROBE_READINESS);
	struct probe_spec *tcp = spec_of(json, PROBE_LIVENESS);
	struct probe_spec *exec = spec_of(json, PROBE_STARTUP);
	exec->kind = PROBE_READINESS; /* a startup probe would stop at its first success */
	struct prober_target target = { .loop = loop, .pod_ip = "127.0.0.1", .netns_fd = -1, .exec = fork_exec };
	int total = 2 * count + count / 4;
	struct prober **probers = xcalloc((size_t)total, sizeof(*probers));
	for (int i = 0; i < total; i++) {
		const struct probe_spec *spec = i < count ? http : i < 2 * count ? tcp : exec;
		if (prober_new(spec, &target, on_update, NULL, &probers[i], NULL) < 0)
			return 1;
	}

	/* HTTP and TCP first, alone: their cost is the prober's; exec after, with children */
	for (int phase = 0; phase < 2; phase++) {
		int from = phase == 0 ? 0 : 2 * count, to = phase == 0 ? 2 * count : total;
		double self0 = cpu_ms(RUSAGE_SELF), children0 = cpu_ms(RUSAGE_CHILDREN);
		unsigned long made0 = attempts[2];
		for (int i = from; i < to; i++)
			prober_start(probers[i], 0);
		uint64_t end = clock_monotonic_ms() + (uint64_t)seconds * 1000;
		while (clock_monotonic_ms() < end)
			loop_run_once(loop, 100);
		for (int i = from; i < to; i++)
			prober_stop(probers[i]);
		double self = cpu_ms(RUSAGE_SELF) - self0, children = cpu_ms(RUSAGE_CHILDREN) - children0;
		if (phase == 0) {
			unsigned long made = 0;
			kill(server, SIGTERM);
			if (read(report[0], &made, sizeof(made)) != sizeof(made) || made == 0)
				return 1;
			waitpid(server, NULL, 0);
			printf("http+tcp probes: %d probers, %lu attempts in %d s, agent CPU %.1f us per attempt\n",
			       2 * count, made, seconds, self * 1e3 / (double)made);
		} else {
			unsigned long made = attempts[2] - made0;
			printf("exec probes:     %d probers, %lu attempts in %d s, agent CPU %.1f us per attempt "
			       "(+ %.1f us in the command)\n",
			       to - from, made, seconds, self * 1e3 / (double)made, children * 1e3 / (double)made);
		}
	}
	for (int i = 0; i < total; i++)
		prober_free(probers[i]);
	free(probers);
	prober_spec_free(http);
	prober_spec_free(tcp);
	prober_spec_free(exec);
	for (int i = 0; i < 50; i++)
		loop_run_once(loop, 10);
	loop_free(loop);
	return 0;
}
