/*
 * nmd_extmem.c -- NETMAP_REQ_OPT_EXTMEM on a REGISTER: the memory the
 * program gives (nro_usrptr, nr_memsize) must be a shared mapping of a
 * file from its offset 0, the file a region's memory can be (nmcompat.h,
 * struct nmc_extmem): the engine builds the region in that file, which
 * every other process maps by the region's name, and the program keeps
 * using its own mapping.  Anonymous or private memory cannot be reached
 * by another process: EOPNOTSUPP.  The reply writes the pools made into
 * nro_info and 0 into nro_status.
 */
#include "nmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The file mapped shared at addr from its offset 0, covering len bytes:
 * its path in path; -EOPNOTSUPP if there is none. */
static int mapped_file(uint64_t addr, uint64_t len, char *path, size_t size)
{
    char line[4352], perms[8], file[4096];
    uint64_t start, end, offset, inode;
    int err = -EOPNOTSUPP;
    FILE *maps = fopen("/proc/self/maps", "re");

    if (!maps)
        return -errno;
    while (fgets(line, sizeof(line), maps)) {
        file[0] = '\0';
        if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %*s %" SCNu64 " %4095[^\n]",
                   &start, &end, perms, &offset, &inode, file) < 5 || addr < start || addr >= end)
            continue;
        if (start == addr && offset == 0 && end - start >= len && perms[3] == 's' && inode != 0 &&
            file[0] == '/' && !strstr(file, " (deleted)"))
            err = snprintf(path, size, "%s", file) < (int)size ? 0 : -ENAMETOOLONG;
        break;
    }
    fclose(maps);
    return err;
}

int nmd_extmem_read(const struct nmreq_header *h, struct nmd_extmem *x)
{
    uint64_t addr = h->nr_options;
    struct nmreq_option o;
    int err;

    for (unsigned n = 0; addr && n < NMD_MAX_OPTIONS; n++, addr = o.nro_next) {
        if ((err = nmd_copyin(&o, addr, sizeof(o))) < 0)
            return err;
        if (o.nro_reqtype != NETMAP_REQ_OPT_EXTMEM)
            continue;
        x->addr = addr;
        if ((err = nmd_copyin(&x->opt, addr, sizeof(x->opt))) < 0)
            return err;
        if (x->opt.nro_usrptr == 0 || x->opt.nro_usrptr % 4096 || x->opt.nro_info.nr_memsize == 0)
            return -EINVAL;
        if ((err = mapped_file(x->opt.nro_usrptr, x->opt.nro_info.nr_memsize, x->path,
                               sizeof(x->path))) < 0)
            return err;
        x->req = (struct nmc_extmem){
            .file = x->path, .if_num = x->opt.nro_info.nr_if_pool_objtotal,
            .if_size = x->opt.nro_info.nr_if_pool_objsize,
            .ring_num = x->opt.nro_info.nr_ring_pool_objtotal,
            .ring_size = x->opt.nro_info.nr_ring_pool_objsize,
            .buf_num = x->opt.nro_info.nr_buf_pool_objtotal,
            .buf_size = x->opt.nro_info.nr_buf_pool_objsize };
        return 1;
    }
    return 0;
}

int nmd_extmem_fill(struct nmd_extmem *x, struct nmc_port *port)
{
    struct nmreq_pools_info *pi = &x->opt.nro_info;
    struct nmc_pools_info p;
    int err;

    if ((err = nmc_port_pools(port, &p)) < 0)
        return err;
    if (p.memsize > pi->nr_memsize)
        return -EINVAL;                 /* the region is larger than the memory given */
    *pi = (struct nmreq_pools_info){
        .nr_memsize = p.memsize, .nr_mem_id = p.mem_id,
        .nr_if_pool_offset = p.if_pool_offset, .nr_if_pool_objtotal = p.if_objtotal,
        .nr_if_pool_objsize = p.if_objsize, .nr_ring_pool_offset = p.ring_pool_offset,
        .nr_ring_pool_objtotal = p.ring_objtotal, .nr_ring_pool_objsize = p.ring_objsize,
        .nr_buf_pool_offset = p.buf_pool_offset, .nr_buf_pool_objtotal = p.buf_objtotal,
        .nr_buf_pool_objsize = p.buf_objsize };
    return 0;
}

int nmd_extmem_reply(struct nmd_extmem *x, uint32_t status)
{
    if (status)                         /* the program's option as it was, but the status */
        return nmd_copyout(x->addr + offsetof(struct nmreq_option, nro_status), &status,
                           sizeof(status));
    x->opt.nro_opt.nro_status = 0;
    return nmd_copyout(x->addr, &x->opt, sizeof(x->opt));
}
