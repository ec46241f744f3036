/*
 * ring_own.c -- who is inside a ring.  Every write of a kring's owner
 * state (busy) is here, and every one is a compare-and-swap: entering a
 * ring, leaving it, taking it over from an owner that died inside, and
 * clearing it for the reaper.
 */
#include "nmc_transport.h"

/* The ring is owned by another holder: if that holder died inside its
 * sync, take the ring over and let its kind repair it, else skip it. */
static bool take_from_dead(struct nmc_port *p, struct nmc_lring *lr, int dir)
{
    struct nmc_kring *kr = lr->kr;
    uint32_t owner = __atomic_load_n(&kr->busy, __ATOMIC_ACQUIRE);

    if (owner == 0 || owner - 1 >= NMC_MAX_HOLDERS || nmc_holder_alive(p->ctl_fd, owner - 1))
        return false;
    if (!__atomic_compare_exchange_n(&kr->busy, &owner, p->hidx + 1, false,
                                     __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return false;
    if (p->ops->ring_repair)
        p->ops->ring_repair(p->ctl, p->mem, &p->g, lr->obj, (uint32_t)dir, NMC_REPAIR_DIED_INSIDE);
    return true;
}

bool nmc_ring_enter(struct nmc_port *p, struct nmc_lring *lr, int dir)
{
    uint32_t idle = 0;

    if (__atomic_compare_exchange_n(&lr->kr->busy, &idle, p->hidx + 1, false,
                                    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return true;
    return take_from_dead(p, lr, dir);
}

void nmc_ring_leave(struct nmc_port *p, struct nmc_lring *lr)
{
    uint32_t mine = p->hidx + 1;

    __atomic_compare_exchange_n(&lr->kr->busy, &mine, 0, false,
                                __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

/* The reaper: holder h is dead; a ring it left owned is free again. */
void nmc_ring_clear_dead(struct nmc_kring *kr, uint32_t h)
{
    uint32_t dead = h + 1;

    __atomic_compare_exchange_n(&kr->busy, &dead, 0, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}
