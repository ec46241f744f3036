/*
 * nmreq.c -- netmap requests: the header, the option list, the mem_id of a
 * named port.  The port-name decoders are in nmreq_decode.c.
 */
#include "lnm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int lnm_fail(int err)
{
    errno = err;
    return -1;
}

void nmreq_header_init(struct nmreq_header *hdr, uint16_t reqtype, void *body)
{
    memset(hdr, 0, sizeof(*hdr));
    hdr->nr_version = NETMAP_API;
    hdr->nr_reqtype = reqtype;
    hdr->nr_body = (uintptr_t)body;
}

void nmreq_push_option(struct nmreq_header *hdr, struct nmreq_option *opt)
{
    opt->nro_next = hdr->nr_options;
    hdr->nr_options = (uintptr_t)opt;
}

void nmreq_remove_option(struct nmreq_header *hdr, struct nmreq_option *opt)
{
    uint64_t *link = &hdr->nr_options;

    while (*link != 0) {
        struct nmreq_option *o = (struct nmreq_option *)(uintptr_t)*link;
        if (o == opt) {
            *link = o->nro_next;
            o->nro_next = 0;
            return;
        }
        link = &o->nro_next;
    }
}

struct nmreq_option *nmreq_find_option(struct nmreq_header *hdr, uint32_t reqtype)
{
    struct nmreq_option *o;

    nmreq_foreach_option(hdr, o) {
        if (o->nro_reqtype == reqtype)
            return o;
    }
    return NULL;
}

void nmreq_free_options(struct nmreq_header *hdr)
{
    struct nmreq_option *o = (struct nmreq_option *)(uintptr_t)hdr->nr_options;

    while (o != NULL) {
        struct nmreq_option *next = (struct nmreq_option *)(uintptr_t)o->nro_next;
        free(o);
        o = next;
    }
    hdr->nr_options = 0;
}

const char *nmreq_option_name(uint32_t reqtype)
{
    switch (reqtype) {
    case NETMAP_REQ_OPT_EXTMEM:
        return "extmem";
    case NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS:
        return "sync-kloop-eventfds";
    case NETMAP_REQ_OPT_CSB:
        return "csb";
    case NETMAP_REQ_OPT_SYNC_KLOOP_MODE:
        return "sync-kloop-mode";
    case NETMAP_REQ_OPT_OFFSETS:
        return "offsets";
    default:
        return "unknown";
    }
}

/* PORT_INFO_GET of the name in hdr: its mem_id, or -1 (errno set). */
static int32_t port_mem_id(struct nmreq_header *hdr, const char *spec, struct nmctx *ctx)
{
    struct nmreq_port_info_get info;
    int fd, err;

    fd = open("/dev/netmap", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        err = errno;
        nmctx_ferror(ctx, "cannot open /dev/netmap: %s", strerror(err));
        return lnm_fail(err);
    }
    memset(&info, 0, sizeof(info));
    hdr->nr_reqtype = NETMAP_REQ_PORT_INFO_GET;
    hdr->nr_body = (uintptr_t)&info;
    if (ioctl(fd, NIOCCTRL, hdr) < 0) {
        err = errno;
        nmctx_ferror(ctx, "cannot get info for '%s': %s", spec, strerror(err));
        close(fd);
        return lnm_fail(err);
    }
    close(fd);
    return info.nr_mem_id;
}

int32_t nmreq_get_mem_id(const char **portname, struct nmctx *ctx)
{
    struct nmreq_header hdr;
    const char *scan;
    int32_t mem_id;

    if (portname == NULL || *portname == NULL)
        return lnm_fail(EINVAL);
    scan = *portname;
    nmreq_header_init(&hdr, NETMAP_REQ_PORT_INFO_GET, NULL);
    if (nmreq_header_decode(&scan, &hdr, ctx) < 0)
        return -1;
    mem_id = port_mem_id(&hdr, *portname, ctx);
    if (mem_id >= 0)
        *portname = scan;
    return mem_id;
}
