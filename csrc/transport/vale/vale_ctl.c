/*
 * vale_ctl.c -- netmap's VALE control requests: NEWIF/DELIF (persistent
 * ports), ATTACH/DETACH, LIST, and PORT_INFO_GET, with netmap's errnos.
 * Each locks what it changes: the port's region, then its switch.
 */
#include "nmc_vale.h"

#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

typedef int (*ctl_fn)(const char *rundir, void *arg);

/* fn in the resolved, checked runtime directory; fn takes its own locks. */
static int in_rundir(const char *rundir_req, ctl_fn fn, void *arg)
{
    char rundir[160];
    int err;

    if ((err = nmc_rundir_resolve(rundir_req, rundir, sizeof(rundir))) < 0 ||
        (err = nmc_rundir_check(rundir)) < 0)
        return err;
    return fn(rundir, arg);
}

/* The persistent (or any VALE) port record named `name`, with its region. */
static int find_named(const char *rundir, const char *name, struct nmc_region *r)
{
    struct nmc_port_rec *ports;
    int err;

    if ((err = nmc_get_region_of(rundir, name, r)) < 0)
        return err == -EPROTO ? err : -ENXIO;
    ports = nmc_ports(r);
    for (uint32_t i = 0; i < NMC_MAX_PORTS; i++)
        if (ports[i].state == NMC_LIVE && ports[i].kind == NMC_KIND_VALE &&
            strncmp(ports[i].parent, name, NMC_NAMELEN) == 0)
            return (int)i;
    nmc_region_detach(r);
    return -ENXIO;
}

static int do_newif(const char *rundir, void *arg)
{
    const struct nmc_pipe_req *req = arg;
    struct nmc_pipe_req vreq;
    struct nmc_region r = { .fd = -1 };
    struct nmc_port_rec *ports;
    int err;

    if (if_nametoindex(req->parent))
        return -EEXIST;                 /* an interface of the system has that name */
    if ((err = nmc_vale_region_req(req, &vreq)) < 0 || (err = nmc_get_region(rundir, &vreq, &r)) < 0)
        return err;
    ports = nmc_ports(&r);
    err = 0;
    for (uint32_t i = 0; i < NMC_MAX_PORTS; i++)    /* under the region lock: one creator */
        if (ports[i].state == NMC_LIVE && ports[i].kind == NMC_KIND_VALE &&
            strncmp(ports[i].parent, req->parent, NMC_NAMELEN) == 0)
            err = -EEXIST;
    if (err == 0)
        err = nmc_vale_create_persistent(&r, req);
    nmc_region_reap(rundir, &r);
    nmc_region_detach(&r);
    return err;
}

int nmc_vale_newif(const struct nmc_pipe_req *req)
{
    if (!req || !req->parent || !*req->parent || strlen(req->parent) >= IFNAMSIZ)
        return -EINVAL;
    if (strncmp(req->parent, "vale", 4) == 0 || strpbrk(req->parent, ":{}-*^/@"))
        return -EINVAL;                 /* a name netmap:NAME would not give back */
    return in_rundir(req->rundir, do_newif, (void *)req);
}

static int do_delif(const char *rundir, void *arg)
{
    const char *name = arg;
    struct nmc_region r = { .fd = -1 };
    int i = find_named(rundir, name, &r), err = 0;
    struct nmc_port_rec *rec;

    if (i < 0)
        return i;
    rec = &nmc_ports(&r)[i];
    if (!rec->persistent)
        err = -EINVAL;
    else if (rec->sw[0] || nmc_port_in_use(&r, (uint32_t)i))
        err = -EBUSY;
    else
        rec->persistent = 0;            /* the reap below frees it */
    nmc_region_reap(rundir, &r);
    nmc_region_detach(&r);
    return err;
}

int nmc_vale_delif(const char *rundir, const char *name)
{
    if (!name || !*name)
        return -EINVAL;
    return in_rundir(rundir, do_delif, (void *)name);
}

struct attach_arg {
    const char *name;               /* "valeX:Y" */
    int result;                     /* port index */
};

static int split(const char *name, char sw[NMC_SW_NAMELEN], const char **port)
{
    const char *colon = strchr(name, ':');

    if (strncmp(name, "vale", 4) != 0 || !colon || colon[1] == 0 ||
        (size_t)(colon - name) >= NMC_SW_NAMELEN)
        return -EINVAL;
    memcpy(sw, name, (size_t)(colon - name));
    sw[colon - name] = 0;
    *port = colon + 1;
    return nmc_sw_name_ok(sw) ? 0 : -EINVAL;
}

static int do_attach(const char *rundir, void *arg)
{
    struct attach_arg *a = arg;
    char sw[NMC_SW_NAMELEN];
    const char *port;
    struct nmc_region r = { .fd = -1 };
    struct nmc_port_rec *rec;
    int i, err;

    if ((err = split(a->name, sw, &port)) < 0)
        return err;
    if ((i = find_named(rundir, port, &r)) < 0)
        return if_nametoindex(port) ? -EOPNOTSUPP : -ENXIO;
    rec = &nmc_ports(&r)[i];
    err = -EBUSY;
    if (!rec->sw[0] && (err = nmc_sw_join(rundir, sw, a->name, r.mem_id, (uint32_t)i, rec)) >= 0) {
        nmc_copy_name(rec->sw, sizeof(rec->sw), sw);
        rec->sw_port = (uint32_t)err;
        __atomic_fetch_add(&rec->attach_gen, 1, __ATOMIC_RELEASE);
        a->result = err;
        err = 0;
    }
    nmc_region_detach(&r);
    return err;
}

/* VALE_ATTACH of a persistent port ("valeX:vi0" attaches port vi0).
 * Returns its index in the switch. */
int nmc_vale_attach(const char *rundir, const char *name)
{
    struct attach_arg a = { .name = name, .result = -1 };
    int err;

    if (!name)
        return -EINVAL;
    err = in_rundir(rundir, do_attach, &a);
    return err < 0 ? err : a.result;
}

static int do_detach(const char *rundir, void *arg)
{
    struct attach_arg *a = arg;
    char sw[NMC_SW_NAMELEN];
    const char *port;
    struct nmc_swmap m;
    struct nmc_region r = { .fd = -1 };
    int q, i, err;

    if ((err = split(a->name, sw, &port)) < 0)
        return err;
    if ((i = find_named(rundir, port, &r)) < 0)             /* region, then switch */
        return -ENXIO;
    if (nmc_sw_attach(rundir, sw, NMC_SW_LOCK, &m) < 0) {
        nmc_region_detach(&r);
        return -ENXIO;
    }
    q = nmc_sw_find(m.sw, a->name);
    err = -ENXIO;
    if (q >= 0) {
        struct nmc_port_rec *rec = &nmc_ports(&r)[i];
        err = -EINVAL;                  /* only attached persistent ports detach */
        if (rec->persistent && rec->sw[0] && m.sw->ports[q].mem_id == r.mem_id) {
            nmc_sw_remove(m.sw, (uint32_t)q);
            rec->sw[0] = 0;
            __atomic_fetch_add(&rec->attach_gen, 1, __ATOMIC_RELEASE);
            a->result = q;
            err = 0;
        }
    }
    nmc_sw_gc(rundir, &m);
    nmc_sw_detach(&m);
    nmc_region_detach(&r);
    return err;
}

int nmc_vale_detach(const char *rundir, const char *name)
{
    struct attach_arg a = { .name = name, .result = -1 };
    int err;

    if (!name)
        return -EINVAL;
    err = in_rundir(rundir, do_detach, &a);
    return err < 0 ? err : a.result;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Switch names in bridge-index order (sorted); returns the count. */
static int switch_names(const char *rundir, char names[][NMC_SW_NAMELEN], int max)
{
    char *ptrs[64];
    char tmp[64][NMC_SW_NAMELEN];
    struct dirent *de;
    DIR *d = opendir(rundir);
    int n = 0;

    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL && n < max && n < 64) {
        if (strncmp(de->d_name, "vale.", 5) == 0 && nmc_sw_name_ok(de->d_name + 5)) {
            nmc_copy_name(tmp[n], NMC_SW_NAMELEN, de->d_name + 5);
            ptrs[n] = tmp[n];
            n++;
        }
    }
    closedir(d);
    qsort(ptrs, (size_t)n, sizeof(ptrs[0]), cmp_names);
    for (int i = 0; i < n; i++)
        nmc_copy_name(names[i], NMC_SW_NAMELEN, ptrs[i]);
    return n;
}

static int do_list(const char *rundir, void *arg)
{
    struct nmc_vale_list *l = arg;
    char names[64][NMC_SW_NAMELEN], sw[NMC_SW_NAMELEN] = "";
    int n = switch_names(rundir, names, 64);
    const char *port;

    if (l->name[0])
        split(l->name, sw, &port);
    for (uint32_t b = l->bridge_idx; b < (uint32_t)n; b++, l->port_idx = 0) {
        struct nmc_swmap m;
        if ((sw[0] && strcmp(sw, names[b]) != 0) || nmc_sw_attach(rundir, names[b], 0, &m) < 0)
            continue;
        nmc_sw_reap(rundir, &m, NMC_SW_MAXPORTS);
        for (uint32_t q = l->port_idx; q < NMC_SW_MAXPORTS; q++) {
            if (m.sw->ports[q].state != NMC_LIVE)
                continue;
            if (l->name[0] && strncmp(m.sw->ports[q].name, l->name, NMC_NAMELEN) != 0)
                continue;
            nmc_copy_name(l->name, sizeof(l->name), m.sw->ports[q].name);
            l->bridge_idx = b;
            l->port_idx = q;
            nmc_sw_detach(&m);
            return 0;
        }
        nmc_sw_detach(&m);
    }
    return -ENOENT;
}

/* VALE_LIST: with l->name set ("valeX:Y"), find that port; with an empty
 * name, the first port at or after (bridge_idx, port_idx).  ENOENT at
 * the end, or for an unknown port. */
int nmc_vale_list(const char *rundir, struct nmc_vale_list *l)
{
    char sw[NMC_SW_NAMELEN];
    const char *port;

    if (l->name[0]) {
        int err = split(l->name, sw, &port);
        if (err < 0)
            return err;
        l->bridge_idx = l->port_idx = 0;
    }
    return in_rundir(rundir, do_list, l);
}

static int do_info(const char *rundir, void *arg)
{
    struct nmc_port_info *info = arg;
    struct nmc_region r = { .fd = -1 };
    struct nmc_swmap m;
    char sw[NMC_SW_NAMELEN];
    const char *port;
    int i = -ENXIO;

    if (split(info->region_path, sw, &port) == 0 && nmc_sw_attach(rundir, sw, 0, &m) == 0) {
        int q = nmc_sw_find(m.sw, info->region_path);
        struct nmc_sw_port sp = q >= 0 ? m.sw->ports[q] : (struct nmc_sw_port){ 0 };
        nmc_sw_detach(&m);
        if (q >= 0 && nmc_region_attach(rundir, sp.mem_id, &r, NMC_LOCK_WAIT) == 0) {
            if (nmc_sw_entry_ok(&r, &sp, (uint32_t)q))
                i = (int)sp.rec;
            else
                nmc_region_detach(&r);
        }
    }
    if (i < 0 && (i = find_named(rundir, info->region_path, &r)) < 0)
        return i;
    struct nmc_port_rec *rec = &nmc_ports(&r)[i % NMC_MAX_PORTS];
    info->nr_memsize = r.g.memsize;
    info->nr_tx_rings = (uint16_t)rec->nrings[0][0];
    info->nr_rx_rings = (uint16_t)rec->nrings[0][1];
    info->nr_tx_slots = rec->nslots[0][0];
    info->nr_rx_slots = rec->nslots[0][1];
    info->nr_mem_id = r.mem_id;
    info->buf_size = r.g.buf_size;
    info->buf_num = r.g.buf_num;
    nmc_region_path(rundir, r.mem_id, info->region_path, sizeof(info->region_path));
    nmc_region_detach(&r);
    return 0;
}

/* PORT_INFO_GET for a VALE port ("valeX:Y") or a persistent port ("vi0"):
 * memory size, rings, slots, mem_id.  ENXIO if there is no such port. */
int nmc_vale_port_info(const char *rundir, const char *name, struct nmc_port_info *info)
{
    if (!name || strlen(name) >= NMC_NAMELEN)
        return -EINVAL;
    memset(info, 0, sizeof(*info));
    nmc_copy_name(info->region_path, sizeof(info->region_path), name);
    return in_rundir(rundir, do_info, info);
}

struct lookup_arg {
    const char *sw;
    const uint8_t *mac;
};

static int do_lookup(const char *rundir, void *arg)
{
    struct lookup_arg *a = arg;
    struct nmc_swmap m;
    uint64_t v = 0, e;
    int q = -ENOENT;

    if (nmc_sw_attach(rundir, a->sw, 0, &m) < 0)     /* the table is read without a lock */
        return -ENXIO;
    for (int i = 5; i >= 0; i--)
        v = v << 8 | a->mac[i];
    e = __atomic_load_n(&m.sw->ht[nmc_vale_hash(a->mac)], __ATOMIC_RELAXED);
    if ((e >> 63) && (e & 0xffffffffffffULL) == v)
        q = (int)((e >> 48) & 0xff);
    nmc_sw_detach(&m);
    return q;
}

/* Which port of switch `sw` the learning table holds `mac` for. */
int nmc_vale_lookup(const char *rundir, const char *sw, const uint8_t *mac)
{
    struct lookup_arg a = { .sw = sw, .mac = mac };

    if (!sw || !mac || !nmc_sw_name_ok(sw))
        return -EINVAL;
    return in_rundir(rundir, do_lookup, &a);
}

struct hdr_arg {
    const char *name;               /* "valeX:Y" */
    uint32_t len;                   /* in (set) / out (get) */
    bool set;
};

static int do_port_hdr(const char *rundir, void *arg)
{
    struct hdr_arg *a = arg;
    char sw[NMC_SW_NAMELEN];
    const char *port;
    struct nmc_swmap m;
    int q;

    if (split(a->name, sw, &port) < 0 || nmc_sw_attach(rundir, sw, NMC_SW_LOCK, &m) < 0)
        return -ENXIO;                  /* no such switch: no such port */
    if ((q = nmc_sw_find(m.sw, a->name)) >= 0) {
        struct nmc_sw_port *sp = &m.sw->ports[q];
        if (a->set)
            __atomic_store_n(&sp->hdr_len, (uint16_t)a->len, __ATOMIC_RELEASE);
        else
            a->len = nmc_vhdr_len(sp);
    }
    nmc_sw_detach(&m);
    return q < 0 ? -ENXIO : 0;
}

/* PORT_HDR_SET of a VALE port on its switch ("valeX:Y"): its virtio-net
 * header length, 0, 10 or 12 (else EINVAL, looked at first, as netmap);
 * ENXIO when there is no such port. */
int nmc_vale_hdr_set(const char *rundir, const char *name, uint32_t len)
{
    struct hdr_arg a = { .name = name, .len = len, .set = true };

    if (len != 0 && len != 10 && len != 12)
        return -EINVAL;
    if (!name || strlen(name) >= NMC_NAMELEN)
        return -ENXIO;
    return in_rundir(rundir, do_port_hdr, &a);
}

/* PORT_HDR_GET of a VALE port on its switch: its header length (>= 0). */
int nmc_vale_hdr_get(const char *rundir, const char *name)
{
    struct hdr_arg a = { .name = name };
    int err;

    if (!name || strlen(name) >= NMC_NAMELEN)
        return -ENXIO;
    err = in_rundir(rundir, do_port_hdr, &a);
    return err < 0 ? err : (int)a.len;
}
