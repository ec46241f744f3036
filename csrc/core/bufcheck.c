/*
 * bufcheck.c -- who owns each buffer of a region.
 *
 * A buffer is in exactly one place: the owning slot of a ring of a live
 * port (for a pipe, the TX or the RX side of a slot position, see
 * the ops' rx_span), an extra-buffer list (ni_bufs_head of a holder's
 * netmap_if, linked through the first uint32_t of each buffer), a NIC queue,
 * or free (clear in the allocation bitmap).  Buffers 0 and 1 are reserved.
 *
 * Users move buffers with plain stores (a swap is two stores), so a holder
 * killed between them leaves a buffer in two places and another in none.
 * When the reaper finds a dead holder it calls nmc_buf_sweep(): mark what
 * live holders can reach, then what nobody can write any more; a buffer
 * found again in a place nobody can write gets a fresh buffer there (or
 * index 0); a buffer in no place is freed when the scan proves it saw
 * every buffer the live holders have.  nmc_region_check() is the same walk
 * without changes, for `nmcompat check`.  Control path, under the control
 * lock; cost O(slots + buffers) time and buf_num bits of memory, paid only
 * when a dead holder is found (or a check is asked for).
 */
#include "nmc_transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline bool bit_get(const uint64_t *m, uint32_t i) { return (m[i / 64] >> (i % 64)) & 1; }
static inline void bit_set(uint64_t *m, uint32_t i) { m[i / 64] |= 1ULL << (i % 64); }

static uint64_t *bufmap(const struct nmc_region *r) { return (uint64_t *)(r->ctl + r->g.buf_map_ofs); }

/* One place a buffer index is stored. */
struct place {
    uint32_t kind, port, holder, end, dir, ring, slot;
    struct netmap_slot *s;          /* NMC_PLACE_SLOT */
    uint32_t *link;                 /* NMC_PLACE_EXTRA: where this node's index is */
    bool live;                      /* a live holder may write it */
};

struct scan;
/* Called for each place holding index idx; false stops a list walk. */
typedef bool (*place_fn)(struct scan *sc, const struct place *pl, uint32_t idx);

struct scan {
    struct nmc_region *r;
    uint8_t *mem;
    uint64_t *seen;                             /* buf_num bits */
    uint64_t live_rings[(NMC_DEF_RING_NUM + 63) / 64];
    const uint64_t *dead;                       /* holders found dead (sweep), or NULL */
    bool opaque;                                /* NIC ports: queues not enumerated */
    uint32_t live_dups, live_bad;
    struct nmc_check_report *rep;               /* check only */
    /* pipes: the RX side's positions of each TX ring object, read once per
     * scan, so that every pass sees the same owner for each position */
    uint64_t span_known[(NMC_DEF_RING_NUM + 63) / 64];
    uint32_t span[NMC_DEF_RING_NUM][2];
};

static bool holder_dead(const struct scan *sc, uint32_t h)
{
    return sc->dead && bit_get(sc->dead, h);
}

/* Ring objects bound by a holder that is not dead. */
static void find_live_rings(struct scan *sc)
{
    const struct nmc_holder *hs = nmc_holders(sc->r);
    const struct nmc_port_rec *ports = nmc_ports(sc->r);

    memset(sc->live_rings, 0, sizeof(sc->live_rings));
    for (uint32_t h = 0; h < NMC_MAX_HOLDERS; h++) {
        const struct nmc_holder *hd = &hs[h];
        if (hd->state != NMC_LIVE || holder_dead(sc, h) || hd->port >= NMC_MAX_PORTS || hd->end > 1)
            continue;
        for (uint32_t d = 0; d < 2; d++) {
            for (uint32_t k = hd->first[d]; k < hd->last[d] && k < ports[hd->port].nrings[hd->end][d]; k++) {
                uint32_t obj = nmc_rec_obj(&ports[hd->port], hd->end, d, k);
                if (obj < sc->r->g.ring_num && obj < NMC_DEF_RING_NUM)
                    bit_set(sc->live_rings, obj);
            }
        }
    }
}

/* Ring k of end e, direction d of record rec, if it exists. */
static struct netmap_ring *rec_ring(struct scan *sc, const struct nmc_port_rec *rec, uint32_t e,
                                    uint32_t d, uint32_t k, uint32_t *obj)
{
    uint32_t first = rec->first_obj[e][d], n = rec->nrings[e][d];

    if (k >= n || first >= sc->r->g.ring_num || n > sc->r->g.ring_num - first ||
        rec->nslots[e][d] > NMC_MAXSLOTS)
        return NULL;
    *obj = first + k;
    return nmc_ring_obj(sc->mem, &sc->r->g, *obj);
}

static void visit_slot(struct scan *sc, uint32_t port, uint32_t e, uint32_t d, uint32_t k,
                       uint32_t obj, struct netmap_ring *ring, uint32_t j, place_fn fn)
{
    struct place pl = {
        .kind = NMC_PLACE_SLOT, .port = port, .end = e, .dir = d, .ring = k, .slot = j,
        .s = &ring->slot[j], .live = obj < NMC_DEF_RING_NUM && bit_get(sc->live_rings, obj),
    };

    fn(sc, &pl, nmc_user_u32(&ring->slot[j].buf_idx));
}

/* Where ring object obj is in record rec (end, direction, index). */
static bool rec_coords(const struct nmc_port_rec *rec, uint32_t obj, uint32_t *e, uint32_t *d, uint32_t *k)
{
    for (*e = 0; *e < 2; (*e)++)
        for (*d = 0; *d < 2; (*d)++)
            if (obj >= rec->first_obj[*e][*d] && obj - rec->first_obj[*e][*d] < rec->nrings[*e][*d]) {
                *k = obj - rec->first_obj[*e][*d];
                return true;
            }
    return false;
}

/* The RX ring crossed with TX ring k of end e (its kring's peer), if the
 * kind crosses rings: its coordinates, and its span read once per walk. */
static struct netmap_ring *crossed_rx(struct scan *sc, const struct nmc_transport_ops *ops,
                                      const struct nmc_port_rec *rec, uint32_t tobj, uint32_t n,
                                      uint32_t *re, uint32_t *rk, uint32_t *robj)
{
    uint32_t peer = nmc_krings(sc->r->ctl, &sc->r->g)[tobj].peer, rd;
    struct netmap_ring *rx;

    if (!ops->rx_span || peer == tobj || tobj >= NMC_DEF_RING_NUM ||
        !rec_coords(rec, peer, re, &rd, rk) || rd != 1 || rec->nslots[*re][1] != n ||
        !(rx = rec_ring(sc, rec, *re, 1, *rk, robj)))
        return NULL;
    if (!bit_get(sc->span_known, tobj)) {
        ops->rx_span(sc->r->ctl, &sc->r->g, tobj, *robj, n, &sc->span[tobj][0], &sc->span[tobj][1]);
        bit_set(sc->span_known, tobj);
    }
    return rx;
}

/* TX ring k of end e, with the RX ring crossed with it if any: each slot
 * position on its owning side. */
static void visit_tx(struct scan *sc, const struct nmc_transport_ops *ops, uint32_t port,
                     const struct nmc_port_rec *rec, uint32_t e, uint32_t k, place_fn fn)
{
    uint32_t tobj = 0, robj = 0, re = 0, rk = 0, n = rec->nslots[e][0], from = 0, to = 0;
    struct netmap_ring *tx = rec_ring(sc, rec, e, 0, k, &tobj), *rx;

    if (!tx)
        return;
    if ((rx = crossed_rx(sc, ops, rec, tobj, n, &re, &rk, &robj)) != NULL) {
        from = sc->span[tobj][0];
        to = sc->span[tobj][1];
    }
    for (uint32_t j = 0; j < n; j++) {
        if (rx && nmc_dist(from, j, n) < nmc_dist(from, to, n))
            visit_slot(sc, port, re, 1, rk, robj, rx, j, fn);
        else
            visit_slot(sc, port, e, 0, k, tobj, tx, j, fn);
    }
}

/* Is RX ring obj crossed with a TX ring (and so visited with it)? */
static bool is_crossed_rx(struct scan *sc, const struct nmc_transport_ops *ops,
                          const struct nmc_port_rec *rec, uint32_t obj)
{
    uint32_t peer = nmc_krings(sc->r->ctl, &sc->r->g)[obj].peer, e, d, k;

    return ops->rx_span && peer != obj && rec_coords(rec, peer, &e, &d, &k) && d == 0;
}

static void visit_port(struct scan *sc, uint32_t port, place_fn fn)
{
    const struct nmc_port_rec *rec = &nmc_ports(sc->r)[port];
    const struct nmc_transport_ops *ops = nmc_transport_of(rec->kind);

    if (!ops || ops->shared_bufs) {     /* slots may name buffers a kernel queue holds */
        sc->opaque = true;
        return;
    }
    for (uint32_t e = 0; e < 2; e++) {
        for (uint32_t k = 0; k < rec->nrings[e][0]; k++)
            visit_tx(sc, ops, port, rec, e, k, fn);
        for (uint32_t k = 0; k < rec->nrings[e][1]; k++) {
            uint32_t obj;
            struct netmap_ring *ring = rec_ring(sc, rec, e, 1, k, &obj);
            if (!ring || is_crossed_rx(sc, ops, rec, obj))
                continue;
            for (uint32_t j = 0; j < rec->nslots[e][1]; j++)
                visit_slot(sc, port, e, 1, k, obj, ring, j, fn);
        }
    }
}

static void visit_rings(struct scan *sc, place_fn fn)
{
    const struct nmc_port_rec *ports = nmc_ports(sc->r);

    for (uint32_t i = 0; i < NMC_MAX_PORTS; i++)
        if (ports[i].state == NMC_LIVE)
            visit_port(sc, i, fn);
}

/* Holder h's extra-buffer list, at most extra_bufs nodes (a longer or
 * looping list is corrupt).  Returns the nodes visited. */
static uint32_t visit_list(struct scan *sc, uint32_t h, place_fn fn)
{
    const struct nmc_holder *hd = &nmc_holders(sc->r)[h];
    const struct nmc_geom *g = &sc->r->g;
    struct netmap_if *nifp;
    struct place pl = { .kind = NMC_PLACE_EXTRA, .port = hd->port, .holder = h, .end = hd->end,
                        .live = !holder_dead(sc, h) };
    uint32_t pos = 0;

    if (hd->nifp_unit >= g->if_units || hd->nifp_units > g->if_units - hd->nifp_unit)
        return 0;
    nifp = (struct netmap_if *)(sc->mem + (uint64_t)hd->nifp_unit * NMC_IF_UNIT);
    pl.link = &nifp->ni_bufs_head;
    for (; pos < hd->extra_bufs; pos++) {
        uint32_t idx = nmc_user_u32(pl.link);
        if (idx == 0)
            break;
        pl.slot = pos;
        if (!fn(sc, &pl, idx) || idx >= g->buf_num)
            break;
        pl.link = (uint32_t *)nmc_buf(sc->mem, g, idx);
    }
    return pos;
}

/* Lists of holders that are live (want_dead false) or found dead. */
static void visit_lists(struct scan *sc, bool want_dead, place_fn fn)
{
    const struct nmc_holder *hs = nmc_holders(sc->r);

    for (uint32_t h = 0; h < NMC_MAX_HOLDERS; h++)
        if (hs[h].state == NMC_LIVE && holder_dead(sc, h) == want_dead)
            visit_list(sc, h, fn);
}

static bool valid_idx(const struct scan *sc, uint32_t idx)
{
    return idx >= 2 && idx < sc->r->g.buf_num;
}

/* ---------------------------------------------------------------- repair */

/* Sweep pass 0: a buffer in any place is allocated (an earlier crash may
 * have freed it under its owner); before anything is allocated. */
static bool claim(struct scan *sc, const struct place *pl, uint32_t idx)
{
    (void)pl;
    if (valid_idx(sc, idx) && !bit_get(bufmap(sc->r), idx)) {
        bit_set(bufmap(sc->r), idx);
        sc->r->hdr->buf_free--;
    }
    return true;
}

/* Places live holders may write: only looked at. */
static bool mark_live(struct scan *sc, const struct place *pl, uint32_t idx)
{
    if (!pl->live)
        return true;
    if (idx == 0 && pl->kind == NMC_PLACE_SLOT)
        return true;
    if (!valid_idx(sc, idx)) {
        sc->live_bad++;
        return false;
    }
    if (bit_get(sc->seen, idx))
        sc->live_dups++;
    bit_set(sc->seen, idx);
    return true;
}

/* A slot nobody can write holds a buffer owned elsewhere: a fresh one
 * (len 0, NS_BUF_CHANGED so that a pipe reader's release hands it back to
 * the writer's slot), or index 0 when the region has none left. */
static void replace_slot(struct scan *sc, struct netmap_slot *s)
{
    uint32_t fresh = 0;

    if (nmc_buf_alloc(sc->r, &fresh, 1) == 0)
        bit_set(sc->seen, fresh);
    else
        fresh = 0;
    s->buf_idx = fresh;
    s->len = 0;
    s->flags = (uint16_t)((s->flags & NS_MOREFRAG) | NS_BUF_CHANGED);
}

/* Places nobody can write any more (rings no live holder binds, lists of
 * dead holders): the buffer stays here unless a place marked before has
 * it.  A list is cut before such a node; the rest of it is in no place. */
static bool mark_quiet(struct scan *sc, const struct place *pl, uint32_t idx, uint32_t dir)
{
    if (pl->live || (pl->kind == NMC_PLACE_SLOT && pl->dir != dir))
        return true;
    if (!valid_idx(sc, idx))
        return false;
    if (!bit_get(sc->seen, idx)) {
        bit_set(sc->seen, idx);
        return true;
    }
    if (pl->kind == NMC_PLACE_SLOT) {
        replace_slot(sc, pl->s);
        return true;
    }
    *pl->link = 0;
    return false;
}

/* Received data first: of a buffer caught between an RX slot and a TX slot
 * (a swap cut in half), the RX slot keeps it, as if the swap never began. */
static bool mark_quiet_rx(struct scan *sc, const struct place *pl, uint32_t idx)
{
    return mark_quiet(sc, pl, idx, 1);
}

static bool mark_quiet_tx(struct scan *sc, const struct place *pl, uint32_t idx)
{
    return mark_quiet(sc, pl, idx, 0);
}

/* Can the scan have missed a buffer a live holder has?  Not if no live
 * holder keeps buffers off its rings (extra buffers) and the live places
 * held distinct valid indexes: a live holder's buffers are a fixed set
 * (none enter or leave it while the region lock is held), always one per
 * live place even while moved, so as many distinct indexes as live places
 * are all of them. */
static bool scan_saw_everything(const struct scan *sc)
{
    const struct nmc_holder *hs = nmc_holders(sc->r);

    if (sc->opaque || sc->live_dups || sc->live_bad)
        return false;
    for (uint32_t h = 0; h < NMC_MAX_HOLDERS; h++)
        if (hs[h].state == NMC_LIVE && !holder_dead(sc, h) && hs[h].extra_bufs)
            return false;
    return true;
}

static void recount_free(struct nmc_region *r)
{
    const uint64_t *m = bufmap(r);
    uint32_t used = 0, n = r->g.buf_num;

    for (uint32_t w = 0; w < n / 64; w++)
        used += (uint32_t)__builtin_popcountll(m[w]);
    for (uint32_t i = n / 64 * 64; i < n; i++)
        used += bit_get(m, i);
    r->hdr->buf_free = n - used;
}

/* Called by the reaper, before it releases the dead holders in `dead`. */
void nmc_buf_sweep(struct nmc_region *r, const uint64_t dead[NMC_MAX_HOLDERS / 64])
{
    struct scan sc = { .r = r, .mem = r->mem, .dead = dead };
    uint64_t *m = bufmap(r);

    sc.seen = calloc((r->g.buf_num + 63) / 64, sizeof(uint64_t));
    if (!sc.seen)
        return;                         /* repaired at a later reap */
    find_live_rings(&sc);
    bit_set(m, 0);
    bit_set(m, 1);
    visit_rings(&sc, claim);
    visit_lists(&sc, false, claim);
    visit_lists(&sc, true, claim);
    visit_rings(&sc, mark_live);
    visit_lists(&sc, false, mark_live);
    visit_rings(&sc, mark_quiet_rx);
    visit_rings(&sc, mark_quiet_tx);
    visit_lists(&sc, true, mark_quiet_rx);
    if (scan_saw_everything(&sc))
        for (uint32_t b = 2; b < r->g.buf_num; b++)
            if (bit_get(m, b) && !bit_get(sc.seen, b))
                nmc_buf_free(r, b);
    recount_free(r);
    free(sc.seen);
}

/* A record's rings are going away: free the buffer of each owning slot
 * (never a pipe's stale mirror, whose buffer may have moved on). */
static bool free_owned(struct scan *sc, const struct place *pl, uint32_t idx)
{
    (void)pl;
    nmc_buf_free(sc->r, idx);
    return true;
}

void nmc_rec_free_bufs(struct nmc_region *r, uint32_t port)
{
    struct scan sc = { .r = r, .mem = r->mem };

    if (port < NMC_MAX_PORTS)
        visit_port(&sc, port, free_owned);
}

/* ----------------------------------------------------------------- check */

static void describe(const struct scan *sc, const struct place *pl, struct nmc_buf_place *out)
{
    const struct nmc_port_rec *rec = pl->port < NMC_MAX_PORTS ? &nmc_ports(sc->r)[pl->port] : NULL;

    memset(out, 0, sizeof(*out));
    out->kind = pl->kind;
    out->port = pl->port;
    out->holder = pl->holder;
    out->end = pl->end;
    out->dir = pl->dir;
    out->ring = pl->ring;
    out->slot = pl->slot;
    if (rec && rec->nends == 2 && rec->pipe_id[0])     /* a pipe end */
        snprintf(out->name, sizeof(out->name), "%.63s%c%.63s", rec->parent, pl->end ? '}' : '{',
                 rec->pipe_id);
    else if (rec)
        snprintf(out->name, sizeof(out->name), "%.63s", rec->parent);
}

static void list_violation(struct scan *sc, uint32_t what, uint32_t idx, const struct place *a,
                           const struct place *b)
{
    struct nmc_check_report *rep = sc->rep;
    struct nmc_check_violation *v;

    if (rep->listed >= NMC_CHECK_LISTED)
        return;
    v = &rep->v[rep->listed++];
    v->what = what;
    v->buf_idx = idx;
    if (a)
        describe(sc, a, &v->a);
    if (b)
        describe(sc, b, &v->b);
}

static void violation(struct scan *sc, uint32_t what, uint32_t idx, const struct place *a,
                      const struct place *b)
{
    sc->rep->violations++;
    list_violation(sc, what, idx, a, b);
}

static bool check_place(struct scan *sc, const struct place *pl, uint32_t idx)
{
    if (idx == 0 && pl->kind == NMC_PLACE_SLOT) {
        sc->rep->empty_slots++;
        return true;
    }
    if (!valid_idx(sc, idx)) {
        violation(sc, NMC_VIOL_BAD_INDEX, idx, pl, NULL);
        return false;
    }
    if (!bit_get(bufmap(sc->r), idx))
        violation(sc, NMC_VIOL_FREE_INUSE, idx, pl, NULL);
    if (bit_get(sc->seen, idx)) {
        violation(sc, NMC_VIOL_DUPLICATE, idx, NULL, pl);     /* a: found by name_first */
        return true;
    }
    bit_set(sc->seen, idx);
    if (pl->kind == NMC_PLACE_SLOT)
        sc->rep->in_rings++;
    else
        sc->rep->in_extra++;
    return true;
}

/* Second walk, in the same order: the first place of each duplicate. */
static bool name_first(struct scan *sc, const struct place *pl, uint32_t idx)
{
    struct nmc_check_report *rep = sc->rep;

    for (uint32_t i = 0; i < rep->listed; i++) {
        struct nmc_check_violation *v = &rep->v[i];
        if (v->what == NMC_VIOL_DUPLICATE && v->buf_idx == idx && v->a.kind == NMC_PLACE_NONE)
            describe(sc, pl, &v->a);
    }
    return valid_idx(sc, idx);
}

/* Every ring, then every holder's list; returns what holders may keep off
 * their lists (extra buffers granted minus those listed). */
static uint32_t walk_all(struct scan *sc, place_fn fn)
{
    const struct nmc_holder *hs = nmc_holders(sc->r);
    uint32_t keep = 0;

    visit_rings(sc, fn);
    for (uint32_t h = 0; h < NMC_MAX_HOLDERS; h++) {
        if (hs[h].state != NMC_LIVE)
            continue;
        uint32_t n = visit_list(sc, h, fn);
        keep += hs[h].extra_bufs > n ? hs[h].extra_bufs - n : 0;
    }
    return keep;
}

static void count_holders(struct scan *sc)
{
    const struct nmc_holder *hs = nmc_holders(sc->r);
    const struct nmc_port_rec *ports = nmc_ports(sc->r);

    for (uint32_t h = 0; h < NMC_MAX_HOLDERS; h++) {
        if (hs[h].state != NMC_LIVE)
            continue;
        sc->rep->holders++;
        sc->rep->dead_holders += !nmc_holder_alive(sc->r->fd, h);
    }
    for (uint32_t i = 0; i < NMC_MAX_PORTS; i++)
        sc->rep->ports += ports[i].state == NMC_LIVE;
}

/* The bitmap against the places: reserved bits, the free counter, and the
 * buffers in no place. */
static void check_bitmap(struct scan *sc)
{
    struct nmc_check_report *rep = sc->rep;
    const uint64_t *m = bufmap(sc->r);
    uint32_t lost_listed = 0;

    for (uint32_t b = 0; b < 2; b++)
        if (!bit_get(m, b))
            violation(sc, NMC_VIOL_RESERVED, b, NULL, NULL);
    for (uint32_t b = 2; b < sc->r->g.buf_num; b++) {
        if (!bit_get(m, b))
            rep->free_bufs++;
        else if (!bit_get(sc->seen, b))
            rep->unplaced++;
    }
    if (sc->r->hdr->buf_free != rep->free_bufs)
        violation(sc, NMC_VIOL_FREE_COUNT, sc->r->hdr->buf_free, NULL, NULL);
    rep->nic_opaque = sc->opaque;
    if (sc->opaque || rep->unplaced <= rep->private_max)
        return;
    rep->violations += rep->unplaced - rep->private_max;
    for (uint32_t b = 2; b < sc->r->g.buf_num && lost_listed < NMC_CHECK_LISTED; b++)
        if (bit_get(m, b) && !bit_get(sc->seen, b)) {
            list_violation(sc, NMC_VIOL_LOST, b, NULL, NULL);
            lost_listed++;
        }
}

static int check_region(struct nmc_region *r, struct nmc_check_report *rep)
{
    struct scan sc = { .r = r, .mem = r->mem, .rep = rep };
    bool dups;

    sc.seen = calloc((r->g.buf_num + 63) / 64, sizeof(uint64_t));
    if (!sc.seen)
        return -ENOMEM;
    rep->mem_id = r->mem_id;
    rep->buf_num = r->g.buf_num;
    rep->buf_size = r->g.buf_size;
    count_holders(&sc);
    rep->private_max = walk_all(&sc, check_place);
    dups = false;
    for (uint32_t i = 0; i < rep->listed; i++)
        dups |= rep->v[i].what == NMC_VIOL_DUPLICATE;
    if (dups) {
        struct scan again = sc;
        again.seen = NULL;
        walk_all(&again, name_first);
    }
    check_bitmap(&sc);
    free(sc.seen);
    return 0;
}

int nmc_region_check(const char *rundir, uint16_t mem_id, struct nmc_check_report *out)
{
    struct nmc_region r;
    int err;

    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if ((err = nmc_region_inspect(rundir, mem_id, &r)) < 0)
        return err;
    err = check_region(&r, out);
    nmc_region_detach(&r);
    return err;
}
