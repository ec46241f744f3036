// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * nmcompat's tc programs for the host rings of a NIC port (attached
 * through TCX links by nmcompat/backends/_host.py; the engine's side is
 * csrc/transport/nic/host.c).
 *
 * - nmc_host_egress, on the interface's egress: what the host stack
 *   transmits there goes to the port's tap instead (read from the tap's
 *   descriptor into the host RX ring), so it never leaves the NIC.  Frames
 *   marked NMC_HOST_MARK pass (the port's own NIC TX, should it ever go
 *   through the qdisc layer).
 * - nmc_host_inject, on the tap's ingress: what the port writes on the
 *   host TX ring enters the interface's ingress, as if the NIC had received
 *   it, marked so that the port's NIC RX capture leaves it to the stack.
 *   An XDP program in generic (skb) mode on the interface would see it
 *   again (it cannot read the mark: docs/DESIGN.md §12) unless cfg[2] is set:
 *   then the program only marks the frame and a classic tc filter on the
 *   tap (act_mirred, nmcompat/bpf/tc_mirred.py) redirects it, which
 *   generic XDP lets pass.
 * - nmc_nic_cutoff, on the interface's ingress (AF_PACKET ports): frames
 *   of a queue whose RX ring a port binds go to the port only; marked
 *   frames pass.
 * - nmc_stack_drop, last on the interface's egress while a port binds its
 *   NIC TX rings and no host rings: the stack's frames are dropped, as
 *   netmap drops them into a host RX ring nobody reads (a host-ring port's
 *   nmc_host_egress, attached first, still takes them); marked frames pass.
 *
 * cfg[0] is the tap's ifindex, cfg[1] the interface's, cfg[2] non-zero when
 * the tap's mirred filter redirects host TX frames; cut[q] is non-zero
 * for a bound queue q.  Same rules as xsk_redirect.bpf.c: BTF maps (-g), no
 * global data, no sub-functions.  Bump NMC_PROG_VERSION with
 * HOST_DIVERT_VERSION in nmcompat/backends/_host.py.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#define NMC_PROG_VERSION 3
#define NMC_HOST_MARK 0x6e6d6801u      /* = csrc/transport/nic/nmc_nic.h */
#define NMC_CUT_MAX 256
/* TCX verdict: not this program's frame, the next program (or the stack)
 * decides.  TC_ACT_OK would end the chain: another port's program after
 * this one would never see the frame. */
#define NMC_TCX_NEXT (-1)

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*const bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*const bpf_redirect)(__u32 ifindex, __u64 flags) = (void *)23;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u32);
} cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NMC_CUT_MAX);
	__type(key, __u32);
	__type(value, __u32);
} cut SEC(".maps");

SEC("tc")
int nmc_host_egress(struct __sk_buff *skb)
{
	__u32 key = 0, *tap;

	if (skb->mark == NMC_HOST_MARK)
		return NMC_TCX_NEXT;
	tap = bpf_map_lookup_elem(&cfg, &key);
	if (!tap || !*tap)
		return NMC_TCX_NEXT;
	return (int)bpf_redirect(*tap, 0);
}

SEC("tc")
int nmc_host_inject(struct __sk_buff *skb)
{
	__u32 key = 1, key_mirred = 2, *nic, *mirred;

	nic = bpf_map_lookup_elem(&cfg, &key);
	if (!nic || !*nic)
		return TC_ACT_SHOT;
	skb->mark = NMC_HOST_MARK;
	mirred = bpf_map_lookup_elem(&cfg, &key_mirred);
	if (mirred && *mirred)
		return NMC_TCX_NEXT;
	return (int)bpf_redirect(*nic, BPF_F_INGRESS);
}

SEC("tc")
int nmc_nic_cutoff(struct __sk_buff *skb)
{
	__u32 q = skb->queue_mapping ? skb->queue_mapping - 1 : 0, *bound;

	if (skb->mark == NMC_HOST_MARK)
		return NMC_TCX_NEXT;
	q &= NMC_CUT_MAX - 1;
	bound = bpf_map_lookup_elem(&cut, &q);
	return bound && *bound ? TC_ACT_SHOT : NMC_TCX_NEXT;
}

SEC("tc")
int nmc_stack_drop(struct __sk_buff *skb)
{
	return skb->mark == NMC_HOST_MARK ? NMC_TCX_NEXT : TC_ACT_SHOT;
}

/* Read by the loader from the object file; the program never loads it. */
const __u32 nmc_prog_version SEC("nmc_meta") = NMC_PROG_VERSION;

char _license[] SEC("license") = "Dual BSD/GPL";
