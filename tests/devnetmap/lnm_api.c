/*
 * lnm_api.c -- netmap's libnetmap as documented, function by function:
 * contexts (error callback, verbosity, malloc/free, lock, the default),
 * descriptors step by step and their undo, one mapping per mem_id, clone,
 * inject, and the errors with their messages.  Options and decoders are
 * in lnm_opts.c.  Built with nmcompat-config and run with no wrapper.
 *
 *     lnm_api ctx|steps|share|inject|errors PREFIX
 *
 * PREFIX makes the port names unique to the test.
 */
#include "lnm_test.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>

static char name_buf[8][96];

/* The n-th name of this run: printf(fmt, prefix). */
static const char *pname(int n, const char *fmt, const char *prefix)
{
    snprintf(name_buf[n], sizeof(name_buf[n]), fmt, prefix);
    return name_buf[n];
}

/* ------------------------------------------------------------------ */

static int n_malloc, n_free, n_lock, n_unlock, lock_depth;

static void *count_malloc(struct nmctx *ctx, size_t size)
{
    (void)ctx;
    n_malloc++;
    return malloc(size);
}

static void count_free(struct nmctx *ctx, void *p)
{
    (void)ctx;
    if (p != NULL)
        n_free++;
    free(p);
}

static void count_lock(struct nmctx *ctx, int lock)
{
    (void)ctx;
    if (lock) {
        n_lock++;
        lock_depth++;
    } else {
        n_unlock++;
        lock_depth--;
    }
}

static void other_msg(struct nmctx *ctx, const char *msg)
{
    (void)ctx;
    snprintf(last_msg, sizeof(last_msg), "other: %s", msg);
}

static void test_default_ctx(void)
{
    struct nmctx *g = nmctx_get();
    char big[1500];

    CHECK(g != NULL && g->verbose == 1 && g->error && g->malloc && g->free && g->lock, "default ctx");
    nmctx_ferror(g, "printed %d", 1);          /* the default callback: stderr */
    CHECK(nmctx_set_error(g, keep_msg) != keep_msg, "the previous callback");
    forget_msgs();
    nmctx_ferror(g, "x %d %s", 7, "y");
    CHECK(strcmp(last_msg, "x 7 y") == 0 && n_msgs == 1, "ferror formats");
    CHECK(nmctx_set_verbose(g, 0) == 1 && g->verbose == 0, "set_verbose");
    forget_msgs();
    nmctx_ferror(g, "hidden");
    CHECK(n_msgs == 0, "verbose 0 sends nothing");
    CHECK(nmctx_set_verbose(NULL, 1) == 0, "NULL is the default context");
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    nmctx_ferror(g, "%s", big);
    CHECK(strcmp(last_msg, "error message too long") == 0, "a long message");
    g->error = other_msg;                       /* netmap's way: the field itself */
    nmctx_ferror(g, "z");
    CHECK(strcmp(last_msg, "other: z") == 0, "the field is the callback");
    CHECK(nmctx_set_error(g, NULL) == other_msg && g->error != NULL && g->error != other_msg,
          "NULL puts the default back");
    nmctx_ferror(g, "printed %d", 2);
    void *p = nmctx_malloc(g, 100);
    CHECK(p != NULL, "nmctx_malloc");
    memset(p, 0, 100);
    nmctx_free(g, p);
    nmctx_lock(g);                              /* the default mutex */
    nmctx_unlock(g);
}

static void test_own_ctx(const char *prefix)
{
    struct nmctx my = { 1, keep_msg, count_malloc, count_free, count_lock, NULL };
    struct nmctx *g = nmctx_get();
    struct nmport_d *d;

    CHECK(nmctx_set_default(&my) == g && nmctx_get() == &my, "set_default returns the old one");
    d = nmport_open(pname(0, "netmap:%s{1", prefix));
    CHECK(d != NULL && d->ctx == &my && my.mem_descs == d->mem, "a port in the new default");
    CHECK(n_malloc >= 2 && n_lock >= 1 && n_lock == n_unlock && lock_depth == 0, "callbacks used");
    nmport_close(d);
    CHECK(n_malloc == n_free && my.mem_descs == NULL, "all freed: %d/%d", n_malloc, n_free);
    CHECK_FAILS(nmport_open("eth0") == NULL, EINVAL, "eth0: ");
    CHECK(n_msgs == 1 && n_malloc == n_free, "the failure went to my callback");
    my.verbose = 0;
    CHECK_FAILS(nmport_open("eth0") == NULL, EINVAL, "");
    CHECK(n_msgs == 0, "quiet context");
    my.lock = NULL;
    nmctx_lock(&my);                            /* no lock: nothing */
    nmctx_unlock(&my);
    CHECK(nmctx_set_default(g) == &my && nmctx_get() == g, "back to the first");
}

/* ------------------------------------------------------------------ */

static void check_unopened(const struct nmport_d *d)
{
    CHECK(d->fd == -1 && !d->register_done && !d->mmap_done && d->nifp == NULL && d->mem == NULL,
          "not open");
}

static void test_steps(const char *prefix)
{
    struct nmport_d *d = nmport_prepare(pname(0, "netmap:%s{2-0/T@conf:slots=128", prefix));
    struct nmport_d saved;
    unsigned nrx;

    CHECK(d != NULL, "prepare");
    check_unopened(d);
    CHECK(d->hdr.nr_version == NETMAP_API && d->hdr.nr_reqtype == NETMAP_REQ_REGISTER &&
          d->hdr.nr_body == (uintptr_t)&d->reg && strcmp(d->hdr.nr_name, pname(1, "%s{2", prefix)) == 0,
          "the header: %s", d->hdr.nr_name);
    CHECK(d->reg.nr_mode == NR_REG_ONE_NIC && d->reg.nr_ringid == 0 && d->reg.nr_flags == NR_TX_RINGS_ONLY &&
          d->reg.nr_tx_slots == 128 && d->reg.nr_rx_slots == 128, "the register request");
    CHECK_FAILS(nmport_mmap(d) < 0, EINVAL, "cannot map unregistered port");
    d->reg.nr_extra_bufs = 4;                   /* no portspec syntax: set between the steps */
    CHECK(nmport_register(d) == 0 && d->register_done && d->fd >= 0 && !d->mmap_done, "register");
    CHECK(d->reg.nr_extra_bufs == 4 && d->reg.nr_memsize > 0 && d->reg.nr_tx_slots == 128, "the reply");
    CHECK((fcntl(d->fd, F_GETFD) & FD_CLOEXEC) == 0, "the fd is inherited across exec, as netmap's");
    CHECK_FAILS(nmport_register(d) < 0, EINVAL, "already registered");
    CHECK(nmport_mmap(d) == 0 && d->mmap_done && d->nifp != NULL && d->mem->refcount == 1, "mmap");
    CHECK((char *)d->nifp == (char *)d->mem->mem + d->reg.nr_offset && d->mem->mem_id == d->reg.nr_mem_id,
          "nifp in the mapping");
    nrx = d->reg.nr_rx_rings + d->nifp->ni_host_rx_rings;
    CHECK(d->first_tx_ring == 0 && d->last_tx_ring == 0 && d->first_rx_ring == nrx &&
          d->last_rx_ring == nrx - 1, "/T binds no rx ring: tx [%u,%u] rx [%u,%u]", d->first_tx_ring,
          d->last_tx_ring, d->first_rx_ring, d->last_rx_ring);
    CHECK(d->nifp->ni_bufs_head != 0, "extra buffers granted");
    CHECK_FAILS(nmport_mmap(d) < 0, EINVAL, "already mapped");
    nmport_undo_mmap(d);
    CHECK(!d->mmap_done && d->nifp == NULL && d->mem == NULL && d->fd >= 0 && nmctx_get()->mem_descs == NULL,
          "undo_mmap");
    nmport_undo_register(d);
    check_unopened(d);
    d->reg.nr_mem_id = 0;       /* the reply's: the region went with the pipe's last close */
    CHECK(nmport_open_desc(d) == 0 && d->mmap_done, "open_desc again");
    nmport_undo_open_desc(d);
    check_unopened(d);
    nmport_undo_prepare(d);
    nmport_undo_prepare(NULL);
    nmport_close(NULL);

    d = nmport_new();
    CHECK(d != NULL && d->ctx == nmctx_get() && d->hdr.nr_body == (uintptr_t)&d->reg &&
          d->hdr.nr_reqtype == NETMAP_REQ_REGISTER && d->hdr.nr_name[0] == '\0', "nmport_new");
    check_unopened(d);
    CHECK(nmport_parse(d, pname(0, "netmap:%s{3/x", prefix)) == 0 && d->reg.nr_flags == NR_EXCLUSIVE, "parse");
    saved = *d;
    CHECK_FAILS(nmport_parse(d, "netmap:eth0-x") < 0, EINVAL, "netmap:eth0-x: ");
    CHECK(memcmp(&saved, d, sizeof(*d)) == 0, "a failed parse leaves the descriptor as it was");
    nmport_undo_parse(d);
    CHECK(d->hdr.nr_name[0] == '\0' && d->reg.nr_flags == 0 && d->hdr.nr_body == (uintptr_t)&d->reg,
          "undo_parse");
    nmport_delete(d);
}

/* ------------------------------------------------------------------ */

static void test_share(const char *prefix)
{
    struct nmport_d *a = nmport_open(pname(0, "netmap:%s{1", prefix));
    struct nmport_d *b = nmport_open(pname(1, "netmap:%s}1", prefix));
    struct nmport_d *v1, *v2, *c, *s;

    CHECK(a && b, "both ends");
    CHECK(a->reg.nr_mem_id == b->reg.nr_mem_id && a->mem == b->mem && a->mem->refcount == 2,
          "one mapping for one mem_id");
    CHECK(nmctx_get()->mem_descs == a->mem && a->mem->next == NULL, "one region in the context");
    v1 = nmport_open(pname(2, "vale%s:a@conf:rings=2", prefix));
    v2 = nmport_open(pname(3, "vale%s:b", prefix));
    CHECK(v1 && v2 && v1->reg.nr_mem_id != v2->reg.nr_mem_id && v1->mem != v2->mem &&
          v1->mem->refcount == 1, "VALE ports have a region each");
    CHECK(v1->first_tx_ring == 0 && v1->last_tx_ring == 1 && v1->last_rx_ring == 1, "two ring pairs");
    c = nmport_clone(v1);
    CHECK(c && c->fd == -1 && c->hdr.nr_options == 0 && c->hdr.nr_body == (uintptr_t)&c->reg &&
          strcmp(c->hdr.nr_name, v1->hdr.nr_name) == 0 && c->reg.nr_mem_id == v1->reg.nr_mem_id &&
          c->ctx == v1->ctx && !c->register_done && c->mem == NULL, "clone");
    c->reg.nr_mode = NR_REG_ONE_NIC;
    c->reg.nr_ringid = 1;
    CHECK(nmport_open_desc(c) == 0 && c->mem == v1->mem && v1->mem->refcount == 2, "the clone shares");
    CHECK(c->first_tx_ring == 1 && c->last_tx_ring == 1 && c->first_rx_ring == 1 && c->last_rx_ring == 1,
          "ring pair 1");
    s = nmport_prepare(pname(4, "netmap:%1$s}1@share=netmap:%1$s{1", prefix));
    CHECK(s != NULL && s->reg.nr_mem_id == a->reg.nr_mem_id, "@share takes the mem_id");
    nmport_close(s);
    CHECK_FAILS(nmport_prepare(pname(5, "netmap:%1$s}2@share=vale%1$s:nobody", prefix)) == NULL,
                ENXIO, "no open port holds the region of vale");      /* as nmcompat.open() */
    nmport_close(a);
    CHECK(b->mem->refcount == 1 && b->nifp->ni_rx_rings >= 1, "the other end keeps the mapping");
    nmport_close(b);
    nmport_close(c);
    CHECK(v1->mem->refcount == 1, "refcount back");
    nmport_close(v1);
    nmport_close(v2);
    CHECK(nmctx_get()->mem_descs == NULL, "every region unmapped");
}

/* ------------------------------------------------------------------ */

static void fill(char *buf, size_t len, int seed)
{
    for (size_t k = 0; k < len; k++)
        buf[k] = (char)(seed * 13 + k * 7);
}

/* The packet starting at rx slot *i (a NS_MOREFRAG chain) equals want. */
static void expect(struct netmap_ring *r, const char *want, size_t len)
{
    size_t off = 0;

    for (;;) {
        struct netmap_slot *s = &r->slot[r->head];
        CHECK(!nm_ring_empty(r) && off + s->len <= len &&
              memcmp(NETMAP_BUF(r, s->buf_idx), want + off, s->len) == 0, "fragment at %zu", off);
        off += s->len;
        r->head = r->cur = nm_ring_next(r, r->head);
        if (!(s->flags & NS_MOREFRAG))
            break;
    }
    CHECK(off == len, "packet of %zu bytes, got %zu", len, off);
}

static void test_inject(const char *prefix)
{
    struct nmport_d *tx = nmport_open(pname(0, "netmap:%s{1", prefix));
    struct nmport_d *rx = nmport_open(pname(1, "netmap:%s}1", prefix));
    static char a[60], b[5000], c[1];
    struct netmap_ring *tr, *rr;
    struct pollfd p;
    uint32_t bufsz, space, sent = 0;

    CHECK(tx && rx, "open");
    tr = NETMAP_TXRING(tx->nifp, 0);
    rr = NETMAP_RXRING(rx->nifp, 0);
    bufsz = tr->nr_buf_size;
    fill(a, sizeof(a), 1);
    fill(b, sizeof(b), 2);
    CHECK(nmport_inject(tx, a, sizeof(a)) == (int)sizeof(a), "inject 60");
    CHECK(nmport_inject(tx, b, sizeof(b)) == (int)sizeof(b), "inject a chain");
    CHECK(nmport_inject(tx, c, 0) == 0 && tr->head == 2 + (sizeof(b) + bufsz - 1) / bufsz,
          "a 0-byte packet takes a slot: head %u", tr->head);
    CHECK(tr->slot[1].flags == NS_MOREFRAG && tr->slot[1].len == bufsz, "fragment flags");
    CHECK(ioctl(tx->fd, NIOCTXSYNC, NULL) == 0, "txsync");
    p.fd = rx->fd;
    p.events = POLLIN;
    CHECK(poll(&p, 1, 5000) == 1 && (p.revents & POLLIN), "poll");
    expect(rr, a, sizeof(a));
    expect(rr, b, sizeof(b));
    expect(rr, c, 0);
    space = nm_ring_space(tr);
    while (nm_ring_space(tr) > 1) {
        CHECK(nmport_inject(tx, a, sizeof(a)) == (int)sizeof(a), "fill");
        sent++;
    }
    CHECK(sent == space - 1, "%u frames into %u slots", sent, space);
    CHECK(nmport_inject(tx, b, sizeof(b)) == 0, "no room for a chain: 0");
    CHECK(nmport_inject(tx, a, sizeof(a)) == (int)sizeof(a), "one slot left");
    CHECK(nmport_inject(tx, a, sizeof(a)) == 0 && tx->cur_tx_ring == 0, "full: 0");
    nmport_close(tx);
    nmport_close(rx);
}

/* ------------------------------------------------------------------ */

static void test_errors(const char *prefix)
{
    struct nmport_d *d;

    CHECK_FAILS(nmport_open("eth0") == NULL, EINVAL, "eth0: ");
    CHECK_FAILS(nmport_open("netmap:") == NULL, EINVAL, "netmap:: ");
    CHECK_FAILS(nmport_open("netmap:nmcnosuch0") == NULL, ENXIO, "nmcnosuch0: No such device or address");
    /* a monitor of a port nobody has open: EINVAL, as netmap (not in netmap mode) */
    CHECK_FAILS(nmport_open(pname(0, "vale%s:a/r", prefix)) == NULL, EINVAL, "Invalid argument");
    d = nmport_prepare("netmap:nmcnosuch0");
    CHECK(d != NULL, "prepare");
    CHECK_FAILS(nmport_open_desc(d) < 0, ENXIO, "nmcnosuch0: No such device or address");
    check_unopened(d);
    nmport_close(d);
    d = nmport_open(pname(1, "netmap:%s{1/x", prefix));
    CHECK(d != NULL, "exclusive");
    CHECK_FAILS(nmport_open(pname(2, "netmap:%s{1", prefix)) == NULL, EBUSY, "Device or resource busy");
    nmport_close(d);
}

int main(int argc, char **argv)
{
    static const struct { const char *mode; void (*run)(const char *); } modes[] = {
        { "steps", test_steps }, { "share", test_share }, { "inject", test_inject },
        { "errors", test_errors }, { "ctx", test_own_ctx } };

    if (argc != 3)
        return 2;
    if (strcmp(argv[1], "ctx") == 0)
        test_default_ctx();
    nmctx_set_error(NULL, keep_msg);
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        if (strcmp(argv[1], modes[i].mode) == 0) {
            modes[i].run(argv[2]);
            printf("%s ok\n", argv[1]);
            return 0;
        }
    return 2;
}
