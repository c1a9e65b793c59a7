/* Event loop on epoll. See loop.h for the contract.
 *
 * State:
 *   fd watchers   a list; each watcher's address is the epoll cookie. A watcher removed
 *                 during dispatch is only marked dead and freed after the batch, so a
 *                 callback may remove another descriptor that is ready in the same batch.
 *   timers        a binary min-heap on deadline; each timer knows its heap index so that
 *                 loop_cancel_timer() is O(log n).
 *   signals       one signalfd for every handled signal (and SIGCHLD).
 *   children      a list of watched pids, polled with waitpid(WNOHANG) on each SIGCHLD
 *                 (signals coalesce, so one SIGCHLD may stand for several exits).
 *
 * One iteration (loop_run_once): run prepare hooks -> compute the wait from the earliest
 * timer and the hooks -> epoll_wait -> dispatch ready descriptors -> fire due timers ->
 * free dead watchers.
 */
#include "platform/loop.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "platform/clock.h"
#include "platform/memory.h"

#define LOOP_MAX_EVENTS 32
#define LOOP_MAX_SIGNAL 65

struct fd_watch {
	int fd;
	bool dead;
	loop_fd_fn fn;
	void *data;
	struct fd_watch *next;
};

struct loop_timer {
	uint64_t deadline;
	uint64_t sequence; /* ties broken by order of creation */
	size_t index;
	loop_timer_fn fn;
	void *data;
};

struct child_watch {
	pid_t pid;
	loop_child_fn fn;
	void *data;
	struct child_watch *next;
};

struct prepare_hook {
	loop_prepare_fn fn;
	void *data;
};

struct loop {
	int epoll_fd;
	uint64_t now;
	bool stopping;

	struct fd_watch *watches;
	struct fd_watch *dead_watches;

	struct loop_timer **timers;
	size_t timer_count, timer_capacity;
	uint64_t timer_sequence;

	int signal_fd;
	sigset_t signal_mask;
	struct {
		loop_signal_fn fn;
		void *data;
	} signals[LOOP_MAX_SIGNAL];

	struct child_watch *children;
	bool check_children;

	struct prepare_hook prepare[LOOP_MAX_PREPARE_HOOKS];
	size_t prepare_count;
};

int loop_new(struct loop **ret_loop)
{
	int fd = epoll_create1(EPOLL_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct loop *loop = xcalloc(1, sizeof(*loop));
	loop->epoll_fd = fd;
	loop->signal_fd = -1;
	sigemptyset(&loop->signal_mask);
	loop->now = clock_monotonic_ms();
	*ret_loop = loop;
	return 0;
}

static void free_watch_list(struct fd_watch *w)
{
	while (w) {
		struct fd_watch *next = w->next;
		free(w);
		w = next;
	}
}

void loop_free(struct loop *loop)
{
	if (!loop)
		return;
	free_watch_list(loop->watches);
	free_watch_list(loop->dead_watches);
	for (size_t i = 0; i < loop->timer_count; i++)
		free(loop->timers[i]);
	free(loop->timers);
	for (struct child_watch *c = loop->children, *next; c; c = next) {
		next = c->next;
		free(c);
	}
	if (loop->signal_fd >= 0) {
		close(loop->signal_fd);
		sigprocmask(SIG_UNBLOCK, &loop->signal_mask, NULL);
	}
	close(loop->epoll_fd);
	free(loop);
}

uint64_t loop_now(struct loop *loop)
{
	return loop->now;
}

void loop_stop(struct loop *loop)
{
	loop->stopping = true;
}

/* --- descriptors ------------------------------------------------------------------- */

static struct fd_watch *find_watch(struct loop *loop, int fd)
{
	for (struct fd_watch *w = loop->watches; w; w = w->next)
		if (w->fd == fd)
			return w;
	return NULL;
}

int loop_add_fd(struct loop *loop, int fd, uint32_t events, loop_fd_fn fn, void *data)
{
	if (find_watch(loop, fd))
		return -EEXIST;
	struct fd_watch *w = xcalloc(1, sizeof(*w));
	w->fd = fd;
	w->fn = fn;
	w->data = data;
	struct epoll_event ev = { .events = events, .data.ptr = w };
	if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int r = -errno;
		free(w);
		return r;
	}
	w->next = loop->watches;
	loop->watches = w;
	return 0;
}

int loop_modify_fd(struct loop *loop, int fd, uint32_t events)
{
	struct fd_watch *w = find_watch(loop, fd);
	if (!w)
		return -ENOENT;
	struct epoll_event ev = { .events = events, .data.ptr = w };
	return epoll_ctl(loop->epoll_fd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int loop_remove_fd(struct loop *loop, int fd)
{
	for (struct fd_watch **p = &loop->watches; *p; p = &(*p)->next) {
		struct fd_watch *w = *p;
		if (w->fd != fd)
			continue;
		/* The descriptor may already be closed: then epoll has dropped it itself. */
		epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
		*p = w->next;
		w->dead = true;
		w->next = loop->dead_watches;
		loop->dead_watches = w;
		return 0;
	}
	return -ENOENT;
}

/* --- timers -------------------------------------------------------------------------- */

static bool timer_before(const struct loop_timer *a, const struct loop_timer *b)
{
	return a->deadline < b->deadline || (a->deadline == b->deadline && a->sequence < b->sequence);
}

static void heap_swap(struct loop *loop, size_t i, size_t j)
{
	struct loop_timer *t = loop->timers[i];
	loop->timers[i] = loop->timers[j];
	loop->timers[j] = t;
	loop->timers[i]->index = i;
	loop->timers[j]->index = j;
}

static void heap_up(struct loop *loop, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!timer_before(loop->timers[i], loop->timers[parent]))
			break;
		heap_swap(loop, i, parent);
		i = parent;
	}
}

static void heap_down(struct loop *loop, size_t i)
{
	for (;;) {
		size_t left = 2 * i + 1, right = left + 1, smallest = i;
		if (left < loop->timer_count && timer_before(loop->timers[left], loop->timers[smallest]))
			smallest = left;
		if (right < loop->timer_count && timer_before(loop->timers[right], loop->timers[smallest]))
			smallest = right;
		if (smallest == i)
			return;
		heap_swap(loop, i, smallest);
		i = smallest;
	}
}

static void heap_remove(struct loop *loop, size_t i)
{
	size_t last = --loop->timer_count;
	if (i != last) {
		heap_swap(loop, i, last);
		heap_down(loop, i);
		heap_up(loop, i);
	}
}

struct loop_timer *loop_add_timer(struct loop *loop, uint64_t delay_ms, loop_timer_fn fn, void *data)
{
	if (loop->timer_count == loop->timer_capacity) {
		loop->timer_capacity = loop->timer_capacity ? 2 * loop->timer_capacity : 16;
		loop->timers = xrealloc(loop->timers, loop->timer_capacity * sizeof(*loop->timers));
	}
	struct loop_timer *t = xcalloc(1, sizeof(*t));
	t->deadline = clock_monotonic_ms() + delay_ms;
	t->sequence = loop->timer_sequence++;
	t->fn = fn;
	t->data = data;
	t->index = loop->timer_count;
	loop->timers[loop->timer_count++] = t;
	heap_up(loop, t->index);
	return t;
}

void loop_cancel_timer(struct loop *loop, struct loop_timer *timer)
{
	if (!timer)
		return;
	heap_remove(loop, timer->index);
	free(timer);
}

static void fire_due_timers(struct loop *loop)
{
	/* Timers added by a callback with delay 0 wait for the next iteration: no starvation. */
	uint64_t now = loop->now;
	uint64_t limit = loop->timer_sequence;
	while (loop->timer_count > 0) {
		struct loop_timer *t = loop->timers[0];
		if (t->deadline > now || t->sequence >= limit)
			break;
		heap_remove(loop, 0);
		loop_timer_fn fn = t->fn;
		void *data = t->data;
		free(t);
		fn(loop, data);
	}
}

/* --- signals and children ------------------------------------------------------------ */

static void reap_children(struct loop *loop)
{
	struct child_watch **p = &loop->children;
	while (*p) {
		struct child_watch *c = *p;
		int status;
		pid_t r = waitpid(c->pid, &status, WNOHANG);
		if (r == 0 || (r < 0 && errno == EINTR)) {
			p = &c->next;
			continue;
		}
		*p = c->next;
		if (r < 0)
			status = 0xff00; /* not our child any more: report exit status 255 */
		loop_child_fn fn = c->fn;
		void *data = c->data;
		pid_t pid = c->pid;
		free(c);
		fn(loop, pid, status, data);
	}
}

static void on_signal_fd(struct loop *loop, int fd, uint32_t events, void *data)
{
	(void)events;
	(void)data;
	struct signalfd_siginfo info[8];
	ssize_t n;
	while ((n = read(fd, info, sizeof(info))) > 0) {
		for (size_t i = 0; i < (size_t)n / sizeof(info[0]); i++) {
			int signo = (int)info[i].ssi_signo;
			if (signo == SIGCHLD)
				loop->check_children = true;
			if (signo < LOOP_MAX_SIGNAL && loop->signals[signo].fn)
				loop->signals[signo].fn(loop, signo, loop->signals[signo].data);
		}
	}
}

static int watch_signal(struct loop *loop, int signo)
{
	sigset_t mask = loop->signal_mask;
	sigaddset(&mask, signo);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	int fd = signalfd(loop->signal_fd, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	loop->signal_mask = mask;
	if (loop->signal_fd < 0) {
		loop->signal_fd = fd;
		int r = loop_add_fd(loop, fd, EPOLLIN, on_signal_fd, NULL);
		if (r < 0)
			return r;
	}
	return 0;
}

int loop_add_signal(struct loop *loop, int signo, loop_signal_fn fn, void *data)
{
	if (signo <= 0 || signo >= LOOP_MAX_SIGNAL)
		return -EINVAL;
	int r = watch_signal(loop, signo);
	if (r < 0)
		return r;
	loop->signals[signo].fn = fn;
	loop->signals[signo].data = data;
	return 0;
}

int loop_watch_child(struct loop *loop, pid_t pid, loop_child_fn fn, void *data)
{
	if (!sigismember(&loop->signal_mask, SIGCHLD)) {
		int r = watch_signal(loop, SIGCHLD);
		if (r < 0)
			return r;
	}
	struct child_watch *c = xcalloc(1, sizeof(*c));
	c->pid = pid;
	c->fn = fn;
	c->data = data;
	c->next = loop->children;
	loop->children = c;
	/* The child may have exited before SIGCHLD was blocked: look once without waiting. */
	loop->check_children = true;
	return 0;
}

/* --- running ------------------------------------------------------------------------- */

int loop_add_prepare(struct loop *loop, loop_prepare_fn fn, void *data)
{
	if (loop->prepare_count == LOOP_MAX_PREPARE_HOOKS)
		return -ENOSPC;
	loop->prepare[loop->prepare_count].fn = fn;
	loop->prepare[loop->prepare_count].data = data;
	loop->prepare_count++;
	return 0;
}

static int64_t min_wait(int64_t a, int64_t b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

int loop_run_once(struct loop *loop, int timeout_ms)
{
	loop->now = clock_monotonic_ms();
	int64_t wait = timeout_ms;
	for (size_t i = 0; i < loop->prepare_count; i++)
		wait = min_wait(wait, loop->prepare[i].fn(loop, loop->prepare[i].data));
	if (loop->timer_count > 0) {
		uint64_t deadline = loop->timers[0]->deadline;
		wait = min_wait(wait, deadline > loop->now ? (int64_t)(deadline - loop->now) : 0);
	}
	if (loop->check_children || loop->stopping)
		wait = 0;
	if (wait > 24 * 3600 * 1000)
		wait = 24 * 3600 * 1000;

	struct epoll_event events[LOOP_MAX_EVENTS];
	int n = epoll_wait(loop->epoll_fd, events, LOOP_MAX_EVENTS, (int)wait);
	if (n < 0 && errno != EINTR)
		return -errno;
	loop->now = clock_monotonic_ms();
	for (int i = 0; i < n; i++) {
		struct fd_watch *w = events[i].data.ptr;
		if (!w->dead)
			w->fn(loop, w->fd, events[i].events, w->data);
	}
	if (loop->check_children) {
		loop->check_children = false;
		reap_children(loop);
	}
	fire_due_timers(loop);
	free_watch_list(loop->dead_watches);
	loop->dead_watches = NULL;
	return 0;
}

int loop_run(struct loop *loop)
{
	loop->stopping = false;
	while (!loop->stopping) {
		int r = loop_run_once(loop, -1);
		if (r < 0)
			return r;
	}
	return 0;
}
