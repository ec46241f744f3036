/*
 * tools_port.h -- a tool's view of an open port, built from the public
 * API only (nmcompat.h): its bound rings with the engine's slot counts,
 * and its buffers, plus the ring arithmetic every loop needs.
 */
#ifndef NMC_TOOLS_PORT_H
#define NMC_TOOLS_PORT_H

#include "nmcompat.h"
#include "nmcompat_tools.h"

#include <stdbool.h>
#include <stdint.h>
#include <net/netmap_user.h>

/* One bound ring: n is the engine's slot count, never the ring's field. */
struct tl_ring {
    struct netmap_ring *ring;
    uint32_t n;
    uint32_t id;                    /* ring index within its direction */
};

struct tl_port {
    struct nmc_port *port;
    struct netmap_if *nifp;
    uint8_t *bufs;                  /* buffer 0 */
    uint32_t buf_size, buf_num, extra_bufs;
    int spin_us;
    char region[256];               /* the region file: same file, same buffers */
    uint32_t ntx, nrx;
    struct tl_ring *tx, *rx;
};

int tl_port_load(struct tl_port *t, struct nmc_port *port);
void tl_port_unload(struct tl_port *t);

static inline bool tl_buf_ok(const struct tl_port *t, uint32_t idx)
{
    return idx >= 2 && idx < t->buf_num;
}

/* Buffer idx; the caller checked it with tl_buf_ok(). */
static inline uint8_t *tl_buf(const struct tl_port *t, uint32_t idx)
{
    return t->bufs + (uint64_t)idx * t->buf_size;
}

static inline uint32_t tl_next(uint32_t i, uint32_t n) { return i + 1 == n ? 0 : i + 1; }
static inline uint32_t tl_prev(uint32_t i, uint32_t n) { return i == 0 ? n - 1 : i - 1; }
static inline uint32_t tl_dist(uint32_t from, uint32_t to, uint32_t n)
{
    return to >= from ? to - from : to + n - from;
}

#if defined(__x86_64__) || defined(__i386__)
#define tl_cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define tl_cpu_relax() __asm__ __volatile__("yield")
#else
#define tl_cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif

#endif /* NMC_TOOLS_PORT_H */
