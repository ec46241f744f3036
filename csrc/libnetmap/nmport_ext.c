/*
 * nmport_ext.c -- what a descriptor may carry besides its name: memory
 * given by the program (NETMAP_REQ_OPT_EXTMEM, from a pointer or a mapped
 * file), per-slot offsets (NETMAP_REQ_OPT_OFFSETS), and which portspec
 * options nmport_parse() accepts.  Each option goes into the request's
 * chain; /dev/netmap answers for it at REGISTER (nro_status), and a
 * refusal fails the registration with that errno and a message.
 */
#include "lnm.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void drop_extmem(struct nmport_cleanup_d *c, struct nmport_d *d)
{
    (void)c;
    if (d->extmem == NULL)
        return;
    nmreq_remove_option(&d->hdr, &d->extmem->nro_opt);
    nmctx_free(d->ctx, d->extmem);
    d->extmem = NULL;
}

int nmport_extmem(struct nmport_d *d, void *base, size_t size)
{
    struct nmport_cleanup_d *c;

    if (d->register_done) {
        nmctx_ferror(d->ctx, "%s: cannot set extmem of an already registered port", d->hdr.nr_name);
        return lnm_fail(EINVAL);
    }
    if (d->extmem != NULL) {
        nmctx_ferror(d->ctx, "%s: extmem already in use", d->hdr.nr_name);
        return lnm_fail(EINVAL);
    }
    c = nmctx_malloc(d->ctx, sizeof(*c));
    d->extmem = nmctx_malloc(d->ctx, sizeof(*d->extmem));
    if (c == NULL || d->extmem == NULL) {
        nmctx_free(d->ctx, c);
        nmctx_free(d->ctx, d->extmem);
        d->extmem = NULL;
        nmctx_ferror(d->ctx, "%s: cannot allocate extmem option", d->hdr.nr_name);
        return lnm_fail(ENOMEM);
    }
    memset(d->extmem, 0, sizeof(*d->extmem));
    d->extmem->nro_opt.nro_reqtype = NETMAP_REQ_OPT_EXTMEM;
    d->extmem->nro_opt.nro_size = sizeof(*d->extmem);
    d->extmem->nro_usrptr = (uintptr_t)base;
    d->extmem->nro_info.nr_memsize = size;
    nmreq_push_option(&d->hdr, &d->extmem->nro_opt);
    c->cleanup = drop_extmem;
    lnm_push_cleanup(d, c);
    return 0;
}

struct file_map {
    struct nmport_cleanup_d up;
    void *p;
    size_t size;
};

static void unmap_file(struct nmport_cleanup_d *c, struct nmport_d *d)
{
    struct file_map *f = (struct file_map *)c;

    (void)d;
    munmap(f->p, f->size);
}

/* fname mapped shared, read-write, whole; NULL (errno, message) if not. */
static void *map_file(struct nmctx *ctx, const char *fname, size_t *size)
{
    void *p = MAP_FAILED;
    off_t end;
    int fd, err = 0;

    fd = open(fname, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        err = errno;
        nmctx_ferror(ctx, "cannot open '%s': %s", fname, strerror(err));
        errno = err;
        return NULL;
    }
    end = lseek(fd, 0, SEEK_END);
    if (end <= 0) {
        err = end < 0 ? errno : EINVAL;
        nmctx_ferror(ctx, "failed to obtain filesize of '%s': %s", fname,
                     end < 0 ? strerror(err) : "empty file");
    } else {
        p = mmap(NULL, (size_t)end, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        err = errno;
        if (p == MAP_FAILED)
            nmctx_ferror(ctx, "cannot mmap '%s': %s", fname, strerror(err));
    }
    close(fd);
    if (p == MAP_FAILED) {
        errno = err;
        return NULL;
    }
    *size = (size_t)end;
    return p;
}

int nmport_extmem_from_file(struct nmport_d *d, const char *fname)
{
    struct nmport_cleanup_d *mark = d->clist;
    struct file_map *f;
    size_t size = 0;
    void *p;

    f = nmctx_malloc(d->ctx, sizeof(*f));
    if (f == NULL) {
        nmctx_ferror(d->ctx, "cannot allocate cleanup descriptor");
        return lnm_fail(ENOMEM);
    }
    p = map_file(d->ctx, fname, &size);
    if (p == NULL) {
        int err = errno;
        nmctx_free(d->ctx, f);
        return lnm_fail(err);
    }
    f->p = p;
    f->size = size;
    f->up.cleanup = unmap_file;
    lnm_push_cleanup(d, &f->up);
    if (nmport_extmem(d, p, size) < 0) {
        int err = errno;
        lnm_cleanup_to(d, mark);
        return lnm_fail(err);
    }
    return 0;
}

struct nmreq_pools_info *nmport_extmem_getinfo(struct nmport_d *d)
{
    return d->extmem != NULL ? &d->extmem->nro_info : NULL;
}

struct offsets_opt {
    struct nmport_cleanup_d up;
    struct nmreq_opt_offsets opt;
};

static void drop_offsets(struct nmport_cleanup_d *c, struct nmport_d *d)
{
    struct offsets_opt *o = (struct offsets_opt *)c;

    nmreq_remove_option(&d->hdr, &o->opt.nro_opt);
}

int nmport_offset(struct nmport_d *d, uint64_t initial, uint64_t maxoff, uint64_t bits,
                  uint64_t mingap)
{
    struct offsets_opt *o;

    if (d->register_done) {
        nmctx_ferror(d->ctx, "%s: cannot set offsets of an already registered port", d->hdr.nr_name);
        return lnm_fail(EINVAL);
    }
    o = nmctx_malloc(d->ctx, sizeof(*o));
    if (o == NULL) {
        nmctx_ferror(d->ctx, "%s: cannot allocate offset option", d->hdr.nr_name);
        return lnm_fail(ENOMEM);
    }
    memset(o, 0, sizeof(*o));
    o->opt.nro_opt.nro_reqtype = NETMAP_REQ_OPT_OFFSETS;
    o->opt.nro_opt.nro_size = sizeof(o->opt);
    o->opt.nro_offset_bits = (uint32_t)bits;
    o->opt.nro_initial_offset = initial;
    o->opt.nro_max_offset = maxoff;
    o->opt.nro_min_gap = mingap;
    nmreq_push_option(&d->hdr, &o->opt.nro_opt);
    o->up.cleanup = drop_offsets;
    lnm_push_cleanup(d, &o->up);
    return 0;
}

/* ------------------------------------------------------------------ */
/* nmport_enable_option / nmport_disable_option                        */
/* ------------------------------------------------------------------ */

static const char *const option_labels[LNM_OPT_COUNT] = {
    [LNM_OPT_SHARE] = "share",
    [LNM_OPT_CONF] = "conf",
    [LNM_OPT_EXTMEM] = "extmem",
    [LNM_OPT_OFFSET] = "offset",
};

/* offset is off until the program asks for it, as in netmap */
static int option_on[LNM_OPT_COUNT] = { 1, 1, 1, 0 };

static int option_index(const char *opt)
{
    for (int i = 0; i < LNM_OPT_COUNT; i++)
        if (opt != NULL && strcmp(opt, option_labels[i]) == 0)
            return i;
    return -1;
}

int lnm_option_enabled(enum lnm_option opt)
{
    return __atomic_load_n(&option_on[opt], __ATOMIC_RELAXED);
}

const char *lnm_option_label(enum lnm_option opt)
{
    return option_labels[opt];
}

void nmport_disable_option(const char *opt)
{
    int i = option_index(opt);

    if (i >= 0)
        __atomic_store_n(&option_on[i], 0, __ATOMIC_RELAXED);
}

int nmport_enable_option(const char *opt)
{
    int i = option_index(opt);

    if (i < 0)
        return lnm_fail(EOPNOTSUPP);
    __atomic_store_n(&option_on[i], 1, __ATOMIC_RELAXED);
    return 0;
}
