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
