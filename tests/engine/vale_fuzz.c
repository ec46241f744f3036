/*
 * vale_fuzz.c -- corrupt every piece of shared memory a VALE port reads
 * (its own rings, another port's rings, the switch file's port table, its
 * virtio-net header lengths included, and learning table) at random between
 * syncs, and check that the engine neither crashes nor touches memory it
 * should not.  Built together with
 * the engine sources under -fsanitize=address,undefined by
 * tests/unit/test_vale_engine.py; any sanitizer report aborts the run.
 *
 *   vale_fuzz [-s seed] [-n iterations]      (rundir: $NMCOMPAT_RUNDIR)
 *
 * Ring memory lives in mmap'ed files, which AddressSanitizer does not
 * watch, so the program also keeps canaries: the constant header fields of
 * every ring object of its ports and the (never used) ring object after
 * each port's last one must not change.  A decoy port on another switch
 * (vale9) must keep its switch file whatever is written into vale0's.
 *
 * Phase 1 mixes traffic (all lengths up to 9000 bytes, chains, indirect
 * slots, every kind of destination) with corruption, reopening ports now
 * and then.  Phase 2 closes them and checks that fresh ports on the same
 * switch exchange unicast traffic exactly.
 *
 * Output: "done key=value ..." and exit 0, or "FAIL <why>" and exit 1.
 */
#include "nmc_vale.h"
#include "fuzz_rand.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <net/netmap_user.h>

#define NPORTS 3
#define MAXCAN 64

struct fport {
    const char *name;
    uint32_t rings, tx_slots, rx_slots;
    uint8_t mac;
    struct nmc_port *p;
};

static struct fport ports[NPORTS] = {
    { "vale0:a", 4, 0, 0, 0xa1, NULL },
    { "vale0:b", 1, 64, 256, 0xb2, NULL },
    { "vale0:c", 2, 64, 4096, 0xc3, NULL },    /* TX and RX rings of different sizes */
};

struct canary {
    uint8_t *addr;
    uint8_t want[64];
    uint32_t len;
    char what[64];
};

static struct canary can[MAXCAN];
static uint32_t ncan;
static uint8_t scratch[65536 + 64];           /* what NS_INDIRECT slots point at */
static char rundir[256];
static struct nmc_switch *sw;                 /* vale0's switch file, mapped here */
static struct nmc_switch saved;               /* a sane copy of it */

static void add_canary(uint8_t *addr, uint32_t len, const char *what, uint32_t obj)
{
    struct canary *c = &can[ncan++];

    if (ncan > MAXCAN)
        fail("too many canaries");
    c->addr = addr;
    c->len = len;
    memcpy(c->want, addr, len);
    snprintf(c->what, sizeof(c->what), "%s obj %u", what, obj);
}

/* The constant part of every ring header of every port, and the ring
 * object after each port's last: nothing may write there. */
static void record_canaries(void)
{
    ncan = 0;
    for (int i = 0; i < NPORTS; i++) {
        struct nmc_port *p = ports[i].p;
        uint32_t last = 0;
        if (!p)
            continue;
        for (uint32_t d = 0; d < 2; d++) {
            for (uint32_t k = 0; k < p->rec->nrings[0][d]; k++) {
                uint32_t obj = p->rec->first_obj[0][d] + k;
                add_canary((uint8_t *)nmc_ring_obj(p->mem, &p->g, obj), 20, ports[i].name, obj);
                if (obj > last)
                    last = obj;
            }
        }
        if (last + 1 < p->g.ring_num)
            add_canary((uint8_t *)nmc_ring_obj(p->mem, &p->g, last + 1), 64, "unused after", last + 1);
    }
}

static void check_canaries(uint64_t it)
{
    for (uint32_t i = 0; i < ncan; i++)
        if (memcmp(can[i].addr, can[i].want, can[i].len) != 0)
            fail("iteration %" PRIu64 ": ring memory outside any slot changed (%s)", it, can[i].what);
}

static int open_port(struct fport *f)
{
    struct nmc_pipe_req req;

    memset(&req, 0, sizeof(req));
    req.parent = f->name;
    req.mode = NR_REG_ALL_NIC;
    req.tx_rings = req.rx_rings = f->rings;
    req.tx_slots = f->tx_slots;
    req.rx_slots = f->rx_slots;
    req.spin_us = 0;
    return nmc_vale_open(&req, &f->p);
}

static struct nmc_port *open_named(const char *name)
{
    struct nmc_pipe_req req;
    struct nmc_port *p;
    int err;

    memset(&req, 0, sizeof(req));
    req.parent = name;
    req.mode = NR_REG_ALL_NIC;
    req.spin_us = 0;
    if ((err = nmc_vale_open(&req, &p)) < 0)
        fail("open %s: %s", name, strerror(-err));
    return p;
}

static ino_t sw_ino;

/* Map vale0's switch file, again if it was replaced (a corrupted table
 * can make it look empty, and then it is removed and made anew). */
static bool map_switch(void)
{
    char path[512];
    struct stat st;
    int fd;

    snprintf(path, sizeof(path), "%s/vale.vale0", rundir);
    if (sw && stat(path, &st) == 0 && st.st_ino == sw_ino)
        return true;
    if (sw)
        munmap(sw, sizeof(*sw));
    sw = NULL;
    fd = open(path, O_RDWR);
    if (fd < 0)
        return false;
    if (fstat(fd, &st) < 0 || (size_t)st.st_size != sizeof(*sw)) {
        close(fd);
        return false;
    }
    sw = mmap(NULL, sizeof(*sw), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (sw == MAP_FAILED)
        fail("mmap switch: %s", strerror(errno));
    sw_ino = st.st_ino;
    return true;
}

static void restore_switch(void)
{
    if (map_switch())
        memcpy(sw, &saved, sizeof(saved));
}

/* ------------------------------------------------------------ traffic */

static void put_frame(uint8_t *f, uint32_t len, uint8_t src)
{
    static const uint8_t dsts[][6] = {
        { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, { 0x01, 0x00, 0x5e, 0, 0, 1 },
        { 0x02, 0, 0, 0, 0, 0xa1 }, { 0x02, 0, 0, 0, 0, 0xb2 }, { 0x02, 0, 0, 0, 0, 0xc3 },
        { 0x02, 0, 0, 0, 0, 0x77 },
    };
    uint8_t hdr[14];

    memcpy(hdr, dsts[pick(6)], 6);
    hdr[6] = 0x02; hdr[7] = hdr[8] = hdr[9] = hdr[10] = 0; hdr[11] = src;
    if (pick(16) == 0)
        hdr[6] = (uint8_t)R();                  /* any source, multicast too */
    hdr[12] = 0x88; hdr[13] = 0xb5;
    memcpy(f, hdr, len < 14 ? len : 14);
    for (uint32_t j = 14; j < len; j++)
        f[j] = (uint8_t)(j * 7 + src);
}

static uint32_t rand_len(void)
{
    switch (pick(6)) {
    case 0: return pick(14);                    /* too short */
    case 1: return 14 + pick(50);
    case 2: return 60 + pick(1455);
    case 3: return 1515 + pick(7486);            /* chains up to 9000 */
    default: return 60;
    }
}

static void send_some(struct fport *f)
{
    struct nmc_port *p = f->p;

    if (!p)
        return;
    struct netmap_if *nifp = nmc_port_nifp(p);
    uint32_t k = pick(p->ntx), bs = p->g.buf_size;
    struct netmap_ring *ring = NETMAP_TXRING(nifp, p->holder->first[0] + k);
    uint32_t n = p->tx[k].n, h = ring->head % n, m = 1 + pick(40);
    static uint8_t frame[9000];

    for (uint32_t i = 0; i < m; i++) {
        uint32_t len = rand_len(), frags = len ? (len + bs - 1) / bs : 1;
        bool indirect = pick(8) == 0;
        put_frame(indirect ? scratch : frame, len, f->mac);
        for (uint32_t fr = 0, off = 0; fr < frags; fr++) {
            struct netmap_slot *s = &ring->slot[h];
            uint32_t chunk = len - off > bs ? bs : len - off;
            if (indirect) {
                s->ptr = (uint64_t)(uintptr_t)(scratch + off);
                s->flags = NS_INDIRECT;
            } else {
                if (s->buf_idx >= 2 && s->buf_idx < p->g.buf_num)
                    memcpy(NETMAP_BUF(ring, s->buf_idx), frame + off, chunk);
                s->flags = 0;
            }
            s->len = (uint16_t)chunk;
            if (fr + 1 < frags)
                s->flags |= NS_MOREFRAG;
            off += chunk;
            h = h + 1 == n ? 0 : h + 1;
        }
    }
    ring->head = ring->cur = h;
}

static uint8_t rxbuf[64 * 16384];

static void drain(struct fport *f)
{
    struct nmc_port *p = f->p;

    if (!p)
        return;
    struct nmc_pkt pkt;
    uint32_t lens[64];

    switch (pick(3)) {
    case 0:
        nmc_recv_batch(p, rxbuf, 16384, lens, 64);
        break;
    case 1:
        for (int i = 0; i < 64 && nmc_next_packet(p, (int)pick(2), &pkt) == 1; i++)
            if (pick(2))
                nmc_copy_packet(p, &pkt, rxbuf, sizeof(rxbuf));
        break;
    default:
        for (uint32_t k = 0; k < p->nrx; k++) {
            struct netmap_ring *ring = p->rx[k].ring;
            uint32_t t = ring->tail % p->rx[k].n;
            ring->head = ring->cur = t;
        }
    }
}

/* --------------------------------------------------------- corruption */

static uint32_t rand_index(uint32_t n)
{
    switch (pick(4)) {
    case 0: return R();
    case 1: return n + pick(8);
    case 2: return n - 1 - pick(n < 4 ? n : 4);
    default: return pick(n);
    }
}

static void corrupt_ring(struct netmap_ring *ring, uint32_t n, const struct nmc_port *p)
{
    struct netmap_slot *s = &ring->slot[pick(n)];

    switch (pick(8)) {
    case 0: ring->head = rand_index(n); break;
    case 1: ring->cur = rand_index(n); break;
    case 2: ring->tail = rand_index(n); break;
    case 3: s->buf_idx = pick(2) ? R() : (pick(2) ? pick(2) : p->g.buf_num - 1 + pick(3)); break;
    case 4: s->len = (uint16_t)R(); break;
    case 5: s->flags = (uint16_t)R(); s->ptr = pick(2) ? 0 : (uint64_t)(uintptr_t)scratch; break;
    case 6: ring->head = ring->cur = rand_index(n); break;
    default:                                    /* a whole stretch of slots */
        for (uint32_t j = 0, at = pick(n); j < 1 + pick(64); j++, at = (at + 1) % n) {
            ring->slot[at].len = (uint16_t)R();
            ring->slot[at].flags = (uint16_t)(R() & (NS_MOREFRAG | NS_BUF_CHANGED | 0xff00));
        }
    }
}

static uint32_t plausible(uint32_t cur)
{
    switch (pick(6)) {
    case 0: return R();
    case 1: return cur + 1;
    case 2: return cur - 1;
    case 3: return pick(16);
    case 4: return cur + pick(8);
    default: return (uint32_t[]){ 64, 256, 1024, 4096, 2, 0 }[pick(6)];
    }
}

static void corrupt_switch(void)
{
    if (!map_switch())
        return;
    uint32_t q = pick(4) ? pick(8) : pick(NMC_SW_MAXPORTS);
    struct nmc_sw_port *sp = &sw->ports[q], *other = &sw->ports[pick(8)];

    switch (pick(16)) {
    case 0: sp->state = pick(2) ? NMC_LIVE : R(); break;
    case 1: sp->gen = R(); break;
    case 2: sp->mem_id = (uint16_t)(pick(2) ? R() : other->mem_id + pick(3)); break;
    case 3: sp->rec = plausible(sp->rec); break;
    case 4: sp->nrx = plausible(sp->nrx); break;
    case 5: sp->rx_first_obj = plausible(sp->rx_first_obj); break;
    case 6: sp->rx_slots = plausible(sp->rx_slots); break;
    case 7: sp->ntx = R(); sp->last_smac = ((uint64_t)R() << 32) | R(); break;
    case 8:
        if (pick(2))
            memset(sp->name, (int)R(), sizeof(sp->name));    /* no terminator */
        else
            snprintf(sp->name, sizeof(sp->name), "%s", ports[pick(NPORTS)].name);
        break;
    case 9: *sp = *other; break;                        /* a second entry for one port */
    case 10: sp->drops = sp->forwarded = sp->sent = sp->tx_dropped = ((uint64_t)R() << 32) | R(); break;
    case 11: sw->bridge_batch = pick(2) ? R() : pick(4); break;
    case 12:
        if (pick(2))
            memset(sw->name, (int)R(), sizeof(sw->name));
        else
            snprintf(sw->name, sizeof(sw->name), "%s", pick(2) ? "vale9" : "vale0");
        break;
    case 13:                                            /* a virtio-net header length */
        sp->hdr_len = pick(2) ? (uint16_t)R() : (uint16_t[]){ 0, 10, 12 }[pick(3)];
        break;
    default: {                                          /* the learning table */
        uint32_t h = pick(NMC_BDG_HASH);
        switch (pick(3)) {
        case 0: sw->ht[h] = ((uint64_t)R() << 32) | R(); break;
        case 1: sw->ht[h] = 1ULL << 63 | (uint64_t)pick(256) << 48 | ((uint64_t)R() << 16 | pick(65536)); break;
        default:                                       /* a real MAC to any port number */
            for (uint32_t i = 0; i < NPORTS; i++) {
                uint8_t m[6] = { 0x02, 0, 0, 0, 0, ports[i].mac };
                uint64_t v = (uint64_t)ports[i].mac << 40 | 0x02;
                sw->ht[nmc_vale_hash(m)] = 1ULL << 63 | (uint64_t)pick(256) << 48 | v;
            }
        }
    }
    }
}

static void corrupt(void)
{
    struct fport *f = &ports[pick(NPORTS)];
    struct nmc_port *p = f->p;

    if (!p)
        return;
    switch (pick(5)) {
    case 0: case 1: {
        uint32_t k = pick(p->ntx);
        corrupt_ring(p->tx[k].ring, p->tx[k].n, p);
        break;
    }
    case 2: case 3: {
        uint32_t k = pick(p->nrx);
        corrupt_ring(p->rx[k].ring, p->rx[k].n, p);
        break;
    }
    default:
        corrupt_switch();
    }
}

/* ------------------------------------------------------------- phases */

static void sync_all(void)
{
    for (int i = 0; i < NPORTS; i++) {
        struct nmc_port *p = ports[i].p;
        struct nmc_port_stats st;
        if (!p)
            continue;
        switch (pick(4)) {
        case 0: nmc_poll(p, POLLIN | POLLOUT, 0); break;
        case 1: nmc_rxsync(p); nmc_txsync(p); break;
        default: nmc_txsync(p); nmc_rxsync(p);
        }
        nmc_port_stats(p, &st);
    }
}

static void control_ops(void)
{
    struct nmc_vale_list l;
    struct nmc_port_info info;

    memset(&l, 0, sizeof(l));
    for (int i = 0; i < 300 && nmc_vale_list(NULL, &l) == 0; i++) {
        l.name[0] = 0;
        l.port_idx++;
    }
    nmc_vale_port_info(NULL, ports[pick(NPORTS)].name, &info);
    memset(&l, 0, sizeof(l));
    snprintf(l.name, sizeof(l.name), "%s", ports[pick(NPORTS)].name);
    nmc_vale_list(NULL, &l);
}

static uint32_t reopen_failed;

static void reopen(struct fport *f)
{
    uint32_t old_q = f->p ? f->p->rec->sw_port % NMC_SW_MAXPORTS : 0;
    int err;

    if (f->p)
        nmc_port_close(f->p);
    f->p = NULL;
    saved.ports[old_q].state = NMC_FREE;           /* the sane copy follows the change */
    if ((err = open_port(f)) < 0) {
        /* the port table may be full of forged entries: put a sane one back */
        reopen_failed++;
        restore_switch();
        if ((err = open_port(f)) < 0) {
            /* still refused (e.g. the table made the switch look empty and
             * it was removed under live ports): an error, not a crash, is
             * all that is asked here; try again at a later reopen */
            f->p = NULL;
            record_canaries();
            return;
        }
    }
    if (map_switch())
        saved.ports[f->p->rec->sw_port % NMC_SW_MAXPORTS] = sw->ports[f->p->rec->sw_port % NMC_SW_MAXPORTS];
    record_canaries();
}

/* On a failure: the live entries of vale0's table, to see why. */
static void dump_switch(void)
{
    sw = NULL;
    if (!map_switch()) {
        printf("no switch file\n");
        return;
    }
    for (uint32_t q = 0; q < NMC_SW_MAXPORTS; q++) {
        struct nmc_sw_port *sp = &sw->ports[q];
        if (sp->state == NMC_LIVE)
            printf("entry %u name=%.20s gen=%u mem_id=%u rec=%u nrx=%u first=%u slots=%u\n", q,
                   sp->name, sp->gen, sp->mem_id, sp->rec, sp->nrx, sp->rx_first_obj, sp->rx_slots);
    }
    fflush(stdout);
}

static void exact_exchange(void)
{
    struct nmc_port *x = open_named("vale0:f1"), *y = open_named("vale0:f2");
    struct nmc_port_stats sx, sy;
    uint8_t f[200];
    uint32_t got_x = 0, got_y = 0;
    struct nmc_pkt pkt;

    /* learn both MACs (a frame to oneself is learned from, then dropped) */
    memset(f, 0, sizeof(f));
    f[0] = f[6] = 0x02; f[5] = f[11] = 0xf1;
    nmc_inject(x, f, 60);
    nmc_txsync(x);
    f[5] = f[11] = 0xf2;
    nmc_inject(y, f, 60);
    nmc_txsync(y);
    for (int round = 0; round < 100; round++) {
        for (int i = 0; i < 10; i++) {
            f[5] = 0xf2; f[11] = 0xf1; f[14] = (uint8_t)i;
            if (nmc_inject(x, f, 60 + i) != (int)(60 + i))
                fail("inject into f1");
            f[5] = 0xf1; f[11] = 0xf2;
            if (nmc_inject(y, f, 100 + i) != (int)(100 + i))
                fail("inject into f2");
        }
        nmc_txsync(x);
        nmc_txsync(y);
        nmc_rxsync(x);
        nmc_rxsync(y);
        while (nmc_next_packet(y, 1, &pkt) == 1) {
            if (pkt.len != 60 + got_y % 10)
                fail("f2 got a frame of %u bytes, want %u", pkt.len, 60 + got_y % 10);
            got_y++;
        }
        while (nmc_next_packet(x, 1, &pkt) == 1) {
            if (pkt.len != 100 + got_x % 10)
                fail("f1 got a frame of %u bytes, want %u", pkt.len, 100 + got_x % 10);
            got_x++;
        }
    }
    nmc_port_stats(x, &sx);
    nmc_port_stats(y, &sy);
    if (got_x != 1000 || got_y != 1000 || sx.rx_dropped || sy.rx_dropped || sx.forwarded != 1000 ||
        sy.forwarded != 1000) {
        dump_switch();
        fail("fresh ports: f1 got %u (fwd %" PRIu64 ", drop %" PRIu64 "), f2 got %u (fwd %" PRIu64
             ", drop %" PRIu64 "), want 1000 each", got_x, sx.forwarded, sx.rx_dropped, got_y,
             sy.forwarded, sy.rx_dropped);
    }
    nmc_port_close(x);
    nmc_port_close(y);
}

static void decoy_check(struct nmc_port *d1)
{
    struct nmc_port *d2;
    struct nmc_pkt pkt;
    uint8_t f[60];
    char path[512];
    struct stat st;

    snprintf(path, sizeof(path), "%s/vale.vale9", rundir);
    if (stat(path, &st) < 0)
        fail("the switch file of vale9 was removed (%s) while vale9:decoy is open", path);
    d2 = open_named("vale9:decoy2");
    memset(f, 0xff, 6);
    memset(f + 6, 0, 54);
    f[6] = 0x02;
    nmc_inject(d1, f, sizeof(f));
    nmc_txsync(d1);
    nmc_rxsync(d2);
    if (nmc_next_packet(d2, 1, &pkt) != 1)
        fail("the decoy switch vale9 no longer forwards");
    nmc_port_close(d2);
}

/* Send n 60-byte frames from port `from`, TX ring k, to the MAC of `to`. */
static void send_to(struct fport *from, uint32_t k, const struct fport *to, uint32_t n)
{
    struct nmc_port *p = from->p;
    struct netmap_ring *ring = p->tx[k].ring;
    uint32_t h = ring->head % p->tx[k].n;

    for (uint32_t i = 0; i < n; i++) {
        struct netmap_slot *s = &ring->slot[h];
        uint8_t *b = (uint8_t *)NETMAP_BUF(ring, s->buf_idx);
        memset(b, 0, 60);
        b[0] = b[6] = 0x02;
        b[5] = to->mac;
        b[11] = from->mac;
        s->len = 60;
        s->flags = 0;
        h = h + 1 == p->tx[k].n ? 0 : h + 1;
    }
    ring->head = ring->cur = h;
    nmc_txsync(p);
}

/* A forged entry for c: ring 0 is c's last TX ring (the right size, but no
 * leases there: refused), ring 1 is c's 4096-slot RX ring 0, whose lease
 * point is far beyond the entry's 64-slot size.  Whatever the engine makes
 * of it, nothing may be written outside the slots of the rings. */
static void directed_ring_size_mismatch(void)
{
    struct fport *a = &ports[0], *c = &ports[2];
    struct nmc_sw_port *sp = &sw->ports[c->p->rec->sw_port % NMC_SW_MAXPORTS];
    struct nmc_sw_port keep = *sp;

    send_to(c, 0, c, 1);                        /* learn c's MAC */
    for (int i = 0; i < 7; i++) {               /* move c's RX ring 0 lease point to ~3500 */
        send_to(a, 0, c, 500);
        nmc_rxsync(c->p);
        drain(c);
        nmc_rxsync(c->p);
        c->p->rx[0].ring->head = c->p->rx[0].ring->cur = c->p->rx[0].ring->tail % c->p->rx[0].n;
        nmc_rxsync(c->p);
    }
    sp->rx_first_obj = c->p->rec->first_obj[0][0] + 1;      /* c's last TX ring: 64 slots */
    sp->rx_slots = c->p->rec->nslots[0][0];
    sp->nrx = 2;                                             /* ring 1 = c's RX ring 0 */
    sp->gen++;
    send_to(a, 1, c, 1000);                     /* a's TX ring 1 -> destination ring 1 */
    check_canaries(0);
    *sp = keep;
    sp->gen += 2;
    nmc_rxsync(c->p);
    drain(c);
}

int main(int argc, char **argv)
{
    uint64_t iters = 5000, seed = 1;
    struct nmc_port *decoy;
    int c, err;

    while ((c = getopt(argc, argv, "s:n:")) != -1) {
        if (c == 's')
            seed = strtoull(optarg, NULL, 0);
        else if (c == 'n')
            iters = strtoull(optarg, NULL, 0);
        else
            return 2;
    }
    seed_state ^= seed * 0x9e3779b97f4a7c15ULL;
    if (nmc_rundir_resolve(NULL, rundir, sizeof(rundir)) < 0)
        fail("rundir");
    decoy = open_named("vale9:decoy");
    for (int i = 0; i < NPORTS; i++)
        if ((err = open_port(&ports[i])) < 0)
            fail("open %s: %s", ports[i].name, strerror(-err));
    if (!map_switch())
        fail("no switch file for vale0");
    memcpy(&saved, sw, sizeof(saved));
    record_canaries();
    directed_ring_size_mismatch();
    memcpy(&saved, sw, sizeof(saved));

    for (uint64_t it = 0; it < iters; it++) {
        for (int i = 0; i < NPORTS; i++)
            if (pick(2))
                send_some(&ports[i]);
        for (uint32_t k = pick(4); k > 0; k--)
            corrupt();
        sync_all();
        for (int i = 0; i < NPORTS; i++)
            if (pick(2))
                drain(&ports[i]);
        check_canaries(it);
        if (pick(64) == 0)
            control_ops();
        if (pick(200) == 0)
            restore_switch();                           /* let sane traffic flow again */
        if (pick(500) == 0)
            reopen(&ports[pick(NPORTS)]);
    }
    for (int i = 0; i < NPORTS; i++) {
        if (ports[i].p)
            nmc_port_close(ports[i].p);
        ports[i].p = NULL;
    }
    if (sw)
        munmap(sw, sizeof(*sw));
    decoy_check(decoy);
    exact_exchange();
    decoy_check(decoy);
    nmc_port_close(decoy);
    printf("done iterations=%" PRIu64 " reopen_failed=%u\n", iters, reopen_failed);
    return 0;
}
