// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * nmcompat's XDP program for the AF_XDP backend.
 *
 * Every frame received on queue N is redirected to the AF_XDP socket stored
 * at key N of the XSKMAP "xsks".  A queue with no socket in the map passes
 * its frames to the host stack (the low bits of bpf_redirect_map()'s flags
 * are the verdict used when the key is empty, kernel >= 5.3): netmap leaves
 * unbound queues to the host stack too.
 *
 * Two copies of the program are built, identical but for their section:
 * "xdp" and "xdp.frags".  The loader (nmcompat.bpf) prefers the second,
 * loaded with BPF_F_XDP_HAS_FRAGS, on kernels that accept that flag (5.18+),
 * so multi-buffer frames reach sockets bound with XDP_USE_SG.
 *
 * Map definitions are BTF-defined (the ".maps" section): build with -g.
 * The program must use no global data and no sub-functions (everything
 * inlined): the loader relocates map references only.
 *
 * Bump NMC_PROG_VERSION whenever the behaviour or the map layout changes,
 * together with XSK_REDIRECT_VERSION in nmcompat/bpf/loader.py.
 */
#include <linux/types.h>
#include <linux/bpf.h>

#define NMC_PROG_VERSION 1
#define NMC_XSKS_MAX 64

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
#define NMC_INLINE inline __attribute__((always_inline))

/* Helper 51, declared the way the kernel's helper table numbers it. */
static long (*const bpf_redirect_map)(void *map, __u64 key, __u64 flags) = (void *)51;

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, NMC_XSKS_MAX);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

static NMC_INLINE int nmc_redirect(struct xdp_md *ctx)
{
	return (int)bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

SEC("xdp")
int nmc_xsk_redir(struct xdp_md *ctx)
{
	return nmc_redirect(ctx);
}

SEC("xdp.frags")
int nmc_xsk_frags(struct xdp_md *ctx)
{
	return nmc_redirect(ctx);
}

/* Read by the loader from the object file; the program never loads it. */
const __u32 nmc_prog_version SEC("nmc_meta") = NMC_PROG_VERSION;

char _license[] SEC("license") = "Dual BSD/GPL";
