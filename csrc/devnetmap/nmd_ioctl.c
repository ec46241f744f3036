/*
 * nmd_ioctl.c -- ioctl on an emulated descriptor: NIOCCTRL, the legacy
 * NIOCREGIF/NIOCGINFO (turned into their NIOCCTRL requests as netmap's
 * netmap_legacy.c does), NIOCTXSYNC/NIOCRXSYNC; any other request of
 * netmap's type 'i' (NIOCUNREGIF, NIOCCONFIG) is EOPNOTSUPP, as netmap's
 * netmap_ioctl_legacy answers on Linux (NIOCCONFIG goes to external VALE
 * modules, of which there are none here); anything else goes to the real
 * descriptor (FIONBIO, FIOCLEX...), as the kernel's VFS serves those itself.
 */
#include "nmd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

/* The request, then its option chain.  A REGISTER of an unbound fd with
 * options keeps a dup of fd's /dev/null description until the chain is
 * done: an option nobody served undoes the registration with it, which
 * then needs no descriptor (without one to keep, EMFILE before serving). */
static bool has_option(const struct nmd_opts *opts, uint32_t type)
{
    for (unsigned i = 0; i < opts->n; i++)
        if (opts->hdr[i].nro_reqtype == type)
            return true;
    return false;
}

static int serve(int fd, struct nmd_file *f, struct nmreq_header *h, struct nmd_opts *opts, void *body)
{
    bool undoable = h->nr_reqtype == NETMAP_REQ_REGISTER && !f->port && opts->n > 0;
    int null, served, err;

    if (h->nr_reqtype == NETMAP_REQ_CSB_ENABLE && !has_option(opts, NETMAP_REQ_OPT_CSB))
        return -EINVAL;                 /* netmap.c: CSB_ENABLE needs the CSB option */
    null = undoable ? nmd_real.fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
    if (undoable && null < 0)
        return nmd_opts_finish(h, opts, -errno);
    served = nmd_ctrl(fd, f, h, body);  /* 0 for a REGISTER: this call bound f */
    err = nmd_opts_finish(h, opts, served);
    if (err == -EOPNOTSUPP && undoable && served == 0)
        nmd_unbind(fd, f, null);        /* an option nobody served: the registration is undone */
    else if (null >= 0)
        nmd_real.close(null);
    return err;
}

/* NIOCCTRL: the header is written back whatever the outcome (as Linux
 * netmap does), the body only on success. */
static int ctrl(int fd, struct nmd_file *f, uint64_t uhdr)
{
    struct nmreq_header h;
    struct nmd_opts opts;
    union {
        struct nmreq_register reg;
        struct nmreq_vale_attach attach;
        struct nmreq_pools_info pools;
        uint8_t any[128];
    } body;
    size_t size;
    int err, werr;

    if ((err = nmd_copyin(&h, uhdr, sizeof(h))) < 0)
        return err;
    memset(&body, 0, sizeof(body));
    err = nmd_req_check(&h, &opts);
    size = err < 0 ? 0 : nmd_body_size(h.nr_reqtype);
    if (err == 0 && size)
        err = nmd_copyin(&body, h.nr_body, size);
    if (err == 0)
        err = serve(fd, f, &h, &opts, &body);
    if (err == 0 && size)
        err = nmd_copyout(h.nr_body, &body, size);
    werr = nmd_copyout(uhdr, &h, sizeof(h));
    return err < 0 ? err : werr;
}

/* The legacy request as a NIOCCTRL REGISTER (netmap_legacy.c). */
static int legacy_register(int fd, struct nmd_file *f, struct nmreq *nr)
{
    struct nmreq_header h = { .nr_version = NETMAP_API, .nr_reqtype = NETMAP_REQ_REGISTER };
    struct nmreq_register reg = {
        .nr_tx_slots = nr->nr_tx_slots, .nr_rx_slots = nr->nr_rx_slots,
        .nr_tx_rings = nr->nr_tx_rings, .nr_rx_rings = nr->nr_rx_rings,
        .nr_mem_id = nr->nr_arg2, .nr_extra_bufs = nr->nr_arg3,
        .nr_ringid = nr->nr_ringid & NETMAP_RING_MASK,
        .nr_mode = nr->nr_flags & NR_REG_MASK,
        .nr_flags = nr->nr_flags & ~(uint32_t)NR_REG_MASK,
    };
    char name[IFNAMSIZ + 1];
    int err, n;

    memcpy(name, nr->nr_name, IFNAMSIZ);
    name[IFNAMSIZ] = '\0';
    if (reg.nr_mode == NR_REG_DEFAULT)
        reg.nr_mode = (nr->nr_ringid & NETMAP_SW_RING) ? NR_REG_SW :
                      (nr->nr_ringid & NETMAP_HW_RING) ? NR_REG_ONE_NIC : NR_REG_ALL_NIC;
    if (reg.nr_mode == NR_REG_PIPE_MASTER || reg.nr_mode == NR_REG_PIPE_SLAVE) {
        n = snprintf(h.nr_name, sizeof(h.nr_name), "%s%c%u", name,
                     reg.nr_mode == NR_REG_PIPE_MASTER ? '{' : '}', (unsigned)reg.nr_ringid);
        if (n < 0 || (size_t)n >= sizeof(h.nr_name))
            return -ENOBUFS;
        reg.nr_mode = NR_REG_ALL_NIC;
        reg.nr_ringid = 0;
    } else {
        snprintf(h.nr_name, sizeof(h.nr_name), "%s", name);
    }
    if (nr->nr_ringid & NETMAP_NO_TX_POLL)
        reg.nr_flags |= NR_NO_TX_POLL;
    if ((err = nmd_ctrl(fd, f, &h, &reg)) < 0)
        return err;
    nr->nr_offset = (uint32_t)reg.nr_offset;
    nr->nr_memsize = (uint32_t)reg.nr_memsize;
    nr->nr_tx_slots = reg.nr_tx_slots;
    nr->nr_rx_slots = reg.nr_rx_slots;
    nr->nr_tx_rings = reg.nr_tx_rings;
    nr->nr_rx_rings = reg.nr_rx_rings;
    nr->nr_arg2 = reg.nr_mem_id;
    nr->nr_arg3 = reg.nr_extra_bufs;
    return 0;
}

static int legacy_info(int fd, struct nmd_file *f, struct nmreq *nr)
{
    struct nmreq_header h = { .nr_version = NETMAP_API, .nr_reqtype = NETMAP_REQ_PORT_INFO_GET };
    struct nmreq_port_info_get pi = { .nr_mem_id = nr->nr_arg2 };
    int err;

    memcpy(h.nr_name, nr->nr_name, IFNAMSIZ);
    h.nr_name[IFNAMSIZ] = '\0';
    if ((err = nmd_ctrl(fd, f, &h, &pi)) < 0)
        return err;
    nr->nr_memsize = (uint32_t)pi.nr_memsize;
    nr->nr_tx_slots = pi.nr_tx_slots;
    nr->nr_rx_slots = pi.nr_rx_slots;
    nr->nr_tx_rings = pi.nr_tx_rings;
    nr->nr_rx_rings = pi.nr_rx_rings;
    nr->nr_arg2 = pi.nr_mem_id;
    return 0;
}

/* NIOCGINFO with NETMAP_BDG_LIST: VALE_LIST (nr_arg1 the switch, nr_arg2
 * the port; the name written back). */
static int legacy_list(int fd, struct nmd_file *f, struct nmreq *nr)
{
    struct nmreq_header h = { .nr_version = NETMAP_API, .nr_reqtype = NETMAP_REQ_VALE_LIST };
    struct nmreq_vale_list l = { .nr_bridge_idx = nr->nr_arg1, .nr_port_idx = nr->nr_arg2 };
    int err;

    memcpy(h.nr_name, nr->nr_name, IFNAMSIZ);
    h.nr_name[IFNAMSIZ] = '\0';
    if ((err = nmd_ctrl(fd, f, &h, &l)) < 0)
        return err;
    if (strlen(h.nr_name) >= IFNAMSIZ)
        return -ENOBUFS;
    memcpy(nr->nr_name, h.nr_name, IFNAMSIZ);
    nr->nr_arg1 = l.nr_bridge_idx;
    nr->nr_arg2 = (uint16_t)l.nr_port_idx;
    return 0;
}

int nmd_legacy(int fd, struct nmd_file *f, unsigned long req, struct nmreq *nr)
{
    if (nr->nr_version < NETMAP_API)
        return -EINVAL;
    if (req == NIOCGINFO && nr->nr_cmd == NETMAP_BDG_LIST)
        return legacy_list(fd, f, nr);
    if (nr->nr_cmd != 0)
        return -EOPNOTSUPP;             /* the other NETMAP_BDG_* through the legacy API: not yet */
    return req == NIOCREGIF ? legacy_register(fd, f, nr) : legacy_info(fd, f, nr);
}

static int legacy(int fd, struct nmd_file *f, unsigned long req, uint64_t uaddr)
{
    struct nmreq nr;
    int err;

    if ((err = nmd_copyin(&nr, uaddr, sizeof(nr))) < 0)
        return err;
    if ((err = nmd_legacy(fd, f, req, &nr)) < 0)
        return err;
    return nmd_copyout(uaddr, &nr, sizeof(nr));
}

/* A sync: ENXIO before REGISTER; a ring netmap's reinit repaired is not an
 * error of the ioctl (poll reports it as POLLERR). */
static int sync_one(struct nmd_file *f, bool tx)
{
    int err;

    if (!f->port)
        return -ENXIO;
    err = tx ? nmc_txsync(f->port) : nmc_rxsync(f->port);
    return err == -EINVAL ? 0 : (err < 0 ? err : 0);
}

/* 0 or -errno; 1: not an emulated request, the caller passes it on. */
int nmd_ioctl(int fd, struct nmd_file *f, unsigned long req, void *arg)
{
    switch (req) {
    case NIOCTXSYNC:
        return sync_one(f, true);
    case NIOCRXSYNC:
        return sync_one(f, false);
    case NIOCCTRL:
        return ctrl(fd, f, (uint64_t)(uintptr_t)arg);
    case NIOCREGIF:
    case NIOCGINFO:
        return legacy(fd, f, req, (uint64_t)(uintptr_t)arg);
    default:
        return _IOC_TYPE(req) == 'i' ? -EOPNOTSUPP : 1;
    }
}
