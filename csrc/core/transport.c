/*
 * transport.c -- the registry of port kinds: each transport registers its
 * ops when the engine is loaded; the core looks them up by the kind id a
 * port record carries (a record of an unknown kind has no ops).
 */
#include "nmc_transport.h"

#include <errno.h>

static const struct nmc_transport_ops *g_kinds[NMC_MAX_KINDS];

int nmc_transport_register(const struct nmc_transport_ops *ops)
{
    if (!ops || ops->kind == 0 || ops->kind >= NMC_MAX_KINDS || !ops->resolve ||
        !ops->txsync_one || !ops->rxsync_one)
        return -EINVAL;
    if (g_kinds[ops->kind] && g_kinds[ops->kind] != ops)
        return -EEXIST;
    g_kinds[ops->kind] = ops;
    return 0;
}

const struct nmc_transport_ops *nmc_transport_of(uint32_t kind)
{
    return kind < NMC_MAX_KINDS ? g_kinds[kind] : NULL;
}

const struct nmc_transport_ops *nmc_transport_monitors(void)
{
    for (uint32_t k = 1; k < NMC_MAX_KINDS; k++)
        if (g_kinds[k] && g_kinds[k]->monitors)
            return g_kinds[k];
    return NULL;
}
