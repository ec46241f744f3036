/*
 * rings_race.c -- ring views (nmc_rings_*) against a peer that rewrites a
 * ring's cur while they run.  Built together with the engine sources
 * (under -fsanitize=address,undefined) by tests/unit/test_rings_race.py.
 *
 *   rings_race [-n calls]
 *
 * One TX ring and one RX ring of N slots in a private netmap-like memory;
 * a second thread writes the TX ring's cur, over and over, alternately 0
 * and a value far outside the ring, while this thread calls
 * nmc_rings_send() and nmc_rings_forward() (a copy from the RX ring) -n
 * times each.  Every index a view reads is checked before it is used, so
 * the calls answer (a count, or -EINVAL) and never touch memory outside
 * the ring: a view that checks one read of cur and uses another walks off
 * the ring (AddressSanitizer, or SIGSEGV).  The TX ring's tail stays
 * valid, so that whenever a call reads cur as 0 it has room.  Then, the
 * peer stopped and the rings reset, one send and one forward must do
 * their whole work (the views are not left refusing everything).
 *
 * Output: "done send=<packets queued> forward=<slots moved> einval=<n>"
 * (during the race),
 * or "FAIL <why>" (exit 1).
 */
#include "nmc_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLOTS    64u
#define BUF_SIZE 256u
#define BUF_NUM  (2u + 2u * SLOTS)
#define FAR_CUR  0x7ffffff0u            /* a slot index some 32 GiB past the ring */

struct race {
    uint8_t *mem;
    struct netmap_ring *tx, *rx;
    volatile int stop;
};

static size_t ring_bytes(void)
{
    return (sizeof(struct netmap_ring) + SLOTS * sizeof(struct netmap_slot) + 63) & ~(size_t)63;
}

/* Two rings, then the buffer pool; ring r's slot j owns buffer 2 + r * SLOTS + j. */
static int race_init(struct race *rc)
{
    size_t pool = 2 * ring_bytes();

    rc->mem = calloc(1, pool + (size_t)BUF_NUM * BUF_SIZE);
    if (!rc->mem)
        return -ENOMEM;
    rc->tx = (struct netmap_ring *)rc->mem;
    rc->rx = (struct netmap_ring *)(rc->mem + ring_bytes());
    for (uint32_t j = 0; j < SLOTS; j++) {
        rc->tx->slot[j].buf_idx = 2 + j;
        rc->rx->slot[j].buf_idx = 2 + SLOTS + j;
        rc->rx->slot[j].len = 60;
    }
    rc->tx->tail = SLOTS - 1;
    rc->rx->tail = SLOTS - 1;
    return 0;
}

static void view_init(struct nmc_rings *v, struct race *rc, struct netmap_ring **tx,
                      struct netmap_ring **rx, const uint32_t *slots)
{
    memset(v, 0, sizeof(*v));
    v->mem = rc->mem;
    v->buf_pool_ofs = 2 * ring_bytes();
    v->buf_size = BUF_SIZE;
    v->buf_num = BUF_NUM;
    v->ntx = tx ? 1 : 0;
    v->nrx = rx ? 1 : 0;
    v->tx = tx;
    v->rx = rx;
    v->tx_slots = v->rx_slots = slots;
}

static void *rewrite_cur(void *arg)
{
    struct race *rc = arg;

    for (uint32_t k = 0; !__atomic_load_n(&rc->stop, __ATOMIC_RELAXED); k++)
        __atomic_store_n(&rc->tx->cur, k & 1 ? FAR_CUR : 0, __ATOMIC_RELAXED);
    return NULL;
}

static int fail(const char *what, int got)
{
    printf("FAIL %s answered %d\n", what, got);
    return 1;
}

/* -n calls of each; counts into out[3]: packets sent, slots forwarded, -EINVAL answers. */
static int race_calls(struct race *rc, long calls, long out[3])
{
    static const uint32_t slots[1] = { SLOTS };
    struct netmap_ring *tx[1] = { rc->tx }, *rx[1] = { rc->rx };
    struct nmc_rings sender, src, dst;
    uint8_t pkt[100] = { 0 };
    uint32_t len = sizeof(pkt);

    view_init(&sender, rc, tx, NULL, slots);
    view_init(&dst, rc, tx, NULL, slots);
    view_init(&src, rc, NULL, rx, slots);
    for (long i = 0; i < calls; i++) {
        int sent = nmc_rings_send(&sender, pkt, sizeof(pkt), &len, 1);
        int moved;
        if (sent != 0 && sent != 1 && sent != -EINVAL)
            return fail("nmc_rings_send", sent);
        rc->rx->head = rc->rx->cur = 0;
        moved = nmc_rings_forward(&src, &dst, SLOTS, NMC_FWD_COPY);
        if (moved < 0 || moved > (int)SLOTS)
            return fail("nmc_rings_forward", moved);
        out[0] += sent == 1;
        out[1] += moved;
        out[2] += sent == -EINVAL;
    }
    return 0;
}

/* Quiet rings: one packet sent, then every slot the TX ring has left filled. */
static int after_race(struct race *rc)
{
    static const uint32_t slots[1] = { SLOTS };
    struct netmap_ring *tx[1] = { rc->tx }, *rx[1] = { rc->rx };
    struct nmc_rings src, dst;
    uint8_t pkt[100] = { 0 };
    uint32_t len = sizeof(pkt);
    int got;

    rc->tx->head = rc->tx->cur = 0;
    rc->rx->head = rc->rx->cur = 0;
    view_init(&dst, rc, tx, NULL, slots);
    view_init(&src, rc, NULL, rx, slots);
    if ((got = nmc_rings_send(&dst, pkt, sizeof(pkt), &len, 1)) != 1)
        return fail("nmc_rings_send on a quiet ring", got);
    if ((got = nmc_rings_forward(&src, &dst, SLOTS, NMC_FWD_COPY)) != (int)SLOTS - 2)
        return fail("nmc_rings_forward on quiet rings", got);
    return 0;
}

int main(int argc, char **argv)
{
    long calls = 1000000, out[3] = { 0, 0, 0 };
    struct race rc = { 0 };
    pthread_t peer;
    int opt, err;

    while ((opt = getopt(argc, argv, "n:")) != -1) {
        if (opt != 'n') {
            fprintf(stderr, "usage: rings_race [-n calls]\n");
            return 2;
        }
        calls = strtol(optarg, NULL, 10);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if ((err = race_init(&rc)) < 0 || (err = -pthread_create(&peer, NULL, rewrite_cur, &rc)) < 0)
        return fail("set-up", err);
    err = race_calls(&rc, calls, out);
    __atomic_store_n(&rc.stop, 1, __ATOMIC_RELAXED);
    pthread_join(peer, NULL);
    if (err == 0)
        err = after_race(&rc);
    free(rc.mem);
    if (err == 0)
        printf("done send=%ld forward=%ld einval=%ld\n", out[0], out[1], out[2]);
    return err;
}
