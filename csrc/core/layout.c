/*
 * layout.c -- the layout stamp of the structures processes share.
 *
 * Every size and offset the engine relies on in the control file and in
 * the netmap memory, plus the constants that size the tables, is a
 * compile-time constant; their hash is stamped in each region header when
 * the region is created.  A build whose hash differs refuses to attach
 * (-EPROTO) instead of reading another build's structures with its own.
 */
#include "nmc_int.h"

#include <sys/time.h>

#define FIELD(type, f)  offsetof(type, f), sizeof(((type *)0)->f)

static const uint64_t facts[] = {
    NMC_REGION_MAGIC, NMC_REGION_VERSION, NMC_MAX_HOLDERS, NMC_MAX_PORTS, NMC_MAXSLOTS,
    NMC_DEF_RING_NUM, NMC_IF_UNIT, NMC_IF_UNITS, NMC_NAMELEN, NMC_LOCK_BASE, NMC_HOLDER_LOCK_BYTES, NMC_PAGE,
    NMC_SLEEP_WORDS, NMC_MAX_LEASES, NMC_PIPE_MAXRINGS, NMC_CLAIM_BITS, NMC_RING_LEAD,

    sizeof(struct nmc_region_hdr),
    FIELD(struct nmc_region_hdr, magic), FIELD(struct nmc_region_hdr, layout),
    FIELD(struct nmc_region_hdr, version), FIELD(struct nmc_region_hdr, mem_id),
    FIELD(struct nmc_region_hdr, g), FIELD(struct nmc_region_hdr, buf_hint),
    FIELD(struct nmc_region_hdr, buf_free), FIELD(struct nmc_region_hdr, opens),
    FIELD(struct nmc_region_hdr, reap_cursor), FIELD(struct nmc_region_hdr, spare),
    FIELD(struct nmc_region_hdr, extmem),

    sizeof(struct nmc_geom),
    FIELD(struct nmc_geom, ctl_size), FIELD(struct nmc_geom, memsize),
    FIELD(struct nmc_geom, holders_ofs), FIELD(struct nmc_geom, ports_ofs),
    FIELD(struct nmc_geom, krings_ofs), FIELD(struct nmc_geom, if_map_ofs),
    FIELD(struct nmc_geom, ring_map_ofs), FIELD(struct nmc_geom, buf_map_ofs),
    FIELD(struct nmc_geom, claim_map_ofs), FIELD(struct nmc_geom, claim_shift),
    FIELD(struct nmc_geom, if_pool_ofs), FIELD(struct nmc_geom, ring_pool_ofs),
    FIELD(struct nmc_geom, buf_pool_ofs), FIELD(struct nmc_geom, if_units),
    FIELD(struct nmc_geom, ring_num), FIELD(struct nmc_geom, ring_size),
    FIELD(struct nmc_geom, buf_num), FIELD(struct nmc_geom, buf_size),

    sizeof(struct nmc_holder),
    FIELD(struct nmc_holder, state), FIELD(struct nmc_holder, pid), FIELD(struct nmc_holder, port),
    FIELD(struct nmc_holder, end), FIELD(struct nmc_holder, nifp_unit),
    FIELD(struct nmc_holder, nifp_units), FIELD(struct nmc_holder, mode),
    FIELD(struct nmc_holder, ringid), FIELD(struct nmc_holder, flags),
    FIELD(struct nmc_holder, first), FIELD(struct nmc_holder, last),
    FIELD(struct nmc_holder, extra_bufs), FIELD(struct nmc_holder, fill_target),
    FIELD(struct nmc_holder, bells_pending),
    FIELD(struct nmc_holder, gen),

    sizeof(struct nmc_port_rec),
    FIELD(struct nmc_port_rec, state), FIELD(struct nmc_port_rec, kind),
    FIELD(struct nmc_port_rec, parent), FIELD(struct nmc_port_rec, pipe_id),
    FIELD(struct nmc_port_rec, nends), FIELD(struct nmc_port_rec, persistent),
    FIELD(struct nmc_port_rec, nrings), FIELD(struct nmc_port_rec, nslots),
    FIELD(struct nmc_port_rec, first_obj), FIELD(struct nmc_port_rec, sw),
    FIELD(struct nmc_port_rec, sw_port), FIELD(struct nmc_port_rec, attach_gen),
    FIELD(struct nmc_port_rec, nhost), FIELD(struct nmc_port_rec, nic_shm_ino),
    FIELD(struct nmc_port_rec, nic_netns), FIELD(struct nmc_port_rec, nic_ifindex),
    FIELD(struct nmc_port_rec, nic_shm_fds),
    FIELD(struct nmc_port_rec, gen), FIELD(struct nmc_port_rec, mon_port),
    FIELD(struct nmc_port_rec, mon_end), FIELD(struct nmc_port_rec, mon_flags),
    FIELD(struct nmc_port_rec, mon_gen),

    sizeof(struct nmc_kring),
    FIELD(struct nmc_kring, hwcur), FIELD(struct nmc_kring, hwtail), FIELD(struct nmc_kring, rhead),
    FIELD(struct nmc_kring, rcur), FIELD(struct nmc_kring, rtail), FIELD(struct nmc_kring, busy),
    FIELD(struct nmc_kring, nslots), FIELD(struct nmc_kring, peer), FIELD(struct nmc_kring, dir),
    FIELD(struct nmc_kring, end), FIELD(struct nmc_kring, users), FIELD(struct nmc_kring, nmon),
    FIELD(struct nmc_kring, mon_epoch),
    FIELD(struct nmc_kring, mon),
    FIELD(struct nmc_kring, owner_tag), FIELD(struct nmc_kring, owner_start),
    FIELD(struct nmc_kring, bias), FIELD(struct nmc_kring, bias_gone),
    FIELD(struct nmc_kring, bias_in), FIELD(struct nmc_kring, bias_off),
    FIELD(struct nmc_kring, pipe_tail), FIELD(struct nmc_kring, sleepers),
    FIELD(struct nmc_kring, fenced_wake),
    FIELD(struct nmc_kring, pkts), FIELD(struct nmc_kring, bytes),
    FIELD(struct nmc_kring, reinits), FIELD(struct nmc_kring, lease_lock),
    FIELD(struct nmc_kring, lock_ready), FIELD(struct nmc_kring, kgen),
    FIELD(struct nmc_kring, hwlease), FIELD(struct nmc_kring, lease_first),
    FIELD(struct nmc_kring, lease_count), FIELD(struct nmc_kring, lease_init),
    FIELD(struct nmc_kring, leases),
    sizeof(struct nmc_lease),
    FIELD(struct nmc_lease, start), FIELD(struct nmc_lease, end), FIELD(struct nmc_lease, done),
    FIELD(struct nmc_lease, owner_mem), FIELD(struct nmc_lease, owner_h),
    FIELD(struct nmc_lease, checks), FIELD(struct nmc_lease, pid), FIELD(struct nmc_lease, pidns),

    sizeof(struct netmap_if),
    FIELD(struct netmap_if, ni_name), FIELD(struct netmap_if, ni_version),
    FIELD(struct netmap_if, ni_flags), FIELD(struct netmap_if, ni_tx_rings),
    FIELD(struct netmap_if, ni_rx_rings), FIELD(struct netmap_if, ni_bufs_head),
    FIELD(struct netmap_if, ni_host_tx_rings), FIELD(struct netmap_if, ni_host_rx_rings),
    offsetof(struct netmap_if, ring_ofs), sizeof(ssize_t),

    sizeof(struct netmap_ring),
    FIELD(struct netmap_ring, buf_ofs), FIELD(struct netmap_ring, num_slots),
    FIELD(struct netmap_ring, nr_buf_size), FIELD(struct netmap_ring, ringid),
    FIELD(struct netmap_ring, dir), FIELD(struct netmap_ring, head), FIELD(struct netmap_ring, cur),
    FIELD(struct netmap_ring, tail), FIELD(struct netmap_ring, flags), FIELD(struct netmap_ring, ts),
    FIELD(struct netmap_ring, offset_mask), FIELD(struct netmap_ring, buf_align),
    offsetof(struct netmap_ring, slot),

    sizeof(struct netmap_slot),
    FIELD(struct netmap_slot, buf_idx), FIELD(struct netmap_slot, len),
    FIELD(struct netmap_slot, flags), FIELD(struct netmap_slot, ptr),
};

/* FNV-1a over the facts, 64 bits at a time. */
uint64_t nmc_layout_hash(void)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < sizeof(facts) / sizeof(facts[0]); i++)
        for (int b = 0; b < 64; b += 8) {
            h ^= (facts[i] >> b) & 0xff;
            h *= 0x100000001b3ULL;
        }
    return h;
}

uint64_t nmc_layout_stamp(void)
{
    return nmc_layout_hash();
}

int nmc_abi_version(void)
{
    return NMC_ABI_VERSION;
}
