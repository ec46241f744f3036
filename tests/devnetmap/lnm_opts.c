/*
 * lnm_opts.c -- libnetmap's options and decoders: extmem (by pointer and
 * from a file: a file on the runtime directory's filesystem is the
 * region's memory; anonymous memory, EOPNOTSUPP, and a file elsewhere,
 * EXDEV, in the option's nro_status) and offsets, which /dev/netmap here
 * refuses at REGISTER with netmap's EOPNOTSUPP in the option's nro_status; enabling and disabling
 * portspec options; @conf and @share; nmreq_header_decode,
 * nmreq_register_decode, nmreq_options_decode with the program's own
 * parsers, nmreq_get_mem_id and the option-list helpers.
 *
 *     lnm_opts extmem PREFIX FILE SHMFILE    (SHMFILE: IF pool, 8 rings, 8192 buffers)
 *     lnm_opts offset|switch|decode PREFIX
 */
#include "lnm_test.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static char name_buf[4][160];

static void test_share_vale(const char *prefix);

static const char *pname(int n, const char *fmt, const char *prefix)
{
    snprintf(name_buf[n], sizeof(name_buf[n]), fmt, prefix);
    return name_buf[n];
}

static void test_extmem(const char *prefix, const char *file)
{
    struct nmport_d *d = nmport_prepare(pname(0, "netmap:%s{1", prefix));
    size_t size = 1 << 20;
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    struct nmreq_pools_info *pi;
    char spec[512];

    CHECK(d && mem != MAP_FAILED && nmport_extmem_getinfo(d) == NULL, "prepare");
    CHECK(nmport_extmem(d, mem, size) == 0 && (pi = nmport_extmem_getinfo(d)) != NULL, "extmem");
    CHECK(pi->nr_memsize == size && d->extmem->nro_usrptr == (uintptr_t)mem &&
          nmreq_find_option(&d->hdr, NETMAP_REQ_OPT_EXTMEM) == &d->extmem->nro_opt, "in the chain");
    CHECK_FAILS(nmport_extmem(d, mem, 4096) < 0, EINVAL, "extmem already in use");
    CHECK_FAILS(nmport_open_desc(d) < 0, EOPNOTSUPP, "option extmem: Operation not supported");
    CHECK(d->fd == -1 && !d->register_done && d->extmem->nro_opt.nro_status == EOPNOTSUPP,
          "refused with nro_status %u", d->extmem->nro_opt.nro_status);
    nmport_undo_parse(d);
    CHECK(d->extmem == NULL && d->hdr.nr_options == 0 && d->clist == NULL, "undo_parse drops it");
    nmport_delete(d);

    snprintf(spec, sizeof(spec), "netmap:%s{1@extmem:file=%s,buf-num=10,if-size=1024", prefix, file);
    d = nmport_prepare(spec);
    CHECK(d && (pi = nmport_extmem_getinfo(d)) != NULL, "@extmem");
    CHECK(pi->nr_memsize == 65536 && pi->nr_buf_pool_objtotal == 10 && pi->nr_if_pool_objsize == 1024 &&
          pi->nr_ring_pool_objtotal == 0, "the file's size and the keys");
    CHECK(((volatile char *)(uintptr_t)d->extmem->nro_usrptr)[65535] == 0, "the file is mapped");
    CHECK_FAILS(nmport_open_desc(d) < 0, EXDEV, "option extmem: Invalid cross-device link");
    nmport_close(d);
    CHECK_FAILS(nmport_open(pname(1, "netmap:%s{1@extmem:file=/nonexistent/x", prefix)) == NULL, ENOENT,
                "cannot open '/nonexistent/x'");
    d = nmport_prepare(pname(1, "netmap:%s{1", prefix));
    CHECK_FAILS(nmport_extmem_from_file(d, "/nonexistent/y") < 0, ENOENT, "/nonexistent/y");
    CHECK(d->extmem == NULL && d->clist == NULL && d->hdr.nr_options == 0, "left as it was");
    CHECK(nmport_open_desc(d) == 0, "opens without");
    CHECK_FAILS(nmport_extmem(d, mem, size) < 0, EINVAL, "already registered port");
    nmport_close(d);
    munmap(mem, size);
}

/* A region in the program's file: the master's memory is its own mapping
 * of it, the slave (no option) finds the same region, and a frame sent
 * is in the file where the slave's slot says. */
static void test_extmem_region(const char *prefix, const char *file)
{
    struct nmport_d *m, *s;
    struct netmap_ring *rx;
    struct nmreq_pools_info *pi;
    char spec[512], small[400];
    const char frame[] = "in the program's file";
    int fd;

    snprintf(small, sizeof(small), "%s.small", file);
    fd = open(small, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(fd >= 0 && ftruncate(fd, 1 << 20) == 0, "a 1 MiB file");
    close(fd);
    snprintf(spec, sizeof(spec), "netmap:%s{1@extmem:file=%s,ring-num=8", prefix, small);
    CHECK_FAILS(nmport_open(spec) == NULL, EINVAL, "the memory given, 1048576 bytes, is smaller than the ");
    CHECK(strstr(last_msg, " bytes (") && strstr(last_msg, " MiB) the pools asked need"), "%s", last_msg);
    unlink(small);
    snprintf(spec, sizeof(spec), "netmap:%s{1@extmem:file=%s,ring-num=8", prefix, file);
    m = nmport_open(spec);
    CHECK(m != NULL && (pi = nmport_extmem_getinfo(m)) != NULL, "open with @extmem");
    CHECK(m->extmem->nro_opt.nro_status == 0 && pi->nr_buf_pool_objtotal == 8192 &&
          pi->nr_ring_pool_objtotal == 8 && pi->nr_mem_id == m->reg.nr_mem_id, "pools made");
    CHECK(m->mem->is_extmem && m->mem->mem == (void *)(uintptr_t)m->extmem->nro_usrptr, "the program's own mapping");
    s = nmport_open(pname(1, "netmap:%s}1", prefix));
    CHECK(s && s->reg.nr_mem_id == m->reg.nr_mem_id, "the slave in the same region");
    CHECK(nmport_inject(m, frame, sizeof(frame)) == (int)sizeof(frame), "inject");
    CHECK(ioctl(m->fd, NIOCTXSYNC, NULL) == 0 && ioctl(s->fd, NIOCRXSYNC, NULL) == 0, "sync");
    rx = NETMAP_RXRING(s->nifp, 0);
    CHECK(rx->tail != rx->head, "received");
    CHECK(memcmp((char *)m->mem->mem + pi->nr_buf_pool_offset +
                 (size_t)rx->slot[rx->head].buf_idx * pi->nr_buf_pool_objsize, frame, sizeof(frame)) == 0,
          "the bytes are in the file");
    nmport_close(s);
    nmport_close(m);
}

/* A raw NIOCCTRL REGISTER of name with `n` options chained from opts. */
static int register_mode(int fd, const char *name, uint32_t mode, struct nmreq_register *reg,
                         struct nmreq_opt_extmem *opts, int n)
{
    struct nmreq_header h;

    memset(&h, 0, sizeof(h));
    h.nr_version = NETMAP_API;
    h.nr_reqtype = NETMAP_REQ_REGISTER;
    h.nr_body = (uintptr_t)reg;
    snprintf(h.nr_name, sizeof(h.nr_name), "%s", name);
    for (int i = 0; i < n; i++) {
        opts[i].nro_opt.nro_reqtype = NETMAP_REQ_OPT_EXTMEM;
        opts[i].nro_opt.nro_next = i + 1 < n ? (uintptr_t)&opts[i + 1] : 0;
    }
    h.nr_options = n ? (uintptr_t)&opts[0] : 0;
    memset(reg, 0, sizeof(*reg));
    reg->nr_mode = mode;
    return ioctl(fd, NIOCCTRL, &h);
}

static int register_with(int fd, const char *name, struct nmreq_register *reg,
                         struct nmreq_opt_extmem *opts, int n)
{
    return register_mode(fd, name, NR_REG_ALL_NIC, reg, opts, n);
}

/* netmap's ctrl-api-test cases on the raw request: extmem_option (the
 * pools written back), bad_extmem_option and duplicate_extmem_options
 * (EINVAL in the status), and what cannot be a region here. */
static void test_extmem_raw(const char *prefix, const char *file)
{
    struct nmreq_opt_extmem e[2];
    struct nmreq_register reg;
    char name[64];
    struct stat st;
    int mfd = open(file, O_RDWR), fd;
    void *mem, *priv;

    CHECK(mfd >= 0 && fstat(mfd, &st) == 0, "open %s", file);
    mem = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    priv = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, mfd, 0);
    CHECK(mem != MAP_FAILED && priv != MAP_FAILED, "map it");
    snprintf(name, sizeof(name), "%s{3", prefix);
    fd = open("/dev/netmap", O_RDWR);
    memset(e, 0, sizeof(e));
    e[0].nro_usrptr = (uintptr_t)mem;
    e[0].nro_info.nr_memsize = (uint64_t)st.st_size;
    e[0].nro_info.nr_ring_pool_objsize = 1u << 20;          /* larger than a ring object */
    e[0].nro_info.nr_ring_pool_objtotal = 8;
    CHECK(register_with(fd, name, &reg, e, 1) < 0 && errno == EINVAL &&
          e[0].nro_opt.nro_status == EINVAL, "bad_extmem_option: status %u", e[0].nro_opt.nro_status);
    e[0].nro_info.nr_ring_pool_objsize = 0;
    e[1] = e[0];
    CHECK(register_with(fd, name, &reg, e, 2) < 0 && errno == EINVAL &&
          e[1].nro_opt.nro_status == EINVAL, "duplicate_extmem_options: status %u", e[1].nro_opt.nro_status);
    e[0].nro_usrptr = (uintptr_t)priv;
    CHECK(register_with(fd, name, &reg, e, 1) < 0 && errno == EOPNOTSUPP &&
          e[0].nro_opt.nro_status == EOPNOTSUPP, "private memory: status %u", e[0].nro_opt.nro_status);
    e[0].nro_usrptr = (uintptr_t)mem + 64;
    CHECK(register_with(fd, name, &reg, e, 1) < 0 && errno == EINVAL, "not page aligned");
    e[0].nro_usrptr = (uintptr_t)mem;
    e[0].nro_info.nr_memsize = 1u << 20;                    /* less than the region */
    CHECK(register_with(fd, name, &reg, e, 1) < 0 && errno == EINVAL &&
          e[0].nro_opt.nro_status == EINVAL, "memory smaller than the region");
    e[0].nro_info.nr_memsize = (uint64_t)st.st_size;
    CHECK(register_mode(fd, name, NR_REG_NULL, &reg, e, 1) < 0 && errno == EOPNOTSUPP,
          "a null port in new memory: not here");
    e[0].nro_opt.nro_status = 0;
    CHECK(register_with(fd, name, &reg, e, 1) == 0 && e[0].nro_opt.nro_status == 0, "extmem_option");
    CHECK(e[0].nro_info.nr_mem_id == reg.nr_mem_id && e[0].nro_info.nr_memsize == reg.nr_memsize &&
          reg.nr_memsize <= (uint64_t)st.st_size && e[0].nro_info.nr_ring_pool_objtotal == 8 &&
          e[0].nro_info.nr_buf_pool_objtotal == 8192 && e[0].nro_info.nr_if_pool_offset == 0,
          "pools written back");
    CHECK(((struct netmap_if *)((char *)mem + reg.nr_offset))->ni_tx_rings == reg.nr_tx_rings,
          "the netmap_if is in the program's memory");
    close(fd);
    munmap(priv, (size_t)st.st_size);
    munmap(mem, (size_t)st.st_size);
    close(mfd);
}

static void test_offset(const char *prefix)
{
    struct nmreq_opt_offsets *o;
    struct nmport_d *d;

    CHECK_FAILS(nmport_open(pname(0, "netmap:%s{1@offset:initial=64", prefix)) == NULL, EOPNOTSUPP,
                "offset");
    CHECK(nmport_enable_option("offset") == 0, "enable");
    d = nmport_prepare(pname(0, "netmap:%s{1@offset:initial=64,bits=8", prefix));
    CHECK(d != NULL, "@offset once enabled");
    o = (struct nmreq_opt_offsets *)nmreq_find_option(&d->hdr, NETMAP_REQ_OPT_OFFSETS);
    CHECK(o && o->nro_initial_offset == 64 && o->nro_max_offset == 64 && o->nro_offset_bits == 8 &&
          o->nro_min_gap == 0, "the option");
    CHECK_FAILS(nmport_open_desc(d) < 0, EOPNOTSUPP, "option offsets: Operation not supported");
    CHECK(o->nro_opt.nro_status == EOPNOTSUPP && d->fd == -1, "nro_status");
    nmport_close(d);
    nmport_disable_option("offset");
    CHECK_FAILS(nmport_prepare(pname(0, "netmap:%s{1@offset:initial=64", prefix)) == NULL, EOPNOTSUPP, "offset");
    d = nmport_prepare(pname(0, "netmap:%s{1", prefix));
    CHECK(d && nmport_offset(d, 32, 128, 10, 16) == 0, "nmport_offset");
    o = (struct nmreq_opt_offsets *)nmreq_find_option(&d->hdr, NETMAP_REQ_OPT_OFFSETS);
    CHECK(o && o->nro_initial_offset == 32 && o->nro_max_offset == 128 && o->nro_offset_bits == 10 &&
          o->nro_min_gap == 16, "its fields");
    CHECK_FAILS(nmport_open_desc(d) < 0, EOPNOTSUPP, "option offsets");
    nmport_close(d);
}

static void test_switch(const char *prefix)
{
    struct nmport_d *d, *a;

    errno = 0;
    CHECK(nmport_enable_option("bogus") == -1 && errno == EOPNOTSUPP, "unknown option");
    nmport_disable_option("bogus");
    nmport_disable_option("conf");
    CHECK_FAILS(nmport_prepare(pname(0, "netmap:%s{1@conf:rings=2", prefix)) == NULL, EOPNOTSUPP,
                "option 'conf' is not supported");
    CHECK(nmport_enable_option("conf") == 0, "enable conf");
    d = nmport_prepare(pname(0, "netmap:%s{1@conf:rings=2,tx-rings=3,slots=64,rx-slots=32,host-rings=1", prefix));
    CHECK(d && d->reg.nr_tx_rings == 3 && d->reg.nr_rx_rings == 2 && d->reg.nr_tx_slots == 64 &&
          d->reg.nr_rx_slots == 32 && d->reg.nr_host_tx_rings == 1 && d->reg.nr_host_rx_rings == 1, "@conf");
    nmport_undo_prepare(d);
    a = nmport_open(pname(0, "netmap:%s{1", prefix));
    CHECK(a != NULL, "open");
    nmport_disable_option("share");
    CHECK_FAILS(nmport_prepare(pname(1, "netmap:%1$s}1@share=netmap:%1$s{1", prefix)) == NULL, EOPNOTSUPP,
                "option 'share' is not supported");
    CHECK(nmport_enable_option("share") == 0, "enable share");
    d = nmport_open(pname(1, "netmap:%1$s}1@share=netmap:%1$s{1", prefix));
    CHECK(d && d->reg.nr_mem_id == a->reg.nr_mem_id && d->mem == a->mem, "@share");
    nmport_close(d);
    CHECK_FAILS(nmport_prepare(pname(2, "netmap:%s}1@share=netmap:nmcnosuch0", prefix)) == NULL, ENXIO,
                "no open port holds the region of nmcnosuch0");
    snprintf(name_buf[3], sizeof(name_buf[3]), "netmap:%s}1@%u@share=netmap:%s{1", prefix,
             a->reg.nr_mem_id + 1u, prefix);
    CHECK_FAILS(nmport_prepare(name_buf[3]) == NULL, EINVAL, "cannot set mem_id");
    nmport_close(a);
    test_share_vale(prefix);
}

/* @share between a VALE port and a pipe: one region, and a buffer of the
 * VALE port's TX ring, moved into the pipe, is what its peer receives. */
static void test_share_vale(const char *prefix)
{
    char vname[64], mname[96], sname[64];
    struct nmport_d *v, *m, *s;
    struct netmap_ring *vtx, *tx, *rx;
    const char text[] = "one buffer, two ports";
    uint32_t idx;

    snprintf(vname, sizeof(vname), "vale%s:a", prefix);
    snprintf(mname, sizeof(mname), "netmap:%sv{1@share=%s", prefix, vname);
    snprintf(sname, sizeof(sname), "netmap:%sv}1", prefix);
    v = nmport_open(vname);
    m = nmport_open(mname);
    s = nmport_open(sname);
    CHECK(v && m && s, "open %s, %s, %s", vname, mname, sname);
    CHECK(m->reg.nr_mem_id == v->reg.nr_mem_id && m->mem == v->mem && s->mem == v->mem,
          "@share=%s: one region", vname);
    vtx = NETMAP_TXRING(v->nifp, 0);
    tx = NETMAP_TXRING(m->nifp, 0);
    idx = vtx->slot[0].buf_idx;
    memcpy(NETMAP_BUF(vtx, idx), text, sizeof(text));
    vtx->slot[0].buf_idx = tx->slot[tx->head].buf_idx;
    vtx->slot[0].flags |= NS_BUF_CHANGED;
    tx->slot[tx->head].buf_idx = idx;
    tx->slot[tx->head].len = sizeof(text);
    tx->slot[tx->head].flags |= NS_BUF_CHANGED;
    tx->head = tx->cur = nm_ring_next(tx, tx->head);
    CHECK(ioctl(m->fd, NIOCTXSYNC, NULL) == 0 && ioctl(s->fd, NIOCRXSYNC, NULL) == 0, "sync");
    rx = NETMAP_RXRING(s->nifp, 0);
    CHECK(rx->tail != rx->head && rx->slot[rx->head].buf_idx == idx &&
          memcmp(NETMAP_BUF(rx, idx), text, sizeof(text)) == 0, "the VALE port's buffer came through");
    nmport_close(s);
    nmport_close(m);
    nmport_close(v);
}

/* ------------------------------------------------------------------ */
/* decoders                                                            */

static void header_ok(const char *spec, const char *name, const char *rest)
{
    struct nmreq_header h;
    const char *scan = spec;

    nmreq_header_init(&h, NETMAP_REQ_REGISTER, NULL);
    forget_msgs();
    CHECK(nmreq_header_decode(&scan, &h, NULL) == 0 && strcmp(h.nr_name, name) == 0 && strcmp(scan, rest) == 0,
          "%s: name '%s' rest '%s'", spec, h.nr_name, scan);
}

static void header_bad(const char *spec, const char *says)
{
    struct nmreq_header h, before;
    const char *scan = spec;

    nmreq_header_init(&h, NETMAP_REQ_REGISTER, NULL);
    snprintf(h.nr_name, sizeof(h.nr_name), "keep");
    before = h;
    CHECK_FAILS(nmreq_header_decode(&scan, &h, nmctx_get()) < 0, EINVAL, says);
    CHECK(scan == spec && memcmp(&h, &before, sizeof(h)) == 0 && strncmp(last_msg, spec, strlen(spec)) == 0,
          "%s: left as it was", spec);
}

static void register_ok(const char *mode, uint32_t nr_mode, uint16_t ringid, uint64_t flags, uint16_t mem_id,
                        const char *rest)
{
    struct nmreq_register r;
    const char *scan = mode;

    memset(&r, 0, sizeof(r));
    r.nr_tx_slots = 77;
    CHECK(nmreq_register_decode(&scan, &r, NULL) == 0 && r.nr_mode == nr_mode && r.nr_ringid == ringid &&
          r.nr_flags == flags && r.nr_mem_id == mem_id && strcmp(scan, rest) == 0 && r.nr_tx_slots == 77,
          "'%s': mode %u ring %u flags %#llx mem %u rest '%s'", mode, r.nr_mode, r.nr_ringid,
          (unsigned long long)r.nr_flags, r.nr_mem_id, scan);
}

static void register_bad(const char *mode, uint16_t preset, const char *says)
{
    struct nmreq_register r, before;
    const char *scan = mode;

    memset(&r, 0, sizeof(r));
    r.nr_mem_id = preset;
    before = r;
    CHECK_FAILS(nmreq_register_decode(&scan, &r, NULL) < 0, EINVAL, says);
    CHECK(scan == mode && memcmp(&r, &before, sizeof(r)) == 0, "'%s': left as it was", mode);
}

static void test_decoders(void)
{
    char longname[80];

    header_ok("netmap:eth0-1/x", "eth0", "-1/x");
    header_ok("vale0:a{1@2", "vale0:a{1", "@2");
    header_ok("netmap:pipe{in-7", "pipe{in", "-7");
    header_ok("vale:x^", "vale:x", "^");
    header_ok("netmap:eth0.100", "eth0.100", "");
    header_ok("netmap:vale0:0*", "vale0:0", "*");
    header_ok("netmap:e@conf:rings=1", "e", "@conf:rings=1");
    header_bad("eth0", "");
    header_bad("netmap:", "");
    header_bad("netmapX:eth0", "");
    header_bad("netmap:eth0{", "");
    header_bad("netmap:pipe{1}2", "");
    header_bad("vale-1:a", "");
    snprintf(longname, sizeof(longname), "netmap:%064d", 1);
    header_bad(longname, "too long");

    register_ok("", NR_REG_ALL_NIC, 0, 0, 0, "");
    register_ok("-3/xR@2", NR_REG_ONE_NIC, 3, NR_EXCLUSIVE | NR_RX_RINGS_ONLY, 2, "");
    register_ok("^1", NR_REG_ONE_SW, 1, 0, 0, "");
    register_ok("^", NR_REG_SW, 0, 0, 0, "");
    register_ok("*/T", NR_REG_NIC_SW, 0, NR_TX_RINGS_ONLY, 0, "");
    register_ok("/rtz", NR_REG_ALL_NIC, 0, NR_MONITOR_RX | NR_MONITOR_TX | NR_ZCOPY_MON, 0, "");
    register_ok("/T@conf:rings=2", NR_REG_ALL_NIC, 0, NR_TX_RINGS_ONLY, 0, "@conf:rings=2");
    register_ok("@4@share=x", NR_REG_ALL_NIC, 0, 0, 4, "@share=x");
    register_bad("-x", 0, "");
    register_bad("/q", 0, "");
    register_bad("+", 0, "'+'");
    register_bad("x", 0, "'x'");
    register_bad("@", 0, "");
    register_bad("-4095", 0, "");
    register_bad("@6", 5, "already set to 5");
    {
        struct nmreq_register r;
        const char *scan = "@5/R";
        memset(&r, 0, sizeof(r));
        r.nr_mem_id = 5;
        CHECK(nmreq_register_decode(&scan, &r, NULL) == 0 && r.nr_mem_id == 5, "the same mem_id again");
    }
}

/* nmreq_options_decode with the program's own parser of @conf */
struct conf_seen {
    int calls;
    char rings[16], tx_rings[16], slots[16];
    int fail;
};

static int parse_conf(struct nmreq_parse_ctx *p)
{
    struct conf_seen *seen = p->token;

    seen->calls++;
    snprintf(seen->rings, sizeof(seen->rings), "%s", p->keys[0] ? p->keys[0] : "-");
    snprintf(seen->tx_rings, sizeof(seen->tx_rings), "%s", p->keys[1] ? p->keys[1] : "-");
    snprintf(seen->slots, sizeof(seen->slots), "%s", p->keys[2] ? p->keys[2] : "-");
    if (seen->fail) {
        nmctx_ferror(p->ctx, "my parser says no");
        errno = ERANGE;
        return -1;
    }
    return 0;
}

static void test_options_decode(void)
{
    struct nmreq_opt_parser conf = {
        .prefix = "conf", .parse = parse_conf, .default_key = -1, .nr_keys = 3, .flags = 0, .next = NULL,
        .keys = { { "rings", 0, 0 }, { "tx_rings", 1, 0 }, { "slots", 2, NMREQ_OPTK_MUSTSET } } };
    struct conf_seen seen;

    memset(&seen, 0, sizeof(seen));
    CHECK(nmreq_options_decode("", &conf, &seen, NULL) == 0 && seen.calls == 0, "empty list");
    CHECK(nmreq_options_decode("@conf:tx-rings=3,slots=64", &conf, &seen, NULL) == 0 && seen.calls == 1 &&
          strcmp(seen.rings, "-") == 0 && strcmp(seen.tx_rings, "3") == 0 && strcmp(seen.slots, "64") == 0,
          "keys: rings %s tx_rings %s slots %s", seen.rings, seen.tx_rings, seen.slots);
    CHECK(nmreq_options_decode("@conf:rings=2,slots=8", &conf, &seen, NULL) == 0 &&
          strcmp(seen.rings, "2") == 0 && strcmp(seen.tx_rings, "2") == 0, "generic key");
    CHECK_FAILS(nmreq_options_decode("@conf:rings=2", &conf, &seen, NULL) < 0, EINVAL,
                "mandatory key 'slots' not assigned");
    CHECK_FAILS(nmreq_options_decode("conf:slots=1", &conf, &seen, NULL) < 0, EINVAL, "does not start with '@'");
    CHECK_FAILS(nmreq_options_decode("@bogus", &conf, &seen, NULL) < 0, EINVAL, "");
    CHECK_FAILS(nmreq_options_decode("@share=netmap:x", &conf, &seen, NULL) < 0, EINVAL,
                "unknown option: 'share'");
    seen.fail = 1;
    CHECK_FAILS(nmreq_options_decode("@conf:slots=1", &conf, &seen, NULL) < 0, ERANGE, "my parser says no");
    seen.fail = 0;
    conf.flags = NMREQ_OPTF_DISABLED;
    CHECK_FAILS(nmreq_options_decode("@conf:slots=1", &conf, &seen, NULL) < 0, EOPNOTSUPP, "not supported");
}

static void test_option_list(void)
{
    struct nmreq_header h;
    struct nmreq_option a, b, *o;
    int n = 0;
    char body;

    nmreq_header_init(&h, NETMAP_REQ_PORT_INFO_GET, &body);
    CHECK(h.nr_version == NETMAP_API && h.nr_reqtype == NETMAP_REQ_PORT_INFO_GET && h.nr_reserved == 0 &&
          h.nr_body == (uintptr_t)&body && h.nr_options == 0 && h.nr_name[0] == '\0', "header_init");
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.nro_reqtype = NETMAP_REQ_OPT_EXTMEM;
    b.nro_reqtype = NETMAP_REQ_OPT_OFFSETS;
    nmreq_push_option(&h, &a);
    nmreq_push_option(&h, &b);
    CHECK(h.nr_options == (uintptr_t)&b && b.nro_next == (uintptr_t)&a, "pushed in front");
    nmreq_foreach_option(&h, o)
        n++;
    CHECK(n == 2 && nmreq_find_option(&h, NETMAP_REQ_OPT_EXTMEM) == &a &&
          nmreq_find_option(&h, NETMAP_REQ_OPT_CSB) == NULL, "find");
    nmreq_remove_option(&h, &a);
    CHECK(h.nr_options == (uintptr_t)&b && b.nro_next == 0 && nmreq_find_option(&h, 1) == NULL, "remove");
    nmreq_remove_option(&h, &b);
    CHECK(h.nr_options == 0, "empty");
    for (int i = 0; i < 3; i++) {
        struct nmreq_option *m = calloc(1, sizeof(*m));
        m->nro_reqtype = (uint32_t)i + 1;
        nmreq_push_option(&h, m);
    }
    nmreq_free_options(&h);
    CHECK(h.nr_options == 0, "free_options");
    CHECK(strcmp(nmreq_option_name(NETMAP_REQ_OPT_EXTMEM), "extmem") == 0 &&
          strcmp(nmreq_option_name(NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS), "sync-kloop-eventfds") == 0 &&
          strcmp(nmreq_option_name(NETMAP_REQ_OPT_CSB), "csb") == 0 &&
          strcmp(nmreq_option_name(NETMAP_REQ_OPT_SYNC_KLOOP_MODE), "sync-kloop-mode") == 0 &&
          strcmp(nmreq_option_name(NETMAP_REQ_OPT_OFFSETS), "offsets") == 0 &&
          strcmp(nmreq_option_name(99), "unknown") == 0, "option names");
}

static void test_mem_id(const char *prefix)
{
    struct nmport_d *a = nmport_open(pname(0, "netmap:%s{1", prefix));
    const char *scan = pname(1, "netmap:%s{1/R", prefix), *start = scan;

    CHECK(a != NULL, "open");
    CHECK(nmreq_get_mem_id(&scan, NULL) == a->reg.nr_mem_id && strcmp(scan, "/R") == 0, "mem_id");
    scan = "netmap:";
    CHECK_FAILS(nmreq_get_mem_id(&scan, NULL) < 0, EINVAL, "");
    scan = "netmap:nmcnosuch0";
    CHECK_FAILS(nmreq_get_mem_id(&scan, NULL) < 0, ENXIO, "cannot get info for 'netmap:nmcnosuch0'");
    CHECK(strcmp(scan, "netmap:nmcnosuch0") == 0 && start != NULL, "left as it was");
    nmport_close(a);
}

static void test_decode(const char *prefix)
{
    test_decoders();
    test_options_decode();
    test_option_list();
    test_mem_id(prefix);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    nmctx_set_error(NULL, keep_msg);
    if (strcmp(argv[1], "extmem") == 0 && argc == 5) {
        test_extmem(argv[2], argv[3]);
        test_extmem_region(argv[2], argv[4]);
        test_extmem_raw(argv[2], argv[4]);
    }
    else if (strcmp(argv[1], "offset") == 0)
        test_offset(argv[2]);
    else if (strcmp(argv[1], "switch") == 0)
        test_switch(argv[2]);
    else if (strcmp(argv[1], "decode") == 0)
        test_decode(argv[2]);
    else
        return 2;
    printf("%s ok\n", argv[1]);
    return 0;
}
