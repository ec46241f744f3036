/*
 * nm_unregif.c -- the legacy requests netmap still numbers but no longer
 * serves: NIOCUNREGIF and NIOCCONFIG answer EOPNOTSUPP on a netmap fd
 * (netmap_ioctl_legacy's default on Linux), registered or not, and the
 * port stays registered: its syncs still work.  Other requests go to the
 * kernel as for any descriptor (FIONBIO).
 */
#include "nm_test.h"

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "unr{1";
    struct nm_ifreq ifr;
    struct port p;
    int bare, on = 1;

    bare = open("/dev/netmap", O_RDWR);
    CHECK(bare >= 0, "open /dev/netmap");
    errno = 0;
    CHECK(ioctl(bare, NIOCUNREGIF, NULL) == -1 && errno == EOPNOTSUPP, "NIOCUNREGIF unbound");
    open_port(&p, name, NR_REG_ALL_NIC);
    errno = 0;
    CHECK(ioctl(p.fd, NIOCUNREGIF, NULL) == -1 && errno == EOPNOTSUPP, "NIOCUNREGIF bound");
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.nifr_name, sizeof(ifr.nifr_name), "%s", "vale0");
    errno = 0;
    CHECK(ioctl(p.fd, NIOCCONFIG, &ifr) == -1 && errno == EOPNOTSUPP, "NIOCCONFIG");
    CHECK(ioctl(p.fd, NIOCTXSYNC, NULL) == 0 && ioctl(p.fd, NIOCRXSYNC, NULL) == 0, "syncs after NIOCUNREGIF");
    CHECK(ioctl(p.fd, FIONBIO, &on) == 0, "FIONBIO");
    close(p.fd);
    close(bare);
    printf("unregif ok\n");
    return 0;
}
