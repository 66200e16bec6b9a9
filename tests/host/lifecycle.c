/* The lifecycle host probe: process groups, sessions, kill, job control, waitid and pidfds on the
 * running kernel, for tests/test_host_lifecycle.py.
 *
 *   lifecycle CASE     run one case and print one line: "case=CASE key=value key=value ..."
 *   lifecycle pause    (internal) the image a child execs: pause forever
 *
 * Containment: main unshares CLONE_NEWPID|CLONE_NEWNS and forks the supervisor, which is pid 1
 * of the new pid namespace, a session leader (setsid), a child subreaper and has a private
 * /proc of its own. The supervisor runs the case under alarm(5), then SIGKILLs everything else
 * in the namespace and reaps it; should it die (alarm, crash, main killed: PR_SET_PDEATHSIG),
 * the kernel kills the whole namespace with it. No process of a case outlives the probe.
 *
 * Every process of a case reports its facts (" key=value", one write each, below PIPE_BUF) on a
 * pipe that main reads once the namespace is gone, so the line holds facts from any of them.
 * Errors print as errno names (EPERM), wait statuses as 0x%x, siginfo as si_code/si_status,
 * "none" for a WNOHANG wait that found nothing or a SIGCHLD that did not come.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL /* 6.9 */
#endif
#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK /* 5.10 */
#endif

#define NO_PID 30000 /* no process has this pid in the probe's fresh pid namespace */

static int facts_fd = -1;
static char self_exe[4096];

static const char *ename(int e)
{
	static char buf[16];
	switch (e) {
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case ESRCH: return "ESRCH";
	case EINTR: return "EINTR";
	case EBADF: return "EBADF";
	case ECHILD: return "ECHILD";
	case EAGAIN: return "EAGAIN";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EINVAL: return "EINVAL";
	case ENOSYS: return "ENOSYS";
	}
	snprintf(buf, sizeof buf, "E%d", e);
	return buf;
}

static void die(const char *what)
{
	dprintf(2, "lifecycle probe [%d]: %s: %s\n", (int)getpid(), what, strerror(errno));
	_exit(97);
}

static void fact(const char *key, const char *fmt, ...)
{
	char buf[256];
	int n = snprintf(buf, sizeof buf, " %s=", key);
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof buf - n, fmt, ap);
	va_end(ap);
	if (write(facts_fd, buf, n) != n)
		_exit(98);
}

/* The result of a call returning -1/errno: its errno name, else the value. */
static void fact_rc(const char *key, long r)
{
	int e = errno;
	if (r == -1)
		fact(key, "%s", ename(e));
	else
		fact(key, "%ld", r);
}

static void xpipe(int p[2])
{
	if (pipe2(p, O_CLOEXEC))
		die("pipe2");
}

static void put(int fd, int v)
{
	if (write(fd, &v, sizeof v) != sizeof v)
		die("put");
}

static int get(int fd)
{
	int v;
	ssize_t n;
	do
		n = read(fd, &v, sizeof v);
	while (n < 0 && errno == EINTR);
	return n == sizeof v ? v : -1;
}

static pid_t xfork(void)
{
	pid_t p = fork();
	if (p < 0)
		die("fork");
	return p;
}

static void forever(void)
{
	for (;;)
		pause();
}

static pid_t pauser(void)
{
	pid_t c = xfork();
	if (c == 0)
		forever();
	return c;
}

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static void sig_block(int sig, int how)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	if (sigprocmask(how, &s, NULL))
		die("sigprocmask");
}

static volatile sig_atomic_t hits;
static volatile pid_t handled_by;
static void on_signal(int sig)
{
	(void)sig;
	hits++;
	handled_by = gettid_();
}

static void catch_signal(int sig, int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = flags;
	if (sigaction(sig, &sa, NULL))
		die("sigaction");
}

/* waitpid: the status word, "none" (WNOHANG, nothing), or the errno. */
static void wait_fact(const char *key, pid_t pid, int options)
{
	int st = 0;
	pid_t r;
	do
		r = waitpid(pid, &st, options);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		fact(key, "%s", ename(errno));
	else if (r == 0)
		fact(key, "none");
	else
		fact(key, "0x%x", st);
}

static long xwaitid(int idtype, long id, siginfo_t *si, int options)
{
	memset(si, 0, sizeof *si);
	return syscall(SYS_waitid, idtype, id, si, options, NULL);
}

/* waitid: "si_code/si_status", "none" (WNOHANG, nothing), or the errno. */
static void waitid_fact(const char *key, int idtype, long id, int options, siginfo_t *si)
{
	long r = xwaitid(idtype, id, si, options);
	if (r < 0)
		fact(key, "%s", ename(errno));
	else if (si->si_pid == 0)
		fact(key, "none");
	else
		fact(key, "%d/%d", si->si_code, si->si_status);
}

/* One SIGCHLD taken with sigtimedwait (SIGCHLD is blocked): "si_code/si_status" or "none". */
static void sigchld_fact(const char *key, int timeout_ms)
{
	sigset_t s;
	siginfo_t si;
	struct timespec ts = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000L };
	sigemptyset(&s);
	sigaddset(&s, SIGCHLD);
	int r;
	do
		r = sigtimedwait(&s, &si, &ts);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		fact(key, "none");
	else
		fact(key, "%d/%d", si.si_code, si.si_status);
}

static int read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return 0;
}

/* The state letter of thread tid of process pid (R, S, T, Z...), '?' if gone. */
static char thread_state(pid_t pid, pid_t tid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/task/%d/stat", pid, tid);
	if (read_file(path, buf, sizeof buf))
		return '?';
	char *p = strrchr(buf, ')');
	return p && p[1] && p[2] ? p[2] : '?';
}

static int wait_state(pid_t pid, pid_t tid, char want)
{
	for (int i = 0; i < 2000; i++) {
		if (thread_state(pid, tid) == want)
			return 1;
		usleep(1000);
	}
	return 0;
}

/* Whether sig is in the SigPnd (thread) or ShdPnd (process) set of /proc/pid/task/tid/status. */
static int sig_in(pid_t pid, pid_t tid, const char *field, int sig)
{
	char path[64], buf[4096];
	snprintf(path, sizeof path, "/proc/%d/task/%d/status", pid, tid);
	if (read_file(path, buf, sizeof buf))
		return -1;
	char *p = strstr(buf, field);
	if (!p)
		return -1;
	unsigned long long set = strtoull(p + strlen(field), NULL, 16);
	return (int)((set >> (sig - 1)) & 1);
}

/* --- threads ----------------------------------------------------------------------------- */

struct thread_ctl {
	int tid_fd;      /* the thread writes its tid here */
	int release_fd;  /* the thread exits (SYS_exit with exit_code) when this can be read */
	int exit_code;
	int block;       /* a signal the thread blocks, or 0 */
};

static void *thread_main(void *arg)
{
	struct thread_ctl *t = arg;
	if (t->block) {
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, t->block);
		pthread_sigmask(SIG_BLOCK, &s, NULL);
	}
	put(t->tid_fd, gettid_());
	if (t->release_fd >= 0) {
		get(t->release_fd);
		syscall(SYS_exit, t->exit_code);
	}
	forever();
	return NULL;
}

static void start_thread(struct thread_ctl *t)
{
	pthread_t th;
	if (pthread_create(&th, NULL, thread_main, t))
		die("pthread_create");
}

/* --- cases ------------------------------------------------------------------------------- */

/* fork inherits the pgrp and session; setpgid on a child works until it execs (EACCES after);
 * exec keeps the pgrp and session. */
static void case_pgrp_exec(void)
{
	pid_t pg = getpgrp(), sid = getsid(0);
	int go[2], ex[2];
	xpipe(go);
	xpipe(ex);
	pid_t c = xfork();
	if (c == 0) {
		get(go[0]);
		execl(self_exe, "lifecycle", "pause", (char *)NULL);
		_exit(127);
	}
	close(ex[1]);
	fact("fork_pgid_is_parents", "%d", getpgid(c) == pg);
	fact("fork_sid_is_parents", "%d", getsid(c) == sid);
	fact_rc("setpgid_before_exec", setpgid(c, c));
	put(go[1], 1);
	char b;
	if (read(ex[0], &b, 1) != 0) /* EOF: the exec closed the O_CLOEXEC end */
		die("exec sync");
	fact_rc("setpgid_after_exec", setpgid(c, c));
	fact_rc("setpgid_after_exec_to_parent_pgrp", setpgid(c, pg));
	fact("exec_kept_pgid", "%d", getpgid(c) == c);
	fact("exec_kept_sid", "%d", getsid(c) == sid);
}

/* setpgid's and setsid's error rules, and getsid/getpgid lookups. */
static void case_setpgid_errors(void)
{
	pid_t pg = getpgrp();
	int ready[2];
	xpipe(ready);
	fact_rc("leader_setpgid_self", setpgid(0, 0));
	fact_rc("negative_pgid", setpgid(0, -1));
	fact_rc("no_such_pid", setpgid(NO_PID, 0));
	fact_rc("getsid_no_such_pid", getsid(NO_PID));
	fact_rc("getpgid_no_such_pid", getpgid(NO_PID));

	pid_t a = xfork(); /* a child in a session of its own */
	if (a == 0) {
		setsid();
		put(ready[1], 1);
		forever();
	}
	get(ready[0]);
	fact_rc("child_in_other_session", setpgid(a, a));
	fact_rc("child_in_other_session_to_parent_pgrp", setpgid(a, pg));
	fact("getsid_other_session_is_its_pid", "%d", getsid(a) == a);

	pid_t b = xfork(); /* a child in the supervisor's session */
	if (b == 0) {
		fact_rc("into_pgrp_of_other_session", setpgid(0, a));
		fact_rc("into_missing_pgrp", setpgid(0, NO_PID));
		fact_rc("sibling", setpgid(a, 0));
		fact_rc("parent", setpgid(getppid(), 0));
		int tp[2];
		xpipe(tp);
		struct thread_ctl t = { tp[1], -1, 0, 0 };
		start_thread(&t);
		pid_t tid = get(tp[0]);
		fact_rc("thread_tid", setpgid(tid, 0));
		fact_rc("pgid_is_a_thread_tid", setpgid(0, tid));
		fact_rc("into_own_pgrp", setpgid(0, 0));
		fact_rc("setsid_as_pgrp_leader", setsid());
		_exit(0);
	}
	waitpid(b, NULL, 0);

	pid_t d = xfork(); /* its pid names a pgrp it has left */
	if (d == 0) {
		setpgid(0, 0);
		pid_t e = pauser(); /* stays in pgrp d */
		(void)e;
		fact_rc("back_to_parent_pgrp", setpgid(0, pg));
		fact_rc("setsid_pgid_in_use", setsid());
		_exit(0);
	}
	waitpid(d, NULL, 0);

	pid_t f = xfork();
	if (f == 0) {
		pid_t r = setsid();
		fact("setsid_returns_pid", "%d", r == getpid());
		fact("setsid_leads_pgrp", "%d", getpgrp() == getpid());
		fact("setsid_leads_session", "%d", getsid(0) == getpid());
		fact_rc("setsid_twice", setsid());
		_exit(0);
	}
	waitpid(f, NULL, 0);
}

static void ns_init_main(void)
{
	fact("ns_init_pid", "%d", getpid());
	fact("ns_init_ppid", "%d", getppid());
	fact("ns_init_sid", "%d", getsid(0));
	fact("ns_init_pgrp", "%d", getpgrp());
	pid_t b = pauser(), c = pauser();
	int go[2];
	xpipe(go);
	pid_t d = xfork();
	if (d == 0) {
		catch_signal(SIGTERM, 0);
		fact_rc("kill_all", kill(-1, SIGTERM));
		get(go[0]);
		fact_rc("kill_all_again", kill(-1, SIGTERM));
		fact("caller_hit", "%d", hits);
		_exit(0);
	}
	catch_signal(SIGTERM, 0); /* after the forks: b and c keep SIG_DFL */
	wait_fact("other_1", b, 0);
	wait_fact("other_2", c, 0);
	put(go[1], 1);
	waitpid(d, NULL, 0);
	fact("ns_init_hit", "%d", hits);
	_exit(0);
}

/* kill(-1) from inside a new pid namespace: every process of it but its init and the caller. */
static void case_kill_minus1(void)
{
	pid_t a = xfork();
	if (a == 0) {
		if (unshare(CLONE_NEWPID)) {
			fact("error", "unshare_newpid_%s", ename(errno));
			_exit(1);
		}
		pid_t i = xfork();
		if (i == 0)
			ns_init_main();
		catch_signal(SIGTERM, 0); /* outside the namespace: must not be hit */
		waitpid(i, NULL, 0);
		fact("outside_hit", "%d", hits);
		_exit(0);
	}
	waitpid(a, NULL, 0);
}

/* kill(0, sig) reaches every member of the caller's pgrp, the caller included, no one else. */
static void case_kill_pgrp(void)
{
	int go[2];
	xpipe(go);
	pid_t l = xfork();
	if (l == 0) {
		setpgid(0, 0);
		forever();
	}
	setpgid(l, l);
	pid_t m = xfork();
	if (m == 0) {
		setpgid(0, l);
		forever();
	}
	setpgid(m, l);
	pid_t s = xfork();
	if (s == 0) {
		setpgid(0, l);
		sig_block(SIGTERM, SIG_BLOCK);
		get(go[0]);
		fact_rc("kill_pgrp", kill(0, SIGTERM));
		sig_block(SIGTERM, SIG_UNBLOCK);
		_exit(0);
	}
	setpgid(s, l);
	pid_t o = xfork();
	if (o == 0) {
		setpgid(0, 0);
		forever();
	}
	setpgid(o, o);
	put(go[1], 1);
	wait_fact("leader", l, 0);
	wait_fact("member", m, 0);
	wait_fact("sender", s, 0);
	wait_fact("outside", o, WNOHANG);
	fact_rc("kill_emptied_pgrp", kill(-l, 0));
	fact_rc("kill_missing_pgrp", kill(-NO_PID, SIGTERM));
}

/* kill(tid) of a non-leader thread signals the whole process; tgkill/tkill target the thread. */
static void case_kill_tid(void)
{
	int tp[2], ack[2];
	xpipe(tp);
	xpipe(ack);
	pid_t p = xfork();
	if (p == 0) {
		catch_signal(SIGUSR1, 0);
		struct thread_ctl t = { tp[1], -1, 0, SIGUSR1 };
		start_thread(&t);
		while (!handled_by)
			pause();
		fact("kill_tid_handled_by", "%s", handled_by == getpid() ? "leader" : "thread");
		put(ack[1], 1);
		forever();
	}
	pid_t tid = get(tp[0]);
	fact("thread_is_not_leader", "%d", tid != p);
	fact_rc("kill_tid", kill(tid, SIGUSR1));
	get(ack[0]);
	fact_rc("tgkill", syscall(SYS_tgkill, p, tid, SIGUSR1));
	fact("tgkill_pending_thread", "%d", sig_in(p, tid, "SigPnd:", SIGUSR1));
	fact("tgkill_pending_process", "%d", sig_in(p, tid, "ShdPnd:", SIGUSR1));
	fact_rc("tgkill_wrong_tgid", syscall(SYS_tgkill, getpid(), tid, 0));
	fact_rc("tgkill_zero_tgid", syscall(SYS_tgkill, 0, tid, 0));
	fact_rc("tgkill_zero_tid", syscall(SYS_tgkill, p, 0, 0));
	fact_rc("tkill_probe", syscall(SYS_tkill, tid, 0));
	fact_rc("tkill_zero", syscall(SYS_tkill, 0, 0));
	fact_rc("tkill_missing", syscall(SYS_tkill, NO_PID, 0));
	fact_rc("kill_tid_sigkill", kill(tid, SIGKILL));
	wait_fact("status", p, 0);
}

/* SIGSTOP/SIGCONT: the wait statuses, each reported once, and the SIGCHLD si_codes. */
static void case_stop_cont(void)
{
	sig_block(SIGCHLD, SIG_BLOCK);
	pid_t c = pauser();
	kill(c, SIGSTOP);
	wait_fact("stopped", c, WUNTRACED);
	sigchld_fact("sigchld_stop", 1000);
	wait_fact("stopped_again", c, WUNTRACED | WNOHANG);
	kill(c, SIGCONT);
	wait_fact("continued", c, WCONTINUED);
	sigchld_fact("sigchld_cont", 1000);
	wait_fact("continued_again", c, WCONTINUED | WNOHANG);
	kill(c, SIGSTOP);
	wait_fact("stopped_2", c, WUNTRACED);
	sigchld_fact("sigchld_stop_2", 1000);
	kill(c, SIGKILL);
	wait_fact("killed_while_stopped", c, 0);
	sigchld_fact("sigchld_kill", 1000);
}

/* A stop is group-wide: SIGSTOP (by kill or by tgkill to a thread) stops every thread. */
static void case_group_stop(void)
{
	sig_block(SIGCHLD, SIG_BLOCK);
	int tp[2];
	xpipe(tp);
	pid_t p = xfork();
	if (p == 0) {
		struct thread_ctl t = { tp[1], -1, 0, 0 };
		start_thread(&t);
		forever();
	}
	pid_t tid = get(tp[0]);
	kill(p, SIGSTOP);
	wait_fact("stopped", p, WUNTRACED);
	fact("leader_stopped", "%d", thread_state(p, p) == 'T');
	fact("thread_stopped", "%d", thread_state(p, tid) == 'T');
	sigchld_fact("sigchld_stop", 1000);
	fact_rc("cont_by_tid", kill(tid, SIGCONT));
	wait_fact("continued", p, WCONTINUED);
	sigchld_fact("sigchld_cont", 1000);
	fact("leader_running", "%d", wait_state(p, p, 'S'));
	fact("thread_running", "%d", wait_state(p, tid, 'S'));
	fact_rc("tgkill_stop", syscall(SYS_tgkill, p, tid, SIGSTOP));
	wait_fact("stopped_by_tgkill", p, WUNTRACED);
	fact("leader_stopped_2", "%d", thread_state(p, p) == 'T');
	fact("thread_stopped_2", "%d", thread_state(p, tid) == 'T');
	kill(p, SIGKILL);
	wait_fact("killed", p, 0);
}

/* SA_NOCLDSTOP: no SIGCHLD for stop or continue; the exit one still comes. */
static void case_nocldstop(void)
{
	catch_signal(SIGCHLD, SA_NOCLDSTOP);
	sig_block(SIGCHLD, SIG_BLOCK);
	pid_t c = pauser();
	kill(c, SIGSTOP);
	wait_fact("stopped", c, WUNTRACED);
	kill(c, SIGCONT);
	wait_fact("continued", c, WCONTINUED);
	kill(c, SIGSTOP); /* by the time this stop is seen, a CLD_CONTINUED would have been sent */
	wait_fact("stopped_2", c, WUNTRACED);
	sigchld_fact("sigchld_stop_cont", 50);
	kill(c, SIGKILL);
	wait_fact("killed", c, 0);
	sigchld_fact("sigchld_kill", 1000);
}

/* waitid(WSTOPPED|WNOWAIT) leaves the stop reportable; WCONTINUED likewise; exit via waitid. */
static void case_waitid_stop(void)
{
	siginfo_t si;
	pid_t c = pauser();
	kill(c, SIGSTOP);
	waitid_fact("nowait_1", P_PID, c, WSTOPPED | WNOWAIT, &si);
	fact("nowait_signo", "%d", si.si_signo);
	fact("nowait_pid_is_child", "%d", si.si_pid == c);
	fact("nowait_uid", "%d", (int)si.si_uid);
	waitid_fact("nowait_2", P_PID, c, WSTOPPED | WNOWAIT, &si);
	waitid_fact("exited_only", P_PID, c, WEXITED | WNOHANG, &si);
	wait_fact("wait4_after_nowait", c, WUNTRACED);
	waitid_fact("stopped_consumed", P_PID, c, WSTOPPED | WNOHANG, &si);
	kill(c, SIGCONT);
	waitid_fact("cont_nowait", P_PID, c, WCONTINUED | WNOWAIT, &si);
	waitid_fact("cont", P_PID, c, WCONTINUED, &si);
	waitid_fact("cont_consumed", P_PID, c, WCONTINUED | WNOHANG, &si);
	kill(c, SIGKILL);
	waitid_fact("killed", P_PID, c, WEXITED, &si);
}

/* waitid's siginfo for exits and deaths; a core-dumping signal under RLIMIT_CORE 0 dumps nothing. */
static void case_waitid_exit(void)
{
	siginfo_t si;
	pid_t c = xfork();
	if (c == 0)
		_exit(3);
	waitid_fact("exit_nowait", P_PID, c, WEXITED | WNOWAIT, &si);
	fact("exit_signo", "%d", si.si_signo);
	fact("exit_pid_is_child", "%d", si.si_pid == c);
	fact("exit_uid", "%d", (int)si.si_uid);
	waitid_fact("exit", P_PID, c, WEXITED, &si);
	waitid_fact("exit_reaped", P_PID, c, WEXITED | WNOHANG, &si);

	c = pauser();
	kill(c, SIGTERM);
	waitid_fact("killed", P_PID, c, WEXITED, &si);

	c = xfork();
	if (c == 0) {
		struct rlimit rl = { 0, 0 };
		setrlimit(RLIMIT_CORE, &rl);
		kill(getpid(), SIGQUIT);
		_exit(0);
	}
	waitid_fact("quit_nowait", P_PID, c, WEXITED | WNOWAIT, &si);
	wait_fact("quit_status", c, 0);

	c = xfork();
	if (c == 0)
		_exit(5);
	int fd = (int)syscall(SYS_pidfd_open, c, 0);
	waitid_fact("pidfd_exit", P_PIDFD, fd, WEXITED, &si);
	close(fd);

	c = xfork();
	if (c == 0)
		_exit(6);
	waitid_fact("pgid0_exit", P_PGID, 0, WEXITED, &si);

	c = xfork();
	if (c == 0)
		_exit(7);
	waitid_fact("all_exit", P_ALL, 0, WEXITED, &si);
}

/* waitid's and wait4's EINVAL rules (and their neighbours), with no child, then with one. */
static void case_wait_einval(void)
{
	siginfo_t si;
	int p[2];
	xpipe(p);
	waitid_fact("no_state_flag", P_ALL, 0, WNOHANG, &si);
	waitid_fact("no_flags", P_ALL, 0, 0, &si);
	waitid_fact("unknown_option", P_ALL, 0, WEXITED | 0x10, &si);
	waitid_fact("pid_0", P_PID, 0, WEXITED, &si);
	waitid_fact("pid_negative", P_PID, -1, WEXITED, &si);
	waitid_fact("pgid_negative", P_PGID, -1, WEXITED, &si);
	waitid_fact("pgid_0_no_child", P_PGID, 0, WEXITED | WNOHANG, &si);
	waitid_fact("idtype_4", 4, 0, WEXITED, &si);
	waitid_fact("idtype_negative", -1, 0, WEXITED, &si);
	waitid_fact("pidfd_negative", P_PIDFD, -1, WEXITED, &si);
	waitid_fact("pidfd_not_a_pidfd", P_PIDFD, p[0], WEXITED, &si);
	waitid_fact("pidfd_closed_fd", P_PIDFD, 1000, WEXITED, &si);
	waitid_fact("all_no_child", P_ALL, 0, WEXITED, &si);
	wait_fact("wait4_wnowait", -1, WNOWAIT);
	wait_fact("wait4_wexited", -1, WEXITED);
	wait_fact("wait4_no_child", -1, 0);
	wait_fact("wait4_int_min", -2147483647 - 1, 0);
	pid_t c = pauser();
	waitid_fact("wnohang_running", P_ALL, 0, WEXITED | WNOHANG, &si);
	wait_fact("wait4_wnohang_running", c, WNOHANG);
	wait_fact("wait4_wnowait_with_child", c, WNOWAIT | WNOHANG);
}

/* pidfd_open rules; a pidfd polls readable only once the whole thread group has exited. */
static void case_pidfd(void)
{
	int tp[2], go[2], rel[2];
	xpipe(tp);
	xpipe(go);
	xpipe(rel);
	pid_t p = xfork();
	if (p == 0) {
		struct thread_ctl t = { tp[1], rel[0], 4, 0 };
		start_thread(&t);
		get(go[0]);
		syscall(SYS_exit, 2); /* the leader thread only */
		_exit(99);
	}
	pid_t tid = get(tp[0]);
	int fd = (int)syscall(SYS_pidfd_open, p, 0);
	fact("open_process", "%s", fd >= 0 ? "ok" : ename(errno));
	long r = syscall(SYS_pidfd_open, tid, 0);
	fact("open_thread", "%s", r >= 0 ? "ok" : ename(errno));
	r = syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
	fact("open_thread_pidfd_thread", "%s", r >= 0 ? "ok" : ename(errno));
	siginfo_t si;
	r = syscall(SYS_pidfd_open, p, PIDFD_NONBLOCK);
	fact("open_nonblock", "%s", r >= 0 ? "ok" : ename(errno));
	if (r >= 0) /* 5.10+: waitid on a non-blocking pidfd does not sleep */
		waitid_fact("waitid_nonblock_running", P_PIDFD, r, WEXITED, &si);
	r = syscall(SYS_pidfd_open, p, 1);
	fact("open_bad_flags", "%s", r >= 0 ? "ok" : ename(errno));
	r = syscall(SYS_pidfd_open, NO_PID, 0);
	fact("open_missing", "%s", r >= 0 ? "ok" : ename(errno));
	r = syscall(SYS_pidfd_open, 0, 0);
	fact("open_0", "%s", r >= 0 ? "ok" : ename(errno));
	r = syscall(SYS_pidfd_open, -1, 0);
	fact("open_negative", "%s", r >= 0 ? "ok" : ename(errno));
	fact("cloexec", "%d", (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);

	struct pollfd pf = { fd, POLLIN, 0 };
	poll(&pf, 1, 0);
	fact("poll_running", "0x%x", pf.revents);
	put(go[1], 1);
	fact("leader_zombie", "%d", wait_state(p, p, 'Z'));
	pf.revents = 0;
	poll(&pf, 1, 0);
	fact("poll_leader_exited", "0x%x", pf.revents);
	fact_rc("send_leader_exited", syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0));
	put(rel[1], 1);
	pf.revents = 0;
	poll(&pf, 1, 2000);
	fact("poll_group_exited", "0x%x", pf.revents);
	fact_rc("send_zombie", syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0));
	waitid_fact("waitid_pidfd", P_PIDFD, fd, WEXITED, &si);
	fact_rc("send_reaped", syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0));
	pf.revents = 0;
	poll(&pf, 1, 0);
	fact("poll_reaped", "0x%x", pf.revents);
}

/* The wait status of a process whose leader thread exits (SYS_exit 2) before its last thread
 * (SYS_exit 4), and the other way round. */
static pid_t two_exits(int leader_first)
{
	int tp[2], go[2], rel[2];
	xpipe(tp);
	xpipe(go);
	xpipe(rel);
	pid_t p = xfork();
	if (p == 0) {
		struct thread_ctl t = { tp[1], rel[0], 4, 0 };
		start_thread(&t);
		get(go[0]);
		syscall(SYS_exit, 2);
		_exit(99);
	}
	pid_t tid = get(tp[0]);
	if (leader_first) {
		put(go[1], 1);
		wait_state(p, p, 'Z');
		put(rel[1], 1);
	} else {
		put(rel[1], 1);
		for (int i = 0; i < 2000 && thread_state(p, tid) != '?'; i++)
			usleep(1000);
		put(go[1], 1);
	}
	return p;
}

static void case_thread_exit_code(void)
{
	wait_fact("leader_first", two_exits(1), 0);
	wait_fact("thread_first", two_exits(0), 0);
	siginfo_t si;
	waitid_fact("leader_first_waitid", P_PID, two_exits(1), WEXITED, &si);
}

/* Orphaned process groups (kill_orphaned_pgrp): one stopped child c in its own pgrp. */
enum orphan { REPARENT, REPARENT_HUP_IGNORED, REPARENT_RUNNING, SAME_SESSION_REAPER, EXIT_PATH };

static void orphan_child(int stop, int ignore_hup, int ready_fd)
{
	if (ignore_hup)
		signal(SIGHUP, SIG_IGN);
	if (stop)
		raise(SIGSTOP);
	else
		put(ready_fd, 1);
	forever();
}

/* The supervisor blocks SIGCHLD, and m is a clone child with exit signal 0 (waited for with __WALL), so
 * the only SIGCHLD the supervisor can get is from c. c reports CLD_CONTINUED before it dies of the
 * SIGHUP (get_signal's relock comes before the dequeue), and SIGCHLD does not queue: the one pending
 * SIGCHLD says what c did first. */
static void orphan(enum orphan how)
{
	int cp[2], ready[2];
	xpipe(cp);
	xpipe(ready);
	sig_block(SIGCHLD, SIG_BLOCK);
	int stop = how != REPARENT_RUNNING;
	pid_t m = (pid_t)syscall(SYS_clone, 0UL, 0UL, 0UL, 0UL, 0UL); /* fork with exit signal 0 */
	if (m < 0)
		die("clone");
	if (m == 0) {
		sig_block(SIGCHLD, SIG_UNBLOCK);
		if (how != SAME_SESSION_REAPER)
			setsid(); /* REPARENT*: m is the parent, alone in its session with c; EXIT_PATH: m stays */
		if (how == EXIT_PATH) {
			pid_t p = xfork(); /* p and c: one pgrp, whose only outside link is p's parent m */
			if (p == 0) {
				setpgid(0, 0);
				pid_t c = xfork();
				if (c == 0)
					orphan_child(stop, 0, -1);
				waitpid(c, NULL, WUNTRACED);
				put(cp[1], c);
				_exit(0);
			}
			waitpid(p, NULL, 0);
			put(cp[1], 0);
			forever();
		}
		pid_t c = xfork();
		if (c == 0) {
			setpgid(0, 0);
			orphan_child(stop, how == REPARENT_HUP_IGNORED, ready[1]);
		}
		setpgid(c, c);
		if (stop)
			waitpid(c, NULL, WUNTRACED);
		else
			get(ready[0]);
		put(cp[1], c);
		_exit(0);
	}
	pid_t c = get(cp[0]);
	if (how == EXIT_PATH)
		get(cp[0]); /* p has exited and m reaped it; m lives on */
	else
		waitpid(m, NULL, __WALL);
	if (how == REPARENT || how == EXIT_PATH) {
		wait_fact("orphan", c, WUNTRACED); /* dies of SIGHUP: 0x1 */
		sigchld_fact("sigchld", 1000);
	} else if (how == REPARENT_HUP_IGNORED) {
		wait_fact("orphan", c, WUNTRACED | WCONTINUED); /* lives on, continued: 0xffff */
		sigchld_fact("sigchld", 1000);
	} else {
		fact("stopped", "%d", thread_state(c, c) == 'T');
		fact("sighup_pending", "%d", sig_in(c, c, "ShdPnd:", SIGHUP) | sig_in(c, c, "SigPnd:", SIGHUP));
		wait_fact("orphan", c, WNOHANG | WUNTRACED | WCONTINUED);
		sigchld_fact("sigchld", 20);
	}
}

static void case_orphan_reparent(void) { orphan(REPARENT); }
static void case_orphan_hup_ignored(void) { orphan(REPARENT_HUP_IGNORED); }
static void case_orphan_running(void) { orphan(REPARENT_RUNNING); }
static void case_orphan_same_session(void) { orphan(SAME_SESSION_REAPER); }
static void case_orphan_exit_path(void) { orphan(EXIT_PATH); }

static void case_noop(void) { fact("ok", "1"); }

static const struct kase {
	const char *name;
	void (*fn)(void);
} cases[] = {
	{ "noop", case_noop },
	{ "pgrp_exec", case_pgrp_exec },
	{ "setpgid_errors", case_setpgid_errors },
	{ "kill_minus1", case_kill_minus1 },
	{ "kill_pgrp", case_kill_pgrp },
	{ "kill_tid", case_kill_tid },
	{ "stop_cont", case_stop_cont },
	{ "group_stop", case_group_stop },
	{ "nocldstop", case_nocldstop },
	{ "waitid_stop", case_waitid_stop },
	{ "waitid_exit", case_waitid_exit },
	{ "wait_einval", case_wait_einval },
	{ "pidfd", case_pidfd },
	{ "thread_exit_code", case_thread_exit_code },
	{ "orphan_reparent", case_orphan_reparent },
	{ "orphan_hup_ignored", case_orphan_hup_ignored },
	{ "orphan_running", case_orphan_running },
	{ "orphan_same_session", case_orphan_same_session },
	{ "orphan_exit_path", case_orphan_exit_path },
};

static void supervise(const struct kase *c)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (setsid() < 0)
		die("setsid");
	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		die("PR_SET_CHILD_SUBREAPER");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		die("mount --make-rprivate /");
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
		die("mount proc");
	alarm(5);
	c->fn();
	kill(-1, SIGKILL); /* as the namespace's init: everyone else in it */
	while (waitpid(-1, NULL, __WALL) > 0 || errno == EINTR)
		;
	_exit(0);
}

/* The facts are those of a process started with the kernel's defaults, as the model's are: undo what a
 * launcher may have left inherited across exec (nohup ignores SIGHUP; a blocked mask survives exec too). */
static void default_signals(void)
{
	sigset_t none;
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL))
		die("sigprocmask");
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
}

int main(int argc, char **argv)
{
	default_signals();
	if (argc == 2 && !strcmp(argv[1], "pause"))
		forever();
	if (argc != 2) {
		fprintf(stderr, "usage: %s CASE\n", argv[0]);
		return 2;
	}
	const struct kase *c = NULL;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (!strcmp(cases[i].name, argv[1]))
			c = &cases[i];
	if (!c) {
		printf("case=%s error=unknown_case\n", argv[1]);
		return 2;
	}
	ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
	if (n < 0)
		die("readlink /proc/self/exe");
	self_exe[n] = 0;
	alarm(8);
	if (unshare(CLONE_NEWPID | CLONE_NEWNS)) {
		printf("case=%s error=unshare_%s\n", c->name, ename(errno));
		return 0;
	}
	int fp[2];
	xpipe(fp);
	pid_t sup = xfork();
	if (sup == 0) {
		close(fp[0]);
		facts_fd = fp[1];
		supervise(c);
	}
	close(fp[1]);
	int st;
	while (waitpid(sup, &st, 0) < 0)
		if (errno != EINTR)
			die("waitpid supervisor");
	/* The namespace is gone with its init: every writer has closed the pipe. */
	char buf[65536];
	size_t len = 0;
	ssize_t r;
	while (len < sizeof buf - 1 && (r = read(fp[0], buf + len, sizeof buf - 1 - len)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("read facts");
		}
		len += r;
	}
	buf[len] = 0;
	printf("case=%s%s", c->name, buf);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		printf(" error=supervisor_status_0x%x", st);
	printf("\n");
	return 0;
}
