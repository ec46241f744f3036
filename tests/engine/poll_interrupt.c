/*
 * poll_interrupt.c -- nmc_port_interrupt() against an nmc_poll() waiting in
 * another thread, on a pipe end and on a VALE port, under the sanitizers.
 * Built with the engine sources by tests/unit/vale_helpers.py.
 *
 *   poll_interrupt <rounds>
 *
 * Each round opens a port with no traffic, starts a thread in
 * nmc_poll(POLLIN, -1), interrupts it after 0..2 ms (before, while it
 * spins, or while it sleeps), joins it, and closes the port.  The poll must
 * return -ECANCELED every time, and so must a later one.  Prints
 * "done rounds=N" and exits 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <net/netmap.h>
#include "nmcompat.h"

struct poller {
    struct nmc_port *port;
    int rc;
};

static void *poll_forever(void *arg)
{
    struct poller *w = arg;

    w->rc = nmc_poll(w->port, POLLIN, -1);
    return NULL;
}

static struct nmc_port *open_port(unsigned round)
{
    struct nmc_pipe_req req;
    struct nmc_port *port = NULL;
    char name[32];
    int rc;

    memset(&req, 0, sizeof(req));
    req.mode = NR_REG_ALL_NIC;
    req.spin_us = round % 2 ? 0 : 50;
    if (round % 3 == 2) {
        snprintf(name, sizeof(name), "vale0:p%u", round % 4);
        req.parent = name;
        rc = nmc_vale_open(&req, &port);
    } else {
        req.parent = "x";
        req.pipe_id = round % 2 ? "1" : "2";
        req.role = NMC_PIPE_MASTER;
        rc = nmc_pipe_open(&req, &port);
    }
    if (rc < 0) {
        fprintf(stderr, "open in round %u: %s\n", round, strerror(-rc));
        exit(1);
    }
    return port;
}

int main(int argc, char **argv)
{
    unsigned rounds = argc > 1 ? (unsigned)atoi(argv[1]) : 100;

    for (unsigned i = 0; i < rounds; i++) {
        struct poller w = { .port = open_port(i), .rc = 1 };
        pthread_t t;

        if (pthread_create(&t, NULL, poll_forever, &w) != 0)
            return 1;
        usleep((useconds_t)(rand() % 2000));
        if (nmc_port_interrupt(w.port) != 0)
            return 1;
        pthread_join(t, NULL);
        if (w.rc != -ECANCELED || nmc_poll(w.port, POLLIN, -1) != -ECANCELED) {
            fprintf(stderr, "round %u: poll returned %d after the interrupt\n", i, w.rc);
            return 1;
        }
        if (nmc_port_close(w.port) != 0)
            return 1;
    }
    printf("done rounds=%u\n", rounds);
    return 0;
}
