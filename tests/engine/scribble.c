/*
 * scribble.c -- a hostile process against its neighbours.  Built together
 * with the engine sources (under -fsanitize=address,undefined) by
 * tests/unit/test_scribble.py, which runs each role in its own process.
 *
 *   scribble scribbler -p PORT [-s seed] [-n iters]
 *       Open PORT (a pipe end "x{1", or a VALE port "vale0:s") and, between
 *       syncs, write random bytes over every byte of the netmap memory, as
 *       netmap's mmap would give it (nr_memsize bytes of the port's region
 *       file from offset 0: netmap_if, every ring object, every buffer, in
 *       16 sweeps), plus plausible-looking values into its
 *       own rings and every ring header (in-range head/cur/tail, buffer
 *       indexes and lengths near the limits, random flags, NS_INDIRECT with
 *       random addresses).  Then it syncs, polls, injects and receives,
 *       whatever the engine answers.  -R: open the port with a one-frame RX
 *       ring, wait until a frame fills it (before the stream starts), and
 *       never release it (no rxsync, no POLLIN), so that it holds no copy of
 *       a stream it could resend: on a switch, a port that
 *       floods the learning table receives everyone's frames, and a torn
 *       copy it sends (read while the switch writes the buffer) is
 *       indistinguishable from corruption.
 *   scribble fields -p PORT [-s seed] [-n corruptions]
 *       Open PORT and, field by field, write bad values (random, zero,
 *       the slot count, the buffer count and their neighbours, all ones)
 *       into every field of its netmap_if, of each of its rings and of
 *       the peer's rings (header fields, const ones included, and every
 *       field of a random slot), a few fields at a time, each batch
 *       followed by one engine call (txsync, rxsync, poll, inject, recv,
 *       nextpkt) whose answer must be a success or EINVAL.  Prints the
 *       corruptions made and how many fields were hit.
 *   scribble send -p PORT -g TAG [-d DSTMAC]
 *       Send a numbered stream (frame i: length and bytes derived from TAG
 *       and i) until SIGUSR1, then frames flagged "last" until the receiver
 *       answers one of them.
 *   scribble recv -p PORT -g TAG [-m SRCMAC]
 *       Announce its MAC (a broadcast frame, again now and then until the
 *       stream starts), then check every frame that
 *       carries TAG from SRCMAC: its bytes are exactly those of frame seq;
 *       frames with a new seq come in increasing order (gaps counted);
 *       an exact frame with an old seq, or followed by more fragments, is
 *       a copy someone else sent (on a switch, a port that floods the
 *       learning table receives everyone's frames and may send them
 *       again); anything else is foreign.  Answers every "last" frame;
 *       stops after the first, or with -a NAME once the sender's VALE port
 *       NAME is gone.
 *   scribble victim -p PORT [-s seed]
 *       Hold the other end of the scribbler's pipe: send and receive until
 *       SIGUSR1 while checking, after every engine call, that the engine's
 *       state of this port (krings, holder entry, port record, region
 *       geometry, all in the control file) is what it must be.
 *
 * Common options: -r RUNDIR, -T seconds (deadline).  Output lines:
 * "ready ...", "done key=value ...", or "FAIL <why>" (exit 1) and
 * "TIMEOUT" (exit 3).
 */
#include "nmc_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <net/netmap_user.h>

#define HDR 14u                 /* Ethernet header */
#define PAY 11u                 /* tag u32, seq u32, last u8, len u16 */
#define MAXLEN 1514u
#define ACK_TAG 0xacacacacu

struct opts {
    const char *port, *rundir, *peer;
    uint32_t tag;
    uint64_t iters;
    bool no_rx;                 /* scribbler: never receive (see -R) */
    uint8_t dst[6], src[6];
    uint64_t seed;
    double timeout;
};

static volatile sig_atomic_t stop;
static uint64_t rng = 88172645463325252ULL;
static double deadline;

static void on_usr1(int sig) { (void)sig; stop = 1; }

static uint64_t R(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void out(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    if (write(1, line, (size_t)n) < 0)
        _exit(4);
}

#define FAIL(...) do { out("FAIL " __VA_ARGS__); exit(1); } while (0)

static void check_deadline(const char *what)
{
    if (now() > deadline) {
        out("TIMEOUT %s", what);
        exit(3);
    }
}

/* "x{1" / "x}1" is a pipe end, anything else a VALE port. */
static struct nmc_port *open_port(const struct opts *o)
{
    char parent[64], id[64];
    struct nmc_pipe_req req = { .rundir = o->rundir, .mode = NR_REG_ALL_NIC, .spin_us = -1,
                                .tx_slots = 256, .rx_slots = o->no_rx ? 2 : 256, .buf_num = 4096 };
    const char *b = strpbrk(o->port, "{}");
    struct nmc_port *p;
    int err;

    if (b) {
        snprintf(parent, sizeof(parent), "%.*s", (int)(b - o->port), o->port);
        snprintf(id, sizeof(id), "%s", b + 1);
        req.parent = parent;
        req.pipe_id = id;
        req.role = *b == '}' ? NMC_PIPE_SLAVE : NMC_PIPE_MASTER;
        err = nmc_pipe_open(&req, &p);
    } else {
        req.parent = o->port;
        err = nmc_vale_open(&req, &p);
    }
    if (err < 0)
        FAIL("open %s: %s", o->port, strerror(-err));
    return p;
}

/* ------------------------------------------------------------------ */
/* frames */

static uint32_t frame_len(uint32_t tag, uint32_t seq) { return 60 + (tag * 31 + seq * 7919) % 900; }
static uint8_t frame_byte(uint32_t tag, uint32_t seq, uint32_t i) { return (uint8_t)(tag + seq * 13 + i * 7); }

static uint32_t make_frame(const struct opts *o, uint8_t *f, uint32_t tag, uint32_t seq, uint8_t last)
{
    uint32_t len = tag == ACK_TAG ? 60 : frame_len(tag, seq);
    uint16_t l16 = (uint16_t)len;

    memcpy(f, o->dst, 6);
    memcpy(f + 6, o->src, 6);
    f[12] = 0x88;
    f[13] = 0xb5;
    memcpy(f + HDR, &tag, 4);
    memcpy(f + HDR + 4, &seq, 4);
    f[HDR + 8] = last;
    memcpy(f + HDR + 9, &l16, 2);
    for (uint32_t i = HDR + PAY; i < len; i++)
        f[i] = frame_byte(tag, seq, i);
    return len;
}

/* 1: a frame of ours, exact; 2: a frame of ours cut short or with more
 * bytes after it (a copy that someone else sent with a length of their
 * own); 0: someone else's; -1: ours but wrong.  f holds have bytes of len. */
static int parse_frame(const struct opts *o, const uint8_t *f, uint32_t len, uint32_t have,
                       uint32_t tag, uint32_t *seq, uint8_t *last)
{
    uint32_t t, want;
    uint16_t l16;

    if (have < HDR + PAY || memcmp(f + 6, o->src, 6) != 0)
        return 0;
    memcpy(&t, f + HDR, 4);
    if (t != tag)
        return 0;
    memcpy(seq, f + HDR + 4, 4);
    *last = f[HDR + 8];
    memcpy(&l16, f + HDR + 9, 2);
    want = tag == ACK_TAG ? 60 : frame_len(tag, *seq);
    if (l16 != want)
        return -1;
    for (uint32_t i = HDR + PAY; i < want && i < have; i++)
        if (f[i] != frame_byte(tag, *seq, i))
            return -1;
    return len == want ? 1 : 2;
}

/* ------------------------------------------------------------------ */
/* scribbler */

static void fill_random(uint8_t *p, uint64_t n)
{
    uint64_t i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t v = R();
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++)
        p[i] = (uint8_t)R();
}

/* Values an engine that checks only loosely would accept. */
static void plausible_ring(struct netmap_ring *ring, uint32_t nslots, uint32_t buf_num, uint32_t buf_size)
{
    uint32_t n = nslots + 2;

    ring->head = (uint32_t)(R() % n);
    ring->cur = (uint32_t)(R() % n);
    ring->tail = (uint32_t)(R() % n);
    for (uint32_t i = 0; i < nslots; i++) {
        struct netmap_slot *s = &ring->slot[i];
        uint64_t r = R();
        s->buf_idx = (uint32_t)(r & 1 ? R() % (buf_num + 4) : R());
        s->len = (uint16_t)(r & 2 ? R() % (buf_size + 64) : R());
        s->flags = (uint16_t)R();
        s->ptr = r & 4 ? R() : (uint64_t)(uintptr_t)&ring->slot[R() % nslots];
    }
}

/* mem: our own mapping of the memory file (the sweep); the engine's own
 * mapping of the same pages (nmc_port_mem) locates the rings. */
static void scribble(struct nmc_port *p, uint8_t *mem, uint64_t size, uint32_t it)
{
    uint64_t sweep = (size / 16 + 4095) & ~4095ULL, at = (it % 16) * sweep;
    struct nmc_lring *own[2] = { p->tx, p->rx };
    uint32_t cnt[2] = { p->ntx, p->nrx };

    if (at < size)
        fill_random(mem + at, at + sweep > size ? size - at : sweep);
    fill_random(mem + ((uint8_t *)p->nifp - (uint8_t *)nmc_port_mem(p)), sizeof(struct netmap_if) + 64);
    for (int d = 0; d < 2; d++)
        for (uint32_t i = 0; i < cnt[d]; i++) {
            if (R() & 1)
                plausible_ring(own[d][i].ring, own[d][i].n, p->g.buf_num, p->g.buf_size);
            else
                plausible_ring(own[d][i].peer_ring, own[d][i].n, p->g.buf_num, p->g.buf_size);
        }
    for (uint32_t k = 0; k < 8; k++) {           /* headers of ring objects anywhere */
        struct netmap_ring *r = nmc_ring_obj(nmc_port_mem(p), &p->g, (uint32_t)(R() % p->g.ring_num));
        r->head = (uint32_t)(R() % 300);
        r->cur = (uint32_t)(R() % 300);
        r->tail = (uint32_t)(R() % 300);
    }
}

/* What netmap's mmap of /dev/netmap gives: nr_memsize bytes of the region
 * file the port names, from offset 0.  It must be the netmap memory and
 * nothing else. */
static uint8_t *map_memory_file(const struct nmc_port_info *info)
{
    int fd = open(info->region_path, O_RDWR | O_CLOEXEC);
    void *m;

    if (fd < 0)
        FAIL("open %s: %s", info->region_path, strerror(errno));
    m = mmap(NULL, info->nr_memsize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        FAIL("mmap %s: %s", info->region_path, strerror(errno));
    return m;
}

static int scribbler(const struct opts *o)
{
    struct nmc_port *p = open_port(o);
    struct nmc_port_info info;
    uint8_t *mem, buf[4 * 2048];
    uint32_t lens[4];
    uint64_t einval = 0, other = 0, ok = 0;
    struct nmc_pkt pkt;

    nmc_port_info(p, &info);
    mem = map_memory_file(&info);
    while (o->no_rx && p->rx[0].ring->head == p->rx[0].ring->tail) {
        check_deadline("a frame to fill the RX ring");      /* the receiver's announcement */
        nmc_poll(p, POLLIN, 10);
    }
    out("ready scribbler memsize=%" PRIu64, info.nr_memsize);
    for (uint64_t it = 0; it < o->iters; it++) {
        int r[6];
        check_deadline("scribbler");
        scribble(p, mem, info.nr_memsize, it);
        fill_random(buf, 256);
        r[0] = nmc_inject(p, buf, 60 + R() % 1400);
        r[1] = nmc_txsync(p);
        r[2] = o->no_rx ? 0 : nmc_rxsync(p);
        r[3] = nmc_recv_batch(p, buf, 2048, lens, 4);
        r[4] = nmc_next_packet(p, (int)(R() & 1), &pkt) == 1 ? nmc_copy_packet(p, &pkt, buf, sizeof(buf)) : 0;
        r[5] = nmc_poll(p, o->no_rx ? POLLOUT : POLLIN | POLLOUT, 0);
        for (int k = 0; k < 6; k++) {
            ok += r[k] >= 0;
            einval += r[k] == -EINVAL;
            other += r[k] < 0 && r[k] != -EINVAL;
        }
    }
    out("done iters=%" PRIu64 " ok=%" PRIu64 " einval=%" PRIu64 " other=%" PRIu64, o->iters, ok, einval, other);
    nmc_port_close(p);
    return 0;
}

/* ------------------------------------------------------------------ */
/* fields: one field at a time */

struct field { const char *name; size_t ofs, size; };

#define F_IF(m) { "if." #m, offsetof(struct netmap_if, m), sizeof(((struct netmap_if *)0)->m) }
#define F_RING(m) { "ring." #m, offsetof(struct netmap_ring, m), sizeof(((struct netmap_ring *)0)->m) }
#define F_SLOT(m) { "slot." #m, offsetof(struct netmap_slot, m), sizeof(((struct netmap_slot *)0)->m) }

static const struct field if_fields[] = {
    F_IF(ni_name), F_IF(ni_version), F_IF(ni_flags), F_IF(ni_tx_rings), F_IF(ni_rx_rings),
    F_IF(ni_bufs_head), F_IF(ni_host_tx_rings), F_IF(ni_host_rx_rings), F_IF(ni_spare1),
    { "if.ring_ofs", offsetof(struct netmap_if, ring_ofs), 8 },
};
static const struct field ring_fields[] = {
    F_RING(buf_ofs), F_RING(num_slots), F_RING(nr_buf_size), F_RING(ringid), F_RING(dir),
    F_RING(head), F_RING(cur), F_RING(tail), F_RING(flags), F_RING(ts), F_RING(offset_mask),
    F_RING(buf_align), F_RING(sem),
};
static const struct field slot_fields[] = { F_SLOT(buf_idx), F_SLOT(len), F_SLOT(flags), F_SLOT(ptr) };
#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

/* A bad value for a field: near the limits the engine must check, or random. */
static uint64_t bad_value(const struct nmc_port *p, uint32_t nslots)
{
    const uint64_t near[] = { 0, 1, 2, nslots - 1, nslots, nslots + 1, p->g.buf_num - 1,
                              p->g.buf_num, p->g.buf_num + 1, p->g.buf_size, p->g.buf_size + 1,
                              0x7fffffff, 0xffff, UINT32_MAX, UINT64_MAX };
    uint64_t r = R();

    return r & 1 ? near[R() % (sizeof(near) / sizeof(near[0]))] : r & 2 ? R() % (2 * nslots + 4) : R();
}

static void write_field(uint8_t *at, size_t size, uint64_t v)
{
    if (size <= 8) {
        memcpy(at, &v, size);           /* little-endian: the low bytes */
        return;
    }
    fill_random(at, size);
}

/* One corruption: field k of the 3 tables (counted in hit[k]). */
static void corrupt_one(struct nmc_port *p, uint32_t *hit)
{
    uint32_t nif = NFIELDS(if_fields), nring = NFIELDS(ring_fields), nslot = NFIELDS(slot_fields);
    uint32_t k = (uint32_t)(R() % (nif + nring + nslot)), d = (uint32_t)(R() & 1);
    struct nmc_lring *lr = d ? p->rx : p->tx;
    uint32_t cnt = d ? p->nrx : p->ntx;
    struct nmc_lring *one = cnt ? &lr[R() % cnt] : NULL;
    struct netmap_ring *ring = one ? (R() & 3 ? one->ring : one->peer_ring) : NULL;
    uint32_t n = one ? one->n : 1;

    hit[k]++;
    if (k < nif) {
        const struct field *f = &if_fields[k];
        size_t extra = f->ofs == offsetof(struct netmap_if, ring_ofs) ? 8 * (R() % (p->ntx + p->nrx + 2)) : 0;
        write_field((uint8_t *)p->nifp + f->ofs + extra, f->size, bad_value(p, n));
    } else if (!ring) {
        return;
    } else if (k < nif + nring) {
        const struct field *f = &ring_fields[k - nif];
        write_field((uint8_t *)ring + f->ofs, f->size, bad_value(p, n));
    } else {
        const struct field *f = &slot_fields[k - nif - nring];
        write_field((uint8_t *)&ring->slot[R() % n] + f->ofs, f->size, bad_value(p, n));
    }
}

static int engine_call(struct nmc_port *p, uint8_t *buf, size_t cap)
{
    uint32_t lens[4];
    struct nmc_pkt pkt;

    switch (R() % 6) {
    case 0: return nmc_txsync(p);
    case 1: return nmc_rxsync(p);
    case 2: return nmc_poll(p, POLLIN | POLLOUT, 0);
    case 3: return nmc_inject(p, buf, 60 + R() % 9000);
    case 4: return nmc_recv_batch(p, buf, 2048, lens, 4);
    default:
        return nmc_next_packet(p, (int)(R() & 1), &pkt) == 1 ? nmc_copy_packet(p, &pkt, buf, cap) : 0;
    }
}

static int fields(const struct opts *o)
{
    uint32_t total = NFIELDS(if_fields) + NFIELDS(ring_fields) + NFIELDS(slot_fields), covered = 0;
    uint32_t hit[NFIELDS(if_fields) + NFIELDS(ring_fields) + NFIELDS(slot_fields)] = { 0 };
    struct nmc_port *p = open_port(o);
    static uint8_t buf[4 * 9216];
    uint64_t done = 0, calls = 0, einval = 0, other = 0;

    out("ready fields");
    while (done < o->iters) {
        uint32_t batch = 1 + (uint32_t)(R() % 4);
        int r;
        if ((done & 1023) == 0)
            check_deadline("fields");
        for (uint32_t k = 0; k < batch && done < o->iters; k++, done++)
            corrupt_one(p, hit);
        r = engine_call(p, buf, sizeof(buf));
        calls++;
        einval += r == -EINVAL;
        if (r < 0 && r != -EINVAL) {
            other++;
            out("other %d (%s) after %" PRIu64 " corruptions", r, strerror(-r), done);
        }
    }
    for (uint32_t k = 0; k < total; k++)
        covered += hit[k] > 0;
    out("done corruptions=%" PRIu64 " fields=%u covered=%u calls=%" PRIu64 " einval=%" PRIu64
        " other=%" PRIu64, done, total, covered, calls, einval, other);
    nmc_port_close(p);
    return 0;
}

/* ------------------------------------------------------------------ */
/* send / recv */

static void wait_room(struct nmc_port *p)
{
    int r = nmc_poll(p, POLLOUT, 5);

    if (r < 0 && r != -EINVAL && r != -EINTR)
        FAIL("poll: %s", strerror(-r));
}

static int sender(const struct opts *o)
{
    struct nmc_port *p = open_port(o);
    uint8_t f[MAXLEN], in[2048];
    uint32_t seq = 0, lens[1], lseq, sent_before = 0, n;
    uint8_t last;
    struct opts ack = *o;

    memcpy(ack.src, o->dst, 6);             /* the answer comes from the receiver */
    out("ready send");
    for (;;) {
        check_deadline("send");
        if (stop && !sent_before)
            sent_before = seq ? seq : 1;
        n = make_frame(o, f, o->tag, seq, stop ? 1 : 0);
        if (nmc_inject(p, f, n) > 0)
            seq++;
        while (nmc_recv_batch(p, in, sizeof(in), lens, 1) == 1 && !stop)
            ;                               /* keep our RX ring drained for the answer */
        if (nmc_txsync(p) < 0 || !stop) {
            if (!stop)
                wait_room(p);
            continue;
        }
        /* last frames: one at a time until the receiver answers one */
        nmc_poll(p, POLLIN, 2);
        while (nmc_recv_batch(p, in, sizeof(in), lens, 1) == 1)
            if (parse_frame(&ack, in, lens[0], lens[0] < sizeof(in) ? lens[0] : sizeof(in), ACK_TAG,
                            &lseq, &last) == 1 && last) {       /* not the announcement */
                out("done sent=%u before_stop=%u", seq, sent_before);
                nmc_port_close(p);
                return 0;
            }
    }
}

/* A broadcast frame from us (not an answer: last = 0). */
static void announce(struct nmc_port *p, const struct opts *ack)
{
    struct opts bc = *ack;
    uint8_t f[MAXLEN];
    uint32_t n;

    memset(bc.dst, 0xff, 6);
    n = make_frame(&bc, f, ACK_TAG, 0, 0);
    if (nmc_inject(p, f, n) > 0)
        nmc_txsync(p);
}

/* The sender's VALE port is gone (it got an answer and closed). */
static bool peer_gone(const struct opts *o)
{
    struct nmc_vale_list l = { .bridge_idx = 0 };

    snprintf(l.name, sizeof(l.name), "%s", o->peer);
    return nmc_vale_list(o->rundir, &l) < 0;
}

static int receiver(const struct opts *o)
{
    struct nmc_port *p = open_port(o);
    uint8_t in[16][2048], f[MAXLEN];
    uint32_t lens[16], seq, n, got = 0, foreign = 0, gaps = 0, next = 0, copies = 0, lastseq = 0;
    uint32_t loops = 0;
    bool answered = false;
    struct nmc_port_stats st;
    struct opts ack = *o;
    uint8_t last;

    memcpy(ack.dst, o->src, 6);
    memcpy(ack.src, o->dst, 6);
    /* let a switch learn where we are: the sender's frames then come to us
     * alone, and nobody else can replay them */
    announce(p, &ack);
    out("ready recv");
    for (;;) {
        int r;
        check_deadline("recv");
        if (answered && (!o->peer || peer_gone(o)))
            break;
        if (++loops % 16 == 0 && !got)
            announce(p, &ack);              /* for ports opened later */
        r = nmc_poll(p, POLLIN, 5);
        if (r < 0 && r != -EINVAL && r != -EINTR)
            FAIL("poll: %s", strerror(-r));
        n = (uint32_t)nmc_recv_batch(p, &in[0][0], sizeof(in[0]), lens, 16);
        for (uint32_t i = 0; i < n; i++) {
            int k = parse_frame(o, in[i], lens[i], lens[i] < sizeof(in[i]) ? lens[i] : sizeof(in[i]),
                                o->tag, &seq, &last);
            if (k == 0) {
                foreign++;
                continue;
            }
            if (k < 0)
                FAIL("corrupt frame from the sender: seq %u len %u", seq, lens[i]);
            if (k == 2 || seq < next) {     /* a copy of an earlier frame, sent again */
                copies++;
                continue;
            }
            gaps += seq - next;
            next = seq + 1;
            got++;
            if (last) {                     /* answer every last frame (a switch may drop one) */
                uint32_t len = make_frame(&ack, f, ACK_TAG, seq, 1);
                while (nmc_inject(p, f, len) <= 0) {
                    check_deadline("ack");
                    nmc_txsync(p);
                }
                nmc_txsync(p);
                answered = true;
                lastseq = seq;
            }
        }
    }
    nmc_port_stats(p, &st);
    out("done got=%u gaps=%u foreign=%u copies=%u rx_dropped=%" PRIu64 " last=%u",
        got, gaps, foreign, copies, st.rx_dropped, lastseq);
    nmc_port_close(p);
    return 0;
}

/* ------------------------------------------------------------------ */
/* victim: the other end of the scribbler's pipe */

struct snapshot {
    struct nmc_geom g;
    struct nmc_holder h;
    struct nmc_port_rec rec;
    uint32_t nslots[2][NMC_PIPE_MAXRINGS], peer[2][NMC_PIPE_MAXRINGS];
};

static void take(const struct nmc_port *p, struct snapshot *s)
{
    struct nmc_lring *lr[2] = { p->tx, p->rx };
    uint32_t cnt[2] = { p->ntx, p->nrx };

    s->g = ((const struct nmc_region_hdr *)p->ctl)->g;
    s->h = *p->holder;
    s->rec = *p->rec;
    for (int d = 0; d < 2; d++)
        for (uint32_t i = 0; i < cnt[d]; i++) {
            s->nslots[d][i] = lr[d][i].kr->nslots;
            s->peer[d][i] = lr[d][i].kr->peer;
        }
}

/* The engine's state of this port after a call of ours returned. */
static void check_state(const struct nmc_port *p, const struct snapshot *s0, const char *after)
{
    struct nmc_lring *lr[2] = { p->tx, p->rx };
    uint32_t cnt[2] = { p->ntx, p->nrx };
    struct snapshot s;

    take(p, &s);
    if (memcmp(&s.g, &s0->g, sizeof(s.g)) || memcmp(&s.g, &p->g, sizeof(s.g)))
        FAIL("region geometry changed (after %s)", after);
    s.h.bells_pending = s0->h.bells_pending;    /* written by wakers */
    s.h.fill_target = s0->h.fill_target;
    if (memcmp(&s.h, &s0->h, sizeof(s.h)))
        FAIL("holder entry changed (after %s)", after);
    if (memcmp(&s.rec, &s0->rec, sizeof(s.rec)))
        FAIL("port record changed (after %s)", after);
    for (int d = 0; d < 2; d++)
        for (uint32_t i = 0; i < cnt[d]; i++) {
            const struct nmc_kring *kr = lr[d][i].kr;
            uint32_t n = lr[d][i].n;
            if (s.nslots[d][i] != s0->nslots[d][i] || s.peer[d][i] != s0->peer[d][i])
                FAIL("kring %d/%u geometry changed (after %s)", d, i, after);
            if (kr->hwcur >= n || kr->hwtail >= n || kr->rhead >= n || kr->rcur >= n ||
                kr->rtail >= n || nmc_load_acq(&kr->pipe_tail) >= n)
                FAIL("kring %d/%u index out of range (after %s)", d, i, after);
            if (nmc_load_acq(&kr->busy) == p->hidx + 1)
                FAIL("kring %d/%u left busy (after %s)", d, i, after);
        }
}

static int victim(const struct opts *o)
{
    struct nmc_port *p = open_port(o);
    uint8_t f[MAXLEN], in[8][2048];
    uint32_t lens[8], seq = 0;
    uint64_t calls = 0, einval = 0, rx = 0;
    struct snapshot s0;
    int r;

    take(p, &s0);
    out("ready victim");
    while (!stop) {
        check_deadline("victim");
        r = nmc_inject(p, f, make_frame(o, f, o->tag, seq++, 0));
        check_state(p, &s0, "inject");
        for (int k = 0; k < 3; k++) {
            r = k == 0 ? nmc_txsync(p) : k == 1 ? nmc_rxsync(p) : nmc_poll(p, POLLIN | POLLOUT, 1);
            if (r < 0 && r != -EINVAL && r != -EINTR)
                FAIL("sync %d: %s", k, strerror(-r));
            einval += r == -EINVAL;
            calls++;
            check_state(p, &s0, k == 0 ? "txsync" : k == 1 ? "rxsync" : "poll");
        }
        r = nmc_recv_batch(p, &in[0][0], sizeof(in[0]), lens, 8);
        rx += r > 0 ? (uint32_t)r : 0;
        check_state(p, &s0, "recv");
    }
    out("done calls=%" PRIu64 " einval=%" PRIu64 " rx=%" PRIu64 " sent=%u", calls, einval, rx, seq);
    nmc_port_close(p);
    return 0;
}

/* ------------------------------------------------------------------ */

static int parse_mac(const char *s, uint8_t m[6])
{
    unsigned v[6];

    if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
        return -1;
    for (int i = 0; i < 6; i++)
        m[i] = (uint8_t)v[i];
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = { .iters = 2000, .timeout = 60, .tag = 0x5eed,
                      .dst = { 2, 0, 0, 0, 0, 0xb }, .src = { 2, 0, 0, 0, 0, 0xa } };
    const char *role = argc > 1 ? argv[1] : "";
    int c;

    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGUSR1, on_usr1);
    optind = 2;
    while ((c = getopt(argc, argv, "p:r:g:n:s:T:d:m:a:R")) != -1) {
        switch (c) {
        case 'p': o.port = optarg; break;
        case 'a': o.peer = optarg; break;
        case 'R': o.no_rx = true; break;
        case 'r': o.rundir = optarg; break;
        case 'g': o.tag = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'n': o.iters = strtoull(optarg, NULL, 0); break;
        case 's': o.seed = strtoull(optarg, NULL, 0); break;
        case 'T': o.timeout = atof(optarg); break;
        case 'd': if (parse_mac(optarg, o.dst) < 0) FAIL("bad -d"); break;
        case 'm': if (parse_mac(optarg, o.src) < 0) FAIL("bad -m"); break;
        default: FAIL("usage: scribble scribbler|fields|send|recv|victim -p PORT [options]");
        }
    }
    if (!o.port)
        FAIL("usage: scribble scribbler|fields|send|recv|victim -p PORT [options]");
    rng ^= o.seed * 0x9e3779b97f4a7c15ULL;
    deadline = now() + o.timeout;
    if (!strcmp(role, "scribbler"))
        return scribbler(&o);
    if (!strcmp(role, "fields"))
        return fields(&o);
    if (!strcmp(role, "send"))
        return sender(&o);
    if (!strcmp(role, "recv"))
        return receiver(&o);
    if (!strcmp(role, "victim"))
        return victim(&o);
    FAIL("unknown role '%s'", role);
}
