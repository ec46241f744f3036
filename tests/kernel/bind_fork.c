/* Preloaded by test_nic_fork_window.py: the first bind() of an AF_XDP
 * socket after fork_arm() forks first, as another thread of the process
 * could at that moment of a NIC open (the socket made, not yet where the
 * engine's fork handler finds it).  The child reports whether it still
 * has the socket: fork_result() is 0 (closed in the child), 1 (the child
 * kept a copy) or -1 (no such bind happened). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int armed, result = -1;

void fork_arm(void) { armed = 1; result = -1; }
int fork_result(void) { return result; }

int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
    static int (*real)(int, const struct sockaddr *, socklen_t);
    int status;
    pid_t pid;

    if (!real)
        real = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
    if (armed && sa && sa->sa_family == 44) {          /* AF_XDP */
        armed = 0;
        if ((pid = fork()) == 0)
            _exit(fcntl(fd, F_GETFD) == -1 ? 0 : 1);
        if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status))
            result = WEXITSTATUS(status);
    }
    return real(fd, sa, len);
}
