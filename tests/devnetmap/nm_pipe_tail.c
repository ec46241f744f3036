/*
 * nm_pipe_tail.c -- a pipe sender that asks for more room than its TX ring
 * shows (cur = tail, as pkt-gen does when a batch does not fit) after the
 * reader released, then polls: speaks only netmap's fd interface, run
 * under nmcompat exec by tests/unit/test_pipe_tail.py.
 *
 *   nm_pipe_tail PIPE      PIPE{1 sends one frame, PIPE}1 takes it and
 *                          releases it, then stays idle; the sender queues
 *                          one more frame, sets cur = tail and polls POLLOUT
 *                          with no timeout.  The slot released is room: the
 *                          poll must return by itself ("pollout ok").  A
 *                          watchdog thread waits up to 20 s for it; then it
 *                          rescues the poll with a sync of the reader and
 *                          the program fails ("poll waited for the reader").
 */
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "nm_test.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static bool polled, rescued;

static void *watchdog(void *arg)
{
    struct port *reader = arg;
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    pthread_mutex_lock(&lock);
    while (!polled && pthread_cond_timedwait(&done_cv, &lock, &until) == 0)
        ;
    rescued = !polled;
    pthread_mutex_unlock(&lock);
    if (rescued)                            /* the reader drains what the sender left it */
        CHECK(ioctl(reader->fd, NIOCRXSYNC, NULL) == 0, "rescue");
    return NULL;
}

int main(int argc, char **argv)
{
    struct port m, s;
    char name[64];
    unsigned sent = 0, got = 0;
    pthread_t t;

    CHECK(argc == 2, "usage: nm_pipe_tail PIPE");
    snprintf(name, sizeof(name), "%s{1", argv[1]);
    open_port(&m, name, NR_REG_ALL_NIC);
    snprintf(name, sizeof(name), "%s}1", argv[1]);
    open_port(&s, name, NR_REG_ALL_NIC);
    struct netmap_ring *tx = NETMAP_TXRING(m.nifp, 0);
    struct pollfd pfd = { .fd = m.fd, .events = POLLOUT };

    put_frames(&m, &sent, 1);
    CHECK(ioctl(m.fd, NIOCTXSYNC, NULL) == 0, "txsync");
    CHECK(ioctl(s.fd, NIOCRXSYNC, NULL) == 0, "rxsync");
    take_frames(&s, &got);
    CHECK(got == 1 && ioctl(s.fd, NIOCRXSYNC, NULL) == 0, "release");
    put_frames(&m, &sent, 2);
    CHECK(sent == 2, "queue the second frame");
    tx->cur = tx->tail;                     /* wake me when there is more room */
    CHECK(pthread_create(&t, NULL, watchdog, &s) == 0, "watchdog");
    CHECK(poll(&pfd, 1, -1) == 1 && pfd.revents == POLLOUT, "poll: revents %#x", (unsigned)pfd.revents);
    pthread_mutex_lock(&lock);
    polled = true;
    pthread_cond_signal(&done_cv);
    pthread_mutex_unlock(&lock);
    CHECK(pthread_join(t, NULL) == 0, "join");
    CHECK(!rescued, "poll waited for the reader: the released slot was not seen as room");
    close_port(&s);
    close_port(&m);
    printf("pollout ok\n");
    return 0;
}
