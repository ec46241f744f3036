/*
 * pktgen.c -- the data loops of "nmcompat pkt-gen" (netmap's pkt-gen).
 *
 * Python parses the options, builds the template frame once and calls
 * nmc_pktgen_run() once per slice of time; each loop keeps its state in
 * struct nmc_pg_state, so a call may end anywhere (its time is up, the
 * capture buffer is full) and the next one resumes.  The loops behave as
 * netmap's pkt-gen, on which applications and scripts rely:
 *
 *  tx     every TX slot starts marked NS_BUF_CHANGED; a slot's buffer is
 *         rewritten only when that flag is set on it, unless every packet
 *         differs (address ranges, random addresses or sizes, -o 4/8);
 *         up to `burst` slots per ring and round, NS_REPORT on the last,
 *         head = cur = next, cur = tail when short of room; poll(POLLOUT,
 *         2 s) between rounds; at the end txsync until nothing is pending.
 *  rx     poll(POLLIN, 1 s); whole packets are counted (a slot without
 *         NS_MOREFRAG ends one), every slot's bytes; with forever == 0 the
 *         loop ends after 1 s without traffic.
 *  ping   `burst` frames with a 32-bit sequence number and a {u32 sec,
 *         u32 nsec} CLOCK_REALTIME stamp at the start of the UDP payload
 *         (byte 42 of an IPv4 frame), then poll(POLLIN, 3 s) and the RTT of
 *         every reply.  pong: echoes with the MAC and IP addresses swapped.
 *  txseq  a 32-bit big-endian sequence number at the start of the UDP
 *         payload of every slot, one ring.  rxseq: checks it per RX ring.
 *
 * Unlike netmap's tool, every frame keeps valid IP and UDP checksums
 * (incremental updates, RFC 1624).  Counters are stored as the loops go.
 */
#include "pktgen_int.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TX_POLL_MS      2000
#define RX_POLL_MS      1000
#define PING_POLL_MS    3000
#define DRAIN_STALL_NS  (2 * PG_SEC)    /* a TX ring nobody empties: give up */

/* ------------------------------------------------------------------ */
/* counters                                                            */
/* ------------------------------------------------------------------ */

static void add(uint64_t *field, uint64_t v)
{
    __atomic_store_n(field, *field + v, __ATOMIC_RELAXED);
}

/* One ring visit moved pkts packets of bytes bytes (an event if any). */
static void count(struct nmc_pktgen *pg, uint64_t pkts, uint64_t bytes)
{
    add(&pg->pkts, pkts);
    add(&pg->bytes, bytes);
    if (pkts)
        add(&pg->events, 1);
}

static bool done_count(const struct nmc_pktgen *pg)
{
    return pg->npackets && pg->pkts >= pg->npackets;
}

/* ------------------------------------------------------------------ */
/* tx                                                                  */
/* ------------------------------------------------------------------ */

static void mark_changed(struct tl_port *p)
{
    for (uint32_t i = 0; i < p->ntx; i++)
        for (uint32_t j = 0; j < p->tx[i].ring->num_slots; j++)
            p->tx[i].ring->slot[j].flags = NS_BUF_CHANGED;
}

/* A packet in several slots (-F, -M, frames larger than a buffer). */
static uint32_t tx_chain(struct nmc_pktgen *pg, struct netmap_ring *ring, uint32_t j, uint32_t size)
{
    uint32_t left = size, off = 0, n = 0;

    for (;;) {
        struct netmap_slot *sl = &ring->slot[j];
        uint32_t part = left < pg->frag_size ? left : pg->frag_size;
        memcpy(NETMAP_BUF(ring, sl->buf_idx), pg->frame + off, part);
        sl->len = (uint16_t)part;
        off += part;
        left -= part;
        n++;
        if (left == 0) {
            sl->flags = 0;
            break;
        }
        sl->flags = NS_MOREFRAG;
        j = nm_ring_next(ring, j);
    }
    if (pg->vary)
        nmc_pg_next_addresses(pg);
    return n;
}

/* Fill the packet at slot j; returns the slots it took. */
static uint32_t tx_packet(struct nmc_pktgen *pg, struct netmap_ring *ring, uint32_t j, uint32_t size)
{
    struct netmap_slot *slot = &ring->slot[j];
    uint8_t *buf = (uint8_t *)NETMAP_BUF(ring, slot->buf_idx);
    bool changed = slot->flags & NS_BUF_CHANGED;
    uint32_t opt = pg->options;

    if (pg->frags > 1 && !(opt & (NMC_PG_OPT_RUBBISH | NMC_PG_OPT_INDIRECT)))
        return tx_chain(pg, ring, j, size);
    slot->flags = 0;
    if (opt & NMC_PG_OPT_RUBBISH) {
        /* send whatever the buffer holds */
    } else if (opt & NMC_PG_OPT_INDIRECT) {
        slot->flags = NS_INDIRECT;
        slot->ptr = (uint64_t)(uintptr_t)pg->frame;
    } else if (pg->st->copy || changed) {
        memcpy(buf, pg->frame, size);
        if (pg->vary)
            nmc_pg_next_addresses(pg);
    } else if (opt & NMC_PG_OPT_PREFETCH) {
        __builtin_prefetch(buf);
    }
    slot->len = (uint16_t)size;
    return 1;
}

/* Queue up to count packets from head; NS_REPORT on the last slot. */
static uint32_t tx_batch(struct nmc_pktgen *pg, struct tl_ring *lr, uint32_t count, uint32_t size)
{
    struct netmap_ring *ring = lr->ring;
    uint32_t space = nm_ring_space(ring), head = ring->head, last = head, sent = 0;
    int64_t now = pg->cap ? pg_real() : 0;

    while (sent < count && space >= pg->frags) {
        uint32_t n;
        if (!nmc_pg_cap_room(pg, size))
            break;
        n = tx_packet(pg, ring, head, size);
        if (pg->cap)
            nmc_pg_cap_packet(pg, ring, lr->id, head, n, size, now);
        for (uint32_t i = 0; i < n; i++) {
            last = head;
            head = nm_ring_next(ring, head);
        }
        space -= n;
        sent++;
    }
    if (sent) {
        ring->slot[last].flags |= NS_REPORT;
        ring->head = ring->cur = head;
    }
    if (sent < count)
        ring->cur = ring->tail;         /* wake me when there is room */
    return sent;
}

static uint32_t random_size(struct nmc_pktgen *pg)
{
    uint32_t span = pg->pkt_size - pg->pkt_min_size;

    return pg->pkt_min_size + (span ? (uint32_t)nrand48(pg->st->rnd) % span : 0);
}

/* One round over the bound TX rings. */
static void tx_round(struct nmc_pktgen *pg)
{
    struct nmc_pg_state *s = pg->st;
    struct tl_port *p = s->p;

    for (uint32_t i = 0; i < p->ntx && !s->cap_full; i++) {
        uint64_t limit = pg->rate ? (uint64_t)s->tosend : pg->burst;
        uint32_t m;
        if (done_count(pg))
            break;
        if (pg->npackets && pg->npackets - pg->pkts < limit)
            limit = pg->npackets - pg->pkts;
        if (nm_ring_empty(p->tx[i].ring))
            continue;
        if (pg->pkt_min_size)
            nmc_pg_set_size(pg, random_size(pg));
        m = tx_batch(pg, &p->tx[i], (uint32_t)limit, s->size);
        count(pg, m, (uint64_t)m * s->size);
        if (pg->rate && (s->tosend -= m) <= 0)
            break;
    }
}

/* Flush, then txsync until every TX ring is empty (or nobody empties it). */
static int tx_finish(struct nmc_pktgen *pg)
{
    struct nmc_pg_state *s = pg->st;
    struct tl_port *p = s->p;

    if (s->phase != PH_DRAIN) {
        nmc_txsync(p->port);
        s->phase = PH_DRAIN;
        s->drain_since = pg_mono();
    }
    for (uint32_t i = 0; i < p->ntx; i++) {
        struct netmap_ring *ring = p->tx[i].ring;
        while (nm_tx_pending(ring) && !pg_stopped(pg)) {
            uint32_t tail = ring->tail;
            nmc_txsync(p->port);
            if (ring->tail != tail) {
                s->drain_since = pg_mono();
            } else if (pg_mono() - s->drain_since > DRAIN_STALL_NS) {
                pg->drain_stuck++;
                break;
            }
            if (pg_out_of_time(s))
                return 0;
            usleep(1);
        }
    }
    pg->toc_ns = pg_real();
    s->phase = PH_DONE;
    return 1;
}

/* A wait's result in a loop: 1 go on, 0 end this call, < 0 error. */
static int after_wait(int r)
{
    if (r == -EAGAIN)
        return 0;
    if (r == -ECANCELED || r >= 0)
        return (r > 0 && (r & POLLERR)) ? -EIO : 1;
    return r;
}

static int tx_run(struct nmc_pktgen *pg)
{
    struct nmc_pg_state *s = pg->st;
    int r;

    if (s->phase < PH_RUN && (r = nmc_pg_start(pg)) <= 0)
        return r;
    while (s->phase == PH_RUN) {
        if (pg_stopped(pg) || done_count(pg))
            break;
        if (pg->rate && s->tosend <= 0 && (r = nmc_pg_pace(pg)) <= 0) {
            if (r == 0)
                return 0;
            continue;
        }
        if ((r = after_wait(nmc_pg_wait(pg, POLLOUT, TX_POLL_MS))) <= 0)
            return r;
        tx_round(pg);
        if (s->cap_full || pg_out_of_time(s))
            return 0;
    }
    return tx_finish(pg);
}

/* ------------------------------------------------------------------ */
/* txseq                                                               */
/* ------------------------------------------------------------------ */

static void txseq_fill(struct nmc_pktgen *pg, struct tl_ring *lr, uint32_t limit)
{
    struct nmc_pg_state *s = pg->st;
    struct netmap_ring *ring = lr->ring;
    uint32_t head = ring->head, i;
    int64_t now = pg->cap ? pg_real() : 0;

    for (i = 0; i < limit && nmc_pg_cap_room(pg, s->size); i++) {
        struct netmap_slot *slot = &ring->slot[head];
        nmc_pg_put32(pg, pg->frame, s->pay, s->seq++, PG_CS_UDP);
        memcpy(NETMAP_BUF(ring, slot->buf_idx), pg->frame, s->size);
        if (s->fcnt == pg->frags && pg->vary)
            nmc_pg_next_addresses(pg);
        slot->len = (uint16_t)s->size;
        slot->flags = --s->fcnt > 0 ? NS_MOREFRAG : 0;
        if (s->fcnt == 0)
            s->fcnt = pg->frags;
        if (pg->cap)
            nmc_pg_cap_packet(pg, ring, lr->id, head, 1, s->size, now);
        head = nm_ring_next(ring, head);
    }
    if (i) {
        ring->slot[pg_ring_prev(ring, head)].flags |= NS_REPORT;
        ring->head = ring->cur = head;
        count(pg, i, (uint64_t)i * s->size);
        s->tosend -= i;
    }
}

static uint32_t txseq_limit(struct nmc_pktgen *pg, uint32_t space)
{
    struct nmc_pg_state *s = pg->st;
    uint64_t limit = pg->rate ? (uint64_t)s->tosend : pg->burst;

    if (space < limit)
        limit = space;
    if (pg->npackets) {
        uint64_t left = pg->npackets - pg->pkts;
        left += (pg->frags - left % pg->frags) % pg->frags;    /* whole packets */
        if (left < limit)
            limit = left;
    }
    limit -= limit % pg->frags;                                 /* end on a packet */
    return (uint32_t)limit;
}

static int txseq_run(struct nmc_pktgen *pg)
{
    struct nmc_pg_state *s = pg->st;
    struct tl_ring *lr = &s->p->tx[0];
    int r;

    if (s->phase < PH_RUN && (r = nmc_pg_start(pg)) <= 0)
        return r;
    while (s->phase == PH_RUN) {
        uint32_t space;
        if (pg_stopped(pg) || done_count(pg))
            break;
        if (pg->rate && s->tosend <= 0 && (r = nmc_pg_pace(pg)) <= 0) {
            if (r == 0)
                return 0;
            continue;
        }
        if ((r = after_wait(nmc_pg_wait(pg, POLLOUT, TX_POLL_MS))) <= 0)
            return r;
        if ((space = nm_ring_space(lr->ring)) != 0)
            txseq_fill(pg, lr, txseq_limit(pg, space));
        if (s->cap_full || pg_out_of_time(s))
            return 0;
    }
    return tx_finish(pg);
}

/* ------------------------------------------------------------------ */
/* rx, rxseq                                                           */
/* ------------------------------------------------------------------ */

/* Slots of the packet at j and its bytes; 0 while its last fragment has
 * not arrived (unless the ring is full of fragments: take them all). */
static uint32_t chain_at(struct netmap_ring *ring, uint32_t j, uint32_t avail, uint32_t *bytes)
{
    uint32_t n = 0, b = 0;
    bool whole = false;

    while (n < avail && !whole) {
        b += ring->slot[j].len;
        whole = !(ring->slot[j].flags & NS_MOREFRAG);
        n++;
        j = nm_ring_next(ring, j);
    }
    *bytes = b;
    return whole || avail + 1 >= ring->num_slots ? n : 0;
}

static int64_t ring_ts(const struct netmap_ring *ring)
{
    return (int64_t)ring->ts.tv_sec * PG_SEC + (int64_t)ring->ts.tv_usec * 1000;
}

/* Up to `burst` slots of whole packets from one RX ring. */
static uint32_t rx_ring(struct nmc_pktgen *pg, struct tl_ring *lr)
{
    struct netmap_ring *ring = lr->ring;
    uint32_t head = ring->head, avail = nm_ring_space(ring), used = 0, pkts = 0;
    uint32_t limit = avail < pg->burst ? avail : pg->burst;
    uint64_t bytes = 0;

    while (used < limit) {
        uint32_t b, n = chain_at(ring, head, avail - used, &b);
        if (n == 0 || !nmc_pg_cap_room(pg, b))
            break;
        if (pg->cap)
            nmc_pg_cap_packet(pg, ring, lr->id, head, n, b, ring_ts(ring));
        for (uint32_t i = 0; i < n; i++)
            head = nm_ring_next(ring, head);
        used += n;
        bytes += b;
        pkts++;
    }
    ring->head = ring->cur = head;
    count(pg, pkts, bytes);
    return pkts;
}

static void seq_event(struct nmc_pktgen *pg, uint32_t kind, uint32_t ring, uint32_t exp, uint32_t found)
{
    if (pg->nevents < NMC_PG_MAX_EVENTS)
        pg->ev[pg->nevents++] = (struct nmc_pg_event){ kind, ring, exp, found };
    else
        pg->lost_events++;
}

/* rxseq: one slot (every slot carries a whole frame with its number). */
static void rxseq_slot(struct nmc_pktgen *pg, uint32_t k, struct netmap_ring *ring, struct netmap_slot *sl)
{
    struct nmc_pg_state *s = pg->st;
    const uint8_t *f = nmc_pg_slot_data(ring, sl);
    uint32_t pay = sl->len >= PG_ETH_HLEN && pg_rd16(f + 12) == 0x0800 ? 42 : 62, seq;

    s->frags_seen++;
    if (!(sl->flags & NS_MOREFRAG)) {
        if (!s->first_packet && s->frags_seen != s->frags_exp) {
            pg->frag_errors++;
            seq_event(pg, NMC_PG_EV_FRAGS, k, s->frags_exp, s->frags_seen);
        }
        s->first_packet = false;
        s->frags_exp = s->frags_seen;
        s->frags_seen = 0;
    }
    if (sl->len < pay + 4) {
        seq_event(pg, NMC_PG_EV_SHORT, k, sl->len, 0);
        return;
    }
    seq = pg_rd32(f + pay);
    if (!s->seq_init[k]) {
        s->seq_init[k] = true;
    } else if (seq != s->seq_exp[k]) {
        bool ahead = seq - s->seq_exp[k] < 0x7fffffffu;
        ahead ? pg->seq_gaps++ : pg->seq_disorder++;
        seq_event(pg, ahead ? NMC_PG_EV_GAP : NMC_PG_EV_ORDER, k, s->seq_exp[k], seq);
    }
    s->seq_exp[k] = seq + 1;
}

static uint32_t rxseq_ring(struct nmc_pktgen *pg, uint32_t k)
{
    struct tl_ring *lr = &pg->st->p->rx[k];
    struct netmap_ring *ring = lr->ring;
    uint32_t head = ring->head, avail = nm_ring_space(ring), i;
    uint32_t limit = avail < pg->burst ? avail : pg->burst;
    uint64_t bytes = 0;

    for (i = 0; i < limit; i++) {
        struct netmap_slot *sl = &ring->slot[head];
        if (!nmc_pg_cap_room(pg, sl->len))
            break;
        if (pg->cap)
            nmc_pg_cap_packet(pg, ring, lr->id, head, 1, sl->len, ring_ts(ring));
        rxseq_slot(pg, k, ring, sl);
        bytes += sl->len;
        head = nm_ring_next(ring, head);
    }
    ring->head = ring->cur = head;
    count(pg, i, bytes);        /* rxseq counts slots */
    return i;
}

/* One round over the bound RX rings; min_space as netmap's tool measures
 * it (head - tail: an empty ring counts 0). */
static void rx_scan(struct nmc_pktgen *pg)
{
    struct tl_port *p = pg->st->p;
    uint64_t space = 0;

    for (uint32_t i = 0; i < p->nrx && !pg->st->cap_full; i++) {
        struct netmap_ring *ring = p->rx[i].ring;
        space += (ring->head + ring->num_slots - ring->tail) % ring->num_slots;
        if (nm_ring_empty(ring))
            continue;
        if (pg->mode == NMC_PG_RXSEQ)
            rxseq_ring(pg, i);
        else
            rx_ring(pg, &p->rx[i]);
    }
    if (space < pg->min_space)
        __atomic_store_n(&pg->min_space, space, __ATOMIC_RELAXED);
}

/* Before the first packet: wait as long as it takes. */
static int rx_first(struct nmc_pktgen *pg)
{
    struct nmc_pg_state *s = pg->st;

    while (s->phase == PH_FIRST) {
        int r = nmc_pg_wait(pg, POLLIN, RX_POLL_MS);
        if (r == -EAGAIN)
            return 0;
        if (r == 0) {
            pg->waits_first++;
            continue;
        }
        if (r > 0 && (r & POLLERR))
            return -EIO;
        if (r < 0 && r != -ECANCELED)
            return r;
        pg->tic_ns = pg_real();
        s->phase = PH_RUN;
    }
    return 1;
}

static int rx_run(struct nmc_pktgen *pg)
{
    struct nmc_pg_state *s = pg->st;
    int r;

    if (s->phase == PH_START)
        s->phase = PH_FIRST;
    if ((r = rx_first(pg)) <= 0)
        return r;
    while (s->phase == PH_RUN) {
        if (pg_stopped(pg) || done_count(pg)) {
            pg->toc_ns = pg_real();
            break;
        }
        r = nmc_pg_wait(pg, POLLIN, RX_POLL_MS);
        if (r == 0 && !pg->forever) {
            pg->toc_ns = pg_real() - PG_SEC;       /* the silence is not traffic */
            break;
        }
        if ((r = after_wait(r)) <= 0)
            return r;
        rx_scan(pg);
        if (s->cap_full || pg_out_of_time(s))
            return 0;
    }
    s->phase = PH_DONE;
    nmc_rxsync(s->p->port);                   /* hand the last slots back */
    return 1;
}

/* ------------------------------------------------------------------ */
/* ping, pong                                                          */
/* ------------------------------------------------------------------ */

/* Sequence number and send time (host order) at the payload; UDP checksum kept. */
static void ping_stamp(struct nmc_pktgen *pg, uint8_t *buf)
{
    struct nmc_pg_state *s = pg->st;
    int64_t now = pg_real();
    uint32_t v[3] = { s->seq++, (uint32_t)(now / PG_SEC), (uint32_t)(now % PG_SEC) };
    uint8_t raw[12];

    memcpy(raw, v, sizeof(raw));
    for (uint32_t i = 0; i < sizeof(raw); i += 2)
        nmc_pg_put16(pg, buf, s->pay + i, pg_rd16(raw + i), PG_CS_UDP);
}

static void ping_send(struct nmc_pktgen *pg)
{
    struct nmc_pg_state *s = pg->st;
    struct tl_ring *lr = &s->p->tx[0];
    struct netmap_ring *ring = lr->ring;
    uint64_t limit = pg->rate ? (uint64_t)s->tosend : pg->burst, m;

    if (pg->npackets && pg->npackets - pg->pkts < limit)
        limit = pg->npackets - pg->pkts;
    for (m = 0; m < limit; m++) {
        struct netmap_slot *slot = &ring->slot[ring->head];
        uint8_t *buf = (uint8_t *)NETMAP_BUF(ring, slot->buf_idx);
        if (nm_ring_empty(ring)) {
            pg->cannot_send++;
            break;
        }
        memcpy(buf, pg->frame, s->size);
        ping_stamp(pg, buf);
        slot->len = (uint16_t)s->size;
        slot->flags = 0;
        if (nmc_pg_cap_room(pg, s->size) && pg->cap)
            nmc_pg_cap_packet(pg, ring, lr->id, ring->head, 1, s->size, pg_real());
        ring->head = ring->cur = nm_ring_next(ring, ring->head);
    }
    count(pg, m, m * s->size);
    s->tosend -= (int64_t)m;
}

static uint32_t msb64(uint64_t x)
{
    return x ? 63u - (uint32_t)__builtin_clzll(x) : 0;
}

static void ping_reply(struct nmc_pktgen *pg, const uint8_t *buf, uint32_t len)
{
    uint32_t v[3];
    int64_t now = pg_real(), sent, rtt;

    if (len < pg->st->pay + sizeof(v))
        return;
    memcpy(v, buf + pg->st->pay, sizeof(v));
    sent = ((now / PG_SEC) & ~(int64_t)0xffffffff) + v[1];
    rtt = now - (sent * PG_SEC + v[2]);
    if (rtt < 0)
        rtt = 0;
    if (pg->rtt_count == 0 || (uint64_t)rtt < pg->rtt_min)
        pg->rtt_min = (uint64_t)rtt;
    pg->rtt_count++;
    pg->rtt_sum += (uint64_t)rtt;
    pg->rtt_hist[msb64((uint64_t)rtt)]++;
    pg->replies++;
}

static void ping_recv(struct nmc_pktgen *pg)
{
    struct tl_port *p = pg->st->p;

    for (uint32_t i = 0; i < p->nrx; i++) {
        struct netmap_ring *ring = p->rx[i].ring;
        while (!nm_ring_empty(ring)) {
            struct netmap_slot *sl = &ring->slot[ring->head];
            ping_reply(pg, nmc_pg_slot_data(ring, sl), sl->len);
            ring->head = ring->cur = nm_ring_next(ring, ring->head);
        }
    }
}

static int ping_run(struct nmc_pktgen *pg)
{
    struct nmc_pg_state *s = pg->st;
    int r;

    if (s->phase < PH_RUN && (r = nmc_pg_start(pg)) <= 0)
        return r;
    for (;;) {
        if (s->phase == PH_RUN) {
            if (pg_stopped(pg) || done_count(pg))
                break;
            if (pg->rate && s->tosend <= 0 && (r = nmc_pg_pace(pg)) <= 0) {
                if (r == 0)
                    return 0;
                break;
            }
            ping_send(pg);
            s->phase = PH_WAIT;
        }
        r = nmc_pg_wait(pg, POLLIN, PING_POLL_MS);
        if (r == -EAGAIN)
            return 0;
        if (r == -ECANCELED)
            break;
        if (r < 0)
            return r;
        s->phase = PH_RUN;
        if (r > 0)
            ping_recv(pg);
        if (pg_out_of_time(s))
            return 0;
    }
    pg->toc_ns = pg_real();
    s->phase = PH_DONE;
    return 1;
}

/* Echo: swap the MAC addresses, and the IP addresses (checksums unchanged). */
static void pong_swap(uint8_t *d, const uint8_t *src, uint32_t len)
{
    uint16_t type = len >= PG_ETH_HLEN ? pg_rd16(src + 12) : 0;

    if (len < PG_ETH_HLEN)
        return;
    memcpy(d, src + 6, 6);
    memcpy(d + 6, src, 6);
    if (type == 0x0800 && len >= PG_ETH_HLEN + 20) {
        memcpy(d + 26, src + 30, 4);
        memcpy(d + 30, src + 26, 4);
    } else if (type == 0x86dd && len >= PG_ETH_HLEN + 40) {
        memcpy(d + 22, src + 38, 16);
        memcpy(d + 38, src + 22, 16);
    }
}

static void pong_round(struct nmc_pktgen *pg)
{
    struct tl_port *p = pg->st->p;
    struct netmap_ring *tx = p->tx[0].ring;
    uint32_t txhead = tx->head, avail = nm_ring_space(tx), sent = 0;
    uint64_t bytes = 0;

    for (uint32_t i = 0; i < p->nrx; i++) {
        struct netmap_ring *rx = p->rx[i].ring;
        while (!nm_ring_empty(rx)) {
            struct netmap_slot *rs = &rx->slot[rx->head], *ts = &tx->slot[txhead];
            const uint8_t *src = nmc_pg_slot_data(rx, rs);
            rx->head = rx->cur = nm_ring_next(rx, rx->head);
            if (avail == 0 || rs->len > tx->nr_buf_size) {
                pg->pong_dropped++;
                continue;
            }
            memcpy(NETMAP_BUF(tx, ts->buf_idx), src, rs->len);
            pong_swap((uint8_t *)NETMAP_BUF(tx, ts->buf_idx), src, rs->len);
            ts->len = rs->len;
            ts->flags = 0;
            bytes += rs->len;
            txhead = nm_ring_next(tx, txhead);
            avail--;
            sent++;
        }
    }
    tx->head = tx->cur = txhead;
    nmc_txsync(p->port);
    count(pg, sent, bytes);
}

static int pong_run(struct nmc_pktgen *pg)
{
    struct nmc_pg_state *s = pg->st;
    int r;

    if (s->phase == PH_START) {
        pg->tic_ns = pg_real();
        s->phase = PH_RUN;
    }
    while (!pg_stopped(pg) && !done_count(pg)) {
        r = nmc_pg_wait(pg, POLLIN, RX_POLL_MS);
        if ((r = after_wait(r)) <= 0)
            return r;
        pong_round(pg);
        if (pg_out_of_time(s))
            return 0;
    }
    nmc_txsync(s->p->port);
    pg->toc_ns = pg_real();
    s->phase = PH_DONE;
    return 1;
}

/* ------------------------------------------------------------------ */
/* entry points                                                        */
/* ------------------------------------------------------------------ */

static bool sends(uint32_t mode)
{
    return mode == NMC_PG_TX || mode == NMC_PG_TXSEQ || mode == NMC_PG_PING;
}

/* The frame must hold the headers and what the mode writes in its payload. */
static int check_frame(const struct nmc_pktgen *pg, uint32_t buf_size)
{
    uint32_t pay = pg->af == 6 ? 62 : 42, need = pay;

    if (!pg->frame || pg->pkt_size == 0 || pg->pkt_size > 65536)
        return -EINVAL;
    if (pg->mode == NMC_PG_TXSEQ)
        need += 4;
    else if (pg->mode == NMC_PG_PING)
        need += 12;
    if (!pg->raw_frame && (pg->af != 4 && pg->af != 6))
        return -EINVAL;
    if (pg->pkt_size < (pg->raw_frame ? (pg->mode == NMC_PG_TX ? 1 : need) : need))
        return -EINVAL;
    if (pg->pkt_min_size && (pg->raw_frame || pg->pkt_min_size < pay || pg->pkt_min_size > pg->pkt_size))
        return -EINVAL;
    if (pg->frags < 1 || pg->frags > 64 || pg->frag_size == 0 || pg->frag_size > buf_size)
        return -EINVAL;
    if (pg->mode == NMC_PG_TX && !(pg->options & NMC_PG_OPT_INDIRECT) &&
        (uint64_t)pg->frags * pg->frag_size < pg->pkt_size)
        return -EINVAL;
    if (pg->mode != NMC_PG_TX && pg->pkt_size > buf_size)
        return -EINVAL;
    return 0;
}

static int check_config(const struct nmc_pktgen *pg, const struct tl_port *p)
{
    int err;

    if (pg->mode < NMC_PG_TX || pg->mode > NMC_PG_RXSEQ || pg->burst == 0)
        return -EINVAL;
    if ((sends(pg->mode) || pg->mode == NMC_PG_PONG) && p->ntx == 0)
        return -EINVAL;
    if (!(pg->mode == NMC_PG_TX || pg->mode == NMC_PG_TXSEQ) && p->nrx == 0)
        return -EINVAL;
    if (pg->rate && pg->period_ns == 0)
        return -EINVAL;
    if (pg->cap && (pg->cap_mode < NMC_PG_CAP_PCAP || pg->cap_mode > NMC_PG_CAP_FULL ||
                    pg->snaplen == 0 || pg->cap_size < nmc_pg_rec_size(pg, 65536)))
        return -EINVAL;
    if (sends(pg->mode) && (err = check_frame(pg, p->buf_size)) < 0)
        return err;
    return 0;
}

int nmc_pktgen_init(struct nmc_pktgen *pg, struct nmc_port *port)
{
    struct nmc_pg_state *s;
    int err;

    if (!pg || !port)
        return -EINVAL;
    pg->st = NULL;
    if (!(s = calloc(1, sizeof(*s))))
        return -ENOMEM;
    if ((err = tl_port_load(&s->view, port)) < 0 || (err = check_config(pg, &s->view)) < 0) {
        tl_port_unload(&s->view);
        free(s);
        return err;
    }
    s->p = &s->view;
    s->seq_exp = calloc(s->p->nrx ? s->p->nrx : 1, sizeof(*s->seq_exp));
    s->seq_init = calloc(s->p->nrx ? s->p->nrx : 1, sizeof(*s->seq_init));
    if (!s->seq_exp || !s->seq_init) {
        free(s->seq_exp);
        free(s->seq_init);
        tl_port_unload(&s->view);
        free(s);
        return -ENOMEM;
    }
    s->size = pg->pkt_size;
    s->udp = pg->af == 6 ? 54 : 34;
    s->pay = s->udp + 8;
    s->fcnt = pg->frags ? pg->frags : 1;
    s->first_packet = true;
    if (pg->mode == NMC_PG_TX)
        mark_changed(s->p);             /* the first round writes every slot */
    s->copy = pg->vary || pg->pkt_min_size || (pg->options & (NMC_PG_OPT_COPY | NMC_PG_OPT_MEMCPY));
    memcpy(s->rnd, &pg->seed, sizeof(s->rnd));
    pg->min_space = 99999;
    pg->st = s;
    return 0;
}

int nmc_pktgen_run(struct nmc_pktgen *pg, uint32_t max_ms)
{
    struct nmc_pg_state *s = pg ? pg->st : NULL;

    if (!s)
        return -EINVAL;
    if (s->phase == PH_DONE)
        return 1;
    s->deadline = pg_mono() + (int64_t)max_ms * PG_MS;
    s->cap_full = false;
    pg->cap_used = pg->cap_count = 0;
    pg->nevents = pg->lost_events = 0;
    switch (pg->mode) {
    case NMC_PG_TX:
        return tx_run(pg);
    case NMC_PG_TXSEQ:
        return txseq_run(pg);
    case NMC_PG_PING:
        return ping_run(pg);
    case NMC_PG_PONG:
        return pong_run(pg);
    default:
        return rx_run(pg);
    }
}

void nmc_pktgen_fini(struct nmc_pktgen *pg)
{
    if (!pg || !pg->st)
        return;
    free(pg->st->seq_exp);
    free(pg->st->seq_init);
    tl_port_unload(&pg->st->view);
    free(pg->st);
    pg->st = NULL;
}
