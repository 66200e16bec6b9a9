/* forklab host probe: make ONE raw clone(2) or clone3(2) call on the running kernel and report it.
 *
 * Usage: forklab-probe MODE SYSCALL key=value...
 *   MODE     priv | unpriv | userns
 *   SYSCALL  clone | clone3
 *   keys     flags=N          raw flags (clone: the whole first argument, exit signal in the low byte)
 *            exit_signal=N    clone3 only
 *            size=N           clone3: the size argument (the struct buffer is zero-padded to it)
 *            args=K           clone3: null | valid | bad | kernel (where the struct lives)
 *            stack=K          null | valid | bad | kernel
 *            stack_size=N     clone3 only
 *            tls=K            null | valid | bad | kernel | value
 *            tls_value=N      used when tls=value
 *            parent_tid=K child_tid=K    null | valid | bad | kernel
 *            pidfd=K          clone3: null | valid | bad | kernel | same (the parent_tid address)
 *            set_tid=K        clone3: null | valid | bad | kernel
 *            set_tid_vals=a,b,...   pid_t values; "free" picks an unused pid at that level
 *            set_tid_size=N
 *            tail=HEX         clone3: bytes written from offset 80 of the struct buffer
 *            uid=N            unpriv: the uid/gid to drop to
 *
 * Structure: the probe process is a supervisor and child subreaper. It forks a worker that sets
 * up the case (drops privileges, or enters a new user+pid namespace and forks once to become its
 * pid 1) and makes the call. The caller prints "pid N" or "errno E" on stdout at once with a raw
 * write, closes a pidfd it got, and leaves with exit_group, which also ends CLONE_THREAD children.
 * The supervisor reaps every descendant (CLONE_PARENT children and orphans come to it) until none
 * is left, and prints "worker exit S" / "worker signal S" / "worker stopped S" on stdout.
 *
 * The child of the call (return value 0) runs no C at all: the syscall and the child's exit are
 * one asm block, so a child on the parent's stack (CLONE_VM without a stack, CLONE_VFORK) or on
 * an invalid stack touches no memory before its raw exit(0) syscall.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef __x86_64__
#error "the forklab probe is written for x86-64"
#endif

#ifndef __WALL
#define __WALL 0x40000000
#endif

#define KERNEL_ADDR 0xffff800000000000UL
#define STACK_LEN (64 * 1024)
#define PAGE 4096

/* syscall + child exit in one block: the child (rax == 0) executes exactly test/jnz/mov/xor/syscall. */
static long raw_clone(unsigned long flags, unsigned long newsp, unsigned long ptid, unsigned long ctid,
                      unsigned long tls)
{
    long ret;
    register unsigned long r10 __asm__("r10") = ctid;
    register unsigned long r8 __asm__("r8") = tls;
    __asm__ volatile(
        "syscall\n\t"
        "test %%rax, %%rax\n\t"
        "jnz 1f\n\t"
        "mov $60, %%eax\n\t"
        "xor %%edi, %%edi\n\t"
        "syscall\n\t"
        "ud2\n"
        "1:\n\t"
        : "=a"(ret)
        : "0"((long)SYS_clone), "D"(flags), "S"(newsp), "d"(ptid), "r"(r10), "r"(r8)
        : "rcx", "r11", "memory");
    return ret;
}

static long raw_clone3(unsigned long args, unsigned long size)
{
    long ret;
    __asm__ volatile(
        "syscall\n\t"
        "test %%rax, %%rax\n\t"
        "jnz 1f\n\t"
        "mov $60, %%eax\n\t"
        "xor %%edi, %%edi\n\t"
        "syscall\n\t"
        "ud2\n"
        "1:\n\t"
        : "=a"(ret)
        : "0"(435L), "D"(args), "S"(size)
        : "rcx", "r11", "memory");
    return ret;
}

static void die(const char *what)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, "probe: %s: %s\n", what, strerror(errno));
    if (n > 0)
        (void)!write(2, buf, (size_t)n);
    syscall(SYS_exit_group, 111);
}

static void say(int fd, const char *fmt, long a, long b)
{
    char buf[128];
    int n = snprintf(buf, sizeof buf, fmt, a, b);
    if (n > 0)
        (void)!write(fd, buf, (size_t)n);
}

struct kact {
    unsigned long handler, flags, restorer, mask;
};

/* SIG_IGN every signal that can be ignored (1..64 but SIGKILL, SIGSTOP), with the raw syscall so
 * that glibc's internal 32 and 33 are included; SIGCHLD keeps SIG_DFL so zombies still queue. */
static void ignore_signals(void)
{
    for (int sig = 1; sig <= 64; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP || sig == SIGCHLD)
            continue;
        struct kact a = {(unsigned long)SIG_IGN, 0, 0, 0};
        syscall(SYS_rt_sigaction, sig, &a, NULL, 8);
    }
}

/* ---- the case ---- */

static const char *opt[32][2];
static int nopt;

static const char *get(const char *key, const char *dflt)
{
    for (int i = 0; i < nopt; i++)
        if (!strcmp(opt[i][0], key))
            return opt[i][1];
    return dflt;
}

static unsigned long getnum(const char *key, unsigned long dflt)
{
    const char *v = get(key, NULL);
    if (!v)
        return dflt;
    errno = 0;
    if (v[0] == '-')
        return (unsigned long)strtoll(v, NULL, 0);
    return strtoull(v, NULL, 0);
}

static unsigned char *buffers; /* 8 pages of scratch, one page per pointer kind */
static unsigned char *stack_area;
static unsigned long bad_addr;

static void map_memory(void)
{
    buffers = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    stack_area = mmap(NULL, STACK_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    void *bad = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buffers == MAP_FAILED || stack_area == MAP_FAILED || bad == MAP_FAILED)
        die("mmap");
    if (munmap(bad, PAGE))
        die("munmap");
    bad_addr = (unsigned long)bad; /* nothing is mapped after this point */
}

/* slot: which scratch page backs a "valid" pointer of this field */
static unsigned long pointer(const char *key, int slot, const char *dflt)
{
    const char *k = get(key, dflt);
    if (!strcmp(k, "null"))
        return 0;
    if (!strcmp(k, "valid"))
        return (unsigned long)(buffers + (unsigned long)slot * PAGE);
    if (!strcmp(k, "bad"))
        return bad_addr;
    if (!strcmp(k, "kernel"))
        return KERNEL_ADDR;
    fprintf(stderr, "probe: bad pointer kind %s=%s\n", key, k);
    exit(2);
}

enum { SLOT_ARGS = 0, SLOT_PTID = 2, SLOT_CTID = 3, SLOT_PIDFD = 4, SLOT_TLS = 5, SLOT_SETTID = 6 };

static int pid_exists(long pid)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%ld", pid);
    return stat(path, &st) == 0;
}

/* a pid that no task uses: in the probe's own new pid namespace (level 0 of set_tid) any small
 * number but 1 is free; in the initial namespace scan /proc (which shows the host's pids). */
static long free_pid(int level_index, int in_new_ns, long pid_max)
{
    if (level_index == 0 && in_new_ns)
        return 100;
    long span = pid_max - 1000;
    long start = 1000 + (long)((unsigned long)getpid() * 7919UL % (unsigned long)span);
    for (long i = 0; i < span; i++) {
        long p = 1000 + (start - 1000 + i) % span;
        if (!pid_exists(p) && !pid_exists(p + 1))
            return p;
    }
    return pid_max - 1;
}

static long read_pid_max(void)
{
    char buf[32] = {0};
    int fd = open("/proc/sys/kernel/pid_max", O_RDONLY);
    if (fd < 0)
        return 32768;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n > 0 ? atol(buf) : 32768;
}

static void put64(unsigned char *p, unsigned long v)
{
    memcpy(p, &v, 8);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Make the call in this process; print the result. Never returns. */
static void do_call(const char *sys, int in_new_ns)
{
    unsigned long stack = 0, stack_size = getnum("stack_size", 0);
    const char *sk = get("stack", "null");
    if (!strcmp(sk, "valid"))
        stack = (unsigned long)stack_area;
    else if (!strcmp(sk, "bad"))
        stack = bad_addr;
    else if (!strcmp(sk, "kernel"))
        stack = KERNEL_ADDR;

    unsigned long tls;
    if (!strcmp(get("tls", "null"), "value"))
        tls = getnum("tls_value", 0);
    else
        tls = pointer("tls", SLOT_TLS, "null");
    unsigned long ptid = pointer("parent_tid", SLOT_PTID, "null");
    unsigned long ctid = pointer("child_tid", SLOT_CTID, "null");
    unsigned long flags = getnum("flags", 0);
    unsigned long pidfd_addr = 0;
    long ret;

    ignore_signals();
    if (!strcmp(sys, "clone")) {
        if (stack && !strcmp(sk, "valid"))
            stack += STACK_LEN; /* clone takes the top of a downward-growing stack */
        if (flags & 0x1000 /* CLONE_PIDFD */)
            pidfd_addr = ptid;
        ret = raw_clone(flags, stack, ptid, ctid, tls);
    } else {
        unsigned long size = getnum("size", 80);
        unsigned long args = pointer("args", SLOT_ARGS, "valid"); /* two pages: SLOT_ARGS and SLOT_ARGS + 1 */
        unsigned char *a = buffers + SLOT_ARGS * PAGE;
        const char *pk = get("pidfd", "null");
        pidfd_addr = !strcmp(pk, "same") ? ptid : pointer("pidfd", SLOT_PIDFD, "null");
        unsigned long set_tid = pointer("set_tid", SLOT_SETTID, "null");
        const char *vals = get("set_tid_vals", "");
        int32_t *tids = (int32_t *)(buffers + SLOT_SETTID * PAGE);
        long pid_max = read_pid_max();
        int idx = 0;
        for (const char *p = vals; *p && idx < 1024;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            if (len == 4 && !strncmp(p, "free", 4))
                tids[idx] = (int32_t)free_pid(idx, in_new_ns, pid_max);
            else
                tids[idx] = (int32_t)strtol(p, NULL, 0);
            idx++;
            p += len + (comma ? 1 : 0);
        }
        put64(a + 0, flags);
        put64(a + 8, pidfd_addr);
        put64(a + 16, ctid);
        put64(a + 24, ptid);
        put64(a + 32, getnum("exit_signal", 0));
        put64(a + 40, stack);
        put64(a + 48, stack_size);
        put64(a + 56, tls);
        put64(a + 64, set_tid);
        put64(a + 72, getnum("set_tid_size", 0));
        const char *tail = get("tail", "");
        for (size_t i = 0; tail[2 * i] && tail[2 * i + 1] && 80 + i < 2 * PAGE; i++)
            a[80 + i] = (unsigned char)(hexval(tail[2 * i]) * 16 + hexval(tail[2 * i + 1]));
        if (size < 2 * PAGE)
            memset(a + size, 0, 2 * PAGE - size); /* the kernel sees exactly `size` bytes of struct */
        ret = raw_clone3(args, size);
    }
    if (ret < 0) {
        say(1, "errno %ld\n", -ret, 0);
    } else {
        say(1, "pid %ld\n", ret, 0);
        if (flags & 0x1000 && pidfd_addr && pidfd_addr != bad_addr && pidfd_addr != KERNEL_ADDR) {
            int fd = *(int *)pidfd_addr;
            if (fd > 2)
                close(fd);
        }
    }
    syscall(SYS_exit_group, 0);
    __builtin_unreachable();
}

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        die(path);
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        die(path);
    close(fd);
}

static void worker(const char *mode, const char *sys)
{
    if (!strcmp(mode, "unpriv")) {
        unsigned long id = getnum("uid", 1000);
        if (syscall(SYS_setgroups, 0, NULL) || syscall(SYS_setresgid, id, id, id) ||
            syscall(SYS_setresuid, id, id, id))
            die("drop privileges");
        do_call(sys, 0);
    }
    if (!strcmp(mode, "userns")) {
        char map[64];
        uid_t uid = getuid();
        gid_t gid = getgid();
        if (unshare(CLONE_NEWUSER | CLONE_NEWPID))
            die("unshare(CLONE_NEWUSER|CLONE_NEWPID)");
        snprintf(map, sizeof map, "0 %u 1\n", (unsigned)uid);
        write_file("/proc/self/uid_map", map);
        write_file("/proc/self/setgroups", "deny");
        snprintf(map, sizeof map, "0 %u 1\n", (unsigned)gid);
        write_file("/proc/self/gid_map", map);
        pid_t init = fork();
        if (init < 0)
            die("fork into the new pid namespace");
        if (init == 0)
            do_call(sys, 1);
        int st;
        while (waitpid(init, &st, __WALL) < 0 && errno == EINTR) {
        }
        if (WIFSIGNALED(st))
            say(1, "init signal %ld\n", WTERMSIG(st), 0);
        syscall(SYS_exit_group, 0);
    }
    do_call(sys, 0);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s priv|unpriv|userns clone|clone3 key=value...\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1], *sys = argv[2];
    if (strcmp(mode, "priv") && strcmp(mode, "unpriv") && strcmp(mode, "userns")) {
        fprintf(stderr, "probe: unknown mode %s\n", mode);
        return 2;
    }
    if (strcmp(sys, "clone") && strcmp(sys, "clone3")) {
        fprintf(stderr, "probe: unknown syscall %s\n", sys);
        return 2;
    }
    for (int i = 3; i < argc && nopt < 32; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) {
            fprintf(stderr, "probe: bad argument %s\n", argv[i]);
            return 2;
        }
        *eq = 0;
        opt[nopt][0] = argv[i];
        opt[nopt][1] = eq + 1;
        nopt++;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
        die("PR_SET_CHILD_SUBREAPER");
    map_memory();
    ignore_signals();
    pid_t w = fork();
    if (w < 0)
        die("fork");
    if (w == 0)
        worker(mode, sys);
    /* reap the worker and every descendant that comes to us */
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, __WALL | WUNTRACED);
        if (p < 0) {
            if (errno == EINTR)
                continue;
            break; /* ECHILD: nothing left */
        }
        if (p != w)
            continue;
        if (WIFSTOPPED(st)) {
            say(1, "worker stopped %ld\n", WSTOPSIG(st), 0);
            kill(w, SIGKILL);
        } else if (WIFSIGNALED(st)) {
            say(1, "worker signal %ld\n", WTERMSIG(st), 0);
        } else if (WIFEXITED(st)) {
            say(1, "worker exit %ld\n", WEXITSTATUS(st), 0);
        }
    }
    return 0;
}
