/*
 * net/netmap_user.h -- application-side helpers for netmap rings.
 *
 * Part of nmcompat.  Address arithmetic on the shared region, ring index
 * helpers and the D()/RD()/ND() debug macros.  Everything here is a macro
 * or a static inline function; nothing needs linking.
 *
 * With NETMAP_WITH_LIBS defined, the legacy descriptor types
 * (struct nm_pkthdr, struct nm_desc) are declared as well.
 */
#ifndef _NET_NETMAP_USER_H_
#define _NET_NETMAP_USER_H_

#include <stdint.h>
#include <stddef.h>
#include <stdio.h>          /* fprintf, snprintf */
#include <string.h>         /* memcpy */
#include <sys/time.h>       /* gettimeofday */

#include <net/netmap.h>

/* ------------------------------------------------------------------ */
/* Addressing inside the shared region                                 */
/* ------------------------------------------------------------------ */

/* The netmap_if at offset _ofs (nr_offset) of the mapped region. */
#define NETMAP_IF(_base, _ofs) \
    ((struct netmap_if *)(void *)((char *)(_base) + (_ofs)))

/* tx ring _index; host tx ring k is _index == ni_tx_rings + k. */
#define NETMAP_TXRING(_nifp, _index) \
    ((struct netmap_ring *)(void *)((char *)(_nifp) + \
        (_nifp)->ring_ofs[(_index)]))

/* rx ring _index; host rx ring k is _index == ni_rx_rings + k. */
#define NETMAP_RXRING(_nifp, _index) \
    ((struct netmap_ring *)(void *)((char *)(_nifp) + \
        (_nifp)->ring_ofs[(_index) + (_nifp)->ni_tx_rings + \
                          (_nifp)->ni_host_tx_rings]))

/* Start of buffer _idx of the pool that _ring uses. */
#define NETMAP_BUF(_ring, _idx) \
    ((char *)(_ring) + (_ring)->buf_ofs + \
        (size_t)(_idx) * (_ring)->nr_buf_size)

/* Index of the buffer that starts at _buf (inverse of NETMAP_BUF). */
#define NETMAP_BUF_IDX(_ring, _buf) \
    (((char *)(_buf) - ((char *)(_ring) + (_ring)->buf_ofs)) / \
        (_ring)->nr_buf_size)

/*
 * Per-slot packet offsets (NETMAP_REQ_OPT_OFFSETS).  The offset lives in
 * the bits of slot->ptr selected by ring->offset_mask; with a zero mask
 * the offset is always 0 and writes are ignored.
 */
#define NETMAP_ROFFSET(_ring, _slot) \
    ((_slot)->ptr & (_ring)->offset_mask)

#define NETMAP_WOFFSET(_ring, _slot, _offset) \
    do { \
        (_slot)->ptr = ((_slot)->ptr & ~(_ring)->offset_mask) | \
            ((uint64_t)(_offset) & (_ring)->offset_mask); \
    } while (0)

/* Start of the packet in the slot's buffer, offset applied. */
#define NETMAP_BUF_OFFSET(_ring, _slot) \
    (NETMAP_BUF((_ring), (_slot)->buf_idx) + NETMAP_ROFFSET((_ring), (_slot)))

/* ------------------------------------------------------------------ */
/* Ring index helpers                                                  */
/* ------------------------------------------------------------------ */

/* Slot index after i, wrapping at num_slots. */
static inline uint32_t
nm_ring_next(struct netmap_ring *ring, uint32_t i)
{
    return (i + 1 == ring->num_slots) ? 0 : i + 1;
}

/* True when the application owns no slot (compares head, not cur). */
static inline int
nm_ring_empty(struct netmap_ring *ring)
{
    return ring->head == ring->tail;
}

/* Number of slots the application owns: (tail - head) mod num_slots. */
static inline uint32_t
nm_ring_space(struct netmap_ring *ring)
{
    int64_t n = (int64_t)ring->tail - (int64_t)ring->head;

    if (n < 0)
        n += ring->num_slots;
    return (uint32_t)n;
}

/* True while a tx ring still holds slots not yet completed by the port. */
static inline int
nm_tx_pending(struct netmap_ring *ring)
{
    return nm_ring_next(ring, ring->tail) != ring->head;
}

/*
 * Copy a packet between buffers.  Short lengths that are a multiple of
 * 64 bytes are copied in whole 64-byte blocks, anything else goes through
 * memcpy().  Exactly l bytes are written.
 */
static inline void
nm_pkt_copy(const void *_src, void *_dst, int l)
{
    const unsigned char *nmc_s = (const unsigned char *)_src;
    unsigned char *nmc_d = (unsigned char *)_dst;

    if (l <= 0)
        return;
    if (l >= 1024 || (l % 64) != 0) {
        memcpy(nmc_d, nmc_s, (size_t)l);
        return;
    }
    for (; l > 0; l -= 64, nmc_s += 64, nmc_d += 64) {
        uint64_t nmc_w[8];

        memcpy(nmc_w, nmc_s, sizeof(nmc_w));
        memcpy(nmc_d, nmc_w, sizeof(nmc_w));
    }
}

/* ------------------------------------------------------------------ */
/* Debugging                                                           */
/* ------------------------------------------------------------------ */

/*
 * D(fmt, ...) prints one line on stderr, prefixed with
 * "sss.uuuuuu function [line] " (seconds modulo 1000, microseconds).
 * RD(lps, fmt, ...) does the same at most lps times per second per call
 * site.  ND(...) compiles to nothing and does not evaluate its arguments.
 */
#define NMC_DEBUG_LINE_MAX  1024

#define ND(...) do { } while (0)

#define D(...) \
    do { \
        struct timeval nmc_d_tv_; \
        char nmc_d_msg_[NMC_DEBUG_LINE_MAX]; \
        gettimeofday(&nmc_d_tv_, NULL); \
        snprintf(nmc_d_msg_, sizeof(nmc_d_msg_), __VA_ARGS__); \
        fprintf(stderr, "%03d.%06d %s [%d] %s\n", \
            (int)(nmc_d_tv_.tv_sec % 1000), (int)nmc_d_tv_.tv_usec, \
            __func__, __LINE__, nmc_d_msg_); \
    } while (0)

#define RD(lps, ...) \
    do { \
        static time_t nmc_rd_sec_; \
        static int nmc_rd_cnt_; \
        struct timeval nmc_rd_tv_; \
        gettimeofday(&nmc_rd_tv_, NULL); \
        if (nmc_rd_sec_ != nmc_rd_tv_.tv_sec) { \
            nmc_rd_sec_ = nmc_rd_tv_.tv_sec; \
            nmc_rd_cnt_ = 0; \
        } \
        if (nmc_rd_cnt_ < (lps)) { \
            nmc_rd_cnt_++; \
            D(__VA_ARGS__); \
        } \
    } while (0)

/* ------------------------------------------------------------------ */
/* Legacy pcap-like descriptor (NETMAP_WITH_LIBS)                      */
/* ------------------------------------------------------------------ */

#ifdef NETMAP_WITH_LIBS

#define NM_ERRBUF_SIZE  512

/* nm_open() flags; the low 16 bits carry nr_ringid bits. */
#define NM_OPEN_NO_MMAP     0x040000    /* reuse the parent's mapping */
#define NM_OPEN_IFNAME      0x080000    /* nr_name, nr_ringid, nr_flags from parent */
#define NM_OPEN_ARG1        0x100000
#define NM_OPEN_ARG2        0x200000
#define NM_OPEN_ARG3        0x400000
#define NM_OPEN_RING_CFG    0x800000    /* slot and ring counts from parent */

#define NM_MORE_PKTS        1           /* nm_pkthdr.flags */

struct nm_desc;

struct nm_pkthdr {
    struct timeval      ts;
    uint32_t            caplen;
    uint32_t            len;
    uint64_t            flags;          /* NM_MORE_PKTS */
    struct nm_desc      *d;
    struct netmap_slot  *slot;
    uint8_t             *buf;
};

struct nm_stat {
    unsigned int    ps_recv;
    unsigned int    ps_drop;
    unsigned int    ps_ifdrop;
};

struct nm_desc {
    struct nm_desc      *self;          /* points to itself when valid */
    int                 fd;
    void                *mem;
    size_t              memsize;
    int                 done_mmap;      /* set if mem was mapped here */
    struct netmap_if * const nifp;
    uint16_t            first_tx_ring;
    uint16_t            last_tx_ring;
    uint16_t            cur_tx_ring;
    uint16_t            first_rx_ring;
    uint16_t            last_rx_ring;
    uint16_t            cur_rx_ring;
    struct nmreq        req;            /* also holds the port name */
    struct nm_pkthdr    hdr;

    struct netmap_ring * const some_ring;
    void * const        buf_start;
    void * const        buf_end;

    int                 snaplen;
    int                 promisc;
    int                 to_ms;
    char                *errbuf;

    uint32_t            if_flags;
    uint32_t            if_reqcap;
    uint32_t            if_curcap;

    struct nm_stat      st;
    char                msg[NM_ERRBUF_SIZE];
};

typedef void (*nm_cb_t)(unsigned char *, const struct nm_pkthdr *,
    const unsigned char *);

#define P2NMD(_p)           ((const struct nm_desc *)(const void *)(_p))
#define IS_NETMAP_DESC(_d)  ((_d) != NULL && P2NMD(_d)->self == P2NMD(_d))
#define NETMAP_FD(_d)       (P2NMD(_d)->fd)

/*
 * ==== nm_open() and friends: not provided yet ====
 *
 * nm_open(), nm_close(), nm_mmap(), nm_inject(), nm_dispatch() and
 * nm_nextpkt() will be supplied by libnmcompat.  Only the types above
 * are available for now.
 */

#endif /* NETMAP_WITH_LIBS */

#endif /* _NET_NETMAP_USER_H_ */
