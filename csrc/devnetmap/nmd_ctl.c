/*
 * nmd_ctl.c -- serving netmap's control requests on an emulated
 * descriptor: NIOCCTRL (API 14) and the legacy NIOCREGIF/NIOCGINFO, with
 * netmap's errnos (netmap.md sections 1.7-1.11), and the sync ioctls.
 *
 * Names are kernel names (nr_name), resolved as netmap_get_na does (split
 * by nmc_portname_split, the engine's port-name layer): a "{" or "}" makes
 * a pipe of the name before it, "val..." a VALE port, anything else an
 * interface or, when there is none, a persistent port.  Interfaces (ENXIO when there is none) are
 * registered through nmcompat exec's control plane (nmd_nic.c).
 */
#include "nmd.h"
#include "nmcompat_portspec.h"

#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#define KNOWN_FLAGS (NR_EXCLUSIVE | NR_RX_RINGS_ONLY | NR_TX_RINGS_ONLY)
#define MONITOR_FLAGS (NR_MONITOR_TX | NR_MONITOR_RX | NR_ZCOPY_MON)
/* An open only to answer an information request binds no ring, so that a
 * port registered with NR_EXCLUSIVE answers too, as netmap's lookup does. */
#define NO_RINGS (NR_RX_RINGS_ONLY | NR_TX_RINGS_ONLY)

/* A persistent port (VALE_NEWIF) named by itself, as netmap opens the
 * interface NEWIF made: a VALE port to nmc_vale_open (no switch in the name). */
static bool is_persistent(const char *name, struct nmc_portname *t)
{
    struct nmc_port_info info;

    if (nmc_vale_port_info(NULL, name, &info) < 0)
        return false;
    t->val_prefix = t->vale = true;
    return true;
}

/* What a kernel name names, split by nmc_portname_split as netmap_get_na
 * does; -EINVAL for a malformed one (empty, unterminated, an empty pipe
 * parent or id, "val..." without ':'), -ENXIO for a
 * missing interface. */
static int resolve(const char *name, struct nmc_portname *t)
{
    if (nmc_portname_split(name, t) < 0)
        return -EINVAL;
    if (t->pipe_role != NMC_PORTSPEC_PIPE_NONE)
        return t->parent[0] != '\0' && t->pipe_id[0] != '\0' ? 0 : -EINVAL;
    if (t->val_prefix)
        return t->vale ? 0 : -EINVAL;
    if (if_nametoindex(name))
        return 0;
    return is_persistent(name, t) ? 0 : -ENXIO;
}

/* Neither a pipe nor a VALE port: an interface. */
static bool names_nic(const struct nmc_portname *t)
{
    return t->pipe_role == NMC_PORTSPEC_PIPE_NONE && !t->val_prefix;
}

static int open_target(const struct nmc_portname *t, struct nmc_pipe_req *req, struct nmc_port **out)
{
    if (names_nic(t) && (req->flags & MONITOR_FLAGS)) {
        req->parent = t->parent;        /* a monitor of the NIC port some process has open */
        return nmc_monitor_open(req, out);
    }
    if (names_nic(t))
        return nmd_nic_open(t->parent, req, out);
    req->parent = t->parent;
    if (t->pipe_role != NMC_PORTSPEC_PIPE_NONE) {
        req->pipe_id = t->pipe_id;
        req->role = t->pipe_role == NMC_PORTSPEC_PIPE_MASTER ? NMC_PIPE_MASTER : NMC_PIPE_SLAVE;
        return nmc_pipe_open(req, out);
    }
    return nmc_vale_open(req, out);
}

/* NETMAP_REQ_REGISTER of descriptor fd (two threads registering one fd:
 * the second gets EBUSY, as from netmap). */
static pthread_mutex_t register_lock = PTHREAD_MUTEX_INITIALIZER;

static int do_register_locked(int fd, struct nmd_file *f, const char *name, struct nmreq_register *reg,
                              struct nmd_extmem *x);
static uint16_t mem_id_to_ask(uint16_t id);

/* With NETMAP_REQ_OPT_EXTMEM the region is built in the file the given
 * memory maps (nmd_extmem.c); its reply is written once registered. */
static int do_register(int fd, struct nmd_file *f, const char *name, struct nmreq_header *h,
                       struct nmreq_register *reg)
{
    static struct nmd_extmem x;         /* large: one, under register_lock */
    int err, ext;

    pthread_mutex_lock(&register_lock);
    x.addr = 0;
    if ((err = ext = nmd_extmem_read(h, &x)) >= 0)
        err = do_register_locked(fd, f, name, reg, ext ? &x : NULL);
    if (x.addr)                         /* the option's answer: 0 or why it failed */
        nmd_extmem_reply(&x, err < 0 ? (uint32_t)-err : 0);
    pthread_mutex_unlock(&register_lock);
    return err;
}

static int do_register_locked(int fd, struct nmd_file *f, const char *name, struct nmreq_register *reg,
                              struct nmd_extmem *x)
{
    struct nmc_pipe_req req = { .spin_us = -1, .extmem = x ? &x->req : NULL };
    struct nmc_port *port;
    struct nmc_portname t;
    uint32_t mode = reg->nr_mode == NR_REG_DEFAULT ? NR_REG_ALL_NIC : reg->nr_mode;
    int err;

    if (f->port)
        return -EBUSY;
    if (mode != NR_REG_NULL && (err = resolve(name, &t)) < 0)
        return err;
    if (mode != NR_REG_NULL && mode != NR_REG_ALL_NIC && mode != NR_REG_ONE_NIC &&
        !(names_nic(&t) && (mode == NR_REG_SW || mode == NR_REG_NIC_SW || mode == NR_REG_ONE_SW)))
        return -EINVAL;                 /* pipe modes, unknown; host rings on pipes, VALE */
    req.mode = mode == NR_REG_NULL ? NR_REG_ALL_NIC : mode;  /* a null port binds every ring
                                                               (netmap_interp_ringid) */
    req.ringid = reg->nr_ringid;
    req.flags = reg->nr_flags & (KNOWN_FLAGS | NR_NO_TX_POLL);    /* the engine's poll honours it */
    if (mode != NR_REG_NULL)
        req.flags |= reg->nr_flags & MONITOR_FLAGS;     /* a monitor of the port named */
    req.mem_id = mode == NR_REG_NULL ? reg->nr_mem_id : mem_id_to_ask(reg->nr_mem_id);
    req.tx_rings = reg->nr_tx_rings;
    req.rx_rings = reg->nr_rx_rings;
    req.tx_slots = reg->nr_tx_slots;
    req.rx_slots = reg->nr_rx_slots;
    req.host_tx_rings = reg->nr_host_tx_rings;     /* NIC ports only (their host rings) */
    req.host_rx_rings = reg->nr_host_rx_rings;
    req.extra_bufs = reg->nr_extra_bufs;
    if (mode == NR_REG_NULL)
        req.parent = name;              /* a new null port in region nr_mem_id: "null:<name>" */
    if ((err = mode == NR_REG_NULL ? nmc_null_open(&req, &port) : open_target(&t, &req, &port)) < 0)
        return err;
    /* a port with a virtio-net header only for a program that takes it (netmap: EIO) */
    if (nmc_port_vhdr_len(port) != 0 && !(reg->nr_flags & NR_ACCEPT_VNET_HDR)) {
        nmc_port_close(port);
        return -EIO;
    }
    if (x && (err = nmd_extmem_fill(x, port)) < 0) {
        nmc_port_close(port);
        return err;
    }
    if ((err = nmc_port_info(port, &f->info)) < 0 || (err = nmd_bind(fd, f, port)) < 0) {
        nmc_port_close(port);
        return err;
    }
    reg->nr_offset = f->info.nr_offset;
    reg->nr_memsize = f->info.nr_memsize;
    reg->nr_tx_slots = f->info.nr_tx_slots;
    reg->nr_rx_slots = f->info.nr_rx_slots;
    reg->nr_tx_rings = f->info.nr_tx_rings;
    reg->nr_rx_rings = f->info.nr_rx_rings;
    reg->nr_host_tx_rings = f->info.nr_host_tx_rings;
    reg->nr_host_rx_rings = f->info.nr_host_rx_rings;
    reg->nr_mem_id = f->info.nr_mem_id;
    reg->nr_extra_bufs = f->info.nr_extra_bufs;
    return 0;
}

/* Memory ids an information request answered for a port nobody held,
 * whose region went with the port when the request closed it.  netmap's
 * pipes and VALE ports live in its default allocator, whose id (1) stays
 * valid, so a program may register with the id an information request
 * gave (NIOCGINFO then NIOCREGIF with the same struct, as netmap's older
 * programs do); here that id named a region that is gone (or kept as a
 * spare), and a REGISTER asking for it asks for the port's own region (0). */
#define TRANSIENT_IDS 16
static struct {
    pthread_mutex_t lock;
    uint16_t ids[TRANSIENT_IDS];
    unsigned next;
    struct nmc_region_status st;        /* large: one, under the lock */
} transient = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* No region has id, or only a spare (a VALE port's region kept, with no
 * port, for the next region of its shape) does. */
static bool region_gone_locked(uint16_t id)
{
    int err = nmc_region_status(NULL, id, &transient.st);

    return err == -ENOENT || err == -ENXIO || (err == 0 && transient.st.spare);
}

/* After an information request closed its port: remember id if its region
 * went with it. */
static void note_if_transient(uint16_t id)
{
    pthread_mutex_lock(&transient.lock);
    if (id != 0 && region_gone_locked(id))
        transient.ids[transient.next++ % TRANSIENT_IDS] = id;
    pthread_mutex_unlock(&transient.lock);
}

/* The mem id a REGISTER asks the engine for: 0 for an id of a region an
 * information request made and closed, if no region has it now. */
static uint16_t mem_id_to_ask(uint16_t id)
{
    bool own = false;

    pthread_mutex_lock(&transient.lock);
    for (unsigned k = 0; id != 0 && k < TRANSIENT_IDS && !own; k++)
        own = transient.ids[k] == id;
    own = own && region_gone_locked(id);
    pthread_mutex_unlock(&transient.lock);
    return own ? 0 : id;
}

/* What an information request on a name reports: a pipe or VALE port is
 * opened for the answer and closed again, binding no ring (netmap creates
 * and destroys it too); an interface is described as its REGISTER would
 * report it, without attaching XDP or creating a socket (nmd_nic_info). */
static int describe(const char *name, uint16_t mem_id, struct nmc_port_info *info,
                    struct nmc_pools_info *pools)
{
    struct nmc_pipe_req req = { .spin_us = -1, .mode = NR_REG_ALL_NIC, .mem_id = mem_id, .flags = NO_RINGS };
    struct nmc_portname t;
    struct nmc_port *port;
    int err = resolve(name, &t);

    if (err < 0)
        return err;
    if (names_nic(&t))
        return nmd_nic_info(t.parent, &req, info, pools);
    if ((err = open_target(&t, &req, &port)) < 0)
        return err;
    if ((err = nmc_port_info(port, info)) == 0)
        err = nmc_port_pools(port, pools);
    nmc_port_close(port);
    if (err == 0)
        note_if_transient(info->nr_mem_id);
    return err;
}

/* NETMAP_REQ_PORT_INFO_GET: a named port as describe() reports it; no
 * name: the memory region nr_mem_id (1 if 0). */
static int do_port_info(const char *name, struct nmreq_port_info_get *pi)
{
    struct nmc_port_info info;
    struct nmc_pools_info pools;
    int err;

    if (name[0] == '\0') {
        static struct nmc_region_status st;     /* large; control path, serialised below */
        static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
        uint16_t id = pi->nr_mem_id ? pi->nr_mem_id : 1;
        pthread_mutex_lock(&lock);
        err = nmc_region_status(NULL, id, &st);
        if (err == 0)
            pi->nr_memsize = st.memsize;
        pthread_mutex_unlock(&lock);
        pi->nr_mem_id = id;
        return err == -ENXIO || err == -ENOENT ? -EINVAL : err;
    }
    if ((err = describe(name, pi->nr_mem_id, &info, &pools)) < 0)
        return err;
    pi->nr_memsize = info.nr_memsize;
    pi->nr_tx_slots = info.nr_tx_slots;
    pi->nr_rx_slots = info.nr_rx_slots;
    pi->nr_tx_rings = info.nr_tx_rings;
    pi->nr_rx_rings = info.nr_rx_rings;
    pi->nr_host_tx_rings = info.nr_host_tx_rings;
    pi->nr_host_rx_rings = info.nr_host_rx_rings;
    pi->nr_mem_id = info.nr_mem_id;
    return 0;
}

/* NETMAP_REQ_POOLS_INFO_GET of a named port (as describe() reports it);
 * no name: EINVAL, as netmap. */
static int do_pools_info(const char *name, struct nmreq_pools_info *pi)
{
    struct nmc_port_info info;
    struct nmc_pools_info p;
    int err;

    if (name[0] == '\0')
        return -EINVAL;
    if ((err = describe(name, pi->nr_mem_id, &info, &p)) < 0)
        return err;
    memset(pi, 0, sizeof(*pi));
    pi->nr_memsize = p.memsize;
    pi->nr_mem_id = p.mem_id;
    pi->nr_if_pool_offset = p.if_pool_offset;
    pi->nr_if_pool_objtotal = p.if_objtotal;
    pi->nr_if_pool_objsize = p.if_objsize;
    pi->nr_ring_pool_offset = p.ring_pool_offset;
    pi->nr_ring_pool_objtotal = p.ring_objtotal;
    pi->nr_ring_pool_objsize = p.ring_objsize;
    pi->nr_buf_pool_offset = p.buf_pool_offset;
    pi->nr_buf_pool_objtotal = p.buf_objtotal;
    pi->nr_buf_pool_objsize = p.buf_objsize;
    return 0;
}

/* A VALE port on its switch ("valeX:Y", not a pipe of one). */
static bool names_vale_port(const struct nmc_portname *t)
{
    return t->pipe_role == NMC_PORTSPEC_PIPE_NONE && t->vale;
}

/* PORT_HDR_SET/GET, as netmap: SET checks the length first (0, 10 or 12,
 * else EINVAL), then looks up an existing VALE port only (anything else,
 * pipes included, or a port nobody opened: ENXIO).  GET answers a VALE
 * port's length (ENXIO if it does not exist); pipes and interfaces carry
 * no header: 0. */
static int do_port_hdr(uint16_t type, const char *name, struct nmreq_port_hdr *ph)
{
    struct nmc_portname t;
    int err;

    if (type == NETMAP_REQ_PORT_HDR_SET) {
        if (ph->nr_hdr_len != 0 && ph->nr_hdr_len != 10 && ph->nr_hdr_len != 12)
            return -EINVAL;
        if (resolve(name, &t) < 0 || !names_vale_port(&t))
            return -ENXIO;
        return nmc_vale_hdr_set(NULL, name, ph->nr_hdr_len);
    }
    if ((err = resolve(name, &t)) < 0)
        return err;
    if (!names_vale_port(&t)) {
        ph->nr_hdr_len = 0;
        return 0;
    }
    if ((err = nmc_vale_hdr_get(NULL, name)) < 0)
        return err;
    ph->nr_hdr_len = (uint32_t)err;
    return 0;
}

/* VALE_NEWIF, answered as netmap's nm_vi_create: the new port's rings,
 * slots and mem_id written back. */
static int vale_newif(const struct nmc_pipe_req *req, struct nmreq_vale_newif *n)
{
    struct nmc_port_info info;
    int err;

    if ((err = nmc_vale_newif(req)) < 0 || (err = nmc_vale_port_info(NULL, req->parent, &info)) < 0)
        return err;
    n->nr_tx_slots = info.nr_tx_slots;
    n->nr_rx_slots = info.nr_rx_slots;
    n->nr_tx_rings = info.nr_tx_rings;
    n->nr_rx_rings = info.nr_rx_rings;
    n->nr_mem_id = info.nr_mem_id;
    return 0;
}

/* netmap_bdg.h NM_BDG_NOPORT: NM_BDG_MAXPORTS (254) plus 1. */
#define BDG_NOPORT 255

/* The switch part of a VALE name: its length up to the first ':'. */
static size_t switch_len(const char *name)
{
    const char *colon = strchr(name, ':');

    return colon ? (size_t)(colon - name) : strlen(name);
}

/* VALE_LIST of a port named on a switch that does not hold it: netmap's
 * netmap_vale_list answers with the switch's index and port NM_BDG_NOPORT,
 * ENOENT only when there is no such switch (found here by walking). */
static int list_missing_port(struct nmc_vale_list *q)
{
    struct nmc_vale_list w = { .name = "" };
    size_t n = switch_len(q->name);

    while (nmc_vale_list(NULL, &w) == 0) {
        if (switch_len(w.name) == n && strncmp(w.name, q->name, n) == 0) {
            q->bridge_idx = w.bridge_idx;
            q->port_idx = BDG_NOPORT;
            return 0;
        }
        w.name[0] = '\0';
        w.port_idx++;
    }
    return -ENOENT;
}

static int do_vale(uint16_t type, const char *name, struct nmreq_header *h, void *body)
{
    switch (type) {
    case NETMAP_REQ_VALE_NEWIF: {
        struct nmreq_vale_newif *n = body;
        struct nmc_pipe_req req = { .parent = name, .spin_us = -1, .mode = NR_REG_ALL_NIC,
                                    .tx_slots = n->nr_tx_slots, .rx_slots = n->nr_rx_slots,
                                    .tx_rings = n->nr_tx_rings, .rx_rings = n->nr_rx_rings,
                                    .mem_id = n->nr_mem_id };
        return vale_newif(&req, n);
    }
    case NETMAP_REQ_VALE_DELIF: {
        int err = nmc_vale_delif(NULL, name);
        /* an interface that is no persistent port: nm_vi_destroy's EINVAL */
        return err == -ENXIO && if_nametoindex(name) ? -EINVAL : err;
    }
    case NETMAP_REQ_VALE_ATTACH: {
        struct nmreq_vale_attach *a = body;
        int idx;
        if (a->reg.nr_mode == NR_REG_NIC_SW)
            return -EOPNOTSUPP;         /* host rings: not yet */
        if ((idx = nmc_vale_attach(NULL, name)) < 0)
            return idx;
        a->port_index = (uint32_t)idx;
        return 0;
    }
    case NETMAP_REQ_VALE_DETACH: {
        struct nmreq_vale_detach *d = body;
        int idx = nmc_vale_detach(NULL, name);
        if (idx < 0)
            return idx;
        d->port_index = (uint32_t)idx;
        return 0;
    }
    default: {                          /* NETMAP_REQ_VALE_LIST */
        struct nmreq_vale_list *l = body;
        struct nmc_vale_list q = { .bridge_idx = l->nr_bridge_idx, .port_idx = l->nr_port_idx };
        int err;
        snprintf(q.name, sizeof(q.name), "%.*s", (int)sizeof(q.name) - 1, name);
        if ((err = nmc_vale_list(NULL, &q)) == -ENOENT && q.name[0])
            err = list_missing_port(&q);
        if (err < 0)
            return err;
        snprintf(h->nr_name, sizeof(h->nr_name), "%s", q.name);
        l->nr_bridge_idx = (uint16_t)q.bridge_idx;
        l->nr_port_idx = q.port_idx;
        return 0;
    }
    }
}

/* VALE_POLLING_ENABLE/DISABLE, as netmap's nm_bdg_polling: only a NIC
 * attached to a switch has polling threads, and no NIC is attached here, so
 * a VALE name is EOPNOTSUPP (netmap's answer for a VALE port that is no NIC
 * attachment); any other name EINVAL. */
static int do_polling(const char *name)
{
    struct nmc_portname t;

    if (nmc_portname_split(name, &t) < 0 || !t.vale || t.pipe_role != NMC_PORTSPEC_PIPE_NONE)
        return -EINVAL;
    return -EOPNOTSUPP;
}

/* SYNC_KLOOP_START/STOP, as netmap's netmap_kloop.c: a sleep over a second
 * EINVAL, an unregistered fd ENXIO; the kloop runs only in CSB mode, which
 * no fd here is in (the CSB option is never served), so START is EINVAL and
 * STOP, with no kloop running, 0. */
static int do_kloop(const struct nmd_file *f, uint16_t type, const struct nmreq_sync_kloop_start *ks)
{
    if (type == NETMAP_REQ_SYNC_KLOOP_START && ks->sleep_us > 1000000)
        return -EINVAL;
    if (!f->port)
        return -ENXIO;
    return type == NETMAP_REQ_SYNC_KLOOP_START ? -EINVAL : 0;
}

/* One NIOCCTRL request, its header and body already read in. */
int nmd_ctrl(int fd, struct nmd_file *f, struct nmreq_header *h, void *body)
{
    char name[NETMAP_REQ_IFNAMSIZ + 1];

    memcpy(name, h->nr_name, NETMAP_REQ_IFNAMSIZ);
    name[NETMAP_REQ_IFNAMSIZ] = '\0';
    switch (h->nr_reqtype) {
    case NETMAP_REQ_REGISTER:
        return do_register(fd, f, name, h, body);
    case NETMAP_REQ_PORT_INFO_GET:
        return do_port_info(name, body);
    case NETMAP_REQ_PORT_HDR_SET:
    case NETMAP_REQ_PORT_HDR_GET:
        return do_port_hdr(h->nr_reqtype, name, body);
    case NETMAP_REQ_VALE_ATTACH:
    case NETMAP_REQ_VALE_DETACH:
    case NETMAP_REQ_VALE_LIST:
    case NETMAP_REQ_VALE_NEWIF:
    case NETMAP_REQ_VALE_DELIF:
        return do_vale(h->nr_reqtype, name, h, body);
    case NETMAP_REQ_POOLS_INFO_GET:
        return do_pools_info(name, body);
    case NETMAP_REQ_VALE_POLLING_ENABLE:
    case NETMAP_REQ_VALE_POLLING_DISABLE:
        return do_polling(name);
    case NETMAP_REQ_SYNC_KLOOP_START:
    case NETMAP_REQ_SYNC_KLOOP_STOP:
        return do_kloop(f, h->nr_reqtype, body);
    default:
        /* CSB_ENABLE with the CSB option (without it nmd_ioctl.c says
         * EINVAL): CSB mode is not served. */
        return -EOPNOTSUPP;
    }
}
