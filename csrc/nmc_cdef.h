/* cffi declarations of the engine's public interface (see include/nmcompat.h). */
struct netmap_slot {
    uint32_t buf_idx;
    uint16_t len;
    uint16_t flags;
    uint64_t ptr;
};

struct netmap_ring {
    int64_t buf_ofs;
    uint32_t num_slots;
    uint32_t nr_buf_size;
    uint16_t ringid;
    uint16_t dir;
    uint32_t head;
    uint32_t cur;
    uint32_t tail;
    uint32_t flags;
    struct timeval ts;
    ...;
};

struct netmap_if {
    char ni_name[16];
    uint32_t ni_version;
    uint32_t ni_flags;
    uint32_t ni_tx_rings;
    uint32_t ni_rx_rings;
    uint32_t ni_bufs_head;
    uint32_t ni_host_tx_rings;
    uint32_t ni_host_rx_rings;
    ...;
};

struct nmc_pipe_req {
    const char *rundir;
    const char *parent;
    const char *pipe_id;
    uint32_t role;
    uint32_t mode;
    uint32_t ringid;
    uint64_t flags;
    uint16_t mem_id;
    uint32_t tx_rings, rx_rings, tx_slots, rx_slots;
    uint32_t extra_bufs;
    uint32_t buf_num;
    uint32_t buf_size;
    int32_t spin_us;
    uint32_t no_timestamp;
    uint32_t ifindex;
    uint32_t xdp_bind;
    uint32_t no_sg;
};

struct nmc_port_info {
    uint64_t nr_offset;
    uint64_t nr_memsize;
    uint64_t mem_file_offset;
    uint32_t nr_tx_slots, nr_rx_slots;
    uint16_t nr_tx_rings, nr_rx_rings;
    uint16_t nr_host_tx_rings, nr_host_rx_rings;
    uint16_t nr_mem_id;
    uint16_t holder;
    uint32_t nr_extra_bufs;
    uint32_t buf_size, buf_num;
    uint32_t first_tx_ring, last_tx_ring;
    uint32_t first_rx_ring, last_rx_ring;
    char region_path[256];
};

struct nmc_port_stats {
    uint64_t tx_pkts, tx_bytes, rx_pkts, rx_bytes;
    uint64_t txsyncs, rxsyncs;
    uint64_t reinits;
    uint64_t wakeups_sent;
    uint64_t sleeps;
    uint64_t drains;
    uint64_t polls;
    uint64_t rx_dropped;    /* VALE: frames the switch could not put in our RX rings */
    uint64_t tx_dropped;    /* VALE: frames we sent that went nowhere (< 14 bytes, to ourselves) */
    uint64_t forwarded;     /* VALE: frames the switch delivered to us */
};

struct nmc_pkt {
    uint64_t buf_ofs;
    uint32_t len;
    uint32_t first_len;
    uint32_t nfrags;
    uint32_t ring;
    uint32_t slot;
    uint32_t flags;
    int64_t ts_sec, ts_usec;
};

struct nmc_port;

int nmc_pipe_open(const struct nmc_pipe_req *req, struct nmc_port **out);
int nmc_vale_open(const struct nmc_pipe_req *req, struct nmc_port **out);
struct nmc_xsk_info {
    uint32_t queue;
    uint32_t zerocopy, sg, bind_flags;
    uint64_t rx_dropped, rx_invalid_descs, tx_invalid_descs;
    uint64_t rx_ring_full, rx_fill_ring_empty_descs, tx_ring_empty_descs;
    uint64_t tx_dropped;
};
int nmc_xsk_open(const struct nmc_pipe_req *req, struct nmc_port **out);
int nmc_xsk_fd(struct nmc_port *port, uint32_t k);
int nmc_xsk_info(struct nmc_port *port, uint32_t k, struct nmc_xsk_info *info);
struct nmc_pkt_info {
    int rx_fd, tx_fd;
    uint64_t rx_packets, rx_drops;
    uint64_t rx_truncated;
    uint64_t tx_too_big;
    uint32_t tx_frame_size;
};
int nmc_pkt_open(const struct nmc_pipe_req *req, struct nmc_port **out);
int nmc_pkt_info(struct nmc_port *port, uint32_t k, struct nmc_pkt_info *info);
#define NMC_FWD_COPY 1
int nmc_forward(struct nmc_port *src, struct nmc_port *dst, uint32_t limit, uint32_t flags);
int nmc_port_close(struct nmc_port *port);
int nmc_port_info(const struct nmc_port *port, struct nmc_port_info *info);
int nmc_port_stats(const struct nmc_port *port, struct nmc_port_stats *st);
int nmc_port_fd(struct nmc_port *port);
void *nmc_port_mem(const struct nmc_port *port);
struct netmap_if *nmc_port_nifp(const struct nmc_port *port);
int nmc_txsync(struct nmc_port *port);
int nmc_rxsync(struct nmc_port *port);
int nmc_poll(struct nmc_port *port, int events, int timeout_ms);
int nmc_inject(struct nmc_port *port, const void *buf, size_t len);
int nmc_send_batch(struct nmc_port *port, const uint8_t *data, size_t stride,
                   const uint32_t *lens, uint32_t n);
int nmc_recv_batch(struct nmc_port *port, uint8_t *out, size_t stride,
                   uint32_t *lens, uint32_t n);
int nmc_next_packet(struct nmc_port *port, int whole, struct nmc_pkt *pkt);
int nmc_copy_packet(struct nmc_port *port, const struct nmc_pkt *pkt,
                    uint8_t *dst, size_t cap);

struct nmc_bench_result {
    uint64_t elapsed_ns;
    uint64_t start_ns, end_ns;
    uint64_t packets;
    uint64_t errors;
    uint64_t batches;
    uint64_t syncs;
    uint64_t polls;
    uint64_t sleeps;
    uint64_t wakeups;
    uint64_t drains;
    uint64_t spins;
};
int nmc_bench_pipe(const char *rundir, const char *parent, const char *pipe_id, int role,
                   uint32_t batch, uint32_t pkt_len, uint64_t count,
                   struct nmc_bench_result *out);
int nmc_bench_raw(const char *shm_path, int role, uint32_t batch, uint32_t pkt_len,
                  uint64_t count, struct nmc_bench_result *out);

#define NMC_BENCH_VALE_MAXPORTS 16
struct nmc_bench_vale_result {
    uint64_t elapsed_ns;
    uint64_t start_ns, end_ns;
    uint64_t cpu_ns;
    uint64_t packets;
    uint64_t errors;
    uint64_t batches;
    uint64_t syncs, polls, sleeps, wakeups, drains;
    uint64_t spins;
    uint64_t sw_sent;
    uint64_t sw_tx_dropped;
    uint64_t sw_forwarded;
    uint64_t sw_drops;
    uint32_t nports, pad;
    uint64_t port_packets[16];
    uint64_t port_gaps[16];
    uint64_t port_drops[16];
    uint64_t port_forwarded[16];
};
int nmc_bench_vale(const char *rundir, const char *sw, int role, uint32_t nports, int bcast,
                   uint32_t batch, uint32_t pkt_len, uint64_t count,
                   struct nmc_bench_vale_result *out);
int nmc_bench_copy_raw(const char *shm_path, int role, uint32_t nports, int bcast, uint32_t batch,
                       uint32_t pkt_len, uint64_t count, struct nmc_bench_vale_result *out);

struct nmc_vale_list {
    char name[64];
    uint32_t bridge_idx;
    uint32_t port_idx;
};
int nmc_vale_newif(const struct nmc_pipe_req *req);
int nmc_vale_delif(const char *rundir, const char *name);
int nmc_vale_attach(const char *rundir, const char *name);
int nmc_vale_detach(const char *rundir, const char *name);
int nmc_vale_list(const char *rundir, struct nmc_vale_list *l);
int nmc_vale_port_info(const char *rundir, const char *name, struct nmc_port_info *info);

#define NMC_ABI_VERSION ...
struct nmc_bench_xsk_result {
    uint64_t elapsed_ns;
    uint64_t start_ns, end_ns;
    uint64_t packets, bytes;
    uint64_t batches;
    uint64_t syncs;
    uint64_t polls;
};
int nmc_bench_xsk_tx(struct nmc_port *port, uint32_t pkt_len, uint64_t count,
                     uint64_t duration_ns, uint32_t batch, struct nmc_bench_xsk_result *out);
int nmc_bench_xsk_rx(struct nmc_port *port, uint64_t duration_ns, uint64_t wait_ns,
                     uint64_t idle_ns, int use_poll, struct nmc_bench_xsk_result *out);
struct nmc_bridge_stats {
    uint64_t slots[2];
    uint64_t rounds, sleeps, timeouts;
    uint64_t errors;
    uint32_t err_side;
    int32_t events[2], revents[2];
};
int nmc_bridge_step(struct nmc_port *a, struct nmc_port *b, uint32_t burst, uint32_t flags,
                    int timeout_ms, struct nmc_bridge_stats *st);
#define NMC_LB_COPY 1
struct nmc_lb;
struct nmc_lb_stats {
    uint64_t received;
    uint64_t forwarded;
    uint64_t dropped;
    uint64_t non_ip;
    uint64_t oversize;
    uint64_t revoked;
    uint64_t sync_errors;
    uint32_t extra_bufs, free_bufs, zerocopy_pipes, pad;
};
struct nmc_lb_pipe_stats {
    uint64_t pkts, drops;
    uint32_t queued;
    uint32_t zerocopy;
};
int nmc_lb_new(struct nmc_port *in, struct nmc_port **pipes, const uint32_t *group_sizes,
               uint32_t ngroups, uint32_t batch, uint32_t flags, struct nmc_lb **out);
int nmc_lb_step(struct nmc_lb *lb, int timeout_ms);
int nmc_lb_stats(const struct nmc_lb *lb, struct nmc_lb_stats *st,
                 struct nmc_lb_pipe_stats *pipes, uint32_t n);
int nmc_lb_free(struct nmc_lb *lb);
uint32_t nmc_lb_hash(const uint8_t *frame, uint32_t len, uint32_t *non_ip);
struct nmc_replay_result {
    uint64_t sent, bytes;
    uint64_t errors;
    uint64_t waits;
    uint64_t full_waits;
    uint64_t max_late_ns;
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
