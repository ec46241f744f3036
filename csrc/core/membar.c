/*
 * membar.c -- the asymmetric barrier: membarrier(2)'s global expedited
 * command, which makes every running thread of every registered process
 * pass a full memory barrier before it returns.
 *
 * A sync that owns its ring by bias (ring_own.c, DESIGN section 5.1)
 * enters and leaves with plain stores, and its wakeup reads the sleeper
 * words without a fence (section 8).  Each of those is the fast side of a
 * Dekker pair whose slow side pays instead: whoever revokes a bias, and
 * whoever arms a sleeper bit before its last look at the ring, calls
 * nmc_membar_global() between its store and its load.  That is sound only
 * against processes that registered, so a process takes the fast side only
 * once nmc_membar_ready() says it has.  Registration is asked once per
 * process, and again in a forked child (a new address space).
 */
#include "nmc_int.h"

#include <errno.h>

#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

/* 0: not asked in this process yet; 1: registered; -1: unavailable */
static int g_state;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static long membarrier(int cmd)
{
    return syscall(__NR_membarrier, cmd, 0, 0);
}

static void forget_state(void) { __atomic_store_n(&g_state, 0, __ATOMIC_RELAXED); }
static void watch_forks(void) { pthread_atfork(NULL, NULL, forget_state); }

static int __attribute__((noinline)) register_self(void)
{
    long cmds;
    int s = -1;

    pthread_once(&g_once, watch_forks);
    cmds = membarrier(MEMBARRIER_CMD_QUERY);
    if (cmds >= 0 && (cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED) &&
        membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0)
        s = 1;
    if (!__atomic_compare_exchange_n(&g_state, &(int){ 0 }, s, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        s = __atomic_load_n(&g_state, __ATOMIC_RELAXED);   /* lost meanwhile (nmc_membar_lost) */
    return s;
}

bool nmc_membar_ready(void)
{
    int s = __atomic_load_n(&g_state, __ATOMIC_RELAXED);

    return (s ? s : register_self()) > 0;
}

/* membarrier failed in this process although it registered (a seccomp
 * filter installed since): take the fast side no more. */
void nmc_membar_lost(void)
{
    __atomic_store_n(&g_state, -1, __ATOMIC_RELAXED);
}

int nmc_membar_global(void)
{
    nmc_fence();                        /* our own side of the pair, whatever follows */
    if (membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) < 0)
        return -errno;
    return 0;
}
