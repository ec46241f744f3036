/*
 * nm_vnethdr.c -- virtio-net headers on VALE ports through netmap's own fd
 * interface (NETMAP_REQ_PORT_HDR_SET/GET, NR_ACCEPT_VNET_HDR), run under
 * `nmcompat exec`; links nothing of nmcompat.
 *
 *   nm_vnethdr SW     on switch SW ("valeX"): SET/GET of 0, 10 and 12 and
 *                     netmap's errnos (a bad length EINVAL, a port nobody
 *                     opened, a pipe or an interface ENXIO), REGISTER of a
 *                     port with a header without NR_ACCEPT_VNET_HDR EIO;
 *                     then frames between ports a (10), b (10), c (12) and
 *                     d (0): equal lengths pass as they are, the header is
 *                     stripped or a zeroed one prepended otherwise, a
 *                     header asking for a checksum reaches only a port of
 *                     its own length, and the switch learns the MACs after
 *                     the headers (unicast reaches only its port).  Prints
 *                     "vnethdr ok".
 *
 * Forwarding is done in the sender's NIOCTXSYNC, so after it returns the
 * receivers' rings hold what they will get: each step checks them with
 * NIOCRXSYNC, no waiting.
 */
#include "nm_test.h"

#include <stdint.h>

#define BODY 64u                        /* Ethernet header + payload of every frame */
#define MAXHDR 12u

static const uint8_t MAC_BCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static void mac_of(uint8_t mac[6], char who)
{
    const uint8_t m[6] = { 2, 0, 0, 0, 0, (uint8_t)who };

    memcpy(mac, m, 6);
}

/* hdr header bytes (vhdr), then a frame from src to dst whose payload says
 * tag; returns its length. */
static unsigned frame(uint8_t *buf, unsigned hdr, const uint8_t *vhdr, const uint8_t dst[6], char src,
                      uint8_t tag)
{
    memcpy(buf, vhdr, hdr);
    memcpy(buf + hdr, dst, 6);
    mac_of(buf + hdr + 6, src);
    buf[hdr + 12] = 0x88;
    buf[hdr + 13] = 0xb5;
    for (unsigned k = 14; k < BODY; k++)
        buf[hdr + k] = (uint8_t)(tag + k);
    return hdr + BODY;
}

static void send_one(struct port *p, const uint8_t *bytes, unsigned len)
{
    struct netmap_ring *tr = NETMAP_TXRING(p->nifp, 0);
    struct netmap_slot *s;

    CHECK(ioctl(p->fd, NIOCTXSYNC, NULL) == 0 && nm_ring_space(tr) > 0, "room to send");
    s = &tr->slot[tr->head];
    memcpy(NETMAP_BUF(tr, s->buf_idx), bytes, len);
    s->len = (uint16_t)len;
    s->flags = 0;
    tr->head = tr->cur = nm_ring_next(tr, tr->head);
    CHECK(ioctl(p->fd, NIOCTXSYNC, NULL) == 0, "txsync");
}

static void expect_frame(struct port *p, const uint8_t *bytes, unsigned len, const char *what)
{
    struct netmap_ring *rr = NETMAP_RXRING(p->nifp, 0);
    struct netmap_slot *s;

    CHECK(ioctl(p->fd, NIOCRXSYNC, NULL) == 0 && !nm_ring_empty(rr), "%s: a frame", what);
    s = &rr->slot[rr->head];
    CHECK(s->len == len && memcmp(NETMAP_BUF(rr, s->buf_idx), bytes, len) == 0,
          "%s: %u bytes, want %u", what, s->len, len);
    rr->head = rr->cur = nm_ring_next(rr, rr->head);
}

static void expect_none(struct port *p, const char *what)
{
    struct netmap_ring *rr = NETMAP_RXRING(p->nifp, 0);

    CHECK(ioctl(p->fd, NIOCRXSYNC, NULL) == 0 && nm_ring_empty(rr), "%s: nothing", what);
}

static int hdr_set(int fd, const char *name, uint32_t len)
{
    struct nmreq_port_hdr h = { .nr_hdr_len = len };

    return ctrl(fd, name, NETMAP_REQ_PORT_HDR_SET, &h, 0);
}

static int hdr_get(int fd, const char *name)
{
    struct nmreq_port_hdr h = { .nr_hdr_len = 99 };

    return ctrl(fd, name, NETMAP_REQ_PORT_HDR_GET, &h, 0) < 0 ? -1 : (int)h.nr_hdr_len;
}

/* SET/GET and their errnos; port a of the switch is open. */
static void requests(int fd, const char *a, const char *sw)
{
    char absent[64];
    struct port pipe;

    snprintf(absent, sizeof(absent), "%s:nobody", sw);
    for (uint32_t len = 0; len <= 12; len += len == 0 ? 10 : 2)
        CHECK(hdr_set(fd, a, len) == 0 && hdr_get(fd, a) == (int)len, "set/get %u", len);
    for (uint32_t bad = 1; bad < 20; bad++)
        if (bad != 10 && bad != 12)
            CHECK(hdr_set(fd, a, bad) < 0 && errno == EINVAL && hdr_get(fd, a) == 12, "length %u", bad);
    CHECK(hdr_set(fd, absent, 7) < 0 && errno == EINVAL, "length first, then the port");
    CHECK(hdr_set(fd, absent, 10) < 0 && errno == ENXIO, "set, no such port");
    CHECK(hdr_get(fd, absent) < 0 && errno == ENXIO, "get, no such port");
    CHECK(hdr_set(fd, "lo", 10) < 0 && errno == ENXIO, "set on an interface");
    open_port(&pipe, "vnethdrp{1", NR_REG_ALL_NIC);
    CHECK(hdr_set(fd, "vnethdrp{1", 10) < 0 && errno == ENXIO, "set on a pipe");
    CHECK(hdr_set(fd, "vnethdrp{1", 0) < 0 && errno == ENXIO, "set 0 on a pipe");
    CHECK(hdr_get(fd, "vnethdrp{1") == 0, "get on a pipe");
    close_port(&pipe);
}

/* REGISTER of a port with a header: EIO unless NR_ACCEPT_VNET_HDR. */
static void accept_flag(const char *a)
{
    struct nmreq_register reg;
    struct port q;
    int fd = open("/dev/netmap", O_RDWR | O_CLOEXEC);

    CHECK(fd >= 0, "open /dev/netmap");
    memset(&reg, 0, sizeof(reg));
    reg.nr_mode = NR_REG_ALL_NIC;
    CHECK(ctrl(fd, a, NETMAP_REQ_REGISTER, &reg, 0) < 0 && errno == EIO, "register without the flag");
    CHECK(close(fd) == 0, "close");
    open_port_flags(&q, a, NR_REG_ALL_NIC, NR_ACCEPT_VNET_HDR);
    close_port(&q);
}

struct sw {
    struct port a, b, c, d;             /* headers 10, 10, 12, 0 */
};

static void traffic(struct sw *s)
{
    static const uint8_t zero[MAXHDR];
    static const uint8_t plain[MAXHDR] = { 0, 0, 0x34, 0x12, 0x40, 0x05, 0x22, 0, 0x10, 0, 1, 0 };
    static const uint8_t csum[MAXHDR] = { 1, 0, 0x22, 0, 0, 0, 0x22, 0, 0x10, 0 };
    uint8_t sent[128], want[128], mac[6];
    unsigned n, m;

    /* d (no header) broadcasts: zeroed headers prepended, 10 or 12 bytes */
    n = frame(sent, 0, zero, MAC_BCAST, 'd', 1);
    send_one(&s->d, sent, n);
    m = frame(want, 10, zero, MAC_BCAST, 'd', 1);
    expect_frame(&s->a, want, m, "d -> a");
    expect_frame(&s->b, want, m, "d -> b");
    m = frame(want, 12, zero, MAC_BCAST, 'd', 1);
    expect_frame(&s->c, want, m, "d -> c");
    /* c (12) to d, learned past d's missing header: c's header stripped */
    mac_of(mac, 'd');
    n = frame(sent, 12, plain, mac, 'c', 2);
    send_one(&s->c, sent, n);
    m = frame(want, 0, zero, mac, 'c', 2);
    expect_frame(&s->d, want, m, "c -> d");
    expect_none(&s->a, "c -> d, at a");
    expect_none(&s->b, "c -> d, at b");
    /* b (10) broadcasts asking for a checksum: only a, of its own length,
     * can take that, as it is */
    n = frame(sent, 10, csum, MAC_BCAST, 'b', 3);
    send_one(&s->b, sent, n);
    expect_frame(&s->a, sent, n, "b -> a, checksum asked");
    expect_none(&s->c, "checksum asked, at c");
    expect_none(&s->d, "checksum asked, at d");
    /* a (10) to b, learned past b's header: as it is */
    mac_of(mac, 'b');
    n = frame(sent, 10, plain, mac, 'a', 4);
    send_one(&s->a, sent, n);
    expect_frame(&s->b, sent, n, "a -> b");
    expect_none(&s->c, "a -> b, at c");
    expect_none(&s->d, "a -> b, at d");
    /* a (10) to c (12), learned past c's header: a zeroed 12-byte header */
    mac_of(mac, 'c');
    n = frame(sent, 10, plain, mac, 'a', 5);
    send_one(&s->a, sent, n);
    m = frame(want, 12, zero, mac, 'a', 5);
    expect_frame(&s->c, want, m, "a -> c");
    expect_none(&s->b, "a -> c, at b");
    expect_none(&s->d, "a -> c, at d");
    /* d to a, learned from a's header-led frames */
    mac_of(mac, 'a');
    n = frame(sent, 0, zero, mac, 'd', 6);
    send_one(&s->d, sent, n);
    m = frame(want, 10, zero, mac, 'd', 6);
    expect_frame(&s->a, want, m, "d -> a");
    expect_none(&s->b, "d -> a, at b");
    expect_none(&s->c, "d -> a, at c");
}

int main(int argc, char **argv)
{
    char name[4][64];
    static const uint32_t lens[4] = { 10, 10, 12, 0 };
    struct sw s;
    struct port *ports[4] = { &s.a, &s.b, &s.c, &s.d };
    int fd;

    setvbuf(stdout, NULL, _IONBF, 0);
    CHECK(argc == 2, "usage: nm_vnethdr SWITCH");
    for (int i = 0; i < 4; i++) {
        snprintf(name[i], sizeof(name[i]), "%s:%c", argv[1], 'a' + i);
        open_port(ports[i], name[i], NR_REG_ALL_NIC);
    }
    fd = open("/dev/netmap", O_RDWR | O_CLOEXEC);
    CHECK(fd >= 0, "open /dev/netmap");
    requests(fd, name[0], argv[1]);
    for (int i = 0; i < 4; i++)
        CHECK(hdr_set(fd, name[i], lens[i]) == 0 && hdr_get(fd, name[i]) == (int)lens[i], "%s", name[i]);
    accept_flag(name[0]);
    traffic(&s);
    CHECK(close(fd) == 0, "close");
    for (int i = 0; i < 4; i++)
        close_port(ports[i]);
    printf("vnethdr ok\n");
    return 0;
}
