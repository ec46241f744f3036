/* Shared by the benchmark loops: the clock, the spin-wait of the bare
 * rings, and the atomics they publish their indexes with. */
#ifndef NMCOMPAT_BENCH_INT_H
#define NMCOMPAT_BENCH_INT_H

#include <stdbool.h>
#include <stdint.h>

struct nmc_port;

#define BENCH_PAGE      4096u
#define BENCH_CACHELINE 64
#define bench_aligned   __attribute__((aligned(BENCH_CACHELINE)))

#if defined(__x86_64__) || defined(__i386__)
#define bench_cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define bench_cpu_relax() __asm__ __volatile__("yield")
#else
#define bench_cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif
#define bench_load_acq(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define bench_store_rel(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* CLOCK_MONOTONIC in ns. */
uint64_t bench_now_ns(void);
/* Spin until *idx differs from seen (counting rounds in *spins); *err =
 * -ETIMEDOUT after a long stall.  Returns the new value. */
uint32_t bench_spin_wait(const uint32_t *idx, uint32_t seen, uint64_t *spins, int *err);

/* bench_vale.c: open VALE port SW:SUFFIX in rundir (rx: a receiver, which
 * polls without txsync), as the VALE loops do. */
/* TX slot j takes slot (j mod n)'s buffer (n 0: unchanged), NS_BUF_CHANGED,
 * saving each slot's own in orig[] (num_slots <= BENCH_MAXSLOTS); with
 * `back`, each slot gets its own again.  A sender that reuses n hot buffers,
 * as a DPDK sender's mempool cache hands out the same few mbufs. */
#define BENCH_MAXSLOTS 16384u
struct netmap_ring;
void bench_share_tx_bufs(struct netmap_ring *ring, uint32_t n, uint32_t *orig, bool back);
int bench_vale_open(const char *rundir, const char *sw, const char *suffix, bool rx,
                    struct nmc_port **p);

#endif /* NMCOMPAT_BENCH_INT_H */
