/*
 * nic_xproc.c -- one AF_XDP NIC record used by several processes (netmap:
 * fds of any process on one kring).
 *
 * A NIC open that finds a live AF_XDP record of the interface (same ring
 * count) in another process's NIC region joins that region and record
 * (nmc_nic_find_rec) instead of making its own: one UMEM, one netmap ring
 * per queue, one AF_XDP socket per queue.  What all the processes on the
 * record must agree on lives in the record's *share memory*, a memfd each
 * of them maps (struct nmc_nic_shm): the buffer ledger (which buffers a
 * queue's FILL ring, kernel queue or RX ring holds), the FILL spare lists,
 * each queue's socket (its inode, ring sizes, bind flags, whether its FILL
 * ring was stocked) and, per process, the descriptor numbers of its copies
 * of the sockets.  A joining process takes the memfd and each socket it
 * needs as duplicates of another process's descriptors (pidfd_getfd; the
 * kernel checks ptrace rights over that process), checked by inode, so a
 * reused pid or descriptor number is never taken for the real one.  The
 * region names the memfd by inode (rec->nic_shm_ino) and lists every
 * process that has it with its descriptor number (rec->nic_shm_fds): a
 * joiner tries each, so the memfd stays reachable while any process on
 * the record has it, whichever closed its port first.
 *
 * The tables are written at open and close, under the region lock; the
 * ledger and a queue's spare list by the syncs of that queue's RX ring,
 * which one process at a time is inside (ring_own.c).  The process whose
 * close finds no other live holder on the record gives every buffer back,
 * and, with a holder left that has no sockets (a device descriptor open
 * elsewhere), the last process listed here gives back what the kernel
 * held (nic_state.c); a process killed leaves its copies to the kernel and
 * its table entry to the next process that needs one.
 */
#include "nmc_xsk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001u
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002u
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS (1024 + 9)
#define F_GET_SEALS (1024 + 10)
#endif
#ifndef F_SEAL_SEAL
#define F_SEAL_SEAL   0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW   0x0004
#endif
/* The share memory's size is fixed for its life: nobody can cut it under a
 * mapping (SIGBUS) or hand a joiner a short one. */
#define SHM_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW)

#define SHM_MAGIC 0x6e6d6873u            /* "nmhs" */

/* The last refusal of a duplicate in this thread (pidfd_getfd: EPERM). */
static __thread int32_t refused_pid;
static __thread int refused_err;

void nmc_nic_refusal_clear(void)
{
    refused_pid = 0;
    refused_err = 0;
}

int nmc_nic_refusal(int32_t *pid)
{
    if (pid)
        *pid = refused_pid;
    return refused_err;
}

/* Descriptor fd of process pid as one of ours (close-on-exec), if it is
 * still the file of inode ino: -ESRCH (gone), -EPERM (no ptrace rights,
 * noted), -ESTALE (another file now), -EBADF. */
static int fetch_fd(pid_t pid, int fd, uint64_t ino)
{
    int pfd, got, err = 0;
    struct stat sb;

    nmc_nic_lock();                     /* a fork meanwhile closes the child's copies */
    if ((pfd = (int)syscall(SYS_pidfd_open, pid, 0)) < 0) {
        err = -errno;
        nmc_nic_unlock();
        return err;
    }
    if ((got = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0)) < 0)
        err = -errno;
    else
        got = nmc_nic_inflight_add(got);    /* until stored (the caller settles it) */
    close(pfd);
    nmc_nic_unlock();
    if (got < 0 && err == 0)
        return got;
    if (err == -EPERM || err == -EACCES) {
        refused_pid = pid;
        refused_err = -err;
        return -EPERM;
    }
    if (err < 0)
        return err;
    if (fstat(got, &sb) < 0 || (uint64_t)sb.st_ino != ino) {
        nmc_nic_settle(got);
        close(got);
        return -ESTALE;
    }
    return got;
}

/* Close a descriptor fetch_fd or make_shm listed as in flight. */
static void drop_fd(int fd)
{
    nmc_nic_settle(fd);
    close(fd);
}

/* -- the share memory -------------------------------------------------------- */

static size_t spare_ofs(void)
{
    return (sizeof(struct nmc_nic_shm) + 63) & ~(size_t)63;
}

static size_t ledger_ofs(uint32_t nq, uint32_t spare_cap)
{
    return spare_ofs() + (((size_t)nq * spare_cap * sizeof(uint32_t) + 63) & ~(size_t)63);
}

static size_t shm_size(uint32_t nq, uint32_t spare_cap, uint32_t buf_num)
{
    return ledger_ofs(nq, spare_cap) + (size_t)buf_num * sizeof(uint16_t);
}

/* The spare list of ring `ring` (< sh->nq) and the ledger, placed by the
 * shape this process checked when it mapped the memory (sh's own copies),
 * never by the header, which any process on the record can rewrite. */
uint32_t *nmc_nic_shm_spare(const struct nmc_nic_share *sh, uint32_t ring)
{
    return (uint32_t *)((uint8_t *)sh->shm + spare_ofs()) + (size_t)ring * sh->spare_cap;
}

uint16_t *nmc_nic_shm_ledger(const struct nmc_nic_share *sh)
{
    return (uint16_t *)((uint8_t *)sh->shm + ledger_ofs(sh->nq, sh->spare_cap));
}

static uint32_t pow2(uint32_t v)
{
    uint32_t p = 1;

    while (p < v)
        p <<= 1;
    return p;
}

/* Map the share memory in fd, if its shape is the one this record has
 * (nq rings, the region's buf_num, a spare list no longer than 4 times
 * the largest ring) and it is sealed at exactly that size.  The shape is
 * kept in sh: what is bounded by it is never read from the memory again. */
static int map_shm(struct nmc_nic_share *sh, int fd, uint32_t buf_num)
{
    struct nmc_nic_shm head;
    struct stat sb;
    size_t len;
    void *m;

    if (pread(fd, &head, sizeof(head.magic) * 4, 0) != (ssize_t)(sizeof(head.magic) * 4))
        return -EPROTO;
    if (head.magic != SHM_MAGIC || head.nq != sh->nq || sh->nq > NMC_NIC_MAXQ ||
        head.buf_num != buf_num || head.spare_cap == 0 ||
        head.spare_cap > pow2(NMC_XSK_RX_FACTOR * NMC_MAXSLOTS))
        return -EPROTO;
    len = shm_size(head.nq, head.spare_cap, head.buf_num);
    if ((fcntl(fd, F_GET_SEALS) & SHM_SEALS) != SHM_SEALS || fstat(fd, &sb) < 0 ||
        (uint64_t)sb.st_size != (uint64_t)len)
        return -EPROTO;
    if ((m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)
        return -errno;
    sh->shm = m;
    sh->shm_len = len;
    sh->shm_fd = fd;
    sh->buf_num = head.buf_num;
    sh->spare_cap = head.spare_cap;
    return 0;
}

/* A new share memory for p's record (the first process on it). */
static int make_shm(struct nmc_port *p, struct nmc_nic_share *sh)
{
    const struct nmc_port_rec *rec = p->rec;
    uint32_t slots = rec->nslots[0][0] > rec->nslots[0][1] ? rec->nslots[0][0] : rec->nslots[0][1];
    uint32_t cap = pow2(NMC_XSK_RX_FACTOR * slots);
    struct nmc_nic_shm head = { .magic = SHM_MAGIC, .nq = sh->nq, .buf_num = p->g.buf_num,
                                .spare_cap = cap };
    int fd, err;
    struct stat sb;

    nmc_nic_lock();                     /* listed until stored: see fetch_fd */
    fd = (int)syscall(SYS_memfd_create, "nmcompat-nic-share", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    fd = fd < 0 ? -errno : nmc_nic_inflight_add(fd);
    nmc_nic_unlock();
    if (fd < 0)
        return fd;
    if (ftruncate(fd, (off_t)shm_size(head.nq, cap, head.buf_num)) < 0 ||
        pwrite(fd, &head, sizeof(head.magic) * 4, 0) != (ssize_t)(sizeof(head.magic) * 4) ||
        fcntl(fd, F_ADD_SEALS, SHM_SEALS) < 0 || fstat(fd, &sb) < 0)
        err = -errno;
    else
        err = map_shm(sh, fd, p->g.buf_num);
    if (err < 0) {
        drop_fd(fd);
        return err;
    }
    p->rec->nic_shm_ino = (uint64_t)sb.st_ino;
    return 0;
}

/* The share memory of p's record from another process that has it. */
static int fetch_shm(struct nmc_port *p, struct nmc_nic_share *sh)
{
    const struct nmc_port_rec *rec = p->rec;
    int err = -ENXIO, fd;

    for (uint32_t i = 0; i < NMC_SHM_PROCS; i++) {
        if (rec->nic_shm_fds[i].pid <= 0 || rec->nic_shm_fds[i].pid == getpid() ||
            rec->nic_shm_fds[i].fd <= 0)
            continue;
        if ((fd = fetch_fd(rec->nic_shm_fds[i].pid, rec->nic_shm_fds[i].fd - 1, rec->nic_shm_ino)) >= 0) {
            if ((err = map_shm(sh, fd, p->g.buf_num)) < 0)
                drop_fd(fd);
            return err;
        }
        if (fd == -EPERM)
            err = -EBUSY;               /* refused: never a second stream instead */
    }
    return err;
}

/* Is /proc that of our pid namespace (its "self" is our pid)? */
static bool proc_is_ours(void)
{
    char buf[32];
    ssize_t n = readlink("/proc/self", buf, sizeof(buf) - 1);

    if (n <= 0)
        return false;
    buf[n] = 0;
    return strtol(buf, NULL, 10) == (long)getpid();
}

/* Is descriptor fd of process pid the file of inode ino?  A process gone,
 * a zombie (its pid lives, its descriptors do not), one that exec'd or
 * closed it: no; one we may not look into, or a /proc of another pid
 * namespace (then: is pid alive?): yes, for all we know. */
static bool proc_has_file(pid_t pid, int fd, uint64_t ino)
{
    char path[64];
    struct stat sb;

    if (!proc_is_ours())
        return !(kill(pid, 0) < 0 && errno == ESRCH);
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
    if (stat(path, &sb) == 0)
        return (uint64_t)sb.st_ino == ino;
    return errno != ENOENT && errno != ESRCH;
}

/* Does the process of entry i of rec's list still have the share memory
 * (by the descriptor listed)?  Entries are written by every process on the
 * record: a pid or descriptor number out of range is nobody's. */
static bool listed_has_shm(const struct nmc_port_rec *rec, int i)
{
    pid_t pid = rec->nic_shm_fds[i].pid;
    int32_t fd = rec->nic_shm_fds[i].fd;

    return pid > 0 && fd > 0 && proc_has_file(pid, fd - 1, rec->nic_shm_ino);
}

/* Is pid on rec: listed with a descriptor still of the share memory? */
static bool pid_on_record(const struct nmc_port_rec *rec, pid_t pid)
{
    for (int i = 0; i < NMC_SHM_PROCS; i++)
        if (rec->nic_shm_fds[i].pid == pid && listed_has_shm(rec, i))
            return true;
    return false;
}

/* List this process's descriptor of the share memory in p's record (its
 * own entry, a free one, or one of a process whose listed descriptor is no
 * longer the memfd: gone, a zombie, exec'd, or a port closed where the
 * region was not mapped).  Region lock held. */
static int list_shm_fd(struct nmc_port_rec *rec, int fd)
{
    int take = -1;

    for (int i = 0; i < NMC_SHM_PROCS; i++) {
        pid_t pid = rec->nic_shm_fds[i].pid;
        if (pid == getpid()) {
            take = i;
            break;
        }
        if (take < 0 && !listed_has_shm(rec, i))
            take = i;
    }
    if (take < 0)
        return -EBUSY;
    rec->nic_shm_fds[take].pid = getpid();
    rec->nic_shm_fds[take].fd = fd + 1;
    return 0;
}

/* This process no longer has the share memory of rec.  Region lock held. */
void nmc_nic_shm_unlist(struct nmc_port_rec *rec)
{
    for (int i = 0; i < NMC_SHM_PROCS; i++)
        if (rec->nic_shm_fds[i].pid == getpid())
            memset(&rec->nic_shm_fds[i], 0, sizeof(rec->nic_shm_fds[i]));
}

/* This process's entry in the table of shm (its own, a free one or one of
 * a process no longer on rec: see pid_on_record), or -EBUSY. */
static int take_slot(struct nmc_nic_shm *shm, const struct nmc_port_rec *rec)
{
    int freeslot = -1;

    for (int i = 0; i < NMC_SHM_PROCS; i++) {
        pid_t pid = shm->procs[i].pid;
        if (pid == getpid())
            return i;
        if (freeslot < 0 && (pid <= 0 || !pid_on_record(rec, pid)))
            freeslot = i;
    }
    if (freeslot < 0) {
        refused_err = EUSERS;           /* the limit, not the kernel's refusal */
        refused_pid = 0;
        return -EBUSY;
    }
    memset(&shm->procs[freeslot], 0, sizeof(shm->procs[freeslot]));
    shm->procs[freeslot].pid = getpid();
    return freeslot;
}

/* p's process joins the share memory of p's record (sh new in this
 * process): made, or taken from another process.  Region lock held. */
int nmc_nic_shm_join(struct nmc_port *p, struct nmc_nic_share *sh)
{
    int err, slot;

    bool adopted = p->holder->pid != getpid();

    if (!sh->shm) {
        err = p->rec->nic_shm_ino ? fetch_shm(p, sh) : -ENXIO;
        if (err == -ENXIO && adopted)
            return -EOWNERDEAD;         /* its opener, and the sockets, are gone */
        if (err == -ENXIO)              /* the first process, or every other one is gone */
            err = make_shm(p, sh);
        if (err < 0)
            return err;
        nmc_nic_settle(sh->shm_fd);     /* stored: the fork handler closes sh->shm_fd */
    }
    if ((slot = take_slot(sh->shm, p->rec)) < 0)
        return slot;
    sh->slot = slot;
    return list_shm_fd(p->rec, sh->shm_fd);
}

/* -- the queues' sockets ------------------------------------------------------ */

/* A copy of the socket of ring `ring` from another process on the record:
 * 0 and *fd (-1: nobody has one), or -EBUSY (refused). */
static int fetch_sock(struct nmc_nic_share *sh, uint32_t ring, int *fd)
{
    struct nmc_nic_shm *shm = sh->shm;
    int refused = 0;

    *fd = -1;
    for (int i = 0; i < NMC_SHM_PROCS && shm->q[ring].sock_ino; i++) {
        const struct nmc_shm_proc *e = &shm->procs[i];
        if (e->pid == 0 || e->pid == getpid() || e->sock_fd[ring] <= 0)
            continue;
        if ((*fd = fetch_fd(e->pid, e->sock_fd[ring] - 1, shm->q[ring].sock_ino)) >= 0)
            return 0;
        refused |= *fd == -EPERM;
    }
    *fd = -1;
    return refused ? -EBUSY : 0;
}

/* A socket of the record's UMEM from another process, to bind a new one
 * with XDP_SHARED_UMEM (the caller closes it), or -1. */
int nmc_nic_shm_umem_peer(struct nmc_nic_share *sh, int *err)
{
    int fd = -1;

    *err = 0;
    for (uint32_t k = 0; k < sh->nq && fd < 0 && *err == 0; k++)
        *err = fetch_sock(sh, k, &fd);
    return fd;
}

/* Ring `ring`'s socket as another process made it: a copy, its rings
 * mapped.  *out NULL when no process has one. */
int nmc_nic_shm_queue(struct nmc_nic_share *sh, uint32_t ifindex, uint32_t ring, struct nmc_xsk **out)
{
    struct nmc_shm_queue *q = &sh->shm->q[ring];
    struct nmc_xsk *x;
    int fd, err;

    *out = NULL;
    if ((err = fetch_sock(sh, ring, &fd)) < 0 || fd < 0)
        return err;
    if ((x = calloc(1, sizeof(*x))) == NULL) {
        drop_fd(fd);
        return -ENOMEM;
    }
    x->fd = fd;
    x->ifindex = ifindex;
    x->queue = ring;
    x->bind_flags = q->bind_flags;
    x->sg = q->sg;
    x->zerocopy = q->zerocopy;
    if ((err = nmc_xsk_map(x, q->rx_size, q->tx_size)) < 0) {
        nmc_nic_settle(x->fd);
        nmc_xsk_close(x);
        free(x);
        return err;
    }
    nmc_nic_shm_bind_queue(sh, x);
    *out = x;
    return 0;
}

/* x is the socket of its ring here: its ledger, spare list, and our
 * descriptor in the table. */
void nmc_nic_shm_bind_queue(struct nmc_nic_share *sh, struct nmc_xsk *x)
{
    x->queued = nmc_nic_shm_ledger(sh);
    x->tag = (uint16_t)(x->queue + 1);
    x->sq = &sh->shm->q[x->queue];
    x->spare = nmc_nic_shm_spare(sh, x->queue);
    x->spare_cap = sh->spare_cap;
    sh->shm->procs[sh->slot].sock_fd[x->queue] = x->fd + 1;
}

/* A socket this process made for its ring: published for the others. */
void nmc_nic_shm_publish(struct nmc_nic_share *sh, struct nmc_xsk *x)
{
    struct nmc_shm_queue *q = &sh->shm->q[x->queue];
    struct stat sb;

    q->sock_ino = fstat(x->fd, &sb) == 0 ? (uint64_t)sb.st_ino : 0;
    q->rx_size = x->rx.size;
    q->tx_size = x->tx.size;
    q->bind_flags = x->bind_flags;
    q->sg = x->sg;
    q->zerocopy = x->zerocopy;
    nmc_nic_shm_bind_queue(sh, x);
}

/* Does a holder of p's record other than p live?  Region lock held
 * (lock_fd: a description of the control file). */
bool nmc_nic_shm_others(const struct nmc_port *p, const struct nmc_region *r)
{
    const struct nmc_holder *hs = nmc_holders(r);

    for (uint32_t h = 0; h < NMC_MAX_HOLDERS; h++)
        if (h != p->hidx && hs[h].state == NMC_LIVE && hs[h].port == p->holder->port &&
            nmc_holder_alive(r->fd, h))
            return true;
    return false;
}

/* Does a process other than this one still have the share memory of rec
 * (so sockets of the record), by the descriptor its entry lists?  Region
 * lock held. */
bool nmc_nic_shm_elsewhere(const struct nmc_port_rec *rec)
{
    for (int i = 0; i < NMC_SHM_PROCS; i++)
        if (rec->nic_shm_fds[i].pid != getpid() && listed_has_shm(rec, i))
            return true;
    return false;
}

/* This process leaves the share memory (its last port on the record
 * closed; the sockets are closed): its entry goes unless `write` is false
 * (a port inherited across fork(): the entry is its parent's); `last`: no
 * process is left on the record. */
void nmc_nic_shm_leave(struct nmc_nic_share *sh, bool write, bool last)
{
    if (!sh->shm)
        return;
    if (write && sh->slot >= 0)
        memset(&sh->shm->procs[sh->slot], 0, sizeof(sh->shm->procs[sh->slot]));
    if (write && last)
        memset(sh->shm->q, 0, sizeof(sh->shm->q));
    munmap(sh->shm, sh->shm_len);
    if (sh->shm_fd >= 0)
        close(sh->shm_fd);
    sh->shm = NULL;
    sh->shm_fd = -1;
}

/* -- finding another process's record ---------------------------------------- */

/* "nic.<pid>" from a parent link's hex name, for a pid other than ours. */
static bool foreign_ifregion(const char *hex, char *name, size_t len)
{
    size_t n = strlen(hex), k;
    int pid;

    if (n % 2 || n / 2 >= len)
        return false;
    for (k = 0; k < n / 2; k++) {
        unsigned v;
        if (sscanf(hex + 2 * k, "%2x", &v) != 1)
            return false;
        name[k] = (char)v;
    }
    name[k] = 0;
    return sscanf(name, "nic.%d", &pid) == 1 && pid != getpid();
}

/* A live AF_XDP record of interface `ifname` (w: this very interface, in
 * our network namespace) with nrings rings in another process's NIC region
 * of rundir: *r locked and *port set (0), or -ENXIO. */
int nmc_nic_find_rec(const char *rundir, const char *ifname, const struct nmc_nic_where *w,
                     const uint32_t nrings[2], struct nmc_region *r, uint32_t *port,
                     nmc_nic_live_fn *live)
{
    DIR *d = opendir(rundir);
    struct dirent *e;
    int err = -ENXIO;

    if (!d)
        return -errno;
    while (err == -ENXIO && (e = readdir(d)) != NULL) {
        char name[64];
        struct nmc_port_rec *rec;
        if (strncmp(e->d_name, "parent.", 7) != 0 || !foreign_ifregion(e->d_name + 7, name, sizeof(name)))
            continue;
        if (nmc_get_region_of(rundir, name, r) < 0)
            continue;
        if ((rec = live(r, ifname, w, nrings)) != NULL && rec->nic_shm_ino != 0) {
            *port = (uint32_t)(rec - nmc_ports(r));
            err = 0;
        } else {
            nmc_region_detach(r);
        }
    }
    closedir(d);
    return err;
}
