/*
 * nmc_xsk.h -- AF_XDP sockets under netmap NIC ports (xsk.c).
 *
 * System headers here may predate the kernel: the AF_XDP ABI pieces used
 * are defined locally, with the values of include/uapi/linux/if_xdp.h.
 */
#ifndef NMC_XSK_H
#define NMC_XSK_H

#include "nmc_nic.h"

#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef SOL_XDP
#define SOL_XDP 283
#endif
#define NMC_XDP_MMAP_OFFSETS          1
#define NMC_XDP_RX_RING               2
#define NMC_XDP_TX_RING               3
#define NMC_XDP_UMEM_REG              4
#define NMC_XDP_UMEM_FILL_RING        5
#define NMC_XDP_UMEM_COMPLETION_RING  6
#define NMC_XDP_STATISTICS            7
#define NMC_XDP_OPTIONS               8
#define NMC_XDP_MAX_TX_SKB_BUDGET     9
#define NMC_XDP_OPTIONS_ZEROCOPY      (1u << 0)
#define NMC_XDP_SHARED_UMEM           (1u << 0)
#define NMC_XDP_COPY                  (1u << 1)
#define NMC_XDP_ZEROCOPY              (1u << 2)
#define NMC_XDP_USE_NEED_WAKEUP       (1u << 3)
#define NMC_XDP_USE_SG                (1u << 4)
#define NMC_XDP_RING_NEED_WAKEUP      (1u << 0)
#define NMC_XDP_UMEM_UNALIGNED_CHUNK  (1u << 0)
#define NMC_XDP_PKT_CONTD             (1u << 0)
#define NMC_XDP_PGOFF_RX_RING         0ULL
#define NMC_XDP_PGOFF_TX_RING         0x80000000ULL
#define NMC_XDP_UMEM_PGOFF_FILL_RING  0x100000000ULL
#define NMC_XDP_UMEM_PGOFF_COMP_RING  0x180000000ULL
#define NMC_XDP_HEADROOM              256u

struct nmc_sockaddr_xdp {
    uint16_t sxdp_family, sxdp_flags;
    uint32_t sxdp_ifindex, sxdp_queue_id, sxdp_shared_umem_fd;
};

struct nmc_xdp_umem_reg {            /* always passed as 32 zeroed bytes */
    uint64_t addr, len;
    uint32_t chunk_size, headroom, flags, tx_metadata_len;
};

struct nmc_xdp_ring_offset { uint64_t producer, consumer, desc, flags; };
struct nmc_xdp_mmap_offsets { struct nmc_xdp_ring_offset rx, tx, fr, cr; };
struct nmc_xdp_desc { uint64_t addr; uint32_t len, options; };

/* One mapped AF_XDP ring (single producer, single consumer). */
struct nmc_xring {
    uint32_t *producer, *consumer, *flags;
    void *desc;
    uint32_t mask, size;
    void *map;
    size_t map_len;
};

/* One AF_XDP socket: one queue of one interface, shared by the ports of
 * the process that bind it (nmc_nic_share). */
struct nmc_xsk {
    int fd;
    uint32_t ifindex, queue;
    struct nmc_xring rx, tx, fill, comp;
    uint32_t bind_flags;
    bool zerocopy, sg;
    uint16_t *queued, tag;          /* the record's buffer ledger, and our mark in it (ring + 1) */
    struct nmc_shm_queue *sq;       /* the queue in the record's share memory */
    uint32_t *spare, spare_cap;     /* RX: buffers waiting for FILL room (there too) */
};

/* TX descriptors given to the kernel and not reaped from completions yet:
 * from the socket's own ring indexes, which every copy of it shares. */
static inline uint32_t nmc_xsk_inflight(const struct nmc_xsk *x)
{
    return x->tx.producer && x->comp.consumer
           ? __atomic_load_n(x->tx.producer, __ATOMIC_RELAXED) - __atomic_load_n(x->comp.consumer, __ATOMIC_RELAXED)
           : 0;
}

/* The buffers on x's spare list, read once from the share memory; a
 * count another process garbled is cut to the list's capacity (and
 * written back so).  Index the list only with the value returned. */
static inline uint32_t nmc_xsk_nspare(struct nmc_xsk *x)
{
    uint32_t n = __atomic_load_n(&x->sq->nspare, __ATOMIC_RELAXED);

    if (n > x->spare_cap) {
        n = x->spare_cap;
        __atomic_store_n(&x->sq->nspare, n, __ATOMIC_RELAXED);
    }
    return n;
}

/* Take a buffer off x's spare list into *idx: false when it is empty. */
static inline bool nmc_xsk_spare_pop(struct nmc_xsk *x, uint32_t *idx)
{
    uint32_t n = nmc_xsk_nspare(x);

    if (n == 0)
        return false;
    *idx = x->spare[n - 1];
    __atomic_store_n(&x->sq->nspare, n - 1, __ATOMIC_RELAXED);
    return true;
}

/* Put buffer idx on x's spare list: false when it is full. */
static inline bool nmc_xsk_spare_push(struct nmc_xsk *x, uint32_t idx)
{
    uint32_t n = nmc_xsk_nspare(x);

    if (n >= x->spare_cap)
        return false;
    x->spare[n] = idx;
    __atomic_store_n(&x->sq->nspare, n + 1, __ATOMIC_RELAXED);
    return true;
}

/* xsk.c */
int nmc_xsk_umem_reg(int fd, uint8_t *mem, const struct nmc_geom *g);
int nmc_xsk_rings(struct nmc_xsk *x, uint32_t rx_size, uint32_t tx_size);
int nmc_xsk_map(struct nmc_xsk *x, uint32_t rx_size, uint32_t tx_size);
int nmc_xsk_bind(struct nmc_xsk *x, int shared_fd, uint32_t mode_flags, bool want_sg);
void nmc_xsk_close(struct nmc_xsk *x);
uint32_t nmc_xsk_fill(struct nmc_xsk *x, const struct nmc_geom *g, const uint32_t *idx, uint32_t n);
int nmc_xsk_txsync_one(struct nmc_port *p, struct nmc_lring *lr);
int nmc_xsk_rxsync_one(struct nmc_port *p, struct nmc_lring *lr);

/* nic_xproc.c */
int nmc_nic_shm_queue(struct nmc_nic_share *sh, uint32_t ifindex, uint32_t ring, struct nmc_xsk **out);
void nmc_nic_shm_bind_queue(struct nmc_nic_share *sh, struct nmc_xsk *x);
void nmc_nic_shm_publish(struct nmc_nic_share *sh, struct nmc_xsk *x);

#endif /* NMC_XSK_H */
