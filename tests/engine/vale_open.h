/*
 * vale_open.h -- for the engine tests of VALE leases (vale_stalled.c,
 * vale_dead_lease.c, vale_scribbled_kring.c): open a VALE port through the
 * engine, send broadcast rounds, or print "FAIL ..." and exit 1.
 */
#ifndef VALE_OPEN_H
#define VALE_OPEN_H

#include "nmc_vale.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <net/netmap_user.h>

static inline struct nmc_port *open_port(const char *name)
{
    struct nmc_pipe_req req = { .parent = name, .mode = NR_REG_ALL_NIC };
    struct nmc_port *p;
    int err = nmc_vale_open(&req, &p);

    if (err < 0) {
        printf("FAIL couldn't open %s: %s\n", name, strerror(-err));
        exit(1);
    }
    return p;
}

/* Fill s's TX ring with broadcast frames (d is the only other port) and
 * send it, `rounds` times; returns the frames handed to txsync. */
static inline unsigned send_rounds(struct nmc_port *s, int rounds)
{
    uint8_t frame[60];
    unsigned sent = 0;

    memset(frame, 0, sizeof(frame));
    memset(frame, 0xff, 6);
    frame[6] = 0x02, frame[11] = 0x01, frame[12] = 0x88, frame[13] = 0xb5;
    for (int r = 0; r < rounds; r++) {
        while (nmc_inject(s, frame, sizeof(frame)) > 0)
            sent++;
        if (nmc_txsync(s) < 0) {
            printf("FAIL txsync: %s\n", strerror(errno));
            exit(1);
        }
    }
    return sent;
}

#endif /* VALE_OPEN_H */
