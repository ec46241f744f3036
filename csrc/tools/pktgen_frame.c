/*
 * pktgen_frame.c -- what pkt-gen's loops (pktgen.c) do to frames and time:
 * 16-bit words and checksums (incremental updates, RFC 1624, so that every
 * frame keeps valid IPv4 and UDP checksums), address ranges stepped like
 * an odometer (source port, source address, destination port, destination
 * address) or random addresses, frame lengths, the capture of packets into
 * the caller's buffer, and waiting: netmap's poll() across calls, the rate
 * pacing, the start time.
 */
#include "pktgen_int.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#define POLL_CHUNK_MS   100             /* how often a wait looks at pg->stop */

/* ------------------------------------------------------------------ */
/* frames: 16-bit words, checksums                                     */
/* ------------------------------------------------------------------ */

static inline void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }

/* Sum of big-endian 16-bit words (a last odd byte is the high half). */
static uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum)
{
    for (; len > 1; p += 2, len -= 2) {
        sum += pg_rd16(p);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    if (len)
        sum += (uint32_t)p[0] << 8;
    return sum;
}

static uint16_t fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

/* A UDP checksum that computes to 0 is sent as 0xffff (0 means "none"). */
static uint16_t udp_field(uint16_t c) { return c ? c : 0xffff; }

/* RFC 1624 eq. 3: the checksum at csum after a word went from old to new. */
static void csum_adjust(uint8_t *csum, uint16_t old, uint16_t new, bool udp)
{
    uint16_t c = (uint16_t)~fold((uint32_t)(uint16_t)~pg_rd16(csum) + (uint16_t)~old + new);

    wr16(csum, udp ? udp_field(c) : c);
}

/* Write the 16-bit word at off of frame f, keeping the checksums valid. */
void nmc_pg_put16(const struct nmc_pktgen *pg, uint8_t *f, uint32_t off, uint16_t v, int which)
{
    uint16_t old = pg_rd16(f + off);

    if (old == v)
        return;
    wr16(f + off, v);
    if (pg->raw_frame)
        return;
    if ((which & PG_CS_IP) && pg->af == 4)
        csum_adjust(f + PG_ETH_HLEN + 10, old, v, false);
    if (which & PG_CS_UDP)
        csum_adjust(f + pg->st->udp + 6, old, v, true);
}

void nmc_pg_put32(const struct nmc_pktgen *pg, uint8_t *f, uint32_t off, uint32_t v, int which)
{
    nmc_pg_put16(pg, f, off, (uint16_t)(v >> 16), which);
    nmc_pg_put16(pg, f, off + 2, (uint16_t)v, which);
}

/* Set the frame's length fields for size bytes and recompute its checksums. */
void nmc_pg_set_size(struct nmc_pktgen *pg, uint32_t size)
{
    struct nmc_pg_state *s = pg->st;
    uint8_t *f = pg->frame;
    uint32_t ulen = size - s->udp, pseudo;

    s->size = size;
    if (pg->raw_frame)
        return;
    if (pg->af == 4) {
        wr16(f + PG_ETH_HLEN + 2, (uint16_t)(size - PG_ETH_HLEN));
        wr16(f + PG_ETH_HLEN + 10, 0);
        wr16(f + PG_ETH_HLEN + 10, (uint16_t)~fold(sum16(f + PG_ETH_HLEN, 20, 0)));
        pseudo = sum16(f + PG_ETH_HLEN + 12, 8, 17 + ulen);
    } else {
        wr16(f + PG_ETH_HLEN + 4, (uint16_t)ulen);
        pseudo = sum16(f + PG_ETH_HLEN + 8, 32, 17 + ulen);
    }
    wr16(f + s->udp + 4, (uint16_t)ulen);
    wr16(f + s->udp + 6, 0);
    wr16(f + s->udp + 6, udp_field((uint16_t)~fold(sum16(f + s->udp, ulen, pseudo))));
}

/* ------------------------------------------------------------------ */
/* address ranges and random addresses                                 */
/* ------------------------------------------------------------------ */

/* Advance one end like an odometer, port first, then the address (IPv6:
 * its word `group`).  Returns true when the address wrapped around. */
static bool step_end(struct nmc_pktgen *pg, const struct nmc_pg_range *r, uint32_t aoff, uint32_t poff)
{
    uint8_t *f = pg->frame;
    uint16_t port = pg_rd16(f + poff);

    if (port < r->port_hi) {
        nmc_pg_put16(pg, f, poff, (uint16_t)(port + 1), PG_CS_UDP);
        return false;
    }
    nmc_pg_put16(pg, f, poff, r->port_lo, PG_CS_UDP);
    if (pg->af == 4) {
        uint32_t a = pg_rd32(f + aoff), hi = pg_rd32(r->hi);
        nmc_pg_put32(pg, f, aoff, a < hi ? a + 1 : pg_rd32(r->lo), PG_CS_IP | PG_CS_UDP);
        return a >= hi;
    }
    uint32_t w = aoff + 2 * (r->group & 7);
    uint16_t a = pg_rd16(f + w), hi = pg_rd16(r->hi + 2 * (r->group & 7));
    nmc_pg_put16(pg, f, w, a < hi ? (uint16_t)(a + 1) : pg_rd16(r->lo + 2 * (r->group & 7)), PG_CS_UDP);
    return a >= hi;
}

static void random_end(struct nmc_pktgen *pg, const struct nmc_pg_range *r, uint32_t aoff, uint32_t poff)
{
    struct nmc_pg_state *s = pg->st;
    uint8_t *f = pg->frame;

    if (pg->af == 4)
        nmc_pg_put32(pg, f, aoff, (uint32_t)jrand48(s->rnd), PG_CS_IP | PG_CS_UDP);
    else
        nmc_pg_put16(pg, f, aoff + 2 * (r->group & 7), (uint16_t)jrand48(s->rnd), PG_CS_UDP);
    nmc_pg_put16(pg, f, poff, (uint16_t)jrand48(s->rnd), PG_CS_UDP);
}

/* The next packet's addresses: the source steps (or is random); the
 * destination steps when the source wrapped around (or is random). */
void nmc_pg_next_addresses(struct nmc_pktgen *pg)
{
    uint32_t ip = PG_ETH_HLEN, udp = pg->st->udp;
    uint32_t src = ip + (pg->af == 4 ? 12 : 8), dst = ip + (pg->af == 4 ? 16 : 24);

    if (pg->options & NMC_PG_OPT_RANDOM_SRC)
        random_end(pg, &pg->src, src, udp);
    else if (!step_end(pg, &pg->src, src, udp))
        return;
    if (pg->options & NMC_PG_OPT_RANDOM_DST)
        random_end(pg, &pg->dst, dst, udp + 2);
    else
        step_end(pg, &pg->dst, dst, udp + 2);
}

/* ------------------------------------------------------------------ */
/* capture                                                             */
/* ------------------------------------------------------------------ */

uint8_t *nmc_pg_slot_data(struct netmap_ring *ring, struct netmap_slot *slot)
{
    if (slot->flags & NS_INDIRECT)
        return (uint8_t *)(uintptr_t)slot->ptr;
    return (uint8_t *)NETMAP_BUF(ring, slot->buf_idx);
}

uint32_t nmc_pg_rec_size(const struct nmc_pktgen *pg, uint32_t len)
{
    uint32_t cap = len < pg->snaplen ? len : pg->snaplen;

    if (pg->cap_mode == NMC_PG_CAP_PCAP)
        return 16 + cap;
    return (uint32_t)((sizeof(struct nmc_pg_rec) + cap + 7) & ~7u);
}

/* Room for a packet of len bytes?  If not, this call ends. */
bool nmc_pg_cap_room(struct nmc_pktgen *pg, uint32_t len)
{
    if (!pg->cap || (uint64_t)pg->cap_used + nmc_pg_rec_size(pg, len) <= pg->cap_size)
        return true;
    pg->st->cap_full = true;
    return false;
}

/* Copy the packet in nfrags slots from first (len bytes in all). */
void nmc_pg_cap_packet(struct nmc_pktgen *pg, struct netmap_ring *ring, uint32_t ringno,
                       uint32_t first, uint32_t nfrags, uint32_t len, int64_t ts)
{
    uint8_t *out = pg->cap + pg->cap_used;
    uint32_t cap = len < pg->snaplen ? len : pg->snaplen, done = 0, j = first;
    bool full = pg->cap_mode != NMC_PG_CAP_PCAP;
    uint8_t *data = out + (full ? sizeof(struct nmc_pg_rec) : 16);
    struct nmc_pg_rec rec = {
        .ring = ringno, .slot = first, .buf_idx = ring->slot[first].buf_idx,
        .flags = ring->slot[first].flags, .nfrags = (uint16_t)nfrags,
        .ts_sec = (uint32_t)(ts / PG_SEC), .ts_usec = (uint32_t)(ts % PG_SEC / 1000), .len = len,
    };

    for (uint32_t i = 0; i < nfrags && done < cap; i++, j = nm_ring_next(ring, j)) {
        struct netmap_slot *sl = &ring->slot[j];
        uint32_t n = sl->len < cap - done ? sl->len : cap - done;
        memcpy(data + done, nmc_pg_slot_data(ring, sl), n);
        done += n;
    }
    rec.caplen = done;
    if (full)
        memcpy(out, &rec, sizeof(rec));
    else
        memcpy(out, &rec.ts_sec, 16);
    pg->cap_used += nmc_pg_rec_size(pg, done);
    pg->cap_count++;
}

/* ------------------------------------------------------------------ */
/* waiting                                                             */
/* ------------------------------------------------------------------ */

/* netmap's poll() for up to timeout_ms in all, across calls: > 0 revents,
 * 0 when the whole timeout passed, -EAGAIN when this call's time is up
 * (the wait goes on in the next call), -ECANCELED when asked to stop. */
int nmc_pg_wait(struct nmc_pktgen *pg, int events, int timeout_ms)
{
    struct nmc_pg_state *s = pg->st;
    int64_t now = pg_mono(), end;

    if (s->wait_start == 0)
        s->wait_start = now;
    end = s->wait_start + timeout_ms * PG_MS;
    for (;;) {
        int64_t until = end < s->deadline ? end : s->deadline;
        int64_t ms = until > now ? (until - now + PG_MS - 1) / PG_MS : 0;
        int r;
        if (pg_stopped(pg)) {
            s->wait_start = 0;
            return -ECANCELED;
        }
        r = nmc_poll(s->p->port, events, (int)(ms < POLL_CHUNK_MS ? ms : POLL_CHUNK_MS));
        if (r != 0 && r != -EINTR) {
            s->wait_start = 0;
            return r;
        }
        now = pg_mono();
        if (now >= end) {
            s->wait_start = 0;
            pg->timeouts++;
            return 0;
        }
        if (now >= s->deadline)
            return -EAGAIN;
    }
}

/* Wait until next_ns (CLOCK_REALTIME): sleep while more than 1 ms away,
 * then spin.  1 when due, 0 when this call's time is up, -ECANCELED. */
static int wait_until(struct nmc_pktgen *pg, int64_t when)
{
    for (;;) {
        int64_t left = when - pg_real();
        if (left <= 0)
            return 1;
        if (pg_stopped(pg))
            return -ECANCELED;
        if (pg_out_of_time(pg->st))
            return 0;
        if (left > PG_MS)
            poll(NULL, 0, 1);
        else
            tl_cpu_relax();
    }
}

/* Rate: the next burst is due one period after the last one. */
int nmc_pg_pace(struct nmc_pktgen *pg)
{
    struct nmc_pg_state *s = pg->st;
    int r;

    if (!s->pace_armed) {
        s->next_ns += (int64_t)pg->period_ns;
        s->pace_armed = true;
    }
    if ((r = wait_until(pg, s->next_ns)) == 1) {
        s->pace_armed = false;
        s->tosend = pg->burst;
    }
    return r;
}

/* Start: now (tic), or with a rate on a whole second at least 1 s away. */
int nmc_pg_start(struct nmc_pktgen *pg)
{
    struct nmc_pg_state *s = pg->st;
    int r;

    if (s->phase == PH_START) {
        pg->tic_ns = pg_real();
        s->phase = pg->rate ? PH_PACE_START : PH_RUN;
        if (pg->rate)
            pg->tic_ns = (pg->tic_ns / PG_SEC + 2) * PG_SEC;
        s->next_ns = pg->tic_ns;
    }
    if (s->phase == PH_PACE_START) {
        if ((r = wait_until(pg, pg->tic_ns)) == 0)
            return 0;
        s->phase = PH_RUN;
    }
    return 1;
}

