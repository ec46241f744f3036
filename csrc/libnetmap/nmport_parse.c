/*
 * nmport_parse.c -- nmport_parse(): one parse of the whole portspec by
 * nmc_portspec_parse, then the request filled from it: the name, the mode,
 * ring and flags, the mem_id ("@N", or the one of the port named by
 * @share), @conf's ring and slot counts, @extmem's file mapped and put in
 * the option chain with its pool sizes, @offset as NETMAP_REQ_OPT_OFFSETS.
 * An option switched off by nmport_disable_option() is refused.  A failed
 * parse leaves the descriptor as it was.
 */
#include "lnm_parse.h"

#include <nmcompat.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int set_mem_id(struct nmport_d *d, int32_t mem_id)
{
    if (d->reg.nr_mem_id && d->reg.nr_mem_id != mem_id) {
        nmctx_ferror(d->ctx, "cannot set mem_id to %" PRId32 ", already set to %" PRIu16, mem_id,
                     d->reg.nr_mem_id);
        return lnm_fail(EINVAL);
    }
    d->reg.nr_mem_id = (uint16_t)mem_id;
    return 0;
}

static void apply_conf(struct nmreq_register *reg, const struct nmc_portspec *s)
{
    if (s->conf_given & NMC_PORTSPEC_CONF_TX_RINGS)
        reg->nr_tx_rings = s->conf_tx_rings;
    if (s->conf_given & NMC_PORTSPEC_CONF_RX_RINGS)
        reg->nr_rx_rings = s->conf_rx_rings;
    if (s->conf_given & NMC_PORTSPEC_CONF_HOST_TX_RINGS)
        reg->nr_host_tx_rings = s->conf_host_tx_rings;
    if (s->conf_given & NMC_PORTSPEC_CONF_HOST_RX_RINGS)
        reg->nr_host_rx_rings = s->conf_host_rx_rings;
    if (s->conf_given & NMC_PORTSPEC_CONF_TX_SLOTS)
        reg->nr_tx_slots = s->conf_tx_slots;
    if (s->conf_given & NMC_PORTSPEC_CONF_RX_SLOTS)
        reg->nr_rx_slots = s->conf_rx_slots;
}

/* @share names a port some process has open (the new port joins its
 * region): ENXIO otherwise, with nmcompat.open()'s message, where the
 * PORT_INFO_GET below would make the port and a region of its own. */
static int share_held(struct nmport_d *d, const char *port)
{
    struct nmc_portspec spec;
    struct nmc_portspec_error perr;
    struct nmc_portname pn;

    if (nmc_portspec_parse(port, NMC_PORTSPEC_NMPORT, &spec, &perr) < 0 ||
        nmc_portname_split(spec.nr_name, &pn) < 0)
        return 0;                       /* nmreq_get_mem_id says what is wrong with it */
    if (nmc_name_mem_id(NULL, pn.parent) != -ENXIO)
        return 0;
    nmctx_ferror(d->ctx, "@share=%s: no open port holds the region of %s (open %s first)", port,
                 pn.parent, port);
    return lnm_fail(ENXIO);
}

static int apply_share(struct nmport_d *d, const char *port)
{
    const char *scan = port;
    int32_t mem_id;

    if (share_held(d, port) < 0)
        return -1;
    mem_id = nmreq_get_mem_id(&scan, d->ctx);

    if (mem_id < 0)
        return -1;
    if (*scan != '\0') {
        nmctx_ferror(d->ctx, "option 'share': unexpected '%s' after the port name", scan);
        return lnm_fail(EINVAL);
    }
    return set_mem_id(d, mem_id);
}

static int apply_extmem(struct nmport_d *d, const struct nmc_portspec *s)
{
    struct nmreq_pools_info *pi;
    uint32_t k = s->extmem_given_keys;

    if (nmport_extmem_from_file(d, s->extmem_file) < 0)
        return -1;
    pi = &d->extmem->nro_info;
    if (k & (1u << NMC_PORTSPEC_EXTMEM_IF_NUM))
        pi->nr_if_pool_objtotal = s->extmem_if_num;
    if (k & (1u << NMC_PORTSPEC_EXTMEM_IF_SIZE))
        pi->nr_if_pool_objsize = s->extmem_if_size;
    if (k & (1u << NMC_PORTSPEC_EXTMEM_RING_NUM))
        pi->nr_ring_pool_objtotal = s->extmem_ring_num;
    if (k & (1u << NMC_PORTSPEC_EXTMEM_RING_SIZE))
        pi->nr_ring_pool_objsize = s->extmem_ring_size;
    if (k & (1u << NMC_PORTSPEC_EXTMEM_BUF_NUM))
        pi->nr_buf_pool_objtotal = s->extmem_buf_num;
    if (k & (1u << NMC_PORTSPEC_EXTMEM_BUF_SIZE))
        pi->nr_buf_pool_objsize = s->extmem_buf_size;
    return 0;
}

/* The first option the text uses that the program switched off, or -1. */
static int disabled_option_used(const struct nmc_portspec *s)
{
    const bool used[LNM_OPT_COUNT] = {
        [LNM_OPT_SHARE] = s->share_given, [LNM_OPT_CONF] = s->conf_given != 0,
        [LNM_OPT_EXTMEM] = s->extmem_given, [LNM_OPT_OFFSET] = s->offset_given };

    for (int i = 0; i < LNM_OPT_COUNT; i++)
        if (used[i] && !lnm_option_enabled((enum lnm_option)i))
            return i;
    return -1;
}

static int apply(struct nmport_d *d, const struct nmc_portspec *s)
{
    int off = disabled_option_used(s);

    if (off >= 0) {
        nmctx_ferror(d->ctx, "option '%s' is not supported", lnm_option_label((enum lnm_option)off));
        return lnm_fail(EOPNOTSUPP);
    }
    memset(d->hdr.nr_name, 0, sizeof(d->hdr.nr_name));
    snprintf(d->hdr.nr_name, sizeof(d->hdr.nr_name), "%s", s->nr_name);
    d->reg.nr_mode = s->nr_mode;
    d->reg.nr_ringid = s->nr_ringid;
    d->reg.nr_flags = s->nr_flags;
    if (s->mem_id && set_mem_id(d, s->mem_id) < 0)
        return -1;
    if (s->share_given && apply_share(d, s->share) < 0)
        return -1;
    apply_conf(&d->reg, s);
    if (s->extmem_given && apply_extmem(d, s) < 0)
        return -1;
    if (s->offset_given && nmport_offset(d, s->offset_initial, s->offset_initial, s->offset_bits, 0) < 0)
        return -1;
    return 0;
}

int nmport_parse(struct nmport_d *d, const char *portspec)
{
    struct nmreq_header hdr = d->hdr;
    struct nmreq_register reg = d->reg;
    struct nmport_cleanup_d *mark = d->clist;
    struct lnm_parse *p;
    int err = 0;

    if (portspec == NULL) {
        nmctx_ferror(d->ctx, "missing portspec");
        return lnm_fail(EINVAL);
    }
    p = lnm_parse(d->ctx, "", portspec, strlen(portspec), lnm_option_enabled(LNM_OPT_OFFSET));
    if (p == NULL)
        return -1;
    if (p->rc < 0) {
        nmctx_ferror(d->ctx, "%s: %s", portspec, p->err.message);
        err = p->err.errnum ? p->err.errnum : EINVAL;
    } else if (apply(d, &p->spec) < 0) {
        err = errno;
    }
    lnm_parse_free(d->ctx, p);
    if (!err)
        return 0;
    lnm_cleanup_to(d, mark);
    d->hdr = hdr;
    d->reg = reg;
    return lnm_fail(err);
}

void nmport_undo_parse(struct nmport_d *d)
{
    lnm_cleanup_to(d, NULL);
    memset(&d->reg, 0, sizeof(d->reg));
    nmreq_header_init(&d->hdr, NETMAP_REQ_REGISTER, &d->reg);
}
