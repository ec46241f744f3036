/*
 * monitor.c -- the monitored side of netmap monitors (docs/DESIGN.md,
 * "Monitors"): the links from a ring to its monitors' RX rings, and the
 * copies the monitored port's own syncs make into them.
 *
 * A monitor's RX ring lives in the monitored port's region.  Its writers
 * are the syncs of the monitored rings (TX ring k and RX ring k may write
 * monitor ring k at the same time, from different processes): they take
 * the monitor ring's lease_lock, fill slots from its pipe_tail up to the
 * slot before its hwcur (what the monitor released, stored with release by
 * the monitor's rxsync) and publish pipe_tail.  What does not fit is
 * dropped, as in netmap.  A ring with no monitor pays one relaxed load of
 * kr->nmon per sync (sync.c).
 *
 * Links (kr->mon[]) are changed under the region lock only.  A link names
 * the monitor ring's object and its kgen: unlinking bumps kgen under the
 * monitor ring's lock, so a writer that read the link earlier finds it
 * stale once inside the lock and copies nothing.
 *
 * Zero-copy monitors chain (netmap's zmons): a later /z is linked from the
 * RX ring of the one before (NMC_MON_CHAIN), so that monitor's own rxsync
 * hands on what it releases, by the same path as a port's RX ring.
 */
#include "nmc_transport.h"

#include <errno.h>
#include <string.h>

/* The writers' lock of a monitor RX ring, initialised once in the life of
 * the region (as a VALE destination ring's: the object may be reused). */
void nmc_monitor_ring_init(struct nmc_kring *mkr)
{
    pthread_mutexattr_t a;

    if (__atomic_load_n(&mkr->lock_ready, __ATOMIC_ACQUIRE) == NMC_LOCK_READY)
        return;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&mkr->lease_lock, &a);
    pthread_mutexattr_destroy(&a);
    __atomic_store_n(&mkr->lock_ready, NMC_LOCK_READY, __ATOMIC_RELEASE);
}

/* A writer that died inside left at most unpublished slots: nothing to
 * repair beyond marking the lock consistent. */
static int mon_lock(struct nmc_kring *mkr)
{
    int err;

    if (__atomic_load_n(&mkr->lock_ready, __ATOMIC_ACQUIRE) != NMC_LOCK_READY)
        return -ESTALE;
    err = pthread_mutex_lock(&mkr->lease_lock);
    if (err == EOWNERDEAD) {
        pthread_mutex_consistent(&mkr->lease_lock);
        err = 0;
    }
    return -err;
}

int nmc_monitor_link(struct nmc_kring *kr, uint32_t mobj, uint32_t mkgen, uint32_t flags)
{
    uint32_t n = kr->nmon;

    if (n >= NMC_MAX_MONITORS)
        return -EBUSY;
    if (n == 0)                         /* what a TX ring's syncs copied so far is stale */
        __atomic_add_fetch(&kr->mon_epoch, 1, __ATOMIC_RELAXED);
    kr->mon[n] = (struct nmc_mon_link){ .obj = mobj, .kgen = mkgen, .flags = flags };
    __atomic_store_n(&kr->nmon, n + 1, __ATOMIC_RELEASE);
    return 0;
}

/* Remove every link of kr to monitor ring object mobj (region lock held). */
void nmc_monitor_unlink(struct nmc_kring *kr, uint32_t mobj)
{
    uint32_t n = kr->nmon < NMC_MAX_MONITORS ? kr->nmon : NMC_MAX_MONITORS;

    for (uint32_t i = 0; i < n; ) {
        if (kr->mon[i].obj != mobj) {
            i++;
            continue;
        }
        kr->mon[i] = kr->mon[n - 1];
        n--;
    }
    __atomic_store_n(&kr->nmon, n, __ATOMIC_RELEASE);
}

/* Writers that read a link to mkr before it was removed copy nothing
 * from now on (region lock held). */
void nmc_monitor_retire(struct nmc_kring *mkr)
{
    if (mon_lock(mkr) < 0)
        return;
    __atomic_add_fetch(&mkr->kgen, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&mkr->lease_lock);
}

/* Slots of the packet starting at j, up to `to` (a chain cut at `to`
 * counts as what it has). */
static uint32_t chain_len(const struct netmap_ring *src, uint32_t n, uint32_t j, uint32_t to)
{
    uint32_t k = 0;

    do {
        uint16_t flags = nmc_user_u16(&src->slot[j].flags);
        k++;
        j = nmc_next(j, n);
        if (!(flags & NS_MOREFRAG))
            break;
    } while (j != to && k < NETMAP_MAX_FRAGS);
    return k;
}

static bool buf_ok(const struct nmc_port *p, uint32_t idx)
{
    return idx >= 2 && idx < p->g.buf_num;
}

/* Copy monitors: the payload into the monitor slot's own buffer. */
static void copy_slot(struct nmc_port *p, struct netmap_slot *from, struct netmap_slot *to,
                      uint16_t txmon, uint16_t keep)
{
    struct netmap_slot s = nmc_slot_read(from);
    uint32_t didx = nmc_user_u32(&to->buf_idx);
    uint16_t len = s.len;

    if (!buf_ok(p, s.buf_idx) || !buf_ok(p, didx) || len > p->g.buf_size)
        len = 0;                        /* nothing that could be read or written */
    else
        memcpy(nmc_buf(p->mem, &p->g, didx), nmc_buf(p->mem, &p->g, s.buf_idx), len);
    to->len = len;
    to->flags = (uint16_t)((s.flags & (NS_MOREFRAG | keep)) | txmon);
}

/* Zero-copy monitors: the buffers trade places (one region), and the
 * monitored slot says so (NS_BUF_CHANGED), as netmap's zmon does. */
static void swap_slot(struct nmc_port *p, struct netmap_slot *from, struct netmap_slot *to,
                      uint16_t txmon, uint16_t keep)
{
    struct netmap_slot s = nmc_slot_read(from);
    uint32_t didx = nmc_user_u32(&to->buf_idx);
    uint16_t dlen = nmc_user_u16(&to->len);

    if (!buf_ok(p, s.buf_idx) || !buf_ok(p, didx) || s.len > p->g.buf_size) {
        to->len = 0;                    /* nothing that could be handed over */
        to->flags = txmon;
        return;
    }
    from->buf_idx = didx;
    from->len = dlen;
    from->flags = s.flags | NS_BUF_CHANGED;
    to->buf_idx = s.buf_idx;
    to->len = s.len;
    to->flags = (uint16_t)((s.flags & (NS_MOREFRAG | keep)) | txmon);
}

/* Put slots [from, to) of src (n slots) in the monitor ring the link
 * names.  What does not fit is dropped, oldest packets first, as netmap
 * drops it. */
static void fill_monitor(struct nmc_port *p, const struct nmc_mon_link *l, struct netmap_ring *src,
                         uint32_t n, uint32_t from, uint32_t to, uint16_t txmon)
{
    struct nmc_kring *mkr;
    struct netmap_ring *dst;
    uint32_t obj = l->obj, mn, tail, rel, room, left = nmc_dist(from, to, n), start;
    uint16_t keep = l->flags & NMC_MON_CHAIN ? NS_TXMON : 0;   /* a monitor's slot says it */

    if (obj >= p->g.ring_num)
        return;
    mkr = &nmc_krings(p->ctl, &p->g)[obj];
    if (mon_lock(mkr) < 0)
        return;
    mn = mkr->nslots;
    tail = start = mkr->pipe_tail;
    rel = nmc_load_acq(&mkr->hwcur);
    if (__atomic_load_n(&mkr->kgen, __ATOMIC_ACQUIRE) != l->kgen || mn < 2 ||
        mn > NMC_MAXSLOTS || tail >= mn || rel >= mn)
        goto out;
    dst = nmc_ring_obj(p->mem, &p->g, obj);
    room = mn - 1 - nmc_dist(rel, tail, mn);
    while (left > room) {               /* drop the oldest packets */
        uint32_t k = chain_len(src, n, from, to);
        from = (from + k) % n;
        left -= k;
    }
    for (uint32_t j = from; j != to; j = nmc_next(j, n), tail = nmc_next(tail, mn))
        (l->flags & NR_ZCOPY_MON ? swap_slot : copy_slot)(p, &src->slot[j], &dst->slot[tail], txmon,
                                                           keep);
    if (tail != start)
        nmc_store_rel(&mkr->pipe_tail, tail);
out:
    pthread_mutex_unlock(&mkr->lease_lock);
    if (tail != start)
        nmc_wake_sleepers(p, mkr);
}

/* Slots [from, to) of lr's ring to every monitor whose link has all of
 * `want` and none of `unwanted`. */
static void fill_all(struct nmc_port *p, struct nmc_lring *lr, uint32_t from, uint32_t to,
                     uint32_t want, uint32_t unwanted)
{
    struct nmc_kring *kr = lr->kr;
    uint32_t nmon = __atomic_load_n(&kr->nmon, __ATOMIC_ACQUIRE);

    if (from == to || from >= lr->n || to >= lr->n)
        return;
    for (uint32_t i = 0; i < nmon && i < NMC_MAX_MONITORS; i++) {
        struct nmc_mon_link l = kr->mon[i];
        if ((l.flags & want) == want && !(l.flags & unwanted))
            fill_monitor(p, &l, lr->ring, lr->n, from, to, want & NR_MONITOR_TX ? NS_TXMON : 0);
    }
}

/* The user's head, if the sync's prologue would take it: hwcur <= head <=
 * cur <= limit (a refused sync hands nothing to monitors). */
static bool user_head(const struct nmc_lring *lr, uint32_t limit, uint32_t *head)
{
    uint32_t n = lr->n, from = lr->kr->hwcur, h = nmc_user_u32(&lr->ring->head);
    uint32_t c = nmc_user_u32(&lr->ring->cur);

    if (h >= n || c >= n || from >= n || limit >= n || nmc_dist(from, h, n) > nmc_dist(from, c, n) ||
        nmc_dist(from, c, n) > nmc_dist(from, limit, n))
        return false;
    *head = h;
    return true;
}

/* Before a ring's sync.  TX: copy monitors get what it is about to send,
 * [hwcur, head), less what an earlier sync copied and has not sent yet.
 * RX: zero-copy monitors get what the user released, [hwcur, head). */
void nmc_monitor_before(struct nmc_port *p, struct nmc_lring *lr, int dir)
{
    uint32_t n = lr->n, from = lr->kr->hwcur, head, seen = lr->mon_tx_next - 1;
    uint32_t epoch = __atomic_load_n(&lr->kr->mon_epoch, __ATOMIC_ACQUIRE);

    if (dir == 1) {
        if (user_head(lr, lr->kr->hwtail, &head))       /* what the sync takes back */
            fill_all(p, lr, from, nmc_rx_whole_head(p, lr, head), NR_MONITOR_RX | NR_ZCOPY_MON, 0);
        return;
    }
    if (!user_head(lr, lr->kr->rtail, &head))
        return;                         /* the sync refuses it */
    if (lr->mon_tx_next && lr->mon_tx_epoch == epoch && seen < n &&
        nmc_dist(from, seen, n) <= nmc_dist(from, head, n))
        from = seen;                    /* copied by the last sync, not sent yet */
    lr->mon_tx_next = head + 1;
    lr->mon_tx_epoch = epoch;
    fill_all(p, lr, from, head, NR_MONITOR_TX, NR_ZCOPY_MON);
}

/* After a ring's sync (old_tail: its hwtail before).  TX: zero-copy
 * monitors get what the sync completed, [old_tail + 1, hwtail + 1).  RX:
 * copy monitors get what it made visible, [old_tail, hwtail). */
void nmc_monitor_after(struct nmc_port *p, struct nmc_lring *lr, int dir, uint32_t old_tail)
{
    uint32_t n = lr->n, tail = lr->kr->hwtail;

    if (old_tail >= n || tail >= n)
        return;
    if (dir == 0)
        fill_all(p, lr, nmc_next(old_tail, n), nmc_next(tail, n), NR_MONITOR_TX | NR_ZCOPY_MON, 0);
    else
        fill_all(p, lr, old_tail, tail, NR_MONITOR_RX, NR_ZCOPY_MON);
}
