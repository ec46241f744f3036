/*
 * vale_reap.c -- reclaiming the ports of a switch that nobody holds.
 *
 * Every holder of a switch port keeps a read lock on the port's liveness
 * byte in the switch file, so a port nobody holds is found with one fcntl;
 * only then is its region locked and reaped.  An open looks at a few
 * entries (NMC_SW_REAP_BUDGET, round robin from where the previous open
 * stopped) and asks few bytes (nmc_sw_reap), so its cost does not grow
 * with the ports on the switch; a listing and a full switch check them all.
 *
 * The reaper holds no switch lock while it reaps (reaping a region takes
 * the port off its switch under the switch lock: region, then switch), and
 * it only tries region locks: a region locked by someone else is being
 * opened, closed or reaped by them.
 */
#include "nmc_vale.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>

/* Take entry q off the switch if it is still the one of generation gen. */
void nmc_sw_remove_stale(const char *rundir, const char *sw, uint32_t q, uint32_t gen)
{
    struct nmc_swmap m;
    struct nmc_sw_port *sp;

    if (nmc_sw_attach(rundir, sw, NMC_SW_LOCK, &m) < 0)
        return;
    sp = &m.sw->ports[q % NMC_SW_MAXPORTS];
    if (sp->state == NMC_LIVE && sp->gen == gen)
        nmc_sw_remove(m.sw, q % NMC_SW_MAXPORTS);
    nmc_sw_gc(rundir, &m);
    nmc_sw_detach(&m);
}

/* A consistent copy of live entry q, or false. */
static bool entry_copy(const struct nmc_switch *sw, uint32_t q, struct nmc_sw_port *out)
{
    const struct nmc_sw_port *sp = &sw->ports[q];
    uint32_t gen = __atomic_load_n(&sp->gen, __ATOMIC_ACQUIRE);

    if (__atomic_load_n(&sp->state, __ATOMIC_ACQUIRE) != NMC_LIVE)
        return false;
    *out = *sp;
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return __atomic_load_n(&sp->gen, __ATOMIC_RELAXED) == gen && out->gen == gen;
}

/* Entry q (copy sp) that nobody holds: reap its region, or drop the entry
 * if its region is gone or has no such port. */
static void reap_entry(const char *rundir, struct nmc_swmap *m, uint32_t q,
                       const struct nmc_sw_port *sp)
{
    struct nmc_region r = { .fd = -1 };
    int err = nmc_region_attach(rundir, sp->mem_id, &r, NMC_LOCK_TRY);

    if (err == -EAGAIN || err == -EPROTO)
        return;                         /* busy, or another build's region: not ours to judge */
    r.ask_all = true;                   /* the switch says nobody holds the port */
    if (err < 0 || !nmc_sw_entry_ok(&r, sp, q))
        nmc_sw_remove_stale(rundir, m->name, q, sp->gen);
    else
        nmc_region_reap(rundir, &r);    /* frees the port if all its holders died */
    if (err == 0)
        nmc_region_detach(&r);
}

/* Look at up to `budget` live entries of switch m (an unlocked mapping).
 * Asking a liveness byte walks the switch file's lock list, one lock per
 * holder of every port, so it is asked of an entry whose adder's pid is
 * gone, and of NMC_SW_ASK_BUDGET others (an adder alive that no longer
 * holds the port): not budget walks of an O(ports) list per open.  A full
 * check (budget NMC_SW_MAXPORTS) asks every entry. */
void nmc_sw_reap(const char *rundir, struct nmc_swmap *m, uint32_t budget)
{
    uint32_t q = m->sw->reap_next % NMC_SW_MAXPORTS, looked = 0, asked = 0;
    struct nmc_pid_memo memo = { .n = 0 };
    bool all = budget >= NMC_SW_MAXPORTS;

    for (uint32_t n = 0; n < NMC_SW_MAXPORTS && looked < budget; n++) {
        struct nmc_sw_port sp;
        if (entry_copy(m->sw, q, &sp)) {
            bool must_ask = all || nmc_pid_gone(&memo, sp.pid);
            if (!must_ask && asked == NMC_SW_ASK_BUDGET)
                break;                  /* the next open starts at this one */
            asked += !must_ask;
            looked++;
            if (!nmc_sw_port_held(m, q))
                reap_entry(rundir, m, q, &sp);
        }
        q = (q + 1) % NMC_SW_MAXPORTS;
    }
    m->sw->reap_next = q;
}

/* Reap switch `sw` if it exists. */
void nmc_sw_reap_name(const char *rundir, const char *sw, uint32_t budget)
{
    struct nmc_swmap m;

    if (nmc_sw_attach(rundir, sw, 0, &m) < 0)
        return;
    nmc_sw_reap(rundir, &m, budget);
    nmc_sw_detach(&m);
}

/* Every switch of the runtime directory: entries nobody holds reaped, a
 * switch left with no port removed (the ops' rundir_gc).  Returns the
 * switch files removed. */
uint32_t nmc_vale_rundir_gc(const char *rundir)
{
    struct dirent *de;
    uint32_t removed = 0;
    DIR *d = opendir(rundir);

    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL) {
        struct nmc_swmap m;
        const char *sw = de->d_name + 5;
        if (strncmp(de->d_name, "vale.", 5) != 0 || !nmc_sw_name_ok(sw))
            continue;
        nmc_sw_reap_name(rundir, sw, NMC_SW_MAXPORTS);
        if (nmc_sw_attach(rundir, sw, NMC_SW_LOCK, &m) < 0)
            continue;
        removed += nmc_sw_active(m.sw) == 0;
        nmc_sw_gc(rundir, &m);
        nmc_sw_detach(&m);
    }
    closedir(d);
    return removed;
}
