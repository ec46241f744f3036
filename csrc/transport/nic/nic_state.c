/*
 * nic_state.c -- the NIC state of one region in this process (its ports,
 * their AF_XDP sockets on one UMEM, the buffer ledger, the owning process),
 * what a NIC port gives back when it closes, and fork().
 *
 * Buffers wander: a bridge swaps them between the NIC ports of a region
 * (nmc_forward), and AF_XDP RX hands out whichever buffer a frame arrived
 * in.  So a port owns what it holds when it closes, not what it was given
 * when it opened:
 *   - every slot of its TX rings (the kernel never changes a TX buffer; one
 *     handed to the kernel stays named by its slot), of its AF_PACKET RX
 *     rings (copied into) and of the rings of its record it did not bind;
 *   - the slots [hwcur, hwtail) of its AF_XDP RX rings, the user's part
 *     (the other slots name buffers already given back to FILL);
 *   - the buffers waiting for room in a FILL ring (spare lists);
 *   - the buffers in its AF_XDP FILL rings, kernel queues and RX rings,
 *     which the record's ledger records (in its share memory, with the
 *     spare lists: nic_xproc.c).
 * Once its sockets are closed the kernel holds none of them, and
 * nmc_nic_reclaim() frees them all.  The AF_XDP ports of this process on
 * one record (several openers of one interface) share its rings and its
 * sockets (nmc_nic_share), and so do those of other processes on the
 * record (nic_xproc.c): what is said above of "a port" is then said of all
 * of them, and the last to close, in whichever process, gives it back.
 * While a holder lives on without sockets (a port's device descriptor
 * open elsewhere), the last process to close the record's sockets gives
 * back what the kernel held and leaves every slot owning its buffer
 * (nmc_nic_retire), which the record's destruction gives back
 * (nmc_nic_destroy).
 *
 * fork(): a child inherits the parent's NIC ports but not the right to use
 * them.  An atfork handler closes the child's copies of every NIC socket
 * and ring mapping, so that the parent's close really releases them; in the
 * child, a sync or poll of an inherited port fails with EOWNERDEAD, and a
 * close frees only the child's copies (nmc_nic_foreign()).
 */
#include "nmc_nic.h"
#include "nmc_xsk.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static struct nmc_nic_state *g_states;
static pid_t g_self;                    /* this process: set again in a forked child */

void nmc_nic_lock(void) { pthread_mutex_lock(&g_lock); }
void nmc_nic_unlock(void) { pthread_mutex_unlock(&g_lock); }

static void before_fork(void) { pthread_mutex_lock(&g_lock); }
static void after_fork_parent(void) { pthread_mutex_unlock(&g_lock); }

/* Descriptors of NIC state made (under g_lock) and not stored where the
 * fork handler finds them yet (a socket before sh->q[], a duplicate of
 * another process's, the share memory before sh->shm_fd): a child forked
 * meanwhile closes its copies, each only if it is still that file (the
 * number may be reused once the parent dropped it). */
#define NMC_NIC_INFLIGHT 32
static struct { int fd; ino_t ino; } g_inflight[NMC_NIC_INFLIGHT];
static int g_ninflight;

/* List fd (lock held); -EAGAIN (and fd closed) when the list is full. */
int nmc_nic_inflight_add(int fd)
{
    struct stat sb;

    if (fd < 0)
        return fd;
    if (g_ninflight == NMC_NIC_INFLIGHT || fstat(fd, &sb) < 0) {
        close(fd);
        return -EAGAIN;
    }
    g_inflight[g_ninflight].fd = fd;
    g_inflight[g_ninflight++].ino = sb.st_ino;
    return fd;
}

/* fd is stored, or about to be closed (lock held). */
void nmc_nic_inflight_del(int fd)
{
    for (int i = 0; i < g_ninflight; i++)
        if (g_inflight[i].fd == fd) {
            g_inflight[i] = g_inflight[--g_ninflight];
            return;
        }
}

/* The same, taking the lock. */
void nmc_nic_settle(int fd)
{
    pthread_mutex_lock(&g_lock);
    nmc_nic_inflight_del(fd);
    pthread_mutex_unlock(&g_lock);
}

static void close_inflight(void)
{
    struct stat sb;

    for (int i = 0; i < g_ninflight; i++)
        if (fstat(g_inflight[i].fd, &sb) == 0 && sb.st_ino == g_inflight[i].ino)
            close(g_inflight[i].fd);
    g_ninflight = 0;
}

/* In the child: its copies of the parent's NIC sockets, ring mappings,
 * epoll sets and held descriptors go (a mapping alone would keep a socket
 * alive). */
static void after_fork_child(void)
{
    g_self = getpid();
    close_inflight();
    for (struct nmc_nic_state *st = g_states; st; st = st->next) {
        for (struct nmc_nic_share *sh = st->shares; sh; sh = sh->next) {
            for (uint32_t k = 0; k < sh->nq; k++)
                if (sh->q[k])
                    nmc_xsk_close(sh->q[k]);
            if (sh->shm_fd >= 0)        /* the mapping stays for the inherited port's close */
                close(sh->shm_fd);
            sh->shm_fd = -1;
        }
        for (int i = 0; i < st->nports; i++) {
            struct nmc_port *p = st->ports[i];
            nmc_pkt_close_socks(p);
            nmc_nic_host_close(p);      /* the tap: the parent's to keep */
            if (p->nic_hold > 0)        /* the XDP link: the parent's to keep */
                close(p->nic_hold - 1);
            p->nic_hold = 0;
            if (p->epfd >= 0)
                close(p->epfd);
            p->epfd = -1;
        }
    }
    pthread_mutex_unlock(&g_lock);
}

static void init_once(void)
{
    g_self = getpid();
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

bool nmc_nic_foreign(const struct nmc_port *p)
{
    const struct nmc_nic_state *st = nmc_nic_of(p);

    return st && st->pid != g_self;
}

static void unlink_state(struct nmc_nic_state *st)
{
    for (struct nmc_nic_state **pp = &g_states; *pp; pp = &(*pp)->next)
        if (*pp == st) {
            *pp = st->next;
            break;
        }
    free(st->ports);
    free(st);
}

static struct nmc_nic_state *find_or_make(const struct stat *sb)
{
    struct nmc_nic_state *st;

    for (st = g_states; st; st = st->next)
        if (st->dev == sb->st_dev && st->ino == sb->st_ino && st->pid == g_self)
            return st;
    if ((st = calloc(1, sizeof(*st))) == NULL)
        return NULL;
    st->dev = sb->st_dev;
    st->ino = sb->st_ino;
    st->pid = g_self;
    st->next = g_states;
    g_states = st;
    return st;
}

static int add_port(struct nmc_nic_state *st, struct nmc_port *p)
{
    if (st->nports == st->cap) {
        int cap = st->cap ? 2 * st->cap : 8;
        struct nmc_port **ports = realloc(st->ports, (size_t)cap * sizeof(*ports));
        if (!ports)
            return -ENOMEM;
        st->ports = ports;
        st->cap = cap;
    }
    st->ports[st->nports++] = p;
    p->tp = st;
    return 0;
}

/* Take a reference on the NIC state of p's region, creating it on the
 * first NIC open there. */
int nmc_nic_join(struct nmc_port *p)
{
    struct nmc_nic_state *st;
    struct stat sb;
    int err;

    pthread_once(&g_once, init_once);
    if (fstat(p->ctl_fd, &sb) < 0)
        return -errno;
    nmc_nic_lock();
    st = find_or_make(&sb);
    err = st ? add_port(st, p) : -ENOMEM;
    if (err < 0 && st && st->nports == 0)
        unlink_state(st);
    nmc_nic_unlock();
    return err;
}

/* Drop p's reference; the last one frees the state. */
void nmc_nic_leave(struct nmc_port *p)
{
    struct nmc_nic_state *st = nmc_nic_of(p);

    if (!st)
        return;
    nmc_nic_lock();
    for (int i = 0; i < st->nports; i++)
        if (st->ports[i] == p) {
            st->ports[i] = st->ports[--st->nports];
            break;
        }
    if (st->nports == 0)
        unlink_state(st);
    nmc_nic_unlock();
    p->tp = NULL;
}

/* A bound AF_XDP socket on the UMEM of p's region, or -1 (lock held). */
int nmc_nic_umem_peer(const struct nmc_port *p)
{
    const struct nmc_nic_state *st = nmc_nic_of(p);

    for (const struct nmc_nic_share *sh = st ? st->shares : NULL; sh; sh = sh->next)
        for (uint32_t k = 0; k < sh->nq; k++)
            if (sh->q[k] && sh->q[k]->fd >= 0)
                return sh->q[k]->fd;
    return -1;
}

/* Does a socket on this UMEM hold (ifindex, queue)?  The kernel answers a
 * shared-UMEM bind there with EINVAL (the new socket has its own FILL
 * ring), not with EBUSY.  A port's own record never does here: its
 * queues' sockets are shared (nmc_nic_share).  Lock held. */
bool nmc_nic_queue_taken(const struct nmc_port *p, uint32_t ifindex, uint32_t queue)
{
    const struct nmc_nic_state *st = nmc_nic_of(p);

    for (const struct nmc_nic_share *sh = st ? st->shares : NULL; sh; sh = sh->next)
        for (uint32_t k = 0; k < sh->nq; k++) {
            const struct nmc_xsk *x = sh->q[k];
            if (x && x->fd >= 0 && x->ifindex == ifindex && x->queue == queue)
                return true;
        }
    return false;
}

/* -- the sockets of a record ------------------------------------------------ */

/* The sockets p uses, or NULL (lock held).  Found by p itself, not by its
 * record: a port inherited across fork() is closed after its region is
 * unmapped. */
struct nmc_nic_share *nmc_nic_share_of(const struct nmc_port *p)
{
    const struct nmc_nic_state *st = nmc_nic_of(p);

    for (struct nmc_nic_share *sh = st ? st->shares : NULL; sh; sh = sh->next)
        for (int i = 0; i < sh->nusers; i++)
            if (sh->users[i] == p)
                return sh;
    return NULL;
}

static struct nmc_nic_share *make_share(struct nmc_nic_state *st, const struct nmc_port *p)
{
    uint32_t nq = p->rec->nrings[0][0] > p->rec->nrings[0][1] ? p->rec->nrings[0][0] : p->rec->nrings[0][1];
    struct nmc_nic_share *sh;

    if ((sh = calloc(1, sizeof(*sh))) == NULL)
        return NULL;
    if ((sh->q = calloc(nq + 1, sizeof(*sh->q))) == NULL) {
        free(sh);
        return NULL;
    }
    sh->rec = p->holder->port;
    sh->nq = nq;
    sh->shm_fd = sh->slot = -1;
    sh->next = st->shares;
    st->shares = sh;
    return sh;
}

/* p (joined to its region's state) joins the sockets of its record, made
 * on the record's first AF_XDP port here.  Lock held. */
struct nmc_nic_share *nmc_nic_share_join(struct nmc_port *p)
{
    struct nmc_nic_state *st = nmc_nic_of(p);
    struct nmc_nic_share *sh = st->shares;

    while (sh && sh->rec != p->holder->port)
        sh = sh->next;
    if (!sh && (sh = make_share(st, p)) == NULL)
        return NULL;
    if (sh->nusers == sh->cap) {
        int cap = sh->cap ? 2 * sh->cap : 4;
        struct nmc_port **users = realloc(sh->users, (size_t)cap * sizeof(*users));
        if (!users) {
            if (sh->nusers == 0) {      /* made just now: p was to be its first user */
                st->shares = sh->next;
                nmc_nic_share_free(sh);
            }
            return NULL;
        }
        sh->users = users;
        sh->cap = cap;
    }
    sh->users[sh->nusers++] = p;
    return sh;
}

/* p leaves the sockets it uses; the share if p was its last user (taken
 * out of the state: the caller closes, reclaims and frees it), else NULL.
 * Lock held. */
struct nmc_nic_share *nmc_nic_share_leave(struct nmc_port *p)
{
    struct nmc_nic_state *st = nmc_nic_of(p);
    struct nmc_nic_share *sh = nmc_nic_share_of(p);

    if (!sh)
        return NULL;
    for (int i = 0; i < sh->nusers; i++)
        if (sh->users[i] == p) {
            sh->users[i] = sh->users[--sh->nusers];
            break;
        }
    if (sh->nusers > 0)
        return NULL;
    for (struct nmc_nic_share **pp = &st->shares; *pp; pp = &(*pp)->next)
        if (*pp == sh) {
            *pp = sh->next;
            break;
        }
    return sh;
}

void nmc_nic_share_free(struct nmc_nic_share *sh)
{
    if (!sh)
        return;
    for (uint32_t k = 0; k < sh->nq; k++)
        free(sh->q[k]);
    free(sh->q);
    free(sh->users);
    free(sh);
}

/* -- what a port owns ------------------------------------------------------ */

typedef void (*buf_fn)(void *ctx, uint32_t idx, uint8_t where);

static bool tx_in_flight(const struct nmc_xsk *x, const struct nmc_kring *kr, uint32_t j, uint32_t n)
{
    uint32_t d = nmc_dist(j, kr->hwcur, n);

    return x && d >= 1 && d <= nmc_xsk_inflight(x);
}

static void all_slots(const struct netmap_ring *ring, uint32_t n, buf_fn fn, void *ctx)
{
    for (uint32_t j = 0; j < n; j++)
        fn(ctx, nmc_user_u32(&ring->slot[j].buf_idx), NMC_NIC_BUF_SLOT);
}

/* Slots [from, to) of a ring of n slots; from, to < n. */
static void slot_range(const struct netmap_ring *ring, uint32_t from, uint32_t to, uint32_t n,
                       buf_fn fn, void *ctx)
{
    for (uint32_t j = from; j != to; j = nmc_next(j, n))
        fn(ctx, nmc_user_u32(&ring->slot[j].buf_idx), NMC_NIC_BUF_SLOT);
}

/* One ring of the record; x: our copy of its queue's AF_XDP socket, or
 * NULL; sh: the record's sockets with its share memory (AF_XDP), or NULL.
 * The share memory's shape is sh's copy, never its header. */
static void one_ring(const struct netmap_ring *ring, const struct nmc_kring *kr, uint32_t n,
                     uint32_t dir, uint32_t k, const struct nmc_xsk *x,
                     const struct nmc_nic_share *sh, buf_fn fn, void *ctx)
{
    const struct nmc_nic_shm *shm = sh ? sh->shm : NULL;

    if (dir == 0) {
        for (uint32_t j = 0; j < n; j++)
            fn(ctx, nmc_user_u32(&ring->slot[j].buf_idx),
               tx_in_flight(x, kr, j, n) ? NMC_NIC_BUF_QUEUE : NMC_NIC_BUF_SLOT);
    } else if (shm && k < sh->nq && shm->q[k].ever) {  /* AF_XDP RX, stocked: the user's part */
        const uint32_t *spare = nmc_nic_shm_spare(sh, k);
        uint32_t cur = kr->hwcur, tail = kr->hwtail;
        uint32_t nspare = __atomic_load_n(&shm->q[k].nspare, __ATOMIC_RELAXED);
        if (cur < n && tail < n)
            slot_range(ring, cur, tail, n, fn, ctx);
        for (uint32_t i = 0; i < nspare && i < sh->spare_cap; i++)
            fn(ctx, spare[i], NMC_NIC_BUF_SPARE);
    } else {
        all_slots(ring, n, fn, ctx);
    }
}

/* Every buffer of p's record, once each, with sh its AF_XDP sockets (an
 * AF_PACKET port: none); see the top of this file. */
static void each_owned(struct nmc_port *p, const struct nmc_nic_share *sh, buf_fn fn, void *ctx)
{
    const struct nmc_port_rec *rec = p->rec;
    const struct nmc_nic_shm *shm = sh ? sh->shm : NULL;
    const struct nmc_kring *krs = nmc_krings(p->ctl, &p->g);

    for (uint32_t d = 0; d < 2; d++) {
        uint32_t nslots = rec->nslots[0][d];
        for (uint32_t k = 0; k < rec->nrings[0][d]; k++) {
            uint32_t obj = rec->first_obj[0][d] + k;
            const struct nmc_xsk *x = sh && k < sh->nq ? sh->q[k] : NULL;
            if (obj < p->g.ring_num && nslots <= NMC_MAXSLOTS)
                one_ring(nmc_ring_obj(p->mem, &p->g, obj), &krs[obj], nslots, d, k, x, sh, fn, ctx);
        }
    }
    if (shm) {
        const uint16_t *ledger = nmc_nic_shm_ledger(sh);
        for (uint32_t b = 0; b < sh->buf_num; b++)
            if (ledger[b])
                fn(ctx, b, NMC_NIC_BUF_QUEUE);
    }
}

static void reclaim_one(void *arg, uint32_t idx, uint8_t where)
{
    (void)where;
    nmc_buf_free(arg, idx);             /* ignores 0, 1, out of range, already free */
}

/* Every slot of rec's rings names no buffer (buffer 0) after fn(r, its
 * buffer), if fn. */
static void clear_slots(struct nmc_region *r, const struct nmc_port_rec *rec,
                        void (*fn)(struct nmc_region *r, uint32_t idx))
{
    for (uint32_t d = 0; d < 2; d++) {
        uint32_t n = rec->nslots[0][d], first = rec->first_obj[0][d];
        for (uint32_t k = 0; n <= NMC_MAXSLOTS && k < rec->nrings[0][d]; k++) {
            if (first >= r->g.ring_num || k >= r->g.ring_num - first)
                break;
            struct netmap_ring *ring = nmc_ring_obj(r->mem, &r->g, first + k);
            for (uint32_t j = 0; j < n; j++) {
                if (fn)
                    fn(r, nmc_user_u32(&ring->slot[j].buf_idx));
                ring->slot[j].buf_idx = 0;
            }
        }
    }
}

static void clear_queues(struct nmc_nic_share *sh)
{
    memset(nmc_nic_shm_ledger(sh), 0, sh->buf_num * sizeof(uint16_t));
    for (uint32_t k = 0; k < sh->nq; k++)
        sh->shm->q[k].nspare = 0;
}

/* Give every buffer of p's record back to the region: p is the record's
 * last port anywhere, sh (NULL for AF_PACKET) its sockets, closed; the
 * region lock is held.  Its slots then name none (nmc_nic_destroy). */
void nmc_nic_reclaim(struct nmc_port *p, struct nmc_region *r, struct nmc_nic_share *sh)
{
    each_owned(p, sh, reclaim_one, r);
    clear_slots(r, p->rec, NULL);
    if (sh && sh->shm)
        clear_queues(sh);
}

/* RX ring k of rec, stocked: its slots outside the user's part [hwcur,
 * hwtail) named buffers given to FILL; each gets a buffer of its own (0
 * if the pool has none left). */
static void own_rx_slots(struct nmc_region *r, const struct nmc_port_rec *rec, uint32_t k)
{
    uint32_t obj = rec->first_obj[0][1] + k, n = rec->nslots[0][1], idx[NMC_MAXSLOTS];

    if (k >= rec->nrings[0][1] || obj >= r->g.ring_num || n == 0 || n > NMC_MAXSLOTS)
        return;
    const struct nmc_kring *kr = &nmc_krings(r->ctl, &r->g)[obj];
    struct netmap_ring *ring = nmc_ring_obj(r->mem, &r->g, obj);
    uint32_t cur = kr->hwcur, tail = kr->hwtail, j = tail < n ? tail : 0;
    uint32_t stale = n - (cur < n && tail < n ? nmc_dist(cur, tail, n) : 0);
    bool got = nmc_buf_alloc(r, idx, stale) == 0;

    for (uint32_t i = 0; i < stale; i++, j = nmc_next(j, n))
        ring->slot[j].buf_idx = got ? idx[i] : 0;
}

/* The record's sockets are closed in every process (p's was the last to
 * have them) while a holder lives on (a device descriptor open elsewhere):
 * the kernel holds none of the buffers the ledger and the spare lists
 * name, so they go back to the region, and the slots of each stocked RX
 * ring that named such buffers get their own.  Every slot of the record
 * then owns its buffer, as a new record's do, which rec->nic_shm_ino 0
 * says: a later open on the record stocks its sockets afresh, and the
 * record's destruction gives the slots' buffers back (nmc_nic_destroy).
 * Region lock held; sh's share memory still mapped. */
void nmc_nic_retire(struct nmc_port *p, struct nmc_region *r, struct nmc_nic_share *sh)
{
    const uint16_t *ledger = nmc_nic_shm_ledger(sh);

    for (uint32_t b = 0; b < sh->buf_num; b++)
        if (ledger[b])
            nmc_buf_free(r, b);
    for (uint32_t k = 0; k < sh->nq; k++) {
        const uint32_t *spare = nmc_nic_shm_spare(sh, k);
        uint32_t nspare = __atomic_load_n(&sh->shm->q[k].nspare, __ATOMIC_RELAXED);
        for (uint32_t i = 0; i < nspare && i < sh->spare_cap; i++)
            nmc_buf_free(r, spare[i]);
    }
    for (uint32_t k = 0; k < sh->nq; k++)
        if (sh->shm->q[k].ever)
            own_rx_slots(r, p->rec, k);
    clear_queues(sh);
    p->rec->nic_shm_ino = 0;
}

/* A NIC record nobody holds is freed (reap.c; region lock held).  Its
 * slots' buffers go back where the slots own them: an AF_PACKET record's
 * (copied into), an AF_XDP record's without share memory (never stocked,
 * or retired).  After nmc_nic_reclaim they name none; an AF_XDP record
 * whose last processes were killed keeps its buffers allocated (the ledger
 * that placed them went with them). */
void nmc_nic_destroy(struct nmc_region *r, const char *rundir, struct nmc_port_rec *rec)
{
    (void)rundir;
    if (rec->kind == NMC_KIND_NIC && rec->nic_shm_ino != 0)
        return;
    clear_slots(r, rec, nmc_buf_free);
}

struct list_ctx { uint32_t *idx; uint8_t *where; uint32_t cap, buf_num; uint64_t n; };

static void list_one(void *arg, uint32_t idx, uint8_t where)
{
    struct list_ctx *c = arg;

    if (idx < 2 || idx >= c->buf_num)
        return;                         /* not a buffer (a corrupted slot) */
    if (c->n < c->cap) {
        c->idx[c->n] = idx;
        if (c->where)
            c->where[c->n] = where;
    }
    c->n++;
}

int nmc_nic_bufs(struct nmc_port *p, uint32_t *idx, uint8_t *where, uint32_t cap)
{
    struct list_ctx c = { idx, where, idx ? cap : 0, p ? p->g.buf_num : 0, 0 };

    if (!p || (!p->xsk && !p->pkts))
        return -EINVAL;
    if (nmc_nic_foreign(p))
        return -EOWNERDEAD;
    nmc_nic_lock();
    each_owned(p, nmc_nic_share_of(p), list_one, &c);
    nmc_nic_unlock();
    return c.n > INT_MAX ? -EOVERFLOW : (int)c.n;
}

int nmc_nic_rx_release(struct nmc_port *p, struct nmc_lring *lr, uint32_t *head,
                       void (*pass)(struct nmc_port *p, struct nmc_lring *lr, uint32_t head))
{
    struct nmc_kring *kr = lr->kr;

    if (nmc_nic_foreign(p))
        return -EOWNERDEAD;             /* inherited across fork(): the sockets are not ours */
    if (nmc_rxsync_prologue(lr, head) < 0) {
        nmc_ring_reinit(lr, &p->g);
        return -EINVAL;
    }
    *head = nmc_rx_whole_head(p, lr, *head);
    pass(p, lr, *head);
    for (uint32_t j = kr->hwcur; j != *head; j = nmc_next(j, lr->n))
        lr->ring->slot[j].flags &= ~NS_BUF_CHANGED;
    kr->hwcur = *head;
    return 0;
}

void nmc_nic_rx_publish(struct nmc_lring *lr, uint32_t j, uint32_t pkts, uint32_t bytes)
{
    struct nmc_kring *kr = lr->kr;

    kr->hwtail = kr->rtail = j;
    lr->ring->tail = j;
    nmc_ring_count(kr, pkts, bytes);
}
