/*
 * nm_interop.c -- a netmap program on netmap's legacy API (NETMAP_WITH_LIBS:
 * nm_open, nm_inject, nm_nextpkt, poll, nm_close), built as netmap
 * programs are, `cc $(nmcompat-config --cflags) nm_interop.c
 * $(nmcompat-config --libs)`, that exchanges frames with other programs.
 *
 *   nm_interop rx FORMAT PORT N   prints "ready", then receives exactly N
 *                                 frames (waiting in poll()), each checked
 *                                 against FORMAT; prints "received N"
 *   nm_interop tx FORMAT PORT N   sends N frames of FORMAT (nm_inject,
 *                                 poll() for room, a last NIOCTXSYNC);
 *                                 prints "sent N"
 *
 * FORMAT pktgen: pkt-gen's default frame (60 bytes, Ethernet, IPv4 with a
 * valid header checksum, UDP), checked field by field.  FORMAT seq: frame i
 * of tests/devnetmap/nm_test.h (60 + i % 200 bytes, a pattern of i), in
 * order.  A failure prints "FAIL ..." on stderr and exits 1.
 */
#define NETMAP_WITH_LIBS
#include <net/netmap_user.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nm_test.h"

#define WAIT_MS 10000
#define PKTGEN_LEN 60u

static uint16_t ip_csum(const uint8_t *p, unsigned len)
{
    uint32_t sum = 0;

    for (unsigned i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* pkt-gen's default frame: 10.0.0.1:1234 -> 10.1.0.1:4321, broadcast. */
static void pktgen_frame(uint8_t *f)
{
    static const uint8_t head[] = {
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00,
        0x45, 0x00, 0x00, 46, 0x00, 0x00, 0x40, 0x00, 64, 17, 0x00, 0x00,
        10, 0, 0, 1, 10, 1, 0, 1,
        0x04, 0xd2, 0x10, 0xe1, 0x00, 26, 0x00, 0x00,
    };
    uint16_t sum;

    memset(f, 'x', PKTGEN_LEN);
    memcpy(f, head, sizeof(head));
    sum = ip_csum(f + 14, 20);
    f[24] = (uint8_t)(sum >> 8);
    f[25] = (uint8_t)sum;
}

static void check_pktgen(const uint8_t *f, unsigned len, unsigned i)
{
    CHECK(len == PKTGEN_LEN, "frame %u: %u bytes", i, len);
    CHECK(f[12] == 0x08 && f[13] == 0x00, "frame %u: ethertype %02x%02x", i, f[12], f[13]);
    CHECK(f[14] == 0x45 && f[23] == 17, "frame %u: not IPv4 UDP", i);
    CHECK((unsigned)(f[16] << 8 | f[17]) == len - 14, "frame %u: IP length", i);
    CHECK(ip_csum(f + 14, 20) == 0, "frame %u: IP header checksum", i);
    CHECK((unsigned)(f[38] << 8 | f[39]) == len - 34, "frame %u: UDP length", i);
}

static void check_seq(const uint8_t *f, unsigned len, unsigned i)
{
    char want[2048];

    CHECK(len == frame_len(i), "frame %u: %u bytes, not %u", i, len, frame_len(i));
    fill(want, i, len);
    CHECK(memcmp(f, want, len) == 0, "frame %u: other bytes", i);
}

static void wait_fd(struct nm_desc *d, short events, unsigned done)
{
    struct pollfd pfd = { .fd = NETMAP_FD(d), .events = events };
    int rc = poll(&pfd, 1, WAIT_MS);

    CHECK(rc == 1 && (pfd.revents & events), "poll %s: rc %d revents %x after %u frames",
          events == POLLIN ? "POLLIN" : "POLLOUT", rc, rc > 0 ? pfd.revents : 0, done);
}

static int receive(struct nm_desc *d, int seq, unsigned n)
{
    struct nm_pkthdr h;
    const uint8_t *buf;
    unsigned got = 0;

    printf("ready\n");
    while (got < n) {
        wait_fd(d, POLLIN, got);
        while ((buf = nm_nextpkt(d, &h)) != NULL) {
            CHECK(got < n, "more than %u frames", n);
            if (seq)
                check_seq(buf, h.len, got);
            else
                check_pktgen(buf, h.len, got);
            got++;
        }
    }
    struct pollfd pfd = { .fd = NETMAP_FD(d), .events = POLLIN };
    CHECK(poll(&pfd, 1, 0) == 0 && nm_nextpkt(d, &h) == NULL, "a frame after the %uth", n);
    printf("received %u\n", got);
    return 0;
}

static int send_all(struct nm_desc *d, int seq, unsigned n)
{
    uint8_t frame[2048];
    unsigned sent = 0, len = PKTGEN_LEN;

    if (!seq)
        pktgen_frame(frame);
    while (sent < n) {
        if (seq) {
            len = frame_len(sent);
            fill((char *)frame, sent, len);
        }
        if (nm_inject(d, frame, len))
            sent++;
        else
            wait_fd(d, POLLOUT, sent);  /* netmap's poll syncs the TX ring first */
    }
    /* publishes what nm_inject queued: on a pipe, the frames are in the
     * peer's RX ring from now on, whenever we close */
    CHECK(ioctl(NETMAP_FD(d), NIOCTXSYNC, NULL) == 0, "txsync: %s", strerror(errno));
    printf("sent %u\n", sent);
    return 0;
}

int main(int argc, char **argv)
{
    struct nm_desc *d;
    int seq, rc;

    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc != 5 || (strcmp(argv[1], "rx") && strcmp(argv[1], "tx")) ||
        (strcmp(argv[2], "pktgen") && strcmp(argv[2], "seq"))) {
        fprintf(stderr, "usage: nm_interop rx|tx pktgen|seq PORT N\n");
        return 2;
    }
    seq = strcmp(argv[2], "seq") == 0;
    d = nm_open(argv[3], NULL, 0, NULL);
    CHECK(d != NULL, "nm_open %s: %s", argv[3], strerror(errno));
    if (argv[1][0] == 'r')
        rc = receive(d, seq, (unsigned)strtoul(argv[4], NULL, 10));
    else
        rc = send_all(d, seq, (unsigned)strtoul(argv[4], NULL, 10));
    CHECK(nm_close(d) == 0, "nm_close");
    return rc;
}
