#include "platform/loop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "platform/clock.h"
#include "tests/unit/unit.h"

struct order {
	int seen[8];
	int count;
};

static void record(struct loop *loop, void *data)
{
	(void)loop;
	struct order *o = data;
	o->seen[o->count] = o->count;
	o->count++;
}

struct tagged {
	struct order *order;
	int tag;
};

static void record_tag(struct loop *loop, void *data)
{
	(void)loop;
	struct tagged *t = data;
	t->order->seen[t->order->count++] = t->tag;
}

static struct loop *new_loop(void)
{
	struct loop *loop = NULL;
	CHECK_OK(loop_new(&loop));
	return loop;
}

static void run_until(struct loop *loop, int *flag, int want, uint64_t limit_ms)
{
	uint64_t end = clock_monotonic_ms() + limit_ms;
	while (*flag < want && clock_monotonic_ms() < end)
		CHECK_OK(loop_run_once(loop, 50));
}

TEST(timers_fire_in_deadline_order)
{
	struct loop *loop = new_loop();
	struct order o = { 0 };
	struct tagged a = { &o, 30 }, b = { &o, 10 }, c = { &o, 20 }, d = { &o, 11 };
	loop_add_timer(loop, 30, record_tag, &a);
	loop_add_timer(loop, 10, record_tag, &b);
	loop_add_timer(loop, 20, record_tag, &c);
	loop_add_timer(loop, 10, record_tag, &d); /* same deadline as b: creation order */
	run_until(loop, &o.count, 4, 2000);
	CHECK_INT(o.count, ==, 4);
	CHECK_INT(o.seen[0], ==, 10);
	CHECK_INT(o.seen[1], ==, 11);
	CHECK_INT(o.seen[2], ==, 20);
	CHECK_INT(o.seen[3], ==, 30);
	loop_free(loop);
}

TEST(cancelled_timer_never_fires)
{
	struct loop *loop = new_loop();
	struct order o = { 0 };
	struct loop_timer *t = loop_add_timer(loop, 5, record, &o);
	loop_add_timer(loop, 1, record, &o);
	loop_add_timer(loop, 40, record, &o);
	loop_cancel_timer(loop, t);
	run_until(loop, &o.count, 2, 2000);
	CHECK_OK(loop_run_once(loop, 60));
	CHECK_INT(o.count, ==, 2);
	loop_free(loop);
}

struct timed {
	uint64_t start;
	uint64_t delay;
	int *fired;
	int *early;
};

static void check_not_early(struct loop *loop, void *data)
{
	(void)loop;
	struct timed *t = data;
	if (clock_monotonic_ms() < t->start + t->delay)
		(*t->early)++;
	(*t->fired)++;
}

TEST(many_timers_all_fire_none_early_cancelled_never)
{
	struct loop *loop = new_loop();
	enum { N = 200 };
	static struct timed timers[N + 3];
	int fired = 0, early = 0;
	uint64_t start = clock_monotonic_ms();
	for (int i = 0; i < N + 3; i++) {
		timers[i] = (struct timed){ start, (uint64_t)((i * 37) % N) / 4, &fired, &early };
		struct loop_timer *t = loop_add_timer(loop, timers[i].delay, check_not_early, &timers[i]);
		if (i >= N)
			loop_cancel_timer(loop, t); /* cancelled from the middle of the heap */
	}
	run_until(loop, &fired, N, 5000);
	CHECK_OK(loop_run_once(loop, 80));
	CHECK_INT(fired, ==, N);
	CHECK_INT(early, ==, 0);
	loop_free(loop);
}

struct pipe_state {
	struct loop *loop;
	int fds[2];
	int other_fds[2];
	int reads;
};

static void on_readable_remove_other(struct loop *loop, int fd, uint32_t events, void *data)
{
	struct pipe_state *s = data;
	char c;
	CHECK(events & EPOLLIN);
	CHECK_INT(read(fd, &c, 1), ==, 1);
	s->reads++;
	loop_remove_fd(loop, fd);
	/* The other pipe is ready in this same batch: removing it must be safe. */
	loop_remove_fd(loop, fd == s->fds[0] ? s->other_fds[0] : s->fds[0]);
}

TEST(fd_callback_may_remove_another_ready_fd)
{
	struct loop *loop = new_loop();
	struct pipe_state s = { .loop = loop };
	CHECK_OK(pipe(s.fds));
	CHECK_OK(pipe(s.other_fds));
	CHECK_OK(loop_add_fd(loop, s.fds[0], EPOLLIN, on_readable_remove_other, &s));
	CHECK_OK(loop_add_fd(loop, s.other_fds[0], EPOLLIN, on_readable_remove_other, &s));
	CHECK_INT(loop_add_fd(loop, s.fds[0], EPOLLIN, on_readable_remove_other, &s), ==, -EEXIST);
	CHECK_INT(write(s.fds[1], "a", 1), ==, 1);
	CHECK_INT(write(s.other_fds[1], "b", 1), ==, 1);
	CHECK_OK(loop_run_once(loop, 1000));
	CHECK_INT(s.reads, ==, 1);
	CHECK_OK(loop_run_once(loop, 20));
	CHECK_INT(s.reads, ==, 1);
	CHECK_INT(loop_remove_fd(loop, s.fds[0]), ==, -ENOENT);
	loop_free(loop);
}

static void on_signal(struct loop *loop, int signo, void *data)
{
	(void)loop;
	*(int *)data = signo;
}

TEST(signals_arrive_through_the_loop)
{
	struct loop *loop = new_loop();
	int got = 0;
	CHECK_OK(loop_add_signal(loop, SIGUSR1, on_signal, &got));
	kill(getpid(), SIGUSR1);
	uint64_t end = clock_monotonic_ms() + 2000;
	while (!got && clock_monotonic_ms() < end)
		CHECK_OK(loop_run_once(loop, 50));
	CHECK_INT(got, ==, SIGUSR1);
	CHECK_INT(loop_add_signal(loop, 0, on_signal, &got), ==, -EINVAL);
	loop_free(loop);
}

struct child_state {
	pid_t pid;
	int status;
	int done;
};

static void on_child(struct loop *loop, pid_t pid, int status, void *data)
{
	(void)loop;
	struct child_state *c = data;
	CHECK_INT(pid, ==, c->pid);
	c->status = status;
	c->done++;
}

TEST(children_are_reaped_with_their_status)
{
	struct loop *loop = new_loop();
	struct child_state a = { 0 }, b = { 0 };
	a.pid = fork();
	if (a.pid == 0)
		_exit(7);
	/* b exits before it is watched: the loop must still notice. */
	b.pid = fork();
	if (b.pid == 0)
		_exit(3);
	usleep(50000);
	CHECK_OK(loop_watch_child(loop, a.pid, on_child, &a));
	CHECK_OK(loop_watch_child(loop, b.pid, on_child, &b));
	uint64_t end = clock_monotonic_ms() + 3000;
	while ((!a.done || !b.done) && clock_monotonic_ms() < end)
		CHECK_OK(loop_run_once(loop, 50));
	CHECK_INT(a.done, ==, 1);
	CHECK_INT(b.done, ==, 1);
	CHECK(WIFEXITED(a.status) && WEXITSTATUS(a.status) == 7);
	CHECK(WIFEXITED(b.status) && WEXITSTATUS(b.status) == 3);
	loop_free(loop);
}

static int64_t prepare_soon(struct loop *loop, void *data)
{
	(void)loop;
	(*(int *)data)++;
	return 10;
}

TEST(prepare_hook_bounds_the_wait)
{
	struct loop *loop = new_loop();
	int calls = 0;
	CHECK_OK(loop_add_prepare(loop, prepare_soon, &calls));
	uint64_t start = clock_monotonic_ms();
	CHECK_OK(loop_run_once(loop, -1)); /* would block forever without the hook */
	CHECK_INT(calls, ==, 1);
	CHECK_INT(clock_monotonic_ms() - start, <, 5000);
	loop_free(loop);
}

static void stop_now(struct loop *loop, void *data)
{
	(void)data;
	loop_stop(loop);
}

TEST(run_returns_after_stop)
{
	struct loop *loop = new_loop();
	loop_add_timer(loop, 5, stop_now, NULL);
	CHECK_OK(loop_run(loop));
	loop_free(loop);
}
