/*
 * nmport.c -- libnetmap's port descriptors: new, register (open
 * /dev/netmap, NIOCCTRL REGISTER), mmap (one mapping per mem_id in a
 * context, reference counted), the undo of each step, open and close,
 * clone, inject.  Parsing is in nmport_parse.c, extmem and offsets in
 * nmport_ext.c.
 */
#include "lnm.h"

#include <nmcompat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

void lnm_push_cleanup(struct nmport_d *d, struct nmport_cleanup_d *c)
{
    c->next = d->clist;
    d->clist = c;
}

void lnm_cleanup_to(struct nmport_d *d, struct nmport_cleanup_d *mark)
{
    while (d->clist != NULL && d->clist != mark) {
        struct nmport_cleanup_d *top = d->clist;
        d->clist = top->next;
        top->cleanup(top, d);
        nmctx_free(d->ctx, top);
    }
}

struct nmport_d *lnm_new_in(struct nmctx *ctx)
{
    struct nmport_d *d = nmctx_malloc(ctx, sizeof(*d));

    if (d == NULL) {
        nmctx_ferror(ctx, "cannot allocate nmport descriptor");
        errno = ENOMEM;
        return NULL;
    }
    memset(d, 0, sizeof(*d));
    nmreq_header_init(&d->hdr, NETMAP_REQ_REGISTER, &d->reg);
    d->ctx = ctx;
    d->fd = -1;
    return d;
}

struct nmport_d *nmport_new(void)
{
    return lnm_new_in(nmctx_get());
}

void nmport_delete(struct nmport_d *d)
{
    if (d != NULL)
        nmctx_free(d->ctx, d);
}

/* Why an extmem option was refused with EINVAL, when the engine can say:
 * the memory given is smaller than the pools it asks for need. */
static void extmem_size_reason(const struct nmreq_opt_extmem *x, char *out, size_t len)
{
    const struct nmreq_pools_info *pi = &x->nro_info;
    struct nmc_extmem want = {
        .if_num = pi->nr_if_pool_objtotal, .if_size = pi->nr_if_pool_objsize,
        .ring_num = pi->nr_ring_pool_objtotal, .ring_size = pi->nr_ring_pool_objsize,
        .buf_num = pi->nr_buf_pool_objtotal, .buf_size = pi->nr_buf_pool_objsize };
    int64_t need = nmc_extmem_min_size(&want);

    out[0] = '\0';
    if (x->nro_opt.nro_status == EINVAL && need > 0 && pi->nr_memsize < (uint64_t)need)
        snprintf(out, len, " (the memory given, %" PRIu64 " bytes, is smaller than the %" PRId64
                 " bytes (%.1f MiB) the pools asked need; fewer rings, fewer or smaller buffers "
                 "shrink them)", pi->nr_memsize, need, (double)need / (1 << 20));
}

/* A failed REGISTER: the options' statuses name the culprit, if any. */
static void register_failed(struct nmport_d *d, int err)
{
    struct nmreq_option *o;
    char why[256];
    int named = 0;

    nmreq_foreach_option(&d->hdr, o) {
        if (o->nro_status != 0) {
            why[0] = '\0';
            if (o->nro_reqtype == NETMAP_REQ_OPT_EXTMEM)
                extmem_size_reason((const struct nmreq_opt_extmem *)o, why, sizeof(why));
            nmctx_ferror(d->ctx, "%s: option %s: %s%s", d->hdr.nr_name,
                         nmreq_option_name(o->nro_reqtype), strerror((int)o->nro_status), why);
            named++;
        }
    }
    if (!named)
        nmctx_ferror(d->ctx, "%s: %s", d->hdr.nr_name, strerror(err));
}

int nmport_register(struct nmport_d *d)
{
    int err;

    if (d->register_done) {
        nmctx_ferror(d->ctx, "%s: already registered", d->hdr.nr_name);
        return lnm_fail(EINVAL);
    }
    d->fd = open("/dev/netmap", O_RDWR);      /* inherited across exec, as netmap's */
    if (d->fd < 0) {
        err = errno;
        nmctx_ferror(d->ctx, "/dev/netmap: %s", strerror(err));
        return lnm_fail(err);
    }
    if (ioctl(d->fd, NIOCCTRL, &d->hdr) < 0) {
        err = errno;
        register_failed(d, err);
        nmport_undo_register(d);
        return lnm_fail(err);
    }
    d->register_done = 1;
    return 0;
}

void nmport_undo_register(struct nmport_d *d)
{
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
    d->register_done = 0;
}

/* The context's region for d's mem_id, mapped (or taken from extmem) if
 * no port of the context uses it yet; called with the context locked. */
static struct nmem_d *region_of(struct nmport_d *d)
{
    struct nmem_d *m;

    for (m = d->ctx->mem_descs; m != NULL; m = m->next)
        if (m->mem_id == d->reg.nr_mem_id)
            return m;
    m = nmctx_malloc(d->ctx, sizeof(*m));
    if (m == NULL) {
        nmctx_ferror(d->ctx, "cannot allocate memory descriptor");
        errno = ENOMEM;
        return NULL;
    }
    memset(m, 0, sizeof(*m));
    if (d->extmem != NULL) {
        m->mem = (void *)(uintptr_t)d->extmem->nro_usrptr;
        m->size = d->extmem->nro_info.nr_memsize;
        m->is_extmem = 1;
    } else {
        m->mem = mmap(NULL, d->reg.nr_memsize, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd, 0);
        if (m->mem == MAP_FAILED) {
            int err = errno;
            nmctx_ferror(d->ctx, "mmap: %s", strerror(err));
            nmctx_free(d->ctx, m);
            errno = err;
            return NULL;
        }
        m->size = d->reg.nr_memsize;
    }
    m->mem_id = d->reg.nr_mem_id;
    m->next = d->ctx->mem_descs;
    if (m->next != NULL)
        m->next->prev = m;
    d->ctx->mem_descs = m;
    return m;
}

/* [first, last] of the rings whose ring_ofs is set among n from `base`;
 * none: first = n, last = n - 1. */
static void bound_range(const struct netmap_if *nifp, unsigned base, unsigned n,
                        uint16_t *first, uint16_t *last)
{
    unsigned i = 0;

    while (i < n && nifp->ring_ofs[base + i] == 0)
        i++;
    *first = (uint16_t)i;
    while (i < n && nifp->ring_ofs[base + i] != 0)
        i++;
    *last = (uint16_t)(i - 1);
}

int nmport_mmap(struct nmport_d *d)
{
    struct nmem_d *m;
    unsigned ntx, nrx;

    if (d->mmap_done) {
        nmctx_ferror(d->ctx, "%s: already mapped", d->hdr.nr_name);
        return lnm_fail(EINVAL);
    }
    if (!d->register_done) {
        nmctx_ferror(d->ctx, "cannot map unregistered port");
        return lnm_fail(EINVAL);
    }
    nmctx_lock(d->ctx);
    m = region_of(d);
    if (m != NULL)
        m->refcount++;
    nmctx_unlock(d->ctx);
    if (m == NULL)
        return -1;
    d->mem = m;
    d->nifp = NETMAP_IF(m->mem, d->reg.nr_offset);
    ntx = d->reg.nr_tx_rings + d->nifp->ni_host_tx_rings;
    nrx = d->reg.nr_rx_rings + d->nifp->ni_host_rx_rings;
    bound_range(d->nifp, 0, ntx, &d->first_tx_ring, &d->last_tx_ring);
    bound_range(d->nifp, ntx, nrx, &d->first_rx_ring, &d->last_rx_ring);
    d->cur_tx_ring = d->first_tx_ring;
    d->cur_rx_ring = d->first_rx_ring;
    d->mmap_done = 1;
    return 0;
}

void nmport_undo_mmap(struct nmport_d *d)
{
    struct nmem_d *m = d->mem;

    if (m == NULL)
        return;
    nmctx_lock(d->ctx);
    if (--m->refcount <= 0) {
        if (!m->is_extmem)
            munmap(m->mem, m->size);
        if (m->next != NULL)
            m->next->prev = m->prev;
        if (m->prev != NULL)
            m->prev->next = m->next;
        else
            d->ctx->mem_descs = m->next;
        nmctx_free(d->ctx, m);
    }
    nmctx_unlock(d->ctx);
    d->mmap_done = 0;
    d->mem = NULL;
    d->nifp = NULL;
    d->first_tx_ring = d->last_tx_ring = 0;
    d->first_rx_ring = d->last_rx_ring = 0;
    d->cur_tx_ring = d->cur_rx_ring = 0;
}

int nmport_open_desc(struct nmport_d *d)
{
    if (nmport_register(d) < 0)
        return -1;
    if (nmport_mmap(d) < 0) {
        int err = errno;
        nmport_undo_register(d);
        return lnm_fail(err);
    }
    return 0;
}

void nmport_undo_open_desc(struct nmport_d *d)
{
    nmport_undo_mmap(d);
    nmport_undo_register(d);
}

struct nmport_d *nmport_prepare(const char *portspec)
{
    struct nmport_d *d = nmport_new();

    if (d == NULL)
        return NULL;
    if (nmport_parse(d, portspec) < 0) {
        int err = errno;
        nmport_delete(d);
        errno = err;
        return NULL;
    }
    return d;
}

void nmport_undo_prepare(struct nmport_d *d)
{
    if (d == NULL)
        return;
    nmport_undo_parse(d);
    nmport_delete(d);
}

struct nmport_d *nmport_open(const char *portspec)
{
    struct nmport_d *d = nmport_prepare(portspec);

    if (d == NULL)
        return NULL;
    if (nmport_open_desc(d) < 0) {
        int err = errno;
        nmport_undo_prepare(d);
        errno = err;
        return NULL;
    }
    return d;
}

void nmport_close(struct nmport_d *d)
{
    if (d == NULL)
        return;
    nmport_undo_open_desc(d);
    nmport_undo_prepare(d);
}

struct nmport_d *nmport_clone(struct nmport_d *d)
{
    struct nmport_d *c;

    if (d->extmem != NULL && !d->register_done) {
        nmctx_ferror(d->ctx, "cannot clone unregistered port that is using extmem");
        errno = EINVAL;
        return NULL;
    }
    c = lnm_new_in(d->ctx);
    if (c == NULL)
        return NULL;
    c->hdr = d->hdr;
    c->hdr.nr_body = (uintptr_t)&c->reg;
    c->hdr.nr_options = 0;
    c->reg = d->reg;
    return c;
}

/* Slots from ring->cur that a packet of `size` bytes needs, or 0 when the
 * ring has not that many before tail. */
static uint32_t slots_for(struct netmap_ring *ring, size_t size)
{
    uint32_t need = size == 0 ? 1 : (uint32_t)((size + ring->nr_buf_size - 1) / ring->nr_buf_size);
    uint32_t room = ring->tail >= ring->cur ? ring->tail - ring->cur
                                            : ring->num_slots - ring->cur + ring->tail;

    return need <= room ? need : 0;
}

static void put_chain(struct netmap_ring *ring, const char *buf, size_t size, uint32_t nslots)
{
    uint32_t i = ring->cur;

    for (uint32_t k = 0; k < nslots; k++) {
        struct netmap_slot *slot = &ring->slot[i];
        size_t len = k + 1 < nslots ? ring->nr_buf_size : size;
        nm_pkt_copy(buf, NETMAP_BUF(ring, slot->buf_idx), (int)len);
        slot->len = (uint16_t)len;
        slot->flags = k + 1 < nslots ? NS_MOREFRAG : 0;
        buf += len;
        size -= len;
        i = nm_ring_next(ring, i);
    }
    ring->head = ring->cur = i;
}

int nmport_inject(struct nmport_d *d, const void *buf, size_t size)
{
    unsigned n, ri;

    if (!d->mmap_done || d->first_tx_ring > d->last_tx_ring)
        return 0;
    n = (unsigned)d->last_tx_ring - d->first_tx_ring + 1;
    ri = d->cur_tx_ring;
    for (unsigned c = 0; c < n; c++, ri++) {
        struct netmap_ring *ring;
        uint32_t nslots;

        if (ri > d->last_tx_ring || ri < d->first_tx_ring)
            ri = d->first_tx_ring;
        ring = NETMAP_TXRING(d->nifp, ri);
        nslots = slots_for(ring, size);
        if (nslots == 0)
            continue;
        put_chain(ring, buf, size, nslots);
        d->cur_tx_ring = (uint16_t)ri;
        return (int)size;
    }
    return 0;
}
