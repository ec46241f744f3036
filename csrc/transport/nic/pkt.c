/*
 * pkt.c -- netmap's emulated ("generic") NIC mode over AF_PACKET.
 *
 * Per bound queue: an RX socket with a TPACKET_V3 ring (blocks of frames
 * the kernel hands over whole; PACKET_IGNORE_OUTGOING, so a port does not
 * receive what it sends; a VLAN header the kernel moved into the frame's
 * metadata is put back, so frames arrive as on the wire, as with AF_XDP) and a TX socket with a TPACKET_V2 ring
 * (PACKET_QDISC_BYPASS, PACKET_LOSS so a malformed frame cannot block it).
 * Several queues: the RX sockets form a PACKET_FANOUT_CBPF group, so ring k
 * gets the frames the NIC received on queue k (mod the ring count); one
 * queue of several: a classic BPF filter on the same queue number.  The
 * queue is the kernel's skb_get_rx_queue(): queue_mapping - 1 when a driver
 * recorded it, and queue 0 when none did (veth without NAPI), as generic XDP
 * counts -- PACKET_FANOUT_QM would use queue_mapping itself, one off.  Data
 * is copied between kernel frames and netmap buffers, in C, a batch per sync.
 */
#define _GNU_SOURCE
#include "nmc_nic.h"

#include <errno.h>
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <endian.h>
#include <net/if.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

/* The kernel hands a block over when it is full or RX_TOV_MS after it was
 * opened, so sparse traffic takes a block per millisecond however small its
 * frames: many small blocks hold more milliseconds of it (a receiver that
 * does not sync for a while) than a few large ones of the same memory.
 * A block holds the longest frame the interface can hand up (rx_block_for)
 * and is at least RX_BLOCK_MIN: 64 of those, 2 MiB, stay in a core's
 * cache, where 64 of 128 KiB made the kernel's copy into the ring and ours
 * out of it fetch cold lines (BENCHMARKS.md, "AF_PACKET: an RX ring that
 * stays in cache"). */
#define RX_BLOCK_MIN (32u << 10)
#define RX_BLOCKS  64u
#define RX_TOV_MS  1u
/* RX_FRAME_ROOM covers the block's and the frame's headers. */
#define RX_FRAME_ROOM 256u
#define TX_DATA    (TPACKET_ALIGN(sizeof(struct tpacket2_hdr)))

/* The kernel's TX ring holds a frame from the txsync that copies it in
 * until the device frees what it was handed: on a veth within the send()
 * that hands it over, on a NIC at TX completion.  A txsync with more to
 * send than the ring has free frames sends what it queued and goes on with
 * the frames that send() gave back; frames still the device's wait for a
 * later txsync.  So the ring is the most frames in flight, and it is kept
 * small enough to stay in this CPU's cache: at most TX_RING_BYTES of frames
 * (256 of 2 KiB), but at least TX_MIN_FRAMES (more bytes for jumbo frames),
 * and never more than the netmap ring's slots.  A ring of one frame per
 * slot of a 1024-slot ring (2 MiB) made each copy in fetch cold lines
 * (BENCHMARKS.md, "AF_PACKET: a TX ring that stays in cache"). */
#define TX_RING_BYTES (512u << 10)
#define TX_MIN_FRAMES 32u
#define TX_OWED_WAIT_MS 10

/* The header line of the RX block the kernel is filling is where it counts
 * every frame it adds (num_pkts, blk_len), next to the status we wait on.
 * Each look from here takes that line from the CPU running the receive
 * path, whose next frame then waits for it: a receiver spinning on rxsync
 * cost a sender on veth a fifth of its rate (BENCHMARKS.md, "AF_PACKET
 * receive: the block header line").  The kernel writes the next block's
 * header only when it hands this one over and opens that one, so a
 * spinning rxsync watches that line instead, which stays in its cache, and
 * looks at the block itself when it changed; and anyway when the previous
 * rxsync was more than RX_SPIN_GAP before (a caller that waited in between,
 * in poll(2) or elsewhere), after a wait in nmc_poll() or nmc_port_drain(),
 * and at least every RX_LOOK_GAP (should a kernel ever hand a block over
 * without opening the next).  Units: TSC cycles (about 1 us and 10-20 us
 * at 2-4 GHz), elsewhere ns. */
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
static inline uint64_t look_clock(void) { return __rdtsc(); }
#define RX_SPIN_GAP 2000u
#define RX_LOOK_GAP 40000u
#else
#include <time.h>
static inline uint64_t look_clock(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}
#define RX_SPIN_GAP 1000u
#define RX_LOOK_GAP 15000u
#endif

struct nmc_psock {
    int rx_fd, tx_fd;
    int claim_fd[2];                /* its queue's claims, TX and RX (nmc_nic_claim), or -1 */
    uint8_t *rx_map, *tx_map;
    size_t rx_len, tx_len;
    uint32_t rx_block;              /* bytes of an RX ring block (rx_block_for) */
    uint32_t block, in_block;       /* RX cursor: block, packets done in it */
    uint64_t rx_looked;             /* look_clock() when the block was found the kernel's, or 0 */
    uint64_t rx_synced;             /* look_clock() at the last look for a block */
    uint64_t rx_next_seq;           /* the next block's seq_num when rx_looked was set */
    uint8_t *next;                  /* RX cursor: next packet header */
    uint32_t tx_frames, tx_frame_size, tx_cur;
    uint32_t tx_vnet;               /* bytes of virtio_net_hdr before each TX frame, or 0 */
    uint32_t tx_max;                /* longest frame the interface takes (its MTU + 14, at open) */
    bool tx_owed;                   /* the last send() failed: frames it left requested wait for one */
    uint64_t rx_truncated, tx_too_big, rx_seen, rx_drops;
};

static int setopt(int fd, int level, int opt, int v)
{
    return setsockopt(fd, level, opt, &v, sizeof(v)) < 0 ? -errno : 0;
}

/* The longest frame the rings are sized for: one of the MTU with its
 * Ethernet and VLAN headers, but never more than a 64 KiB packet with
 * them, whatever the MTU (a loopback's may be 2 GiB), which is also what an
 * interface that aggregates or segments hands up (on a veth, its peer's
 * unsegmented frames).  A longer TX chain is dropped and counted in
 * tx_too_big; a longer received frame arrives cut (rx_truncated). */
#define FRAME_MAX ((64u << 10) + ETH_HLEN + 4)

static uint32_t mtu_frame(int mtu)
{
    return mtu > 0 && (uint32_t)mtu < FRAME_MAX - ETH_HLEN - 4 ? (uint32_t)mtu + ETH_HLEN + 4 : FRAME_MAX;
}

static int if_mtu(int fd, const char *ifname)
{
    struct ifreq ifr;

    memset(&ifr, 0, sizeof(ifr));
    nmc_copy_name(ifr.ifr_name, sizeof(ifr.ifr_name), ifname);
    return ioctl(fd, SIOCGIFMTU, &ifr) < 0 ? 1500 : ifr.ifr_mtu;
}

/* The RX block: the smallest power of two from RX_BLOCK_MIN that holds the
 * longest frame the interface can hand up, FRAME_MAX when it aggregates or
 * segments anything (nic_offload.c), else a frame of its MTU.  Frames
 * longer than a block arrive cut (rx_truncated): those of a veth's peer
 * that segments what this end does not, those of a device stacked on one
 * that aggregates while its own features are off, those after an offload
 * is switched on or the MTU raised while the port is open, and those
 * beyond FRAME_MAX. */
static uint32_t rx_block_for(int fd, const char *ifname, int mtu)
{
    uint32_t frame = nmc_nic_aggregates(fd, ifname) ? FRAME_MAX : mtu_frame(mtu);
    uint32_t block = RX_BLOCK_MIN;

    while (block < frame + RX_FRAME_ROOM)
        block <<= 1;
    return block;
}

static int bind_ll(int fd, uint32_t ifindex, uint16_t proto)
{
    struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(proto),
                               .sll_ifindex = (int)ifindex };

    return bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0 ? -errno : 0;
}

/* The first three instructions of both programs below leave in A the rx
 * queue of the frame: queue_mapping - 1 if recorded, else 0. */
#define RXQ_INSNS \
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_QUEUE)), \
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0), \
    BPF_STMT(BPF_ALU | BPF_SUB | BPF_K, 1)

/* Not the frames a port's host TX ring put into the interface's ingress
 * (marked NMC_HOST_MARK by bpf/host_divert.bpf.c): they are for the
 * stack.  q >= 0: only frames of rx queue q. */
static int queue_filter(int fd, int q)
{
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_MARK)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NMC_HOST_MARK, 6, 0),
        BPF_STMT(BPF_JMP | BPF_JA, q < 0 ? 4 : 0),      /* any queue: accept */
        RXQ_INSNS,
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)q, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),
        BPF_STMT(BPF_RET | BPF_K, 0),
    };
    struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };

    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0 ? -errno : 0;
}

/* Join fanout group `id`: the n sockets join in ring order, so member k
 * is ring k, and the group's program picks member rxq mod n. */
static int join_fanout(int fd, int id, uint32_t n)
{
    struct sock_filter code[] = {
        RXQ_INSNS,
        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),
        BPF_STMT(BPF_RET | BPF_A, 0),
    };
    struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };
    int err = setopt(fd, SOL_PACKET, PACKET_FANOUT, id | (PACKET_FANOUT_CBPF << 16));

    if (err < 0)
        return err;
    return setsockopt(fd, SOL_PACKET, PACKET_FANOUT_DATA, &prog, sizeof(prog)) < 0 ? -errno : 0;
}

/* Drop every frame: the filter of a receive socket until it is bound and,
 * with several queues, until every ring's socket is in the fanout group
 * (the kernel takes only a bound socket into a group, a bound one outside
 * it gets every frame, and a group not yet whole hands its members what
 * the later ones will get). */
static int drop_all(int fd)
{
    struct sock_filter code[] = { BPF_STMT(BPF_RET | BPF_K, 0) };
    struct sock_fprog prog = { .len = 1, .filter = code };

    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0 ? -errno : 0;
}

/* The RX socket of one ring: in fanout group fanout_id of `members` rings
 * (filtering nothing in yet: pkt_attach opens the group once it is whole),
 * or (fanout_id < 0) of the one queue filter_q (-1: every queue). */
static int open_rx(struct nmc_psock *k, uint32_t ifindex, int fanout_id, uint32_t members,
                   int filter_q, uint32_t block)
{
    struct tpacket_req3 req = { .tp_block_size = block, .tp_block_nr = RX_BLOCKS,
                                .tp_frame_size = 2048, .tp_frame_nr = block / 2048 * RX_BLOCKS,
                                .tp_retire_blk_tov = RX_TOV_MS };
    int err;

    if ((err = setopt(k->rx_fd, SOL_PACKET, PACKET_VERSION, TPACKET_V3)) < 0 ||
        (err = setopt(k->rx_fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)) < 0 ||
        (err = drop_all(k->rx_fd)) < 0)
        return err;
    if (setsockopt(k->rx_fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0)
        return -errno;
    k->rx_block = block;
    k->rx_len = (size_t)block * RX_BLOCKS;
    k->rx_map = mmap(NULL, k->rx_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, k->rx_fd, 0);
    if (k->rx_map == MAP_FAILED) {
        k->rx_map = NULL;
        return -errno;
    }
    if ((err = bind_ll(k->rx_fd, ifindex, ETH_P_ALL)) < 0)
        return err;
    if (fanout_id >= 0)
        return join_fanout(k->rx_fd, fanout_id, members);
    return queue_filter(k->rx_fd, filter_q);    /* replaces drop_all's */
}

static int open_tx(struct nmc_psock *k, uint32_t ifindex, uint32_t frames, int mtu)
{
    uint32_t fs = 2048, per_block, cap;
    struct tpacket_req req;
    int err;

    while (fs < mtu_frame(mtu) + TX_DATA)
        fs <<= 1;
    cap = TX_RING_BYTES / fs > TX_MIN_FRAMES ? TX_RING_BYTES / fs : TX_MIN_FRAMES;
    if (frames > cap)
        frames = cap;
    per_block = fs >= NMC_PAGE ? 1 : NMC_PAGE / fs;
    frames = frames > per_block ? frames / per_block * per_block : per_block;  /* whole blocks */
    req = (struct tpacket_req){ .tp_block_size = fs * per_block, .tp_block_nr = frames / per_block,
                                .tp_frame_size = fs, .tp_frame_nr = frames };
    if ((err = setopt(k->tx_fd, SOL_PACKET, PACKET_VERSION, TPACKET_V2)) < 0 ||
        (err = setopt(k->tx_fd, SOL_PACKET, PACKET_LOSS, 1)) < 0)
        return err;
    setopt(k->tx_fd, SOL_PACKET, PACKET_QDISC_BYPASS, 1);      /* optional */
    /* With a virtio_net_hdr whose hdr_len is the whole frame, the kernel
     * copies each frame into the skb's head instead of pointing page
     * fragments at the ring, which a veth (or any forward into a receive
     * path) would otherwise copy again into freshly allocated pages.
     * Optional: without it the frames go out as fragments. */
    k->tx_vnet = setopt(k->tx_fd, SOL_PACKET, PACKET_VNET_HDR, 1) == 0 ? sizeof(struct virtio_net_hdr) : 0;
    k->tx_max = (uint32_t)mtu + ETH_HLEN;
    if (setsockopt(k->tx_fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)) < 0)
        return -errno;
    k->tx_len = (size_t)fs * frames;
    /* Room in the send buffer for the skbs of every frame in flight (the
     * kernel doubles the value it is given), or a send() on a device that
     * holds them stops part-way with frames still to go.  Optional. */
    if (setopt(k->tx_fd, SOL_SOCKET, SO_SNDBUFFORCE, (int)k->tx_len) < 0)
        setopt(k->tx_fd, SOL_SOCKET, SO_SNDBUF, (int)k->tx_len);
    k->tx_map = mmap(NULL, k->tx_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, k->tx_fd, 0);
    if (k->tx_map == MAP_FAILED) {
        k->tx_map = NULL;
        return -errno;
    }
    k->tx_frames = frames;
    k->tx_frame_size = fs;
    return bind_ll(k->tx_fd, ifindex, 0);       /* protocol 0: this socket receives nothing */
}

static void close_pkt(struct nmc_psock *k)
{
    if (k->rx_map)
        munmap(k->rx_map, k->rx_len);
    if (k->tx_map)
        munmap(k->tx_map, k->tx_len);
    if (k->rx_fd >= 0)
        close(k->rx_fd);
    if (k->tx_fd >= 0)
        close(k->tx_fd);
    for (int d = 0; d < 2; d++)
        if (k->claim_fd[d] >= 0)
            close(k->claim_fd[d]);
    k->rx_fd = k->tx_fd = k->claim_fd[0] = k->claim_fd[1] = -1;
    k->rx_map = k->tx_map = NULL;
}

/* Bytes [pos, pos + n) of a frame as it was on the wire: `data`, with the
 * 4-byte VLAN header `tag` (when not NULL) back after the MAC addresses. */
static void wire_bytes(uint8_t *dst, uint32_t pos, uint32_t n, const uint8_t *data,
                       const uint8_t *tag)
{
    while (n) {
        const uint8_t *src = tag == NULL ? data + pos : pos < 12 ? data + pos
                             : pos < 16 ? tag + (pos - 12) : data + pos - 4;
        uint32_t run = tag == NULL ? n : pos < 12 ? 12 - pos : pos < 16 ? 16 - pos : n;
        if (run > n)
            run = n;
        memcpy(dst, src, run);
        dst += run;
        pos += run;
        n -= run;
    }
}

/* Copy one frame of `len` wire bytes into slots from j; returns the slot
 * after it. */
static uint32_t put_frame(struct nmc_port *p, struct nmc_lring *lr, uint32_t j,
                          const uint8_t *data, uint32_t len, const uint8_t *tag)
{
    struct netmap_ring *ring = lr->ring;
    uint32_t bs = p->g.buf_size, pos = 0;

    do {
        struct netmap_slot *s = &ring->slot[j];
        uint32_t chunk = len - pos > bs ? bs : len - pos;
        if (s->buf_idx < 2 || s->buf_idx >= p->g.buf_num) {
            s->len = 0;                 /* corrupt slot: the frame is cut */
        } else {
            wire_bytes(nmc_buf(p->mem, &p->g, s->buf_idx), pos, chunk, data, tag);
            s->len = (uint16_t)chunk;
        }
        pos += chunk;
        s->flags = pos < len ? NS_MOREFRAG : 0;
        j = nmc_next(j, lr->n);
    } while (pos < len);
    return j;
}

/* The VLAN header the kernel moved from frame h into its metadata (as it
 * does on receive, before packet taps), into tag[4]; NULL when none. */
static const uint8_t *vlan_tag(const struct tpacket3_hdr *h, uint8_t tag[4])
{
    uint16_t tpid = ETH_P_8021Q, tci = (uint16_t)h->hv1.tp_vlan_tci;

    if (!(h->tp_status & TP_STATUS_VLAN_VALID) || h->tp_snaplen < 12)
        return NULL;
    if ((h->tp_status & TP_STATUS_VLAN_TPID_VALID) && h->hv1.tp_vlan_tpid)
        tpid = h->hv1.tp_vlan_tpid;
    tag[0] = (uint8_t)(tpid >> 8);
    tag[1] = (uint8_t)tpid;
    tag[2] = (uint8_t)(tci >> 8);
    tag[3] = (uint8_t)tci;
    return tag;
}

static struct tpacket_block_desc *block_desc(const struct nmc_psock *k, uint32_t block)
{
    return (void *)(k->rx_map + (size_t)(block % RX_BLOCKS) * k->rx_block);
}

/* Is `block` (not started yet) ours?  While the kernel fills it, a caller
 * spinning on rxsync looks at the next block's header instead (above). */
static bool block_ready(struct nmc_psock *k, uint32_t block)
{
    const struct tpacket_block_desc *next = block_desc(k, block + 1);
    uint64_t now = look_clock(), last = k->rx_synced;
    /* read before the status: a handover between the two reads then shows
     * as a changed seq_num at the next look, never as a missed block */
    uint64_t seq = __atomic_load_n(&next->hdr.bh1.seq_num, __ATOMIC_ACQUIRE);

    k->rx_synced = now;
    if (k->rx_looked && now - last < RX_SPIN_GAP && now - k->rx_looked < RX_LOOK_GAP &&
        seq == k->rx_next_seq)
        return false;
    if (nmc_load_acq(&block_desc(k, block)->hdr.bh1.block_status) & TP_STATUS_USER) {
        k->rx_looked = 0;
        return true;
    }
    k->rx_next_seq = seq;
    k->rx_looked = now;
    return false;
}

/* Frames of the current block(s) into free slots, whole frames only. */
static uint32_t take_frames(struct nmc_port *p, struct nmc_lring *lr, uint32_t j, uint32_t room,
                            uint32_t *pkts, uint32_t *bytes)
{
    struct nmc_psock *k = lr->pkt;

    for (uint32_t scanned = 0; scanned < RX_BLOCKS; scanned++) {
        struct tpacket_block_desc *b = block_desc(k, k->block);
        if (k->in_block == 0 && !block_ready(k, k->block))
            break;
        if (k->in_block == 0)
            k->next = (uint8_t *)b + b->hdr.bh1.offset_to_first_pkt;
        while (k->in_block < b->hdr.bh1.num_pkts) {
            struct tpacket3_hdr *h = (void *)k->next;
            uint8_t tagbuf[4];
            const uint8_t *tag;
            uint32_t len = h->tp_snaplen, nfr;
            if ((uint8_t *)h < (uint8_t *)b || (uint8_t *)h + sizeof(*h) > (uint8_t *)b + k->rx_block ||
                h->tp_mac + (uint64_t)len > k->rx_block - (size_t)((uint8_t *)h - (uint8_t *)b))
                break;                  /* inconsistent block: drop the rest of it */
            tag = vlan_tag(h, tagbuf);
            len += tag ? 4 : 0;         /* the frame as it was on the wire */
            nfr = len ? (len + p->g.buf_size - 1) / p->g.buf_size : 1;
            if (nfr > NETMAP_MAX_FRAGS) {
                k->rx_truncated++;
                len = NETMAP_MAX_FRAGS * p->g.buf_size;
                nfr = NETMAP_MAX_FRAGS;
            }
            if (nfr > room)
                return j;               /* resume here at the next rxsync */
            k->rx_truncated += h->tp_len > h->tp_snaplen;
            j = put_frame(p, lr, j, (uint8_t *)h + h->tp_mac, len, tag);
            room -= nfr;
            (*pkts)++;
            *bytes += len;
            k->next += h->tp_next_offset;
            k->in_block++;
        }
        nmc_store_rel(&b->hdr.bh1.block_status, TP_STATUS_KERNEL);
        k->block = (k->block + 1) % RX_BLOCKS;
        k->in_block = 0;
    }
    return j;
}

static int pkt_rxsync_one(struct nmc_port *p, struct nmc_lring *lr)
{
    uint32_t n = lr->n, head, j, pkts = 0, bytes = 0;
    int err;

    if (lr->host)
        return nmc_nic_host_rxsync(p, lr);
    if ((err = nmc_nic_rx_release(p, lr, &head, nmc_nic_forward_up)) < 0)
        return err;
    j = lr->kr->hwtail;
    j = take_frames(p, lr, j, nmc_dist(j, nmc_prev(head, n), n), &pkts, &bytes);
    nmc_nic_rx_publish(lr, j, pkts, bytes);
    return 0;
}

/* A frame longer than the interface takes: the kernel checks this itself
 * only for frames without a virtio_net_hdr (4 more bytes for 802.1Q). */
static bool beyond_mtu(const struct nmc_psock *k, const uint8_t *frame, uint32_t len)
{
    uint16_t type = len >= ETH_HLEN ? (uint16_t)(frame[12] << 8 | frame[13]) : 0;
    bool tagged = type == ETH_P_8021Q;     /* as packet_extra_vlan_len_allowed() */

    return len > k->tx_max + (tagged ? 4u : 0u);
}

/* The virtio_net_hdr before the frame in TX frame `f`: no offload, and a
 * header as long as the frame, so the kernel copies all of it. */
static void vnet_linear(struct tpacket2_hdr *f, uint32_t len)
{
    struct virtio_net_hdr *v = (void *)((uint8_t *)f + TX_DATA);

    memset(v, 0, sizeof(*v));
    v->hdr_len = htole16((uint16_t)len);
}

/* One chain [j, ...) into TX frame `f`; returns the slot after it, or j
 * when the chain is incomplete (MOREFRAG up to head) or has a slot that
 * names no buffer (*corrupt: the ring needs netmap's reinit). */
static uint32_t put_chain(struct nmc_port *p, struct nmc_lring *lr, uint32_t j, uint32_t head,
                          struct tpacket2_hdr *f, bool *sent, bool *corrupt)
{
    struct nmc_psock *k = lr->pkt;
    uint32_t len = 0, cap = k->tx_frame_size - TX_DATA - k->tx_vnet, start = j;
    uint8_t *dst = (uint8_t *)f + TX_DATA + k->tx_vnet;
    bool more;

    *sent = false;
    do {
        struct netmap_slot *s = &lr->ring->slot[j];
        struct netmap_slot v = nmc_slot_read(s);
        uint32_t l = v.len;
        if (v.buf_idx < 2 || v.buf_idx >= p->g.buf_num || l > p->g.buf_size) {
            *corrupt = true;
            return start;
        }
        if (len + l <= cap)
            memcpy(dst + len, nmc_buf(p->mem, &p->g, v.buf_idx), l);
        len += l;
        more = v.flags & NS_MOREFRAG;
        if (v.flags & NS_BUF_CHANGED)
            s->flags = v.flags & ~NS_BUF_CHANGED;
        j = nmc_next(j, lr->n);
    } while (more && j != head);
    if (more)
        return start;                   /* wait for the rest of the chain */
    if (len == 0 || len > cap || (k->tx_vnet && beyond_mtu(k, dst, len))) {
        k->tx_too_big += len != 0;
        return j;                       /* dropped */
    }
    if (k->tx_vnet)
        vnet_linear(f, len);
    f->tp_len = len + k->tx_vnet;
    nmc_store_rel(&f->tp_status, TP_STATUS_SEND_REQUEST);
    *sent = true;
    return j;
}

/* May this TX frame be written: never handed to the kernel, or sent (with
 * PACKET_LOSS a frame the kernel refused comes back available too)? */
static bool tx_frame_free(const struct tpacket2_hdr *f)
{
    uint32_t status = nmc_load_acq(&f->tp_status);

    return status == TP_STATUS_AVAILABLE || status == TP_STATUS_WRONG_FORMAT;
}

/* Hand the kernel the frames requested so far.  A send() that fails
 * (the interface down, its queue stopped) or stops part-way (the socket's
 * send buffer full: it returns what it sent) leaves the rest requested,
 * the last frame queued among them, and the kernel's cursor on the first:
 * the next txsync asks again, whether or not it has frames of its own to
 * add, and a wait for room sleeps in steps meanwhile (pkt_wait). */
static void tx_kick(struct nmc_psock *k)
{
    uint32_t last = (k->tx_cur + k->tx_frames - 1) % k->tx_frames;
    const struct tpacket2_hdr *f = (void *)(k->tx_map + (size_t)last * k->tx_frame_size);

    k->tx_owed = send(k->tx_fd, NULL, 0, MSG_DONTWAIT) < 0 ||
                 nmc_load_acq(&f->tp_status) == TP_STATUS_SEND_REQUEST;
}

static int pkt_txsync_one(struct nmc_port *p, struct nmc_lring *lr)
{
    struct nmc_psock *k = lr->pkt;
    struct nmc_kring *kr = lr->kr;
    uint32_t n = lr->n, head, j, sent = 0, unsent = 0, bytes = 0;
    bool corrupt = false;

    if (lr->host)
        return nmc_nic_host_txsync(p, lr);
    if (nmc_nic_foreign(p))
        return -EOWNERDEAD;             /* inherited across fork(): the sockets are not ours */
    if (nmc_txsync_prologue(lr, &head) < 0) {
        nmc_ring_reinit(lr, &p->g);
        return -EINVAL;
    }
    if (k->tx_owed)
        tx_kick(k);
    for (j = kr->hwcur; j != head && !corrupt;) {
        struct tpacket2_hdr *f = (void *)(k->tx_map + (size_t)k->tx_cur * k->tx_frame_size);
        uint32_t next;
        bool queued;
        if (!tx_frame_free(f)) {
            if (!unsent && nmc_load_acq(&f->tp_status) != TP_STATUS_SEND_REQUEST)
                break;                  /* the device holds every frame: retry later */
            tx_kick(k);                 /* ours, or requested and never taken */
            unsent = 0;
            if (!tx_frame_free(f))      /* not sent and freed within the send() */
                break;
        }
        next = put_chain(p, lr, j, head, f, &queued, &corrupt);
        if (next == j)
            break;
        if (queued) {
            bytes += f->tp_len - k->tx_vnet;
            sent++;
            unsent++;
            k->tx_cur = (k->tx_cur + 1) % k->tx_frames;
        }
        j = next;
    }
    if (unsent)
        tx_kick(k);
    kr->hwcur = j;
    kr->hwtail = kr->rtail = nmc_prev(j, n);
    lr->ring->tail = kr->hwtail;
    nmc_ring_count(kr, sent, bytes);
    if (corrupt) {                      /* sent up to the bad slot */
        nmc_ring_reinit(lr, &p->g);
        return -EINVAL;
    }
    return 0;
}

static int fanout_id(void)
{
    static int seq;

    return (int)((getpid() * 31 + __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED)) & 0xffff);
}

/* Packet sockets do not exclude each other, so the port claims its rings'
 * queues: a receive queue has one opener (each would get every frame;
 * netmap's openers share one ring, these cannot), a transmit queue any
 * number, each with its own ring, unless one is exclusive (NR_EXCLUSIVE). */
static int claim_queue(struct nmc_port *p, const struct nmc_pipe_req *req, uint32_t k,
                       struct nmc_psock *pk)
{
    bool x = (req->flags & NR_EXCLUSIVE) != 0;

    if (k < p->ntx &&
        (pk->claim_fd[0] = nmc_nic_claim(req->ifindex, p->holder->first[0] + k, true, x)) < 0)
        return pk->claim_fd[0];
    if (k < p->nrx &&
        (pk->claim_fd[1] = nmc_nic_claim(req->ifindex, p->holder->first[1] + k, false, true)) < 0)
        return pk->claim_fd[1];
    return 0;
}

static int open_queue(struct nmc_port *p, const struct nmc_pipe_req *req, uint32_t k,
                      uint32_t nq, int group)
{
    uint32_t first = nmc_nic_bound_hw(p, 1) ? p->holder->first[1] : p->holder->first[0];
    struct nmc_psock *pk = &p->pkts[k];
    int err, mtu;

    pk->rx_fd = pk->tx_fd = pk->claim_fd[0] = pk->claim_fd[1] = -1;
    p->npkts++;
    if ((err = claim_queue(p, req, k, pk)) < 0)
        return err;
    /* Protocol 0: the socket listens to nothing until open_rx binds it to
     * the interface, after its ring is set up.  Made for every protocol,
     * it would take every interface's frames into that ring until then;
     * and it drops everything until its fanout group is whole.  One queue
     * of several: filter by queue; all of several: fanout. */
    if ((pk->rx_fd = nmc_nic_socket(p, req, AF_PACKET, 0)) < 0)
        return pk->rx_fd;
    mtu = if_mtu(pk->rx_fd, req->parent);
    err = open_rx(pk, req->ifindex, group, nq, req->tx_rings > 1 && nq == 1 ? (int)first : -1,
                  rx_block_for(pk->rx_fd, req->parent, mtu));
    if (err == 0 && (pk->tx_fd = nmc_nic_socket(p, req, AF_PACKET, 0)) < 0)
        err = pk->tx_fd;
    if (err == 0)
        err = open_tx(pk, req->ifindex, p->ntx ? p->tx[k % p->ntx].n : NMC_DEF_SLOTS, mtu);
    return err;
}

/* After the generic open: RX and TX sockets for every bound queue (under
 * the NIC lock, so that a fork sees every socket and closes the child's
 * copies). */
static int pkt_attach(struct nmc_port *p, struct nmc_region *r, const struct nmc_pipe_req *req)
{
    uint32_t hw_tx = nmc_nic_bound_hw(p, 0), hw_rx = nmc_nic_bound_hw(p, 1);
    uint32_t nq = hw_tx > hw_rx ? hw_tx : hw_rx;
    int group = nq > 1 ? fanout_id() : -1, err = 0;

    (void)r;
    p->pkts = calloc(nq + 1, sizeof(*p->pkts));
    p->kfd = calloc(2 * nq + 2, sizeof(*p->kfd));   /* and the tap of the host rings */
    if (!p->pkts || !p->kfd) {           /* detach needs p->pkts: undo both here */
        free(p->pkts);
        free(p->kfd);
        p->pkts = NULL;
        p->kfd = NULL;
        return -ENOMEM;
    }
    if ((err = nmc_nic_join(p)) < 0)
        return err;
    nmc_nic_lock();
    for (uint32_t k = 0; k < nq && err == 0; k++) {
        if ((err = open_queue(p, req, k, nq, group)) < 0)
            break;
        if (k < hw_tx)
            p->tx[k].pkt = &p->pkts[k];
        if (k < hw_rx)
            p->rx[k].pkt = &p->pkts[k];
        p->kfd[p->nkfd++] = (struct nmc_kfd){ p->pkts[k].rx_fd, POLLIN };
        p->kfd[p->nkfd++] = (struct nmc_kfd){ p->pkts[k].tx_fd, POLLOUT };
    }
    for (uint32_t k = 0; k < nq && err == 0 && group >= 0; k++)
        err = queue_filter(p->pkts[k].rx_fd, -1);      /* the group is whole: let frames in */
    nmc_nic_unlock();
    if (err == 0)
        err = nmc_nic_host_attach(p, req);
    return err < 0 ? err : nmc_nic_hold(p, req);
}

/* This process's copies of the port's sockets and rings (lock held). */
void nmc_pkt_close_socks(struct nmc_port *p)
{
    for (int k = 0; p->pkts && k < p->npkts; k++)
        close_pkt(&p->pkts[k]);
}

/* Close the sockets; with the region (region lock held) and in the process
 * that opened the port, give back every buffer in its rings (copied into,
 * so its own, unless the user swapped them with another port's), but not
 * while its holder lives on (`kept`: its device descriptor open elsewhere;
 * the record's destruction gives them back, nmc_nic_destroy). */
static void pkt_leave(struct nmc_port *p, struct nmc_region *r, bool kept)
{
    bool give_back = r && !kept && !nmc_nic_foreign(p);

    if (!p->pkts)
        return;
    nmc_nic_lock();
    nmc_pkt_close_socks(p);
    nmc_nic_unlock();
    if (give_back)
        nmc_nic_reclaim(p, r, NULL);
    nmc_nic_leave(p);
    free(p->pkts);
    p->pkts = NULL;
    p->npkts = 0;
    nmc_nic_forget_fds(p);
}

static void pkt_detach(struct nmc_port *p, struct nmc_region *r)
{
    pkt_leave(p, r, false);
}

static void pkt_detach_kept(struct nmc_port *p, struct nmc_region *r)
{
    pkt_leave(p, r, true);
}

int nmc_pkt_info(struct nmc_port *p, uint32_t k, struct nmc_pkt_info *info)
{
    struct tpacket_stats_v3 st;
    socklen_t len = sizeof(st);

    if (!p->pkts || k >= (uint32_t)p->npkts)
        return -EINVAL;
    memset(info, 0, sizeof(*info));
    info->rx_fd = p->pkts[k].rx_fd;
    info->tx_fd = p->pkts[k].tx_fd;
    if (getsockopt(p->pkts[k].rx_fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) {
        p->pkts[k].rx_seen += st.tp_packets;    /* the kernel resets them on read */
        p->pkts[k].rx_drops += st.tp_drops;
    }
    info->rx_packets = p->pkts[k].rx_seen;
    info->rx_drops = p->pkts[k].rx_drops;
    info->rx_truncated = p->pkts[k].rx_truncated;
    info->tx_too_big = p->pkts[k].tx_too_big;
    info->tx_frame_size = p->pkts[k].tx_frame_size;
    info->tx_frames = p->pkts[k].tx_frames;
    info->rx_block_size = p->pkts[k].rx_block;
    info->rx_blocks = RX_BLOCKS;
    return 0;
}

static int pkt_resolve(const char *rundir, const struct nmc_pipe_req *req, struct nmc_region *r,
                       uint32_t *port)
{
    return nmc_nic_resolve(rundir, req, r, port, NMC_KIND_PKT);
}

/* The next rxsync looks at the blocks at once: after netmap's poll()
 * waited in the kernel, or a caller's own wait on the port's descriptor
 * (nmc_port_drain). */
static void pkt_woken(struct nmc_port *p)
{
    for (int k = 0; k < p->npkts; k++)
        p->pkts[k].rx_looked = 0;
}

/* A wait for TX room while frames are owed a send() (tx_kick: the
 * interface down, say).  The TX socket reads writable whenever its send
 * buffer has room, however full its ring, so a wait on it returns at once,
 * again and again: poll() would spin for as long as the interface stays
 * down.  It sleeps on the port's other descriptors instead, at most
 * TX_OWED_WAIT_MS, and poll() then syncs and asks again. */
static int pkt_wait(struct nmc_port *p, int events, int timeout_ms)
{
    int err;

    for (int k = 0; (events & POLLOUT) && k < p->npkts; k++)
        if (p->pkts[k].tx_owed) {
            events &= ~POLLOUT;
            if (timeout_ms < 0 || timeout_ms > TX_OWED_WAIT_MS)
                timeout_ms = TX_OWED_WAIT_MS;
        }
    err = nmc_nic_wait(p, events, timeout_ms);

    pkt_woken(p);
    return err;
}

static const struct nmc_transport_ops pkt_ops = {
    .name = "afpacket",
    .kind = NMC_KIND_PKT,
    .validate = nmc_nic_validate,
    .resolve = pkt_resolve,
    .attach = pkt_attach,
    .detach = pkt_detach,
    .detach_kept = pkt_detach_kept,
    .txsync_one = pkt_txsync_one,
    .rxsync_one = pkt_rxsync_one,
    .rxsync_long = true,
    .destroy = nmc_nic_destroy,
    .shared_bufs = true,
    .poll_fd = nmc_nic_poll_fd,
    .wait = pkt_wait,
    .woken = pkt_woken,
    .inherited = nmc_nic_foreign,
    .adapter_host_rings = true,
};
NMC_TRANSPORT(pkt_ops)

int nmc_pkt_open(const struct nmc_pipe_req *req, struct nmc_port **out)
{
    return nmc_open_with(req, out, &pkt_ops);
}
