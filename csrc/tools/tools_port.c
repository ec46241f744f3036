/*
 * tools_port.c -- load a tool's view of a port (tools_port.h).
 */
#include "tools_port.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int load_rings(struct tl_port *t, int dir, uint32_t first, uint32_t count,
                      struct tl_ring **out)
{
    struct tl_ring *rs = calloc(count + 1, sizeof(*rs));

    if (!rs)
        return -ENOMEM;
    for (uint32_t i = 0; i < count; i++)
        if (!(rs[i].ring = nmc_port_ring(t->port, dir, i, &rs[i].n))) {
            free(rs);
            return -EINVAL;
        } else {
            rs[i].id = first + i;
        }
    *out = rs;
    return 0;
}

int tl_port_load(struct tl_port *t, struct nmc_port *port)
{
    struct nmc_port_info info;
    int err;

    memset(t, 0, sizeof(*t));
    if (!port)
        return -EINVAL;
    if ((err = nmc_port_info(port, &info)) < 0)
        return err;
    t->port = port;
    t->nifp = nmc_port_nifp(port);
    t->bufs = (uint8_t *)nmc_port_mem(port) + info.buf_pool_ofs;
    t->buf_size = info.buf_size;
    t->buf_num = info.buf_num;
    t->extra_bufs = info.nr_extra_bufs;
    t->spin_us = info.spin_us;
    memcpy(t->region, info.region_path, sizeof(t->region));
    t->ntx = info.last_tx_ring - info.first_tx_ring;
    t->nrx = info.last_rx_ring - info.first_rx_ring;
    if ((err = load_rings(t, 0, info.first_tx_ring, t->ntx, &t->tx)) < 0 ||
        (err = load_rings(t, 1, info.first_rx_ring, t->nrx, &t->rx)) < 0) {
        tl_port_unload(t);
        return err;
    }
    return 0;
}

void tl_port_unload(struct tl_port *t)
{
    free(t->tx);
    free(t->rx);
    t->tx = t->rx = NULL;
    t->ntx = t->nrx = 0;
}
