#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
/* the file and memory calls of tests/test_trace_strace_files.py, as raw syscalls where glibc would pick another
   (open, not openat). Captured with: cc -O0 -o files files.c && strace -o strace_files.txt ./files */
int main(void) {
    char buf[128];
    unlink("/tmp/forklab-strace-files");
    int fd = syscall(SYS_open, "/tmp/forklab-strace-files", O_RDWR | O_CREAT | O_TRUNC, 0644);
    write(fd, "hello\n", 6);
    write(fd, "tab\there \"quoted\" back\\slash \001\0027\377 end", 33);
    write(fd, "0123456789abcdefghijklmnopqrstuvwxyzABCDEF", 42);
    lseek(fd, 0, SEEK_SET);
    read(fd, buf, 4);
    read(fd, buf, 100);
    int other = syscall(SYS_open, "/tmp/forklab-strace-files", O_RDONLY | O_CLOEXEC);
    dup2(other, 10);
    close(other);
    close(10);
    close(fd);
    syscall(SYS_open, "/nonexistent/file", O_RDONLY);
    read(99, buf, 1);
    void *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(p, 4096, PROT_READ);
    munmap(p, 8192);
    unlink("/tmp/forklab-strace-files");
    return 0;
}
