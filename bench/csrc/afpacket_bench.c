/*
 * afpacket_bench.c -- the plain AF_PACKET baseline for `./run bench afxdp`
 * (compiled by the tool at run time; not part of the engine).
 *
 *   afpacket_bench tx IFNAME LEN SECONDS BATCH   sendmmsg() of BATCH frames a call
 *   afpacket_bench rx IFNAME SECONDS WAIT IDLE   recvmmsg() of 64 frames a call
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
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAXBATCH 1024

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

static int run_tx(const char *ifname, unsigned len, double seconds, unsigned batch)
{
    static uint8_t frame[9216];
    static const uint8_t head[14] = { 0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x88, 0xb5 };
    struct mmsghdr msgs[MAXBATCH];
    struct iovec iov;
    uint64_t start, end, sent = 0, calls = 0, limit = (uint64_t)(seconds * 1e9);
    int fd = open_socket(ifname, 0);

    if (len < 14 || len > sizeof(frame) || batch == 0 || batch > MAXBATCH) {
        fprintf(stderr, "bad length or batch\n");
        return 2;
    }
    memcpy(frame, head, sizeof(head));
    for (unsigned k = sizeof(head); k < len; k++)
        frame[k] = (uint8_t)k;
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
    printf("result packets=%llu bytes=%llu elapsed_ns=%llu calls=%llu cpu_ns=%llu\n",
           (unsigned long long)sent, (unsigned long long)(sent * len),
           (unsigned long long)(end - start), (unsigned long long)calls,
           (unsigned long long)process_cpu_ns());
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
    printf("result packets=%llu bytes=%llu elapsed_ns=%llu calls=%llu cpu_ns=%llu\n",
           (unsigned long long)pkts, (unsigned long long)bytes,
           (unsigned long long)(last - first), (unsigned long long)calls,
           (unsigned long long)process_cpu_ns());
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 6 && strcmp(argv[1], "tx") == 0)
        return run_tx(argv[2], (unsigned)atoi(argv[3]), atof(argv[4]), (unsigned)atoi(argv[5]));
    if (argc == 6 && strcmp(argv[1], "rx") == 0)
        return run_rx(argv[2], atof(argv[3]), atof(argv[4]), atof(argv[5]));
    fprintf(stderr, "usage: %s tx IFNAME LEN SECONDS BATCH | rx IFNAME SECONDS WAIT IDLE\n", argv[0]);
    return 2;
}
