/*
 * portrec.c -- port records: allocation of their rings (objects, krings,
 * buffers) in a region, and their release.  Control path only.
 */
#include "nmc_transport.h"

#include <errno.h>
#include <string.h>

uint32_t nmc_bound(uint32_t v, uint32_t dflt, uint32_t lo, uint32_t hi)
{
    if (v == 0)
        return dflt;
    return v < lo ? lo : v > hi ? hi : v;
}

static uint64_t *ring_map(struct nmc_region *r) { return (uint64_t *)(r->ctl + r->g.ring_map_ofs); }

struct nmc_port_rec *nmc_rec_alloc(struct nmc_region *r, uint32_t kind, const char *name)
{
    struct nmc_port_rec *ports = nmc_ports(r);

    for (uint32_t i = 0; i < NMC_MAX_PORTS; i++) {
        if (ports[i].state != NMC_FREE)
            continue;
        memset(&ports[i], 0, sizeof(ports[i]));
        ports[i].kind = kind;
        nmc_copy_name(ports[i].parent, NMC_NAMELEN, name);
        ports[i].gen = ++r->hdr->opens;
        return &ports[i];
    }
    return NULL;
}

/* Claim what rings [first, first + n) of `slots` slots use: their krings,
 * and of their ring objects the header and the slots. */
static int claim_rings(struct nmc_region *r, uint32_t first, uint32_t n, uint32_t slots)
{
    uint64_t used = sizeof(struct netmap_ring) + (uint64_t)slots * sizeof(struct netmap_slot);
    int err = nmc_claim_krings(r, first, n);

    for (uint32_t k = 0; k < n && err == 0; k++)
        err = nmc_region_claim(r, nmc_ring_ofs(&r->g, first + k), used);
    return err;
}

/* n rings of `slots` slots for end e, direction d; with_bufs gives every
 * slot a buffer of its own (len = buffer size, as netmap). */
int nmc_rec_add_rings(struct nmc_region *r, struct nmc_port_rec *rec, uint32_t e, uint32_t d,
                      uint32_t n, uint32_t slots, bool with_bufs)
{
    uint8_t *mem = r->mem;
    struct nmc_kring *kr = nmc_krings(r->ctl, &r->g);
    int64_t first = nmc_bits_alloc_run(ring_map(r), r->g.ring_num, n);
    uint32_t idx[NMC_MAXSLOTS];
    int err;

    if (first < 0)
        return (int)first;
    if ((err = claim_rings(r, (uint32_t)first, n, slots)) < 0) {
        nmc_bits_free_run(ring_map(r), r->g.ring_num, (uint32_t)first, n);
        return err;
    }
    rec->first_obj[e][d] = (uint32_t)first;
    rec->nrings[e][d] = n;
    rec->nslots[e][d] = slots;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t obj = (uint32_t)first + k;
        struct netmap_ring *ring = nmc_ring_obj(mem, &r->g, obj);
        nmc_ring_init(ring, &kr[obj], mem, &r->g, obj, slots, (uint16_t)k, (uint16_t)d);
        kr[obj].end = e;
        kr[obj].peer = obj;
        if (!with_bufs)
            continue;
        if ((err = nmc_buf_alloc(r, idx, slots)) < 0) {
            rec->nrings[e][d] = k;          /* free only what has buffers */
            return err;
        }
        for (uint32_t i = 0; i < slots; i++) {
            ring->slot[i].buf_idx = idx[i];
            ring->slot[i].len = (uint16_t)(r->g.buf_size > 65535 ? 65535 : r->g.buf_size);
        }
    }
    return 0;
}

/* Free the buffer of every slot that owns one (bufcheck.c: for a pipe, one
 * side of each slot position), the ring objects, and the record. */
void nmc_rec_free(struct nmc_region *r, struct nmc_port_rec *rec)
{
    /* the slots of some kinds name buffers that may belong to another port
     * by now: those kinds give back what they own at detach (a record of an
     * unknown kind: freed with the region) */
    const struct nmc_transport_ops *ops = nmc_transport_of(rec->kind);
    bool shared_bufs = !ops || ops->shared_bufs;

    if (!shared_bufs)
        nmc_rec_free_bufs(r, (uint32_t)(rec - nmc_ports(r)));
    for (uint32_t e = 0; e < 2; e++) {
        for (uint32_t d = 0; d < 2; d++) {
            uint32_t first = rec->first_obj[e][d], n = rec->nrings[e][d];
            if (n == 0 || first >= r->g.ring_num || n > r->g.ring_num - first)
                continue;
            nmc_bits_free_run(ring_map(r), r->g.ring_num, first, n);
        }
    }
    memset(rec, 0, sizeof(*rec));
}
