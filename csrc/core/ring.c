/*
 * ring.c -- netmap ring discipline shared by every port kind: the initial
 * state and netmap's reinit (the txsync/rxsync prologues are inline, in
 * nmc_int.h: every sync runs one).
 *
 * Every index read from a netmap_ring is user-writable memory: it is read
 * once, checked against the trusted local slot count, and never used to
 * address memory before the check.
 */
#include "nmc_transport.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

void nmc_ring_init(struct netmap_ring *ring, struct nmc_kring *kr, uint8_t *mem,
                   const struct nmc_geom *g, uint32_t obj, uint32_t nslots,
                   uint16_t ringid, uint16_t dir)
{
    uint64_t ring_ofs = nmc_ring_ofs(g, obj);
    int64_t buf_ofs = (int64_t)g->buf_pool_ofs - (int64_t)ring_ofs;
    bool tx = dir == 0;

    (void)mem;
    memset(ring, 0, sizeof(*ring));
    memcpy((void *)&ring->buf_ofs, &buf_ofs, sizeof(buf_ofs));
    *(uint32_t *)&ring->num_slots = nslots;
    *(uint32_t *)&ring->nr_buf_size = g->buf_size;
    *(uint16_t *)&ring->ringid = ringid;
    *(uint16_t *)&ring->dir = dir;
    ring->head = ring->cur = 0;
    ring->tail = tx ? nslots - 1 : 0;

    /* up to the lock only: another process may hold it (or be about to
     * notice the new kgen under it) */
    memset(kr, 0, offsetof(struct nmc_kring, lease_lock));
    kr->lease_init = 0;
    __atomic_add_fetch(&kr->kgen, 1, __ATOMIC_RELEASE);
    kr->nslots = nslots;
    kr->dir = dir;
    kr->hwcur = kr->rhead = kr->rcur = 0;
    kr->hwtail = kr->rtail = tx ? nslots - 1 : 0;
    kr->pipe_tail = tx ? nslots - 1 : 0;
}

uint32_t nmc_rx_whole_head(const struct nmc_port *p, const struct nmc_lring *lr, uint32_t head)
{
    uint32_t end = lr->kr->hwcur;

    if (!(p->xsk || p->pkts) || !(lr->ring->flags & NR_FORWARD))
        return head;
    for (uint32_t j = end; j != head && j < lr->n; j = nmc_next(j, lr->n))
        if (!(lr->ring->slot[j].flags & NS_MOREFRAG))
            end = nmc_next(j, lr->n);
    return end;
}

/* netmap_ring_reinit(): repair slots whose buffer index or length is out of
 * range, and put head/cur/tail back where the kernel side knows them to be.
 * (netmap keeps a misordered but in-range head; we always reset, so the
 * next sync starts from a consistent state.)  A slot left at index 0 owns
 * no buffer: nmc_ring_refill() gives it one. */
void nmc_ring_reinit(struct nmc_lring *lr, const struct nmc_geom *g)
{
    struct netmap_ring *ring = lr->ring;
    struct nmc_kring *kr = lr->kr;

    for (uint32_t i = 0; i < lr->n; i++) {
        struct netmap_slot *s = &ring->slot[i];
        if (s->buf_idx < 2 || s->buf_idx >= g->buf_num) {
            s->buf_idx = 0;
            s->len = 0;
        } else if (s->len > g->buf_size) {
            s->len = 0;
        }
    }
    if (kr->hwcur >= lr->n)
        kr->hwcur = 0;
    if (kr->hwtail >= lr->n)
        kr->hwtail = 0;
    kr->rhead = kr->rcur = kr->hwcur;
    kr->rtail = kr->hwtail;
    ring->head = ring->cur = kr->hwcur;
    ring->tail = kr->hwtail;
    kr->reinits++;
}

static bool bad_idx(uint32_t idx, const struct nmc_geom *g)
{
    return idx < 2 || idx >= g->buf_num;
}

/* Does this ring's slot at position j own its buffer?  Always, unless the
 * ring is crossed with a peer (a pipe): then the RX ring owns the span
 * rx_span gives, the TX ring every other position (bufcheck.c). */
static bool owns_slot(const struct nmc_port *p, int dir, uint32_t n, uint32_t from, uint32_t to,
                      uint32_t j)
{
    bool in_rx_span = nmc_dist(from, j, n) < nmc_dist(from, to, n);

    return !p->ops->rx_span || (dir == 1) == in_rx_span;
}

/* Slots of positions [first, first + count) that own no buffer; with r,
 * each gets a fresh one from the region. */
static uint32_t refill_walk(struct nmc_port *p, struct nmc_lring *lr, int dir, uint32_t first,
                            uint32_t count, struct nmc_region *r)
{
    uint32_t n = lr->n, from = 0, to = 0, found = 0;

    if (p->ops->rx_span)
        p->ops->rx_span(p->ctl, &p->g, dir == 0 ? lr->obj : lr->kr->peer,
                        dir == 0 ? lr->kr->peer : lr->obj, n, &from, &to);
    for (uint32_t k = 0, j = first; k < count && j < n; k++, j = nmc_next(j, n)) {
        struct netmap_slot *s = &lr->ring->slot[j];
        uint32_t fresh;
        if (!bad_idx(nmc_user_u32(&s->buf_idx), &p->g) || !owns_slot(p, dir, n, from, to, j))
            continue;
        found++;
        if (r && nmc_buf_alloc(r, &fresh, 1) == 0) {
            s->buf_idx = fresh;
            s->len = 0;
            s->flags = NS_BUF_CHANGED;
        }
    }
    return found;
}

/* Give every slot of ring lr (direction dir, entered by the caller) in
 * positions [first, first + count) that owns no buffer (an index the user
 * wrote out of range, left at 0 by nmc_ring_reinit) a fresh buffer of the
 * region, len 0, NS_BUF_CHANGED, so that the ring works again at once.
 * The buffer the bad index replaced is in no place now: the sweep that
 * follows frees it when it can prove nobody has it (bufcheck.c).  Control
 * path, under the region lock; nothing to do costs one pass over the
 * slots.  Returns how many slots still own no buffer (0), or -errno. */
int nmc_ring_refill(struct nmc_port *p, struct nmc_lring *lr, int dir, uint32_t first,
                    uint32_t count)
{
    uint64_t none[NMC_MAX_HOLDERS / 64] = { 0 };
    struct nmc_region r;
    uint32_t left;
    int lock;

    if (refill_walk(p, lr, dir, first, count, NULL) == 0)
        return 0;
    if ((lock = nmc_port_lock_region(p)) < 0)
        return lock;
    r = nmc_port_region(p, lock);
    refill_walk(p, lr, dir, first, count, &r);      /* new buffers are claimed (claim.c) */
    nmc_buf_sweep(&r, none);
    left = refill_walk(p, lr, dir, first, count, NULL);
    nmc_region_close_mem(&r);
    close(lock);                        /* releases the region lock */
    return left ? -ENOMEM : 0;
}
