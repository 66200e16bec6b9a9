/* The real program behind tests/data/trace/strace_forks.txt: fork, vfork, clone(CLONE_VM|...), clone3 with
 * CLONE_PIDFD|CLONE_PARENT_SETTID and set_tid, wait4, kill and exit_group. SIGCHLD is blocked around each child
 * and unblocked after its wait4, so that every SIGCHLD is delivered at a fixed point whatever the scheduling. */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct clone_args_v1 {  /* struct clone_args of 5.5+, without 5.7's cgroup: CLONE_ARGS_SIZE_VER1 */
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size;
};

static char stack[65536];
static sigset_t chld;

static void on_chld(int sig) { (void)sig; }
static int child_fn(void *arg) { (void)arg; return 2; }
static void block(void) { sigprocmask(SIG_BLOCK, &chld, NULL); }
static void reap(pid_t pid)
{
	int status;
	wait4(pid, &status, 0, NULL);
	sigprocmask(SIG_UNBLOCK, &chld, NULL);
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_chld;
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);

	block();
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	reap(pid);

	block();
	pid = vfork();
	if (pid == 0)
		_exit(1);
	reap(pid);

	block();
	pid = clone(child_fn, stack + sizeof stack, CLONE_VM | CLONE_FS | CLONE_FILES | SIGCHLD, NULL);
	reap(pid);

	block();
	int pidfd = -1;
	pid_t ptid = 0, want = argc > 1 ? (pid_t)atoi(argv[1]) : getpid() + 1000;
	struct clone_args_v1 args;
	memset(&args, 0, sizeof args);
	args.flags = CLONE_PIDFD | CLONE_PARENT_SETTID;
	args.pidfd = (uintptr_t)&pidfd;
	args.parent_tid = (uintptr_t)&ptid;
	args.exit_signal = SIGCHLD;
	args.set_tid = (uintptr_t)&want;
	args.set_tid_size = 1;
	pid = syscall(SYS_clone3, &args, sizeof args);
	if (pid == 0) {
		pause();
		_exit(3);
	}
	kill(pid, SIGKILL);
	reap(pid);
	return 0;
}
