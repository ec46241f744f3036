/*
 * nm_infoid.c -- a program may register with the memory id an information
 * request gave for a port nobody held yet (netmap's pipes and VALE ports
 * keep that id): PORT_INFO_GET then REGISTER with its nr_mem_id, and the
 * legacy NIOCGINFO then NIOCREGIF with the same struct, as netmap's older
 * programs do; the two ends of the pipe then meet.  An id no request gave
 * stays EINVAL.
 */
#include "nm_test.h"

static void info_then_register(const char *name, const char *peer_name, int same_region)
{
    struct nmreq_port_info_get pi;
    struct nmreq_register reg;
    struct port peer;
    int fd = open("/dev/netmap", O_RDWR);

    CHECK(fd >= 0, "open /dev/netmap");
    memset(&pi, 0, sizeof(pi));
    CHECK(ctrl(fd, name, NETMAP_REQ_PORT_INFO_GET, &pi, 0) == 0 && pi.nr_mem_id != 0, "PORT_INFO_GET %s", name);
    memset(&reg, 0, sizeof(reg));
    reg.nr_mode = NR_REG_ALL_NIC;
    reg.nr_mem_id = pi.nr_mem_id;
    CHECK(ctrl(fd, name, NETMAP_REQ_REGISTER, &reg, 0) == 0, "REGISTER %s with mem id %u", name, pi.nr_mem_id);
    open_port(&peer, peer_name, NR_REG_ALL_NIC);
    CHECK(!same_region || peer.reg.nr_mem_id == reg.nr_mem_id, "a pipe's ends share a region (%u, %u)",
          peer.reg.nr_mem_id, reg.nr_mem_id);
    close(peer.fd);
    close(fd);
}

static void legacy_info_then_regif(const char *name)
{
    struct nmreq nmr;
    int fd = open("/dev/netmap", O_RDWR);

    CHECK(fd >= 0, "open /dev/netmap");
    memset(&nmr, 0, sizeof(nmr));
    snprintf(nmr.nr_name, sizeof(nmr.nr_name), "%s", name);
    nmr.nr_version = NETMAP_API;
    nmr.nr_flags = NR_REG_ALL_NIC;
    CHECK(ioctl(fd, NIOCGINFO, &nmr) == 0 && nmr.nr_arg2 != 0, "NIOCGINFO %s", name);
    CHECK(ioctl(fd, NIOCREGIF, &nmr) == 0, "NIOCREGIF %s after NIOCGINFO (mem id %u)", name, nmr.nr_arg2);
    CHECK(ioctl(fd, NIOCTXSYNC, NULL) == 0, "txsync");
    close(fd);
}

static void unknown_id_is_einval(const char *name)
{
    struct nmreq_register reg;
    int fd = open("/dev/netmap", O_RDWR);

    CHECK(fd >= 0, "open /dev/netmap");
    memset(&reg, 0, sizeof(reg));
    reg.nr_mode = NR_REG_ALL_NIC;
    reg.nr_mem_id = 60000;
    errno = 0;
    CHECK(ctrl(fd, name, NETMAP_REQ_REGISTER, &reg, 0) == -1 && errno == EINVAL, "an unknown mem id");
    close(fd);
}

int main(void)
{
    info_then_register("ii{1", "ii}1", 1);
    info_then_register("valeii:a", "valeii:b", 0);   /* a VALE port has a region of its own */
    legacy_info_then_regif("lg{3");
    unknown_id_is_einval("uk{1");
    printf("infoid ok\n");
    return 0;
}
