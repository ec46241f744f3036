/*
 * nmcompat_bench.h -- the benchmark loops (bench.c, bench_vale.c,
 * bench_vale_cost.c, bench_xsk.c), built into their own library, the Python extension
 * nmcompat_bench._bench, linked against libnmcompat.  They use only the
 * engine's public API (nmcompat.h, net/netmap_user.h); the bare rings they
 * are measured against use no engine at all.
 */
#ifndef NMCOMPAT_BENCH_H
#define NMCOMPAT_BENCH_H

#include "nmcompat.h"

/* Benchmark loops (bench.c): one end of a pipe driven as pkt-gen does
 * (role NMC_PIPE_MASTER sends, NMC_PIPE_SLAVE receives; start the receiver
 * first), and the same work on a bare shared-memory ring in the tmpfs file
 * shm_path (role 1 receives and creates it, role 0 sends).  Frames carry a
 * 64-bit sequence number in their first 8 bytes.  Returns 0 or -errno. */
struct nmc_bench_result {
    uint64_t elapsed_ns;    /* first packet to last, CLOCK_MONOTONIC */
    uint64_t start_ns, end_ns;
    uint64_t packets;
    uint64_t errors;        /* frames out of sequence or of the wrong length */
    uint64_t batches;       /* loop rounds that moved packets */
    uint64_t syncs;         /* txsync + rxsync, those inside nmc_poll too */
    uint64_t polls;         /* nmc_poll calls */
    uint64_t sleeps;        /* times nmc_poll blocked in poll(2) */
    uint64_t wakeups;       /* doorbells sent */
    uint64_t drains;        /* doorbell queue drains */
    uint64_t spins;         /* raw ring: times it found the ring full/empty */
};
#define NMC_BENCH_NO_TIMESTAMP 1   /* flags: open the end with no_timestamp (no ring->ts) */
int nmc_bench_pipe(const char *rundir, const char *parent, const char *pipe_id, int role,
                   uint32_t batch, uint32_t pkt_len, uint64_t count, uint32_t flags,
                   struct nmc_bench_result *out);
int nmc_bench_raw(const char *shm_path, int role, uint32_t batch, uint32_t pkt_len,
                  uint64_t count, struct nmc_bench_result *out);
/* The same bare ring driven in netmap's shape (bench.c, shape_send): the
 * sender's own TX slots copied to the shared ones at each "txsync", the
 * writer's index read afresh at each "rxsync"; stamped 1: each "rxsync"
 * also stamps the ring's time, as netmap's rxsync does by default. */
int nmc_bench_shape(const char *shm_path, int role, uint32_t batch, uint32_t pkt_len,
                    uint64_t count, int stamped, struct nmc_bench_result *out);
/* A monitor (flags: NR_MONITOR_RX, NR_MONITOR_TX, NR_ZCOPY_MON) of the pipe
 * end `role` that nmc_bench_pipe's receiver (started first) opens, drained
 * as fast as it fills: opened once that receiver is ready, then one byte
 * is written to ready_fd (start the sender after it); returns when it has
 * seen `count` frames or when a signal interrupts its wait (the run is
 * over).  out->packets: the frames it saw. */
int nmc_bench_pipe_monitor(const char *rundir, const char *parent, const char *pipe_id, int role,
                           uint64_t flags, uint64_t count, int ready_fd,
                           struct nmc_bench_result *out);

/* VALE benchmark loops (bench_vale.c).  nmc_bench_vale: role 1 opens the
 * receiving ports <sw>:r0 .. r<nports-1> in rundir and drains them, role 0
 * opens <sw>:tx and sends `count` frames of pkt_len bytes (>= 22: an
 * Ethernet header and a 64-bit sequence number), to r0 (bcast 0, nports 1;
 * the receiver makes the switch learn r0 first) or to the broadcast address
 * (bcast 1), txsyncing every `batch` frames.  Start the receiver first.  A
 * receiving port is done when what it got plus what the switch dropped for
 * it make `count`.  nmc_bench_copy_raw: the same work on bare copy rings,
 * one per receiving port, in the tmpfs file shm_path (role 1 creates it).
 * tx_bufs 0: the sender sends from its 1024 buffers in ring order (VALE's
 * TX ring, the copy ring's pool); n (batch <= n < 1024): from n of them
 * only, hot in its cache, as a DPDK sender's mempool cache.  Returns 0 or
 * -errno. */
#define NMC_BENCH_VALE_MAXPORTS 16
struct nmc_bench_vale_result {
    uint64_t elapsed_ns;    /* sender: first fill to last sync; receiver: first frame to last */
    uint64_t start_ns, end_ns;
    uint64_t cpu_ns;        /* CPU time this side's thread used in that interval */
    uint64_t packets;       /* sender: frames sent; receiver: frames received on all ports */
    uint64_t errors;        /* frames out of order, repeated, of the wrong length or source */
    uint64_t batches;       /* loop rounds that moved frames */
    uint64_t syncs, polls, sleeps, wakeups, drains;     /* summed over this side's ports */
    uint64_t spins;         /* raw rings: times a side found a ring full/empty */
    uint64_t sw_sent;       /* switch: frames this side's ports sent into it */
    uint64_t sw_tx_dropped; /* switch: of those, frames that went nowhere */
    uint64_t sw_forwarded;  /* switch: frames it delivered to this side's ports */
    uint64_t sw_drops;      /* switch: frames for this side's ports it could not deliver */
    uint32_t nports, pad;
    uint64_t port_packets[NMC_BENCH_VALE_MAXPORTS];     /* receiver, per port: received */
    uint64_t port_gaps[NMC_BENCH_VALE_MAXPORTS];        /* sequence numbers skipped */
    uint64_t port_drops[NMC_BENCH_VALE_MAXPORTS];       /* the switch's drops */
    uint64_t port_forwarded[NMC_BENCH_VALE_MAXPORTS];   /* the switch's deliveries */
};
int nmc_bench_vale(const char *rundir, const char *sw, int role, uint32_t nports, int bcast,
                   uint32_t batch, uint32_t pkt_len, uint32_t tx_bufs, uint64_t count,
                   struct nmc_bench_vale_result *out);
int nmc_bench_copy_raw(const char *shm_path, int role, uint32_t nports, int bcast, uint32_t batch,
                       uint32_t pkt_len, uint32_t tx_bufs, uint64_t count,
                       struct nmc_bench_vale_result *out);

/* The CPU cost of VALE forwarding per frame, in one thread
 * (bench_vale_cost.c): <sw>:tx and <sw>:r0 on a fresh switch in rundir;
 * `count` frames of pkt_len bytes (>= 22) sent `batch` at a time (< the
 * ring's slots), each batch received and checked at once; tx_bufs 0 sends
 * from the TX ring's buffers in ring order, n (batch <= n < slots) from n
 * of them only.  Returns 0 or -errno. */
struct nmc_bench_vale_cost {
    uint64_t cpu_ns;        /* the thread's CPU time over the loop */
    uint64_t sent, packets; /* frames sent, frames received */
    uint64_t errors;        /* frames out of sequence or of the wrong length */
    uint64_t drops;         /* dropped by the switch for r0 (none expected) */
};
int nmc_bench_vale_cost(const char *rundir, const char *sw, uint32_t batch, uint32_t pkt_len,
                        uint32_t tx_bufs, uint64_t count, struct nmc_bench_vale_cost *out);

/* Benchmark loops for NIC ports (bench_xsk.c), pkt-gen style, on a port
 * opened by the caller.  TX writes the frame (pkt_len bytes, ethertype
 * 0x88B5) into every TX buffer once, then sends until count packets
 * (0: no limit) or duration_ns (0: no limit), at most batch slots per ring
 * per round.  RX counts packets (a NS_MOREFRAG chain once) from its first
 * packet until duration_ns, giving up after wait_ns without any, or idle_ns
 * after the last one; use_poll calls nmc_poll every round instead of a busy
 * rxsync.  Return 0 or -errno. */
struct nmc_bench_xsk_result {
    uint64_t elapsed_ns;    /* TX: start to end; RX: first packet to last */
    uint64_t start_ns, end_ns;
    uint64_t packets, bytes;
    uint64_t batches;       /* rounds that moved packets */
    uint64_t syncs;
    uint64_t polls;         /* rounds that waited in nmc_poll */
};
int nmc_bench_xsk_tx(struct nmc_port *port, uint32_t pkt_len, uint64_t count,
                     uint64_t duration_ns, uint32_t batch, struct nmc_bench_xsk_result *out);
int nmc_bench_xsk_rx(struct nmc_port *port, uint64_t duration_ns, uint64_t wait_ns,
                     uint64_t idle_ns, int use_poll, struct nmc_bench_xsk_result *out);

#endif /* NMCOMPAT_BENCH_H */
