/*
 * pipe_loop.c -- a pkt-gen-style loop over a netmap pipe in one process:
 * fill the master's TX ring with `batch` 60-byte frames (a sequence number
 * written in each), txsync, rxsync the slave, check and release them;
 * repeat for `seconds`.  Built twice from this one source:
 *
 *   -DUSE_NETMAP_FD netmap's own interface: open("/dev/netmap"), NIOCCTRL,
 *                  mmap, ioctl(NIOCTXSYNC/NIOCRXSYNC); links nothing of
 *                  nmcompat and runs under `nmcompat exec`;
 *   (default)      the engine's C API (nmcompat.h: nmc_pipe_open,
 *                  nmc_txsync, nmc_rxsync), linked with -lnmcompat;
 *   -DSECOND_MAPPING  the same, the loop reaching the rings through a
 *                  mapping of its own (as a netmap program's mmap gives it),
 *                  to tell the cost of two mappings from the emulation's.
 *
 *   pipe_loop PARENT BATCH SECONDS  ->  "frames N seconds S cpu_seconds C"
 *   (C: the process's CPU time over the loop, CLOCK_PROCESS_CPUTIME_ID)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <net/netmap_user.h>

#define DIE(...) do { fprintf(stderr, __VA_ARGS__); fprintf(stderr, " (%s)\n", strerror(errno)); exit(1); } while (0)

struct end {
    struct netmap_ring *tx, *rx;
#ifdef USE_NETMAP_FD
    int fd;
#else
    struct nmc_port *port;
#endif
};

#ifdef USE_NETMAP_FD
static void open_end(struct end *e, const char *name)
{
    struct nmreq_register reg = { .nr_mode = NR_REG_ALL_NIC };
    struct nmreq_header h = { .nr_version = NETMAP_API, .nr_reqtype = NETMAP_REQ_REGISTER,
                              .nr_body = (uintptr_t)&reg };
    void *mem;

    snprintf(h.nr_name, sizeof(h.nr_name), "%s", name);
    if ((e->fd = open("/dev/netmap", O_RDWR)) < 0 || ioctl(e->fd, NIOCCTRL, &h) < 0)
        DIE("couldn't register %s", name);
    mem = mmap(NULL, reg.nr_memsize, PROT_READ | PROT_WRITE, MAP_SHARED, e->fd, 0);
    if (mem == MAP_FAILED)
        DIE("couldn't map %s", name);
    e->tx = NETMAP_TXRING(NETMAP_IF(mem, reg.nr_offset), 0);
    e->rx = NETMAP_RXRING(NETMAP_IF(mem, reg.nr_offset), 0);
}

static void txsync(struct end *e) { ioctl(e->fd, NIOCTXSYNC, NULL); }
static void rxsync(struct end *e) { ioctl(e->fd, NIOCRXSYNC, NULL); }
#else
#include "nmcompat.h"

static void open_end(struct end *e, const char *name)
{
    char parent[64];
    const char *brace = strpbrk(name, "{}");
    struct nmc_pipe_req req = { .spin_us = -1, .mode = NR_REG_ALL_NIC };

    if (!brace)
        DIE("%s: not a pipe", name);
    snprintf(parent, sizeof(parent), "%.*s", (int)(brace - name), name);
    req.parent = parent;
    req.pipe_id = brace + 1;
    req.role = *brace == '{' ? NMC_PIPE_MASTER : NMC_PIPE_SLAVE;
    if ((errno = -nmc_pipe_open(&req, &e->port)) != 0)
        DIE("couldn't open %s", name);
    e->tx = nmc_port_ring(e->port, 0, 0, NULL);
    e->rx = nmc_port_ring(e->port, 1, 0, NULL);
#ifdef SECOND_MAPPING
    {   /* the rings through a mapping of our own, as a netmap program has */
        struct nmc_port_info info;
        int fd;
        uint8_t *mem;
        nmc_port_info(e->port, &info);
        if ((fd = open(info.region_path, O_RDWR)) < 0)
            DIE("couldn't open %s", info.region_path);
        mem = mmap(NULL, info.nr_memsize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (mem == MAP_FAILED)
            DIE("couldn't map %s", info.region_path);
        e->tx = (struct netmap_ring *)(mem + ((uint8_t *)e->tx - (uint8_t *)nmc_port_mem(e->port)));
        e->rx = (struct netmap_ring *)(mem + ((uint8_t *)e->rx - (uint8_t *)nmc_port_mem(e->port)));
    }
#endif
}

static void txsync(struct end *e) { nmc_txsync(e->port); }
static void rxsync(struct end *e) { nmc_rxsync(e->port); }
#endif

static double clock_s(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double now(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

int main(int argc, char **argv)
{
    char name[64];
    struct end m, s;
    unsigned batch;
    uint64_t sent = 0, got = 0;
    double seconds, t0, t1, cpu0;

    if (argc != 4)
        DIE("usage: pipe_loop PARENT BATCH SECONDS");
    batch = (unsigned)atoi(argv[2]);
    seconds = atof(argv[3]);
    snprintf(name, sizeof(name), "%s{1", argv[1]);
    open_end(&m, name);
    snprintf(name, sizeof(name), "%s}1", argv[1]);
    open_end(&s, name);
    t0 = now();
    cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    do {
        for (int k = 0; k < 64; k++) {
            struct netmap_ring *tx = m.tx, *rx = s.rx;
            for (unsigned i = 0; i < batch && nm_ring_space(tx); i++) {
                struct netmap_slot *sl = &tx->slot[tx->head];
                memcpy(NETMAP_BUF(tx, sl->buf_idx), &sent, sizeof(sent));
                sl->len = 60;
                tx->head = tx->cur = nm_ring_next(tx, tx->head);
                sent++;
            }
            txsync(&m);
            rxsync(&s);
            while (!nm_ring_empty(rx)) {
                struct netmap_slot *sl = &rx->slot[rx->head];
                uint64_t seq;
                memcpy(&seq, NETMAP_BUF(rx, sl->buf_idx), sizeof(seq));
                if (seq != got)
                    DIE("frame %llu arrived as %llu", (unsigned long long)got, (unsigned long long)seq);
                rx->head = rx->cur = nm_ring_next(rx, rx->head);
                got++;
            }
        }
        t1 = now();
    } while (t1 - t0 < seconds);
    printf("frames %llu seconds %.6f cpu_seconds %.6f\n", (unsigned long long)got, t1 - t0,
           clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0);
    return 0;
}
