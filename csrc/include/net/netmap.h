/*
 * net/netmap.h -- the netmap user/kernel ABI, API version 14.
 *
 * Part of nmcompat.  This header describes the shared-memory layout
 * (netmap_if, netmap_ring, netmap_slot), the NIOCCTRL request structures
 * and the legacy NIOCREGIF/NIOCGINFO interface.  Every size and offset
 * here is part of the binary contract with existing netmap applications;
 * tests/abi/abi_check.c pins them down.
 *
 * Layout of one memory region, as seen by an application after mmap():
 *
 *     base + nr_offset  ->  struct netmap_if
 *     nifp + ring_ofs[i] -> struct netmap_ring (header 256 bytes, then slots)
 *     ring + buf_ofs     -> buffer pool; buffer i is nr_buf_size bytes at
 *                           ring + buf_ofs + i * nr_buf_size
 *
 * Ownership of ring slots: [head, tail) belongs to the application,
 * [tail, head) to the port.  cur is the application's wakeup point.
 */
#ifndef _NET_NETMAP_H_
#define _NET_NETMAP_H_

#include <stdint.h>
#include <sys/types.h>      /* ssize_t */
#include <sys/time.h>       /* struct timeval */
#include <net/if.h>         /* IF_NAMESIZE, IFNAMSIZ */

#if defined(__linux__)
#include <linux/ioctl.h>    /* _IO, _IOWR */
#else
#include <sys/ioctl.h>
#endif

/*
 * glibc only defines IFNAMSIZ when BSD/GNU extensions are visible.  The
 * literal spelling matches <linux/if.h>, so a later inclusion of that
 * header does not produce a conflicting redefinition.
 */
#ifndef IFNAMSIZ
#define IFNAMSIZ 16
#endif

/* ------------------------------------------------------------------ */
/* Versions and global limits                                          */
/* ------------------------------------------------------------------ */

#define NETMAP_API          14  /* version implemented by this header */
#define NETMAP_MIN_API      14  /* oldest nr_version accepted by NIOCCTRL */
#define NETMAP_MAX_API      15  /* newest nr_version accepted by NIOCCTRL */

#define NM_CACHE_ALIGN      128 /* alignment of struct netmap_ring */
#define NETMAP_MAX_FRAGS    64  /* longest NS_MOREFRAG chain */

#define NETMAP_REQ_MAXSIZE  4096    /* request body plus all options */
#define NETMAP_REQ_IFNAMSIZ 64      /* size of nmreq_header.nr_name */

#define NM_BDG_NAME         "vale"          /* prefix of VALE port names */
#define NETMAP_DEVICE_NAME  "/dev/netmap"

/* ------------------------------------------------------------------ */
/* Slots                                                               */
/* ------------------------------------------------------------------ */

struct netmap_slot {
    uint32_t buf_idx;   /* buffer index in the region's pool */
    uint16_t len;       /* length of this fragment */
    uint16_t flags;     /* NS_* flags below */
    uint64_t ptr;       /* NS_INDIRECT address, or packet offset field */
};

#define NS_BUF_CHANGED  0x0001  /* buf_idx was changed by the owner */
#define NS_REPORT       0x0002  /* ask for a completion notification */
#define NS_FORWARD      0x0004  /* pass to the peer (NIC <-> host) */
#define NS_NO_LEARN     0x0008  /* VALE: do not learn the source MAC */
#define NS_INDIRECT     0x0010  /* VALE tx: payload is at user VA ptr */
#define NS_MOREFRAG     0x0020  /* more fragments of this packet follow */
#define NS_TXMON        0x0040  /* monitor rx slot seen on the tx side */

/* Bits 8..15 of flags: destination port (tx) or fragment count (VALE rx). */
#define NS_PORT_SHIFT   8
#define NS_PORT_MASK    (0xff << NS_PORT_SHIFT)
#define NS_RFRAGS(_slot)    (((_slot)->flags >> 8) & 0xff)

/* ------------------------------------------------------------------ */
/* Rings                                                               */
/* ------------------------------------------------------------------ */

/*
 * The ring header occupies exactly 256 bytes: the fields below, padding
 * up to the 128-aligned opaque sem[] area, then the slot array.
 * Fields marked const are written by the port only.
 */
struct netmap_ring {
    const int64_t   buf_ofs;        /* from this ring to the buffer pool */
    const uint32_t  num_slots;      /* not necessarily a power of 2 */
    const uint32_t  nr_buf_size;
    const uint16_t  ringid;         /* index within its direction */
    const uint16_t  dir;            /* 0: tx, 1: rx */

    uint32_t        head;           /* (application) first owned slot */
    uint32_t        cur;            /* (application) wakeup point */
    uint32_t        tail;           /* (port) first slot not owned */

    uint32_t        flags;          /* NR_TIMESTAMP, NR_FORWARD */

    struct timeval  ts;             /* time of the last rx sync */

    const uint64_t  offset_mask;    /* offset bits in slot->ptr, or 0 */
    const uint64_t  buf_align;      /* tx packet start alignment */

    /* opaque room, one full cache-line pair */
    uint8_t         sem[128] __attribute__((__aligned__(NM_CACHE_ALIGN)));

    struct netmap_slot slot[];      /* num_slots entries */
};

#define NR_TIMESTAMP    0x0002  /* stamp ring->ts on every rx sync */
#define NR_FORWARD      0x0004  /* honour NS_FORWARD on this ring */

/* ------------------------------------------------------------------ */
/* Interface descriptor                                                */
/* ------------------------------------------------------------------ */

/*
 * One per registration.  ring_ofs[] lists, in this order: tx rings,
 * host tx rings, rx rings, host rx rings.  Rings not bound by this
 * registration have a zero entry.
 */
struct netmap_if {
    char            ni_name[IFNAMSIZ];
    const uint32_t  ni_version;
    const uint32_t  ni_flags;           /* NI_PRIV_MEM */
    const uint32_t  ni_tx_rings;        /* hardware/virtual tx rings */
    const uint32_t  ni_rx_rings;
    uint32_t        ni_bufs_head;       /* head of the extra-buffer list */
    const uint32_t  ni_host_tx_rings;   /* at least 1 */
    const uint32_t  ni_host_rx_rings;   /* at least 1 */
    uint32_t        ni_spare1[3];
    const ssize_t   ring_ofs[];         /* offsets from this struct */
};

#define NI_PRIV_MEM     0x1     /* the region is private to this port */

/* ------------------------------------------------------------------ */
/* Control API: NIOCCTRL                                               */
/* ------------------------------------------------------------------ */

/*
 * Every request is a header, a request-specific body at nr_body and a
 * singly linked list of options at nr_options.  Pointers travel as
 * 64-bit integers so the layout is the same for 32-bit callers.
 */
struct nmreq_header {
    uint16_t    nr_version;     /* NETMAP_API */
    uint16_t    nr_reqtype;     /* NETMAP_REQ_* */
    uint32_t    nr_reserved;    /* must be zero */
    char        nr_name[NETMAP_REQ_IFNAMSIZ];
    uint64_t    nr_options;     /* (struct nmreq_option *) */
    uint64_t    nr_body;        /* request body, or 0 */
};

enum {
    NETMAP_REQ_REGISTER = 1,
    NETMAP_REQ_PORT_INFO_GET = 2,
    NETMAP_REQ_VALE_ATTACH = 3,
    NETMAP_REQ_VALE_DETACH = 4,
    NETMAP_REQ_VALE_LIST = 5,
    NETMAP_REQ_PORT_HDR_SET = 6,
    NETMAP_REQ_PORT_HDR_GET = 7,
    NETMAP_REQ_VALE_NEWIF = 8,
    NETMAP_REQ_VALE_DELIF = 9,
    NETMAP_REQ_VALE_POLLING_ENABLE = 10,
    NETMAP_REQ_VALE_POLLING_DISABLE = 11,
    NETMAP_REQ_POOLS_INFO_GET = 12,
    NETMAP_REQ_SYNC_KLOOP_START = 13,
    NETMAP_REQ_SYNC_KLOOP_STOP = 14,
    NETMAP_REQ_CSB_ENABLE = 15
};

/* Option types (nro_reqtype). */
enum {
    NETMAP_REQ_OPT_EXTMEM = 1,
    NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS = 2,
    NETMAP_REQ_OPT_CSB = 3,
    NETMAP_REQ_OPT_SYNC_KLOOP_MODE = 4,
    NETMAP_REQ_OPT_OFFSETS = 5
};

/* Common option header; option data follows it contiguously. */
struct nmreq_option {
    uint64_t    nro_next;       /* (struct nmreq_option *), or 0 */
    uint32_t    nro_reqtype;    /* NETMAP_REQ_OPT_* */
    uint32_t    nro_status;     /* out: 0 or an errno value */
    uint64_t    nro_size;       /* whole option, for variable-size ones */
};

/* nr_mode values of nmreq_register (and low 4 bits of legacy nr_flags). */
enum {
    NR_REG_DEFAULT = 0,         /* legacy only */
    NR_REG_ALL_NIC = 1,
    NR_REG_SW = 2,
    NR_REG_NIC_SW = 3,
    NR_REG_ONE_NIC = 4,
    NR_REG_PIPE_MASTER = 5,     /* legacy only */
    NR_REG_PIPE_SLAVE = 6,      /* legacy only */
    NR_REG_NULL = 7,
    NR_REG_ONE_SW = 8
};

/* nr_flags bits of nmreq_register (also valid in legacy nr_flags). */
#define NR_MONITOR_TX       0x100
#define NR_MONITOR_RX       0x200
#define NR_ZCOPY_MON        0x400
#define NR_EXCLUSIVE        0x800
#define NR_RX_RINGS_ONLY    0x2000
#define NR_TX_RINGS_ONLY    0x4000
#define NR_ACCEPT_VNET_HDR  0x8000
#define NR_DO_RX_POLL       0x10000
#define NR_NO_TX_POLL       0x20000

/* NETMAP_REQ_REGISTER */
struct nmreq_register {
    uint64_t    nr_offset;          /* out: nifp offset in the region */
    uint64_t    nr_memsize;         /* out: size of the region */
    uint32_t    nr_tx_slots;
    uint32_t    nr_rx_slots;
    uint16_t    nr_tx_rings;
    uint16_t    nr_rx_rings;
    uint16_t    nr_host_tx_rings;
    uint16_t    nr_host_rx_rings;

    uint16_t    nr_mem_id;          /* in/out: memory region id */
    uint16_t    nr_ringid;          /* ring index for ONE_NIC/ONE_SW */
    uint32_t    nr_mode;            /* NR_REG_* */
    uint32_t    nr_extra_bufs;      /* in: wanted, out: granted */
    /* 4 bytes of implicit padding at offset 44 */
    uint64_t    nr_flags;           /* NR_* flags above */
};

/* NETMAP_REQ_PORT_INFO_GET */
struct nmreq_port_info_get {
    uint64_t    nr_memsize;
    uint32_t    nr_tx_slots;
    uint32_t    nr_rx_slots;
    uint16_t    nr_tx_rings;
    uint16_t    nr_rx_rings;
    uint16_t    nr_host_tx_rings;
    uint16_t    nr_host_rx_rings;
    uint16_t    nr_mem_id;          /* in/out */
    uint16_t    pad[3];
};

/* NETMAP_REQ_VALE_ATTACH */
struct nmreq_vale_attach {
    struct nmreq_register reg;
    uint32_t    port_index;         /* out */
    uint32_t    pad1;
};

/* NETMAP_REQ_VALE_DETACH */
struct nmreq_vale_detach {
    uint32_t    port_index;         /* out */
    uint32_t    pad1;
};

/* NETMAP_REQ_VALE_LIST */
struct nmreq_vale_list {
    uint16_t    nr_bridge_idx;      /* in/out */
    uint16_t    pad1;
    uint32_t    nr_port_idx;        /* in/out */
};

/* NETMAP_REQ_PORT_HDR_SET and NETMAP_REQ_PORT_HDR_GET */
struct nmreq_port_hdr {
    uint32_t    nr_hdr_len;         /* virtio-net header: 0, 10 or 12 */
    uint32_t    pad1;
};

/* NETMAP_REQ_VALE_NEWIF */
struct nmreq_vale_newif {
    uint32_t    nr_tx_slots;
    uint32_t    nr_rx_slots;
    uint16_t    nr_tx_rings;
    uint16_t    nr_rx_rings;
    uint16_t    nr_mem_id;
    uint16_t    pad1;
};

/* NETMAP_REQ_VALE_POLLING_ENABLE and NETMAP_REQ_VALE_POLLING_DISABLE */
struct nmreq_vale_polling {
    uint32_t    nr_mode;            /* NETMAP_POLLING_MODE_* */
    uint32_t    nr_first_cpu_id;
    uint32_t    nr_num_polling_cpus;
    uint32_t    pad1;
};

#define NETMAP_POLLING_MODE_SINGLE_CPU  1
#define NETMAP_POLLING_MODE_MULTI_CPU   2

/* NETMAP_REQ_POOLS_INFO_GET, also embedded in nmreq_opt_extmem */
struct nmreq_pools_info {
    uint64_t    nr_memsize;
    uint16_t    nr_mem_id;          /* in/out */
    uint16_t    pad1[3];
    uint64_t    nr_if_pool_offset;  /* always 0 */
    uint32_t    nr_if_pool_objtotal;
    uint32_t    nr_if_pool_objsize;
    uint64_t    nr_ring_pool_offset;
    uint32_t    nr_ring_pool_objtotal;
    uint32_t    nr_ring_pool_objsize;
    uint64_t    nr_buf_pool_offset;
    uint32_t    nr_buf_pool_objtotal;
    uint32_t    nr_buf_pool_objsize;
};

/* NETMAP_REQ_SYNC_KLOOP_START */
struct nmreq_sync_kloop_start {
    uint32_t    sleep_us;
    uint32_t    pad1;
};

/* NETMAP_REQ_OPT_EXTMEM: the application supplies the memory region. */
struct nmreq_opt_extmem {
    struct nmreq_option     nro_opt;
    uint64_t                nro_usrptr;     /* start of the region */
    struct nmreq_pools_info nro_info;       /* in: wanted, out: actual */
};

/* NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS: one pair per bound ring. */
struct nmreq_opt_sync_kloop_eventfds {
    struct nmreq_option nro_opt;            /* nro_size covers eventfds */
    struct {
        int32_t ioeventfd;
        int32_t irqfd;
    } eventfds[];
};

/* NETMAP_REQ_OPT_SYNC_KLOOP_MODE */
struct nmreq_opt_sync_kloop_mode {
    struct nmreq_option nro_opt;
    uint32_t            mode;               /* NM_OPT_SYNC_KLOOP_* */
};

#define NM_OPT_SYNC_KLOOP_DIRECT_TX (1 << 0)
#define NM_OPT_SYNC_KLOOP_DIRECT_RX (1 << 1)

/* NETMAP_REQ_OPT_CSB: addresses of nm_csb_atok[] and nm_csb_ktoa[]. */
struct nmreq_opt_csb {
    struct nmreq_option nro_opt;
    uint64_t            csb_atok;
    uint64_t            csb_ktoa;
};

/* Shared control blocks, application to kernel and back (64 bytes). */
struct nm_csb_atok {
    uint32_t    head;
    uint32_t    cur;
    uint32_t    appl_need_kick;
    uint32_t    sync_flags;
    uint32_t    pad[12];
} __attribute__((__aligned__(64)));

struct nm_csb_ktoa {
    uint32_t    hwcur;
    uint32_t    hwtail;
    uint32_t    kern_need_kick;
    uint32_t    pad[13];
} __attribute__((__aligned__(64)));

/* NETMAP_REQ_OPT_OFFSETS: per-slot packet offsets kept in slot->ptr. */
struct nmreq_opt_offsets {
    struct nmreq_option nro_opt;
    uint64_t            nro_max_offset;     /* in/out */
    uint64_t            nro_initial_offset;
    uint32_t            nro_offset_bits;    /* in/out */
    uint32_t            nro_tx_align;       /* out */
    uint64_t            nro_min_gap;
};

/* ------------------------------------------------------------------ */
/* Legacy interface: NIOCGINFO / NIOCREGIF with struct nmreq           */
/* ------------------------------------------------------------------ */

struct nmreq {
    char        nr_name[IFNAMSIZ];
    uint32_t    nr_version;         /* >= NETMAP_API */
    uint32_t    nr_offset;          /* out: nifp offset in the region */
    uint32_t    nr_memsize;         /* out: region size (32 bits) */
    uint32_t    nr_tx_slots;
    uint32_t    nr_rx_slots;
    uint16_t    nr_tx_rings;
    uint16_t    nr_rx_rings;
    uint16_t    nr_ringid;          /* ring number and NETMAP_* bits */
    uint16_t    nr_cmd;             /* 0 (register) or NETMAP_BDG_* */
    uint16_t    nr_arg1;
    uint16_t    nr_arg2;            /* memory region id */
    uint32_t    nr_arg3;            /* extra buffers */
    uint32_t    nr_flags;           /* NR_REG_* | NR_* flags */
    uint32_t    spare2[1];
};

/* nr_ringid bits */
#define NETMAP_HW_RING      0x4000  /* single NIC ring pair */
#define NETMAP_SW_RING      0x2000  /* host rings only */
#define NETMAP_NO_TX_POLL   0x1000  /* poll() does not txsync */
#define NETMAP_DO_RX_POLL   0x8000  /* accepted, no effect */
#define NETMAP_RING_MASK    0x0fff  /* ring number */

/* Low bits of legacy nr_flags that carry the NR_REG_* mode. */
#define NR_REG_MASK         0xf

/* nr_cmd values */
#define NETMAP_BDG_ATTACH           1
#define NETMAP_BDG_DETACH           2
#define NETMAP_BDG_REGOPS           3
#define NETMAP_BDG_LIST             4
#define NETMAP_BDG_VNET_HDR         5
#define NETMAP_BDG_NEWIF            6
#define NETMAP_BDG_DELIF            7
#define NETMAP_PT_HOST_CREATE       8
#define NETMAP_PT_HOST_DELETE       9
#define NETMAP_BDG_POLLING_ON       10
#define NETMAP_BDG_POLLING_OFF      11
#define NETMAP_VNET_HDR_GET         12

/* nr_arg1 for NETMAP_BDG_ATTACH: attach the host port as well. */
#define NETMAP_BDG_HOST             1

/* NIOCCONFIG argument, passed to external VALE modules. */
#define NM_IFRDATA_LEN  256
struct nm_ifreq {
    char    nifr_name[IFNAMSIZ];
    char    data[NM_IFRDATA_LEN];
};

/* ------------------------------------------------------------------ */
/* ioctl numbers                                                       */
/* ------------------------------------------------------------------ */

#define NIOCGINFO   _IOWR('i', 145, struct nmreq)       /* legacy */
#define NIOCREGIF   _IOWR('i', 146, struct nmreq)       /* legacy */
#define NIOCUNREGIF _IO('i', 147)       /* legacy, deprecated: netmap on Linux answers EOPNOTSUPP */
#define NIOCTXSYNC  _IO('i', 148)
#define NIOCRXSYNC  _IO('i', 149)
#define NIOCCONFIG  _IOWR('i', 150, struct nm_ifreq)
#define NIOCCTRL    _IOWR('i', 151, struct nmreq_header)

#endif /* _NET_NETMAP_H_ */
