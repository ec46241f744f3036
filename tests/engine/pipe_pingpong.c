/*
 * pipe_pingpong.c -- the lost wakeup, hunted: two processes bounce one
 * packet over a netmap pipe, each waiting in nmc_poll() with no spin, so
 * that every wait arms a sleeper bit while the other side is publishing.
 *
 *   pipe_pingpong <rundir> <round trips>
 *
 * The parent opens the master end and the child the slave end.  Each
 * round trip the parent sends packet k, the child answers k after a delay
 * that sweeps across the parent's arming; the parent waits in
 * nmc_poll(POLLIN) with no spin, the child spins and then waits too.  A
 * sleep that ended without a bell is a lost wakeup: the publish and the
 * sleeper's arm missed each other (a publisher that read the sleeper bits
 * before its publish was visible, and a sleeper that read the index before
 * its bit was), and the packet lay unseen until poll(2) timed out.  Output:
 * "done trips=<n> sleeps=<m>" (exit 0) or "FAIL <reason>" (exit 1).
 */
#include "nmc_int.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <net/netmap_user.h>

static pid_t g_child;                   /* the master's slave, ended when the master fails */

static void fail(const char *who, const char *what, uint32_t k, int err)
{
    if (g_child > 0)
        kill(g_child, SIGKILL);
    printf("FAIL %s: %s at trip %u%s%s\n", who, what, k, err ? ": " : "", err ? strerror(-err) : "");
    fflush(stdout);
    _exit(1);
}

static struct nmc_port *open_end(const char *rundir, uint32_t role)
{
    struct nmc_pipe_req req = {
        .rundir = rundir, .parent = "pp", .pipe_id = "1", .role = role,
        .mode = NR_REG_ALL_NIC, .tx_slots = 64, .rx_slots = 64, .buf_num = 512, .spin_us = 0,
    };
    struct nmc_port *p;
    int err = nmc_pipe_open(&req, &p);

    if (err < 0)
        fail(role ? "slave" : "master", "couldn't open the pipe", 0, err);
    return p;
}

static void send_trip(struct nmc_port *p, const char *who, uint32_t k)
{
    int err;

    if (nmc_inject(p, &k, sizeof(k)) <= 0)
        fail(who, "couldn't queue", k, 0);
    if ((err = nmc_txsync(p)) < 0)
        fail(who, "couldn't txsync", k, err);
}

/* Take packet k from the RX ring; false if the ring shows nothing. */
static bool take_trip(struct nmc_port *p, const char *who, uint32_t k)
{
    struct netmap_ring *rx = nmc_port_ring(p, 1, 0, NULL);
    uint32_t got;
    int err;

    if ((err = nmc_rxsync(p)) < 0)
        fail(who, "couldn't rxsync", k, err);
    if (nm_ring_empty(rx))
        return false;
    memcpy(&got, NETMAP_BUF(rx, rx->slot[rx->cur].buf_idx), sizeof(got));
    if (got != k || rx->slot[rx->cur].len != sizeof(got))
        fail(who, "got another packet", k, 0);
    rx->head = rx->cur = nm_ring_next(rx, rx->cur);
    return true;
}

/* A lost wakeup is not fatal to nmc_poll(): its inner poll(2) times out
 * and the rings are looked at again.  So a wait is judged by how each of
 * its sleeps ended: woken by a bell, the sleeper drains its socket; a
 * sleep that ended with no bell to drain ended on the timeout, with the
 * packet lying unseen in the ring (the peer answers within microseconds,
 * and the timeout is two seconds). */
static void wait_trip(struct nmc_port *p, const char *who, uint32_t k)
{
    while (!take_trip(p, who, k)) {
        struct nmc_port_stats before, after;
        int rv;
        nmc_port_stats(p, &before);
        rv = nmc_poll(p, POLLIN, 2000);
        nmc_port_stats(p, &after);
        if (rv < 0)
            fail(who, "couldn't poll", k, rv);
        if (rv == 0)
            fail(who, "nothing came", k, 0);
        if (after.sleeps - before.sleeps > after.drains - before.drains)
            fail(who, "lost wakeup: a sleep ended with no bell", k, 0);
    }
}

/* The slave spins on rxsync, so that it answers while the master is still
 * arming; after a while without a packet it waits in nmc_poll() too. */
static void spin_trip(struct nmc_port *p, uint32_t k)
{
    for (uint64_t i = 1; !take_trip(p, "slave", k); i++)
        if (i % 4096 == 0) {
            wait_trip(p, "slave", k);
            return;
        }
}

static uint64_t sleeps(struct nmc_port *p)
{
    struct nmc_port_stats st;

    nmc_port_stats(p, &st);
    return st.sleeps;
}

int main(int argc, char **argv)
{
    uint32_t trips;
    struct nmc_port *m;
    pid_t child;
    int status;

    if (argc != 3 || (trips = (uint32_t)strtoul(argv[2], NULL, 10)) == 0) {
        fprintf(stderr, "usage: pipe_pingpong <rundir> <round trips>\n");
        return 2;
    }
    fflush(stdout);
    if ((child = fork()) < 0)
        fail("master", "couldn't fork", 0, -errno);
    if (child == 0) {
        struct nmc_port *s = open_end(argv[1], NMC_PIPE_SLAVE);
        for (uint32_t k = 0; k < trips; k++) {
            spin_trip(s, k);
            for (uint32_t i = 0; i < k % 40; i++)
                nmc_cpu_relax();        /* sweep the answer across the master's arming */
            send_trip(s, "slave", k);
        }
        _exit(0);
    }
    g_child = child;
    m = open_end(argv[1], NMC_PIPE_MASTER);
    for (uint32_t k = 0; k < trips; k++) {
        send_trip(m, "master", k);
        wait_trip(m, "master", k);
    }
    g_child = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail("master", "the slave failed", trips, 0);
    printf("done trips=%u sleeps=%" PRIu64 "\n", trips, sleeps(m));
    nmc_port_close(m);
    return 0;
}
