/*
 * vale_open.h -- for the engine tests of VALE leases (vale_stalled.c,
 * vale_dead_lease.c): open a VALE port through the engine, or print
 * "FAIL ..." and exit 1.
 */
#ifndef VALE_OPEN_H
#define VALE_OPEN_H

#include "nmc_vale.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

#endif /* VALE_OPEN_H */
