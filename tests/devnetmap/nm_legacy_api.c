/*
 * nm_legacy_api.c -- a small application of netmap's legacy C API
 * (NETMAP_WITH_LIBS: nm_open, nm_inject, nm_dispatch, nm_nextpkt, nm_close,
 * nm_mmap, nm_parse), built with
 *
 *     cc $(nmcompat-config --cflags) nm_legacy_api.c $(nmcompat-config --libs)
 *
 * and run as it is (or built with --cflags only and run under nmcompat exec).
 *
 *   nm_legacy_api parse              nm_parse() on netmap's name vectors
 *                                    (netmap.md 2.4); prints "parse ok N"
 *   nm_legacy_api errors             nm_open()'s failures: a name that is no
 *                                    netmap name (NULL, errno 0), a bad name,
 *                                    an unknown interface; nm_close() of a
 *                                    non-descriptor; prints "errors ok"
 *   nm_legacy_api traffic TX RX N HOW
 *                                    N frames (some larger than a buffer:
 *                                    NS_MOREFRAG chains) from nm_open(TX) to
 *                                    nm_open(RX): nm_inject, poll, then
 *                                    HOW = dispatch or nextpkt; each frame
 *                                    checked byte for byte and in order;
 *                                    prints "traffic ok N chains C whole W"
 *   nm_legacy_api rings NAME N HOW   the same over a pipe NAME{1 / NAME}1 of
 *                                    two ring pairs opened NR_REG_ALL_NIC
 *                                    (req + NM_OPEN_IFNAME): nm_inject's and
 *                                    the receive side's round robin
 *   nm_legacy_api share PREFIX N     NM_OPEN_NO_MMAP with and without a parent
 *                                    (a pipe's two ends, VALE ports with
 *                                    NM_OPEN_ARG2, per-ring children of a
 *                                    port as pkt-gen opens them); prints
 *                                    "share ok"
 *   nm_legacy_api notxpoll NAME      NETMAP_NO_TX_POLL in nm_open's flags: a
 *                                    poll for POLLIN does not send; prints
 *                                    "notxpoll ok"
 *   nm_legacy_api fake               (built with -DNM_FAKE_REGIF, which
 *                                    answers NIOCREGIF itself) the request
 *                                    nm_open makes and the ring ranges of
 *                                    every mode, host-ring modes included;
 *                                    prints "fake ok"
 */
#define NETMAP_WITH_LIBS
#include <net/netmap_user.h>

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(c, ...) do { if (!(c)) { fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fprintf(stderr, " (errno %d %s)\n", errno, strerror(errno)); exit(1); } } while (0)

/* ------------------------------------------------------------------ */
/* Frames                                                              */
/* ------------------------------------------------------------------ */

#define MAX_FRAME 9200

/* Frame i's length: mostly one buffer, every fifth 2 to 5 buffers, and the
 * edges of a 2048-byte buffer. */
static unsigned frame_len(unsigned i)
{
    switch (i % 50) {
    case 3: return 2048;
    case 13: return 4096;
    case 23: return 2049;
    case 33: return 2047;
    }
    if (i % 5 == 4)
        return 2050 + (i * 97) % 7000;
    return 60 + (i * 37) % 1455;
}

/* Broadcast from 02:00:00:00:00:01 (for a switch), the frame's number in
 * bytes 12..15, then a pattern. */
static void fill(unsigned char *b, unsigned i, unsigned len)
{
    static const unsigned char head[12] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1 };

    memcpy(b, head, sizeof(head));
    memcpy(b + 12, &i, 4);
    for (unsigned k = 16; k < len; k++)
        b[k] = (unsigned char)(i * 7 + k * 13 + (k >> 8));
}

/* What the receiving side has seen. */
struct rx {
    struct nm_desc *d;
    unsigned n, got;
    int ordered;                /* frames must come in sending order */
    unsigned char *seen;        /* each frame once */
    unsigned chains, whole;     /* frames of several buffers; of those, in one piece */
    unsigned calls, last_flags, more; /* callbacks of one nm_dispatch */
    unsigned char acc[MAX_FRAME];       /* nm_nextpkt: the frame so far */
    unsigned acc_len;
    unsigned buf_size;          /* the receiving port's nr_buf_size */
};

/* A whole frame arrived: its number, length and every byte. */
static void check_frame(struct rx *st, const unsigned char *data, unsigned len)
{
    static unsigned char want[MAX_FRAME];
    unsigned idx;

    CHECK(len >= 16, "frame %u: %u bytes", st->got, len);
    memcpy(&idx, data + 12, 4);
    CHECK(idx < st->n && !st->seen[idx], "frame %u: number %u (seen %d)", st->got, idx,
          idx < st->n ? st->seen[idx] : -1);
    CHECK(!st->ordered || idx == st->got, "frame %u came as frame %u", idx, st->got);
    CHECK(len == frame_len(idx), "frame %u: %u bytes, sent %u", idx, len, frame_len(idx));
    fill(want, idx, len);
    CHECK(memcmp(want, data, len) == 0, "frame %u: bytes differ", idx);
    st->seen[idx] = 1;
    st->got++;
}

/* nm_dispatch's callback: the packet at hdr, a whole chain, put together
 * from its slots; caplen is the part in one piece at buf. */
static void on_packet(unsigned char *arg, const struct nm_pkthdr *h, const unsigned char *buf)
{
    struct rx *st = (struct rx *)(void *)arg;
    struct nm_desc *d = st->d;
    struct netmap_ring *ring = NETMAP_RXRING(d->nifp, d->cur_rx_ring);
    static unsigned char frame[MAX_FRAME];
    const struct netmap_slot *s = h->slot;
    unsigned len = 0, caplen = 0, frags = 0, prev_len = 0;
    const unsigned char *piece = buf;
    int in_piece = 1;

    st->calls++;
    st->last_flags = (unsigned)h->flags;
    if (h->flags == NM_MORE_PKTS)
        st->more++;
    CHECK(h->d == d && h->buf == buf, "header of frame %u", st->got);
    CHECK(s >= ring->slot && s < ring->slot + ring->num_slots, "slot not in ring cur_rx_ring %u", d->cur_rx_ring);
    CHECK(buf == (const unsigned char *)NETMAP_BUF(ring, s->buf_idx), "buf is not the first slot's");
    CHECK(h->ts.tv_sec == ring->ts.tv_sec && h->ts.tv_usec == ring->ts.tv_usec, "ts");
    for (;;) {
        const unsigned char *b = (const unsigned char *)NETMAP_BUF(ring, s->buf_idx);

        CHECK(len + s->len <= sizeof(frame), "chain of frame %u too long", st->got);
        memcpy(frame + len, b, s->len);
        if (frags == 0) {
            caplen = s->len;
        } else if (in_piece && prev_len == ring->nr_buf_size && b == piece + ring->nr_buf_size) {
            caplen += s->len;           /* follows a full buffer in memory */
            piece = b;
        } else {
            in_piece = 0;
        }
        prev_len = s->len;
        len += s->len;
        frags++;
        if (!(s->flags & NS_MOREFRAG))
            break;
        CHECK(s->len == ring->nr_buf_size, "a fragment of %u bytes before the last", s->len);
        s = (s + 1 == ring->slot + ring->num_slots) ? ring->slot : s + 1;
    }
    CHECK(h->len == len, "frame %u: hdr.len %u, slots hold %u", st->got, h->len, len);
    CHECK(h->caplen == caplen, "frame %u: caplen %u, %u in one piece", st->got, h->caplen, caplen);
    CHECK(memcmp(buf, frame, caplen) == 0, "caplen bytes at buf");
    if (frags > 1) {
        st->chains++;
        st->whole += caplen == len;
    }
    check_frame(st, frame, len);
}

static int rings_empty(struct nm_desc *d)
{
    for (unsigned r = d->first_rx_ring; r <= d->last_rx_ring; r++)
        if (!nm_ring_empty(NETMAP_RXRING(d->nifp, r)))
            return 0;
    return 1;
}

/* Everything the rx rings hold, by nm_dispatch (with a changing cnt) or by
 * nm_nextpkt (one slot at a time, put together here). */
static void receive(struct rx *st, int nextpkt)
{
    static const int counts[] = { 0, -1, 1, 5, 64, 1000 };
    static unsigned turn;

    if (!nextpkt) {
        for (;;) {
            int cnt = counts[turn++ % 6], r;

            st->calls = st->more = 0;
            r = nm_dispatch(st->d, cnt, on_packet, (unsigned char *)st);
            CHECK(r >= 0 && (unsigned)r == st->calls, "nm_dispatch returned %d after %u callbacks", r, st->calls);
            CHECK(cnt <= 0 || r <= cnt, "nm_dispatch(cnt %d) returned %d", cnt, r);
            if (r == 0)
                break;
            CHECK(st->more == st->calls - 1 && st->last_flags == 0, "NM_MORE_PKTS on %u of %u callbacks, "
                  "last flags %u", st->more, st->calls, st->last_flags);
            if (cnt <= 0)
                CHECK(rings_empty(st->d), "nm_dispatch(%d) left packets", cnt);
        }
        return;
    }
    for (;;) {
        struct nm_pkthdr h;
        unsigned char *b;
        unsigned len, idx;

        memset(&h, 0, sizeof(h));
        if ((b = nm_nextpkt(st->d, &h)) == NULL)
            break;
        CHECK(h.len == h.caplen && h.len <= st->buf_size, "nm_nextpkt: len %u caplen %u", h.len, h.caplen);
        CHECK(st->acc_len + h.len <= sizeof(st->acc), "frame %u too long", st->got);
        memcpy(st->acc + st->acc_len, b, h.len);
        st->acc_len += h.len;
        CHECK(st->acc_len >= 16, "a first fragment of %u bytes", h.len);
        memcpy(&idx, st->acc + 12, 4);
        CHECK(idx < st->n, "frame number %u", idx);
        len = frame_len(idx);
        CHECK(st->acc_len <= len, "frame %u: %u bytes so far, sent %u", st->got, st->acc_len, len);
        if (st->acc_len < len) {
            CHECK(h.len == st->buf_size, "a fragment of %u bytes before the last", h.len);
            st->chains += st->acc_len == h.len;
            continue;
        }
        check_frame(st, st->acc, st->acc_len);
        st->acc_len = 0;
    }
    CHECK(rings_empty(st->d), "nm_nextpkt returned NULL with packets left");
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* n frames from tx to rx, in rounds: once every frame sent has arrived,
 * the receiver releases its slots (NIOCRXSYNC) and the sender nm_injects
 * while a tx ring has room (polling for POLLOUT when none has: a pipe's
 * sender gets its slots back at a sync); then both are polled until every
 * frame sent has arrived.  So no frame ever meets a switch's full rx ring
 * (VALE drops those, as netmap's does). */
static void exchange(struct nm_desc *tx, struct nm_desc *rx, unsigned n, int nextpkt, int ordered, struct rx *st)
{
    static unsigned char frame[MAX_FRAME];
    unsigned sent = 0, batch = 0;
    double t0 = now();

    memset(st, 0, sizeof(*st));
    st->d = rx;
    st->buf_size = NETMAP_RXRING(rx->nifp, rx->first_rx_ring)->nr_buf_size;
    st->n = n;
    st->ordered = ordered;
    CHECK((st->seen = (unsigned char *)calloc(n, 1)) != NULL, "calloc");
    while (st->got < n) {
        struct pollfd p[2] = { { tx->fd, POLLOUT, 0 }, { rx->fd, POLLIN, 0 } };
        unsigned before = st->got;
        int rc;

        if (st->got == sent) {
            CHECK(ioctl(rx->fd, NIOCRXSYNC, NULL) == 0, "rxsync");
            for (batch = 0; sent < n; sent++, batch++) {
                unsigned len = frame_len(sent);
                int r;

                fill(frame, sent, len);
                r = nm_inject(tx, frame, len);
                CHECK(r == 0 || r == (int)len, "nm_inject returned %d for %u bytes", r, len);
                if (r == 0)
                    break;
            }
            if (batch == 0) {           /* no room yet: the slots come back at a sync */
                rc = poll(p, 1, 5000);
                CHECK(rc == 1 && p[0].revents == POLLOUT, "poll for POLLOUT: %d, revents %x (frame %u)",
                      rc, p[0].revents, sent);
                CHECK(now() - t0 < 20, "no tx ring has room for frame %u (%u bytes)", sent, frame_len(sent));
                continue;
            }
        }
        rc = poll(p, 2, 5000);
        CHECK(rc > 0, "poll: %d; frames %u..%u missing", rc, st->got, sent - 1);
        CHECK(!((p[0].revents | p[1].revents) & (POLLERR | POLLNVAL)), "poll revents %x %x",
              p[0].revents, p[1].revents);
        if (p[1].revents & POLLIN)
            receive(st, nextpkt);
        if (st->got != before)
            t0 = now();
        CHECK(now() - t0 < 20, "frames %u..%u did not arrive", st->got, sent - 1);
    }
    free(st->seen);
}

static struct nm_desc *open_ok(const char *name, const struct nmreq *req, uint64_t flags, const struct nm_desc *parent)
{
    struct nm_desc *d = nm_open(name, req, flags, parent);

    CHECK(d != NULL && IS_NETMAP_DESC(d), "nm_open(%s, flags %#llx)", name, (unsigned long long)flags);
    CHECK(NETMAP_FD(d) == d->fd && d->fd >= 0, "fd");
    return d;
}

static void close_ok(struct nm_desc *d)
{
    CHECK(nm_close(d) == 0, "nm_close");
}

/* ------------------------------------------------------------------ */
/* nm_parse                                                            */
/* ------------------------------------------------------------------ */

struct vector {
    const char *in;
    const char *name;           /* NULL: an error, msg says which */
    uint32_t mode, flags;
    uint16_t ringid, memid;
    const char *msg;
};

static const struct vector vectors[] = {
    { "netmap:eth0", "eth0", NR_REG_ALL_NIC, 0, 0, 0, NULL },
    { "netmap:eth0^", "eth0", NR_REG_SW, 0, 0, 0, NULL },
    { "netmap:eth0*", "eth0", NR_REG_NIC_SW, 0, 0, 0, NULL },
    { "netmap:eth0+", "eth0+", NR_REG_ALL_NIC, 0, 0, 0, NULL },
    { "netmap:eth0-3", "eth0", NR_REG_ONE_NIC, 0, 3, 0, NULL },
    { "netmap:eth0-", NULL, 0, 0, 0, 0, "unexpected end of port name" },
    { "netmap:eth0-x", NULL, 0, 0, 0, 0, "unexpected character: 'x'" },
    { "netmap:veth-a", NULL, 0, 0, 0, 0, "unexpected character: 'a'" },
    { "netmap:eth0{3", "eth0", NR_REG_PIPE_MASTER, 0, 3, 0, NULL },
    { "netmap:eth0}3", "eth0", NR_REG_PIPE_SLAVE, 0, 3, 0, NULL },
    { "netmap:eth0{in", NULL, 0, 0, 0, 0, "unexpected character: 'i'" },
    { "netmap:eth0^3", NULL, 0, 0, 0, 0, "unexpected character: '3'" },
    { "netmap:eth0/x", "eth0", NR_REG_ALL_NIC, NR_EXCLUSIVE, 0, 0, NULL },
    { "netmap:eth0/R", "eth0", NR_REG_ALL_NIC, NR_RX_RINGS_ONLY, 0, 0, NULL },
    { "netmap:eth0/T", "eth0", NR_REG_ALL_NIC, NR_TX_RINGS_ONLY, 0, 0, NULL },
    { "netmap:eth0/rtz", "eth0", NR_REG_ALL_NIC, 0x700, 0, 0, NULL },
    { "netmap:eth0/q", NULL, 0, 0, 0, 0, "unrecognized flag: 'q'" },
    { "netmap:eth0/", NULL, 0, 0, 0, 0, "unexpected end of port name" },
    { "netmap:eth0@2", "eth0", NR_REG_ALL_NIC, 0, 0, 2, NULL },
    { "netmap:eth0@0", NULL, 0, 0, 0, 0, "invalid memid 0, must be >0" },
    { "netmap:eth0@2@3", NULL, 0, 0, 0, 0, "double setting of memid" },
    { "netmap:eth0-1/T@2", "eth0", NR_REG_ONE_NIC, NR_TX_RINGS_ONLY, 1, 2, NULL },
    { "netmap:eth0@3/x", "eth0", NR_REG_ALL_NIC, NR_EXCLUSIVE, 0, 3, NULL },
    { "netmap:eth0*/xR", "eth0", NR_REG_NIC_SW, NR_EXCLUSIVE | NR_RX_RINGS_ONLY, 0, 0, NULL },
    { "netmap:eth0/@4", "eth0", NR_REG_ALL_NIC, 0, 0, 4, NULL },
    { "netmap:eth0@", NULL, 0, 0, 0, 0, "unexpected end of port name" },
    { "vale0:a", "vale0:a", NR_REG_ALL_NIC, 0, 0, 0, NULL },
    { "vale:a", "vale:a", NR_REG_ALL_NIC, 0, 0, 0, NULL },
    { "vale0:a{1", "vale0:a", NR_REG_PIPE_MASTER, 0, 1, 0, NULL },
    { "vale1:b_2}7/x", "vale1:b_2", NR_REG_PIPE_SLAVE, NR_EXCLUSIVE, 7, 0, NULL },
    { "vale0a", NULL, 0, 0, 0, 0, "missing ':' in vale name" },
    { "valeX-1:a", NULL, 0, 0, 0, 0, "invalid bridge name" },
    { "vale0:a.b", NULL, 0, 0, 0, 0, "invalid bridge port name" },
    { "netmap:eth0.100", "eth0.100", NR_REG_ALL_NIC, 0, 0, 0, NULL },
    { "netmap:", "", NR_REG_ALL_NIC, 0, 0, 0, NULL },
    { "netmap:abcdefghijklmno", "abcdefghijklmno", NR_REG_ALL_NIC, 0, 0, 0, NULL },
    { "netmap:abcdefghijklmnop", NULL, 0, 0, 0, 0, "name too long" },
    { "vale0:abcdefghi", "vale0:abcdefghi", NR_REG_ALL_NIC, 0, 0, 0, NULL },
    { "vale0:abcdefghij", NULL, 0, 0, 0, 0, "name too long" },
    { "netmap:eth0-4094", "eth0", NR_REG_ONE_NIC, 0, 4094, 0, NULL },
    { "netmap:eth0-4095", NULL, 0, 0, 0, 0, "'4095' out of range [0, 4095)" },
    { "netmap:eth0-4096", NULL, 0, 0, 0, 0, "'4096' out of range [0, 4095)" },
    { "netmap:eth0--1", NULL, 0, 0, 0, 0, "'-1' out of range [0, 4095)" },
};

static void mode_parse(void)
{
    unsigned n = sizeof(vectors) / sizeof(vectors[0]);
    struct nm_desc d;

    for (unsigned i = 0; i < n; i++) {
        const struct vector *v = &vectors[i];
        char err[MAXERRMSG];
        int rc;

        memset(&d, 0, sizeof(d));
        memset(err, 'z', sizeof(err));
        errno = 12345;
        rc = nm_parse(v->in, &d, err);
        if (v->name == NULL) {
            CHECK(rc == -1 && errno == EINVAL, "%s: rc %d", v->in, rc);
            CHECK(strcmp(err, v->msg) == 0, "%s: message '%s', netmap's '%s'", v->in, err, v->msg);
            CHECK(d.self == NULL, "%s: self set on failure", v->in);
            continue;
        }
        CHECK(rc == 0, "%s: rc %d '%s'", v->in, rc, err);
        CHECK(strcmp(d.req.nr_name, v->name) == 0, "%s: name '%s', want '%s'", v->in, d.req.nr_name, v->name);
        CHECK((d.req.nr_flags & NR_REG_MASK) == v->mode, "%s: mode %u, want %u", v->in,
              d.req.nr_flags & NR_REG_MASK, v->mode);
        CHECK((d.req.nr_flags & ~(uint32_t)NR_REG_MASK) == v->flags, "%s: flags %#x, want %#x", v->in,
              d.req.nr_flags & ~(uint32_t)NR_REG_MASK, v->flags);
        CHECK(d.req.nr_ringid == v->ringid, "%s: ringid %u, want %u", v->in, d.req.nr_ringid, v->ringid);
        CHECK(d.req.nr_arg2 == v->memid, "%s: memid %u, want %u", v->in, d.req.nr_arg2, v->memid);
        CHECK(d.self == &d, "%s: self", v->in);
    }
    /* what the request already holds is kept: flags and ringid are ORed in,
     * the memory id replaced */
    memset(&d, 0, sizeof(d));
    d.req.nr_flags = NR_EXCLUSIVE;
    d.req.nr_ringid = NETMAP_NO_TX_POLL;
    d.req.nr_arg2 = 9;
    CHECK(nm_parse("netmap:eth0-2", &d, NULL) == 0, "parse into a filled request");
    CHECK(d.req.nr_flags == (NR_EXCLUSIVE | NR_REG_ONE_NIC) && d.req.nr_ringid == (NETMAP_NO_TX_POLL | 2) &&
          d.req.nr_arg2 == 0, "flags %#x ringid %#x arg2 %u", d.req.nr_flags, d.req.nr_ringid, d.req.nr_arg2);
    /* no err buffer: still EINVAL */
    errno = 0;
    CHECK(nm_parse("netmap:eth0/q", &d, NULL) == -1 && errno == EINVAL, "error without a buffer");
    printf("parse ok %u\n", n + 2);
}

/* ------------------------------------------------------------------ */
/* Failures                                                            */
/* ------------------------------------------------------------------ */

static void mode_errors(void)
{
    struct nm_desc fake;

    errno = EBUSY;
    CHECK(nm_open("eth0", NULL, 0, NULL) == NULL && errno == 0, "a name that is no netmap name");
    errno = EBUSY;
    CHECK(nm_open("x{1", NULL, 0, NULL) == NULL && errno == 0, "nmport name without netmap:");
    errno = 0;
    CHECK(nm_open("netmap:eth0-", NULL, 0, NULL) == NULL && errno == EINVAL, "a bad name");
    errno = 0;
    CHECK(nm_open("netmap:nmcnosuch0", NULL, 0, NULL) == NULL && errno == ENXIO, "an unknown interface");
    errno = 0;
    CHECK(nm_open("vale0:ab/r", NULL, 0, NULL) == NULL && errno == EINVAL, "a monitor of a port nobody has open");
    CHECK(nm_close(NULL) == EINVAL, "nm_close(NULL)");
    memset(&fake, 0, sizeof(fake));
    CHECK(nm_close(&fake) == EINVAL, "nm_close of a non-descriptor");
    printf("errors ok\n");
}

/* ------------------------------------------------------------------ */
/* Traffic                                                             */
/* ------------------------------------------------------------------ */

static struct rx rxst;

static int how_of(const char *how)
{
    CHECK(strcmp(how, "dispatch") == 0 || strcmp(how, "nextpkt") == 0, "HOW: dispatch or nextpkt, not %s", how);
    return strcmp(how, "nextpkt") == 0;
}

static void mode_traffic(const char *txname, const char *rxname, unsigned n, int nextpkt)
{
    struct nm_desc *tx = open_ok(txname, NULL, 0, NULL);
    struct nm_desc *rx = open_ok(rxname, NULL, 0, NULL);

    CHECK(tx->done_mmap && tx->mem != NULL && tx->memsize == tx->req.nr_memsize, "tx mapping");
    CHECK(tx->nifp == NETMAP_IF(tx->mem, tx->req.nr_offset), "nifp");
    CHECK(tx->some_ring == NETMAP_RXRING(tx->nifp, tx->first_rx_ring), "some_ring");
    CHECK(tx->buf_start == NETMAP_BUF(tx->some_ring, 0) && tx->buf_end == (char *)tx->mem + tx->memsize, "buf_*");
    CHECK(tx->first_tx_ring == 0 && tx->last_tx_ring == 0 && tx->cur_tx_ring == 0 &&
          rx->first_rx_ring == 0 && rx->last_rx_ring == 0, "ring ranges");
    exchange(tx, rx, n, nextpkt, 1, &rxst);
    close_ok(tx);
    close_ok(rx);
    printf("traffic ok %u chains %u whole %u\n", rxst.got, rxst.chains, rxst.whole);
}

/* Two ring pairs, NR_REG_ALL_NIC: the request names the pipe end itself
 * (NM_OPEN_IFNAME: not parsed). */
static struct nm_desc *open_two_rings(const char *name, char end)
{
    struct nmreq req;

    memset(&req, 0, sizeof(req));
    snprintf(req.nr_name, sizeof(req.nr_name), "%s%c1", name, end);
    req.nr_flags = NR_REG_ALL_NIC;
    req.nr_tx_rings = req.nr_rx_rings = 2;
    return open_ok("netmap:ignored", &req, NM_OPEN_IFNAME, NULL);
}

static void mode_rings(const char *name, unsigned n, int nextpkt)
{
    static unsigned char frame[MAX_FRAME];
    struct nm_desc *tx = open_two_rings(name, '{'), *rx = open_two_rings(name, '}');
    struct netmap_ring *r0 = NETMAP_TXRING(tx->nifp, 0), *r1 = NETMAP_TXRING(tx->nifp, 1);
    unsigned room = nm_ring_space(r0), i;

    CHECK(tx->req.nr_tx_rings == 2 && tx->first_tx_ring == 0 && tx->last_tx_ring == 1 &&
          rx->first_rx_ring == 0 && rx->last_rx_ring == 1, "two rings: tx %u..%u rx %u..%u",
          tx->first_tx_ring, tx->last_tx_ring, rx->first_rx_ring, rx->last_rx_ring);
    /* ring 0 until one slot is left; a 3-buffer frame then goes to ring 1,
     * and so does the next small one (the round robin starts where it is) */
    for (i = 0; i + 1 < room; i++)
        CHECK(nm_inject(tx, frame, 60) == 60, "small frame %u", i);
    CHECK(nm_ring_space(r0) == 1 && tx->cur_tx_ring == 0, "ring 0 with one slot left");
    CHECK(nm_inject(tx, frame, 5000) == 5000 && tx->cur_tx_ring == 1 && r1->head == 3, "chain to ring 1");
    CHECK((r1->slot[0].flags & NS_MOREFRAG) && (r1->slot[1].flags & NS_MOREFRAG) && !(r1->slot[2].flags & NS_MOREFRAG) &&
          r1->slot[0].len == 2048 && r1->slot[1].len == 2048 && r1->slot[2].len == 5000 - 4096, "the chain's slots");
    CHECK(nm_inject(tx, frame, 61) == 61 && tx->cur_tx_ring == 1 && r1->head == 4 && nm_ring_space(r0) == 1,
          "a small frame stays on ring 1");
    while (nm_inject(tx, frame, 62) == 62)
        ;
    CHECK(nm_ring_space(r0) == 0 && nm_ring_space(r1) == 0 && tx->cur_tx_ring == 0, "both rings full, ring 0 last");
    CHECK(nm_inject(tx, frame, 60) == 0, "no room: 0");
    close_ok(tx);
    close_ok(rx);

    tx = open_two_rings(name, '{');
    rx = open_two_rings(name, '}');
    exchange(tx, rx, n, nextpkt, 0, &rxst);
    CHECK(NETMAP_RXRING(rx->nifp, 1)->head != 0 && NETMAP_RXRING(rx->nifp, 0)->head != 0, "both rx rings used");
    close_ok(tx);
    close_ok(rx);
    printf("rings ok %u\n", rxst.got);
}

/* ------------------------------------------------------------------ */
/* Shared mappings                                                     */
/* ------------------------------------------------------------------ */

static void mode_share(const char *prefix, unsigned n)
{
    char a_name[64], b_name[64];
    struct nm_desc *a, *b, *c, *e;
    struct nmreq req;

    /* a pipe's two ends live in one memory region: the slave end opened
     * with NM_OPEN_NO_MMAP and the master as parent maps nothing */
    snprintf(a_name, sizeof(a_name), "netmap:%s{3", prefix);
    snprintf(b_name, sizeof(b_name), "netmap:%s}3", prefix);
    a = open_ok(a_name, NULL, 0, NULL);
    b = open_ok(b_name, NULL, NM_OPEN_NO_MMAP, a);
    CHECK(b->req.nr_arg2 == a->req.nr_arg2, "one region: mem ids %u and %u", a->req.nr_arg2, b->req.nr_arg2);
    CHECK(b->mem == a->mem && b->memsize == a->memsize && !b->done_mmap && a->done_mmap, "b shares a's mapping");
    CHECK(b->nifp == NETMAP_IF(a->mem, b->req.nr_offset) && b->nifp != a->nifp, "b's own netmap_if");
    CHECK(b->req.nr_arg1 == 4 && b->req.nr_arg3 == 0, "a parent sets arg1 4 and arg3 0: %u %u",
          b->req.nr_arg1, b->req.nr_arg3);
    exchange(a, b, n, 0, 1, &rxst);
    exchange(b, a, n, 1, 1, &rxst);
    close_ok(b);                                        /* a's mapping stays */
    CHECK(NETMAP_TXRING(a->nifp, 0)->num_slots > 0, "a's mapping after b's close");
    close_ok(a);

    /* VALE ports have a region each, unless the second asks for the first's
     * (NM_OPEN_ARG2); without it the parent's mapping is not used */
    snprintf(a_name, sizeof(a_name), "vale%s:a", prefix);
    snprintf(b_name, sizeof(b_name), "vale%s:b", prefix);
    a = open_ok(a_name, NULL, 0, NULL);
    b = open_ok(b_name, NULL, NM_OPEN_NO_MMAP | NM_OPEN_ARG2, a);
    CHECK(b->req.nr_arg2 == a->req.nr_arg2 && b->mem == a->mem && !b->done_mmap, "ARG2: one region, one mapping");
    snprintf(b_name, sizeof(b_name), "vale%s:c", prefix);
    c = open_ok(b_name, NULL, NM_OPEN_NO_MMAP, a);
    CHECK(c->req.nr_arg2 != a->req.nr_arg2 && c->mem != a->mem && c->done_mmap, "another region: mapped anew");
    close_ok(c);
    exchange(a, b, n, 0, 1, &rxst);
    close_ok(b);
    close_ok(a);

    /* NM_OPEN_NO_MMAP without a parent: nothing mapped until nm_mmap() */
    snprintf(a_name, sizeof(a_name), "netmap:%s{4", prefix);
    snprintf(b_name, sizeof(b_name), "netmap:%s}4", prefix);
    a = open_ok(a_name, NULL, NM_OPEN_NO_MMAP, NULL);
    CHECK(a->mem == NULL && a->nifp == NULL && !a->done_mmap, "NO_MMAP: nothing mapped");
    CHECK(nm_mmap(a, NULL) == 0 && a->mem != NULL && a->done_mmap && a->nifp != NULL, "nm_mmap later");
    b = open_ok(b_name, NULL, 0, NULL);
    exchange(a, b, n, 1, 1, &rxst);
    close_ok(a);
    close_ok(b);

    /* per-ring children of a two-ring port, as pkt-gen opens its threads: a
     * copy of the parent with ONE_NIC and the ring, NM_OPEN_IFNAME and
     * NM_OPEN_NO_MMAP; each child's ring is the parent's, in one mapping */
    memset(&req, 0, sizeof(req));
    req.nr_tx_rings = req.nr_rx_rings = 2;
    snprintf(a_name, sizeof(a_name), "vale%s:m", prefix);
    snprintf(b_name, sizeof(b_name), "vale%s:n", prefix);
    a = open_ok(a_name, &req, 0, NULL);
    e = open_ok(b_name, NULL, 0, NULL);
    CHECK(a->first_tx_ring == 0 && a->last_tx_ring == 1, "parent tx rings 0..1");
    for (unsigned k = 0; k < 2; k++) {
        struct nm_desc copy = *a;
        static unsigned char frame[128];
        struct nmreq seen;

        copy.self = &copy;
        copy.req.nr_flags = NR_REG_ONE_NIC;
        copy.req.nr_ringid = (uint16_t)k;
        c = open_ok("netmap:not-parsed-", NULL, NM_OPEN_IFNAME | NM_OPEN_NO_MMAP, &copy);
        CHECK(strcmp(c->req.nr_name, a->req.nr_name) == 0 && c->first_tx_ring == k && c->last_tx_ring == k &&
              c->first_rx_ring == k && c->cur_tx_ring == k, "child %u rings %u..%u", k, c->first_tx_ring,
              c->last_tx_ring);
        CHECK(c->mem == a->mem && !c->done_mmap && c->nifp != a->nifp, "child %u shares the mapping", k);
        fill(frame, k, 100);
        CHECK(nm_inject(c, frame, 100) == 100, "child %u inject", k);
        /* the slot written through the child is the parent's ring k */
        {
            struct netmap_ring *pr = NETMAP_TXRING(a->nifp, k);
            CHECK(pr->slot[0].len == 100 && memcmp(NETMAP_BUF(pr, pr->slot[0].buf_idx), frame, 100) == 0,
                  "ring %u seen through the parent", k);
        }
        CHECK(ioctl(c->fd, NIOCTXSYNC, NULL) == 0, "child %u txsync", k);
        {
            struct pollfd p = { e->fd, POLLIN, 0 };
            struct nm_pkthdr h;
            unsigned char *buf;

            CHECK(poll(&p, 1, 5000) == 1, "child %u's frame at the other port", k);
            buf = nm_nextpkt(e, &h);
            CHECK(buf != NULL && h.len == 100 && memcmp(buf, frame, 100) == 0, "child %u's frame", k);
        }
        memcpy(&seen, &c->req, sizeof(seen));
        CHECK(seen.nr_arg1 == 4 && seen.nr_arg3 == 0, "child %u request", k);
        close_ok(c);
    }
    close_ok(e);
    close_ok(a);
    printf("share ok\n");
}

/* ------------------------------------------------------------------ */
/* NETMAP_NO_TX_POLL                                                   */
/* ------------------------------------------------------------------ */

static void mode_notxpoll(const char *name)
{
    char m[64], s[64];
    unsigned char frame[64];

    memset(frame, 0x5a, sizeof(frame));
    snprintf(m, sizeof(m), "netmap:%s{1", name);
    snprintf(s, sizeof(s), "netmap:%s}1", name);
    for (int no_tx_poll = 0; no_tx_poll < 2; no_tx_poll++) {
        struct nm_desc *tx = open_ok(m, NULL, no_tx_poll ? NETMAP_NO_TX_POLL : 0, NULL);
        struct nm_desc *rx = open_ok(s, NULL, 0, NULL);
        struct pollfd p = { tx->fd, POLLIN, 0 }, q = { rx->fd, POLLIN, 0 };

        CHECK((tx->req.nr_ringid & ~NETMAP_RING_MASK) == (no_tx_poll ? NETMAP_NO_TX_POLL : 0) &&
              (tx->req.nr_ringid & NETMAP_RING_MASK) == 1, "nr_ringid %#x", tx->req.nr_ringid);
        CHECK(nm_inject(tx, frame, sizeof(frame)) == sizeof(frame), "inject");
        CHECK(poll(&p, 1, 0) == 0, "tx has nothing to read");
        CHECK(poll(&q, 1, 0) == (no_tx_poll ? 0 : 1), "poll(POLLIN) %s", no_tx_poll ? "sent" : "did not send");
        if (no_tx_poll) {
            CHECK(ioctl(tx->fd, NIOCTXSYNC, NULL) == 0, "txsync");
            CHECK(poll(&q, 1, 1000) == 1, "sent by the txsync");
        }
        close_ok(tx);
        close_ok(rx);
    }
    printf("notxpoll ok\n");
}

/* ------------------------------------------------------------------ */
/* The request and the ring ranges, NIOCREGIF answered here             */
/* ------------------------------------------------------------------ */

#ifdef NM_FAKE_REGIF
static struct nmreq fake_seen;
static int fake_calls;

/* This program's ioctl() comes before libc's (and the emulation's): it
 * answers NIOCREGIF as a port of 4 tx and 3 rx rings in memory region 9
 * would, and fails for the name "busy". */
int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    struct nmreq *nr;

    (void)fd;
    va_start(ap, req);
    nr = va_arg(ap, struct nmreq *);
    va_end(ap);
    if (req != NIOCREGIF) {
        errno = ENOTTY;
        return -1;
    }
    fake_calls++;
    fake_seen = *nr;
    if (strcmp(nr->nr_name, "busy") == 0) {
        errno = EBUSY;
        return -1;
    }
    nr->nr_tx_rings = 4;
    nr->nr_rx_rings = 3;
    nr->nr_tx_slots = nr->nr_rx_slots = 512;
    nr->nr_memsize = 1 << 20;
    nr->nr_offset = 0;
    nr->nr_arg2 = 9;
    return 0;
}

static void fake_ranges(const char *name, unsigned tx0, unsigned tx1, unsigned rx0, unsigned rx1)
{
    struct nm_desc *d = open_ok(name, NULL, NM_OPEN_NO_MMAP, NULL);

    CHECK(d->first_tx_ring == tx0 && d->last_tx_ring == tx1 && d->first_rx_ring == rx0 && d->last_rx_ring == rx1 &&
          d->cur_tx_ring == tx0 && d->cur_rx_ring == rx0, "%s: tx %u..%u rx %u..%u", name, d->first_tx_ring,
          d->last_tx_ring, d->first_rx_ring, d->last_rx_ring);
    CHECK(d->mem == NULL && d->nifp == NULL, "%s: mapped", name);
    close_ok(d);
}

static void mode_fake(void)
{
    static uint64_t region[8192];       /* a zeroed region: a netmap_if with no ring */
    struct nm_desc parent, *d;
    struct nmreq req;

    fake_ranges("netmap:eth0", 0, 3, 0, 2);             /* ALL_NIC: [0, n-1] */
    fake_ranges("netmap:eth0^", 4, 4, 3, 3);            /* SW: the host ring */
    fake_ranges("netmap:eth0*", 0, 4, 0, 3);            /* NIC_SW: [0, n] */
    fake_ranges("netmap:eth0-2", 2, 2, 2, 2);           /* ONE_NIC */
    fake_ranges("netmap:eth0{2", 0, 0, 0, 0);           /* pipe ends */
    fake_ranges("netmap:eth0}2/R", 0, 0, 0, 0);         /* /R and /T are not looked at */
    fake_ranges("netmap:eth0/T", 0, 3, 0, 2);
    CHECK(fake_seen.nr_version == NETMAP_API && strcmp(fake_seen.nr_name, "eth0") == 0 &&
          fake_seen.nr_flags == (NR_REG_ALL_NIC | NR_TX_RINGS_ONLY), "request of eth0/T");

    /* req: the starting request; nr_ringid's high bits dropped, then the
     * poll bits of the flags added */
    memset(&req, 0, sizeof(req));
    req.nr_ringid = 0xf005;
    req.nr_arg1 = 77;
    req.nr_arg3 = 5;
    req.nr_tx_slots = 64;
    d = open_ok("netmap:eth0", &req, NM_OPEN_NO_MMAP | NETMAP_NO_TX_POLL | NETMAP_DO_RX_POLL, NULL);
    CHECK(fake_seen.nr_ringid == (0x005 | NETMAP_NO_TX_POLL | NETMAP_DO_RX_POLL), "ringid %#x", fake_seen.nr_ringid);
    CHECK(fake_seen.nr_arg1 == 77 && fake_seen.nr_arg3 == 5 && fake_seen.nr_tx_slots == 64,
          "without a parent the request's args stay");
    close_ok(d);

    /* a parent: arg1 4 and arg3 0 unless copied; ARG2, RING_CFG, IFNAME */
    memset(&parent, 0, sizeof(parent));
    parent.self = &parent;
    parent.mem = region;
    parent.memsize = sizeof(region);
    snprintf(parent.req.nr_name, sizeof(parent.req.nr_name), "par");
    parent.req.nr_arg1 = 7;
    parent.req.nr_arg2 = 9;
    parent.req.nr_arg3 = 11;
    parent.req.nr_tx_slots = 256;
    parent.req.nr_rx_slots = 128;
    parent.req.nr_tx_rings = 3;
    parent.req.nr_rx_rings = 5;
    parent.req.nr_ringid = 2;
    parent.req.nr_flags = NR_REG_ONE_NIC | NR_EXCLUSIVE;
    d = open_ok("netmap:eth1@3", &req, NM_OPEN_NO_MMAP, &parent);
    CHECK(fake_seen.nr_arg1 == 4 && fake_seen.nr_arg3 == 0 && fake_seen.nr_arg2 == 3 && fake_seen.nr_tx_slots == 64,
          "parent without copy flags: arg1 %u arg2 %u arg3 %u", fake_seen.nr_arg1, fake_seen.nr_arg2,
          fake_seen.nr_arg3);
    CHECK(d->mem == (void *)region && !d->done_mmap && d->memsize == sizeof(region), "parent's mapping (mem 9)");
    close_ok(d);
    d = open_ok("netmap:eth1", NULL, NM_OPEN_NO_MMAP | NM_OPEN_ARG1 | NM_OPEN_ARG2 | NM_OPEN_ARG3 |
                NM_OPEN_RING_CFG, &parent);
    CHECK(fake_seen.nr_arg1 == 7 && fake_seen.nr_arg2 == 9 && fake_seen.nr_arg3 == 11 &&
          fake_seen.nr_tx_slots == 256 && fake_seen.nr_rx_slots == 128 && fake_seen.nr_tx_rings == 3 &&
          fake_seen.nr_rx_rings == 5 && strcmp(fake_seen.nr_name, "eth1") == 0, "copied from the parent");
    close_ok(d);
    fake_calls = 0;
    d = open_ok("netmap:not parsed-", NULL, NM_OPEN_NO_MMAP | NM_OPEN_IFNAME | NETMAP_NO_TX_POLL, &parent);
    CHECK(fake_calls == 1 && strcmp(fake_seen.nr_name, "par") == 0 &&
          fake_seen.nr_ringid == (2 | NETMAP_NO_TX_POLL) && fake_seen.nr_flags == (NR_REG_ONE_NIC | NR_EXCLUSIVE),
          "IFNAME: name, ringid and flags of the parent");
    CHECK(d->first_tx_ring == 2 && d->last_rx_ring == 2, "IFNAME: ONE_NIC 2");
    close_ok(d);

    /* a failing NIOCREGIF: NULL, its errno, the descriptor gone */
    errno = 0;
    CHECK(nm_open("netmap:busy", NULL, NM_OPEN_NO_MMAP, NULL) == NULL && errno == EBUSY, "NIOCREGIF fails");
    printf("fake ok\n");
}
#endif

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";

    setvbuf(stdout, NULL, _IONBF, 0);
    if (strcmp(mode, "parse") == 0) {
        mode_parse();
    } else if (strcmp(mode, "errors") == 0) {
        mode_errors();
    } else if (strcmp(mode, "traffic") == 0 && argc == 6) {
        mode_traffic(argv[2], argv[3], (unsigned)atoi(argv[4]), how_of(argv[5]));
    } else if (strcmp(mode, "rings") == 0 && argc == 5) {
        mode_rings(argv[2], (unsigned)atoi(argv[3]), how_of(argv[4]));
    } else if (strcmp(mode, "share") == 0 && argc == 4) {
        mode_share(argv[2], (unsigned)atoi(argv[3]));
    } else if (strcmp(mode, "notxpoll") == 0 && argc == 3) {
        mode_notxpoll(argv[2]);
    } else if (strcmp(mode, "fake") == 0) {
#ifdef NM_FAKE_REGIF
        mode_fake();
#else
        fprintf(stderr, "fake: build with -DNM_FAKE_REGIF\n");
        return 2;
#endif
    } else {
        fprintf(stderr, "usage: nm_legacy_api parse | errors | traffic TX RX N HOW | rings NAME N HOW | "
                "share PREFIX N | notxpoll NAME | fake\n");
        return 2;
    }
    return 0;
}
