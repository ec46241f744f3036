/*
 * nmcompat_tools.h -- the C loops behind nmcompat's tools (pkt-gen, bridge,
 * lb, replay).  Not part of the port API in nmcompat.h; they drive ports
 * opened with it, one call per batch.
 */
#ifndef NMCOMPAT_TOOLS_H
#define NMCOMPAT_TOOLS_H

#include "nmcompat.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)     /* exported: see nmcompat.h */

/* Tools (tools_fwd.c, lb.c, lb_hash.c, replay.c): the per-packet loops of
 * the bridge, lb and replay commands, one call per batch. */

/* Bridge: rounds of rxsync, nmc_forward() each way (b == a: a's traffic
 * looped back onto it), txsync, until one moves something; between rounds
 * it waits on the ports' descriptors (POLLIN on a side with nothing to
 * read, POLLOUT on the side that must make room), at most timeout_ms in
 * all (< 0: forever).  Returns slots moved, 0 on timeout, -errno (-EINTR:
 * a signal).  st accumulates. */
struct nmc_bridge_stats {
    uint64_t slots[2];      /* slots moved a->b, b->a */
    uint64_t rounds, sleeps, timeouts;
    uint64_t errors;        /* syncs that found a corrupted ring (reinit) */
    uint32_t err_side;      /* in the last call: bit 0 a, bit 1 b had such a sync */
    int32_t events[2], revents[2];  /* of the last wait */
};
int nmc_bridge_step(struct nmc_port *a, struct nmc_port *b, uint32_t burst, uint32_t flags,
                    int timeout_ms, struct nmc_bridge_stats *st);

/* Load balancer: packets of `in` hashed by flow (nmc_lb_hash) onto groups
 * of output pipes; pipes[] holds the group_sizes[0] pipes of the first
 * group, then the second's, ...  Zero-copy to a pipe in in's region (else
 * a copy, or always with NMC_LB_COPY); in's extra buffers (taken off its
 * ni_bufs_head list) queue packets for full pipes.  nmc_lb_step: one round
 * of at most `batch` input packets, waiting for input when idle (at most
 * timeout_ms, < 0 forever); returns packets moved, 0 on timeout, -errno.
 * nmc_lb_free puts every extra buffer back on in's list (call it before
 * closing the ports) and returns how many. */
#define NMC_LB_COPY 1
struct nmc_lb;
struct nmc_lb_stats {
    uint64_t received;      /* packets taken from the input */
    uint64_t forwarded;     /* packets put in an output pipe (once per group) */
    uint64_t dropped;       /* no room and no extra buffer, revoked, or multi-slot */
    uint64_t non_ip;        /* frames without an IP header (their MACs were hashed) */
    uint64_t oversize;      /* packets spread over several slots (dropped) */
    uint64_t revoked;       /* queued packets dropped to free extra buffers */
    uint64_t sync_errors;
    uint32_t extra_bufs, free_bufs, zerocopy_pipes, pad;
};
struct nmc_lb_pipe_stats {
    uint64_t pkts, drops;
    uint32_t queued;        /* packets in its overflow queue */
    uint32_t zerocopy;
};
int nmc_lb_new(struct nmc_port *in, struct nmc_port **pipes, const uint32_t *group_sizes,
               uint32_t ngroups, uint32_t batch, uint32_t flags, struct nmc_lb **out);
int nmc_lb_step(struct nmc_lb *lb, int timeout_ms);
int nmc_lb_stats(const struct nmc_lb *lb, struct nmc_lb_stats *st,
                 struct nmc_lb_pipe_stats *pipes, uint32_t n);
int nmc_lb_free(struct nmc_lb *lb);
/* Symmetric flow hash of an Ethernet frame; *non_ip set when not IP. */
uint32_t nmc_lb_hash(const uint8_t *frame, uint32_t len, uint32_t *non_ip);

/* Replay: frame i (lens[i] bytes at data + offs[i]) goes out not before
 * CLOCK_MONOTONIC when_ns[i] (non-decreasing), due frames together, at most
 * `burst` per txsync; a full ring waits in nmc_poll(POLLOUT).  Returns the
 * frames consumed (n, or fewer if a signal interrupted a wait), or -errno.
 * res accumulates. */
struct nmc_replay_result {
    uint64_t sent, bytes;
    uint64_t errors;        /* frames too large for a chain of 64 buffers: skipped */
    uint64_t waits;         /* frames that had to wait for their time */
    uint64_t full_waits;    /* times the TX rings were full */
    uint64_t max_late_ns;   /* worst lateness of a frame at queueing */
};
int nmc_replay_send(struct nmc_port *p, const uint8_t *data, const uint64_t *offs,
                    const uint32_t *lens, const uint64_t *when_ns, uint32_t n, uint32_t burst,
                    struct nmc_replay_result *res);

/* pkt-gen's loops (pktgen.c): one thread of "nmcompat pkt-gen" on one port.
 * The caller fills the configuration, nmc_pktgen_init() binds it to the
 * port, and nmc_pktgen_run() runs the loop for at most max_ms (or until the
 * capture buffer is full) and returns 0, or 1 when the loop is over, or
 * -errno; the next call resumes where the last one stopped.  The counters
 * are stored as the loop goes: another thread may read them, and may set
 * stop (the loop then flushes and ends).  The template frame must hold
 * pkt_size bytes; the engine rewrites its addresses, lengths and checksums
 * (address ranges, random addresses and sizes, txseq numbers). */
#define NMC_PG_TX     1
#define NMC_PG_RX     2
#define NMC_PG_PING   3
#define NMC_PG_PONG   4
#define NMC_PG_TXSEQ  5
#define NMC_PG_RXSEQ  6
/* option bits: pkt-gen's -o values */
#define NMC_PG_OPT_PREFETCH    1
#define NMC_PG_OPT_COPY        4
#define NMC_PG_OPT_MEMCPY      8
#define NMC_PG_OPT_INDIRECT    32
#define NMC_PG_OPT_RUBBISH     256
#define NMC_PG_OPT_RANDOM_SRC  512
#define NMC_PG_OPT_RANDOM_DST  1024
/* capture buffer formats */
#define NMC_PG_CAP_PCAP 1       /* pcap records (16-byte header + data), packed */
#define NMC_PG_CAP_FULL 2       /* struct nmc_pg_rec + data, each 8-byte aligned */
/* rxseq events */
#define NMC_PG_EV_GAP    1      /* sequence number ahead of the expected one */
#define NMC_PG_EV_ORDER  2      /* sequence number behind it */
#define NMC_PG_EV_FRAGS  3      /* a packet with another number of fragments */
#define NMC_PG_EV_SHORT  4      /* a frame too short for a sequence number */
#define NMC_PG_MAX_EVENTS 16

struct nmc_pg_range {           /* addresses lo..hi and ports lo..hi of one end */
    uint8_t lo[16], hi[16];     /* network order; IPv4 in the first 4 bytes */
    uint16_t port_lo, port_hi;
    uint32_t group;             /* IPv6: the 16-bit word of the address that varies */
};
struct nmc_pg_rec {             /* NMC_PG_CAP_FULL record */
    uint32_t ring, slot, buf_idx;
    uint16_t flags, nfrags;
    uint32_t ts_sec, ts_usec, caplen, len;   /* a pcap record header */
};
struct nmc_pg_event { uint32_t kind, ring, expected, found; };
struct nmc_pg_state;
struct nmc_pktgen {
    /* configuration, before nmc_pktgen_init() */
    uint32_t mode, options, af, burst;      /* af: 4 or 6 */
    uint64_t npackets;          /* this loop's share, 0: no limit */
    uint64_t rate, period_ns;   /* packets per second (0: no limit), one burst per period */
    uint32_t frags, frag_size;  /* TX: at most frags slots of frag_size bytes per packet */
    uint32_t pkt_size, pkt_min_size;    /* min > 0: random sizes in [min, size) */
    uint32_t forever;           /* RX: 0 ends the loop after 1 s without packets */
    uint32_t vary;              /* addresses change per packet (ranges, random) */
    uint32_t raw_frame;         /* the frame is not ours (a file): never touch its headers */
    uint8_t *frame;
    struct nmc_pg_range src, dst;
    uint64_t seed;
    uint8_t *cap;               /* capture buffer, or NULL */
    uint32_t cap_size, cap_mode, snaplen;
    uint32_t stop;              /* set by anyone, any time */
    /* results */
    uint64_t pkts, bytes, events;
    uint64_t min_space;         /* RX: least free space seen; the reader resets it */
    int64_t tic_ns, toc_ns;     /* CLOCK_REALTIME: first and last packet */
    uint32_t cap_used, cap_count;       /* this call's capture */
    uint64_t timeouts, waits_first, cannot_send, pong_dropped, drain_stuck;
    uint64_t seq_gaps, seq_disorder, frag_errors, replies;
    uint32_t nevents, lost_events;      /* rxseq events of this call */
    struct nmc_pg_event ev[NMC_PG_MAX_EVENTS];
    uint64_t rtt_count, rtt_sum, rtt_min, rtt_hist[64];   /* ping; the caller clears them */
    struct nmc_pg_state *st;
};
int nmc_pktgen_init(struct nmc_pktgen *pg, struct nmc_port *port);
int nmc_pktgen_run(struct nmc_pktgen *pg, uint32_t max_ms);
void nmc_pktgen_fini(struct nmc_pktgen *pg);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* NMCOMPAT_TOOLS_H */
