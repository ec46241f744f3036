/*
 * nmcompat.h -- public C interface of the nmcompat engine (libnmcompat).
 *
 * The engine presents netmap memory (struct netmap_if / netmap_ring /
 * netmap_slot, see <net/netmap.h>) in a shared-memory region on a tmpfs
 * runtime directory and implements txsync/rxsync/poll for its ports.
 * Every function returns >= 0 on success or -errno on failure; nothing
 * prints.  Port names are parsed by the caller (the Python package does it);
 * this interface takes the parsed request.
 */
#ifndef NMCOMPAT_H
#define NMCOMPAT_H

#include <stddef.h>
#include <stdint.h>
#include <net/netmap.h>

#ifdef __cplusplus
extern "C" {
#endif

/* libnmcompat is built with -fvisibility=hidden: what is declared between
 * this push and its pop is exported, nothing else. */
#pragma GCC visibility push(default)

#define NMC_ABI_VERSION 9

/* Pipe roles (netmap: "x{1" is the master, "x}1" the slave). */
#define NMC_PIPE_MASTER 0
#define NMC_PIPE_SLAVE  1

struct nmc_port;

/* A region built in memory the user gives (netmap's @extmem,
 * NETMAP_REQ_OPT_EXTMEM): `file`, a regular file of the user's that no one
 * else may write (-EACCES), on the runtime directory's filesystem, becomes the region's netmap memory
 * (hard-linked as mem.<id>; other processes map it by that name).  Zero
 * means "default" for each count or size: buffers, as many as the file
 * holds; ring objects 1024.  Pools the engine cannot make as asked
 * (if_num x if_size beyond the IF pool, ring_size beyond a ring object,
 * a file too small) are -EINVAL; a missing file -ENOENT; a file on another
 * filesystem -EXDEV; one of the runtime directory's own files -EBUSY.  The
 * reply (nmc_port_pools) says what was made. */
struct nmc_extmem {
    const char *file;
    uint32_t if_num, if_size, ring_num, ring_size, buf_num, buf_size;
};
/* The smallest file that holds the pools x asks for (its file aside): the
 * IF pool, ring_num ring objects, then buf_num buffers (at least 64) of
 * buf_size, 0 meaning the default as for an open.  -EINVAL: pools no file
 * can hold (ring_num over 1024, a buf_size not a multiple of 64...). */
int64_t nmc_extmem_min_size(const struct nmc_extmem *x);

/* What to open.  Zero means "default" for every count. */
struct nmc_pipe_req {
    const char *rundir;     /* NULL: $NMCOMPAT_RUNDIR or /dev/shm/nmcompat-<uid> */
    const char *parent;     /* parent port name ("x", "vale0:a"), < 64 chars */
    const char *pipe_id;    /* pipe identifier ("1", "in"), < 64 chars */
    uint32_t role;          /* NMC_PIPE_MASTER or NMC_PIPE_SLAVE */
    uint32_t mode;          /* NR_REG_ALL_NIC or NR_REG_ONE_NIC */
    uint32_t ringid;        /* with NR_REG_ONE_NIC */
    uint64_t flags;         /* NR_* register flags */
    uint16_t mem_id;        /* 0: the parent's region, or a new one */
    uint32_t tx_rings, rx_rings, tx_slots, rx_slots;   /* as seen by the master */
    uint32_t extra_bufs;    /* granted exactly, or ENOMEM (ENOSPC: the runtime tmpfs cannot hold them) */
    uint32_t buf_num;       /* buffers in a region this open creates (0: 163840, grown to fit;
                               a value given must fit the runtime tmpfs's free space: ENOSPC) */
    uint32_t buf_size;      /* buffer size in a region this open creates */
    int32_t spin_us;        /* busy-poll before sleeping in nmc_poll; <0 default */
    uint32_t no_timestamp;  /* non-zero: rxsync leaves ring->ts alone */
    /* NIC ports (nmc_xsk_open): parent is the interface name */
    uint32_t ifindex;
    uint32_t xdp_bind;      /* 0: zero-copy if possible, else copy; or XDP_COPY / XDP_ZEROCOPY */
    uint32_t no_sg;         /* non-zero: do not ask for multi-buffer frames */
    /* NIC ports whose kernel sockets a privileged helper made (nmcompat
     * exec's control plane): nic_socks[0..nic_nsocks) are used in order
     * instead of new sockets -- one AF_XDP socket per bound queue, or an
     * AF_PACKET RX then TX socket per bound queue (created with protocol
     * 0) -- and, with them, nic_hold_fd (>= 0) is kept open as long as the
     * port is (the XDP program's link: the program stays attached while the
     * port is open).  The engine takes duplicates; the caller keeps its
     * descriptors and closes them.  Too few sockets: -EINVAL. */
    const int *nic_socks;
    uint32_t nic_nsocks;
    int32_t nic_hold_fd;
    /* NIC ports whose mode binds host rings (NR_REG_SW, NR_REG_NIC_SW,
     * NR_REG_ONE_SW): a tap device's descriptor (non-blocking, IFF_TAP |
     * IFF_NO_PI) that carries the host stack's frames; the engine takes a
     * duplicate.  Reading it fills the host RX ring, the host TX ring is
     * written to it (transport/nic/host.c). */
    int32_t nic_tap_fd;
    /* NIC ports: descriptors the port keeps open while it is (the TCX links
     * of its host side and stack cut-off, when exec's control plane made
     * them; at most 4); the engine takes duplicates. */
    const int *nic_host_holds;
    uint32_t nic_host_nholds;
    /* NIC ports: host rings per direction (netmap's nr_host_tx_rings and
     * nr_host_rx_rings; at most 64).  0: one with a host-ring mode, none
     * otherwise.  All of them share the port's tap. */
    uint32_t host_tx_rings, host_rx_rings;
    /* non-NULL: a region this open creates is built in this file (with
     * it, an existing region of the port must be that file's: -EINVAL) */
    const struct nmc_extmem *extmem;
};

/* What was opened (the NETMAP_REQ_REGISTER reply, plus where things are). */
struct nmc_port_info {
    uint64_t nr_offset;     /* offset of this port's netmap_if in the memory */
    uint64_t nr_memsize;    /* size of the netmap memory (IF+RING+BUF pools) */
    uint32_t nr_tx_slots, nr_rx_slots;
    uint16_t nr_tx_rings, nr_rx_rings;
    uint16_t nr_host_tx_rings, nr_host_rx_rings;
    uint16_t nr_mem_id;
    uint16_t holder;        /* this open's index in the region */
    uint32_t nr_extra_bufs;
    uint32_t buf_size, buf_num;
    uint32_t first_tx_ring, last_tx_ring;  /* bound range, [first, last) */
    uint32_t first_rx_ring, last_rx_ring;
    char region_path[256];
    uint64_t buf_pool_ofs;  /* buffer 0, from the netmap memory base (nmc_port_mem) */
    int32_t spin_us;        /* busy-poll time of nmc_poll */
    uint32_t pad;
};

/* Counters of one port (summed over its bound rings plus its own). */
struct nmc_port_stats {
    uint64_t tx_pkts, tx_bytes, rx_pkts, rx_bytes;
    uint64_t txsyncs, rxsyncs;
    uint64_t reinits;       /* prologue violations repaired */
    uint64_t wakeups_sent;  /* doorbells sent to sleeping peers */
    uint64_t sleeps;        /* times nmc_poll blocked in poll(2) */
    uint64_t drains;        /* doorbell queue drains */
    uint64_t polls;
    uint64_t rx_dropped;    /* VALE: frames the switch could not put in our RX rings */
    uint64_t tx_dropped;    /* VALE: frames we sent that went nowhere (< 14 bytes, to ourselves) */
    uint64_t forwarded;     /* VALE: frames the switch delivered to us */
    uint64_t streamed;      /* VALE: fragments we sent copied with streaming stores */
    uint64_t buf_free;      /* free buffers in the port's region (all its ports) */
};

/* The NMC_ABI_VERSION this engine was built with: a caller compiled
 * against another nmcompat.h must not use it. */
int nmc_abi_version(void);
/* The layout stamp this engine writes in the regions it creates; it
 * attaches to no region with another stamp (-EPROTO). */
uint64_t nmc_layout_stamp(void);

/* The mem_id of the region port name `name` lives in (a pipe's or VALE
 * port's parent name, an interface: this process's NIC region), for
 * netmap's @share; -ENXIO when no open port holds one. */
int nmc_name_mem_id(const char *rundir, const char *name);

/* Opens claim the memory of what they are given on the runtime tmpfs
 * before it is used: a full tmpfs is -ENOSPC (never a SIGBUS later), a
 * region without enough free buffers -ENOMEM, an AF_XDP UMEM beyond
 * RLIMIT_MEMLOCK (without CAP_IPC_LOCK) -ENOBUFS.  A parent has at most 64
 * pipes; the 65th is -EINVAL, as in netmap. */
int nmc_pipe_open(const struct nmc_pipe_req *req, struct nmc_port **out);
/* A VALE port: req->parent is its name "valeX:Y" (switch part [A-Za-z0-9_]),
 * req->pipe_id NULL; the switch and the port are created on first use. */
int nmc_vale_open(const struct nmc_pipe_req *req, struct nmc_port **out);
/* A null port (netmap's NR_REG_NULL): a new port in the existing region
 * req->mem_id (0 or unknown: -EINVAL) with the rings and slots asked for,
 * named "null:" req->parent (NULL: ""); its syncs move nothing (a TX ring
 * hands no slot back, an RX ring never receives), as netmap's null adapter.
 * req->mode NR_REG_ALL_NIC or NR_REG_ONE_NIC, req->pipe_id NULL. */
int nmc_null_open(const struct nmc_pipe_req *req, struct nmc_port **out);
/* A netmap monitor (req->flags: NR_MONITOR_RX, NR_MONITOR_TX, or
 * NR_ZCOPY_MON for both, zero-copy) of the open port req->parent names,
 * with req->pipe_id and req->role for a pipe end; for a NIC port, the
 * interface name, found in whichever process's region holds it.  Pipes and
 * VALE ports take the same flags through their own open functions.  EINVAL
 * when no such port is open, EBUSY when one of its rings has as many
 * monitors as it takes (8 links; zero-copy monitors chain, as netmap's, on
 * one). */
int nmc_monitor_open(const struct nmc_pipe_req *req, struct nmc_port **out);
/* A NIC port over AF_XDP: req->parent is the interface name, req->ifindex
 * its index, req->tx_rings == req->rx_rings its queue count.  One AF_XDP
 * socket per bound queue; the caller attaches the XDP program and puts
 * nmc_xsk_fd(port, k) in its XSKMAP at queue first_ring + k. */
struct nmc_xsk_info {
    uint32_t queue;
    uint32_t zerocopy, sg, bind_flags;
    uint64_t rx_dropped, rx_invalid_descs, tx_invalid_descs;
    uint64_t rx_ring_full, rx_fill_ring_empty_descs, tx_ring_empty_descs;
    uint64_t tx_dropped;    /* slots not sent: chains without multi-buffer, len 0 */
};
int nmc_xsk_open(const struct nmc_pipe_req *req, struct nmc_port **out);
/* Why this thread's last nmc_xsk_open failed with EBUSY when it was to
 * join another process's port on the interface: the errno of the refused
 * pidfd_getfd (EPERM: no ptrace rights over that process), *pid that
 * process; EUSERS (*pid 0) when the record has NMC_NIC_MAX_PROCS processes
 * already; 0 when no such refusal happened. */
#define NMC_NIC_MAX_PROCS 16
int nmc_nic_refusal(int32_t *pid);
/* Why this thread's last open failed with EBUSY, when the engine knows
 * (*pid: the holder's process, 0 when none applies): a holder of an
 * overlapping ring has NR_EXCLUSIVE; this open asks NR_EXCLUSIVE beside a
 * holder; a port of this process with another layout (host rings, another
 * ring count) has the NIC queue's AF_XDP socket.  UNKNOWN otherwise. */
#define NMC_BUSY_UNKNOWN 0
#define NMC_BUSY_HELD_EXCLUSIVE 1
#define NMC_BUSY_ASKS_EXCLUSIVE 2
#define NMC_BUSY_OWN_OTHER_LAYOUT 3
int nmc_busy_cause(int32_t *pid);
int nmc_xsk_fd(struct nmc_port *port, uint32_t k);
/* Keep fd (duplicated) open as long as AF_XDP port `port` is: the XDP
 * link an adopted port holds as its opener's does (nmcompat exec's control
 * plane gives it).  -EINVAL for another kind of port, -EBUSY when the port
 * holds one already. */
int nmc_xsk_keep(struct nmc_port *port, int fd);
/* nmc_xsk_open that only joins a live AF_XDP record binding the
 * request's queues (another process's: its sockets by pidfd_getfd, EBUSY
 * with nmc_nic_refusal when refused) and makes neither a record nor a
 * socket: -ENXIO when there is none to join, or the request has host
 * rings or sockets.  A program under nmcompat exec opens so first. */
int nmc_xsk_join(const struct nmc_pipe_req *req, struct nmc_port **out);
int nmc_xsk_info(struct nmc_port *port, uint32_t k, struct nmc_xsk_info *info);
/* A NIC port in netmap's emulated mode, over AF_PACKET (same request as
 * nmc_xsk_open).  Counters per bound queue: */
struct nmc_pkt_info {
    int rx_fd, tx_fd;
    uint64_t rx_packets, rx_drops;      /* PACKET_STATISTICS, accumulated */
    uint64_t rx_truncated;              /* frames cut: longer than 64 buffers or an RX ring block */
    uint64_t tx_too_big;                /* chains longer than a TX frame or the MTU: dropped */
    uint32_t tx_frame_size;
    uint32_t tx_frames;                 /* frames of the kernel's TX ring: at most the slots (pkt.c) */
    uint32_t rx_block_size, rx_blocks;  /* the kernel's RX ring: blocks of a frame the interface can hand up (pkt.c) */
};
int nmc_pkt_open(const struct nmc_pipe_req *req, struct nmc_port **out);
int nmc_pkt_info(struct nmc_port *port, uint32_t k, struct nmc_pkt_info *info);

/* The host stack's side of a NIC port (either kind): its tap (-1 when it
 * has none), frames of the host RX ring cut (longer than 64 buffers),
 * frames of the host RX ring dropped (more slots than the ring has), and
 * transparent mode's frames forwarded up to the stack and down onto the
 * NIC TX rings.  -EINVAL for a port that is no NIC port. */
struct nmc_host_info {
    int tap_fd;
    uint64_t rx_truncated, fwd_up, fwd_down;
    uint64_t rx_dropped;
};
int nmc_host_info(struct nmc_port *port, struct nmc_host_info *info);

/* Every buffer a NIC port (either kind) owns, each once: the first `cap`
 * indexes into idx[], and where each is into where[] (may be NULL).
 * Returns how many there are (more than cap: call again with room),
 * -EINVAL for another kind of port, -EOWNERDEAD in a child that inherited
 * the port.  AF_XDP ports of one process on one interface share their
 * rings (several openers of a queue): each lists what they own together.
 * Together with the extra-buffer lists and the free buffers, the NIC
 * ports of a region (one per shared record) own each buffer once; the
 * slots of their rings are not a list of what they own (an AF_XDP RX
 * ring's kernel-side slots name buffers already given back to FILL).
 * Call it between syncs of the port. */
/* where: in a slot of one of its rings; in an AF_XDP queue (FILL, the
 * kernel, RX; or handed to TX and not completed, its TX slot naming it);
 * waiting for room in an AF_XDP FILL ring */
#define NMC_NIC_BUF_SLOT  0
#define NMC_NIC_BUF_QUEUE 1
#define NMC_NIC_BUF_SPARE 2
int nmc_nic_bufs(struct nmc_port *port, uint32_t *idx, uint8_t *where, uint32_t cap);

/* netmap's bridge step: move whole packets from src's RX rings to dst's TX
 * rings, swapping buffers when both share a region (NMC_FWD_COPY: copy
 * anyway).  No sync.  Returns the number of slots moved. */
#define NMC_FWD_COPY 1
int nmc_forward(struct nmc_port *src, struct nmc_port *dst, uint32_t limit, uint32_t flags);
int nmc_port_close(struct nmc_port *port);
int nmc_port_info(const struct nmc_port *port, struct nmc_port_info *info);
int nmc_port_stats(const struct nmc_port *port, struct nmc_port_stats *st);
/* The pools of the port's netmap memory (NETMAP_REQ_POOLS_INFO_GET):
 * offsets from the memory base, object counts and sizes.  A netmap_if is
 * allocated in units of if_objsize bytes. */
struct nmc_pools_info {
    uint64_t memsize;
    uint16_t mem_id, pad[3];
    uint64_t if_pool_offset;
    uint32_t if_objtotal, if_objsize;
    uint64_t ring_pool_offset;
    uint32_t ring_objtotal, ring_objsize;
    uint64_t buf_pool_offset;
    uint32_t buf_objtotal, buf_objsize;
};
int nmc_port_pools(const struct nmc_port *port, struct nmc_pools_info *out);
/* What a REGISTER of a NIC port (req: parent, tx_rings = rx_rings =
 * queues, slots, rundir) would report, without opening it: its rings and
 * slots, and the process's NIC region; if it does not exist yet, it is
 * made and held by an anchor (a null port "null:IFNAME" binding no ring)
 * until nmc_nic_drop_anchor(), called once the process's NIC port is open. */
int nmc_nic_describe(const struct nmc_pipe_req *req, struct nmc_port_info *info,
                     struct nmc_pools_info *pools);
void nmc_nic_drop_anchor(void);
/* The descriptor to wait on with poll(2), select or epoll (level-triggered):
 * readable while an rxsync would hand out packets, writable while a txsync
 * would find room, from this call on whatever was called before (pipes and
 * VALE ports; NIC ports hand out their kernel sockets: docs/DESIGN.md §8). */
int nmc_port_fd(struct nmc_port *port);
/* A netmap device descriptor bound to the port (what a /dev/netmap fd
 * becomes at NETMAP_REQ_REGISTER): the port's holder lives while any
 * process has it open, so close it before nmc_port_close(), which then
 * leaves the holder to whoever else has it (SCM_RIGHTS, fork).  One per
 * port (-EBUSY for a second: dup it).  A NIC port's keeps its holder
 * too, but its kernel sockets stay the opening process's: a child that
 * inherited the port gets -EOWNERDEAD, and nmc_port_adopt() refuses it
 * (-EOPNOTSUPP). */
int nmc_port_dev_fd(struct nmc_port *port);
/* The port a device descriptor made by nmc_port_dev_fd() keeps alive, for
 * a process that received it (SCM_RIGHTS) or kept it across exec: a new
 * nmc_port on the same holder (rings, netmap_if, extra buffers).  Close
 * devfd before nmc_port_close(), as for the opener.  -EBADF when devfd is
 * no such descriptor. */
int nmc_port_adopt(int devfd, struct nmc_port **out);
/* What this thread's last nmc_port_adopt() found, adopted or not: the
 * port's transport ("afxdp", "afpacket"...; "" when it found no port),
 * its parent (a NIC port's interface) and its host ring count.  Why a NIC
 * record could not be joined (-EBUSY): nmc_nic_refusal(). */
struct nmc_adopt_info {
    char kind[16];
    char parent[64];
    uint32_t host_rings, pad;
};
void nmc_port_adopt_info(struct nmc_adopt_info *ai);
/* Is fd port p's device descriptor (the one p was adopted from, or made
 * by nmc_port_dev_fd): 1, or 0 once that number names anything else. */
int nmc_port_is_device(const struct nmc_port *port, int fd);
void *nmc_port_mem(const struct nmc_port *port);        /* netmap memory base */
struct netmap_if *nmc_port_nifp(const struct nmc_port *port);
/* Bound ring i of direction dir (0 TX, 1 RX) and its slot count (the
 * engine's own copy: bound indexes with it, not with ring->num_slots);
 * NULL when there is no such ring. */
struct netmap_ring *nmc_port_ring(const struct nmc_port *port, int dir, uint32_t i,
                                  uint32_t *nslots);
/* Would a sync change anything for `events` (POLLIN, POLLOUT)?  Looks only
 * at shared indexes, no system call; always 0 for ports the kernel wakes
 * (NIC ports). */
int nmc_port_pending(const struct nmc_port *port, int events);
/* After poll(2) on nmc_port_fd() reported POLLIN: empty the port's wakeup
 * socket (ports the kernel wakes: the next rxsync looks at the kernel's
 * ring at once). */
void nmc_port_drain(struct nmc_port *port);

/* Sync every bound ring of one direction.  -EINVAL after repairing a ring
 * whose head/cur/slots the user corrupted (netmap's reinit). */
int nmc_txsync(struct nmc_port *port);
int nmc_rxsync(struct nmc_port *port);

/* netmap's poll(): txsync unless NR_NO_TX_POLL (or POLLOUT asked), rxsync
 * with POLLIN, then sleep until ready.  Returns revents (POLLERR after a
 * reinit), 0 on timeout, or -errno. */
int nmc_poll(struct nmc_port *port, int events, int timeout_ms);
/* For a caller that waits on nmc_port_fd() itself (its own poll set): what
 * to wait for there so that `events` not ready now wake it; POLLIN always,
 * POLLOUT only while the fd will turn writable when TX room comes. */
int nmc_port_wait_events(struct nmc_port *port, int events);

/* Make every nmc_poll() of port, the ones waiting now in other threads and
 * all later ones, return -ECANCELED at once.  Called from another thread
 * before nmc_port_close(), which must wait until those calls returned. */
int nmc_port_interrupt(struct nmc_port *port);

/* nm_inject(): queue one packet (split into NS_MOREFRAG fragments when
 * larger than a buffer) on the first bound TX ring with room; no syscall.
 * Returns len, or 0 if no ring had room. */
int nmc_inject(struct nmc_port *port, const void *buf, size_t len);

/* Queue n packets: packet i is lens[i] bytes at data + i*stride.  Returns
 * how many were queued (stops at the first that does not fit). */
int nmc_send_batch(struct nmc_port *port, const uint8_t *data, size_t stride,
                   const uint32_t *lens, uint32_t n);

/* Take up to n received packets (after rxsync), reassembling NS_MOREFRAG
 * chains: packet i is copied to out + i*stride (at most stride bytes) and
 * its full length stored in lens[i].  Returns the count. */
int nmc_recv_batch(struct nmc_port *port, uint8_t *out, size_t stride,
                   uint32_t *lens, uint32_t n);

/* One received packet for nm_nextpkt()/nm_dispatch(): fills the
 * descriptor and advances the ring past it.  Returns 1, or 0 when every
 * bound RX ring is empty. */
struct nmc_pkt {
    uint64_t buf_ofs;       /* offset of the first fragment in the memory */
    uint32_t len;           /* total length of the packet */
    uint32_t first_len;     /* length of the first fragment */
    uint32_t nfrags;
    uint32_t ring;          /* RX ring it came from */
    uint32_t slot;          /* index of its first slot */
    uint32_t flags;         /* flags of its first slot */
    int64_t ts_sec, ts_usec;
};
int nmc_next_packet(struct nmc_port *port, int whole, struct nmc_pkt *pkt);
/* Copy the payload of a packet returned by nmc_next_packet(whole=1) into
 * dst (at most cap bytes); valid until the next rxsync.  Returns bytes. */
int nmc_copy_packet(struct nmc_port *port, const struct nmc_pkt *pkt,
                    uint8_t *dst, size_t cap);

/* The same helpers on the bound rings of any netmap memory, such as the
 * kernel's mapped from a registered /dev/netmap descriptor (the native
 * backend): the caller fills the view from the REGISTER reply and the
 * mapping, and keeps the arrays alive.  No ring ownership: threads sharing
 * a ring serialise themselves, as on netmap's.  Indexes read from the rings
 * are checked against tx_slots/rx_slots and buffer indexes against buf_num.
 * nmc_rings_forward swaps buffers when both views have the same mem_id
 * (and buffer geometry), else copies. */
struct nmc_rings {
    uint8_t *mem;                       /* netmap memory base (the mapping) */
    uint64_t buf_pool_ofs;              /* buffer 0, from mem */
    uint32_t buf_size, buf_num;
    uint32_t mem_id;
    uint32_t ntx, nrx;                  /* bound rings */
    uint32_t cur_tx, cur_rx;            /* where the next call starts (round robin) */
    struct netmap_ring **tx, **rx;
    const uint32_t *tx_slots, *rx_slots;    /* each ring's slot count, at registration */
};
int nmc_rings_send(struct nmc_rings *r, const uint8_t *data, size_t stride,
                   const uint32_t *lens, uint32_t n);
int nmc_rings_recv(struct nmc_rings *r, uint8_t *out, size_t stride, uint32_t *lens, uint32_t n);
int nmc_rings_next(struct nmc_rings *r, int whole, struct nmc_pkt *pkt);
int nmc_rings_copy(const struct nmc_rings *r, const struct nmc_pkt *pkt, uint8_t *dst, size_t cap);
int nmc_rings_forward(struct nmc_rings *src, struct nmc_rings *dst, uint32_t limit, uint32_t flags);

/* VALE control (netmap's NETMAP_REQ_VALE_* and PORT_INFO_GET), with
 * netmap's errnos.  rundir may be NULL (the default). */
struct nmc_vale_list {
    char name[64];          /* in: a port to find, or "" to enumerate; out: the port */
    uint32_t bridge_idx;    /* in/out: where enumeration starts / found */
    uint32_t port_idx;
};
int nmc_vale_newif(const struct nmc_pipe_req *req);   /* req->parent: the new port's name */
int nmc_vale_delif(const char *rundir, const char *name);
int nmc_vale_attach(const char *rundir, const char *name);    /* "valeX:vi0"; >= 0: port index */
int nmc_vale_detach(const char *rundir, const char *name);
int nmc_vale_list(const char *rundir, struct nmc_vale_list *l);
int nmc_vale_port_info(const char *rundir, const char *name, struct nmc_port_info *info);
/* The virtio-net header length of VALE port "valeX:Y" on its switch
 * (netmap's PORT_HDR_SET/GET): set to 0, 10 or 12 (other lengths -EINVAL),
 * get returns it; -ENXIO when the switch has no such port.  A port with a
 * header reads and writes it before each frame's Ethernet header. */
int nmc_vale_hdr_set(const char *rundir, const char *name, uint32_t len);
int nmc_vale_hdr_get(const char *rundir, const char *name);
/* The header length of an open port: its VALE switch entry's, else 0. */
int nmc_port_vhdr_len(const struct nmc_port *p);
/* The port index of switch `sw` ("valeX") whose learning table holds the
 * 6-byte `mac`, or -ENOENT; -ENXIO when there is no such switch. */
int nmc_vale_lookup(const char *rundir, const char *sw, const uint8_t *mac);


/* Buffer ownership (nmcompat check).  Every buffer of a region is in one
 * place: a slot of a ring of a live port (for a pipe, the side that owns
 * that slot position, see docs/DESIGN.md), an extra-buffer list
 * (ni_bufs_head), a NIC queue, or free; buffers 0 and 1 are reserved. */
#define NMC_PLACE_NONE  0
#define NMC_PLACE_SLOT  1       /* port, end, dir (0 tx, 1 rx), ring, slot */
#define NMC_PLACE_EXTRA 2       /* holder's list; slot = position in it */
struct nmc_buf_place {
    uint32_t kind;
    uint32_t port, holder, end, dir, ring, slot;
    char name[132];         /* the port, as netmap names it ("x{1", "vale0:a") */
};
#define NMC_VIOL_DUPLICATE  1   /* one buffer in two places, a and b */
#define NMC_VIOL_FREE_INUSE 2   /* in place a, yet marked free */
#define NMC_VIOL_LOST       3   /* allocated, in no place, beyond what holders may keep */
#define NMC_VIOL_BAD_INDEX  4   /* place a holds an index out of range or reserved */
#define NMC_VIOL_RESERVED   5   /* buffer 0 or 1 is not marked reserved */
#define NMC_VIOL_FREE_COUNT 6   /* the free counter disagrees with the bitmap (buf_idx: the counter) */
struct nmc_check_violation {
    uint32_t what, buf_idx;
    struct nmc_buf_place a, b;
};
#define NMC_CHECK_LISTED 32
struct nmc_check_report {
    uint32_t mem_id, buf_num, buf_size;
    uint32_t free_bufs;     /* clear in the allocation bitmap (reserved excluded) */
    uint32_t in_rings, in_extra;
    uint32_t in_nic;        /* NIC queues: not enumerated (see nic_opaque) */
    uint32_t unplaced;      /* allocated and in no place */
    uint32_t private_max;   /* what live holders may keep off their lists (extra_bufs - listed) */
    uint32_t empty_slots;   /* slots with buf_idx 0 */
    uint32_t ports, holders, dead_holders;  /* dead: not yet reaped */
    uint32_t nic_opaque;    /* NIC ports present: their queues are not enumerated */
    uint32_t violations;    /* found */
    uint32_t listed;        /* of them, described in v[] */
    struct nmc_check_violation v[32];       /* NMC_CHECK_LISTED */
};
/* Verify the invariant for region mem_id of rundir (NULL: the default),
 * under its region lock, without changing anything.  0 (see
 * out->violations), -ENXIO if there is no such region. */
int nmc_region_check(const char *rundir, uint16_t mem_id, struct nmc_check_report *out);

/* Is rundir (NULL: $NMCOMPAT_RUNDIR, else /dev/shm/nmcompat-<uid>) a
 * runtime directory this process may use, by the check every open makes:
 * 0; -ENOENT if it does not exist (nothing is created), -ENOTDIR if it is
 * not a directory (a symbolic link is not), -EACCES if it is not ours or
 * has group or other permission bits, -EXDEV if it is not on tmpfs or
 * hugetlbfs.  gc, status and check refuse what it refuses. */
int nmc_rundir_verify(const char *rundir);

/* Reclaim now what processes that died left in the runtime directory
 * (rundir NULL: the default): every region whose holders are all dead is
 * reaped (ports nobody holds freed, an empty region removed with its
 * names), dead holders of live regions are released, and files no region
 * owns any more are removed (a memory file without its control file, a
 * holder socket or a parent.* name of a region that is gone, a switch
 * with no live port).  A region locked by someone else is left to them
 * (counted in busy).  0, or -errno: nmc_rundir_verify()'s for a directory
 * that is not a runtime directory (-ENOENT: no such directory). */
struct nmc_gc_report {
    uint32_t regions;       /* regions looked at */
    uint32_t reaped;        /* of them, with dead holders or unheld ports reclaimed */
    uint32_t removed;       /* of them, removed (no port left) */
    uint32_t busy;          /* locked by another process: left alone */
    uint32_t files;         /* orphan files removed (memory files, sockets, names) */
    uint32_t other;         /* removed by the port kinds (switch files) */
};
int nmc_rundir_gc(const char *rundir, struct nmc_gc_report *out);

/* Regions of another nmcompat build (a control file with the magic every
 * build writes, another layout stamp or version: -EPROTO to an open).
 * Whether one is held is known by file locks alone: every build's holders
 * lock bytes of its control file while they live, so a lock on any byte of
 * it (or of its memory file) is a holder.  nmc_region_foreign(): 1 held,
 * 0 nobody holds it, -EINVAL not such a region, -ENOENT none.
 * nmc_rundir_foreign(): counts them; with `remove`, under the name lock,
 * removes every one nobody holds (write-locking its whole control file
 * first: held, it is left and counted in held).  nmc_rundir_gc() then
 * removes the names they leave. */
struct nmc_foreign_report {
    uint32_t found;         /* regions of another build */
    uint32_t held;          /* of them, held by a process: left alone */
    uint32_t removed;       /* of them, removed (with `remove`) */
    uint32_t pad;
};
int nmc_region_foreign(const char *rundir, uint16_t mem_id);
int nmc_rundir_foreign(const char *rundir, int remove, struct nmc_foreign_report *out);

/* What a region holds (nmcompat status), read under its region lock. */
#define NMC_STATUS_PORTS   128     /* NMC_MAX_PORTS */
#define NMC_STATUS_HOLDERS 256     /* NMC_MAX_HOLDERS */
struct nmc_port_status {
    char name[64];          /* "x" (a pipe's parent), "vale0:a", "eth0"; a monitor: "x}1/r" */
    char pipe_id[64];       /* a pipe's id ("1"): its ends are x{1 and x}1; else "" */
    char kind[16];          /* "pipe", "vale", "afxdp", "afpacket", "null", or "?" */
    char sw[16];            /* VALE: the switch it is attached to ("vale0"), or "" */
    uint32_t index, persistent, nends;
    uint32_t tx_rings, rx_rings, tx_slots, rx_slots;    /* end 0 */
    uint32_t holders;       /* live holders */
};
struct nmc_holder_status {
    uint32_t index, port, end;
    int32_t pid;            /* the process that opened it */
    uint32_t alive;         /* its lock byte is held (0: dead, not yet reaped) */
    uint32_t extra_bufs;
};
struct nmc_region_status {
    uint32_t mem_id, buf_num, buf_size, buf_free;
    uint64_t memsize, ctl_size;     /* file sizes (sparse: see the files' blocks) */
    uint64_t opens;
    uint32_t spare;                 /* 1: no port, kept for the next region of its shape */
    uint32_t nports, nholders;
    struct nmc_port_status port[NMC_STATUS_PORTS];
    struct nmc_holder_status holder[NMC_STATUS_HOLDERS];
};
int nmc_region_status(const char *rundir, uint16_t mem_id, struct nmc_region_status *out);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* NMCOMPAT_H */
