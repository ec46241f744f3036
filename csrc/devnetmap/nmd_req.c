/*
 * nmd_req.c -- a NIOCCTRL request read in and checked as netmap checks it
 * (netmap.md section 1.9), before any of it is served:
 *
 *  - nr_version within [NETMAP_MIN_API, NETMAP_MAX_API], nr_reserved 0,
 *    a known nr_reqtype, and nr_body given exactly when the type has one:
 *    EINVAL otherwise;
 *  - the option chain: an option type below 1, or one given twice, is
 *    EINVAL (its nro_status says so); body plus options over
 *    NETMAP_REQ_MAXSIZE bytes, or a chain that loops, is EMSGSIZE;
 *  - every option's nro_status starts as EOPNOTSUPP; one still at it when
 *    the request is done fails the request with EOPNOTSUPP.
 *
 * The program's memory is read and written with process_vm_readv/writev on
 * ourselves, so a bad pointer is EFAULT, as from the kernel, not a crash.
 */
#include "nmd.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

static int vm_copy(bool out, uint64_t uaddr, void *buf, size_t len)
{
    struct iovec local = { .iov_base = buf, .iov_len = len };
    struct iovec remote = { .iov_base = (void *)(uintptr_t)uaddr, .iov_len = len };
    ssize_t n;

    if (len == 0)
        return 0;
    if (uaddr == 0)
        return -EFAULT;
    n = out ? process_vm_writev(getpid(), &local, 1, &remote, 1, 0)
            : process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
    return n == (ssize_t)len ? 0 : -EFAULT;
}

int nmd_copyin(void *dst, uint64_t uaddr, size_t len)
{
    return vm_copy(false, uaddr, dst, len);
}

int nmd_copyout(uint64_t uaddr, const void *src, size_t len)
{
    return vm_copy(true, uaddr, (void *)src, len);
}

/* The body size of a request type; 0 for the types without a body, and
 * (size_t)-1 for an unknown type. */
size_t nmd_body_size(uint16_t reqtype)
{
    switch (reqtype) {
    case NETMAP_REQ_REGISTER:               return sizeof(struct nmreq_register);
    case NETMAP_REQ_PORT_INFO_GET:          return sizeof(struct nmreq_port_info_get);
    case NETMAP_REQ_VALE_ATTACH:            return sizeof(struct nmreq_vale_attach);
    case NETMAP_REQ_VALE_DETACH:            return sizeof(struct nmreq_vale_detach);
    case NETMAP_REQ_VALE_LIST:              return sizeof(struct nmreq_vale_list);
    case NETMAP_REQ_PORT_HDR_SET:
    case NETMAP_REQ_PORT_HDR_GET:           return sizeof(struct nmreq_port_hdr);
    case NETMAP_REQ_VALE_NEWIF:             return sizeof(struct nmreq_vale_newif);
    case NETMAP_REQ_VALE_POLLING_ENABLE:
    case NETMAP_REQ_VALE_POLLING_DISABLE:   return sizeof(struct nmreq_vale_polling);
    case NETMAP_REQ_POOLS_INFO_GET:         return sizeof(struct nmreq_pools_info);
    case NETMAP_REQ_SYNC_KLOOP_START:       return sizeof(struct nmreq_sync_kloop_start);
    case NETMAP_REQ_VALE_DELIF:
    case NETMAP_REQ_SYNC_KLOOP_STOP:
    case NETMAP_REQ_CSB_ENABLE:             return 0;
    default:                                return (size_t)-1;
    }
}

/* What an option occupies: its header plus the body its type has (the
 * eventfds option says its size in nro_size; an unknown type, nothing). */
static uint64_t option_size(const struct nmreq_option *o)
{
    uint64_t body;

    switch (o->nro_reqtype) {
    case NETMAP_REQ_OPT_EXTMEM:             body = sizeof(struct nmreq_opt_extmem); break;
    case NETMAP_REQ_OPT_CSB:                body = sizeof(struct nmreq_opt_csb); break;
    case NETMAP_REQ_OPT_SYNC_KLOOP_MODE:    body = sizeof(struct nmreq_opt_sync_kloop_mode); break;
    case NETMAP_REQ_OPT_OFFSETS:            body = sizeof(struct nmreq_opt_offsets); break;
    case NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS:
        return sizeof(*o) + (o->nro_size < NETMAP_REQ_MAXSIZE ? o->nro_size : NETMAP_REQ_MAXSIZE);
    default:                                return sizeof(*o);
    }
    return body;                            /* these structs begin with the header */
}

static int set_status(struct nmd_opts *o, unsigned i, uint32_t status)
{
    o->hdr[i].nro_status = status;
    return nmd_copyout(o->addr[i] + offsetof(struct nmreq_option, nro_status), &status, sizeof(status));
}

/* Read the chain in, as netmap's nmreq_copyin: first its size (over
 * NETMAP_REQ_MAXSIZE with the body, or looping: EMSGSIZE), then each
 * option's type (below 1 or given twice: EINVAL in that option's status);
 * every status then EOPNOTSUPP. */
static int read_options(const struct nmreq_header *h, struct nmd_opts *o, uint64_t total)
{
    uint64_t addr = h->nr_options;
    int err;

    o->n = 0;
    for (; addr; addr = o->hdr[o->n - 1].nro_next) {
        unsigned i = o->n;
        if (i == NMD_MAX_OPTIONS)
            return -EMSGSIZE;           /* cannot fit: each option is at least its header */
        for (unsigned k = 0; k < i; k++)
            if (o->addr[k] == addr)
                return -EMSGSIZE;       /* the chain loops */
        if ((err = nmd_copyin(&o->hdr[i], addr, sizeof(o->hdr[i]))) < 0)
            return err;
        o->addr[i] = addr;
        o->n++;
        if ((total += option_size(&o->hdr[i])) > NETMAP_REQ_MAXSIZE)
            return -EMSGSIZE;
    }
    for (unsigned i = 0; i < o->n; i++) {
        if (o->hdr[i].nro_reqtype < 1) {
            set_status(o, i, EINVAL);
            return -EINVAL;
        }
        for (unsigned k = 0; k < i; k++)
            if (o->hdr[k].nro_reqtype == o->hdr[i].nro_reqtype) {
                set_status(o, i, EINVAL);
                return -EINVAL;
            }
    }
    for (unsigned i = 0; i < o->n; i++)
        if ((err = set_status(o, i, EOPNOTSUPP)) < 0)
            return err;
    return 0;
}

int nmd_req_check(const struct nmreq_header *h, struct nmd_opts *o)
{
    size_t body = nmd_body_size(h->nr_reqtype);

    o->n = 0;
    if (h->nr_version < NETMAP_MIN_API || h->nr_version > NETMAP_MAX_API || h->nr_reserved)
        return -EINVAL;
    if (body == (size_t)-1 || (body > 0) != (h->nr_body != 0))
        return -EINVAL;
    return read_options(h, o, body);
}

/* After serving: an option nobody recognised (its nro_status in the
 * program's chain still EOPNOTSUPP: a served one was answered there, as
 * NETMAP_REQ_OPT_EXTMEM is by nmd_extmem.c) fails the request. */
int nmd_opts_finish(const struct nmreq_header *h, struct nmd_opts *o, int err)
{
    uint32_t status;

    (void)h;
    if (err < 0)
        return err;
    for (unsigned i = 0; i < o->n; i++) {
        if (nmd_copyin(&status, o->addr[i] + offsetof(struct nmreq_option, nro_status),
                       sizeof(status)) < 0)
            status = o->hdr[i].nro_status;
        if (status == EOPNOTSUPP)
            return -EOPNOTSUPP;
    }
    return 0;
}
