/*
 * nmd_nic.c -- NETMAP_REQ_REGISTER of an interface name under nmcompat exec.
 *
 * The privileged setup is the control plane's (nmcompat/tools/_exec_nic.py,
 * served by exec's parent at $NMCOMPAT_EXEC_SOCKET): it chooses the backend
 * by the program's admode, creates the kernel sockets and attaches (or
 * joins) the XDP program, and hands them over with SCM_RIGHTS.  Here the
 * engine opens the port on them (nmc_xsk_open / nmc_pkt_open with
 * req->nic_socks: UMEM = this process's NIC region, rings, bind; with host
 * rings the tap, and the TCX links the port keeps), and the
 * control plane puts the bound sockets in the XDP program's XSKMAP.  From
 * then on the port is this process's alone: syncs and polls never reach the
 * server, and the port holds the XDP link, so the program stays attached
 * while a port uses it.  A REGISTER whose queues a live record binds
 * (another process's port, even another exec'd program's) joins that
 * record instead, as a plain process does, and holds the XDP link the
 * control plane gives it (join_live).  A refusal is the errno netmap would
 * give.
 */
#include "nmd.h"

#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SERVER_ENV "NMCOMPAT_EXEC_SOCKET"
#define MAX_FDS 250                     /* per message, as the server sends them */
#define MAX_LINKS 4                     /* TCX links of the host side and cut-off */
#define MAX_GRANT (2 * 256 + 2 + MAX_LINKS)     /* two sockets per queue, the XDP link, a tap, links */

static const char *const passed_env[] = {
    "NMCOMPAT_ADMODE", "NMCOMPAT_BACKEND", "NMCOMPAT_SLOTS", "NMCOMPAT_GENERIC_RINGSIZE",
    "NMCOMPAT_XDP_PROG", "NMCOMPAT_STACK_TX",
};

struct grant {
    char backend[16];
    unsigned queues, nsocks, slots, hold, tap, nlinks;
    int fds[MAX_GRANT];
    unsigned nfds;
};

static int connect_server(void)
{
    const char *path = getenv(SERVER_ENV);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int s;

    if (!path || !*path)
        return -EOPNOTSUPP;             /* not under nmcompat exec: no control plane */
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path));
    if ((s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0)
        return -errno;
    if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int err = -errno;
        nmd_real.close(s);
        return err == -ENOENT || err == -ECONNREFUSED ? -EOPNOTSUPP : err;     /* exec is gone */
    }
    return s;
}

static int send_text(int s, const char *text)
{
    return send(s, text, strlen(text), MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* verb "open" (a REGISTER), "info" (an information request: the
 * server's choice of backend, queues and slots, no socket) or "peek" (the
 * same before a REGISTER: a refusal is the open's to print). */
static int send_request(int s, const char *verb, const char *ifname, const struct nmc_pipe_req *req)
{
    char msg[2048];
    int n = snprintf(msg, sizeof(msg), "%s\nname=%s\nmode=%u\nringid=%u\nhost_rings=%u\nflags=%llu",
                     verb, ifname, req->mode, req->ringid,
                     req->host_tx_rings > req->host_rx_rings ? req->host_tx_rings : req->host_rx_rings,
                     (unsigned long long)req->flags);

    for (size_t i = 0; i < sizeof(passed_env) / sizeof(passed_env[0]); i++) {
        const char *v = getenv(passed_env[i]);
        if (v && n >= 0 && (size_t)n < sizeof(msg) && !strchr(v, '\n'))
            n += snprintf(msg + n, sizeof(msg) - (size_t)n, "\n%s=%s", passed_env[i], v);
    }
    if (n < 0 || (size_t)n >= sizeof(msg))
        return -E2BIG;
    return send_text(s, msg);
}

/* One message: its text (NUL-terminated) and the descriptors it carries,
 * appended to g->fds. */
static int recv_part(int s, char *text, size_t cap, struct grant *g)
{
    char cbuf[CMSG_SPACE(MAX_FDS * sizeof(int))];
    struct iovec iov = { .iov_base = text, .iov_len = cap - 1 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                         .msg_controllen = sizeof(cbuf) };
    ssize_t n = recvmsg(s, &mh, MSG_CMSG_CLOEXEC);

    if (n <= 0)
        return n == 0 ? -ECONNRESET : -errno;
    text[n] = '\0';
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (g->nfds < MAX_GRANT)
                g->fds[g->nfds++] = fd;
            else
                nmd_real.close(fd);
        }
    }
    if (mh.msg_flags & MSG_CTRUNC)
        return -EMSGSIZE;
    return 0;
}

/* "err ERRNO ..." as -ERRNO (EIO when it says nothing usable). */
static int refusal(const char *text)
{
    int e = 0;

    return sscanf(text, "err %d", &e) == 1 && e > 0 ? -e : -EIO;
}

static int read_grant(int s, struct grant *g)
{
    char text[256];
    int err;

    memset(g, 0, sizeof(*g));
    if ((err = recv_part(s, text, sizeof(text), g)) < 0)
        return err;
    if (strncmp(text, "ok ", 3) != 0)
        return refusal(text);
    if (sscanf(text, "ok %15s %u %u %u %u %u %u", g->backend, &g->queues, &g->nsocks, &g->slots,
               &g->hold, &g->tap, &g->nlinks) != 7 || g->hold > 1 || g->tap > 1 ||
        g->nlinks > MAX_LINKS || g->nsocks + g->hold + g->tap + g->nlinks > MAX_GRANT)
        return -EPROTO;
    while (g->nfds < g->nsocks + g->hold + g->tap + g->nlinks)
        if ((err = recv_part(s, text, sizeof(text), g)) < 0)
            return err;
    return g->nfds == g->nsocks + g->hold + g->tap + g->nlinks ? 0 : -EPROTO;
}

static int open_granted(const char *ifname, struct nmc_pipe_req *req, const struct grant *g,
                        struct nmc_port **out)
{
    req->parent = ifname;
    req->ifindex = if_nametoindex(ifname);
    req->tx_rings = req->rx_rings = g->queues;
    req->nic_socks = g->fds;
    req->nic_nsocks = g->nsocks;
    req->nic_hold_fd = g->hold ? g->fds[g->nsocks] : -1;
    req->nic_tap_fd = g->tap ? g->fds[g->nsocks + g->hold] : -1;       /* host rings */
    req->nic_host_holds = g->fds + g->nsocks + g->hold + g->tap;        /* TCX links */
    req->nic_host_nholds = g->nlinks;
    if (g->slots && !req->tx_slots)
        req->tx_slots = g->slots;
    if (g->slots && !req->rx_slots)
        req->rx_slots = g->slots;
    if (req->ifindex == 0)
        return -ENXIO;
    if (strcmp(g->backend, "afxdp") == 0)
        return nmc_xsk_open(req, out);
    if (strcmp(g->backend, "afpacket") == 0)
        return nmc_pkt_open(req, out);
    return -EPROTO;
}

static bool same_file(int a, int b)
{
    struct stat sa, sb;

    return a >= 0 && b >= 0 && fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
           sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* "bound" and the granted AF_XDP sockets the port uses ("bound 0 2"): a
 * queue another port of this process bound already keeps that port's
 * socket (one per queue), which is in the XSKMAP already. */
static void bound_text(char *text, size_t len, struct nmc_port *port, const struct grant *g)
{
    size_t n = (size_t)snprintf(text, len, "bound");

    for (unsigned k = 0; k < g->nsocks && n < len; k++)
        if (same_file(g->fds[k], nmc_xsk_fd(port, k)))
            n += (size_t)snprintf(text + n, len - n, " %u", k);
}

/* Tell the server how it went; with the sockets in use, its answer. */
static int finish(int s, int err, struct nmc_port *port, const struct grant *g)
{
    char text[1200], msg[32];
    struct grant none = { .nfds = 0 };

    if (err < 0) {
        snprintf(msg, sizeof(msg), "failed %d", -err);
        send_text(s, msg);
        return err;
    }
    bound_text(text, sizeof(text), port, g);
    if ((err = send_text(s, text)) < 0 || (err = recv_part(s, text, 256, &none)) < 0)
        return err;
    for (unsigned i = 0; i < none.nfds; i++)
        nmd_real.close(none.fds[i]);
    return strcmp(text, "ok") == 0 ? 0 : refusal(text);
}

static int join_live(const char *ifname, const struct nmc_pipe_req *req, struct nmc_port **out);

int nmd_nic_open(const char *ifname, struct nmc_pipe_req *req, struct nmc_port **out)
{
    struct grant *g;
    struct nmc_port *port = NULL;
    int s, err;

    if ((err = join_live(ifname, req, out)) != -ENXIO)
        return err;
    if (!(g = calloc(1, sizeof(*g))))
        return -ENOMEM;
    if ((s = connect_server()) < 0) {
        free(g);
        return s;
    }
    err = send_request(s, "open", ifname, req);
    if (err == 0 && (err = read_grant(s, g)) == 0) {
        err = open_granted(ifname, req, g, &port);
        err = finish(s, err, port, g);
        if (err < 0 && port)
            nmc_port_close(port);
    }
    for (unsigned i = 0; i < g->nfds; i++)      /* the engine took duplicates */
        nmd_real.close(g->fds[i]);
    nmd_real.close(s);
    free(g);
    if (err == 0) {
        *out = port;
        nmc_nic_drop_anchor();          /* the port holds the region an information request made */
    }
    return err;
}

/* verb "adopted" and what came of nmc_port_adopt, or "joined" and what
 * came of nmc_xsk_join (err, and the NIC's refusal). */
static int send_adopted(int s, const char *verb, const struct nmc_adopt_info *ai, int err)
{
    char msg[256];
    int32_t pid = 0;
    int refused = err == -EBUSY ? nmc_nic_refusal(&pid) : 0;
    int n = snprintf(msg, sizeof(msg), "%s\nname=%s\nkind=%s\nhost_rings=%u\nerr=%d\n"
                     "refused=%d\npid=%d", verb, ai->parent, ai->kind, ai->host_rings, -err, refused,
                     (int)pid);

    if (n < 0 || (size_t)n >= sizeof(msg) || strchr(ai->parent, '\n'))
        return -EINVAL;
    return send_text(s, msg);
}

/* The control plane's hold on the XDP link of adopted AF_XDP port `port`,
 * kept by the port (the hold its opener's port has): 0 or -errno. */
static int take_hold(int s, struct nmc_port *port)
{
    struct grant *g = calloc(1, sizeof(*g));
    int err;

    if (!g)
        return -ENOMEM;
    if ((err = read_grant(s, g)) == 0)
        err = g->nsocks == 0 && g->hold == 1 && g->nfds == 1 ? nmc_xsk_keep(port, g->fds[0]) : -EPROTO;
    for (unsigned i = 0; i < g->nfds; i++)
        nmd_real.close(g->fds[i]);
    free(g);
    return err;
}

/* After nmc_port_adopt() of a descriptor that proved a NIC port's: the
 * control plane of nmcompat exec says why a refusal (err < 0: EOPNOTSUPP,
 * EBUSY, EOWNERDEAD, EXDEV) happened, and gives an adopted AF_XDP port a hold on
 * its XDP link, which the port keeps as its opener's does, so the
 * program and its XSKMAP stay while it is open.  Not under exec (no
 * control plane) the port holds no link (DESIGN §14).  Returns err, or
 * the hold's failure (the caller closes the port then). */
static void wait_answer(int s);

int nmd_nic_adopted(struct nmc_port *port, int err)
{
    struct nmc_adopt_info ai;
    int s, sent;

    nmc_port_adopt_info(&ai);
    if (strcmp(ai.kind, "afxdp") != 0 && strcmp(ai.kind, "afpacket") != 0)
        return err;
    if (err == 0 && (strcmp(ai.kind, "afxdp") != 0 || !port))
        return 0;
    if ((s = connect_server()) < 0)
        return err == 0 && s == -EOPNOTSUPP ? 0 : err;
    if ((sent = send_adopted(s, "adopted", &ai, err)) < 0)
        err = err ? err : sent;
    else if (err == 0)
        err = take_hold(s, port);
    else
        wait_answer(s);                 /* exec has printed the reason: the program may exit now */
    nmd_real.close(s);
    return err;
}

/* The control plane's answer to an information request (verb "info" or
 * "peek") for ifname: the backend, queues and slots its grant would have,
 * in g. */
static int ask_info(const char *verb, const char *ifname, const struct nmc_pipe_req *req,
                    struct grant *g)
{
    int s, err;

    if ((s = connect_server()) < 0)
        return s;
    err = send_request(s, verb, ifname, req);
    if (err == 0 && (err = read_grant(s, g)) == 0 && g->nfds != 0)
        err = -EPROTO;
    for (unsigned i = 0; i < g->nfds; i++)
        nmd_real.close(g->fds[i]);
    nmd_real.close(s);
    return err;
}

/* The control plane's answer to a refused join, once it is there. */
static void wait_answer(int s)
{
    char text[256];
    struct grant none = { .nfds = 0 };

    recv_part(s, text, sizeof(text), &none);
    for (unsigned i = 0; i < none.nfds; i++)
        nmd_real.close(none.fds[i]);
}

/* Tell the control plane how a join went: joined (err 0), the port gets
 * its hold on the XDP link (as an adopted port's); refused, exec prints
 * why.  Returns err, or the hold's failure. */
static int report_join(const char *ifname, struct nmc_port *port, int err)
{
    struct nmc_adopt_info ai = { .host_rings = 0 };
    int s, sent;

    snprintf(ai.kind, sizeof(ai.kind), "afxdp");
    snprintf(ai.parent, sizeof(ai.parent), "%s", ifname);
    if ((s = connect_server()) < 0)
        return err ? err : s;
    if ((sent = send_adopted(s, "joined", &ai, err)) < 0)
        err = err ? err : sent;
    else if (err == 0)
        err = take_hold(s, port);
    else
        wait_answer(s);                 /* exec has printed the reason */
    nmd_real.close(s);
    return err;
}

/* A REGISTER whose AF_XDP queues a live record binds (another process's,
 * same rundir, netns, ifindex and ring count) joins it as a plain
 * process's open does (nic_xproc.c: its sockets and memfd by pidfd_getfd)
 * and holds the XDP link the control plane gives it.  -ENXIO: nothing to
 * join (another backend, no such record, a queue it does not bind): the
 * control plane's grant serves the open. */
static int join_live(const char *ifname, const struct nmc_pipe_req *req, struct nmc_port **out)
{
    struct grant *g = calloc(1, sizeof(*g));
    struct nmc_pipe_req jr = *req;
    struct nmc_port *port = NULL;
    int err;

    if (!g)
        return -ENOMEM;
    err = ask_info("peek", ifname, req, g);
    if (err < 0 && err != -ENOMEM)
        err = -ENXIO;                   /* refused: the grant's refusal says why */
    if (err == 0 && strcmp(g->backend, "afxdp") != 0)
        err = -ENXIO;
    if (err == 0) {
        jr.parent = ifname;
        jr.ifindex = if_nametoindex(ifname);
        jr.tx_rings = jr.rx_rings = g->queues;
        jr.nic_socks = NULL;
        jr.nic_nsocks = 0;
        jr.nic_hold_fd = jr.nic_tap_fd = -1;
        err = jr.ifindex ? nmc_xsk_join(&jr, &port) : -ENXIO;
        if (err != -ENXIO)
            err = report_join(ifname, port, err);
        if (err < 0 && port)
            nmc_port_close(port);
    }
    free(g);
    if (err == 0)
        *out = port;
    return err;
}

/* NETMAP_REQ_PORT_INFO_GET, POOLS_INFO_GET and NIOCGINFO of an interface
 * name: the counts its REGISTER would report, with no socket and no XDP
 * program: the control plane answers the backend, queues and slots it
 * would grant, the engine the process's NIC region (nmc_nic_describe). */
int nmd_nic_info(const char *ifname, struct nmc_pipe_req *req, struct nmc_port_info *info,
                 struct nmc_pools_info *pools)
{
    struct grant *g = calloc(1, sizeof(*g));
    int err;

    if (!g)
        return -ENOMEM;
    if ((err = ask_info("info", ifname, req, g)) == 0) {
        req->parent = ifname;
        req->tx_rings = req->rx_rings = g->queues;
        if (g->slots && !req->tx_slots)
            req->tx_slots = g->slots;
        if (g->slots && !req->rx_slots)
            req->rx_slots = g->slots;
        err = nmc_nic_describe(req, info, pools);
    }
    free(g);
    return err;
}
