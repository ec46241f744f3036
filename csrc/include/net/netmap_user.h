/*
 * net/netmap_user.h -- application-side helpers for netmap rings.
 *
 * Part of nmcompat.  Address arithmetic on the shared region, ring index
 * helpers and the D()/RD()/ND() debug macros.  Everything here is a macro
 * or a static inline function; nothing needs linking.
 *
 * With NETMAP_WITH_LIBS defined, netmap's legacy pcap-like API as well:
 * struct nm_desc, nm_open(), nm_close(), nm_mmap(), nm_parse(),
 * nm_inject(), nm_dispatch(), nm_nextpkt().  Usable from C and C++.
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

#include <errno.h>
#include <fcntl.h>          /* open */
#include <stdlib.h>         /* calloc, free, strtoul */
#include <sys/ioctl.h>
#include <sys/mman.h>       /* mmap, munmap */
#include <unistd.h>         /* close */

#include <nmcompat_portspec.h>  /* nmc_portspec_parse, for nm_parse */

/* weak: a program built without `nmcompat-config --libs` links, and finds
 * the parser at run time when `nmcompat exec` preloads the emulation */
#pragma weak nmc_portspec_parse

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
 * ==== The legacy pcap-like functions ====
 *
 * nm_open(), nm_close(), nm_mmap(), nm_parse(), nm_inject(), nm_dispatch()
 * and nm_nextpkt(), with the behaviour of netmap's own header (netmap.md
 * sections 2.3 and 2.4).  They call open(), ioctl(), mmap(), munmap() and
 * close() from libc: with libnmcompat-netmap.so linked in (nmcompat-config
 * --libs) or preloaded (nmcompat exec), those reach the /dev/netmap
 * emulation.  nm_open() prints why it failed with D(), as netmap's does;
 * nothing else here prints.
 */

/* Size of the err buffer nm_parse() fills. */
#ifndef MAXERRMSG
#define MAXERRMSG 80
#endif

/* strlen(s), but at most max (strnlen is not in strict C11). */
static inline size_t
nmc_nm_len(const char *s, size_t max)
{
    size_t len = 0;

    while (len < max && s[len] != '\0')
        len++;
    return len;
}

/*
 * Parse the legacy port name ifname ("netmap:IFNAME[suffix]" or
 * "valeX:Y[suffix]") into d->req: nr_name, the NR_REG_* mode and NR_* flags
 * ORed into nr_flags, the ring or pipe number ORed into nr_ringid, the "@N"
 * memory id into nr_arg2.  Returns 0 (and sets d->self), or -1 with errno
 * set (EINVAL) and, when err is not NULL, the reason in err (MAXERRMSG
 * bytes).  The parsing is nmcompat's one parser of the grammar,
 * nmc_portspec_parse in libnmcompat (nmcompat_portspec.h), referenced
 * weakly: a program linked with `nmcompat-config --libs` or
 * `pkg-config libnetmap`, or run under `nmcompat exec`, has it (the
 * emulation brings the engine); otherwise nm_parse fails with ENOSYS.
 */
static inline int
nm_parse(const char *ifname, struct nm_desc *d, char *err)
{
    struct nmc_portspec spec;
    struct nmc_portspec_error why;
    const char *name;
    size_t len;
    int pipe;

    if (!nmc_portspec_parse) {
        errno = ENOSYS;
        if (err != NULL)
            snprintf(err, MAXERRMSG, "libnmcompat is not loaded (nmcompat-config --libs)");
        return -1;
    }
    if (nmc_portspec_parse(ifname, NMC_PORTSPEC_LEGACY, &spec, &why) < 0) {
        len = nmc_nm_len(why.message, MAXERRMSG - 1);     /* cut to netmap's buffer */
        if (err != NULL) {
            memcpy(err, why.message, len);
            err[len] = '\0';
        }
        errno = why.errnum != 0 ? why.errnum : EINVAL;
        return -1;
    }
    /* "x{3" comes back as the pipe named "x{3"; netmap's nm_parse leaves
     * the name "x" with NR_REG_PIPE_MASTER and ring id 3 */
    pipe = spec.name.pipe_role;
    name = pipe ? spec.name.parent : spec.nr_name;
    len = nmc_nm_len(name, sizeof(d->req.nr_name) - 1);   /* the grammar keeps it below IFNAMSIZ */
    memcpy(d->req.nr_name, name, len);
    d->req.nr_name[len] = '\0';
    d->req.nr_flags |= (uint32_t)spec.nr_flags |
        (pipe == NMC_PORTSPEC_PIPE_MASTER ? (uint32_t)NR_REG_PIPE_MASTER :
         pipe == NMC_PORTSPEC_PIPE_SLAVE ? (uint32_t)NR_REG_PIPE_SLAVE : spec.nr_mode);
    d->req.nr_ringid = (uint16_t)(d->req.nr_ringid |
        (pipe ? (uint16_t)strtoul(spec.name.pipe_id, NULL, 10) : spec.nr_ringid));
    d->req.nr_arg2 = spec.mem_id;
    d->self = d;
    return 0;
}

/*
 * Release d: its mapping (only if nm_mmap() made it), its descriptor and d
 * itself.  EINVAL (positive) when d is not a descriptor.
 */
static inline int
nm_close(struct nm_desc *d)
{
    if (d == NULL || d->self != d)
        return EINVAL;
    if (d->done_mmap && d->mem != NULL)
        munmap(d->mem, d->memsize);
    if (d->fd != -1)
        close(d->fd);
    memset((void *)d, 0, sizeof(*d));     /* self too: no longer a descriptor */
    free(d);
    return 0;
}

/*
 * Map d's memory, or share parent's mapping when parent is a mapped
 * descriptor of the same memory region (nr_arg2); then set nifp, some_ring
 * (the first rx ring, the first tx ring for a tx-only descriptor),
 * buf_start and buf_end.  0, or EINVAL (positive) with errno from mmap().
 */
static inline int
nm_mmap(struct nm_desc *d, const struct nm_desc *parent)
{
    struct netmap_if *nifp;
    struct netmap_ring *ring;

    if (IS_NETMAP_DESC(parent) && parent->mem != NULL &&
        parent->req.nr_arg2 == d->req.nr_arg2) {
        d->mem = parent->mem;
        d->memsize = parent->memsize;
    } else {
        d->memsize = d->req.nr_memsize;
        d->mem = mmap(NULL, d->memsize, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd, 0);
        if (d->mem == MAP_FAILED) {
            d->mem = NULL;
            return EINVAL;
        }
        d->done_mmap = 1;
    }
    nifp = NETMAP_IF(d->mem, d->req.nr_offset);
    ring = NETMAP_RXRING(nifp, d->first_rx_ring);
    if ((void *)ring == (void *)nifp)           /* no rx ring bound: tx only */
        ring = NETMAP_TXRING(nifp, d->first_tx_ring);
    *(struct netmap_if **)(uintptr_t)&d->nifp = nifp;
    *(struct netmap_ring **)(uintptr_t)&d->some_ring = ring;
    *(void **)(uintptr_t)&d->buf_start = NETMAP_BUF(ring, 0);
    *(void **)(uintptr_t)&d->buf_end = (char *)d->mem + d->memsize;
    return 0;
}

/* The rings nm_inject/nm_dispatch/nm_nextpkt use, from the registration's
 * mode (the /R and /T flags are not looked at, as in netmap). */
static inline void
nmc_nm_ring_range(struct nm_desc *d)
{
    uint16_t tx_first = 0, tx_last = 0, rx_first = 0, rx_last = 0;

    switch (d->req.nr_flags & NR_REG_MASK) {
    case NR_REG_SW:                     /* the host rings, after the NIC's */
        tx_first = tx_last = d->req.nr_tx_rings;
        rx_first = rx_last = d->req.nr_rx_rings;
        break;
    case NR_REG_ALL_NIC:
        tx_last = (uint16_t)(d->req.nr_tx_rings - 1);
        rx_last = (uint16_t)(d->req.nr_rx_rings - 1);
        break;
    case NR_REG_NIC_SW:                 /* the NIC's and one host ring */
        tx_last = d->req.nr_tx_rings;
        rx_last = d->req.nr_rx_rings;
        break;
    case NR_REG_ONE_NIC:
        tx_first = tx_last = rx_first = rx_last =
            (uint16_t)(d->req.nr_ringid & NETMAP_RING_MASK);
        break;
    default:                            /* pipe ends and the rest: ring 0 */
        break;
    }
    d->first_tx_ring = tx_first;
    d->last_tx_ring = tx_last;
    d->first_rx_ring = rx_first;
    d->last_rx_ring = rx_last;
}

/*
 * Open a port by its legacy name (nm_parse) with NIOCREGIF on a new
 * /dev/netmap descriptor and map its memory.  req, when given, is the
 * starting request; new_flags carries NM_OPEN_* and the nr_ringid bits
 * NETMAP_NO_TX_POLL and NETMAP_DO_RX_POLL; arg is a parent descriptor whose
 * request fields the NM_OPEN_* flags copy and whose mapping is shared when
 * the memory region is the same.  NULL with errno 0 for a name that starts
 * with neither "netmap:" nor "vale" (not a netmap name); NULL with errno
 * set on failure (the reason printed with D()).
 */
static inline struct nm_desc *
nm_open(const char *ifname, const struct nmreq *req, uint64_t new_flags,
    const struct nm_desc *arg)
{
    const struct nm_desc *parent = arg;
    struct nm_desc *d;
    char msg[MAXERRMSG];
    int saved;

    if (strncmp(ifname, "netmap:", 7) != 0 &&
        strncmp(ifname, NM_BDG_NAME, strlen(NM_BDG_NAME)) != 0) {
        errno = 0;                      /* not a netmap name: no error */
        return NULL;
    }
    msg[0] = '\0';
    d = (struct nm_desc *)calloc(1, sizeof(*d));
    if (d == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    d->self = d;                        /* from here nm_close() takes it */
    d->fd = open(NETMAP_DEVICE_NAME, O_RDWR);
    if (d->fd < 0) {
        snprintf(msg, sizeof(msg), "cannot open /dev/netmap: %s", strerror(errno));
        goto fail;
    }
    if (req != NULL)
        d->req = *req;
    if (!(new_flags & NM_OPEN_IFNAME) && nm_parse(ifname, d, msg) < 0)
        goto fail;
    d->req.nr_version = NETMAP_API;
    d->req.nr_ringid &= NETMAP_RING_MASK;
    if (new_flags != 0 && IS_NETMAP_DESC(parent)) {
        d->req.nr_arg1 = (new_flags & NM_OPEN_ARG1) ? parent->req.nr_arg1 : 4;
        if (new_flags & NM_OPEN_ARG2)
            d->req.nr_arg2 = parent->req.nr_arg2;
        d->req.nr_arg3 = (new_flags & NM_OPEN_ARG3) ? parent->req.nr_arg3 : 0;
        if (new_flags & NM_OPEN_RING_CFG) {
            d->req.nr_tx_slots = parent->req.nr_tx_slots;
            d->req.nr_rx_slots = parent->req.nr_rx_slots;
            d->req.nr_tx_rings = parent->req.nr_tx_rings;
            d->req.nr_rx_rings = parent->req.nr_rx_rings;
        }
        if (new_flags & NM_OPEN_IFNAME) {
            memcpy(d->req.nr_name, parent->req.nr_name, sizeof(d->req.nr_name));
            d->req.nr_ringid = parent->req.nr_ringid;
            d->req.nr_flags = parent->req.nr_flags;
        }
    }
    d->req.nr_ringid = (uint16_t)(d->req.nr_ringid |
        (new_flags & (NETMAP_NO_TX_POLL | NETMAP_DO_RX_POLL)));
    if (ioctl(d->fd, NIOCREGIF, &d->req) != 0) {
        snprintf(msg, sizeof(msg), "NIOCREGIF failed: %s", strerror(errno));
        goto fail;
    }
    nmc_nm_ring_range(d);
    /* with a parent, nm_mmap() runs even under NM_OPEN_NO_MMAP: it shares
     * the parent's mapping when it can */
    if ((!(new_flags & NM_OPEN_NO_MMAP) || parent != NULL) && nm_mmap(d, parent) != 0) {
        snprintf(msg, sizeof(msg), "mmap failed: %s", strerror(errno));
        goto fail;
    }
    d->cur_tx_ring = d->first_tx_ring;
    d->cur_rx_ring = d->first_rx_ring;
    return d;

fail:
    saved = errno;
    nm_close(d);
    if (msg[0] != '\0')
        D("%s %s", msg, ifname);
    errno = saved != 0 ? saved : EINVAL;
    return NULL;
}

/*
 * Queue one packet on the first tx ring, from cur_tx_ring round the bound
 * ones, with room for all of it: written from the ring's cur, split into
 * buffer-sized NS_MOREFRAG fragments when it is larger than a buffer; head
 * and cur move past it.  No system call: a sync or poll sends it.  Returns
 * size, or 0 when no ring had room.
 */
static inline int
nm_inject(struct nm_desc *d, const void *buf, size_t size)
{
    const char *src = (const char *)buf;
    unsigned n = (unsigned)(d->last_tx_ring - d->first_tx_ring) + 1, k;
    unsigned ri = d->cur_tx_ring;

    for (k = 0; k < n; k++, ri++) {
        struct netmap_ring *ring;
        uint32_t i, last;
        size_t rem = size, bufsz;

        if (ri > d->last_tx_ring)
            ri = d->first_tx_ring;
        ring = NETMAP_TXRING(d->nifp, ri);
        bufsz = ring->nr_buf_size;
        /* the slot the last fragment goes in, if the ring has room */
        for (last = ring->cur; last != ring->tail && rem > bufsz; rem -= bufsz)
            last = nm_ring_next(ring, last);
        if (last == ring->tail)
            continue;
        for (i = ring->cur; i != last; i = nm_ring_next(ring, i), src += bufsz) {
            struct netmap_slot *slot = &ring->slot[i];

            nm_pkt_copy(src, NETMAP_BUF(ring, slot->buf_idx), (int)bufsz);
            slot->len = (uint16_t)bufsz;
            slot->flags = NS_MOREFRAG;
        }
        nm_pkt_copy(src, NETMAP_BUF(ring, ring->slot[last].buf_idx), (int)rem);
        ring->slot[last].len = (uint16_t)rem;
        ring->slot[last].flags = 0;
        ring->head = ring->cur = nm_ring_next(ring, last);
        d->cur_tx_ring = (uint16_t)ri;
        return (int)size;
    }
    return 0;
}

/*
 * Hand up to cnt packets (cnt <= 0: all there are) of the bound rx rings,
 * from cur_rx_ring round them, to cb(arg, hdr, buf), advancing each ring's
 * head and cur past them; no system call.  A packet is a whole NS_MOREFRAG
 * chain: hdr->len is its length, hdr->caplen the part that lies in one
 * piece at buf (its first fragment, and the next ones while each buffer
 * follows a full one in memory), hdr->slot its first slot.  cb runs one
 * packet late, so hdr->flags is NM_MORE_PKTS on every call but the last of
 * this nm_dispatch(); the slots have been released (head moved) when it
 * runs, and stay valid until the next sync.  A chain not complete before
 * the ring's tail stays for a later call.  Returns the number of packets.
 */
static inline int
nm_dispatch(struct nm_desc *d, int cnt, nm_cb_t cb, unsigned char *arg)
{
    unsigned n = (unsigned)(d->last_rx_ring - d->first_rx_ring) + 1, k;
    unsigned ri = d->cur_rx_ring;
    int got = 0;

    d->hdr.d = d;
    d->hdr.buf = NULL;
    d->hdr.flags = NM_MORE_PKTS;
    for (k = 0; k < n && (cnt <= 0 || got < cnt); k++, ri++) {
        struct netmap_ring *ring;

        if (ri > d->last_rx_ring)
            ri = d->first_rx_ring;
        ring = NETMAP_RXRING(d->nifp, ri);
        while (!nm_ring_empty(ring) && (cnt <= 0 || got < cnt)) {
            uint32_t first = ring->cur, i = first;
            struct netmap_slot *slot = &ring->slot[i];
            unsigned char *start = (unsigned char *)NETMAP_BUF(ring, slot->buf_idx);
            unsigned char *piece = start;       /* NULL once not in one piece */
            uint32_t len = slot->len, caplen = slot->len;
            int whole = 1;

            while (slot->flags & NS_MOREFRAG) {
                uint32_t prev_len = slot->len;
                unsigned char *b;

                i = nm_ring_next(ring, i);
                if (i == ring->tail) {
                    whole = 0;
                    break;
                }
                slot = &ring->slot[i];
                len += slot->len;
                b = (unsigned char *)NETMAP_BUF(ring, slot->buf_idx);
                if (piece != NULL && prev_len == ring->nr_buf_size &&
                    b == piece + ring->nr_buf_size) {
                    caplen += slot->len;
                    piece = b;
                } else {
                    piece = NULL;
                }
            }
            if (!whole)
                break;                  /* the rest of the chain is not here yet */
            if (d->hdr.buf != NULL)     /* the previous packet, now that one follows */
                cb(arg, &d->hdr, d->hdr.buf);
            d->cur_rx_ring = (uint16_t)ri;
            d->hdr.slot = &ring->slot[first];
            d->hdr.buf = start;
            d->hdr.len = len;
            d->hdr.caplen = caplen;
            d->hdr.ts = ring->ts;
            ring->head = ring->cur = nm_ring_next(ring, i);
            got++;
        }
    }
    if (d->hdr.buf != NULL) {
        d->hdr.flags = 0;
        cb(arg, &d->hdr, d->hdr.buf);
    }
    return got;
}

/*
 * The buffer of the next slot of the bound rx rings, from cur_rx_ring round
 * them, its head and cur moved past it at once (the buffer is valid until
 * the next sync); hdr gets ts and len = caplen = that slot's length (one
 * slot: an NS_MOREFRAG chain comes a fragment at a time).  NULL when every
 * ring is empty; no system call.
 */
static inline unsigned char *
nm_nextpkt(struct nm_desc *d, struct nm_pkthdr *hdr)
{
    unsigned ri = d->cur_rx_ring;

    do {
        struct netmap_ring *ring = NETMAP_RXRING(d->nifp, ri);

        if (!nm_ring_empty(ring)) {
            struct netmap_slot *slot = &ring->slot[ring->cur];

            hdr->ts = ring->ts;
            hdr->len = hdr->caplen = slot->len;
            ring->head = ring->cur = nm_ring_next(ring, ring->cur);
            d->cur_rx_ring = (uint16_t)ri;
            return (unsigned char *)NETMAP_BUF(ring, slot->buf_idx);
        }
        if (++ri > d->last_rx_ring)
            ri = d->first_rx_ring;
    } while (ri != d->cur_rx_ring);
    return NULL;
}

#endif /* NETMAP_WITH_LIBS */

#endif /* _NET_NETMAP_USER_H_ */
