/* wait4 with and without a rusage pointer: strace shows the rusage's two times when one is passed
 * (tests/test_trace_strace_wait4.py; captured as strace_wait4_rusage.txt with strace -e trace=wait4). */
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
	struct rusage ru;
	int status;
	pid_t pid = fork();
	if (pid == 0)
		_exit(3);
	wait4(pid, &status, 0, &ru);
	pid = fork();
	if (pid == 0)
		_exit(0);
	waitpid(pid, &status, 0);
	return 0;
}
