/*
 * nm_null.c -- null ports (NETMAP_REQ_REGISTER with NR_REG_NULL) through
 * netmap's fd interface only, as netmap's null adapter behaves
 * (netmap_null.c: no-op syncs over the generic prologue and finalize).
 * Prints "null ok".
 *
 *   - no nr_mem_id, or one no region has: EINVAL;
 *   - on the mem_id of an open pipe: the rings and slots asked for, in that
 *     region (the same nr_memsize, bytes written through one mapping read
 *     through the other, buffers of their own), named "null:<name>";
 *   - TX: head moves up to tail, which stays at n - 1 (no slot is ever
 *     handed back: the ring fills and stays full, poll stops reporting
 *     POLLOUT); RX: always empty (tail stays 0, no POLLIN), a head moved
 *     past tail is put back.
 */
#define _GNU_SOURCE
#include <poll.h>

#include "nm_test.h"

static int register_null(int fd, const char *name, uint16_t mem_id, struct nmreq_register *reg)
{
    memset(reg, 0, sizeof(*reg));
    reg->nr_mode = NR_REG_NULL;
    reg->nr_mem_id = mem_id;
    reg->nr_tx_rings = 3;
    reg->nr_rx_rings = 2;
    reg->nr_tx_slots = 64;
    reg->nr_rx_slots = 32;
    return ctrl(fd, name, NETMAP_REQ_REGISTER, reg, 0);
}

static void refused(uint16_t mem_id)
{
    struct nmreq_register reg;
    int fd = open("/dev/netmap", O_RDWR);

    CHECK(fd >= 0, "open");
    errno = 0;
    CHECK(register_null(fd, "nz", mem_id, &reg) < 0 && errno == EINVAL, "mem_id %u: EINVAL", mem_id);
    CHECK(close(fd) == 0, "close");
}

/* Every slot's buffer of n rings of one direction, appended to seen[]: no
 * index twice. */
static unsigned collect(struct netmap_if *nifp, int tx, unsigned n, uint32_t *seen, unsigned k)
{
    for (unsigned r = 0; r < n; r++) {
        struct netmap_ring *ring = tx ? NETMAP_TXRING(nifp, r) : NETMAP_RXRING(nifp, r);
        for (unsigned i = 0; i < ring->num_slots; i++) {
            for (unsigned j = 0; j < k; j++)
                CHECK(seen[j] != ring->slot[i].buf_idx, "buffer %u twice", seen[j]);
            seen[k++] = ring->slot[i].buf_idx;
        }
    }
    return k;
}

static void check_layout(struct port *pipe, struct port *nul)
{
    static uint32_t seen[8192];
    unsigned k = 0;

    CHECK(nul->reg.nr_mode == NR_REG_NULL && nul->reg.nr_mem_id == pipe->reg.nr_mem_id, "mode %u, mem_id %u",
          nul->reg.nr_mode, nul->reg.nr_mem_id);
    CHECK(nul->reg.nr_tx_rings == 3 && nul->reg.nr_rx_rings == 2 && nul->reg.nr_tx_slots == 64 &&
          nul->reg.nr_rx_slots == 32, "counts %u/%u rings, %u/%u slots", nul->reg.nr_tx_rings,
          nul->reg.nr_rx_rings, nul->reg.nr_tx_slots, nul->reg.nr_rx_slots);
    CHECK(nul->reg.nr_memsize == pipe->reg.nr_memsize && nul->reg.nr_offset != pipe->reg.nr_offset,
          "the pipe's region");
    CHECK(nul->nifp->ni_tx_rings == 3 && nul->nifp->ni_rx_rings == 2, "netmap_if");
    CHECK(!strcmp(nul->nifp->ni_name, "null:nl0"), "named %s", nul->nifp->ni_name);
    for (unsigned r = 0; r < 3; r++) {
        struct netmap_ring *t = NETMAP_TXRING(nul->nifp, r);
        CHECK(t->num_slots == 64 && t->head == 0 && t->cur == 0 && t->tail == 63, "TX ring %u", r);
    }
    for (unsigned r = 0; r < 2; r++) {
        struct netmap_ring *x = NETMAP_RXRING(nul->nifp, r);
        CHECK(x->num_slots == 32 && x->head == 0 && x->cur == 0 && x->tail == 0, "RX ring %u", r);
    }
    k = collect(nul->nifp, 1, 3, seen, k);
    k = collect(nul->nifp, 0, 2, seen, k);
    k = collect(pipe->nifp, 1, 1, seen, k);
    collect(pipe->nifp, 0, 1, seen, k);
}

/* One memory: a buffer written through the null port's mapping is read
 * through the pipe's. */
static void check_shared(struct port *pipe, struct port *nul)
{
    struct netmap_ring *t = NETMAP_TXRING(nul->nifp, 1);
    char *buf = NETMAP_BUF(t, t->slot[5].buf_idx);
    size_t ofs = (size_t)(buf - (char *)nul->mem);

    snprintf(buf, 32, "through the null port");
    CHECK(!strcmp((char *)pipe->mem + ofs, "through the null port"), "one memory");
}

static void fill_tx(struct netmap_ring *t, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        t->slot[t->head].len = 60;
        t->head = t->cur = nm_ring_next(t, t->head);
    }
}

static void check_tx(struct port *nul)
{
    struct netmap_ring *t = NETMAP_TXRING(nul->nifp, 0);
    struct pollfd pfd = { .fd = nul->fd, .events = POLLOUT };

    CHECK(poll(&pfd, 1, 0) == 1 && pfd.revents == POLLOUT, "room: %#x", pfd.revents);
    fill_tx(t, 10);
    CHECK(ioctl(nul->fd, NIOCTXSYNC, NULL) == 0, "txsync");
    CHECK(t->head == 10 && t->tail == 63 && nm_ring_space(t) == 53, "nothing handed back: tail %u", t->tail);
    for (unsigned r = 1; r < 3; r++)
        fill_tx(NETMAP_TXRING(nul->nifp, r), 63);
    fill_tx(t, 53);
    CHECK(ioctl(nul->fd, NIOCTXSYNC, NULL) == 0 && ioctl(nul->fd, NIOCTXSYNC, NULL) == 0, "txsync");
    CHECK(t->head == 63 && t->tail == 63 && nm_ring_space(t) == 0, "full, and stays full");
    pfd.revents = 0;
    CHECK(poll(&pfd, 1, 0) == 0 && pfd.revents == 0, "no POLLOUT on full rings: %#x", pfd.revents);
}

static void check_rx(struct port *nul)
{
    struct netmap_ring *x = NETMAP_RXRING(nul->nifp, 1);
    struct pollfd pfd = { .fd = nul->fd, .events = POLLIN };

    CHECK(ioctl(nul->fd, NIOCRXSYNC, NULL) == 0 && nm_ring_empty(x) && x->tail == 0, "rxsync: empty");
    CHECK(x->ts.tv_sec != 0, "an RX sync stamps the ring");
    CHECK(poll(&pfd, 1, 0) == 0 && pfd.revents == 0, "never readable: %#x", pfd.revents);
    x->head = x->cur = 3;               /* past tail: the ring is put back */
    CHECK(ioctl(nul->fd, NIOCRXSYNC, NULL) == 0 && x->head == 0 && x->cur == 0 && x->tail == 0, "reinit");
}

int main(void)
{
    struct port pipe, nul, other;

    setvbuf(stdout, NULL, _IONBF, 0);
    refused(0);                         /* "null ports must use an existing allocator" */
    open_port(&pipe, "nl{1", NR_REG_ALL_NIC);
    refused((uint16_t)(pipe.reg.nr_mem_id + 1000));
    nul.fd = open("/dev/netmap", O_RDWR);
    CHECK(nul.fd >= 0 && register_null(nul.fd, "nl0", pipe.reg.nr_mem_id, &nul.reg) == 0, "register null");
    nul.mem = mmap(NULL, nul.reg.nr_memsize, PROT_READ | PROT_WRITE, MAP_SHARED, nul.fd, 0);
    CHECK(nul.mem != MAP_FAILED, "mmap");
    nul.nifp = NETMAP_IF(nul.mem, nul.reg.nr_offset);
    check_layout(&pipe, &nul);
    check_shared(&pipe, &nul);
    check_tx(&nul);
    check_rx(&nul);
    other.fd = open("/dev/netmap", O_RDWR);     /* the same name: a new port, never a re-open */
    CHECK(other.fd >= 0 && register_null(other.fd, "nl0", pipe.reg.nr_mem_id, &other.reg) == 0 &&
          other.reg.nr_offset != nul.reg.nr_offset, "a second null port");
    CHECK(close(other.fd) == 0, "close");
    close_port(&nul);
    close_port(&pipe);
    printf("null ok\n");
    return 0;
}
