/*
 * pipe_tail.c -- a stray write to a pipe TX ring's hwtail in the control
 * state (ctl.<id>: a buggy program of the same user, docs/DESIGN.md
 * section 13) must not give the sender room the receiver still holds.
 *
 *   pipe_tail [rundir]
 *
 * The master sends one packet into a 16-slot pipe whose reader releases
 * nothing; the TX kring's hwtail is then overwritten with a value that
 * claims one more free slot than there is (the slot the receiver's hwcur
 * is behind); the master queues one more packet and txsyncs.  The tail it
 * reports must be the receiver's release (15), as it was before any lazy
 * tail: a sending txsync that keeps its tail keeps only one it fetched
 * itself.  Output: "done tail=<t>" (exit 0) or "FAIL <reason>" (exit 1).
 */
#include "nmc_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <net/netmap_user.h>

#define SLOTS 16u

static struct nmc_port *open_end(const char *rundir, uint32_t role)
{
    struct nmc_pipe_req req = {
        .rundir = rundir, .parent = "pt", .pipe_id = "1", .role = role,
        .mode = NR_REG_ALL_NIC, .tx_slots = SLOTS, .rx_slots = SLOTS, .buf_num = 256, .spin_us = 0,
    };
    struct nmc_port *p;
    int err = nmc_pipe_open(&req, &p);

    if (err < 0) {
        printf("FAIL couldn't open the pipe: %s\n", strerror(-err));
        exit(1);
    }
    return p;
}

static void send_one(struct nmc_port *p, const char *what)
{
    int err;

    if (nmc_inject(p, what, strlen(what)) <= 0) {
        printf("FAIL couldn't queue %s\n", what);
        exit(1);
    }
    if ((err = nmc_txsync(p)) < 0) {
        printf("FAIL couldn't txsync after %s: %s\n", what, strerror(-err));
        exit(1);
    }
}

int main(int argc, char **argv)
{
    const char *rundir = argc > 1 ? argv[1] : NULL;
    struct nmc_port *m = open_end(rundir, NMC_PIPE_MASTER), *s = open_end(rundir, NMC_PIPE_SLAVE);
    struct netmap_ring *tx = nmc_port_ring(m, 0, 0, NULL);
    struct nmc_kring *kr = m->tx[0].kr;
    int rc = 0;

    send_one(m, "first");
    if (tx->tail != SLOTS - 1 || kr->hwcur != 1) {
        printf("FAIL unexpected start: hwcur %u tail %u\n", kr->hwcur, tx->tail);
        return 1;
    }
    kr->hwtail = 0;                     /* the stray write: [1, 0) claims slot 15 too */
    send_one(m, "second");
    if (tx->tail != SLOTS - 1) {
        printf("FAIL tail %u after a stray hwtail: the receiver released nothing (15)\n", tx->tail);
        rc = 1;
    } else {
        printf("done tail=%u\n", tx->tail);
    }
    nmc_port_close(s);
    nmc_port_close(m);
    return rc;
}
