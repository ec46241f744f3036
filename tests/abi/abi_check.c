/*
 * abi_check.c -- pin down the netmap API 14 binary layout of
 * <net/netmap.h> and the behaviour of the <net/netmap_user.h> helpers.
 *
 * Every size, offset and constant is checked twice: with _Static_assert
 * (so a wrong header does not even build) and at run time (so the table
 * can be printed for humans with --print).  The run-time part also
 * exercises the ring helpers on a hand-built region.
 *
 * Usage: abi_check [--print] [--demo-debug]
 *   --print       print every checked value as a table on stdout
 *   --demo-debug  emit a few D()/RD() lines on stderr
 * Exit status 0 when everything matches, 1 otherwise.
 */
#define NETMAP_WITH_LIBS
#include <net/netmap_user.h>

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__LP64__) && !defined(_LP64)
#error "the reference tables are for LP64 Linux targets"
#endif

/* ------------------------------------------------------------------ */
/* Tables                                                              */
/* ------------------------------------------------------------------ */

/* X(type, size, alignment) */
#define NMC_SIZES(X) \
    X(struct netmap_slot, 16, 8) \
    X(struct netmap_ring, 256, 128) \
    X(struct netmap_if, 56, 8) \
    X(struct nmreq, 60, 4) \
    X(struct nm_ifreq, 272, 1) \
    X(struct nmreq_header, 88, 8) \
    X(struct nmreq_option, 24, 8) \
    X(struct nmreq_register, 56, 8) \
    X(struct nmreq_port_info_get, 32, 8) \
    X(struct nmreq_vale_attach, 64, 8) \
    X(struct nmreq_vale_detach, 8, 4) \
    X(struct nmreq_vale_list, 8, 4) \
    X(struct nmreq_port_hdr, 8, 4) \
    X(struct nmreq_vale_newif, 16, 4) \
    X(struct nmreq_vale_polling, 16, 4) \
    X(struct nmreq_pools_info, 64, 8) \
    X(struct nmreq_sync_kloop_start, 8, 4) \
    X(struct nmreq_opt_extmem, 96, 8) \
    X(struct nmreq_opt_sync_kloop_eventfds, 24, 8) \
    X(struct nmreq_opt_sync_kloop_mode, 32, 8) \
    X(struct nmreq_opt_csb, 40, 8) \
    X(struct nmreq_opt_offsets, 56, 8) \
    X(struct nm_csb_atok, 64, 64) \
    X(struct nm_csb_ktoa, 64, 64)

/* X(type, field, offset, size) */
#define NMC_FIELDS(X) \
    /* netmap_slot */ \
    X(struct netmap_slot, buf_idx, 0, 4) \
    X(struct netmap_slot, len, 4, 2) \
    X(struct netmap_slot, flags, 6, 2) \
    X(struct netmap_slot, ptr, 8, 8) \
    /* netmap_ring */ \
    X(struct netmap_ring, buf_ofs, 0, 8) \
    X(struct netmap_ring, num_slots, 8, 4) \
    X(struct netmap_ring, nr_buf_size, 12, 4) \
    X(struct netmap_ring, ringid, 16, 2) \
    X(struct netmap_ring, dir, 18, 2) \
    X(struct netmap_ring, head, 20, 4) \
    X(struct netmap_ring, cur, 24, 4) \
    X(struct netmap_ring, tail, 28, 4) \
    X(struct netmap_ring, flags, 32, 4) \
    X(struct netmap_ring, ts, 40, 16) \
    X(struct netmap_ring, offset_mask, 56, 8) \
    X(struct netmap_ring, buf_align, 64, 8) \
    X(struct netmap_ring, sem, 128, 128) \
    /* netmap_if */ \
    X(struct netmap_if, ni_name, 0, 16) \
    X(struct netmap_if, ni_version, 16, 4) \
    X(struct netmap_if, ni_flags, 20, 4) \
    X(struct netmap_if, ni_tx_rings, 24, 4) \
    X(struct netmap_if, ni_rx_rings, 28, 4) \
    X(struct netmap_if, ni_bufs_head, 32, 4) \
    X(struct netmap_if, ni_host_tx_rings, 36, 4) \
    X(struct netmap_if, ni_host_rx_rings, 40, 4) \
    X(struct netmap_if, ni_spare1, 44, 12) \
    /* legacy nmreq */ \
    X(struct nmreq, nr_name, 0, 16) \
    X(struct nmreq, nr_version, 16, 4) \
    X(struct nmreq, nr_offset, 20, 4) \
    X(struct nmreq, nr_memsize, 24, 4) \
    X(struct nmreq, nr_tx_slots, 28, 4) \
    X(struct nmreq, nr_rx_slots, 32, 4) \
    X(struct nmreq, nr_tx_rings, 36, 2) \
    X(struct nmreq, nr_rx_rings, 38, 2) \
    X(struct nmreq, nr_ringid, 40, 2) \
    X(struct nmreq, nr_cmd, 42, 2) \
    X(struct nmreq, nr_arg1, 44, 2) \
    X(struct nmreq, nr_arg2, 46, 2) \
    X(struct nmreq, nr_arg3, 48, 4) \
    X(struct nmreq, nr_flags, 52, 4) \
    X(struct nmreq, spare2, 56, 4) \
    X(struct nm_ifreq, nifr_name, 0, 16) \
    X(struct nm_ifreq, data, 16, 256) \
    /* nmreq_header, nmreq_option */ \
    X(struct nmreq_header, nr_version, 0, 2) \
    X(struct nmreq_header, nr_reqtype, 2, 2) \
    X(struct nmreq_header, nr_reserved, 4, 4) \
    X(struct nmreq_header, nr_name, 8, 64) \
    X(struct nmreq_header, nr_options, 72, 8) \
    X(struct nmreq_header, nr_body, 80, 8) \
    X(struct nmreq_option, nro_next, 0, 8) \
    X(struct nmreq_option, nro_reqtype, 8, 4) \
    X(struct nmreq_option, nro_status, 12, 4) \
    X(struct nmreq_option, nro_size, 16, 8) \
    /* nmreq_register (4 bytes of padding at 44) */ \
    X(struct nmreq_register, nr_offset, 0, 8) \
    X(struct nmreq_register, nr_memsize, 8, 8) \
    X(struct nmreq_register, nr_tx_slots, 16, 4) \
    X(struct nmreq_register, nr_rx_slots, 20, 4) \
    X(struct nmreq_register, nr_tx_rings, 24, 2) \
    X(struct nmreq_register, nr_rx_rings, 26, 2) \
    X(struct nmreq_register, nr_host_tx_rings, 28, 2) \
    X(struct nmreq_register, nr_host_rx_rings, 30, 2) \
    X(struct nmreq_register, nr_mem_id, 32, 2) \
    X(struct nmreq_register, nr_ringid, 34, 2) \
    X(struct nmreq_register, nr_mode, 36, 4) \
    X(struct nmreq_register, nr_extra_bufs, 40, 4) \
    X(struct nmreq_register, nr_flags, 48, 8) \
    /* nmreq_port_info_get: offsets follow from the field types */ \
    X(struct nmreq_port_info_get, nr_memsize, 0, 8) \
    X(struct nmreq_port_info_get, nr_tx_slots, 8, 4) \
    X(struct nmreq_port_info_get, nr_rx_slots, 12, 4) \
    X(struct nmreq_port_info_get, nr_tx_rings, 16, 2) \
    X(struct nmreq_port_info_get, nr_rx_rings, 18, 2) \
    X(struct nmreq_port_info_get, nr_host_tx_rings, 20, 2) \
    X(struct nmreq_port_info_get, nr_host_rx_rings, 22, 2) \
    X(struct nmreq_port_info_get, nr_mem_id, 24, 2) \
    X(struct nmreq_port_info_get, pad, 26, 6) \
    /* VALE bodies */ \
    X(struct nmreq_vale_attach, reg, 0, 56) \
    X(struct nmreq_vale_attach, port_index, 56, 4) \
    X(struct nmreq_vale_attach, pad1, 60, 4) \
    X(struct nmreq_vale_detach, port_index, 0, 4) \
    X(struct nmreq_vale_detach, pad1, 4, 4) \
    X(struct nmreq_vale_list, nr_bridge_idx, 0, 2) \
    X(struct nmreq_vale_list, pad1, 2, 2) \
    X(struct nmreq_vale_list, nr_port_idx, 4, 4) \
    X(struct nmreq_port_hdr, nr_hdr_len, 0, 4) \
    X(struct nmreq_port_hdr, pad1, 4, 4) \
    X(struct nmreq_vale_newif, nr_tx_slots, 0, 4) \
    X(struct nmreq_vale_newif, nr_rx_slots, 4, 4) \
    X(struct nmreq_vale_newif, nr_tx_rings, 8, 2) \
    X(struct nmreq_vale_newif, nr_rx_rings, 10, 2) \
    X(struct nmreq_vale_newif, nr_mem_id, 12, 2) \
    X(struct nmreq_vale_newif, pad1, 14, 2) \
    X(struct nmreq_vale_polling, nr_mode, 0, 4) \
    X(struct nmreq_vale_polling, nr_first_cpu_id, 4, 4) \
    X(struct nmreq_vale_polling, nr_num_polling_cpus, 8, 4) \
    X(struct nmreq_vale_polling, pad1, 12, 4) \
    /* nmreq_pools_info */ \
    X(struct nmreq_pools_info, nr_memsize, 0, 8) \
    X(struct nmreq_pools_info, nr_mem_id, 8, 2) \
    X(struct nmreq_pools_info, pad1, 10, 6) \
    X(struct nmreq_pools_info, nr_if_pool_offset, 16, 8) \
    X(struct nmreq_pools_info, nr_if_pool_objtotal, 24, 4) \
    X(struct nmreq_pools_info, nr_if_pool_objsize, 28, 4) \
    X(struct nmreq_pools_info, nr_ring_pool_offset, 32, 8) \
    X(struct nmreq_pools_info, nr_ring_pool_objtotal, 40, 4) \
    X(struct nmreq_pools_info, nr_ring_pool_objsize, 44, 4) \
    X(struct nmreq_pools_info, nr_buf_pool_offset, 48, 8) \
    X(struct nmreq_pools_info, nr_buf_pool_objtotal, 56, 4) \
    X(struct nmreq_pools_info, nr_buf_pool_objsize, 60, 4) \
    X(struct nmreq_sync_kloop_start, sleep_us, 0, 4) \
    X(struct nmreq_sync_kloop_start, pad1, 4, 4) \
    /* options */ \
    X(struct nmreq_opt_extmem, nro_opt, 0, 24) \
    X(struct nmreq_opt_extmem, nro_usrptr, 24, 8) \
    X(struct nmreq_opt_extmem, nro_info, 32, 64) \
    X(struct nmreq_opt_csb, nro_opt, 0, 24) \
    X(struct nmreq_opt_csb, csb_atok, 24, 8) \
    X(struct nmreq_opt_csb, csb_ktoa, 32, 8) \
    X(struct nmreq_opt_sync_kloop_mode, nro_opt, 0, 24) \
    X(struct nmreq_opt_sync_kloop_mode, mode, 24, 4) \
    X(struct nmreq_opt_sync_kloop_eventfds, nro_opt, 0, 24) \
    X(struct nmreq_opt_offsets, nro_opt, 0, 24) \
    X(struct nmreq_opt_offsets, nro_max_offset, 24, 8) \
    X(struct nmreq_opt_offsets, nro_initial_offset, 32, 8) \
    X(struct nmreq_opt_offsets, nro_offset_bits, 40, 4) \
    X(struct nmreq_opt_offsets, nro_tx_align, 44, 4) \
    X(struct nmreq_opt_offsets, nro_min_gap, 48, 8)

/* Flexible array members: X(type, field, offset, element size) */
#define NMC_FAMS(X) \
    X(struct netmap_ring, slot, 256, 16) \
    X(struct netmap_if, ring_ofs, 56, 8) \
    X(struct nmreq_opt_sync_kloop_eventfds, eventfds, 24, 8)

/*
 * Member types, including const qualification, which is part of the
 * contract: X(type, member, expected pointer type of &member).
 */
#define NMC_MEMBER_TYPES(X) \
    X(struct netmap_ring, buf_ofs, const int64_t *) \
    X(struct netmap_ring, num_slots, const uint32_t *) \
    X(struct netmap_ring, nr_buf_size, const uint32_t *) \
    X(struct netmap_ring, ringid, const uint16_t *) \
    X(struct netmap_ring, dir, const uint16_t *) \
    X(struct netmap_ring, head, uint32_t *) \
    X(struct netmap_ring, cur, uint32_t *) \
    X(struct netmap_ring, tail, uint32_t *) \
    X(struct netmap_ring, flags, uint32_t *) \
    X(struct netmap_ring, ts, struct timeval *) \
    X(struct netmap_ring, offset_mask, const uint64_t *) \
    X(struct netmap_ring, buf_align, const uint64_t *) \
    X(struct netmap_ring, sem[0], uint8_t *) \
    X(struct netmap_ring, slot[0], struct netmap_slot *) \
    X(struct netmap_if, ni_name[0], char *) \
    X(struct netmap_if, ni_version, const uint32_t *) \
    X(struct netmap_if, ni_flags, const uint32_t *) \
    X(struct netmap_if, ni_tx_rings, const uint32_t *) \
    X(struct netmap_if, ni_rx_rings, const uint32_t *) \
    X(struct netmap_if, ni_bufs_head, uint32_t *) \
    X(struct netmap_if, ni_host_tx_rings, const uint32_t *) \
    X(struct netmap_if, ni_host_rx_rings, const uint32_t *) \
    X(struct netmap_if, ni_spare1[0], uint32_t *) \
    X(struct netmap_if, ring_ofs[0], const ssize_t *) \
    X(struct nm_desc, nifp, struct netmap_if * const *) \
    X(struct nm_desc, some_ring, struct netmap_ring * const *) \
    X(struct nm_desc, buf_start, void * const *) \
    X(struct nm_desc, buf_end, void * const *) \
    X(struct nm_desc, req, struct nmreq *) \
    X(struct nm_desc, hdr, struct nm_pkthdr *) \
    X(struct nm_desc, msg[0], char *)

/* Integer constants: X(name, value) */
#define NMC_CONSTANTS(X) \
    X(NETMAP_API, 14) \
    X(NETMAP_MIN_API, 14) \
    X(NETMAP_MAX_API, 15) \
    X(NM_CACHE_ALIGN, 128) \
    X(NETMAP_MAX_FRAGS, 64) \
    X(NETMAP_REQ_MAXSIZE, 4096) \
    X(NETMAP_REQ_IFNAMSIZ, 64) \
    X(IFNAMSIZ, 16) \
    X(NS_BUF_CHANGED, 0x0001) \
    X(NS_REPORT, 0x0002) \
    X(NS_FORWARD, 0x0004) \
    X(NS_NO_LEARN, 0x0008) \
    X(NS_INDIRECT, 0x0010) \
    X(NS_MOREFRAG, 0x0020) \
    X(NS_TXMON, 0x0040) \
    X(NS_PORT_SHIFT, 8) \
    X(NS_PORT_MASK, 0xff00) \
    X(NR_TIMESTAMP, 0x0002) \
    X(NR_FORWARD, 0x0004) \
    X(NI_PRIV_MEM, 0x1) \
    X(NR_REG_DEFAULT, 0) \
    X(NR_REG_ALL_NIC, 1) \
    X(NR_REG_SW, 2) \
    X(NR_REG_NIC_SW, 3) \
    X(NR_REG_ONE_NIC, 4) \
    X(NR_REG_PIPE_MASTER, 5) \
    X(NR_REG_PIPE_SLAVE, 6) \
    X(NR_REG_NULL, 7) \
    X(NR_REG_ONE_SW, 8) \
    X(NR_REG_MASK, 0xf) \
    X(NR_MONITOR_TX, 0x100) \
    X(NR_MONITOR_RX, 0x200) \
    X(NR_ZCOPY_MON, 0x400) \
    X(NR_EXCLUSIVE, 0x800) \
    X(NR_RX_RINGS_ONLY, 0x2000) \
    X(NR_TX_RINGS_ONLY, 0x4000) \
    X(NR_ACCEPT_VNET_HDR, 0x8000) \
    X(NR_DO_RX_POLL, 0x10000) \
    X(NR_NO_TX_POLL, 0x20000) \
    X(NETMAP_REQ_REGISTER, 1) \
    X(NETMAP_REQ_PORT_INFO_GET, 2) \
    X(NETMAP_REQ_VALE_ATTACH, 3) \
    X(NETMAP_REQ_VALE_DETACH, 4) \
    X(NETMAP_REQ_VALE_LIST, 5) \
    X(NETMAP_REQ_PORT_HDR_SET, 6) \
    X(NETMAP_REQ_PORT_HDR_GET, 7) \
    X(NETMAP_REQ_VALE_NEWIF, 8) \
    X(NETMAP_REQ_VALE_DELIF, 9) \
    X(NETMAP_REQ_VALE_POLLING_ENABLE, 10) \
    X(NETMAP_REQ_VALE_POLLING_DISABLE, 11) \
    X(NETMAP_REQ_POOLS_INFO_GET, 12) \
    X(NETMAP_REQ_SYNC_KLOOP_START, 13) \
    X(NETMAP_REQ_SYNC_KLOOP_STOP, 14) \
    X(NETMAP_REQ_CSB_ENABLE, 15) \
    X(NETMAP_REQ_OPT_EXTMEM, 1) \
    X(NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS, 2) \
    X(NETMAP_REQ_OPT_CSB, 3) \
    X(NETMAP_REQ_OPT_SYNC_KLOOP_MODE, 4) \
    X(NETMAP_REQ_OPT_OFFSETS, 5) \
    X(NM_OPT_SYNC_KLOOP_DIRECT_TX, 1) \
    X(NM_OPT_SYNC_KLOOP_DIRECT_RX, 2) \
    X(NETMAP_POLLING_MODE_SINGLE_CPU, 1) \
    X(NETMAP_POLLING_MODE_MULTI_CPU, 2) \
    X(NETMAP_HW_RING, 0x4000) \
    X(NETMAP_SW_RING, 0x2000) \
    X(NETMAP_NO_TX_POLL, 0x1000) \
    X(NETMAP_DO_RX_POLL, 0x8000) \
    X(NETMAP_RING_MASK, 0x0fff) \
    X(NETMAP_BDG_ATTACH, 1) \
    X(NETMAP_BDG_DETACH, 2) \
    X(NETMAP_BDG_REGOPS, 3) \
    X(NETMAP_BDG_LIST, 4) \
    X(NETMAP_BDG_VNET_HDR, 5) \
    X(NETMAP_BDG_NEWIF, 6) \
    X(NETMAP_BDG_DELIF, 7) \
    X(NETMAP_PT_HOST_CREATE, 8) \
    X(NETMAP_PT_HOST_DELETE, 9) \
    X(NETMAP_BDG_POLLING_ON, 10) \
    X(NETMAP_BDG_POLLING_OFF, 11) \
    X(NETMAP_VNET_HDR_GET, 12) \
    X(NETMAP_BDG_HOST, 1) \
    X(NM_IFRDATA_LEN, 256) \
    X(NM_ERRBUF_SIZE, 512) \
    X(NM_MORE_PKTS, 1) \
    X(NM_OPEN_NO_MMAP, 0x040000) \
    X(NM_OPEN_IFNAME, 0x080000) \
    X(NM_OPEN_ARG1, 0x100000) \
    X(NM_OPEN_ARG2, 0x200000) \
    X(NM_OPEN_ARG3, 0x400000) \
    X(NM_OPEN_RING_CFG, 0x800000)

/*
 * ioctl numbers.  The values are those of the asm-generic encoding used
 * by x86_64, arm64 and riscv64; other architectures encode differently.
 */
#if defined(__x86_64__) || defined(__aarch64__) || \
    (defined(__riscv) && __riscv_xlen == 64)
#define NMC_CHECK_IOCTLS 1
#define NMC_IOCTLS(X) \
    X(NIOCGINFO, 0xc03c6991UL) \
    X(NIOCREGIF, 0xc03c6992UL) \
    X(NIOCTXSYNC, 0x6994UL) \
    X(NIOCRXSYNC, 0x6995UL) \
    X(NIOCCONFIG, 0xc1106996UL) \
    X(NIOCCTRL, 0xc0586997UL)
#else
#define NMC_CHECK_IOCTLS 0
#define NMC_IOCTLS(X)
#endif

/* ------------------------------------------------------------------ */
/* Compile-time checks                                                 */
/* ------------------------------------------------------------------ */

#define NMC_MEMBER_SIZE(t, f) sizeof(((t *)0)->f)

#define NMC_SA_SIZE(t, sz, al) \
    _Static_assert(sizeof(t) == (sz), "sizeof(" #t ") != " #sz); \
    _Static_assert(alignof(t) == (al), "alignof(" #t ") != " #al);
NMC_SIZES(NMC_SA_SIZE)

#define NMC_SA_FIELD(t, f, off, sz) \
    _Static_assert(offsetof(t, f) == (off), \
        "offsetof(" #t ", " #f ") != " #off); \
    _Static_assert(NMC_MEMBER_SIZE(t, f) == (sz), \
        "sizeof(" #t "." #f ") != " #sz);
NMC_FIELDS(NMC_SA_FIELD)

#define NMC_SA_FAM(t, f, off, esz) \
    _Static_assert(offsetof(t, f) == (off), \
        "offsetof(" #t ", " #f "[]) != " #off); \
    _Static_assert(NMC_MEMBER_SIZE(t, f[0]) == (esz), \
        "sizeof(" #t "." #f "[0]) != " #esz);
NMC_FAMS(NMC_SA_FAM)

#define NMC_SA_MTYPE(t, m, pt) \
    _Static_assert(_Generic(&((t *)0)->m, pt: 1, default: 0), \
        "type of " #t "." #m " is not " #pt);
NMC_MEMBER_TYPES(NMC_SA_MTYPE)

#define NMC_SA_CONST(name, v) \
    _Static_assert((name) == (v), #name " != " #v);
NMC_CONSTANTS(NMC_SA_CONST)

#define NMC_SA_IOCTL(name, v) \
    _Static_assert((unsigned long)(name) == (v), #name " != " #v);
NMC_IOCTLS(NMC_SA_IOCTL)

/* nmreq_register: a 4-byte hole between nr_extra_bufs and nr_flags. */
_Static_assert(offsetof(struct nmreq_register, nr_extra_bufs) + 4 == 44,
    "nmreq_register: padding does not start at 44");
_Static_assert(offsetof(struct nmreq_register, nr_flags) - 44 == 4,
    "nmreq_register: padding is not 4 bytes");

/* sem[] sits on its own 128-byte boundary and the header ends at 256. */
_Static_assert(offsetof(struct netmap_ring, sem) % NM_CACHE_ALIGN == 0,
    "netmap_ring.sem is not 128-aligned");
_Static_assert(offsetof(struct netmap_ring, slot) == sizeof(struct netmap_ring),
    "netmap_ring.slot[] does not follow the header");
_Static_assert(sizeof(((struct nmreq_opt_sync_kloop_eventfds *)0)->eventfds[0])
    == 8, "eventfds pair is not 8 bytes");

/* struct nm_desc and struct nm_pkthdr: fields in the documented order. */
#define NMC_SA_ORDER(t, a, b) \
    _Static_assert(offsetof(t, a) < offsetof(t, b), \
        #t ": " #a " does not precede " #b);
NMC_SA_ORDER(struct nm_desc, self, fd)
NMC_SA_ORDER(struct nm_desc, fd, mem)
NMC_SA_ORDER(struct nm_desc, mem, memsize)
NMC_SA_ORDER(struct nm_desc, memsize, done_mmap)
NMC_SA_ORDER(struct nm_desc, done_mmap, nifp)
NMC_SA_ORDER(struct nm_desc, nifp, first_tx_ring)
NMC_SA_ORDER(struct nm_desc, first_tx_ring, last_tx_ring)
NMC_SA_ORDER(struct nm_desc, last_tx_ring, cur_tx_ring)
NMC_SA_ORDER(struct nm_desc, cur_tx_ring, first_rx_ring)
NMC_SA_ORDER(struct nm_desc, first_rx_ring, last_rx_ring)
NMC_SA_ORDER(struct nm_desc, last_rx_ring, cur_rx_ring)
NMC_SA_ORDER(struct nm_desc, cur_rx_ring, req)
NMC_SA_ORDER(struct nm_desc, req, hdr)
NMC_SA_ORDER(struct nm_desc, hdr, some_ring)
NMC_SA_ORDER(struct nm_desc, some_ring, buf_start)
NMC_SA_ORDER(struct nm_desc, buf_start, buf_end)
NMC_SA_ORDER(struct nm_desc, buf_end, snaplen)
NMC_SA_ORDER(struct nm_desc, snaplen, promisc)
NMC_SA_ORDER(struct nm_desc, promisc, to_ms)
NMC_SA_ORDER(struct nm_desc, to_ms, errbuf)
NMC_SA_ORDER(struct nm_desc, errbuf, if_flags)
NMC_SA_ORDER(struct nm_desc, if_flags, if_reqcap)
NMC_SA_ORDER(struct nm_desc, if_reqcap, if_curcap)
NMC_SA_ORDER(struct nm_desc, if_curcap, st)
NMC_SA_ORDER(struct nm_desc, st, msg)
NMC_SA_ORDER(struct nm_pkthdr, ts, caplen)
NMC_SA_ORDER(struct nm_pkthdr, caplen, len)
NMC_SA_ORDER(struct nm_pkthdr, len, flags)
NMC_SA_ORDER(struct nm_pkthdr, flags, d)
NMC_SA_ORDER(struct nm_pkthdr, d, slot)
NMC_SA_ORDER(struct nm_pkthdr, slot, buf)
_Static_assert(NMC_MEMBER_SIZE(struct nm_desc, msg) == NM_ERRBUF_SIZE,
    "nm_desc.msg is not NM_ERRBUF_SIZE bytes");

/* ------------------------------------------------------------------ */
/* Run-time tables                                                     */
/* ------------------------------------------------------------------ */

static int nmc_print;       /* --print */
static int nmc_failures;
static int nmc_checks;

static void
nmc_report(int ok, const char *what, unsigned long long got,
    unsigned long long want)
{
    nmc_checks++;
    if (!ok) {
        nmc_failures++;
        fprintf(stderr, "abi_check: MISMATCH %s: got %llu (0x%llx), "
            "want %llu (0x%llx)\n", what, got, got, want, want);
    }
}

static void
nmc_check_eq(const char *what, unsigned long long got, unsigned long long want)
{
    nmc_report(got == want, what, got, want);
}

#define NMC_TRUE(cond) nmc_report(!!(cond), #cond, !!(cond), 1)

struct nmc_size_row {
    const char *type;
    size_t size, want_size, align, want_align;
};

struct nmc_field_row {
    const char *type, *field;
    size_t off, want_off, size, want_size;
    int fam;
};

struct nmc_const_row {
    const char *name;
    unsigned long long value, want;
};

#define NMC_ROW_SIZE(t, sz, al) { #t, sizeof(t), (sz), alignof(t), (al) },
static const struct nmc_size_row nmc_size_rows[] = {
    NMC_SIZES(NMC_ROW_SIZE)
};

#define NMC_ROW_FIELD(t, f, off, sz) \
    { #t, #f, offsetof(t, f), (off), NMC_MEMBER_SIZE(t, f), (sz), 0 },
#define NMC_ROW_FAM(t, f, off, esz) \
    { #t, #f "[]", offsetof(t, f), (off), NMC_MEMBER_SIZE(t, f[0]), (esz), 1 },
static const struct nmc_field_row nmc_field_rows[] = {
    NMC_FIELDS(NMC_ROW_FIELD)
    NMC_FAMS(NMC_ROW_FAM)
};

#define NMC_ROW_CONST(name, v) \
    { #name, (unsigned long long)(name), (unsigned long long)(v) },
static const struct nmc_const_row nmc_const_rows[] = {
    NMC_CONSTANTS(NMC_ROW_CONST)
};

#define NMC_ROW_IOCTL(name, v) \
    { #name, (unsigned long long)(name), (unsigned long long)(v) },
static const struct nmc_const_row nmc_ioctl_rows[] = {
    NMC_IOCTLS(NMC_ROW_IOCTL)
    { NULL, 0, 0 }
};

#define NMC_NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *
nmc_mark(int ok)
{
    return ok ? "ok" : "MISMATCH";
}

static void
nmc_check_sizes(void)
{
    char what[128];
    size_t i;

    if (nmc_print)
        printf("%-40s %6s %6s %6s %6s\n", "struct", "size", "want",
            "align", "want");
    for (i = 0; i < NMC_NELEM(nmc_size_rows); i++) {
        const struct nmc_size_row *r = &nmc_size_rows[i];
        int ok = r->size == r->want_size && r->align == r->want_align;

        snprintf(what, sizeof(what), "sizeof(%s)", r->type);
        nmc_check_eq(what, r->size, r->want_size);
        snprintf(what, sizeof(what), "alignof(%s)", r->type);
        nmc_check_eq(what, r->align, r->want_align);
        if (nmc_print)
            printf("%-40s %6zu %6zu %6zu %6zu  %s\n", r->type, r->size,
                r->want_size, r->align, r->want_align, nmc_mark(ok));
    }
}

static void
nmc_check_fields(void)
{
    char what[160];
    size_t i;

    if (nmc_print)
        printf("\n%-40s %-24s %5s %5s %5s %5s\n", "struct", "field", "off",
            "want", "size", "want");
    for (i = 0; i < NMC_NELEM(nmc_field_rows); i++) {
        const struct nmc_field_row *r = &nmc_field_rows[i];
        int ok = r->off == r->want_off && r->size == r->want_size;

        snprintf(what, sizeof(what), "offsetof(%s, %s)", r->type, r->field);
        nmc_check_eq(what, r->off, r->want_off);
        snprintf(what, sizeof(what), "sizeof(%s.%s%s)", r->type, r->field,
            r->fam ? " element" : "");
        nmc_check_eq(what, r->size, r->want_size);
        if (nmc_print)
            printf("%-40s %-24s %5zu %5zu %5zu %5zu  %s\n", r->type,
                r->field, r->off, r->want_off, r->size, r->want_size,
                nmc_mark(ok));
    }
    nmc_check_eq("nmreq_register padding start",
        offsetof(struct nmreq_register, nr_extra_bufs) + 4, 44);
    nmc_check_eq("nmreq_register padding length",
        offsetof(struct nmreq_register, nr_flags) - 44, 4);
    if (nmc_print)
        printf("%-40s %-24s %5d %5d %5d %5d  %s\n", "struct nmreq_register",
            "(padding)", 44, 44, 4, 4, "ok");
}

static void
nmc_check_consts(const char *title, const struct nmc_const_row *rows,
    size_t n)
{
    size_t i;

    if (nmc_print)
        printf("\n%-36s %12s %12s\n", title, "value", "want");
    for (i = 0; i < n && rows[i].name != NULL; i++) {
        const struct nmc_const_row *r = &rows[i];

        nmc_check_eq(r->name, r->value, r->want);
        if (nmc_print)
            printf("%-36s %#12llx %#12llx  %s\n", r->name, r->value, r->want,
                nmc_mark(r->value == r->want));
    }
}

static void
nmc_check_strings(void)
{
    NMC_TRUE(strcmp(NM_BDG_NAME, "vale") == 0);
    NMC_TRUE(strcmp(NETMAP_DEVICE_NAME, "/dev/netmap") == 0);
    if (nmc_print)
        printf("\n%-36s %s\n%-36s %s\n", "NM_BDG_NAME", NM_BDG_NAME,
            "NETMAP_DEVICE_NAME", NETMAP_DEVICE_NAME);
}

/* ------------------------------------------------------------------ */
/* Run-time test of the helpers on a hand-built region                 */
/* ------------------------------------------------------------------ */

/*
 * Region layout (all offsets from the region start):
 *   NMC_NIFP_OFS   netmap_if with ring_ofs[NMC_NRINGS]
 *   NMC_RING_OFS   NMC_NRINGS rings, NMC_RING_STRIDE bytes apart
 *   NMC_POOL_OFS   NMC_NBUFS buffers of NMC_BUF_SIZE bytes
 *   NMC_LATE_OFS   one extra ring placed after the pool (negative buf_ofs)
 */
#define NMC_TX_RINGS        2
#define NMC_HOST_TX_RINGS   1
#define NMC_RX_RINGS        3
#define NMC_HOST_RX_RINGS   2
#define NMC_NRINGS \
    (NMC_TX_RINGS + NMC_HOST_TX_RINGS + NMC_RX_RINGS + NMC_HOST_RX_RINGS)
#define NMC_NUM_SLOTS       7       /* deliberately not a power of 2 */
#define NMC_BUF_SIZE        2048
#define NMC_NBUFS           24
#define NMC_NIFP_OFS        128
#define NMC_RING_OFS        1024
#define NMC_RING_STRIDE     384     /* 256 + 7 * 16, rounded up to 128 */
#define NMC_POOL_OFS        4096
#define NMC_LATE_OFS        (NMC_POOL_OFS + NMC_NBUFS * NMC_BUF_SIZE)
#define NMC_REGION_SIZE     (NMC_LATE_OFS + 4096)
/* the host rx ring that this registration leaves unbound */
#define NMC_UNBOUND_RX      (NMC_RX_RINGS + 1)

_Static_assert(NMC_RING_OFS + NMC_NRINGS * NMC_RING_STRIDE <= NMC_POOL_OFS,
    "test rings overlap the pool");
_Static_assert(NMC_RING_STRIDE % NM_CACHE_ALIGN == 0 &&
    NMC_RING_STRIDE >= 256 + NMC_NUM_SLOTS * 16, "bad test ring stride");

/* Writers for the const-qualified fields, as the port side would do. */
static void
nmc_put(void *obj, size_t off, const void *val, size_t len)
{
    memcpy((char *)obj + off, val, len);
}

static void
nmc_init_ring(struct netmap_ring *ring, int64_t buf_ofs, uint16_t ringid,
    uint16_t dir)
{
    uint32_t num_slots = NMC_NUM_SLOTS, buf_size = NMC_BUF_SIZE, i;

    nmc_put(ring, offsetof(struct netmap_ring, buf_ofs), &buf_ofs, 8);
    nmc_put(ring, offsetof(struct netmap_ring, num_slots), &num_slots, 4);
    nmc_put(ring, offsetof(struct netmap_ring, nr_buf_size), &buf_size, 4);
    nmc_put(ring, offsetof(struct netmap_ring, ringid), &ringid, 2);
    nmc_put(ring, offsetof(struct netmap_ring, dir), &dir, 2);
    ring->head = ring->cur = 0;
    ring->tail = dir == 0 ? num_slots - 1 : 0;
    for (i = 0; i < num_slots; i++) {
        ring->slot[i].buf_idx = 2 + i;
        ring->slot[i].len = NMC_BUF_SIZE;
        ring->slot[i].flags = 0;
        ring->slot[i].ptr = 0;
    }
}

static void
nmc_set_offset_mask(struct netmap_ring *ring, uint64_t mask)
{
    nmc_put(ring, offsetof(struct netmap_ring, offset_mask), &mask, 8);
}

static struct netmap_if *
nmc_build_region(char *region)
{
    struct netmap_if *nifp = (struct netmap_if *)(void *)(region + NMC_NIFP_OFS);
    uint32_t counts[4] = { NMC_TX_RINGS, NMC_RX_RINGS, NMC_HOST_TX_RINGS,
        NMC_HOST_RX_RINGS };
    uint32_t one = 1;
    unsigned int k;

    memset(region, 0, NMC_REGION_SIZE);
    strcpy(nifp->ni_name, "nmc0");
    nmc_put(nifp, offsetof(struct netmap_if, ni_version), &one, 4);
    nmc_put(nifp, offsetof(struct netmap_if, ni_tx_rings), &counts[0], 4);
    nmc_put(nifp, offsetof(struct netmap_if, ni_rx_rings), &counts[1], 4);
    nmc_put(nifp, offsetof(struct netmap_if, ni_host_tx_rings), &counts[2], 4);
    nmc_put(nifp, offsetof(struct netmap_if, ni_host_rx_rings), &counts[3], 4);

    /* ring k of the region is entry k of ring_ofs[] (tx, host tx, rx, host rx) */
    for (k = 0; k < NMC_NRINGS; k++) {
        size_t ring_at = NMC_RING_OFS + (size_t)k * NMC_RING_STRIDE;
        struct netmap_ring *ring = (struct netmap_ring *)(void *)(region + ring_at);
        int tx = k < NMC_TX_RINGS + NMC_HOST_TX_RINGS;
        uint16_t ringid = (uint16_t)(tx ? k : k - NMC_TX_RINGS - NMC_HOST_TX_RINGS);
        ssize_t ofs = (ssize_t)ring_at - NMC_NIFP_OFS;

        if (!tx && ringid == NMC_UNBOUND_RX)
            ofs = 0;
        nmc_init_ring(ring, (int64_t)NMC_POOL_OFS - (int64_t)ring_at, ringid,
            tx ? 0 : 1);
        nmc_put(nifp, offsetof(struct netmap_if, ring_ofs) + k * sizeof(ssize_t),
            &ofs, sizeof(ofs));
    }
    nmc_init_ring((struct netmap_ring *)(void *)(region + NMC_LATE_OFS),
        (int64_t)NMC_POOL_OFS - (int64_t)NMC_LATE_OFS, 0, 1);
    return nifp;
}

static void
nmc_test_addressing(char *region, struct netmap_if *nifp)
{
    char *pool = region + NMC_POOL_OFS;
    struct netmap_ring *late = (struct netmap_ring *)(void *)(region + NMC_LATE_OFS);
    uint32_t i, idx;

    NMC_TRUE(NETMAP_IF(region, NMC_NIFP_OFS) == nifp);
    NMC_TRUE(strcmp(NETMAP_IF(region, NMC_NIFP_OFS)->ni_name, "nmc0") == 0);

    /* tx rings, then host tx rings at ni_tx_rings + k */
    for (i = 0; i < NMC_TX_RINGS + NMC_HOST_TX_RINGS; i++) {
        struct netmap_ring *r = NETMAP_TXRING(nifp, i);

        NMC_TRUE((char *)r == region + NMC_RING_OFS + i * NMC_RING_STRIDE);
        nmc_check_eq("NETMAP_TXRING(i)->ringid", r->ringid, i);
        nmc_check_eq("NETMAP_TXRING(i)->dir", r->dir, 0);
    }
    /* rx rings skip ni_tx_rings + ni_host_tx_rings entries */
    for (i = 0; i < NMC_RX_RINGS + NMC_HOST_RX_RINGS; i++) {
        struct netmap_ring *r = NETMAP_RXRING(nifp, i);
        uint32_t k = i + NMC_TX_RINGS + NMC_HOST_TX_RINGS;

        if (i == NMC_UNBOUND_RX) {
            /* unbound: ring_ofs is 0, the macro yields nifp itself */
            NMC_TRUE((void *)r == (void *)nifp);
            continue;
        }
        NMC_TRUE((char *)r == region + NMC_RING_OFS + k * NMC_RING_STRIDE);
        nmc_check_eq("NETMAP_RXRING(i)->ringid", r->ringid, i);
        nmc_check_eq("NETMAP_RXRING(i)->dir", r->dir, 1);
    }

    /* every bound ring, and the one with negative buf_ofs, sees one pool */
    for (i = 0; i <= NMC_NRINGS; i++) {
        struct netmap_ring *r = i < NMC_NRINGS ?
            (struct netmap_ring *)(void *)(region + NMC_RING_OFS +
                i * NMC_RING_STRIDE) : late;

        for (idx = 0; idx < NMC_NBUFS; idx++) {
            char *buf = NETMAP_BUF(r, idx);

            NMC_TRUE(buf == pool + (size_t)idx * NMC_BUF_SIZE);
            nmc_check_eq("NETMAP_BUF_IDX(NETMAP_BUF(idx))",
                (unsigned long long)NETMAP_BUF_IDX(r, buf), idx);
            nmc_check_eq("NETMAP_BUF_IDX(inside buffer)",
                (unsigned long long)NETMAP_BUF_IDX(r, buf + NMC_BUF_SIZE - 1),
                idx);
        }
    }
    NMC_TRUE(late->buf_ofs < 0);
    NMC_TRUE(_Generic(NETMAP_BUF(late, 0), char *: 1, default: 0));
}

static void
nmc_test_ring_arith(struct netmap_ring *ring)
{
    uint32_t n = ring->num_slots, h, t, count = 0;

    /* wrap-around of nm_ring_next */
    nmc_check_eq("nm_ring_next(0)", nm_ring_next(ring, 0), 1);
    nmc_check_eq("nm_ring_next(n-2)", nm_ring_next(ring, n - 2), n - 1);
    nmc_check_eq("nm_ring_next(n-1)", nm_ring_next(ring, n - 1), 0);

    /* fresh tx ring: head = cur = 0, tail = n - 1 */
    nmc_check_eq("initial tx space", nm_ring_space(ring), n - 1);
    NMC_TRUE(!nm_ring_empty(ring));
    NMC_TRUE(!nm_tx_pending(ring));

    /* fill it: capacity is n - 1, one slot always stays empty */
    while (!nm_ring_empty(ring)) {
        ring->slot[ring->head].len = 60;
        ring->head = ring->cur = nm_ring_next(ring, ring->head);
        count++;
    }
    nmc_check_eq("tx capacity", count, n - 1);
    nmc_check_eq("head after fill", ring->head, n - 1);
    nmc_check_eq("space when full", nm_ring_space(ring), 0);
    NMC_TRUE(nm_tx_pending(ring));

    /* the port completes 3 slots: tail wraps past the end */
    ring->tail = (ring->tail + 3) % n;
    nmc_check_eq("tail after completion", ring->tail, 2);
    nmc_check_eq("space across wrap", nm_ring_space(ring), 3);
    NMC_TRUE(nm_tx_pending(ring));

    /* nm_ring_empty compares head, not cur */
    ring->head = ring->tail;
    ring->cur = nm_ring_next(ring, ring->tail);
    NMC_TRUE(nm_ring_empty(ring));
    ring->head = ring->cur;
    NMC_TRUE(!nm_ring_empty(ring));

    /* every (head, tail) pair */
    for (h = 0; h < n; h++) {
        for (t = 0; t < n; t++) {
            ring->head = ring->cur = h;
            ring->tail = t;
            nmc_check_eq("nm_ring_space(h,t)", nm_ring_space(ring),
                (t + n - h) % n);
            nmc_check_eq("nm_ring_empty(h,t)", nm_ring_empty(ring), h == t);
            nmc_check_eq("nm_tx_pending(h,t)", nm_tx_pending(ring),
                (t + 1) % n != h);
        }
    }
    ring->head = ring->cur = 0;
    ring->tail = n - 1;
}

static void
nmc_test_offsets(struct netmap_ring *ring)
{
    struct netmap_slot *slot = &ring->slot[0];

    /* without the OFFSETS option the offset is always zero */
    nmc_set_offset_mask(ring, 0);
    slot->ptr = 0xdead0000u;
    NETMAP_WOFFSET(ring, slot, 0x123);
    nmc_check_eq("ptr with zero mask", slot->ptr, 0xdead0000u);
    nmc_check_eq("ROFFSET with zero mask", NETMAP_ROFFSET(ring, slot), 0);
    NMC_TRUE(NETMAP_BUF_OFFSET(ring, slot) == NETMAP_BUF(ring, slot->buf_idx));

    nmc_set_offset_mask(ring, 0xfff);
    NETMAP_WOFFSET(ring, slot, 0x123);
    nmc_check_eq("ptr after WOFFSET", slot->ptr, 0xdead0123u);
    nmc_check_eq("ROFFSET", NETMAP_ROFFSET(ring, slot), 0x123);
    NETMAP_WOFFSET(ring, slot, 0x1fff);
    nmc_check_eq("WOFFSET masks the value", slot->ptr, 0xdead0fffu);
    NMC_TRUE(NETMAP_BUF_OFFSET(ring, slot) ==
        NETMAP_BUF(ring, slot->buf_idx) + 0xfff);
    nmc_set_offset_mask(ring, 0);
    slot->ptr = 0;

    /* NS_RFRAGS reads bits 8..15 of flags */
    slot->flags = NS_MOREFRAG | (5 << NS_PORT_SHIFT);
    nmc_check_eq("NS_RFRAGS", NS_RFRAGS(slot), 5);
    nmc_check_eq("NS_PORT_MASK bits", slot->flags & NS_PORT_MASK, 0x500);
    slot->flags = 0;
}

static void
nmc_test_pkt_copy(void)
{
    static const int lens[] = { 0, 1, 59, 60, 63, 64, 128, 960, 1000,
        1023, 1024, 1088, 2048 };
    enum { room = 4096 };
    unsigned char *src = aligned_alloc(64, room);
    unsigned char *dst = aligned_alloc(64, room);
    size_t i;
    int j;

    if (src == NULL || dst == NULL) {
        nmc_report(0, "aligned_alloc for nm_pkt_copy", 0, 1);
        free(src);
        free(dst);
        return;
    }
    for (j = 0; j < room; j++)
        src[j] = (unsigned char)(j * 7 + 3);
    for (i = 0; i < NMC_NELEM(lens); i++) {
        int l = lens[i], bad = 0;

        memset(dst, 0xaa, room);
        nm_pkt_copy(src, dst, l);
        for (j = 0; j < l; j++)
            bad += dst[j] != src[j];
        for (j = l; j < l + 64 && j < room; j++)
            bad += dst[j] != 0xaa;
        nmc_check_eq("nm_pkt_copy wrong or extra bytes", (unsigned)bad, 0);
    }
    free(src);
    free(dst);
}

static void
nmc_test_debug_macros(int demo)
{
    int evaluated = 0, i;

    ND("never printed %d", ++evaluated);
    nmc_check_eq("ND evaluates its arguments", (unsigned)evaluated, 0);
    if (!demo)
        return;
    D("nmc debug demo %d", 42);
    D("nmc debug demo without arguments");
    for (i = 0; i < 10; i++)
        RD(3, "nmc rate-limited demo %d", i);
}

static void
nmc_test_region(int demo)
{
    char *region = aligned_alloc(4096, NMC_REGION_SIZE);
    struct netmap_if *nifp;

    if (region == NULL) {
        nmc_report(0, "aligned_alloc for the test region", 0, 1);
        return;
    }
    nifp = nmc_build_region(region);
    nmc_test_addressing(region, nifp);
    nmc_test_ring_arith(NETMAP_TXRING(nifp, 0));
    nmc_test_offsets(NETMAP_RXRING(nifp, 1));
    nmc_test_pkt_copy();
    nmc_test_debug_macros(demo);
    free(region);
}

int
main(int argc, char **argv)
{
    int demo = 0, i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--print") == 0) {
            nmc_print = 1;
        } else if (strcmp(argv[i], "--demo-debug") == 0) {
            demo = 1;
        } else {
            fprintf(stderr, "usage: %s [--print] [--demo-debug]\n", argv[0]);
            return 2;
        }
    }

    nmc_check_sizes();
    nmc_check_fields();
    nmc_check_consts("constant", nmc_const_rows, NMC_NELEM(nmc_const_rows));
    if (NMC_CHECK_IOCTLS)
        nmc_check_consts("ioctl", nmc_ioctl_rows, NMC_NELEM(nmc_ioctl_rows));
    else if (nmc_print)
        printf("\nioctl values not checked on this architecture\n");
    nmc_check_strings();
    nmc_test_region(demo);

    if (nmc_failures != 0) {
        fprintf(stderr, "abi_check: FAILED, %d of %d checks\n",
            nmc_failures, nmc_checks);
        return 1;
    }
    printf("abi_check: OK, %d checks\n", nmc_checks);
    return 0;
}
