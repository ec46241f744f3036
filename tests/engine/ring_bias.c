/*
 * ring_bias.c -- a ring's bias (core/ring_own.c): the thread that holds it
 * enters and leaves its ring with plain stores; anyone else revokes it.
 * Each scenario checks that exactly one party is inside at a time and that
 * nobody is locked out for good:
 *
 *   threads       a second thread of the holder's process revokes the bias
 *                 while the holder is out, then (on another pipe) finds the
 *                 holder inside: it skips the ring until the holder leaves;
 *                 the holder keeps entering afterwards (by compare-and-swap)
 *   fork          a forked child (same holder, same bias word) revokes the
 *                 parent's bias; then the parent enters again
 *   kill_inside   a child holds the bias, enters and is killed inside: the
 *                 parent revokes, judges it dead inside and takes the ring
 *   kill_outside  the same, the child killed outside its ring
 *   same_word     a second thread whose count of entries is the holder's (a
 *                 stale copy) does not get in by the holder's very word (by
 *                 revoking a bias that is its own word)
 *   count_wrap    after a revocation, the entry count coming round to the
 *                 revoked bias's word draws another word (a word equal to a
 *                 revoked bias would be taken for it, and taken over)
 *   nested        the bias holder entering its ring again from inside (a
 *                 signal handler) is refused
 *   reap_outside  a holder killed outside its ring, holding the bias, is
 *                 reaped at the next open: its bias and owner word go
 *   seccomp_later a process whose membarrier stops working (a seccomp filter
 *                 installed after it took a bias) cannot revoke, takes no
 *                 new bias, and its bias holder takes its ring back
 *   no_membarrier a child that may not call membarrier (seccomp: ENOSYS)
 *                 cannot revoke the parent's bias (it skips the ring), the
 *                 parent takes its ring back by compare-and-swap at its next
 *                 entry, and then the child gets in; a sleep of that child
 *                 in nmc_poll() marks its ring fenced_wake and is woken
 *
 *   ring_bias SCENARIO   (rundir: $NMCOMPAT_RUNDIR)
 *
 * Output: "done SCENARIO" and exit 0, "FAIL <why>" and exit 1, or exit 77
 * when membarrier is not available here (there is no bias to test).
 */
#include "nmc_int.h"
#include <net/netmap_user.h>

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define FAIL(...) do { printf("FAIL " __VA_ARGS__); printf("\n"); fflush(stdout); exit(1); } while (0)

static const char *g_rundir;

static struct nmc_port *open_end(const char *id, uint32_t role)
{
    struct nmc_pipe_req req = { .rundir = g_rundir, .parent = "bias", .pipe_id = id, .role = role,
                                .mode = NR_REG_ALL_NIC, .spin_us = 0 };
    struct nmc_port *p = NULL;
    int err = nmc_pipe_open(&req, &p);

    if (err < 0)
        FAIL("couldn't open bias%c%s: %s", role ? '}' : '{', id, strerror(-err));
    return p;
}

/* Enter and leave the port's first TX ring once: it then holds the bias. */
static void take_bias(struct nmc_port *p)
{
    struct nmc_lring *lr = &p->tx[0];
    uint64_t e = nmc_ring_enter(p, lr, 0);

    if (!e)
        FAIL("the first entry of an idle ring was refused");
    nmc_ring_leave(lr, e);
    if (!lr->bias_word || lr->kr->bias != lr->bias_word || lr->kr->busy != lr->bias_word)
        FAIL("no bias after an uncontended entry (bias %#llx, busy %#llx, ours %#llx)",
             (unsigned long long)lr->kr->bias, (unsigned long long)lr->kr->busy,
             (unsigned long long)lr->bias_word);
}

/* Enter, expecting `want` (1 in, 0 skipped); leave when in. */
static void enter_once(struct nmc_port *p, int want, const char *who)
{
    uint64_t e = nmc_ring_enter(p, &p->tx[0], 0);

    if (!!e != want)
        FAIL("%s: entry %s, expected %s", who, e ? "granted" : "refused", want ? "granted" : "refused");
    if (e)
        nmc_ring_leave(&p->tx[0], e);
}

struct other { struct nmc_port *p; int want; const char *who; };

static void *other_thread(void *arg)
{
    struct other *o = arg;

    enter_once(o->p, o->want, o->who);
    return NULL;
}

static void in_thread(struct nmc_port *p, int want, const char *who)
{
    struct other o = { p, want, who };
    pthread_t t;

    if (pthread_create(&t, NULL, other_thread, &o) != 0)
        FAIL("couldn't start a thread");
    pthread_join(t, NULL);
}

static void threads(void)
{
    struct nmc_port *a = open_end("1", NMC_PIPE_MASTER), *b = open_end("2", NMC_PIPE_MASTER);
    uint64_t e;

    take_bias(a);
    in_thread(a, 1, "a second thread, the holder out");
    if (a->tx[0].kr->bias != 0 || !a->tx[0].kr->bias_off)
        FAIL("the bias was not revoked");
    enter_once(a, 1, "the former holder");
    enter_once(a, 1, "the former holder, again");
    take_bias(b);
    if (!(e = nmc_ring_enter(b, &b->tx[0], 0)) || e != b->tx[0].bias_word)
        FAIL("the holder did not enter by its bias");
    in_thread(b, 0, "a second thread, the holder inside");
    nmc_ring_leave(&b->tx[0], e);
    in_thread(b, 1, "a second thread, the holder gone out");
    if (b->tx[0].kr->busy != 0)
        FAIL("the ring stayed owned after the second thread left");
    enter_once(b, 1, "the former holder");
    nmc_port_close(a);
    nmc_port_close(b);
}

/* The state of a second thread that read the port's bound ring before the
 * holder took its bias, and counted the same entry: its word is the
 * holder's. */
struct twin { struct nmc_port *p; struct nmc_lring view; uint64_t got; };

static void *twin_thread(void *arg)
{
    struct twin *t = arg;

    t->got = nmc_ring_enter(t->p, &t->view, 0);
    return NULL;
}

static void same_word(void)
{
    struct nmc_port *a = open_end("9", NMC_PIPE_MASTER);
    struct twin t = { .p = a };
    pthread_t th;

    take_bias(a);
    t.view = a->tx[0];
    t.view.bias_word = t.view.bias_prev = 0;
    t.view.entries = a->tx[0].entries - 1;      /* its next count is the holder's */
    if (pthread_create(&th, NULL, twin_thread, &t) != 0)
        FAIL("couldn't start a thread");
    pthread_join(th, NULL);
    if (t.got == a->tx[0].bias_word)
        FAIL("a thread that counted the holder's entry got in with its word %#llx",
             (unsigned long long)t.got);
    if (t.got)
        nmc_ring_leave(&t.view, t.got);
    enter_once(a, 1, "the holder after its twin");
    nmc_port_close(a);
}

static void count_wrap(void)
{
    struct nmc_port *a = open_end("14", NMC_PIPE_MASTER);
    struct nmc_lring *lr = &a->tx[0];
    struct nmc_kring *kr = lr->kr;
    uint64_t x, e;

    take_bias(a);
    x = lr->bias_word;
    kr->bias = 0;                       /* what a revoker leaves after its membarrier */
    kr->bias_off = 1;
    kr->bias_gone = x;
    enter_once(a, 1, "the holder after the revocation");        /* takes busy back from x */
    if (kr->busy != 0 || lr->bias_prev != 0)
        FAIL("the holder's entry did not take its revoked word back");
    lr->entries = (uint32_t)((x >> 9) & ((1u << 23) - 1)) - 1;  /* the next count is x's */
    if (!(e = nmc_ring_enter(a, lr, 0)))
        FAIL("a free ring refused an entry");
    if (e == x)
        FAIL("an entry drew the revoked bias word %#llx again", (unsigned long long)x);
    nmc_ring_leave(lr, e);
    nmc_port_close(a);
}

static void nested(void)
{
    struct nmc_port *a = open_end("10", NMC_PIPE_MASTER);
    uint64_t e;

    take_bias(a);
    if ((e = nmc_ring_enter(a, &a->tx[0], 0)) != a->tx[0].bias_word)
        FAIL("the holder did not enter by its bias");
    enter_once(a, 0, "the holder, inside already");
    if (!a->tx[0].kr->bias_in)
        FAIL("a refused nested entry left the ring");
    nmc_ring_leave(&a->tx[0], e);
    enter_once(a, 1, "the holder, out again");
    nmc_port_close(a);
}

static int wait_child(pid_t pid)
{
    int st;

    if (waitpid(pid, &st, 0) != pid)
        FAIL("waitpid: %s", strerror(errno));
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void fork_(void)
{
    struct nmc_port *a = open_end("3", NMC_PIPE_MASTER);
    pid_t pid;
    int rc;

    take_bias(a);
    if ((pid = fork()) < 0)
        FAIL("fork: %s", strerror(errno));
    if (pid == 0) {
        enter_once(a, 1, "the forked child");
        if (a->tx[0].kr->bias != 0 || !a->tx[0].kr->bias_off)
            FAIL("the child entered by its parent's bias (it copied its memory)");
        enter_once(a, 1, "the forked child, again");
        _exit(0);
    }
    if ((rc = wait_child(pid)) != 0)
        exit(rc);
    enter_once(a, 1, "the parent after its child");
    nmc_port_close(a);
}

/* Fork a child that takes the bias on the TX ring of *a (or, a NULL, of
 * bias{id it opens itself), enters it too when `inside`, says so and waits
 * to be killed; returns its pid once it is ready. */
static pid_t start_holder(struct nmc_port *a, const char *id, int inside)
{
    int sync[2];
    pid_t pid;
    char c;

    if (pipe(sync) < 0)
        FAIL("pipe: %s", strerror(errno));
    if ((pid = fork()) < 0)
        FAIL("fork: %s", strerror(errno));
    if (pid == 0) {
        if (!a)
            a = open_end(id, NMC_PIPE_MASTER);
        take_bias(a);
        if (inside && nmc_ring_enter(a, &a->tx[0], 0) != a->tx[0].bias_word)
            FAIL("the child did not enter by its bias");
        if (write(sync[1], "x", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    if (read(sync[0], &c, 1) != 1)
        FAIL("the child did not get ready");
    close(sync[0]);
    close(sync[1]);
    return pid;
}

static void kill_holder(pid_t pid)
{
    kill(pid, SIGKILL);
    wait_child(pid);
}

/* A child takes the bias on a's TX ring and stays inside (inside != 0) or
 * out; it is then killed and reaped, and the parent must get in. */
static void kill_child(int inside)
{
    struct nmc_port *a = open_end(inside ? "4" : "5", NMC_PIPE_MASTER);
    pid_t pid = start_holder(a, NULL, inside);

    if (a->tx[0].kr->bias_in != (uint32_t)inside)
        FAIL("bias_in %u, expected %d", a->tx[0].kr->bias_in, inside);
    kill_holder(pid);
    enter_once(a, 1, inside ? "the parent, its child killed inside" : "the parent, its child killed out");
    if (a->tx[0].kr->bias_in)
        FAIL("the dead child's bias_in was left set");
    nmc_port_close(a);
}

static void reap_outside(void)
{
    struct nmc_port *rx = open_end("11", NMC_PIPE_SLAVE), *a;

    kill_holder(start_holder(NULL, "11", 0));
    a = open_end("11", NMC_PIPE_MASTER);        /* the open reaps the dead holder */
    if (a->tx[0].kr->busy || a->tx[0].kr->bias)
        FAIL("the dead holder's bias outlived its reaping (busy %#llx, bias %#llx)",
             (unsigned long long)a->tx[0].kr->busy, (unsigned long long)a->tx[0].kr->bias);
    take_bias(a);
    nmc_port_close(a);
    nmc_port_close(rx);
}

static int deny_membarrier(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_membarrier, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
        return -errno;
    return syscall(__NR_membarrier, 0, 0, 0) < 0 && errno == ENOSYS ? 0 : -EPERM;
}

/* The child's side of no_membarrier: it may not revoke, then gets in once
 * the parent has taken its ring back; then it sleeps for a packet. */
static void unfenced_child(struct nmc_port *a, int to_parent, int from_parent)
{
    struct nmc_port *rx;
    struct netmap_ring *ring;
    char c;
    int r;

    if (deny_membarrier() < 0)
        FAIL("couldn't deny membarrier to the child");
    if (nmc_membar_ready())
        FAIL("the child says it may take a bias without membarrier");
    enter_once(a, 0, "the child without membarrier, the parent holding the bias");
    if (write(to_parent, "1", 1) != 1 || read(from_parent, &c, 1) != 1)
        FAIL("lost the parent");
    enter_once(a, 1, "the child without membarrier, the parent out again");
    rx = open_end("7", NMC_PIPE_SLAVE);
    if (write(to_parent, "2", 1) != 1)
        FAIL("lost the parent");
    r = nmc_poll(rx, POLLIN, 10000);
    ring = NETMAP_RXRING(nmc_port_nifp(rx), 0);
    if (r != POLLIN || ring->cur == ring->tail)
        FAIL("the child's poll returned %d with %u slots", r, ring->tail - ring->cur);
    if (!rx->rx[0].kr->fenced_wake)
        FAIL("a sleeper without membarrier did not mark its ring fenced_wake");
    nmc_port_close(rx);
    _exit(0);
}

static void seccomp_later(void)
{
    struct nmc_port *a = open_end("12", NMC_PIPE_MASTER), *b = open_end("13", NMC_PIPE_MASTER);

    take_bias(a);
    if (deny_membarrier() < 0)
        FAIL("couldn't deny membarrier");
    in_thread(a, 0, "a second thread that cannot revoke");
    if (nmc_membar_ready())
        FAIL("a process whose membarrier failed still says it may take a bias");
    enter_once(b, 1, "a new ring");
    if (b->tx[0].bias_word || b->tx[0].kr->bias)
        FAIL("a bias was taken that nobody could revoke");
    enter_once(a, 1, "the holder after the failed revocation");
    in_thread(a, 1, "the second thread, the holder out");
    nmc_port_close(a);
    nmc_port_close(b);
}

/* Wait (bounded) until someone sleeps on kr: the event the sender waits
 * for before it publishes. */
static void wait_asleep(struct nmc_kring *kr)
{
    for (long i = 0;; i++) {
        uint64_t any = 0;
        for (uint32_t w = 0; w < NMC_SLEEP_WORDS; w++)
            any |= __atomic_load_n(&kr->sleepers[w], __ATOMIC_ACQUIRE);
        if (any)
            return;
        if (i > 2000000000L)
            FAIL("the child never armed its ring");
        nmc_cpu_relax();
    }
}

static void no_membarrier(void)
{
    struct nmc_port *a = open_end("6", NMC_PIPE_MASTER), *tx;
    int up[2], down[2], rc;
    struct netmap_ring *ring;
    pid_t pid;
    char c;

    take_bias(a);
    if (pipe(up) < 0 || pipe(down) < 0)
        FAIL("pipe: %s", strerror(errno));
    if ((pid = fork()) < 0)
        FAIL("fork: %s", strerror(errno));
    if (pid == 0)
        unfenced_child(a, up[1], down[0]);
    if (read(up[0], &c, 1) != 1)
        FAIL("the child died: exit %d", wait_child(pid));
    if (a->tx[0].kr->bias != 0)
        FAIL("the child's failed revocation left the bias standing");
    enter_once(a, 1, "the parent after a failed revocation");
    if (write(down[1], "x", 1) != 1 || read(up[0], &c, 1) != 1)
        FAIL("the child died: exit %d", wait_child(pid));
    tx = open_end("7", NMC_PIPE_MASTER);
    take_bias(tx);
    wait_asleep(tx->tx[0].peer_kr);
    ring = NETMAP_TXRING(nmc_port_nifp(tx), 0);
    ring->slot[ring->head].len = 60;
    ring->head = ring->cur = nm_ring_next(ring, ring->head);
    if (nmc_txsync(tx) < 0)
        FAIL("txsync");
    if ((rc = wait_child(pid)) != 0)
        exit(rc);
    nmc_port_close(tx);
    nmc_port_close(a);
}

static void kill_inside(void) { kill_child(1); }
static void kill_outside(void) { kill_child(0); }

static const struct scenario {
    const char *name;
    void (*run)(void);
} scenarios[] = {
    { "threads", threads }, { "fork", fork_ }, { "kill_inside", kill_inside },
    { "kill_outside", kill_outside }, { "same_word", same_word }, { "count_wrap", count_wrap },
    { "nested", nested }, { "reap_outside", reap_outside }, { "seccomp_later", seccomp_later },
    { "no_membarrier", no_membarrier },
};

int main(int argc, char **argv)
{
    const char *s = argc > 1 ? argv[1] : "";
    size_t i, n = sizeof(scenarios) / sizeof(scenarios[0]);

    setvbuf(stdout, NULL, _IOLBF, 0);
    g_rundir = getenv("NMCOMPAT_RUNDIR");
    if (!nmc_membar_ready()) {
        printf("membarrier's global expedited command is not available here\n");
        return 77;
    }
    for (i = 0; i < n && strcmp(s, scenarios[i].name); i++)
        ;
    if (i == n)
        FAIL("usage: ring_bias threads|fork|kill_inside|kill_outside|same_word|count_wrap|nested|"
             "reap_outside|seccomp_later|no_membarrier");
    scenarios[i].run();
    printf("done %s\n", s);
    return 0;
}
