/*
 * nmd.h -- the /dev/netmap emulation (libnmcompat-netmap.so), internal.
 *
 * netmap's file-descriptor interface served by the engine through its
 * public API (nmcompat.h) only: open("/dev/netmap"), ioctl(NIOCCTRL and
 * the legacy NIOCREGIF/NIOCGINFO, NIOCTXSYNC/NIOCRXSYNC), mmap, poll and
 * close.  preload.c interposes those libc calls; this layer sees only the
 * calls that name an emulated descriptor, and writes nothing to any fd.
 *
 * An emulated descriptor is a real kernel fd: before NETMAP_REQ_REGISTER a
 * description of /dev/null, after it the port's device descriptor
 * (nmc_port_dev_fd, put in place with dup3 so the number stays): the port
 * lives while any process has it (docs/DESIGN.md section 14).
 */
#ifndef NMD_H
#define NMD_H

#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <net/netmap.h>
#include "nmcompat.h"

/* The libc functions this layer calls, the ones preload.c interposes
 * resolved past it (RTLD_NEXT). */
struct nmd_libc {
    int (*open)(const char *path, int flags, ...);
    int (*close)(int fd);
    int (*ioctl)(int fd, unsigned long req, ...);
    void *(*mmap)(void *addr, size_t len, int prot, int flags, int fd, off_t off);
    int (*munmap)(void *addr, size_t len);
    int (*poll)(struct pollfd *fds, nfds_t n, int timeout);
    int (*ppoll)(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask);
    int (*dup3)(int oldfd, int newfd, int flags);
    int (*fcntl)(int fd, int cmd, ...);
};
extern struct nmd_libc nmd_real;

/* One open /dev/netmap description, named by one or more fd numbers (dup). */
struct nmd_file {
    unsigned refs;                  /* fd numbers naming it (table_lock) */
    uint32_t state;                 /* calls using it, CLOSED, DONE (nmd_file.c) */
    struct nmd_file *next_free;     /* in the pool of finished entries */
    dev_t dev;                      /* the description's file: a reused number */
    ino_t ino;                      /*   is told apart (nmd_get_checked) */
    struct nmc_port *port;          /* NULL until NETMAP_REQ_REGISTER */
    struct nmc_port_info info;      /* the registration's reply */
};

/* fd table (nmd_file.c) */
struct nmd_file *nmd_lookup(int fd);            /* a hint: no reference */
struct nmd_file *nmd_get(int fd);               /* a reference for one call, or NULL */
struct nmd_file *nmd_get_checked(int fd);       /* the same, fd checked to be its file */
void nmd_put(struct nmd_file *f);
int nmd_open(int flags);                        /* a new descriptor, or -errno */
int nmd_close(int fd);                          /* 1: was ours (closed); 0: not ours */
int nmd_dup(int oldfd, int newfd);              /* newfd now names oldfd's file too */
void nmd_forget(int fd);                        /* the kernel closed it (dup2 onto it...) */
void nmd_forget_range(unsigned first, unsigned last);   /* close_range, closefrom */
int nmd_bind(int fd, struct nmd_file *f, struct nmc_port *port);    /* REGISTER done */
void nmd_unbind(int fd, struct nmd_file *f, int null);     /* ... and undone (null: fd's /dev/null, kept) */
struct nmd_file *nmd_adopt(int fd);             /* a device fd from elsewhere (as nmd_get) */
/* Why this thread's last nmd_adopt of a device descriptor was refused when
 * the descriptor is a netmap port that cannot be adopted here (a NIC
 * port: -EOWNERDEAD, its opener's AF_XDP sockets are gone; -EBUSY, the
 * kernel refused their duplicates, pidfd_getfd); 0 otherwise. */
extern __thread int nmd_adopt_err;
void *nmd_mmap(struct nmd_file *f, void *addr, size_t len, int prot, int flags, off_t off);

/* descriptors from elsewhere (nmd_arrive.c): marked where they arrive,
 * adopted by the first poll, select or epoll_ctl that names them */
struct msghdr;
void nmd_arrive(int fd);                        /* fd just came: marked if it may be a device fd */
void nmd_arrive_cmsgs(const struct msghdr *msg);    /* every SCM_RIGHTS fd recvmsg gave */
void nmd_arrive_inherited(void);                /* every fd kept across exec */
bool nmd_arrived(int fd);                       /* marked, not yet adopted */
void nmd_arrived_clear(int fd);                 /* closed */
void nmd_arrived_clear_range(unsigned first, unsigned last);
void nmd_arrived_dup(int oldfd, int newfd);     /* newfd marked as oldfd is */
struct nmd_file *nmd_adopt_arrived(int fd);     /* as nmd_get; NULL: no device fd */

/* requests (nmd_req.c: checks and copies; nmd_ctl.c: serving them) */
int nmd_ioctl(int fd, struct nmd_file *f, unsigned long req, void *arg);
int nmd_copyin(void *dst, uint64_t uaddr, size_t len);
int nmd_copyout(uint64_t uaddr, const void *src, size_t len);
#define NMD_MAX_OPTIONS (NETMAP_REQ_MAXSIZE / sizeof(struct nmreq_option) + 1)
struct nmd_opts {                               /* a request's option chain, read in */
    unsigned n;
    uint64_t addr[NMD_MAX_OPTIONS];
    struct nmreq_option hdr[NMD_MAX_OPTIONS];
};
int nmd_req_check(const struct nmreq_header *h, struct nmd_opts *o);
int nmd_opts_finish(const struct nmreq_header *h, struct nmd_opts *o, int err);
size_t nmd_body_size(uint16_t reqtype);
int nmd_ctrl(int fd, struct nmd_file *f, struct nmreq_header *h, void *body);
/* NETMAP_REQ_OPT_EXTMEM of a REGISTER (nmd_extmem.c): read (1; 0 without
 * one) with the file its memory maps, then its reply once registered */
struct nmd_extmem {
    uint64_t addr;
    struct nmreq_opt_extmem opt;
    struct nmc_extmem req;
    char path[4096];
};
int nmd_extmem_read(const struct nmreq_header *h, struct nmd_extmem *x);
int nmd_extmem_fill(struct nmd_extmem *x, struct nmc_port *port);  /* before binding */
int nmd_extmem_reply(struct nmd_extmem *x, uint32_t status);       /* after: nro_status */
int nmd_legacy(int fd, struct nmd_file *f, unsigned long req, struct nmreq *nr);
int nmd_nic_open(const char *ifname, struct nmc_pipe_req *req, struct nmc_port **out);    /* nmd_nic.c */
int nmd_nic_adopted(struct nmc_port *port, int err);                             /* nmd_nic.c */
int nmd_nic_info(const char *ifname, struct nmc_pipe_req *req, struct nmc_port_info *info,
                 struct nmc_pools_info *pools);                                  /* nmd_nic.c */

/* poll (nmd_poll.c), select (nmd_select.c) */
int nmd_poll(struct pollfd *fds, nfds_t n, int timeout_ms, const sigset_t *mask);
#include <sys/select.h>
bool nmd_select_has_emulated(int nfds, const fd_set *r, const fd_set *w, const fd_set *e,
                             bool (*emulated)(int fd));
int nmd_select(int nfds, fd_set *r, fd_set *w, fd_set *e, int timeout_ms, const sigset_t *mask);

/* epoll (nmd_epoll.c) */
struct epoll_event;
int nmd_epoll_ctl(int epfd, int op, int fd, struct nmd_file *f, struct epoll_event *ev);
void nmd_epoll_forget(int epfd);
bool nmd_epoll_has_members(int epfd);
int nmd_epoll_wait(int epfd, struct epoll_event *out, int max, int timeout_ms, const sigset_t *mask,
                   int (*wait)(int, struct epoll_event *, int, int, const sigset_t *));

#endif
