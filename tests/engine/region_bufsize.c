/*
 * region_bufsize.c -- a region whose header names a buffer size that is
 * not a multiple of 64 bytes (with a geometry otherwise consistent with
 * it, as another process of the user could write) is refused at attach:
 * the engine's copies round lengths up to whole 64-byte lines.
 * Usage: region_bufsize RUNDIR.  Prints "done refused=-22" when refused.
 */
#include "nmc_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <net/netmap_user.h>

int main(int argc, char **argv)
{
    struct nmc_pipe_req m = { .parent = "bufsize", .pipe_id = "1", .role = NMC_PIPE_MASTER,
                              .mode = NR_REG_ALL_NIC, .spin_us = -1 };
    struct nmc_region_hdr hdr;
    struct nmc_region r;
    struct nmc_port *p;
    char path[512];
    int fd, mem_id, err;

    if (argc != 2)
        return 2;
    m.rundir = argv[1];
    if ((err = nmc_pipe_open(&m, &p)) < 0 || (mem_id = nmc_name_mem_id(argv[1], "bufsize")) <= 0) {
        printf("couldn't open the pipe: %d\n", err < 0 ? err : mem_id);
        return 1;
    }
    if ((err = nmc_region_attach(argv[1], (uint16_t)mem_id, &r, NMC_NOLOCK)) < 0) {
        printf("couldn't attach the untouched region: %d\n", err);
        return 1;
    }
    nmc_region_detach(&r);
    snprintf(path, sizeof(path), "%s/ctl.%d", argv[1], mem_id);
    if ((fd = open(path, O_RDWR)) < 0 || pread(fd, &hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
        return 1;
    nmc_region_layout(&hdr.g, hdr.g.buf_num, 100, hdr.g.ring_num);     /* consistent, but 100 B */
    if (pwrite(fd, &hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
        ftruncate(fd, (off_t)hdr.g.ctl_size) < 0)
        return 1;
    close(fd);
    err = nmc_region_attach(argv[1], (uint16_t)mem_id, &r, NMC_NOLOCK);
    if (err == 0)
        nmc_region_detach(&r);
    printf("done refused=%d\n", err);
    return 0;
}
