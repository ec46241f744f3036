/*
 * status.c -- what a region holds, for `nmcompat status`: its geometry,
 * its ports (name, kind, rings) and its holders (pid, alive or dead), read
 * under its region lock without changing anything.
 */
#include "nmc_transport.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void port_status(struct nmc_region *r, uint32_t i, struct nmc_port_status *out)
{
    const struct nmc_port_rec *rec = &nmc_ports(r)[i];
    const struct nmc_transport_ops *ops = nmc_transport_of(rec->kind);

    memset(out, 0, sizeof(*out));
    nmc_copy_name(out->name, sizeof(out->name), rec->parent);
    if (rec->nends == 2)
        nmc_copy_name(out->pipe_id, sizeof(out->pipe_id), rec->pipe_id);
    snprintf(out->kind, sizeof(out->kind), "%s", ops && ops->name ? ops->name : "?");
    nmc_copy_name(out->sw, sizeof(out->sw), rec->sw);      /* set by VALE ports only */
    out->index = i;
    out->persistent = rec->persistent;
    out->nends = rec->nends;
    out->tx_rings = rec->nrings[0][0];
    out->rx_rings = rec->nrings[0][1];
    out->tx_slots = rec->nslots[0][0];
    out->rx_slots = rec->nslots[0][1];
    if (ops && ops->status)
        ops->status(rec, out);
}

static void holder_status(struct nmc_region *r, uint32_t h, struct nmc_holder_status *out)
{
    const struct nmc_holder *hd = &nmc_holders(r)[h];

    memset(out, 0, sizeof(*out));
    out->index = h;
    out->port = hd->port;
    out->end = hd->end;
    out->pid = hd->pid;
    out->alive = nmc_holder_alive(r->fd, h);
    out->extra_bufs = hd->extra_bufs;
}

static void fill(struct nmc_region *r, struct nmc_region_status *out)
{
    struct nmc_port_rec *ports = nmc_ports(r);
    struct nmc_holder *hs = nmc_holders(r);

    out->mem_id = r->mem_id;
    out->buf_num = r->g.buf_num;
    out->buf_size = r->g.buf_size;
    out->buf_free = r->hdr->buf_free;
    out->memsize = r->g.memsize;
    out->ctl_size = r->g.ctl_size;
    out->opens = r->hdr->opens;
    out->spare = r->hdr->spare == 1;
    for (uint32_t i = 0; i < NMC_MAX_PORTS && i < NMC_STATUS_PORTS; i++)
        if (ports[i].state == NMC_LIVE)
            port_status(r, i, &out->port[out->nports++]);
    for (uint32_t h = 0; h < NMC_MAX_HOLDERS && h < NMC_STATUS_HOLDERS; h++) {
        struct nmc_holder_status *hst;
        if (hs[h].state != NMC_LIVE)
            continue;
        hst = &out->holder[out->nholders++];
        holder_status(r, h, hst);
        for (uint32_t k = 0; k < out->nports; k++)
            if (out->port[k].index == hst->port)
                out->port[k].holders += hst->alive;
    }
}

int nmc_region_status(const char *rundir, uint16_t mem_id, struct nmc_region_status *out)
{
    struct nmc_region r;
    int err;

    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if ((err = nmc_region_inspect(rundir, mem_id, &r)) < 0)
        return err;
    fill(&r, out);
    nmc_region_detach(&r);
    return 0;
}
