/*
 * nmc_vale.h -- VALE switch internals (vale_sw.c, vale.c).
 */
#ifndef NMC_VALE_H
#define NMC_VALE_H

#include "nmc_transport.h"
#include "nmc_kinds.h"

#define NMC_SW_MAGIC       0x686374697773636eULL   /* "ncswitch" */
#define NMC_SW_VERSION     3u
#define NMC_SW_MAXPORTS    254u
#define NMC_BDG_MAXPORTS   254u                    /* netmap NM_BDG_MAXPORTS */
#define NMC_BDG_HASH       1024u
#define NMC_BDG_BATCH      1024u
/* A VALE port's buffers when the open names no size: 33 cache lines, so
 * that the first lines of consecutive buffers fall on every line offset of
 * a page, not two (docs/DESIGN.md "VALE buffers"). */
#define NMC_VALE_BUF_SIZE  2112u
/* Fragments of at least this many bytes are copied into a port with
 * streaming (non-temporal) stores (core/copy.c), unless the process that
 * opened the port says otherwise in $NMCOMPAT_VALE_STREAM_MIN (0: never;
 * 64..65536): the receiver knows whether it reads whole frames. */
#define NMC_VALE_STREAM_MIN 256u
uint32_t nmc_vale_stream_min(void);
#define NMC_BDG_BATCH_MAX  8192u
#define NMC_SW_NAMELEN     16u
#define NMC_VALE_MAXRINGS  16u
#define NMC_BCAST          0xffffu
#define NMC_NOPORT         0xfffeu

struct nmc_sw_port {
    uint32_t state, gen;
    char name[NMC_NAMELEN];
    uint16_t mem_id;
    uint16_t hdr_len;               /* virtio-net header: 0, 10 or 12 (PORT_HDR_SET);
                                       read through nmc_vhdr_len(), never trusted */
    int32_t pid;                    /* of the process that added it (vale_reap.c) */
    uint32_t rec, nrx, ntx, rx_first_obj, rx_slots;
    uint32_t stream_min;            /* frames to it are streamed from this length on (0: never):
                                       NMC_VALE_STREAM_MIN when added, then the
                                       $NMCOMPAT_VALE_STREAM_MIN of its last opener that binds RX
                                       rings; any value is safe */
    uint64_t drops;                 /* frames this port could not take (ring full) */
    uint64_t forwarded;             /* frames delivered into its RX rings */
    uint64_t sent;                  /* frames it sent into the switch */
    uint64_t tx_dropped;            /* of those, dropped: too short, for itself, or asking an
                                       offload of a port with another header length */
    uint64_t last_smac;
} nmc_aligned;

/* Locks on the switch file (OFD locks, released on death): the switch lock
 * on byte NMC_SW_LOCK_BYTE guards changes of the port table; every holder
 * of port q keeps a read lock on byte NMC_SW_LIVE_BASE + q, so that a
 * reaper tells a port nobody holds with one fcntl, without its region. */
#define NMC_SW_LOCK_BYTE   0
#define NMC_SW_LIVE_BASE   1
#define NMC_SW_REAP_BUDGET 16u              /* entries looked at per open */
#define NMC_SW_ASK_BUDGET 2u                 /* of those, liveness bytes asked though their adder lives */

struct nmc_switch {
    uint64_t magic;
    uint32_t version, bridge_batch;
    uint32_t reap_next, pad;        /* where the next open's reaping starts */
    char name[NMC_NAMELEN];
    struct nmc_sw_port ports[NMC_SW_MAXPORTS];
    uint64_t ht[NMC_BDG_HASH];      /* valid<<63 | port<<48 | mac */
};

struct nmc_swmap {
    struct nmc_switch *sw;
    int fd;                         /* the switch file, valid while sw is mapped */
    bool locked;                    /* the switch lock is held through fd */
    char name[NMC_SW_NAMELEN];      /* the name it was attached by (never the file's copy) */
};

enum { NMC_SW_LOCK = 1, NMC_SW_CREATE = 2 };        /* nmc_sw_attach flags (CREATE needs LOCK) */

/* A destination port as one sender process sees it (mapped lazily). */
struct nmc_vdst {
    uint32_t gen;                   /* switch entry generation this mapping is for */
    struct nmc_region reg;          /* its region, mapped here */
    uint32_t nrx, nslots, rx_first_obj;
    uint32_t kgen[NMC_VALE_MAXRINGS];   /* the incarnation of each RX ring mapped */
    uint16_t *list;                 /* this flush's packets for it (ft indexes) */
    uint32_t nlist;
};

/* One fragment of a packet, as the forwarding step read its TX slot: the
 * slot is read once (nmc_slot_read), checked against the engine's own
 * geometry, and never read again; the copy uses this. */
struct nmc_frag {
    uint64_t src;                   /* its netmap buffer here, or the NS_INDIRECT address */
    uint32_t len;                   /* bytes (<= buf_size unless NS_INDIRECT) */
    uint16_t flags;                 /* the slot's flags */
    uint16_t pad;
};

/* One packet of the forwarding table: fragments frag .. frag + nfrags - 1
 * of the context's fragment table. */
struct nmc_ft {
    uint32_t frag, nfrags, len;
    uint16_t dst;                   /* port index, NMC_BCAST or NMC_NOPORT */
    uint16_t offload;               /* its virtio-net header asks for GSO or a checksum */
};

struct nmc_vale_ctx {
    struct nmc_swmap m;
    uint32_t me;                    /* our index in the switch */
    uint32_t batch;
    uint64_t last_dmac;             /* lookup cache, valid within one txsync */
    uint16_t last_dport;
    uint32_t src_hdr;               /* our virtio-net header length, read once per txsync */
    uint32_t max_frag;              /* the longest fragment of the flush being built */
    struct nmc_ft *ft;
    struct nmc_frag *frag;          /* NMC_MAXSLOTS + NETMAP_MAX_FRAGS: any flush's fragments */
    uint16_t *lists;                /* dst[q].list, NMC_SW_MAXPORTS x batch */
    struct nmc_vdst dst[NMC_SW_MAXPORTS];
    uint16_t active[NMC_SW_MAXPORTS];
};

/* A port's virtio-net header length as the switch file says, read once:
 * 0, 10 or 12; any other value (a scribbled file) reads as 0. */
#define NMC_VHDR_MAX 12u
static inline uint32_t nmc_vhdr_len(const struct nmc_sw_port *sp)
{
    uint16_t v = __atomic_load_n(&sp->hdr_len, __ATOMIC_RELAXED);

    return v == 10 || v == 12 ? v : 0;
}

/* vale_sw.c */
void nmc_sw_path(const char *rundir, const char *sw, char *out, size_t len);
bool nmc_sw_name_ok(const char *sw);
int nmc_sw_attach(const char *rundir, const char *sw, int flags, struct nmc_swmap *m);
void nmc_sw_detach(struct nmc_swmap *m);
int nmc_sw_active(const struct nmc_switch *sw);
int nmc_sw_find(const struct nmc_switch *sw, const char *name);
int nmc_sw_add(struct nmc_switch *sw, const char *name, uint16_t mem_id, uint32_t recidx,
               const struct nmc_port_rec *rec);
void nmc_sw_remove(struct nmc_switch *sw, uint32_t idx);
void nmc_sw_gc(const char *rundir, struct nmc_swmap *m);

/* vale_port.c */
int nmc_sw_join(const char *rundir, const char *sw, const char *name, uint16_t mem_id,
                uint32_t recidx, const struct nmc_port_rec *rec);
int nmc_vale_create_persistent(struct nmc_region *r, const struct nmc_pipe_req *req);
bool nmc_sw_entry_ok(struct nmc_region *r, const struct nmc_sw_port *sp, uint32_t q);

bool nmc_sw_port_held(const struct nmc_swmap *m, uint32_t q);
int nmc_sw_hold(struct nmc_swmap *m, uint32_t q);

/* vale_reap.c */
void nmc_sw_reap(const char *rundir, struct nmc_swmap *m, uint32_t budget);
void nmc_sw_reap_name(const char *rundir, const char *sw, uint32_t budget);
uint32_t nmc_vale_rundir_gc(const char *rundir);
void nmc_sw_remove_stale(const char *rundir, const char *sw, uint32_t q, uint32_t gen);

/* vale.c */
static inline struct nmc_vale_ctx *nmc_vale_of(const struct nmc_port *p) { return p->tp; }
void nmc_vale_counters(const struct nmc_port *p, struct nmc_port_stats *st);
uint32_t nmc_vale_hash(const uint8_t *mac);
int nmc_vale_region_req(const struct nmc_pipe_req *req, struct nmc_pipe_req *out);
int nmc_vale_ctx_open(struct nmc_port *p, const char *sw, uint32_t me);
void nmc_vale_ctx_close(struct nmc_port *p);
int nmc_vale_txsync_one(struct nmc_port *p, struct nmc_lring *lr);
int nmc_vale_rxsync_one(struct nmc_port *p, struct nmc_lring *lr);
void nmc_lease_init(struct nmc_kring *kr);
/* Who takes a lease through port p: its region and holder, this process
 * and its pid namespace; and that namespace (the inode of
 * /proc/self/ns/pid, 0 if unknown) (vale.c). */
void nmc_vale_lease_self(const struct nmc_port *p, struct nmc_lease *who);
uint32_t nmc_vale_pidns(void);
int nmc_lease_get(struct nmc_kring *kr, struct netmap_ring *ring, const char *rundir, uint32_t kgen,
                  uint32_t nslots, uint32_t want, const struct nmc_lease *who, uint32_t *start,
                  uint32_t *id, bool *moved);
bool nmc_lease_quiesce(struct nmc_kring *kr, struct netmap_ring *ring, const char *rundir);
bool nmc_lease_put(struct nmc_kring *kr, struct netmap_ring *ring, const char *rundir, uint32_t kgen,
                   uint32_t nslots, uint32_t id, uint32_t used_end);

#endif /* NMC_VALE_H */
