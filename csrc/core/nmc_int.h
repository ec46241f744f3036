/*
 * nmc_int.h -- shared-memory layout and internal interfaces of the engine.
 *
 * A region (netmap "mem_id") is two files on the tmpfs runtime directory:
 *
 *   mem.<id>  [ IF pool | RING pool | BUF pool ]   the netmap memory, from
 *             offset 0: the only file users map (nr_offset is relative to it)
 *   ctl.<id>  [ header | holders | ports | krings | bitmaps ]   the engine's
 *             control state: mapped by the engine only, never reachable
 *             through a mapping of the netmap memory
 *
 * The control file holds the header, the holder table (one entry per open
 * port, i.e. per netmap_if), the port table, one struct nmc_kring per ring
 * object and the allocation bitmaps.  Control operations on a region (open,
 * close, reclaim) hold its region lock, an OFD write lock on byte
 * NMC_REGION_LOCK_BYTE of the control file; the data path takes no lock.
 * Lock order (docs/DESIGN.md section 3): name lock, then region locks,
 * then switch locks; a region lock is only waited for while no other
 * region lock is held (a second one is only ever tried, never waited for).
 *
 * Liveness: holder h keeps an OFD write lock on byte NMC_HOLDER_BYTE(h) of
 * the control file for as long as any process has its file description
 * open (fork and SCM_RIGHTS keep it alive, death releases it).  The byte
 * after it, NMC_DEVICE_BYTE(h), is locked through the holder's netmap
 * device descriptor if one was handed out (nmc_port_dev_fd).  A holder
 * with both bytes unlocked is dead and is reclaimed on the next open or
 * close.
 */
#ifndef NMC_INT_H
#define NMC_INT_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/types.h>
#include <net/netmap.h>
#include "nmcompat.h"

#define NMC_REGION_MAGIC   0x6f6967657263616eULL   /* "nacregio" */
#define NMC_REGION_VERSION 6u
#define NMC_MAX_HOLDERS    256u
#define NMC_MAX_PORTS      128u
#define NMC_PIPE_MAXRINGS  256u
#define NMC_MAXPIPES       64                /* pipes per parent (netmap's NM_MAXPIPES) */
#define NMC_MAXSLOTS       4096u
#define NMC_MAX_MONITORS   8u                /* monitors per ring (monitor.c) */
#define NMC_MON_CHAIN      0x80000000u       /* link flag: zero-copy monitor to the next one (monitor.c) */
#define NMC_DEF_SLOTS      1024u
#define NMC_DEF_BUF_NUM    163840u           /* netmap's buf_num: 64 default pipes fit */
#define NMC_DEF_BUF_SIZE   2048u
#define NMC_DEF_RING_NUM   1024u
#define NMC_IF_UNIT        64u
#define NMC_IF_UNITS       8192u
#define NMC_NAMELEN        64u
#define NMC_REGION_LOCK_BYTE 0               /* the region lock */
#define NMC_LOCK_BASE      1                 /* byte of holder 0 */
#define NMC_HOLDER_LOCK_BYTES 2u             /* per holder: its port's, its device fd's */
#define NMC_HOLDER_BYTE(h) (NMC_LOCK_BASE + (off_t)NMC_HOLDER_LOCK_BYTES * (off_t)(h))
#define NMC_DEVICE_BYTE(h) (NMC_HOLDER_BYTE(h) + 1)
#define NMC_REGION_LINKS   8u                /* parent names recorded in the header */
#define NMC_GC_OPEN_BUDGET 4u                /* regions each open checks (gc.c) */
/* The name-lock file <rundir>/lock keeps hints, read and written with
 * pread/pwrite: the next mem_id to try (written under the name lock), the
 * per-open collection's cursor (gc.c), and a count of regions created
 * (under the name lock), whose change tells gc.c to list the directory. */
#define NMC_NAMES_NEXT_OFS   0
#define NMC_NAMES_CURSOR_OFS 4
#define NMC_NAMES_GEN_OFS    8
#define NMC_REAP_ASK_BUDGET 8u               /* holders of live openers a reap asks (reap.c) */
#define NMC_SPARES 4u                        /* empty regions kept for reuse (spare.c) */
#define NMC_PID_MEMO 8u                      /* pids a reap remembers (reap.c) */
#define NMC_PAGE           4096u
/* A ring starts NMC_RING_LEAD bytes into its ring object, not at the page.
 * With the default 2048-byte buffers, frames start at page offset 0 or
 * 0x800; a ring at a page start had its header (buf_ofs, num_slots,
 * nr_buf_size, head, cur, tail) at the page offset of every even buffer's
 * first bytes.  A program's per-packet loop (NETMAP_BUF, nm_ring_next)
 * loads those fields right after storing into a frame, and a load whose
 * address has an earlier store's low 12 bits waits for that store (4K
 * aliasing): 10-20 % of a pipe's rate at batch 64 and 512
 * (docs/BENCHMARKS.md, "Ring placement").  At 0x780 the header (its first
 * 128 bytes, up to sem[]) shares page offsets only with the bytes of a
 * frame beyond 1920 in buffers of a multiple of 2048 bytes (beyond 896 in
 * odd multiples of 1024).  A multiple of 128, the ring's alignment. */
#define NMC_RING_LEAD      0x780u
#define NMC_CLAIM_BITS     (1u << 20)        /* most chunks a claim map tracks */
#define NMC_SLEEP_WORDS    (NMC_MAX_HOLDERS / 64)
#define NMC_MAX_LEASES     32u
#define NMC_LOCK_READY     0x6c6f636bu      /* "lock" */
#define NMC_WAKE_DIR       "wake"            /* <rundir>/wake: the ports' sockets (wake.c) */
#define NMC_WAKE_DIR_MODE  0711
/* A region's two files: reached by path only through the 0700 runtime
 * directory or the unlistable wake/ (their second names, mem.<id>.ctl and
 * mem.<id>.mem), so that an opener that dropped its privileges can still
 * map a peer's region through its descriptor of wake/ (DESIGN §13). */
#define NMC_REGION_FILE_MODE 0666
#define NMC_WAKE_SOCK_MODE 0622

#define NMC_CACHELINE 64
#define nmc_aligned __attribute__((aligned(NMC_CACHELINE)))

/* Immutable geometry, fixed when the region is created.  Offsets marked
 * "ctl" are from the start of the control file; pool offsets are from the
 * start of the netmap memory file. */
struct nmc_geom {
    uint64_t ctl_size, memsize;                             /* file sizes */
    uint64_t holders_ofs, ports_ofs, krings_ofs;            /* ctl */
    uint64_t if_map_ofs, ring_map_ofs, buf_map_ofs;         /* ctl */
    uint64_t claim_map_ofs;                                 /* ctl: chunks of memory claimed */
    uint64_t if_pool_ofs, ring_pool_ofs, buf_pool_ofs;      /* memory */
    uint32_t if_units, ring_num, ring_size, buf_num, buf_size;
    uint32_t claim_shift;           /* a claimed chunk is 1 << claim_shift bytes of memory */
};

/* At offset 0 of the control file.  magic, layout and version keep their
 * places in every build, so that any build can tell a foreign layout. */
struct nmc_region_hdr {
    uint64_t magic;
    uint64_t layout;            /* nmc_layout_hash() of the creating build */
    uint32_t version, mem_id;
    struct nmc_geom g;
    uint32_t buf_hint;          /* first-fit scan start */
    uint32_t buf_free;
    uint64_t opens;             /* statistics */
    uint32_t reap_cursor;       /* next holder whose lock byte a reap asks (reap.c) */
    uint32_t spare;             /* 1: no port, kept for the next region of its shape (spare.c) */
    uint32_t extmem;            /* 1: the memory file is the user's (@extmem): never a spare */
    /* the parent.* links naming this region, removed with it; past
     * NMC_REGION_LINKS names, links_overflow makes removal scan the
     * directory */
    uint32_t nlinks, links_overflow;
    char links[NMC_REGION_LINKS][NMC_NAMELEN];
};

enum { NMC_FREE = 0, NMC_LIVE = 1 };

/* One open port (one netmap_if).  Written under the region lock, except
 * bells_pending (set by any waker, cleared by the holder). */
struct nmc_holder {
    uint32_t state;
    int32_t pid;
    uint32_t port, end;
    uint32_t nifp_unit, nifp_units;
    uint32_t mode, ringid;
    uint64_t flags;
    uint32_t first[2], last[2];     /* bound ring ranges by direction */
    uint32_t extra_bufs;
    uint32_t fill_target;           /* holder+1 whose socket holds our filler */
    uint32_t bells_pending;
    uint32_t sock_left;             /* its closer could not unlink its socket: the reaper does */
    uint64_t gen;
} nmc_aligned;

/* One port of some kind (a transport's kind id: nmc_transport.h), with one
 * end (VALE, NIC) or two (pipe).  Ring objects of
 * end e, direction d (0 tx, 1 rx) are first_obj[e][d] + k.  A pipe's TX
 * ring k of end e is crossed with RX ring k of end 1-e. */
struct nmc_port_rec {
    uint32_t state, kind;
    char parent[NMC_NAMELEN];       /* pipe: parent name; VALE: "valeX:Y" */
    char pipe_id[NMC_NAMELEN];      /* pipe only */
    uint32_t nends, persistent;
    uint32_t nrings[2][2], nslots[2][2], first_obj[2][2];
    char sw[NMC_NAMELEN];           /* VALE: switch name, e.g. "vale0" */
    uint32_t sw_port;               /* VALE: index in the switch */
    uint32_t attach_gen;            /* VALE: bumped by attach/detach */
    uint32_t nhost[2];              /* NIC: host rings per direction (tx, rx), the last of nrings */
    uint64_t nic_shm_ino;           /* NIC (AF_XDP): inode of its share memory (nic_xproc.c), 0: none */
    uint64_t nic_netns[2];          /* NIC: its interface's network namespace (device, inode) */
    uint32_t nic_ifindex;           /* NIC: the interface's index there */
    /* NIC (AF_XDP): each process that maps the share memory (nic_xproc.c)
     * and its descriptor of it, + 1; 0: a free entry */
    struct { int32_t pid, fd; } nic_shm_fds[16];
    uint64_t gen;
    /* monitors (monitor.c): the port record, end and generation watched,
     * and the NR_MONITOR_* / NR_ZCOPY_MON flags of the monitor */
    uint32_t mon_port, mon_end, mon_flags;
    uint64_t mon_gen;
} nmc_aligned;

/* Kernel-side state of one ring ("kring"), in shared memory. */
struct nmc_kring {
    /* written by this ring's syncs */
    uint32_t hwcur, hwtail, rhead, rcur, rtail;
    uint32_t nslots, peer;          /* peer kring (ring object) index */
    uint32_t dir, end;
    uint32_t users;                 /* holders binding this ring (changed under the region lock) */
    uint32_t nmon;                  /* monitors of this ring (monitor.c; under the region lock) */
    uint32_t mon_epoch;             /* bumped when nmon leaves 0: syncs before saw no monitor */
    /* who is inside the ring (ring_own.c): pid << 32 | entry << 9 | holder + 1,
     * or 0; owner_start is the start time of that pid, valid when
     * owner_tag equals busy */
    uint64_t busy, owner_tag, owner_start;
    /* the bias (ring_own.c): the owner word of the holder thread that may
     * enter and leave with plain stores (0: none); bias_in, 1 while it is
     * inside; bias_gone, the last word revoked (its holder can no longer
     * enter by it); bias_off, set by a revocation: no bias again until the
     * object is reused */
    uint64_t bias, bias_gone;
    uint32_t bias_in, bias_off;
    /* written by the peer ring's syncs */
    nmc_aligned uint32_t pipe_tail;
    /* holders sleeping on this ring (bit per holder) */
    nmc_aligned uint64_t sleepers[NMC_SLEEP_WORDS];
    /* set once a holder that waits on its bare fd has armed here: whoever
     * publishes into this ring fences before it reads the sleepers (wake.c);
     * on their line, which a publisher reads anyway and nobody writes
     * often (not on pipe_tail's, which the publisher has just written and
     * the reader is reading) */
    uint32_t fenced_wake;
    /* counters */
    nmc_aligned uint64_t pkts;      /* pkts, bytes: nmc_ring_count */
    uint64_t bytes, reinits;
    /* the monitors of this ring (monitor.c): each a monitor's RX ring
     * object, the kgen it had when linked, and what it watches */
    struct nmc_mon_link { uint32_t obj, kgen, flags; } mon[NMC_MAX_MONITORS];
    /* Everything from here on survives nmc_ring_init (reuse of the object):
     * a lock another process may hold is never overwritten.
     * kgen: bumped whenever the object is reused or retired, so that a
     * process that mapped it earlier notices (under lease_lock).
     * VALE destination rings: concurrent senders reserve [hwlease, ...) under
     * lease_lock, copy outside it, and complete in order (lease queue). */
    nmc_aligned pthread_mutex_t lease_lock;
    uint32_t lock_ready;            /* NMC_LOCK_READY once lease_lock is initialised */
    uint32_t kgen;
    uint32_t hwlease, lease_first, lease_count, lease_init;
    struct nmc_lease {
        uint32_t start, end, done, owner_mem, owner_h, checks;
        int32_t pid;
        uint32_t pidns;             /* the inode of its pid namespace, or 0: unknown */
    } leases[NMC_MAX_LEASES];
} __attribute__((aligned(128)));    /* whole 128-byte line pairs: the peer's sleepers
                                       never pair with this ring's counters */

/* The wall clock of ring->ts (clock.c): an anchor (TSC, CLOCK_REALTIME ns)
 * and ns per TSC cycle << 32 (0: not calibrated), good for win cycles;
 * the rate is measured from (cal_tsc, cal_raw: CLOCK_MONOTONIC_RAW ns). */
struct nmc_usclock {
    uint64_t tsc0, win, mult, cal_tsc;
    int64_t ns0, cal_raw;
};
void nmc_clock_stamp(struct nmc_usclock *c, struct timeval *tv);

/* Process-local view of one bound ring. */
struct nmc_lring {
    struct netmap_ring *ring, *peer_ring;
    struct nmc_kring *kr, *peer_kr;
    uint32_t n;                     /* slots (trusted local copy) */
    uint32_t id;                    /* ring index within its direction */
    uint32_t obj;                   /* ring object index */
    uint32_t last_hwtail;           /* pipe txsync: the tail it fetched last (+1; 0: none) */
    uint32_t mon_tx_next;           /* TX: slots before it were copied to monitors (+1; 0: none) */
    uint32_t mon_tx_epoch;          /* the kring's mon_epoch when mon_tx_next was set */
    struct nmc_xsk *xsk;            /* NIC ports: the AF_XDP socket of this queue */
    struct nmc_psock *pkt;          /* emulated NIC ports: the AF_PACKET sockets of this queue */
    uint64_t tx_dropped;            /* NIC TX: slots that could not be sent */
    bool tx_in_drop;                /* NIC TX: inside a chain being dropped */
    bool host;                      /* NIC: a host ring, synced through the port's tap (host.c) */
    struct nmc_usclock clock;       /* RX: ring->ts, used by the thread inside the ring */
    uint32_t entries;               /* ring_own.c: a count of entries, for the owner word */
    uint64_t bias_word;             /* ring_own.c: our owner word while we hold the bias, else 0 */
    uint64_t bias_prev;             /* the bias we held until it was revoked (still in busy?) */
    pthread_t bias_thread;          /* the thread that took it (one thread enters by it) */
    uint32_t bias_forks;            /* and the process (ring_own.c's count of forks then) */
} nmc_aligned;                      /* written by every sync: no line shared with another port's */

struct nmc_xsk;
struct nmc_psock;
struct nmc_host_tap;
struct nmc_transport_ops;

/* A process-local handle on one open port. */
struct nmc_port {
    int ctl_fd, sock, bell;         /* ctl_fd carries the holder's lock byte */
    int wake_dir;                   /* O_PATH: <rundir>/wake, for wakeups after a drop (wake.c) */
    bool wake_by_fd;                /* the path is out of reach: send through wake_dir */
    uint8_t *ctl;                   /* the control file */
    uint8_t *mem;                   /* the netmap memory file */
    struct nmc_geom g;              /* trusted local copy */
    uint16_t mem_id;
    uint32_t hidx, end;
    struct nmc_holder *holder;
    struct nmc_port_rec *rec;
    struct netmap_if *nifp;
    uint32_t ntx, nrx;              /* bound rings */
    struct nmc_lring *tx, *rx;
    uint32_t cur_tx, cur_rx;        /* nm_inject / nm_dispatch ring cursor */
    uint64_t flags;
    int spin_us;
    bool no_timestamp, err_pending, filled, fd_exported;
    int interrupted;                /* nmc_port_interrupt(): every nmc_poll returns -ECANCELED */
    uint32_t attach_gen;            /* the record's attachment p->tp is for */
    struct nmc_port_stats st;       /* process-local counters */
    const struct nmc_transport_ops *ops;    /* the port's kind */
    void *tp;                       /* transport-private process-local state */
    struct nmc_xsk **xsk;           /* NIC ports: the AF_XDP socket of each bound queue */
    int nxsk, epfd;
    struct nmc_psock *pkts;         /* emulated NIC ports: sockets per bound queue */
    int npkts;
    struct nmc_kfd { int fd; int serves; } *kfd;    /* NIC ports: kernel fds to wait on */
    int nkfd;
    uint32_t nic_taken;             /* NIC ports: sockets taken from the request's nic_socks */
    int nic_hold;                   /* NIC ports: the request's nic_hold_fd, duplicated, + 1 (0: none) */
    struct nmc_host_tap *nic_host;  /* NIC ports with host rings: their tap (host.c) */
    bool fwd_pending;               /* transparent mode put frames on NIC TX rings: txsync again */
    char rundir[160];
    char name[2 * NMC_NAMELEN + 2];
};

/* region.c */
struct nmc_region {
    int fd;                         /* the control file: holders' lock bytes */
    uint8_t *ctl;                   /* control file, g.ctl_size bytes */
    uint8_t *mem;                   /* netmap memory file, g.memsize bytes */
    struct nmc_geom g;
    struct nmc_region_hdr *hdr;
    uint16_t mem_id;
    bool locked;                    /* the region lock is held through fd */
    /* the memory file, open while the region lock is held (claims need it;
     * mem_fd means nothing unless mem_open: a zeroed struct has none) */
    bool mem_open;
    int mem_fd;
    const char *rundir;             /* for opening it when needed; NULL: cannot */
    bool ask_all;                   /* reaping asks every holder's lock byte (reap.c) */
    bool keep_spare;                /* a reap that empties it may keep it (spare.c) */
};
enum nmc_lock_mode { NMC_NOLOCK, NMC_LOCK_WAIT, NMC_LOCK_TRY };
int nmc_rundir_resolve(const char *req, char *out, size_t len);
int nmc_rundir_check(const char *rundir);
int nmc_names_lock(const char *rundir);
void nmc_names_unlock(int fd);
int nmc_lock_byte(int fd, off_t byte, short type, bool wait);
/* What a new region is made of: its buffers, ring objects, and the
 * user's file for its memory (@extmem; NULL: a file of the engine's). */
struct nmc_shape {
    uint32_t buf_num, buf_size, ring_num;
    const char *extmem;
};
int nmc_region_create(const char *rundir, int names_fd, const struct nmc_shape *shape,
                      struct nmc_region *r);
void nmc_region_layout(struct nmc_geom *g, uint32_t buf_num, uint32_t buf_size, uint32_t ring_num);
/* extmem.c: the shape of a region in x's file (-ENOENT, -EINVAL, -EXDEV),
 * and whether region r is built in that file */
int nmc_extmem_shape(const char *rundir, const struct nmc_extmem *x, struct nmc_shape *out);
bool nmc_extmem_is(const char *rundir, const struct nmc_region *r, const struct nmc_extmem *x);
int nmc_extmem_key(const struct nmc_extmem *x, char *out, size_t len);  /* "extmem.<dev>.<ino>" */
/* mmap(2) of one of the engine's own files, shared, read-write, as a
 * system call: a preloaded mmap (the /dev/netmap emulation of nmcompat exec)
 * must not take the engine's region and switch files, which it maps while it
 * holds their locks, for descriptors another process passed. */
void *nmc_map_shared(size_t len, int fd);

/* The pools of a region of geometry g (nmc_port_pools' answer), for a port
 * of it or for the region alone. */
void nmc_geom_pools(const struct nmc_geom *g, uint16_t mem_id, struct nmc_pools_info *out);

int nmc_region_attach(const char *rundir, uint16_t mem_id, struct nmc_region *r,
                      enum nmc_lock_mode lock);
/* The same, falling back on the region's second names in wake/ (reached
 * through wake_dir, an O_PATH descriptor of it) when the runtime directory
 * is out of reach: an opener that dropped its privileges since. */
int nmc_region_attach_via(const char *rundir, int wake_dir, uint16_t mem_id,
                          struct nmc_region *r, enum nmc_lock_mode lock);
void nmc_region_unlock(struct nmc_region *r);
int nmc_region_inspect(const char *rundir, uint16_t mem_id, struct nmc_region *r);
int nmc_port_lock_region(const struct nmc_port *p);     /* port.c: a new fd holding it */
struct nmc_pipe_req;
int nmc_port_fill(struct nmc_port *p, struct nmc_region *r, uint32_t h, uint32_t port,
                  const struct nmc_pipe_req *req, const char *rundir);      /* port.c */
void nmc_port_free(struct nmc_port *p);                                     /* port.c */
struct nmc_region nmc_port_region(const struct nmc_port *p, int lock_fd);   /* port.c */
void nmc_region_detach(struct nmc_region *r);
int nmc_region_lookup_parent(const char *rundir, const char *parent);
int nmc_region_each_parent(const char *rundir, int (*fn)(const char *name, void *arg), void *arg);
int nmc_region_link_parent(const char *rundir, const char *parent, struct nmc_region *r);
bool nmc_region_has_link(const struct nmc_region *r, const char *parent);
int nmc_region_reap(const char *rundir, struct nmc_region *r);
bool nmc_region_has_ports(struct nmc_region *r);
struct nmc_pid_memo {
    int32_t pid[NMC_PID_MEMO];
    bool gone[NMC_PID_MEMO];
    uint32_t n;
};
bool nmc_pid_gone(struct nmc_pid_memo *m, int32_t pid);
int nmc_region_lookup_link(const char *link);
bool nmc_spare_keep(const char *rundir, struct nmc_region *r);
bool nmc_spare_linked(const char *rundir, uint16_t mem_id);
void nmc_spare_unlink(const char *rundir, struct nmc_region *r);
int nmc_spare_take(const char *rundir, uint32_t buf_num, uint32_t buf_size, struct nmc_region *r);
uint32_t nmc_spare_release(const char *rundir, uint16_t keep);
bool nmc_space_enough(const char *rundir, uint64_t bytes);
bool nmc_holder_alive(int fd, uint32_t h);
/* Note why the open under way fails with EBUSY (nmc_busy_cause). */
void nmc_busy_note(int cause, int32_t pid);
void nmc_region_unlink_parents(const char *rundir, struct nmc_region *r);
uint32_t nmc_region_unlink_wake(const char *rundir, uint16_t mem_id);
bool nmc_region_wake_name(const char *name, uint32_t *mem_id);
void nmc_region_path(const char *rundir, uint16_t mem_id, char *out, size_t len);
void nmc_region_ctl_path(const char *rundir, uint16_t mem_id, char *out, size_t len);
void nmc_region_unmap(uint8_t *ctl, uint8_t *mem, const struct nmc_geom *g);
uint64_t nmc_layout_hash(void);

static inline struct nmc_holder *nmc_holders(const struct nmc_region *r)
{ return (struct nmc_holder *)(r->ctl + r->g.holders_ofs); }
static inline struct nmc_port_rec *nmc_ports(const struct nmc_region *r)
{ return (struct nmc_port_rec *)(r->ctl + r->g.ports_ofs); }
static inline uint32_t nmc_rec_obj(const struct nmc_port_rec *rec, uint32_t e, uint32_t d, uint32_t k)
{ return rec->first_obj[e][d] + k; }
static inline struct nmc_kring *nmc_krings(const uint8_t *ctl, const struct nmc_geom *g)
{ return (struct nmc_kring *)(ctl + g->krings_ofs); }
/* Ring object i's ring: its offset in the memory, its address. */
static inline uint64_t nmc_ring_ofs(const struct nmc_geom *g, uint32_t i)
{ return g->ring_pool_ofs + (uint64_t)i * g->ring_size + NMC_RING_LEAD; }
static inline struct netmap_ring *nmc_ring_obj(uint8_t *mem, const struct nmc_geom *g, uint32_t i)
{ return (struct netmap_ring *)(mem + nmc_ring_ofs(g, i)); }
_Static_assert(NMC_RING_LEAD % _Alignof(struct netmap_ring) == 0 && NMC_RING_LEAD < NMC_PAGE,
               "a ring's lead keeps its alignment and stays in the object's first page");
static inline uint8_t *nmc_buf(uint8_t *mem, const struct nmc_geom *g, uint32_t idx)
{ return mem + g->buf_pool_ofs + (uint64_t)idx * g->buf_size; }

/* claim.c: memory is claimed (fallocate) before it is first written, so
 * that a full tmpfs is -ENOSPC from the control path, never a SIGBUS */
int nmc_region_claim(struct nmc_region *r, uint64_t ofs, uint64_t len);
int nmc_claim_bufs(struct nmc_region *r, const uint32_t *idx, uint32_t n);
int nmc_claim_krings(struct nmc_region *r, uint32_t first, uint32_t n);
void nmc_region_close_mem(struct nmc_region *r);
uint64_t nmc_space_free(const char *rundir);
int nmc_claim_precheck(const char *rundir, const struct nmc_pipe_req *req);
int nmc_claim_memlock(uint64_t bytes);

/* alloc.c: first-fit bitmaps in the control area */
int64_t nmc_bits_alloc_run(uint64_t *map, uint32_t nbits, uint32_t count);
void nmc_bits_free_run(uint64_t *map, uint32_t nbits, uint32_t first, uint32_t count);
int nmc_buf_alloc(struct nmc_region *r, uint32_t *out, uint32_t count);
void nmc_buf_free(struct nmc_region *r, uint32_t idx);
void nmc_buf_free_all(struct nmc_region *r);
uint32_t nmc_buf_free_list(struct nmc_region *r, uint32_t head);
int nmc_buf_alloc_list(struct nmc_region *r, uint32_t count, uint32_t *head);

/* ring.c: netmap ring discipline */
static inline uint32_t nmc_next(uint32_t i, uint32_t n) { return i + 1 == n ? 0 : i + 1; }
static inline uint32_t nmc_prev(uint32_t i, uint32_t n) { return i == 0 ? n - 1 : i - 1; }
static inline uint32_t nmc_dist(uint32_t from, uint32_t to, uint32_t n)
{ return to >= from ? to - from : to + n - from; }
/* nmc_txsync_prologue, nmc_rxsync_prologue: below, with the user loads */
/* Transparent mode (NR_FORWARD on a NIC port's RX ring): the end of the
 * last whole frame in the released slots [hwcur, head); a chain released
 * only in part stays with the user's side until its last slot is released
 * (it is never forwarded, taken back or handed to monitors in pieces).
 * Otherwise head. */
uint32_t nmc_rx_whole_head(const struct nmc_port *p, const struct nmc_lring *lr, uint32_t head);
void nmc_ring_reinit(struct nmc_lring *lr, const struct nmc_geom *g);
/* clock.c: ring->ts at every rxsync (netmap's microtime()), by sync.c */
void nmc_ring_stamp(const struct nmc_port *p, struct nmc_lring *lr);
int nmc_ring_refill(struct nmc_port *p, struct nmc_lring *lr, int dir, uint32_t first,
                    uint32_t count);
void nmc_ring_init(struct netmap_ring *ring, struct nmc_kring *kr, uint8_t *mem,
                   const struct nmc_geom *g, uint32_t obj, uint32_t nslots,
                   uint16_t ringid, uint16_t dir);

/* membar.c: the asymmetric barrier (membarrier's global expedited command) */
bool nmc_membar_ready(void);        /* this process may take the fast side */
int nmc_membar_global(void);        /* 0, or -errno */
void nmc_membar_lost(void);         /* it failed: no fast side from now on */

/* ring_own.c: the one writer of a ring's owner state (kr->busy) */
uint64_t nmc_ring_enter(struct nmc_port *p, struct nmc_lring *lr, int dir);
bool nmc_ring_leave(struct nmc_lring *lr, uint64_t entry);
void nmc_ring_unbias(struct nmc_lring *lr);
void nmc_ring_leave_wake(struct nmc_port *p, struct nmc_lring *lr, uint64_t entry,
                         struct nmc_kring *kr);
bool nmc_ring_owned_by(const struct nmc_kring *kr, uint32_t h);
void nmc_ring_clear_dead(struct nmc_kring *kr, uint32_t h);

/* portrec.c */
uint32_t nmc_bound(uint32_t v, uint32_t dflt, uint32_t lo, uint32_t hi);
struct nmc_port_rec *nmc_rec_alloc(struct nmc_region *r, uint32_t kind, const char *name);
int nmc_rec_add_rings(struct nmc_region *r, struct nmc_port_rec *rec, uint32_t e, uint32_t d,
                      uint32_t n, uint32_t slots, bool with_bufs);
void nmc_rec_free(struct nmc_region *r, struct nmc_port_rec *rec);

/* bufcheck.c: who owns each buffer (docs/DESIGN.md, liveness and reclaim) */
void nmc_rec_free_bufs(struct nmc_region *r, uint32_t port);
void nmc_buf_sweep(struct nmc_region *r, const uint64_t dead[NMC_MAX_HOLDERS / 64]);

/* reap.c: finding regions (returned locked and reaped), reclaiming what dead holders left */
int nmc_get_region(const char *rundir, const struct nmc_pipe_req *req, struct nmc_region *r);
int nmc_get_region_home(const char *rundir, const struct nmc_pipe_req *req,
                        const struct nmc_pipe_req *home, struct nmc_region *r);
int nmc_region_wanted(const char *rundir, const struct nmc_pipe_req *req, struct nmc_region *r);
void nmc_ifregion_name(char *out, size_t len);
#define NMC_IFREGION_BUF_NUM 65536u     /* buffers of an interface region (an AF_XDP UMEM) */
int nmc_get_region_of(const char *rundir, const char *name, struct nmc_region *r);
int nmc_get_region_id(const char *rundir, uint16_t mem_id, struct nmc_region *r);
bool nmc_port_in_use(struct nmc_region *r, uint32_t port);
void nmc_holder_release(struct nmc_region *r, uint32_t h);

/* A number from the environment, strictly: dflt when unset or empty,
 * -EINVAL for anything but a number in [lo, hi] (or 0 when zero_ok). */
int nmc_env_u32_checked(const char *name, uint32_t dflt, uint32_t lo, uint32_t hi, bool zero_ok,
                        uint32_t *out);
int nmc_env_buf_num(uint32_t *num);
int nmc_env_buf_size(uint32_t dflt, uint32_t *size);     /* $NMCOMPAT_BUF_SIZE, or dflt */

/* Streaming copies (copy.c): whole 64-byte lines into a 64-byte aligned
 * buffer with non-temporal stores; nmc_copy_stream_end() before whatever
 * publishes them. */
#if defined(__x86_64__)
#define NMC_COPY_STREAMS 1              /* elsewhere nmc_copy_stream() is a memcpy */
#else
#define NMC_COPY_STREAMS 0
#endif
void nmc_copy_stream(void *dst, const void *src, uint32_t len);
void nmc_copy_stream_end(void);
void nmc_copy_stream_sse2(void *dst, const void *src, uint32_t len);  /* the fallback, for tests */


/* monitor.c: copies of a ring's traffic for its monitors (kr->nmon != 0) */
void nmc_monitor_before(struct nmc_port *p, struct nmc_lring *lr, int dir);
void nmc_monitor_after(struct nmc_port *p, struct nmc_lring *lr, int dir, uint32_t old_tail);

/* wake.c */
int nmc_wake_setup(struct nmc_port *p);
int nmc_wake_teardown(struct nmc_port *p);
void nmc_wake_close_fds(struct nmc_port *p);
void nmc_wake_sleepers(struct nmc_port *p, struct nmc_kring *kr);
void nmc_wake_sleepers_in(struct nmc_port *p, struct nmc_kring *kr, uint8_t *holders, uint16_t mem_id);
void nmc_wake_left(struct nmc_port *p, struct nmc_kring *kr, bool locked);
int nmc_wake_sleep_barrier(struct nmc_port *p, int events);
int nmc_wake_mark_fenced(struct nmc_port *p);
void nmc_wake_arm(struct nmc_kring *kr, uint32_t hidx);
void nmc_wake_disarm(struct nmc_kring *kr, uint32_t hidx);
void nmc_wake_drain(struct nmc_port *p);
void nmc_wake_self(struct nmc_port *p);
void nmc_wake_interrupt(struct nmc_port *p);
bool nmc_port_interrupted(const struct nmc_port *p);    /* sync.c */
void nmc_fd_export(struct nmc_port *p);                 /* sync.c */
bool nmc_wake_writable(struct nmc_port *p);
void nmc_wake_fill(struct nmc_port *p, struct nmc_lring *lr);
void nmc_sock_path(const char *rundir, uint16_t mem_id, uint32_t h, char *out, size_t len);
int nmc_wake_dir_open(const char *rundir);

/* Copy a name, truncating to size-1 bytes (netmap's IFNAMSIZ fields). */
static inline void nmc_copy_name(char *dst, size_t size, const char *src)
{
    size_t n = 0;

    while (n + 1 < size && src[n]) {
        dst[n] = src[n];
        n++;
    }
    dst[n] = 0;
}

/* One read of a user-writable 32-bit field (never merged with a neighbour,
 * never re-read after the check). */
#define nmc_user_u32(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define nmc_user_u16(p)     __atomic_load_n((p), __ATOMIC_RELAXED)

/* A user-writable slot, each field read once: what the engine checks is
 * what it uses, whatever another process writes meanwhile. */
static inline struct netmap_slot nmc_slot_read(const struct netmap_slot *s)
{
    struct netmap_slot v;

    v.buf_idx = nmc_user_u32(&s->buf_idx);
    v.len = nmc_user_u16(&s->len);
    v.flags = nmc_user_u16(&s->flags);
    v.ptr = __atomic_load_n(&s->ptr, __ATOMIC_RELAXED);
    return v;
}
#if defined(__x86_64__) || defined(__i386__)
#define nmc_cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define nmc_cpu_relax() __asm__ __volatile__("yield")
#else
#define nmc_cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif
#define nmc_load_acq(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define nmc_store_rel(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define nmc_fence()         __atomic_thread_fence(__ATOMIC_SEQ_CST)
/* A full barrier right after a locked read-modify-write (the kernel's
 * smp_mb__after_atomic()): on x86 the locked instruction is one already,
 * succeeded or not, so only the compiler is held back. */
#if defined(__x86_64__) || defined(__i386__)
#define nmc_fence_after_rmw() __asm__ __volatile__("" ::: "memory")
#else
#define nmc_fence_after_rmw() nmc_fence()
#endif

/* Add to a ring's packet and byte counters with one 16-byte store.  Every
 * store of a sync takes a store-buffer entry until its line is written,
 * and between two cores the lines a sync shares with the other side (the
 * frame, the published index) take long to get: at one packet per sync it
 * is the number of stores per packet that sets the sender's rate.  Only the
 * ring's owner writes them; a reader (nmc_port_stats) may see the pair torn
 * between two syncs, never a counter torn. */
typedef uint64_t nmc_u64x2 __attribute__((vector_size(16), may_alias));
_Static_assert(offsetof(struct nmc_kring, fenced_wake) / NMC_CACHELINE ==
               offsetof(struct nmc_kring, sleepers) / NMC_CACHELINE, "fenced_wake: the sleepers' line");
_Static_assert(offsetof(struct nmc_kring, bytes) == offsetof(struct nmc_kring, pkts) + 8 &&
               offsetof(struct nmc_kring, pkts) % 16 == 0, "pkts, bytes: one aligned pair");

static inline void nmc_ring_count(struct nmc_kring *kr, uint64_t pkts, uint64_t bytes)
{
    nmc_u64x2 *c = (nmc_u64x2 *)&kr->pkts;

    *c += (nmc_u64x2){ pkts, bytes };
}

/* Store v at *dst only where it differs: for the same reason, a sync stores
 * an index it reports again unchanged no more than once. */
static inline void nmc_store_changed(uint32_t *dst, uint32_t v)
{
    if (*dst != v)
        *dst = v;
}

/* The prologue of every sync: hwcur <= head <= cur <= limit, circularly,
 * every index < n (head and cur read once, the kring's indexes checked
 * too: another process may have written them).  Stores the validated head;
 * restores a tail the user overwrote.  0 or -EINVAL.  Inline: one runs per
 * sync, and at one packet per sync its call and reloads were a sixth of
 * the sync's instructions. */
static inline int nmc_sync_prologue(struct nmc_lring *lr, uint32_t limit, uint32_t *head)
{
    struct netmap_ring *ring = lr->ring;
    struct nmc_kring *kr = lr->kr;
    uint32_t n = lr->n, h = nmc_user_u32(&ring->head), c = nmc_user_u32(&ring->cur);
    uint32_t base = kr->hwcur;

    if (h >= n || c >= n || base >= n || limit >= n)
        return -EINVAL;
    if (nmc_dist(base, h, n) > nmc_dist(base, c, n) ||
        nmc_dist(base, c, n) > nmc_dist(base, limit, n))
        return -EINVAL;
    nmc_store_changed(&ring->tail, kr->rtail);
    nmc_store_changed(&kr->rhead, h);
    nmc_store_changed(&kr->rcur, c);
    *head = h;
    return 0;
}

/* TX: hwcur <= head <= cur <= rtail. */
static inline int nmc_txsync_prologue(struct nmc_lring *lr, uint32_t *head)
{
    return nmc_sync_prologue(lr, lr->kr->rtail, head);
}

/* RX: hwcur <= head <= cur <= hwtail. */
static inline int nmc_rxsync_prologue(struct nmc_lring *lr, uint32_t *head)
{
    return nmc_sync_prologue(lr, lr->kr->hwtail, head);
}

#endif /* NMC_INT_H */
