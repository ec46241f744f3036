/*
 * adopt.c -- a port from a netmap device descriptor this process received
 * (SCM_RIGHTS) or kept across exec: the holder it keeps alive, attached
 * here as a new nmc_port.
 *
 * The descriptor is a description of <rundir>/ctl.<id> holding the device
 * byte of one holder (nmc_port_dev_fd).  Which one: the holder whose
 * device byte some description holds (asked through a description of our
 * own) while the descriptor itself sees no conflict on it (an OFD lock
 * never conflicts with its own description).  The adopted port takes no
 * holder byte: the descriptor keeps the holder alive, and its close leaves
 * the holder to the opener while the opener still has it (port.c).  A NIC
 * port (a kind with adopt_req) joins its opener's record as another
 * process's open does, taking the opener's sockets while it has them
 * (transport/nic/nic_xproc.c): EOWNERDEAD once they are gone, and for a
 * descriptor kept across exec by its opener (exec closed them).
 */
#include "nmc_transport.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The runtime directory and region id of descriptor fd, if it is a
 * region's control file: -EBADF otherwise. */
static int region_of(int fd, char *rundir, size_t len, uint16_t *mem_id)
{
    char link[64], path[PATH_MAX], *slash, *end;
    struct stat mine, named;
    unsigned long id;
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    if ((n = readlink(link, path, sizeof(path) - 1)) < 0)
        return errno == ENOENT ? -EBADF : -errno;
    path[n] = '\0';
    if (!(slash = strrchr(path, '/')) || strncmp(slash + 1, "ctl.", 4) != 0)
        return -EBADF;
    id = strtoul(slash + 5, &end, 10);
    if (*end || end == slash + 5 || id == 0 || id > UINT16_MAX)
        return -EBADF;
    if (fstat(fd, &mine) < 0 || stat(path, &named) < 0 ||
        mine.st_dev != named.st_dev || mine.st_ino != named.st_ino)
        return -EBADF;                  /* a removed region, or another file by that name */
    *slash = '\0';
    if ((size_t)snprintf(rundir, len, "%s", path) >= len)
        return -ENAMETOOLONG;
    *mem_id = (uint16_t)id;
    return 0;
}

/* Does a description other than fd's hold `byte`: 1 yes, 0 no, -errno
 * when fd cannot be asked (closed meanwhile: never read as "no"). */
static int byte_conflicts(int fd, off_t byte)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1 };

    if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
        return -errno;
    return fl.l_type != F_UNLCK;
}

/* fd's description is the one holding holder h's device byte: someone
 * holds it (asked through r's own description) and fd sees no conflict. */
static bool holds_device_byte(int rfd, int fd, uint32_t h)
{
    return byte_conflicts(rfd, NMC_DEVICE_BYTE(h)) == 1 && byte_conflicts(fd, NMC_DEVICE_BYTE(h)) == 0;
}

static int holder_of(struct nmc_region *r, int fd)
{
    struct nmc_holder *hs = nmc_holders(r);

    for (uint32_t h = 0; h < NMC_MAX_HOLDERS; h++)
        if (hs[h].state == NMC_LIVE && holds_device_byte(r->fd, fd, h))
            return (int)h;
    return -EBADF;
}

static __thread struct nmc_adopt_info last_found;

void nmc_port_adopt_info(struct nmc_adopt_info *ai)
{
    *ai = last_found;
}

/* Note what rec is, for nmc_port_adopt_info(). */
static void note_found(const struct nmc_port_rec *rec, const struct nmc_transport_ops *ops)
{
    snprintf(last_found.kind, sizeof(last_found.kind), "%s", ops ? ops->name : "");
    snprintf(last_found.parent, sizeof(last_found.parent), "%s", rec->parent);
    last_found.host_rings = rec->nhost[0] + rec->nhost[1];
}

static int adopt_locked(struct nmc_region *r, int h, const char *rundir, struct nmc_port *p)
{
    struct nmc_holder *hd = &nmc_holders(r)[h];
    struct nmc_port_rec *rec = &nmc_ports(r)[hd->port % NMC_MAX_PORTS];
    struct nmc_pipe_req req = {
        .parent = rec->parent, .pipe_id = rec->pipe_id, .role = hd->end, .mode = hd->mode,
        .ringid = hd->ringid, .flags = hd->flags, .mem_id = r->mem_id, .spin_us = -1,
    };
    int err;

    if (hd->port >= NMC_MAX_PORTS || rec->state != NMC_LIVE)
        return -EBADF;
    if (!(p->ops = nmc_transport_of(rec->kind)))
        return -EPROTO;
    note_found(rec, p->ops);
    if (p->ops->inherited && !p->ops->adopt_req)
        return -EOPNOTSUPP;             /* their transport state is the opener's */
    if (p->ops->adopt_req && hd->pid == getpid())
        return -EOWNERDEAD;             /* kept across exec: exec closed the opener's sockets */
    if (p->ops->adopt_req && (err = p->ops->adopt_req(rec, &req)) < 0)
        return err;
    if ((err = nmc_port_fill(p, r, (uint32_t)h, hd->port, &req, rundir)) < 0 ||
        (p->ops->attach && (err = p->ops->attach(p, r, &req)) < 0))
        return err;
    return 0;
}

int nmc_port_adopt(int devfd, struct nmc_port **out)
{
    struct nmc_region r = { .fd = -1 };
    char rundir[160];
    struct nmc_port *p;
    uint16_t mem_id;
    int h, err;

    memset(&last_found, 0, sizeof(last_found));
    if (!out)
        return -EINVAL;
    if ((err = region_of(devfd, rundir, sizeof(rundir), &mem_id)) < 0 ||
        (err = nmc_rundir_check(rundir)) < 0)
        return err;
    if (!(p = calloc(1, sizeof(*p))))
        return -ENOMEM;
    p->ctl_fd = p->sock = p->bell = p->wake_dir = p->epfd = -1;
    if ((err = nmc_region_attach(rundir, mem_id, &r, NMC_LOCK_WAIT)) < 0) {
        free(p);
        return err == -ENOENT ? -EBADF : err;
    }
    r.rundir = rundir;
    err = (h = holder_of(&r, devfd)) < 0 ? h : adopt_locked(&r, h, rundir, p);
    if (err < 0) {
        nmc_port_free(p);               /* what the attach made; the holder stays */
        nmc_region_detach(&r);
        return err;
    }
    nmc_region_unlock(&r);              /* r.fd, r.ctl and r.mem are the port's now */
    *out = p;
    return 0;
}

/* Is fd (still) port p's device descriptor: a description of p's control
 * file holding the device byte of p's holder?  What a caller that adopted
 * p from a number another thread may have closed and reused meanwhile
 * asks. */
int nmc_port_is_device(const struct nmc_port *p, int fd)
{
    struct stat mine, st;

    return p && p->ctl_fd >= 0 && fstat(p->ctl_fd, &mine) == 0 && fstat(fd, &st) == 0 &&
           mine.st_dev == st.st_dev && mine.st_ino == st.st_ino && holds_device_byte(p->ctl_fd, fd, p->hidx);
}
