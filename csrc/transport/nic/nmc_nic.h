/*
 * nmc_nic.h -- what the two NIC transports (AF_XDP: xsk*.c, AF_PACKET:
 * pkt.c) share: the NIC region of a process and the kernel sockets a port
 * waits on (nic_region.c); the NIC state of a region in this process, what
 * a port gives back when it closes, and fork() (nic_state.c).
 */
#ifndef NMC_NIC_H
#define NMC_NIC_H

#include "nmc_transport.h"
#include "nmc_kinds.h"

#include <sys/types.h>

#define NMC_NIC_MAXQ 256u
#define NMC_NIC_MAXHOST 64u           /* host rings per direction */
/* skb->mark of the frames a port's host TX ring puts into its interface's
 * ingress (bpf/host_divert.bpf.c sets it): the port's own NIC RX capture
 * leaves them to the stack.  "nmh" + 1. */
#define NMC_HOST_MARK 0x6e6d6801u
/* Buffers of a NIC region at least: with AF_XDP the whole pool is the
 * UMEM, claimed and pinned when the first socket registers it (128 MiB
 * of 2048-byte buffers), so it is not the larger default of other regions. */
#define NMC_NIC_DEF_BUF_NUM NMC_IFREGION_BUF_NUM
/* The kernel side of a receive queue (XSK RX and FILL rings) holds this
 * many times the netmap ring: a receiver that is descheduled for a moment
 * finds the burst waiting there instead of dropped. */
#define NMC_XSK_RX_FACTOR 4u

/* One per (region file, process): created by the first NIC open in the
 * region, freed by the last close; a NIC port's p->tp.  The region is
 * named by its control file's device and inode, so regions of two runtime directories
 * never share one.  Its ports' AF_XDP sockets all bind to one UMEM, the
 * region's buffer pool (a new socket binds XDP_SHARED_UMEM to one of them,
 * never to a socket of another region).  Changed under nmc_nic_lock(). */
struct nmc_nic_share;

struct nmc_nic_state {
    struct nmc_nic_state *next;
    dev_t dev;
    ino_t ino;
    pid_t pid;                  /* the process whose sockets these are */
    struct nmc_port **ports;    /* its NIC ports, each holding a reference */
    int nports, cap;
    struct nmc_nic_share *shares;   /* AF_XDP: one per NIC record with ports here */
};

/* The share memory of an AF_XDP NIC record (nic_xproc.c), a memfd every
 * process on the record maps; then the FILL spare lists (nq lists of
 * spare_cap) and the buffer ledger: ledger[b] is ring + 1 when buffer b
 * sits in that ring's FILL ring, kernel queue or RX ring (given to FILL,
 * not yet taken from RX), 0 for any other place. */
#define NMC_SHM_PROCS NMC_NIC_MAX_PROCS     /* nmcompat.h */
struct nmc_shm_proc {               /* a process on the record */
    int32_t pid;
    int32_t sock_fd[NMC_NIC_MAXQ];  /* its descriptor of each queue's socket, + 1 */
};
struct nmc_shm_queue {              /* a queue's socket, whichever process made it */
    uint64_t sock_ino;              /* 0: none */
    uint64_t stocked_ino;           /* the socket whose FILL ring was stocked */
    uint32_t rx_size, tx_size, bind_flags, sg, zerocopy;
    uint32_t nspare;                /* buffers on its spare list */
    uint32_t ever;                  /* stocked once: its RX slots name only the user's part */
};
struct nmc_nic_shm {
    uint32_t magic, nq, buf_num, spare_cap;
    struct nmc_shm_proc procs[NMC_SHM_PROCS];
    struct nmc_shm_queue q[NMC_NIC_MAXQ];
};

/* The AF_XDP sockets of one NIC record (one interface's rings) in this
 * process.  Every port of the process that opens the interface with the
 * same ring count binds that record's rings, as several netmap fds bind
 * one kring, and so do the ports of other processes that find the record
 * (nic_xproc.c): a queue has one socket, made by the first port that binds
 * it and used (here, or as a duplicate elsewhere) by every port that binds
 * it after; this process's copies go when its last port on the record
 * closes, and every buffer of the record when the last port anywhere does. */
struct nmc_nic_share {
    struct nmc_nic_share *next;
    uint32_t rec;                   /* the record's index in the region */
    struct nmc_port **users;        /* the AF_XDP ports of this process on the record */
    int nusers, cap;
    uint32_t nq;                    /* the record's rings per direction */
    struct nmc_xsk **q;             /* per ring: our copy of its queue's socket, or NULL */
    struct nmc_nic_shm *shm;        /* the record's share memory, mapped */
    size_t shm_len;
    uint32_t buf_num, spare_cap;    /* its shape, checked at map time (never re-read) */
    int shm_fd, slot;               /* its memfd; our entry in its table */
};

static inline struct nmc_nic_state *nmc_nic_of(const struct nmc_port *p) { return p->tp; }

/* Which interface a NIC record is: its index in a network namespace, the
 * namespace named by the device and inode of /proc/thread-self/ns/net (an
 * interface name means nothing across namespaces). */
struct nmc_nic_where {
    uint64_t netns[2];
    uint32_t ifindex;
};

/* nic_state.c */
void nmc_nic_lock(void);
void nmc_nic_unlock(void);
int nmc_nic_join(struct nmc_port *p);
void nmc_nic_leave(struct nmc_port *p);
bool nmc_nic_foreign(const struct nmc_port *p);
int nmc_nic_umem_peer(const struct nmc_port *p);
bool nmc_nic_queue_taken(const struct nmc_port *p, uint32_t ifindex, uint32_t queue);
struct nmc_nic_share *nmc_nic_share_of(const struct nmc_port *p);
struct nmc_nic_share *nmc_nic_share_join(struct nmc_port *p);
struct nmc_nic_share *nmc_nic_share_leave(struct nmc_port *p);
void nmc_nic_share_free(struct nmc_nic_share *sh);
void nmc_nic_reclaim(struct nmc_port *p, struct nmc_region *r, struct nmc_nic_share *sh);
void nmc_nic_retire(struct nmc_port *p, struct nmc_region *r, struct nmc_nic_share *sh);
void nmc_nic_destroy(struct nmc_region *r, const char *rundir, struct nmc_port_rec *rec);
int nmc_nic_inflight_add(int fd);
void nmc_nic_inflight_del(int fd);
void nmc_nic_settle(int fd);

/* nic_xproc.c */
int nmc_nic_shm_join(struct nmc_port *p, struct nmc_nic_share *sh);
void nmc_nic_shm_unlist(struct nmc_port_rec *rec);
int nmc_nic_shm_umem_peer(struct nmc_nic_share *sh, int *err);
bool nmc_nic_shm_others(const struct nmc_port *p, const struct nmc_region *r);
bool nmc_nic_shm_elsewhere(const struct nmc_port_rec *rec);
void nmc_nic_shm_leave(struct nmc_nic_share *sh, bool write, bool last);
uint32_t *nmc_nic_shm_spare(const struct nmc_nic_share *sh, uint32_t ring);
uint16_t *nmc_nic_shm_ledger(const struct nmc_nic_share *sh);
void nmc_nic_refusal_clear(void);
typedef struct nmc_port_rec *nmc_nic_live_fn(struct nmc_region *r, const char *ifname,
                                             const struct nmc_nic_where *w, const uint32_t *nrings);
int nmc_nic_find_rec(const char *rundir, const char *ifname, const struct nmc_nic_where *w,
                     const uint32_t nrings[2], struct nmc_region *r, uint32_t *port,
                     nmc_nic_live_fn *live);

/* pkt.c */
void nmc_pkt_close_socks(struct nmc_port *p);

/* host.c */
int nmc_nic_host_attach(struct nmc_port *p, const struct nmc_pipe_req *req);
void nmc_nic_host_close(struct nmc_port *p);
bool nmc_nic_binds_host(const struct nmc_port *p);
int nmc_nic_host_txsync(struct nmc_port *p, struct nmc_lring *lr);
int nmc_nic_host_rxsync(struct nmc_port *p, struct nmc_lring *lr);
void nmc_nic_forward_up(struct nmc_port *p, struct nmc_lring *lr, uint32_t head);

/* nic_state.c: the two ends of an rxsync of a ring the engine copies into
 * (AF_PACKET, host rings).  rx_release: the prologue (-EINVAL, the ring
 * reinitialised, on a bad head; -EOWNERDEAD for a port inherited across
 * fork()), *head put back before a chain released only in part when
 * transparent mode is on (nmc_rx_whole_head), then the slots released
 * [hwcur, *head) passed on by transparent mode (`pass`), their
 * NS_BUF_CHANGED cleared, hwcur = *head.  rx_publish:
 * tail = j, the counters (the core stamps ring->ts). */
int nmc_nic_rx_release(struct nmc_port *p, struct nmc_lring *lr, uint32_t *head,
                       void (*pass)(struct nmc_port *p, struct nmc_lring *lr, uint32_t head));
void nmc_nic_rx_publish(struct nmc_lring *lr, uint32_t j, uint32_t pkts, uint32_t bytes);

/* nic_region.c */
int nmc_nic_validate(const struct nmc_pipe_req *req);
bool nmc_nic_host_mode(uint32_t mode);
uint32_t nmc_nic_bound_hw(const struct nmc_port *p, uint32_t dir);
int nmc_nic_resolve(const char *rundir, const struct nmc_pipe_req *req, struct nmc_region *r,
                    uint32_t *port, uint32_t kind);
int nmc_nic_wait(struct nmc_port *p, int events, int timeout_ms);
int nmc_nic_poll_fd(struct nmc_port *p);
void nmc_nic_forget_fds(struct nmc_port *p);
int nmc_nic_socket(struct nmc_port *p, const struct nmc_pipe_req *req, int domain, int protocol);
/* Can ifname (named in fd's namespace) hand its taps frames longer than
 * its MTU: GRO, hardware GRO, LRO, GSO lists or a segmentation offload
 * active, or no way to tell (nic_offload.c)? */
bool nmc_nic_aggregates(int fd, const char *ifname);
void nmc_nic_set_join_only(bool only);
int nmc_nic_hold(struct nmc_port *p, const struct nmc_pipe_req *req);
int nmc_nic_claim(uint32_t ifindex, uint32_t queue, bool tx, bool exclusive);
int nmc_nic_here(uint32_t ifindex, struct nmc_nic_where *w);
bool nmc_nic_rec_is(const struct nmc_port_rec *rec, const struct nmc_nic_where *w);

#endif /* NMC_NIC_H */
