/*
 * swap_kill.c -- a zero-copy forwarder that stops half-way through a
 * buffer swap, for the buffer-ownership tests (tests/unit/test_bufown.py).
 *
 *   swap_kill RUNDIR PARENT
 *   swap_kill RUNDIR PARENT check
 *
 * Opens PARENT}1 (it reads what the test writes into PARENT{1) and
 * PARENT{2 (it writes what the test reads from PARENT}2), in one region,
 * and prints "ready".  It waits for a packet on PARENT}1, then does the
 * first of the two stores of a buffer swap between that RX slot and the
 * next TX slot of PARENT{2 (as nmc_forward and netmap's bridge do): the
 * received buffer is now in both slots, the TX slot's own buffer in none.
 * It prints "stored <buffer> <rx slot> <tx slot> <lost buffer>" and blocks
 * until it is killed.  "FAIL <reason>" and exit 1 otherwise.
 *
 * With "check" it opens PARENT}1 (whose reap repairs what a killed
 * forwarder left), runs nmc_region_check() on the region and prints
 * "check violations=N listed=N unplaced=N in_rings=N free=N buf_num=N",
 * then "v <what> <buffer>" per violation listed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <net/netmap.h>
#include <net/netmap_user.h>
#include "nmcompat.h"

static void say(const char *fmt, unsigned a, unsigned b, unsigned c, unsigned d)
{
    char line[160];
    int n = snprintf(line, sizeof(line), fmt, a, b, c, d);

    if (n > 0 && write(1, line, (size_t)n) < 0)
        _exit(1);
}

static int fail(const char *what, int err)
{
    char line[160];
    int n = snprintf(line, sizeof(line), "FAIL %s: %s\n", what, strerror(-err));

    if (n > 0 && write(1, line, (size_t)n) < 0)
        return 1;
    return 1;
}

static int open_end(const char *rundir, const char *parent, const char *id, uint32_t role,
                    struct nmc_port **out)
{
    struct nmc_pipe_req req = {
        .rundir = rundir, .parent = parent, .pipe_id = id, .role = role,
        .mode = NR_REG_ALL_NIC, .spin_us = 0,
    };

    return nmc_pipe_open(&req, out);
}

static int check(const char *rundir, const char *parent)
{
    struct nmc_check_report rep;
    struct nmc_port_info info;
    struct nmc_port *in;
    char line[200];
    int err, n;

    if ((err = open_end(rundir, parent, "1", NMC_PIPE_SLAVE, &in)) < 0)
        return fail("open PARENT}1", err);
    if ((err = nmc_port_info(in, &info)) < 0 || (err = nmc_region_check(rundir, info.nr_mem_id, &rep)) < 0)
        return fail("check", err);
    n = snprintf(line, sizeof(line), "check violations=%u listed=%u unplaced=%u in_rings=%u free=%u buf_num=%u\n",
                 rep.violations, rep.listed, rep.unplaced, rep.in_rings, rep.free_bufs, rep.buf_num);
    if (write(1, line, (size_t)n) < 0)
        return 1;
    for (uint32_t i = 0; i < rep.listed; i++)
        say("v %u %u\n", rep.v[i].what, rep.v[i].buf_idx, 0, 0);
    return nmc_port_close(in) < 0;
}

int main(int argc, char **argv)
{
    struct nmc_port *in, *out;
    struct netmap_ring *rx, *tx;
    struct netmap_slot *rs, *ts;
    int err;

    if (argc == 4 && strcmp(argv[3], "check") == 0)
        return check(argv[1], argv[2]);
    if (argc != 3)
        return fail("usage: swap_kill RUNDIR PARENT [check]", -EINVAL);
    if ((err = open_end(argv[1], argv[2], "1", NMC_PIPE_SLAVE, &in)) < 0)
        return fail("open PARENT}1", err);
    if ((err = open_end(argv[1], argv[2], "2", NMC_PIPE_MASTER, &out)) < 0)
        return fail("open PARENT{2", err);
    say("ready\n", 0, 0, 0, 0);
    rx = NETMAP_RXRING(nmc_port_nifp(in), 0);
    tx = NETMAP_TXRING(nmc_port_nifp(out), 0);
    while (nm_ring_empty(rx)) {
        if ((err = nmc_poll(in, POLLIN, 30000)) <= 0)
            return fail("wait for a packet", err < 0 ? err : -ETIMEDOUT);
    }
    if (nm_ring_space(tx) == 0)
        return fail("room in PARENT{2", -ENOSPC);
    rs = &rx->slot[rx->cur];
    ts = &tx->slot[tx->cur];
    {
        uint32_t lost = ts->buf_idx;
        ts->buf_idx = rs->buf_idx;              /* the first store of the swap */
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        say("stored %u %u %u %u\n", rs->buf_idx, rx->cur, tx->cur, lost);
    }
    for (;;)
        pause();                                /* killed here, before rs->buf_idx = lost */
}
