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

static void copy_slot(struct nmc_port *p, const struct netmap_slot *from, struct netmap_slot *to,
                      uint16_t txmon)
{
    struct netmap_slot s = nmc_slot_read(from);
    uint32_t didx = nmc_user_u32(&to->buf_idx);
    uint16_t len = s.len;

    if (s.buf_idx < 2 || s.buf_idx >= p->g.buf_num || len > p->g.buf_size ||
        didx < 2 || didx >= p->g.buf_num)
        len = 0;                        /* nothing that could be read or written */
    else
        memcpy(nmc_buf(p->mem, &p->g, didx), nmc_buf(p->mem, &p->g, s.buf_idx), len);
    to->len = len;
    to->flags = (uint16_t)((s.flags & NS_MOREFRAG) | txmon);
}

/* Copy slots [from, to) of src (n slots) into the monitor ring the link
 * names; whole packets, dropping those that do not fit. */
static void copy_to_monitor(struct nmc_port *p, const struct nmc_mon_link *l,
                            const struct netmap_ring *src, uint32_t n, uint32_t from,
                            uint32_t to, uint16_t txmon)
{
    struct nmc_kring *mkr;
    struct netmap_ring *dst;
    uint32_t obj = l->obj, mn, tail, rel, room, start;

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
    for (uint32_t j = from; j != to; ) {
        uint32_t k = chain_len(src, n, j, to);
        for (uint32_t i = 0; i < k; i++, j = nmc_next(j, n)) {
            if (k > room)
                continue;               /* no room for the packet: dropped */
            copy_slot(p, &src->slot[j], &dst->slot[tail], txmon);
            tail = nmc_next(tail, mn);
        }
        room -= k > room ? 0 : k;
    }
    if (tail != start)
        nmc_store_rel(&mkr->pipe_tail, tail);
out:
    pthread_mutex_unlock(&mkr->lease_lock);
    if (tail != start)
        nmc_wake_sleepers(p, mkr);
}

static void copy_to_all(struct nmc_port *p, struct nmc_lring *lr, uint32_t from, uint32_t to,
                        uint32_t want)
{
    struct nmc_kring *kr = lr->kr;
    uint32_t nmon = __atomic_load_n(&kr->nmon, __ATOMIC_ACQUIRE);

    if (from == to || from >= lr->n || to >= lr->n)
        return;
    for (uint32_t i = 0; i < nmon && i < NMC_MAX_MONITORS; i++) {
        struct nmc_mon_link l = kr->mon[i];
        if (l.flags & want)
            copy_to_monitor(p, &l, lr->ring, lr->n, from, to,
                            want == NR_MONITOR_TX ? NS_TXMON : 0);
    }
}

/* Before a TX ring's sync: what it is about to send, [hwcur, head), less
 * what an earlier sync copied and did not send yet. */
void nmc_monitor_tx(struct nmc_port *p, struct nmc_lring *lr)
{
    uint32_t n = lr->n, from = lr->kr->hwcur, head = nmc_user_u32(&lr->ring->head);
    uint32_t seen = lr->mon_tx_next - 1;

    if (head >= n || from >= n || nmc_dist(from, head, n) > nmc_dist(from, lr->kr->rtail, n))
        return;                         /* the sync refuses it */
    if (lr->mon_tx_next && seen < n && nmc_dist(from, seen, n) <= nmc_dist(from, head, n))
        from = seen;
    lr->mon_tx_next = head + 1;
    copy_to_all(p, lr, from, head, NR_MONITOR_TX);
}

/* After an RX ring's sync: what it made visible, [old_tail, hwtail). */
void nmc_monitor_rx(struct nmc_port *p, struct nmc_lring *lr, uint32_t old_tail)
{
    copy_to_all(p, lr, old_tail, lr->kr->hwtail, NR_MONITOR_RX);
}
