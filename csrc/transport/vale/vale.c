/*
 * vale.c -- VALE forwarding, done by the sender in its txsync, as netmap:
 *
 *  1. walk [hwcur, head) in batches of bridge_batch packets (NS_MOREFRAG
 *     chains of up to 64 fragments are one packet; NS_INDIRECT slots carry
 *     the sender's own pointer), learn the source MAC and look up the
 *     destination in the switch's 1024-entry table: a port, or broadcast
 *     (multicast, unknown unicast); frames under 14 bytes and frames for
 *     their own port are dropped;
 *  2. per destination: lease slots of its RX ring (source ring mod its RX
 *     rings; broadcast uses ring 0) under the ring's robust lock, copy
 *     outside the lock, complete in order, wake its sleepers.  What does
 *     not fit is dropped, and counted on the destination;
 *  3. the sender's TX ring is fully reclaimed: tail = head - 1.
 *
 * Ports with a virtio-net header (PORT_HDR_SET: 10 or 12 bytes before the
 * Ethernet header) are looked up past it.  Between ports of equal lengths
 * frames pass as they are; otherwise the sender's header is stripped and
 * the receiver's prepended, zeroed (no offload).  A frame whose header asks
 * for GSO or a checksum cannot go to a port of another length (netmap
 * segments it in software; not here): dropped, counted in tx_dropped.
 */
#include "nmc_vale.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAC_MASK 0xffffffffffffULL

/* The pid and pid namespace stamped on leases, without a system call per
 * flush; a forked child looks its own up again (a child of a process that
 * called unshare(CLONE_NEWPID) is in another namespace). */
static struct { pid_t pid; uint32_t pidns; } g_self;
static pthread_once_t g_pid_once = PTHREAD_ONCE_INIT;

static void forget_pid(void) { __atomic_store_n(&g_self.pid, 0, __ATOMIC_RELAXED); }
static void watch_forks(void) { pthread_atfork(NULL, NULL, forget_pid); }

static pid_t my_pid(void)
{
    pid_t pid;

    pthread_once(&g_pid_once, watch_forks);
    if ((pid = __atomic_load_n(&g_self.pid, __ATOMIC_ACQUIRE)) == 0) {
        struct stat st;
        uint32_t ns = stat("/proc/self/ns/pid", &st) == 0 ? (uint32_t)st.st_ino : 0;
        __atomic_store_n(&g_self.pidns, ns, __ATOMIC_RELAXED);
        pid = getpid();
        __atomic_store_n(&g_self.pid, pid, __ATOMIC_RELEASE);   /* after pidns, for its readers */
    }
    return pid;
}

uint32_t nmc_vale_pidns(void)
{
    my_pid();
    return __atomic_load_n(&g_self.pidns, __ATOMIC_RELAXED);
}

void nmc_vale_lease_self(const struct nmc_port *p, struct nmc_lease *who)
{
    pid_t pid = my_pid();               /* and, published with it, pidns */

    *who = (struct nmc_lease){ .owner_mem = p->mem_id, .owner_h = p->hidx, .pid = pid,
                               .pidns = __atomic_load_n(&g_self.pidns, __ATOMIC_RELAXED) };
}

/* Bob Jenkins' 96-bit mix, as FreeBSD's if_bridge and VALE hash MACs. */
#define JMIX(a, b, c) do {                                         \
        a -= b; a -= c; a ^= (c >> 13);                            \
        b -= c; b -= a; b ^= (a << 8);                             \
        c -= a; c -= b; c ^= (b >> 13);                            \
        a -= b; a -= c; a ^= (c >> 12);                            \
        b -= c; b -= a; b ^= (a << 16);                            \
        c -= a; c -= b; c ^= (b >> 5);                             \
        a -= b; a -= c; a ^= (c >> 3);                             \
        b -= c; b -= a; b ^= (a << 10);                            \
        c -= a; c -= b; c ^= (b >> 15);                            \
    } while (0)

static inline uint32_t hash_mac(const uint8_t *mac)
{
    uint32_t a = 0x9e3779b9, b = 0x9e3779b9, c = 0;

    b += (uint32_t)mac[5] << 8 | mac[4];
    a += (uint32_t)mac[3] << 24 | (uint32_t)mac[2] << 16 | (uint32_t)mac[1] << 8 | mac[0];
    JMIX(a, b, c);
    return c & (NMC_BDG_HASH - 1);
}

uint32_t nmc_vale_hash(const uint8_t *mac)
{
    return hash_mac(mac);
}

/* A MAC as a 48-bit little-endian number, in two loads. */
static inline uint64_t mac48(const uint8_t *m)
{
    uint32_t lo;
    uint16_t hi;

    memcpy(&lo, m, 4);
    memcpy(&hi, m + 4, 2);
    return (uint64_t)lo | (uint64_t)hi << 32;
}

/* Copy len bytes at an NS_INDIRECT address of this process.  The address
 * comes from a user-writable slot: process_vm_readv() reports a bad one
 * (EFAULT) where a plain read would crash the sender.  true if all read. */
static bool read_indirect(uint64_t addr, void *dst, uint32_t len)
{
    struct iovec local = { .iov_base = dst, .iov_len = len };
    struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };

    return len == 0 || process_vm_readv(my_pid(), &local, 1, &remote, 1, 0) == (ssize_t)len;
}

/* Record TX slot s (a snapshot) as fragment f: its netmap buffer here, or
 * for NS_INDIRECT the address it carries (whose bytes only read_indirect()
 * may touch).  false if a slot without NS_INDIRECT names no buffer of ours. */
static bool frag_of(const struct nmc_port *p, const struct netmap_slot *s, struct nmc_frag *f)
{
    f->len = s->len;
    f->flags = s->flags;
    if (s->flags & NS_INDIRECT) {
        f->src = s->ptr;
        return true;
    }
    if (s->buf_idx < 2 || s->buf_idx >= p->g.buf_num || s->len > p->g.buf_size)
        return false;
    f->src = (uint64_t)(uintptr_t)nmc_buf(p->mem, &p->g, s->buf_idx);
    return true;
}

static uint16_t lookup(struct nmc_vale_ctx *c, const uint8_t *buf, uint32_t len)
{
    struct nmc_switch *sw = c->m.sw;
    struct nmc_sw_port *me = &sw->ports[c->me];
    uint64_t e, d;

    if (len < 14 || buf == NULL)
        return NMC_NOPORT;
    if (!(buf[6] & 1)) {
        uint64_t s = mac48(buf + 6);
        if (s != me->last_smac) {
            __atomic_store_n(&sw->ht[hash_mac(buf + 6)], 1ULL << 63 | (uint64_t)c->me << 48 | s,
                             __ATOMIC_RELAXED);
            me->last_smac = s;
        }
    }
    if (buf[0] & 1)
        return NMC_BCAST;
    d = mac48(buf);
    if (d == c->last_dmac)              /* same destination as the frame before, this sync */
        return c->last_dport;
    c->last_dmac = d;
    c->last_dport = NMC_BCAST;
    e = __atomic_load_n(&sw->ht[hash_mac(buf)], __ATOMIC_RELAXED);
    if ((e >> 63) && (e & MAC_MASK) == d) {
        uint32_t q = (e >> 48) & 0xff;
        if (q == c->me)
            c->last_dport = NMC_NOPORT;         /* no hairpin */
        else if (q < NMC_SW_MAXPORTS && __atomic_load_n(&sw->ports[q].state, __ATOMIC_ACQUIRE) == NMC_LIVE)
            c->last_dport = (uint16_t)q;
    }
    return c->last_dport;
}

#define HEAD_MAX (NMC_VHDR_MAX + 14)

/* The first hdr + 14 bytes of a packet (its virtio-net header, then the
 * Ethernet header), from its first fragment: its buffer, or a copy of what
 * an NS_INDIRECT address holds.  NULL if the first fragment is shorter or
 * cannot be read. */
static const uint8_t *packet_head(const struct nmc_frag *f, uint32_t hdr, uint8_t copy[HEAD_MAX])
{
    if (f->len < hdr + 14)
        return NULL;
    if (!(f->flags & NS_INDIRECT))
        return (const uint8_t *)(uintptr_t)f->src;
    return read_indirect(f->src, copy, hdr + 14) ? copy : NULL;
}

/* A virtio-net header asking for a checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM)
 * or segmentation (gso_type other than VIRTIO_NET_HDR_GSO_NONE). */
static bool asks_offload(const uint8_t *vhdr)
{
    return (vhdr[0] & 1) || vhdr[1] != 0;
}

/* One packet from slot j: reads each of its TX slots once into the
 * fragment table from c->frag[*nfrag] (what put_packet copies from), fills
 * ft, returns the slot after it.  A slot of it that names no buffer sets
 * *corrupt and returns j, the packet not taken (the ring needs netmap's
 * reinit). */
static uint32_t gather(struct nmc_port *p, struct nmc_lring *lr, uint32_t j, uint32_t head,
                       struct nmc_ft *ft, uint32_t *nfrag, bool *corrupt)
{
    const uint32_t start = j;
    struct nmc_vale_ctx *c = nmc_vale_of(p);
    struct netmap_ring *ring = lr->ring;
    struct nmc_frag *fr = &c->frag[*nfrag];
    uint8_t copy[HEAD_MAX];
    const uint8_t *start_bytes;
    uint32_t k = 0, len = 0;
    uint16_t flags;

    do {
        struct netmap_slot s = nmc_slot_read(&ring->slot[j]);
        if (!frag_of(p, &s, &fr[k])) {
            *corrupt = true;
            return start;
        }
        flags = s.flags;
        len += s.len;
        if (fr[k].len > c->max_frag)
            c->max_frag = fr[k].len;
        k++;
        if (flags & NS_BUF_CHANGED)
            ring->slot[j].flags = flags & ~NS_BUF_CHANGED;
        j = nmc_next(j, lr->n);
    } while ((flags & NS_MOREFRAG) && j != head && k < NETMAP_MAX_FRAGS);
    ft->frag = *nfrag;
    ft->nfrags = k;
    ft->len = len;
    *nfrag += k;
    start_bytes = packet_head(&fr[0], c->src_hdr, copy);
    ft->offload = start_bytes && c->src_hdr && asks_offload(start_bytes);
    ft->dst = lookup(c, start_bytes ? start_bytes + c->src_hdr : NULL, fr[0].len - c->src_hdr);
    return j;
}

/* Pass 1 for plain slots, the common case: one-slot packets in our own
 * buffers (no NS_MOREFRAG, NS_INDIRECT or NS_BUF_CHANGED) on a port
 * without a virtio-net header.  Takes them from slot j while they come,
 * up to `max` packets, into ft[*nft..] and the fragment table; returns the
 * first slot it did not take (a slot gather() must read, or head).  Each
 * slot is read once, checked as frag_of() checks it. */
static uint32_t gather_plain(struct nmc_port *p, struct nmc_lring *lr, uint32_t j, uint32_t head,
                             uint32_t max, uint32_t *nft, uint32_t *nfrag, uint32_t *nbytes)
{
    struct nmc_vale_ctx *c = nmc_vale_of(p);
    const struct netmap_slot *slot = lr->ring->slot;
    const uint32_t n = lr->n, buf_num = p->g.buf_num, buf_size = p->g.buf_size;
    const struct nmc_sw_port *me = &c->m.sw->ports[c->me];
    uint8_t *const bufs = nmc_buf(p->mem, &p->g, 0);
    struct nmc_frag *const frag = c->frag;
    struct nmc_ft *const ft = c->ft;
    uint32_t i = *nft, f = *nfrag, bytes = 0, longest = c->max_frag;
    /* lookup()'s cache, in registers: a frame from the last learned source
     * to the last unicast destination looked up needs nothing else */
    uint64_t last_s = me->last_smac, last_d = c->last_dmac;
    uint16_t last_q = c->last_dport;

    for (; j != head && i < max && f < NMC_MAXSLOTS; i++, f++, j = nmc_next(j, n)) {
        const uint32_t idx = nmc_user_u32(&slot[j].buf_idx);
        const uint32_t len = nmc_user_u16(&slot[j].len);
        const uint16_t flags = nmc_user_u16(&slot[j].flags);
        const uint8_t *buf;
        uint16_t q = NMC_NOPORT;
        if ((flags & (NS_MOREFRAG | NS_INDIRECT | NS_BUF_CHANGED)) || idx < 2 || idx >= buf_num ||
            len > buf_size)
            break;
        buf = bufs + (uint64_t)idx * buf_size;
        if (len >= 14) {
            if (mac48(buf + 6) == last_s && (buf[0] & 1)) {
                q = NMC_BCAST;              /* learned already; broadcast, multicast */
            } else if (mac48(buf + 6) == last_s && mac48(buf) == last_d) {
                q = last_q;
            } else {
                q = lookup(c, buf, len);
                last_s = me->last_smac;
                last_d = c->last_dmac;
                last_q = c->last_dport;
            }
        }
        frag[f] = (struct nmc_frag){ .src = (uint64_t)(uintptr_t)buf, .len = len, .flags = flags };
        ft[i] = (struct nmc_ft){ .frag = f, .nfrags = 1, .len = len, .dst = q };
        bytes += len;
        longest = len > longest ? len : longest;
    }
    c->max_frag = longest;
    *nft = i;
    *nfrag = f;
    *nbytes += bytes;
    return j;
}

/* Every RX ring of a destination has the size we copy with, and a lease. */
static bool rings_ok(const struct nmc_kring *kr, uint32_t n, uint32_t nslots)
{
    for (uint32_t k = 0; k < n; k++)
        if (kr[k].nslots != nslots || !kr[k].lease_init)
            return false;
    return true;
}

/* Map (or re-map after a change) destination port q; -errno if unusable. */
static int dst_map(struct nmc_port *p, uint32_t q)
{
    struct nmc_vale_ctx *c = nmc_vale_of(p);
    struct nmc_sw_port *sp = &c->m.sw->ports[q];
    struct nmc_vdst *d = &c->dst[q];
    uint32_t gen = __atomic_load_n(&sp->gen, __ATOMIC_ACQUIRE);
    struct nmc_kring *krs;
    int err;

    if (d->reg.ctl && d->gen == gen)
        return 0;
    if (d->reg.ctl)
        nmc_region_detach(&d->reg);
    d->reg.fd = -1;
    if ((err = nmc_region_attach_via(p->rundir, p->wake_dir, sp->mem_id, &d->reg, NMC_NOLOCK)) < 0)
        return err;
    d->nrx = sp->nrx;
    d->rx_first_obj = sp->rx_first_obj;
    d->nslots = sp->rx_slots;
    krs = nmc_krings(d->reg.ctl, &d->reg.g);
    if (d->nrx < 1 || d->nrx > NMC_VALE_MAXRINGS || d->rx_first_obj >= d->reg.g.ring_num ||
        d->nrx > d->reg.g.ring_num - d->rx_first_obj || d->nslots < 2 || d->nslots > NMC_MAXSLOTS ||
        d->reg.g.buf_size < 64 || d->reg.g.buf_size % 64 ||
        !rings_ok(krs + d->rx_first_obj, d->nrx, d->nslots) ||
        __atomic_load_n(&sp->gen, __ATOMIC_ACQUIRE) != gen) {
        nmc_region_detach(&d->reg);
        return -ESTALE;
    }
    for (uint32_t k = 0; k < d->nrx; k++)
        d->kgen[k] = __atomic_load_n(&krs[d->rx_first_obj + k].kgen, __ATOMIC_ACQUIRE);
    if (__atomic_load_n(&sp->gen, __ATOMIC_ACQUIRE) != gen) {
        nmc_region_detach(&d->reg);     /* retired while we looked */
        return -ESTALE;
    }
    d->gen = gen;
    return 0;
}

/* Where a lease copies into: one destination RX ring, its geometry copied
 * into a local once (read through d->reg after every copy, since a copy may
 * write anything the compiler cannot rule out).  stream_max: the longest
 * fragment a streamed copy may take, whole 64-byte lines of it fitting both
 * the source's and the destination's buffers. */
struct dst_ring {
    struct netmap_slot *slot;
    uint8_t *bufs;                  /* buffer 0 of the destination region */
    uint64_t buf_size;
    uint32_t buf_num, nslots, stream_min, stream_max;
};

/* Copy one fragment; true if it was streamed (core/copy.c: the lease is
 * then published only after nmc_copy_stream_end()). */
static inline __attribute__((always_inline)) bool
copy_frag(const struct dst_ring *dr, uint8_t *dst, const uint8_t *src, uint32_t len)
{
    if (NMC_COPY_STREAMS && dr->stream_min && len >= dr->stream_min && len <= dr->stream_max &&
        ((uintptr_t)dst & 63) == 0) {
        nmc_copy_stream(dst, src, len);
        return true;
    }
    if (len < 256) {                    /* 64-byte chunks: buffers are 64-byte multiples */
        for (uint32_t i = 0; i < len; i += 64)
            memcpy(dst + i, src + i, 64);
    } else {
        memcpy(dst, src, len);
    }
    return false;
}

/* Virtio-net headers between two ports of different lengths: strip the
 * sender's, prepend the receiver's (zeroed); both 0 between equal ones. */
struct vhdr_change {
    uint32_t strip, prepend;
};

/* A destination slot's len and flags, in one store. */
static inline void set_len_flags(struct netmap_slot *rs, uint32_t len, uint16_t flags)
{
    const struct { uint16_t len, flags; } v = { (uint16_t)len, flags };

    _Static_assert(offsetof(struct netmap_slot, flags) == offsetof(struct netmap_slot, len) + 2,
                   "len and flags are adjacent");
    memcpy(&rs->len, &v, sizeof(v));
}

/* Destination slots packet f takes in buffers of buf_size bytes: one per
 * fragment, and as many as its bytes need for a fragment longer than a
 * buffer (the first with its header changed: prepend + len - strip). */
static uint32_t pkt_slots(const struct nmc_frag *fr, const struct nmc_ft *f,
                          const struct vhdr_change *vc, uint64_t buf_size)
{
    uint32_t n = 0;

    for (uint32_t k = 0; k < f->nfrags; k++) {
        uint64_t len = fr[k].len;
        if (k == 0)
            len = vc->prepend + (len > vc->strip ? len - vc->strip : 0);
        n += len <= buf_size ? 1 : (uint32_t)((len + buf_size - 1) / buf_size);
    }
    return n;
}

/* Copy packet f (its fragments as gather read them) into its `nslots`
 * destination slots from j (pkt_slots()): a fragment longer than the
 * destination's buffers goes on in the next slots, NS_MOREFRAG between
 * them, so that a smaller destination loses no byte.  The first fragment
 * gets its header changed.  Returns the slot after the packet, and adds
 * the pieces it streamed to *streamed. */
static uint32_t put_packet(const struct nmc_frag *fr, const struct nmc_ft *f,
                           const struct dst_ring *dr, const struct vhdr_change *vc, uint32_t j,
                           uint32_t nslots, uint32_t *streamed)
{
    const uint16_t rfrags = (uint16_t)((nslots < 255 ? nslots : 255) << 8);    /* NS_RFRAGS */
    uint32_t left = nslots;

    for (uint32_t k = 0; k < f->nfrags && left > 0; k++) {
        const bool conv = k == 0 && (vc->strip || vc->prepend);
        uint32_t pre = conv ? vc->prepend : 0, skip = conv ? vc->strip : 0;
        uint32_t body = fr[k].len > skip ? fr[k].len - skip : 0;
        uint64_t src = fr[k].src + skip;
        do {
            struct netmap_slot *rs = &dr->slot[j];
            uint32_t idx = nmc_user_u32(&rs->buf_idx), len = 0;
            uint32_t take = body < dr->buf_size - pre ? body : (uint32_t)(dr->buf_size - pre);
            if (idx >= 2 && idx < dr->buf_num) {
                uint8_t *dst = dr->bufs + (uint64_t)idx * dr->buf_size;
                if (pre)
                    memset(dst, 0, pre);                /* flags 0, VIRTIO_NET_HDR_GSO_NONE */
                len = pre + take;
                if (fr[k].flags & NS_INDIRECT)
                    len = read_indirect(src, dst + pre, take) ? len : 0;
                else if (conv)                          /* src not on a 64-byte line */
                    memcpy(dst + pre, (const uint8_t *)(uintptr_t)src, take);
                else
                    *streamed += copy_frag(dr, dst, (const uint8_t *)(uintptr_t)src, take);
            }
            src += take;
            body -= take;
            pre = 0;
            left--;
            set_len_flags(rs, len, rfrags | (left ? NS_MOREFRAG : 0));
            j = nmc_next(j, dr->nslots);
        } while (body > 0 && left > 0);
    }
    return j;
}

/* The i-th packet for a destination: list[i], or packet i of the flush
 * where one destination takes them all (list NULL). */
static inline uint32_t nth(const uint16_t *list, uint32_t i)
{
    return list ? list[i] : i;
}

/* Prefetch every line of packet f's fragments, to be copied next: once the
 * destination is streamed, reading the source (the sender's TX buffers in
 * ring order, more than its L2 holds) is what a copy waits for.  Only for
 * packets long enough to be streamed (min; 0: none), never an NS_INDIRECT
 * source (another process's memory).  A prefetch never faults. */
static void prefetch_packet(const struct nmc_frag *fr, const struct nmc_ft *f, uint32_t min)
{
    if (!min || f->len < min)
        return;
    for (uint32_t k = 0; k < f->nfrags; k++) {
        const uint8_t *src = (const uint8_t *)(uintptr_t)fr[k].src;
        if (fr[k].flags & NS_INDIRECT)
            continue;
        for (uint32_t o = 0; o < fr[k].len; o += 64)
            __builtin_prefetch(src + o);
    }
}

/* The common case of a copy: fragments fr[0..n), none longer than a
 * destination buffer, no header change, each into one destination slot
 * from j; returns the slot after the last.  chain: the n fragments are one
 * packet (n <= NETMAP_MAX_FRAGS; the caller prefetches the next one); else
 * n one-slot packets, the next one's source prefetched here.  The ring's
 * geometry is held in locals: a copy writes memory the compiler cannot
 * tell from it. */
static inline __attribute__((always_inline)) uint32_t
put_slots(const struct nmc_frag *restrict fr, uint32_t n, const struct dst_ring *dr, uint32_t j,
          uint32_t *streamed, bool chain)
{
    struct netmap_slot *const slot = dr->slot;
    uint8_t *const bufs = dr->bufs;
    const uint64_t buf_size = dr->buf_size;
    const uint32_t buf_num = dr->buf_num, nslots = dr->nslots, stream_min = dr->stream_min;
    const uint16_t rfrags = (uint16_t)((chain ? n : 1) << 8);      /* NS_RFRAGS */
    uint32_t nstreamed = 0;

    for (uint32_t i = 0; i < n; i++, j = nmc_next(j, nslots)) {
        struct netmap_slot *rs = &slot[j];
        const uint32_t idx = nmc_user_u32(&rs->buf_idx);
        uint32_t len = fr[i].len < buf_size ? fr[i].len : (uint32_t)buf_size;
        if (!chain && stream_min && i + 1 < n)
            prefetch_packet(&fr[i + 1], &(const struct nmc_ft){ .nfrags = 1, .len = fr[i + 1].len },
                            stream_min);
        if (idx < 2 || idx >= buf_num)
            len = 0;
        else if (fr[i].flags & NS_INDIRECT)
            len = read_indirect(fr[i].src, bufs + (uint64_t)idx * buf_size, len) ? len : 0;
        else
            nstreamed += copy_frag(dr, bufs + (uint64_t)idx * buf_size,
                                   (const uint8_t *)(uintptr_t)fr[i].src, len);
        set_len_flags(rs, len, rfrags | (chain && i + 1 < n ? NS_MOREFRAG : 0));
    }
    *streamed += nstreamed;
    return j;
}

/* The destination slots packets list[0..cnt) (list NULL: 0..cnt) take:
 * their fragments, or with split their pkt_slots(); none for a packet that
 * would take more than NETMAP_MAX_FRAGS (deliver() drops it). */
static uint32_t slots_of(const struct nmc_vale_ctx *c, const uint16_t *list, uint32_t cnt,
                         const struct vhdr_change *vc, uint64_t buf_size, bool split)
{
    uint32_t want = 0;

    for (uint32_t i = 0; i < cnt; i++) {
        const struct nmc_ft *f = &c->ft[nth(list, i)];
        uint32_t n = split ? pkt_slots(&c->frag[f->frag], f, vc, buf_size) : f->nfrags;
        want += n <= NETMAP_MAX_FRAGS ? n : 0;
    }
    return want;
}

/* Deliver the packets list[0..cnt) of this flush (with list NULL: packets
 * 0..cnt; nfrag: their fragments, if known) to ring `r` of port q. */
static void deliver(struct nmc_port *p, uint32_t q, uint32_t r, const struct vhdr_change *vc,
                    const uint16_t *list, uint32_t cnt, uint32_t nfrag)
{
    struct nmc_vale_ctx *c = nmc_vale_of(p);
    struct nmc_vdst *d = &c->dst[q];
    uint32_t obj = d->rx_first_obj + r, got, start = 0, id, taken = 0, used = 0, want, skipped = 0;
    int lease;
    struct nmc_kring *kr = &nmc_krings(d->reg.ctl, &d->reg.g)[obj];
    struct netmap_ring *dring = nmc_ring_obj(d->reg.mem, &d->reg.g, obj);
    struct nmc_lease who;
    const struct dst_ring dr = {
        .slot = dring->slot, .bufs = nmc_buf(d->reg.mem, &d->reg.g, 0),
        .buf_size = d->reg.g.buf_size, .buf_num = d->reg.g.buf_num, .nslots = d->nslots,
        .stream_min = __atomic_load_n(&c->m.sw->ports[q].stream_min, __ATOMIC_RELAXED),
        .stream_max = (uint32_t)(d->reg.g.buf_size < p->g.buf_size ? d->reg.g.buf_size
                                                                   : p->g.buf_size) & ~63u,
    };
    /* a fragment longer than the destination's buffers takes several slots */
    const bool split = (uint64_t)c->max_frag + vc->prepend > dr.buf_size;
    uint32_t streamed = 0;
    bool published;                     /* the reader has new slots: wake it */

    want = !list && !split && nfrag ? nfrag : slots_of(c, list, cnt, vc, dr.buf_size, split);
    nmc_vale_lease_self(p, &who);
    lease = nmc_lease_get(kr, dring, p->rundir, d->kgen[r], d->nslots, want, &who, &start, &id,
                          &published);
    if (lease < 0)
        d->gen = ~__atomic_load_n(&c->m.sw->ports[q].gen, __ATOMIC_RELAXED);  /* map again */
    got = lease > 0 ? (uint32_t)lease : 0;
    if (!list && want == cnt && !split && !vc->strip && !vc->prepend) {   /* one slot each */
        taken = cnt < got ? cnt : got;
        start = put_slots(c->frag, taken, &dr, start, &streamed, false);
        used = taken;
    }
    while (taken < cnt) {
        const struct nmc_ft *f = &c->ft[nth(list, taken)];
        const uint32_t n = split ? pkt_slots(&c->frag[f->frag], f, vc, dr.buf_size) : f->nfrags;
        if (n > NETMAP_MAX_FRAGS) {     /* a longer chain than netmap's: not for this ring */
            taken++;
            skipped++;
            continue;
        }
        if (used + n > got)
            break;
        if (++taken < cnt) {
            const struct nmc_ft *next = &c->ft[nth(list, taken)];
            prefetch_packet(&c->frag[next->frag], next, dr.stream_min);
        }
        if (n == f->nfrags && !vc->strip && !vc->prepend)   /* each fragment fits a slot */
            start = put_slots(&c->frag[f->frag], f->nfrags, &dr, start, &streamed, true);
        else
            start = put_packet(&c->frag[f->frag], f, &dr, vc, start, n, &streamed);
        used += n;
    }
    if (streamed) {
        nmc_copy_stream_end();
        p->st.streamed += streamed;
    }
    if (got)
        published |= nmc_lease_put(kr, dring, p->rundir, d->kgen[r], d->nslots, id, start);
    if (published)
        nmc_wake_sleepers_in(p, kr, d->reg.ctl + d->reg.g.holders_ofs, d->reg.mem_id);
    __atomic_fetch_add(&c->m.sw->ports[q].forwarded, taken - skipped, __ATOMIC_RELAXED);
    if (taken - skipped < cnt)
        __atomic_fetch_add(&c->m.sw->ports[q].drops, cnt - taken + skipped, __ATOMIC_RELAXED);
}

static void list_add(struct nmc_vale_ctx *c, uint32_t q, uint16_t i, uint32_t *nactive)
{
    struct nmc_vdst *d = &c->dst[q];

    if (d->nlist == 0)
        c->active[(*nactive)++] = (uint16_t)q;
    d->list[d->nlist++] = i;
}

/* Pass 1 result -> per-destination lists, in packet order. */
static uint32_t build_lists(struct nmc_port *p, uint32_t nft)
{
    struct nmc_vale_ctx *c = nmc_vale_of(p);
    struct nmc_switch *sw = c->m.sw;
    uint16_t live[NMC_SW_MAXPORTS];
    uint32_t nlive = 0, nactive = 0;
    bool bcast = false;

    for (uint32_t i = 0; i < nft; i++)
        bcast |= c->ft[i].dst == NMC_BCAST;
    for (uint32_t q = 0; bcast && q < NMC_SW_MAXPORTS; q++)
        if (q != c->me && __atomic_load_n(&sw->ports[q].state, __ATOMIC_ACQUIRE) == NMC_LIVE)
            live[nlive++] = (uint16_t)q;
    for (uint32_t i = 0; i < nft; i++) {
        uint16_t q = c->ft[i].dst;
        if (q == NMC_NOPORT) {
            __atomic_fetch_add(&sw->ports[c->me].tx_dropped, 1, __ATOMIC_RELAXED);
        } else if (q == NMC_BCAST) {
            for (uint32_t k = 0; k < nlive; k++)
                list_add(c, live[k], (uint16_t)i, &nactive);
        } else {
            list_add(c, q, (uint16_t)i, &nactive);
        }
    }
    return nactive;
}

/* The header change towards port q; with one, the packets of its list
 * that ask for an offload are dropped (counted in our tx_dropped). */
static struct vhdr_change vhdr_change_to(struct nmc_vale_ctx *c, uint32_t q)
{
    struct nmc_vdst *d = &c->dst[q];
    uint32_t dst_hdr = nmc_vhdr_len(&c->m.sw->ports[q]), n = 0;

    if (dst_hdr == c->src_hdr)
        return (struct vhdr_change){ 0, 0 };
    for (uint32_t i = 0; i < d->nlist; i++)
        if (!c->ft[d->list[i]].offload)
            d->list[n++] = d->list[i];
    if (n < d->nlist)
        __atomic_fetch_add(&c->m.sw->ports[c->me].tx_dropped, d->nlist - n, __ATOMIC_RELAXED);
    d->nlist = n;
    return (struct vhdr_change){ c->src_hdr, dst_hdr };
}

/* The one unicast port every packet of the flush goes to, or NMC_NOPORT. */
static uint32_t sole_destination(const struct nmc_vale_ctx *c, uint32_t nft)
{
    uint16_t q = c->ft[0].dst;

    for (uint32_t i = 1; i < nft; i++)
        if (c->ft[i].dst != q)
            return NMC_NOPORT;
    return q < NMC_SW_MAXPORTS ? q : NMC_NOPORT;
}

/* The common case, one unicast port for the whole flush with the same
 * virtio-net header length as ours: no lists, one lease.  false if the
 * flush is not that (nothing done). */
static bool flush_to_one(struct nmc_port *p, struct nmc_lring *lr, uint32_t nft, uint32_t nfrag)
{
    struct nmc_vale_ctx *c = nmc_vale_of(p);
    const struct vhdr_change same = { 0, 0 };
    uint32_t q = sole_destination(c, nft);

    if (q == NMC_NOPORT || nmc_vhdr_len(&c->m.sw->ports[q]) != c->src_hdr)
        return false;
    if (dst_map(p, q) < 0)
        __atomic_fetch_add(&c->m.sw->ports[q].drops, nft, __ATOMIC_RELAXED);
    else
        deliver(p, q, lr->id % c->dst[q].nrx, &same, NULL, nft, nfrag);
    return true;
}

/* Pass 2: per destination, unicast to ring (src ring mod its rings) and
 * broadcast to ring 0, each in packet order. */
static void flush(struct nmc_port *p, struct nmc_lring *lr, uint32_t nft, uint32_t nfrag)
{
    struct nmc_vale_ctx *c = nmc_vale_of(p);
    uint16_t sel[NMC_BDG_BATCH_MAX];
    uint32_t nactive;

    if (nft == 0 || flush_to_one(p, lr, nft, nfrag))
        return;
    nactive = build_lists(p, nft);

    for (uint32_t a = 0; a < nactive; a++) {
        uint32_t q = c->active[a];
        struct nmc_vdst *d = &c->dst[q];
        struct vhdr_change vc;
        uint32_t r, n0 = 0, n1 = 0;
        if (dst_map(p, q) < 0) {
            __atomic_fetch_add(&c->m.sw->ports[q].drops, d->nlist, __ATOMIC_RELAXED);
            d->nlist = 0;
            continue;
        }
        vc = vhdr_change_to(c, q);
        r = lr->id % d->nrx;
        if (r == 0) {
            deliver(p, q, 0, &vc, d->list, d->nlist, 0);
        } else {
            for (uint32_t i = 0; i < d->nlist; i++) {
                if (c->ft[d->list[i]].dst == NMC_BCAST)
                    sel[n1++] = d->list[i];
                else
                    d->list[n0++] = d->list[i];
            }
            deliver(p, q, r, &vc, d->list, n0, 0);
            deliver(p, q, 0, &vc, sel, n1, 0);
        }
        d->nlist = 0;
    }
}

/* A persistent port is attached to or detached from a switch by vale-ctl
 * while we hold it: follow. */
static void follow_attachment(struct nmc_port *p)
{
    uint32_t gen = __atomic_load_n(&p->rec->attach_gen, __ATOMIC_ACQUIRE);
    char sw[NMC_SW_NAMELEN];

    if (gen == p->attach_gen)
        return;
    nmc_vale_ctx_close(p);
    nmc_copy_name(sw, sizeof(sw), p->rec->sw);
    if (sw[0] && nmc_vale_ctx_open(p, sw, p->rec->sw_port) < 0)
        return;                         /* on no switch for now: the next sync tries again */
    p->attach_gen = gen;
}

int nmc_vale_txsync_one(struct nmc_port *p, struct nmc_lring *lr)
{
    struct nmc_vale_ctx *c;
    struct nmc_kring *kr = lr->kr;
    uint32_t head, j, npkts = 0, nbytes = 0;
    bool corrupt = false;

    if (nmc_txsync_prologue(lr, &head) < 0) {
        nmc_ring_reinit(lr, &p->g);
        return -EINVAL;
    }
    follow_attachment(p);
    if ((c = nmc_vale_of(p)) == NULL) {        /* on no switch: what is sent goes nowhere */
        kr->hwcur = head;
        kr->hwtail = kr->rtail = lr->ring->tail = nmc_prev(head, lr->n);
        return 0;
    }
    c->last_dmac = ~0ULL;               /* no cached lookup across syncs */
    c->src_hdr = nmc_vhdr_len(&c->m.sw->ports[c->me]);
    for (j = kr->hwcur; j != head;) {
        uint32_t nft = 0, nfrag = 0;
        c->max_frag = 0;
        /* room for a whole chain in the fragment table, whatever the ring's size */
        while (j != head && nft < c->batch && nfrag < NMC_MAXSLOTS) {
            if (c->src_hdr == 0) {
                j = gather_plain(p, lr, j, head, c->batch, &nft, &nfrag, &nbytes);
                if (j == head || nft >= c->batch || nfrag >= NMC_MAXSLOTS)
                    break;
            }
            j = gather(p, lr, j, head, &c->ft[nft], &nfrag, &corrupt);
            if (corrupt)
                break;                  /* sent up to the bad slot, then reinit */
            nbytes += c->ft[nft].len;
            nft++;
        }
        npkts += nft;
        flush(p, lr, nft, nfrag);
        /* done with this batch: a holder killed later will not resend it */
        nmc_store_rel(&kr->hwcur, j);
        if (corrupt)
            break;
    }
    __atomic_fetch_add(&c->m.sw->ports[c->me].sent, npkts, __ATOMIC_RELAXED);
    nmc_ring_count(kr, npkts, nbytes);
    kr->hwcur = j;
    kr->hwtail = kr->rtail = nmc_prev(j, lr->n);        /* fully reclaimed */
    lr->ring->tail = kr->hwtail;
    if (corrupt) {
        nmc_ring_reinit(lr, &p->g);
        return -EINVAL;
    }
    return 0;
}

int nmc_vale_rxsync_one(struct nmc_port *p, struct nmc_lring *lr)
{
    struct netmap_ring *ring = lr->ring;
    struct nmc_kring *kr = lr->kr;
    uint32_t n = lr->n, buf_num = p->g.buf_num, head, j, tail, npkts = 0, nbytes = 0;

    if (nmc_rxsync_prologue(lr, &head) < 0) {
        nmc_ring_reinit(lr, &p->g);
        return -EINVAL;
    }
    for (j = kr->hwcur; j != head; j = nmc_next(j, n)) {
        struct netmap_slot *s = &ring->slot[j];
        uint32_t idx = nmc_user_u32(&s->buf_idx);
        uint16_t flags = nmc_user_u16(&s->flags);
        if (idx < 2 || idx >= buf_num) {        /* senders would copy into nothing */
            nmc_ring_reinit(lr, &p->g);
            return -EINVAL;
        }
        nbytes += nmc_user_u16(&s->len);
        npkts += !(flags & NS_MOREFRAG);
        if (flags & NS_BUF_CHANGED)
            s->flags = flags & ~NS_BUF_CHANGED;
    }
    nmc_store_rel(&kr->hwcur, head);        /* senders may now reuse [.., head) */
    nmc_ring_count(kr, npkts, nbytes);
    tail = nmc_load_acq(&kr->pipe_tail);
    if (tail >= n)
        tail = head;
    kr->hwtail = kr->rtail = tail;
    ring->tail = tail;
    return 0;
}

/* The switch as this port's process sees it: the switch file mapped (and
 * our port's liveness byte held through it), and room for the per-flush
 * lists.  Destination regions are mapped on first forward (dst_map), so an
 * open costs the same whatever the number of ports on the switch; the
 * lists are one anonymous mapping, whose pages are only touched for the
 * destinations a flush uses. */
int nmc_vale_ctx_open(struct nmc_port *p, const char *sw, uint32_t me)
{
    struct nmc_vale_ctx *c = calloc(1, sizeof(*c));
    size_t lists;
    int err;

    if (!c)
        return -ENOMEM;
    if ((err = nmc_sw_attach(p->rundir, sw, 0, &c->m)) < 0) {
        free(c);
        return err;
    }
    p->tp = c;
    c->me = me;
    if (p->nrx)                         /* a reader says how it wants its frames */
        __atomic_store_n(&c->m.sw->ports[me].stream_min, nmc_vale_stream_min(), __ATOMIC_RELAXED);
    c->batch = c->m.sw->bridge_batch;
    if (c->batch < 1 || c->batch > NMC_BDG_BATCH_MAX)
        c->batch = NMC_BDG_BATCH;
    lists = (size_t)NMC_SW_MAXPORTS * c->batch * sizeof(uint16_t);
    c->lists = mmap(NULL, lists, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (c->lists == MAP_FAILED)
        c->lists = NULL;
    for (uint32_t q = 0; c->lists && q < NMC_SW_MAXPORTS; q++) {
        c->dst[q].reg.fd = -1;
        c->dst[q].list = c->lists + (size_t)q * c->batch;
    }
    c->ft = calloc(c->batch, sizeof(*c->ft));
    c->frag = calloc(NMC_MAXSLOTS + NETMAP_MAX_FRAGS, sizeof(*c->frag));
    err = !c->lists || !c->ft || !c->frag ? -ENOMEM : nmc_sw_hold(&c->m, me);
    if (err < 0)
        nmc_vale_ctx_close(p);
    return err;
}

void nmc_vale_ctx_close(struct nmc_port *p)
{
    struct nmc_vale_ctx *c = nmc_vale_of(p);

    if (!c)
        return;
    for (uint32_t q = 0; q < NMC_SW_MAXPORTS; q++)
        if (c->dst[q].reg.ctl)
            nmc_region_detach(&c->dst[q].reg);
    if (c->lists)
        munmap(c->lists, (size_t)NMC_SW_MAXPORTS * c->batch * sizeof(uint16_t));
    free(c->ft);
    free(c->frag);
    nmc_sw_detach(&c->m);
    free(c);
    p->tp = NULL;
}

void nmc_vale_counters(const struct nmc_port *p, struct nmc_port_stats *st)
{
    const struct nmc_vale_ctx *c = nmc_vale_of(p);
    const struct nmc_sw_port *sp;

    if (!c)
        return;                         /* on no switch */
    sp = &c->m.sw->ports[c->me];

    st->rx_dropped = __atomic_load_n(&sp->drops, __ATOMIC_RELAXED);
    st->tx_dropped = __atomic_load_n(&sp->tx_dropped, __ATOMIC_RELAXED);
    st->forwarded = __atomic_load_n(&sp->forwarded, __ATOMIC_RELAXED);
}
