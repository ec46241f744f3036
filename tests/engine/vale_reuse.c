/*
 * vale_reuse.c -- a VALE destination ring object is retired and reused
 * while a sender is inside its lease lock: the lock must stay the
 * sender's (never overwritten under it), and the new port must work.
 *
 *   vale_reuse            (rundir: $NMCOMPAT_RUNDIR)
 *
 * The pipe "vale3:d{1" keeps the region of port "vale3:d" alive, so that
 * closing the port and opening it again reuses the same ring objects.
 * A thread stands for a remote sender inside the lease lock of d's RX
 * ring while the main thread closes d and opens it again; it lets go when
 * the main thread is done, or after a while if the main thread waits for
 * it.  Then a frame sent by "vale3:e" must reach the new d.
 *
 * Output: "done key=value ..." and exit 0, or "FAIL <why>" and exit 1.
 */
#include "nmc_vale.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <net/netmap_user.h>

#define HOLD_MS 300

static pthread_mutex_t g_mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_locked, g_reopened, g_unlock_rc = -1;
static struct nmc_kring *g_kr;

static struct nmc_port *open_port(const char *name, const char *id)
{
    struct nmc_pipe_req req = { .parent = name, .pipe_id = id, .mode = NR_REG_ALL_NIC };
    struct nmc_port *p;
    int err = id ? nmc_pipe_open(&req, &p) : nmc_vale_open(&req, &p);

    if (err < 0) {
        printf("FAIL couldn't open %s: %s\n", name, strerror(-err));
        exit(1);
    }
    return p;
}

/* A sender inside the lease lock of the destination ring. */
static void *inside(void *arg)
{
    struct timespec until;

    (void)arg;
    if (pthread_mutex_lock(&g_kr->lease_lock) != 0)
        return NULL;
    pthread_mutex_lock(&g_mx);
    g_locked = 1;
    pthread_cond_broadcast(&g_cv);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += HOLD_MS * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    while (!g_reopened && pthread_cond_timedwait(&g_cv, &g_mx, &until) == 0)
        ;
    pthread_mutex_unlock(&g_mx);
    g_unlock_rc = pthread_mutex_unlock(&g_kr->lease_lock);
    return NULL;
}

int main(void)
{
    struct nmc_port *keep = open_port("vale3:d", "1");
    struct nmc_port *d = open_port("vale3:d", NULL), *e;
    uint32_t old_obj = d->rx[0].obj;
    uint8_t frame[60] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x00 };
    pthread_t t;
    int got = 0;

    g_kr = d->rx[0].kr;
    pthread_create(&t, NULL, inside, NULL);
    pthread_mutex_lock(&g_mx);
    while (!g_locked)
        pthread_cond_wait(&g_cv, &g_mx);
    pthread_mutex_unlock(&g_mx);
    nmc_port_close(d);                  /* retires the ring: waits for the sender */
    d = open_port("vale3:d", NULL);
    pthread_mutex_lock(&g_mx);
    g_reopened = 1;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mx);
    pthread_join(t, NULL);
    if (d->rx[0].obj != old_obj) {
        printf("FAIL the ring object was not reused (%u, then %u)\n", old_obj, d->rx[0].obj);
        return 1;
    }
    if (g_unlock_rc != 0) {
        printf("FAIL the sender's lease lock was overwritten under it (unlock: %s)\n",
               strerror(g_unlock_rc));
        return 1;
    }
    e = open_port("vale3:e", NULL);
    for (int round = 0; round < 2000 && !got; round++) {
        uint8_t out[128];
        uint32_t len;
        if (nmc_inject(e, frame, sizeof(frame)) < 0 || nmc_txsync(e) < 0) {
            printf("FAIL couldn't send from vale3:e\n");
            return 1;
        }
        nmc_poll(d, POLLIN, 5);
        got = nmc_recv_batch(d, out, sizeof(out), &len, 1);
    }
    if (got != 1) {
        printf("FAIL the reused port received nothing\n");
        return 1;
    }
    printf("done obj=%u\n", old_obj);
    nmc_port_close(e);
    nmc_port_close(d);
    nmc_port_close(keep);
    return 0;
}
