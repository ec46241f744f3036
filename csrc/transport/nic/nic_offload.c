/*
 * nic_offload.c -- can an interface hand its packet taps frames longer
 * than its MTU?  It can when it aggregates what it receives (GRO, hardware
 * GRO, LRO) or lets segments through unsegmented (any segmentation offload,
 * or GSO lists: on a veth its peer's stack then sends frames of up to
 * 64 KiB across whole; this end's own are taken to stand for the peer's,
 * which it cannot see).
 *
 * Read through ethtool's feature words (ETHTOOL_GFEATURES), each feature
 * found by its name in the ETH_SS_FEATURES string set, so that hardware GRO
 * is seen too (virtio-net reports the host's large frames that way; the
 * legacy GGRO and GFLAGS gets cover only software GRO and LRO).  On the
 * socket the caller has (its namespace names the interface), no privilege
 * needed.
 */
#include "nmc_nic.h"

#include <errno.h>
#include <stddef.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

/* The features that let a frame longer than the MTU reach the taps: these,
 * and every segmentation offload (tx-*-segmentation: TCP, TCP6, UDP, SCTP,
 * tunnels...), which a veth's peer would pass across unsegmented. */
static const char *const aggregating[] = { "rx-gro", "rx-gro-hw", "rx-lro", "tx-gso-list" };
#define SEG_PREFIX "tx-"
#define SEG_SUFFIX "-segmentation"

static int ethtool(int fd, const char *ifname, void *data)
{
    struct ifreq ifr;

    memset(&ifr, 0, sizeof(ifr));
    nmc_copy_name(ifr.ifr_name, sizeof(ifr.ifr_name), ifname);
    ifr.ifr_data = data;
    return ioctl(fd, SIOCETHTOOL, &ifr) < 0 ? -errno : 0;
}

/* How many features the kernel names (0 when it cannot say). */
static uint32_t feature_count(int fd, const char *ifname)
{
    uint8_t buf[sizeof(struct ethtool_sset_info) + sizeof(uint32_t)] __attribute__((aligned(8)));
    struct ethtool_sset_info *info = (void *)buf;
    uint32_t count;

    memset(buf, 0, sizeof(buf));
    info->cmd = ETHTOOL_GSSET_INFO;
    info->sset_mask = 1ull << ETH_SS_FEATURES;
    if (ethtool(fd, ifname, info) < 0 || !(info->sset_mask & (1ull << ETH_SS_FEATURES)))
        return 0;
    memcpy(&count, buf + offsetof(struct ethtool_sset_info, data), sizeof(count));
    return count;
}

static bool is_aggregating(const char *name)
{
    size_t len = strlen(name), pre = strlen(SEG_PREFIX), suf = strlen(SEG_SUFFIX);

    for (size_t i = 0; i < sizeof(aggregating) / sizeof(aggregating[0]); i++)
        if (strcmp(name, aggregating[i]) == 0)
            return true;
    return len > pre + suf && strncmp(name, SEG_PREFIX, pre) == 0 &&
           strcmp(name + len - suf, SEG_SUFFIX) == 0;
}

/* 1 when a feature is_aggregating() names is active, 0 when none is, -errno when
 * the kernel could not say. */
static int any_active(int fd, const char *ifname, uint32_t n)
{
    uint32_t words = (n + 31) / 32;
    struct ethtool_gstrings *names = calloc(1, sizeof(*names) + (size_t)n * ETH_GSTRING_LEN);
    struct ethtool_gfeatures *feat = calloc(1, sizeof(*feat) + words * sizeof(feat->features[0]));
    int err = -ENOMEM;

    if (!names || !feat)
        goto out;
    names->cmd = ETHTOOL_GSTRINGS;
    names->string_set = ETH_SS_FEATURES;
    names->len = n;
    feat->cmd = ETHTOOL_GFEATURES;
    feat->size = words;
    if ((err = ethtool(fd, ifname, names)) < 0 || (err = ethtool(fd, ifname, feat)) < 0)
        goto out;
    err = names->len != n || feat->size < words ? -EIO : 0;    /* a short answer says nothing */
    for (uint32_t i = 0; i < n && err == 0; i++) {
        char name[ETH_GSTRING_LEN + 1];
        memcpy(name, names->data + (size_t)i * ETH_GSTRING_LEN, ETH_GSTRING_LEN);
        name[ETH_GSTRING_LEN] = 0;
        if (is_aggregating(name) && (feat->features[i / 32].active & (1u << (i % 32))))
            err = 1;
    }
out:
    free(names);
    free(feat);
    return err;
}

bool nmc_nic_aggregates(int fd, const char *ifname)
{
    uint32_t n = feature_count(fd, ifname);

    return n == 0 || any_active(fd, ifname, n) != 0;      /* unknown: assume it does */
}
