/*
 * afpacket_bench.c -- the plain AF_PACKET programs of the benchmarks: the
 * sockets peer, and the bare TPACKET rings that are the limit of an
 * AF_PACKET port's path (compiled by the tools at run time; not part of the
 * engine).
 *
 *   afpacket_bench tx IFNAME LEN SECONDS BATCH        sendmmsg() of BATCH frames a call
 *   afpacket_bench rx IFNAME SECONDS WAIT IDLE        recvmmsg() of 64 frames a call
 *   afpacket_bench tx-ring IFNAME LEN SECONDS BATCH   TPACKET_V2 TX ring, a kick per BATCH (or full ring)
 *   afpacket_bench rx-ring IFNAME SECONDS WAIT IDLE   TPACKET_V3 RX ring, frames read in place
 *
 * The rings are set up as the engine's AF_PACKET port sets up its own
 * (csrc/transport/nic/pkt.c: 256 TX frames of 2048 bytes behind a
 * virtio_net_hdr that makes the kernel copy each frame into the skb's head,
 * qdisc bypass; 64 RX blocks of 128 KiB retired after 1 ms), with nothing
 * between the program and the rings: the TX frames are written in place,
 * the RX frames only counted.  What the port adds (the copies between its
 * netmap buffers and these rings, its syncs) is what the two differ by.
 * No cut-off program is attached: the frames' ethertype has no handler, so
 * the stack frees them after the packet tap, a little cheaper than the
 * port's TCX drop.
 *
 * Prints "ready" once the socket is set up, then one line
 * "result packets=N bytes=B elapsed_ns=T calls=C cpu_ns=U" (RX: from the first
 * packet to the last; gives up after WAIT seconds without a packet, or IDLE
 * seconds after the last one).  The frame sent is the one the engine's
 * benchmark sends: locally administered MACs, ethertype 0x88B5.  cpu_ns is
 * the process's CPU time (user + system) over its whole life.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_net.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAXBATCH 1024
#define TX_FRAMES 256u          /* as the engine's: 512 KiB of frames (csrc/transport/nic/pkt.c) */
#define TX_FRAME 2048u
#define TX_DATA (TPACKET_ALIGN(sizeof(struct tpacket2_hdr)))
/* Not the engine's 32 KiB blocks of an interface without offloads: a
 * receiver that reads only the headers went faster with the larger ring
 * (BENCHMARKS.md, "AF_PACKET: an RX ring that stays in cache"). */
#define RX_BLOCK (128u << 10)
#define RX_BLOCKS 64u
#define SPIN_NS 20000u

static const uint8_t frame_head[14] = { 0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x88, 0xb5 };

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time of the whole process so far (every thread, user + system) */
static uint64_t process_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int open_socket(const char *ifname, int proto)
{
    struct sockaddr_ll sll;
    int fd = socket(AF_PACKET, SOCK_RAW, htons(proto)), one = 1, big = 32 << 20;

    if (fd < 0) {
        perror("socket(AF_PACKET)");
        exit(1);
    }
    memset(&sll, 0, sizeof(sll));
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(proto);
    sll.sll_ifindex = (int)if_nametoindex(ifname);
    if (sll.sll_ifindex == 0 || bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
        perror(ifname);
        exit(1);
    }
    setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
    return fd;
}

static void fill_frame(uint8_t *frame, unsigned len)
{
    memcpy(frame, frame_head, sizeof(frame_head));
    for (unsigned k = sizeof(frame_head); k < len; k++)
        frame[k] = (uint8_t)k;
}

static void print_result(uint64_t pkts, uint64_t bytes, uint64_t elapsed, uint64_t calls)
{
    printf("result packets=%llu bytes=%llu elapsed_ns=%llu calls=%llu cpu_ns=%llu\n",
           (unsigned long long)pkts, (unsigned long long)bytes, (unsigned long long)elapsed,
           (unsigned long long)calls, (unsigned long long)process_cpu_ns());
}

static int run_tx(const char *ifname, unsigned len, double seconds, unsigned batch)
{
    static uint8_t frame[9216];
    struct mmsghdr msgs[MAXBATCH];
    struct iovec iov;
    uint64_t start, end, sent = 0, calls = 0, limit = (uint64_t)(seconds * 1e9);
    int fd = open_socket(ifname, 0);

    if (len < 14 || len > sizeof(frame) || batch == 0 || batch > MAXBATCH) {
        fprintf(stderr, "bad length or batch\n");
        return 2;
    }
    fill_frame(frame, len);
    iov.iov_base = frame;
    iov.iov_len = len;
    memset(msgs, 0, sizeof(msgs));
    for (unsigned k = 0; k < batch; k++) {
        msgs[k].msg_hdr.msg_iov = &iov;
        msgs[k].msg_hdr.msg_iovlen = 1;
    }
    printf("ready\n");
    fflush(stdout);
    start = end = now_ns();
    while (end - start < limit) {
        int n = sendmmsg(fd, msgs, batch, 0);
        calls++;
        if (n > 0)
            sent += (uint64_t)n;
        else if (n < 0 && errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
            perror("sendmmsg");
            return 1;
        }
        end = now_ns();
    }
    print_result(sent, sent * len, end - start, calls);
    return 0;
}

static int run_rx(const char *ifname, double seconds, double wait, double idle)
{
    static uint8_t bufs[64][2048];
    struct mmsghdr msgs[64];
    struct iovec iov[64];
    struct sockaddr_ll from[64];
    struct timeval tv = { .tv_sec = 0, .tv_usec = 20000 };
    uint64_t t0, now, first = 0, last = 0, pkts = 0, bytes = 0, calls = 0;
    int fd = open_socket(ifname, ETH_P_ALL);

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    for (int k = 0; k < 64; k++) {
        iov[k].iov_base = bufs[k];
        iov[k].iov_len = sizeof(bufs[k]);
        memset(&msgs[k], 0, sizeof(msgs[k]));
        msgs[k].msg_hdr.msg_iov = &iov[k];
        msgs[k].msg_hdr.msg_iovlen = 1;
        msgs[k].msg_hdr.msg_name = &from[k];
        msgs[k].msg_hdr.msg_namelen = sizeof(from[k]);
    }
    printf("ready\n");
    fflush(stdout);
    t0 = now = now_ns();
    for (;;) {
        int n = recvmmsg(fd, msgs, 64, MSG_WAITFORONE, NULL);
        calls++;
        now = now_ns();
        for (int k = 0; k < n; k++) {
            msgs[k].msg_hdr.msg_namelen = sizeof(from[k]);
            if (from[k].sll_pkttype == PACKET_OUTGOING)
                continue;
            pkts++;
            bytes += msgs[k].msg_len;
        }
        if (n > 0) {
            if (!first)
                first = now;
            last = now;
        }
        if ((first && now - first >= (uint64_t)(seconds * 1e9)) ||
            (!first && now - t0 >= (uint64_t)(wait * 1e9)) ||
            (first && now - last >= (uint64_t)(idle * 1e9)))
            break;
    }
    print_result(pkts, bytes, last - first, calls);
    return 0;
}

static void setopt_or_die(int fd, int opt, const void *v, socklen_t len, const char *what)
{
    if (setsockopt(fd, SOL_PACKET, opt, v, len) < 0) {
        perror(what);
        exit(1);
    }
}

static uint8_t *map_ring(int fd, size_t len)
{
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);

    if (m == MAP_FAILED) {
        perror("mmap(packet ring)");
        exit(1);
    }
    return m;
}

/* The TX ring, frames written in place once: each behind a virtio_net_hdr
 * with no offload and hdr_len = the frame's length, as the engine's port
 * writes it; then each send only hands frames back to the kernel (at
 * most BATCH frames a kick, fewer when the ring is full). */
static int run_tx_ring(const char *ifname, unsigned len, double seconds, unsigned batch)
{
    struct tpacket_req req = { .tp_block_size = 4096, .tp_block_nr = TX_FRAMES / 2,
                               .tp_frame_size = TX_FRAME, .tp_frame_nr = TX_FRAMES };
    int fd = open_socket(ifname, 0), v2 = TPACKET_V2, one = 1;
    uint64_t start, end, sent = 0, calls = 0, limit = (uint64_t)(seconds * 1e9);
    unsigned cur = 0, vnet = sizeof(struct virtio_net_hdr);
    uint8_t *ring;

    if (len < 14 || len + vnet > TX_FRAME - TX_DATA || batch == 0 || batch > MAXBATCH) {
        fprintf(stderr, "bad length or batch\n");
        return 2;
    }
    setopt_or_die(fd, PACKET_VERSION, &v2, sizeof(v2), "PACKET_VERSION");
    setopt_or_die(fd, PACKET_LOSS, &one, sizeof(one), "PACKET_LOSS");
    setopt_or_die(fd, PACKET_VNET_HDR, &one, sizeof(one), "PACKET_VNET_HDR");
    setopt_or_die(fd, PACKET_TX_RING, &req, sizeof(req), "PACKET_TX_RING");
    ring = map_ring(fd, (size_t)TX_FRAMES * TX_FRAME);
    for (unsigned k = 0; k < TX_FRAMES; k++) {  /* every frame written once: then only its header */
        struct virtio_net_hdr *h = (void *)(ring + (size_t)k * TX_FRAME + TX_DATA);
        h->hdr_len = htole16((uint16_t)len);
        fill_frame((uint8_t *)(h + 1), len);
    }
    printf("ready\n");
    start = end = now_ns();
    while (end - start < limit) {
        unsigned queued = 0;
        while (queued < batch) {
            struct tpacket2_hdr *f = (void *)(ring + (size_t)cur * TX_FRAME);
            uint32_t status = __atomic_load_n(&f->tp_status, __ATOMIC_ACQUIRE);
            if (status != TP_STATUS_AVAILABLE && status != TP_STATUS_WRONG_FORMAT)
                break;
            f->tp_len = len + vnet;
            __atomic_store_n(&f->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
            cur = (cur + 1) % TX_FRAMES;
            queued++;
        }
        if (queued) {
            if (send(fd, NULL, 0, MSG_DONTWAIT) < 0 && errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
                perror("send(TX ring)");
                return 1;
            }
            calls++;
            sent += queued;
        } else {
            struct pollfd pfd = { .fd = fd, .events = POLLOUT };
            poll(&pfd, 1, 10);
        }
        end = now_ns();
    }
    print_result(sent, sent * len, end - start, calls);
    return 0;
}

/* The next block the kernel has handed over, waiting SPIN_NS spinning and
 * then in poll(); NULL when none came by `deadline`. */
static struct tpacket_block_desc *next_block(int fd, uint8_t *ring, unsigned block, uint64_t deadline)
{
    struct tpacket_block_desc *b = (void *)(ring + (size_t)block * RX_BLOCK);
    uint64_t spin_end = now_ns() + SPIN_NS;

    for (;;) {
        if (__atomic_load_n(&b->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)
            return b;
        if (now_ns() < spin_end)
            continue;
        if (now_ns() >= deadline)
            return NULL;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        poll(&pfd, 1, 20);
        spin_end = now_ns() + SPIN_NS;
    }
}

/* The RX ring, frames counted in place (their headers read). */
static int run_rx_ring(const char *ifname, double seconds, double wait, double idle)
{
    struct tpacket_req3 req = { .tp_block_size = RX_BLOCK, .tp_block_nr = RX_BLOCKS,
                                .tp_frame_size = 2048, .tp_frame_nr = RX_BLOCK / 2048 * RX_BLOCKS,
                                .tp_retire_blk_tov = 1 };
    int fd = socket(AF_PACKET, SOCK_RAW, 0), v3 = TPACKET_V3, one = 1;     /* receives from the bind on */
    uint64_t t0, now, first = 0, last = 0, pkts = 0, bytes = 0, calls = 0;
    struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
                               .sll_ifindex = (int)if_nametoindex(ifname) };
    unsigned block = 0;
    uint8_t *ring;

    if (fd < 0) {
        perror("socket(AF_PACKET)");
        return 1;
    }
    setopt_or_die(fd, PACKET_VERSION, &v3, sizeof(v3), "PACKET_VERSION");
    setopt_or_die(fd, PACKET_IGNORE_OUTGOING, &one, sizeof(one), "PACKET_IGNORE_OUTGOING");
    setopt_or_die(fd, PACKET_RX_RING, &req, sizeof(req), "PACKET_RX_RING");
    ring = map_ring(fd, (size_t)RX_BLOCK * RX_BLOCKS);
    if (sll.sll_ifindex == 0 || bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
        perror(ifname);
        return 1;
    }
    printf("ready\n");
    t0 = now = now_ns();
    for (;;) {
        uint64_t until = first ? (uint64_t)(last + idle * 1e9) : (uint64_t)(t0 + wait * 1e9);
        struct tpacket_block_desc *b = next_block(fd, ring, block, until);
        now = now_ns();
        if (b == NULL)
            break;
        const uint8_t *h = (uint8_t *)b + b->hdr.bh1.offset_to_first_pkt;
        for (uint32_t k = 0; k < b->hdr.bh1.num_pkts; k++) {
            const struct tpacket3_hdr *ph = (const void *)h;
            bytes += ph->tp_snaplen;
            h += ph->tp_next_offset;
        }
        pkts += b->hdr.bh1.num_pkts;
        calls++;
        __atomic_store_n(&b->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
        block = (block + 1) % RX_BLOCKS;
        if (!first)
            first = now;
        last = now;
        if (now - first >= (uint64_t)(seconds * 1e9))
            break;
    }
    print_result(pkts, bytes, last - first, calls);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 6 && strcmp(argv[1], "tx") == 0)
        return run_tx(argv[2], (unsigned)atoi(argv[3]), atof(argv[4]), (unsigned)atoi(argv[5]));
    if (argc == 6 && strcmp(argv[1], "rx") == 0)
        return run_rx(argv[2], atof(argv[3]), atof(argv[4]), atof(argv[5]));
    if (argc == 6 && strcmp(argv[1], "tx-ring") == 0)
        return run_tx_ring(argv[2], (unsigned)atoi(argv[3]), atof(argv[4]), (unsigned)atoi(argv[5]));
    if (argc == 6 && strcmp(argv[1], "rx-ring") == 0)
        return run_rx_ring(argv[2], atof(argv[3]), atof(argv[4]), atof(argv[5]));
    fprintf(stderr, "usage: %s tx|tx-ring IFNAME LEN SECONDS BATCH | rx|rx-ring IFNAME SECONDS WAIT IDLE\n",
            argv[0]);
    return 2;
}
