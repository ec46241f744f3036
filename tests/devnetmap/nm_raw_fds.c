/*
 * nm_raw_fds.c -- nm_raw's modes in which a port's fd moves between
 * processes: with SCM_RIGHTS, kept across exec(), or inherited by a child
 * that never uses it.  Linked into nm_raw (nm_raw.c: the program, its
 * traffic modes and the usage of the others).
 *
 *   nm_raw pass TX RX N         TX and RX registered; TX's fd and its
 *                               register reply go with SCM_RIGHTS to a child
 *                               that exec()s this program (knowing nothing of
 *                               the fd), maps it and sends N frames; the
 *                               parent closes TX at once and receives
 *   nm_raw passnic TX N         TX (a NIC) goes with SCM_RIGHTS to a child
 *                               that exec()s this program and sends N
 *                               frames on it, while this process keeps its
 *                               port; prints "passnic ok N"
 *   nm_raw passgone TX N        the same, but this process closes its port
 *                               before the child's first call, which must
 *                               fail with EOWNERDEAD; prints "passgone ok N"
 *   nm_raw passkeep RX N        RX (a NIC) goes with SCM_RIGHTS to a child
 *                               that exec()s this program and adopts it
 *                               (mmap); then this process closes its port,
 *                               and the child, the port's only user, prints
 *                               "ready" and receives N frames; prints
 *                               "passkeep ok N"
 *   nm_raw passrefused MODE TX ERRNO
 *                               TX (a NIC, register mode MODE) goes with
 *                               SCM_RIGHTS to a child whose first netmap
 *                               calls on it fail with ERRNO; prints
 *                               "passrefused ok ERRNO"
 *   nm_raw passbadenv TX       the same with a pipe end TX, to a child whose
 *                               NMCOMPAT_SPIN_US is malformed: EINVAL;
 *                               "passbadenv ok"
 *   nm_raw keepexec TX          TX (a NIC) kept across this process's own
 *                               exec(): the new image's first netmap call
 *                               fails with EOWNERDEAD; prints "keepexec ok"
 *   nm_raw firstwait HOW VIA TX RX N
 *                               TX and RX registered; TX's fd goes to a
 *                               child that exec()s this program, with
 *                               SCM_RIGHTS (VIA scm) or kept across exec
 *                               (VIA exec), and the parent closes its copy;
 *                               the child's first call on it is a wait for
 *                               POLLIN (HOW poll, select or epoll) of 300 ms
 *                               on its empty RX ring: it must time out; then
 *                               the parent sends N frames on RX and the same
 *                               wait reports them; prints "firstwait ok N"
 *   nm_raw bystander TX RX      TX's fd is kept across exec by a child that
 *                               never uses it (nm_raw idle) and exits; then a
 *                               thread waits in poll() (no timeout) for POLLIN on TX while
 *                               RX sends a frame: the wakeup must still reach
 *                               this process; prints "bystander ok"
 *   nm_raw arrivals HOW TX RX   TX's fd, a regular file's and a pipe's go in
 *                               one SCM_RIGHTS message to this process, read
 *                               (HOW recvmsg or recvmmsg) with room for two:
 *                               TX's fd and the file's arrive (MSG_CTRUNC);
 *                               TX's polls as netmap's, the file's as the
 *                               kernel's, errno kept; prints "arrivals ok"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include "nm_raw.h"

static void send_fd(int sock, int fd, const struct nmreq_register *reg)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { .iov_base = (void *)reg, .iov_len = sizeof(*reg) };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                          .msg_controllen = sizeof(cbuf) };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    CHECK(sendmsg(sock, &msg, 0) == (ssize_t)sizeof(*reg), "sendmsg");
}

/* The child pid exited, with status 0. */
static void wait_child_ok(pid_t pid)
{
    int status = -1;

    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "child %d: wait status %#x", (int)pid, status);
}

/* Map a port of which this process has the fd and the register reply,
 * not its open (received, inherited or kept across exec). */
static void map_port(struct port *p)
{
    p->mem = mmap(NULL, p->reg.nr_memsize, PROT_READ | PROT_WRITE, MAP_SHARED, p->fd, 0);
    CHECK(p->mem != MAP_FAILED, "mmap of a port this process did not open");
    p->nifp = NETMAP_IF(p->mem, p->reg.nr_offset);
}

/* The register reply, and the fd if one came with it (else -1). */
static int recv_reg(int sock, struct nmreq_register *reg)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { .iov_base = reg, .iov_len = sizeof(*reg) };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                          .msg_controllen = sizeof(cbuf) };
    struct cmsghdr *c;
    int fd = -1;

    CHECK(recvmsg(sock, &msg, 0) == (ssize_t)sizeof(*reg), "recvmsg");
    if ((c = CMSG_FIRSTHDR(&msg)) && c->cmsg_type == SCM_RIGHTS)
        memcpy(&fd, CMSG_DATA(c), sizeof(int));
    return fd;
}

/* The register reply and the fd that must come with it. */
static int recv_fd(int sock, struct nmreq_register *reg)
{
    int fd = recv_reg(sock, reg);

    CHECK(fd >= 0, "no fd came");
    return fd;
}

/* The exec()ed child of `pass`: an fd it never opened, mapped and used. */
static int run_pass_child(int sock, unsigned n)
{
    struct port p;

    p.fd = recv_fd(sock, &p.reg);
    map_port(&p);
    send_all(&p, n);
    close_port(&p);
    return 0;
}

/* `passnic`: TX (a NIC) goes with SCM_RIGHTS to a child that exec()s this
 * program (pass-child: mapped, N frames sent), while this process keeps
 * its port open; closed once the child is done.  `passgone`: the child's
 * first call comes after this process closed its port: EOWNERDEAD. */
static pid_t spawn_child(const char *self, const char *mode, int sock, unsigned n)
{
    char arg_sock[16], arg_n[16];
    pid_t pid;

    if ((pid = fork()) == 0) {
        snprintf(arg_sock, sizeof(arg_sock), "%d", sock);
        snprintf(arg_n, sizeof(arg_n), "%u", n);
        execl(self, self, mode, arg_sock, arg_n, (char *)NULL);
        _exit(127);
    }
    CHECK(pid > 0, "fork");
    return pid;
}

static int run_passnic(const char *self, const char *txname, unsigned n, bool gone)
{
    struct port m;
    int sv[2];
    pid_t pid;

    open_port(&m, txname, NR_REG_ALL_NIC);
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0, "socketpair");
    pid = spawn_child(self, gone ? "gone-child" : "pass-child", sv[1], n);
    close(sv[1]);
    send_fd(sv[0], m.fd, &m.reg);
    if (gone) {
        close_port(&m);
        CHECK(send(sv[0], "x", 1, 0) == 1, "send");   /* now: the port is closed here */
    }
    wait_child_ok(pid);
    if (!gone)
        close_port(&m);
    close(sv[0]);
    printf("%s ok %u\n", gone ? "passgone" : "passnic", n);
    return 0;
}

/* `keepexec`: this process exec()s itself keeping TX (a NIC); exec closed
 * its AF_XDP sockets, so the new image's first netmap call is refused. */
static int run_keepexec(const char *self, const char *txname)
{
    struct port m;
    char arg_fd[16], arg_len[24];

    open_port(&m, txname, NR_REG_ALL_NIC);
    CHECK(fcntl(m.fd, F_SETFD, 0) == 0, "fcntl");
    snprintf(arg_fd, sizeof(arg_fd), "%d", m.fd);
    snprintf(arg_len, sizeof(arg_len), "%llu", (unsigned long long)m.reg.nr_memsize);
    execl(self, self, "keepexec-image", arg_fd, arg_len, (char *)NULL);
    return 127;
}

static int run_keepexec_image(int fd, size_t memsize)
{
    CHECK(ioctl(fd, NIOCTXSYNC, NULL) == -1 && errno == EOWNERDEAD, "txsync errno %d", errno);
    CHECK(mmap(NULL, memsize, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EOWNERDEAD,
          "mmap errno %d", errno);
    printf("keepexec ok\n");
    return 0;
}

/* The child of `passgone`: its first netmap call on the fd, once the
 * opener closed its port, is refused. */
static int run_gone_child(int sock)
{
    struct nmreq_register reg;
    int fd = recv_fd(sock, &reg);
    char c;

    CHECK(recv(sock, &c, 1, 0) == 1, "recv");
    CHECK(ioctl(fd, NIOCTXSYNC, NULL) == -1 && errno == EOWNERDEAD, "txsync errno %d", errno);
    CHECK(mmap(NULL, reg.nr_memsize, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EOWNERDEAD,
          "mmap errno %d", errno);
    return 0;
}

/* `passkeep`: the child adopts the port (its mmap), says so ("a"), and
 * once this process closed its own port ("x") receives alone. */
static int run_passkeep(const char *self, const char *rxname, unsigned n)
{
    struct port m;
    int sv[2];
    pid_t pid;
    char c;

    open_port(&m, rxname, NR_REG_ALL_NIC);
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0, "socketpair");
    pid = spawn_child(self, "keep-child", sv[1], n);
    close(sv[1]);
    send_fd(sv[0], m.fd, &m.reg);
    CHECK(recv(sv[0], &c, 1, 0) == 1 && c == 'a', "the child's adoption");
    close_port(&m);
    CHECK(send(sv[0], "x", 1, 0) == 1, "send");
    wait_child_ok(pid);
    close(sv[0]);
    printf("passkeep ok %u\n", n);
    return 0;
}

static int run_keep_child(int sock, unsigned n)
{
    struct port p;
    char c;

    p.fd = recv_fd(sock, &p.reg);
    map_port(&p);
    CHECK(send(sock, "a", 1, 0) == 1, "send");
    CHECK(recv(sock, &c, 1, 0) == 1 && c == 'x', "the opener's close");
    printf("ready\n");
    receive(&p, n);
    close_port(&p);
    return 0;
}

/* `passrefused`: the child's first calls on a port it cannot adopt. */
static int run_passrefused(const char *self, unsigned mode, const char *txname, int err)
{
    struct port m;
    int sv[2];
    pid_t pid;

    open_port(&m, txname, mode);
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0, "socketpair");
    pid = spawn_child(self, "refused-child", sv[1], (unsigned)err);
    close(sv[1]);
    send_fd(sv[0], m.fd, &m.reg);
    wait_child_ok(pid);
    close_port(&m);
    close(sv[0]);
    printf("passrefused ok %d\n", err);
    return 0;
}

/* `passbadenv`: the child that receives TX (a pipe end) runs with a
 * malformed NMCOMPAT_SPIN_US, which its adoption of the port reads: every
 * netmap call on the fd fails with EINVAL (never reaches the kernel). */
static int run_passbadenv(const char *self, const char *txname)
{
    struct port m;
    int sv[2];
    pid_t pid;

    open_port(&m, txname, NR_REG_ALL_NIC);
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0, "socketpair");
    CHECK(setenv("NMCOMPAT_SPIN_US", "x", 1) == 0, "setenv");     /* the child's */
    pid = spawn_child(self, "refused-child", sv[1], EINVAL);
    close(sv[1]);
    send_fd(sv[0], m.fd, &m.reg);
    wait_child_ok(pid);
    close_port(&m);
    close(sv[0]);
    printf("passbadenv ok\n");
    return 0;
}

static int run_refused_child(int sock, int err)
{
    struct nmreq_register reg;
    int fd = recv_fd(sock, &reg);

    CHECK(ioctl(fd, NIOCTXSYNC, NULL) == -1 && errno == err, "txsync errno %d", errno);
    CHECK(mmap(NULL, reg.nr_memsize, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED && errno == err,
          "mmap errno %d", errno);
    return 0;
}

static int run_pass(const char *self, const char *txname, const char *rxname, unsigned n)
{
    struct port m, s;
    char arg_sock[16], arg_n[16];
    int sv[2];
    pid_t pid;

    open_port(&m, txname, NR_REG_ALL_NIC);
    open_port(&s, rxname, NR_REG_ALL_NIC);
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0, "socketpair");
    if ((pid = fork()) == 0) {
        snprintf(arg_sock, sizeof(arg_sock), "%d", sv[1]);
        snprintf(arg_n, sizeof(arg_n), "%u", n);
        execl(self, self, "pass-child", arg_sock, arg_n, (char *)NULL);
        _exit(127);
    }
    CHECK(pid > 0, "fork");
    close(sv[1]);
    send_fd(sv[0], m.fd, &m.reg);
    close_port(&m);                     /* the child has it now */
    receive(&s, n);
    wait_child_ok(pid);
    close_port(&s);
    close(sv[0]);
    printf("pass ok %u\n", n);
    return 0;
}

/* Wait up to ms for fd to be readable, with poll, select or epoll (a set
 * of its own, so epoll_ctl comes first): 1 readable, 0 timed out. */
static int wait_readable(const char *how, int fd, int ms)
{
    int rc;

    if (strcmp(how, "poll") == 0) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        rc = poll(&p, 1, ms);
        CHECK(rc == 0 || (rc == 1 && p.revents == POLLIN), "poll: %d, revents %d", rc, p.revents);
    } else if (strcmp(how, "select") == 0) {
        struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
        fd_set r;
        FD_ZERO(&r);
        FD_SET(fd, &r);
        rc = select(fd + 1, &r, NULL, NULL, &tv);
        CHECK(rc == 0 || (rc == 1 && FD_ISSET(fd, &r)), "select: %d", rc);
    } else {
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 77 }, out;
        int ep = epoll_create1(EPOLL_CLOEXEC);
        CHECK(ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0, "epoll_ctl ADD of the fd");
        rc = epoll_wait(ep, &out, 1, ms);
        CHECK(rc == 0 || (rc == 1 && out.events == EPOLLIN && out.data.u64 == 77), "epoll_wait: %d", rc);
        close(ep);
    }
    return rc;
}

/* The exec()ed child of `firstwait`: fd is the one it kept across exec, or
 * -1 (it comes with the reply). */
static int run_firstwait_child(const char *how, int sock, int fd, unsigned n)
{
    struct port p;
    char byte;
    int came = recv_reg(sock, &p.reg);

    CHECK((fd < 0) != (came < 0), "the fd came %s", came < 0 ? "not at all" : "twice");
    p.fd = fd < 0 ? came : fd;
    CHECK(recv(sock, &byte, 1, 0) == 1, "the sender's copy closed");
    CHECK(wait_readable(how, p.fd, 300) == 0, "first %s: an empty RX ring reported readable", how);
    CHECK(send(sock, "g", 1, 0) == 1, "send go");
    CHECK(wait_readable(how, p.fd, 10000) == 1, "%s: frames sent did not make it readable", how);
    map_port(&p);
    receive(&p, n);
    close_port(&p);
    return 0;
}

static int run_firstwait(const char *self, const char *how, const char *via, const char *txname,
                         const char *rxname, unsigned n)
{
    int scm = strcmp(via, "scm") == 0;
    char arg_sock[16], arg_fd[16], arg_n[16], byte;
    struct port m, s;
    int sv[2];
    pid_t pid;

    open_port(&m, txname, NR_REG_ALL_NIC);
    open_port(&s, rxname, NR_REG_ALL_NIC);
    CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0, "socketpair");
    CHECK(fcntl(sv[0], F_SETFD, FD_CLOEXEC) == 0 && fcntl(m.fd, F_SETFD, scm ? FD_CLOEXEC : 0) == 0, "F_SETFD");
    if ((pid = fork()) == 0) {
        snprintf(arg_sock, sizeof(arg_sock), "%d", sv[1]);
        snprintf(arg_fd, sizeof(arg_fd), "%d", scm ? -1 : m.fd);
        snprintf(arg_n, sizeof(arg_n), "%u", n);
        execl(self, self, "firstwait-child", how, arg_sock, arg_fd, arg_n, (char *)NULL);
        _exit(127);
    }
    CHECK(pid > 0, "fork");
    close(sv[1]);
    if (scm) {
        send_fd(sv[0], m.fd, &m.reg);
    } else {
        CHECK(send(sv[0], &m.reg, sizeof(m.reg), 0) == (ssize_t)sizeof(m.reg), "send reply");
    }
    close_port(&m);                     /* the child's is the only one left */
    CHECK(send(sv[0], "r", 1, 0) == 1, "send ready");
    CHECK(recv(sv[0], &byte, 1, 0) == 1, "the child failed before its first wait ended");
    send_all(&s, n);
    wait_child_ok(pid);
    close_port(&s);
    close(sv[0]);
    printf("firstwait ok %u\n", n);
    return 0;
}

struct waiter {
    int fd, rc;
    pid_t tid;
};

static void *wait_in_poll(void *arg)
{
    struct waiter *w = arg;
    struct pollfd p = { .fd = w->fd, .events = POLLIN };

    __atomic_store_n(&w->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
    w->rc = poll(&p, 1, -1);            /* no deadline: only a wakeup ends it */
    return NULL;
}

/* Is thread tid in poll(2) or ppoll(2), as a wait in the kernel is? */
static int in_poll_syscall(pid_t tid)
{
    char path[64], buf[32] = "";
    FILE *f;
    long nr;

    snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
    if (!(f = fopen(path, "r")))
        return 0;
    nr = fgets(buf, sizeof(buf), f) ? strtol(buf, NULL, 10) : -1;
    fclose(f);
    return nr == SYS_ppoll || nr == SYS_poll;
}

/* One message with fds[0..n) to sock's peer. */
static void send_fds(int sock, const int *fds, unsigned n)
{
    char cbuf[CMSG_SPACE(3 * sizeof(int))], byte = 'f';
    struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                          .msg_controllen = CMSG_SPACE(n * sizeof(int)) };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(n * sizeof(int));
    memcpy(CMSG_DATA(c), fds, n * sizeof(int));
    CHECK(sendmsg(sock, &msg, 0) == 1, "sendmsg");
}

static int run_arrivals(const char *how, const char *txname, const char *rxname)
{
    char cbuf[CMSG_SPACE(2 * sizeof(int))], byte;
    struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
    struct mmsghdr mm = { .msg_hdr = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                                       .msg_controllen = sizeof(cbuf) } };
    struct pollfd pf;
    int sv[2], pp[2], fds[3], got[2];
    struct port m, s;
    char path[] = "/dev/shm/nm_raw_arrivals_XXXXXX";

    open_port(&m, txname, NR_REG_ALL_NIC);
    open_port(&s, rxname, NR_REG_ALL_NIC);
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0 && pipe(pp) == 0, "socketpair, pipe");
    CHECK((fds[1] = mkstemp(path)) >= 0 && unlink(path) == 0, "a regular file");
    fds[0] = m.fd;
    fds[2] = pp[0];
    send_fds(sv[0], fds, 3);
    CHECK(munmap(m.mem, m.reg.nr_memsize) == 0 && close(m.fd) == 0 && close(fds[1]) == 0, "close");
    errno = EDOM;
    if (strcmp(how, "recvmmsg") == 0)
        CHECK(recvmmsg(sv[1], &mm, 1, MSG_CMSG_CLOEXEC, NULL) == 1, "recvmmsg");
    else
        CHECK(recvmsg(sv[1], &mm.msg_hdr, MSG_CMSG_CLOEXEC) == 1, "recvmsg");
    CHECK(errno == EDOM, "errno %d after a %s that succeeded", errno, how);
    CHECK(mm.msg_hdr.msg_flags & MSG_CTRUNC, "room for two of three fds: MSG_CTRUNC");
    memcpy(got, CMSG_DATA(CMSG_FIRSTHDR(&mm.msg_hdr)), sizeof(got));
    m.fd = got[0];
    pf = (struct pollfd){ .fd = got[1], .events = POLLIN };
    CHECK(poll(&pf, 1, 0) == 1 && pf.revents == POLLIN && errno == EDOM, "a regular file polls as the kernel's");
    pf = (struct pollfd){ .fd = m.fd, .events = POLLIN };
    CHECK(poll(&pf, 1, 300) == 0 && errno == EDOM, "first poll of the netmap fd: its RX ring is empty");
    send_all(&s, 1);
    CHECK(poll(&pf, 1, 10000) == 1 && pf.revents == POLLIN, "a frame sent: POLLIN");
    map_port(&m);
    receive(&m, 1);
    close_port(&m);
    close_port(&s);
    CHECK(close(got[1]) == 0 && close(pp[0]) == 0 && close(pp[1]) == 0 && close(sv[0]) == 0 && close(sv[1]) == 0,
          "close");
    printf("arrivals ok\n");
    return 0;
}

static int run_bystander(const char *self, const char *txname, const char *rxname)
{
    struct waiter w = { .rc = -1 };
    struct timespec t0, t;
    struct port m, s;
    pthread_t th;
    pid_t pid;

    open_port(&m, txname, NR_REG_ALL_NIC);
    open_port(&s, rxname, NR_REG_ALL_NIC);
    CHECK(fcntl(m.fd, F_SETFD, 0) == 0, "F_SETFD");
    if ((pid = fork()) == 0) {
        execl(self, self, "idle", (char *)NULL);
        _exit(127);
    }
    CHECK(pid > 0, "fork");
    wait_child_ok(pid);
    w.fd = m.fd;
    CHECK(pthread_create(&th, NULL, wait_in_poll, &w) == 0, "pthread_create");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {                                /* until the thread waits in the kernel, 5 s at most */
        sched_yield();
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (!(__atomic_load_n(&w.tid, __ATOMIC_ACQUIRE) && in_poll_syscall(w.tid)) && t.tv_sec - t0.tv_sec < 5);
    clock_gettime(CLOCK_REALTIME, &t);  /* pthread_timedjoin_np's clock */
    send_all(&s, 1);
    t.tv_sec += 10;
    CHECK(pthread_timedjoin_np(th, NULL, &t) == 0, "the waiting poll was not woken: its wakeup went elsewhere");
    CHECK(w.rc == 1, "the waiting poll returned %d", w.rc);
    close_port(&m);
    close_port(&s);
    printf("bystander ok\n");
    return 0;
}

int fd_mode(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "pass") == 0)
        return run_pass(argv[0], argv[2], argv[3], (unsigned)atoi(argv[4]));
    if (argc == 4 && (strcmp(argv[1], "passnic") == 0 || strcmp(argv[1], "passgone") == 0))
        return run_passnic(argv[0], argv[2], (unsigned)atoi(argv[3]), strcmp(argv[1], "passgone") == 0);
    if (argc == 4 && strcmp(argv[1], "passkeep") == 0)
        return run_passkeep(argv[0], argv[2], (unsigned)atoi(argv[3]));
    if (argc == 4 && strcmp(argv[1], "keep-child") == 0)
        return run_keep_child(atoi(argv[2]), (unsigned)atoi(argv[3]));
    if (argc == 5 && strcmp(argv[1], "passrefused") == 0)
        return run_passrefused(argv[0], (unsigned)atoi(argv[2]), argv[3], atoi(argv[4]));
    if (argc == 3 && strcmp(argv[1], "passbadenv") == 0)
        return run_passbadenv(argv[0], argv[2]);
    if (argc == 4 && strcmp(argv[1], "refused-child") == 0)
        return run_refused_child(atoi(argv[2]), atoi(argv[3]));
    if (argc == 3 && strcmp(argv[1], "keepexec") == 0)
        return run_keepexec(argv[0], argv[2]);
    if (argc == 4 && strcmp(argv[1], "keepexec-image") == 0)
        return run_keepexec_image(atoi(argv[2]), (size_t)strtoull(argv[3], NULL, 10));
    if (argc == 4 && strcmp(argv[1], "gone-child") == 0)
        return run_gone_child(atoi(argv[2]));
    if (argc == 4 && strcmp(argv[1], "pass-child") == 0)
        return run_pass_child(atoi(argv[2]), (unsigned)atoi(argv[3]));
    if (argc == 5 && strcmp(argv[1], "arrivals") == 0)
        return run_arrivals(argv[2], argv[3], argv[4]);
    if (argc == 4 && strcmp(argv[1], "bystander") == 0)
        return run_bystander(argv[0], argv[2], argv[3]);
    if (argc == 2 && strcmp(argv[1], "idle") == 0)
        return 0;
    if (argc == 7 && strcmp(argv[1], "firstwait") == 0)
        return run_firstwait(argv[0], argv[2], argv[3], argv[4], argv[5], (unsigned)atoi(argv[6]));
    if (argc == 6 && strcmp(argv[1], "firstwait-child") == 0)
        return run_firstwait_child(argv[2], atoi(argv[3]), atoi(argv[4]), (unsigned)atoi(argv[5]));
    return -1;
}
