/*
 * nm_test.h -- what the test programs written against netmap's own fd
 * interface share: a port opened with open("/dev/netmap"), NIOCCTRL
 * REGISTER and mmap; the numbered frames they send and check.
 */
#ifndef NM_TEST_H
#define NM_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <net/netmap_user.h>

#define CHECK(c, ...) do { if (!(c)) { fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fprintf(stderr, " (errno %d %s)\n", errno, strerror(errno)); exit(1); } } while (0)

struct port {
    int fd;
    void *mem;
    struct nmreq_register reg;
    struct netmap_if *nifp;
};

static inline int ctrl(int fd, const char *name, uint16_t type, void *body, uint64_t options)
{
    struct nmreq_header h;

    memset(&h, 0, sizeof(h));
    h.nr_version = NETMAP_API;
    h.nr_reqtype = type;
    snprintf(h.nr_name, sizeof(h.nr_name), "%s", name);
    h.nr_body = (uintptr_t)body;
    h.nr_options = options;
    return ioctl(fd, NIOCCTRL, &h);
}

static inline void open_port_flags(struct port *p, const char *name, uint32_t mode, uint64_t flags)
{
    p->fd = open("/dev/netmap", O_RDWR | O_CLOEXEC);
    CHECK(p->fd >= 0, "open /dev/netmap");
    memset(&p->reg, 0, sizeof(p->reg));
    p->reg.nr_mode = mode;
    p->reg.nr_flags = flags;
    CHECK(ctrl(p->fd, name, NETMAP_REQ_REGISTER, &p->reg, 0) == 0, "register %s", name);
    CHECK(p->reg.nr_memsize > 0 && p->reg.nr_tx_rings >= 1 && p->reg.nr_rx_slots >= 2, "reply of %s", name);
    p->mem = mmap(NULL, p->reg.nr_memsize, PROT_READ | PROT_WRITE, MAP_SHARED, p->fd, 0);
    CHECK(p->mem != MAP_FAILED, "mmap %s", name);
    p->nifp = NETMAP_IF(p->mem, p->reg.nr_offset);
}

static inline void open_port(struct port *p, const char *name, uint32_t mode)
{
    open_port_flags(p, name, mode, 0);
}

static inline void close_port(struct port *p)
{
    CHECK(munmap(p->mem, p->reg.nr_memsize) == 0, "munmap");
    CHECK(close(p->fd) == 0, "close");
}

/* Frame i: broadcast from 02:00:00:00:00:01 (for a switch), then a pattern;
 * 60 + i % 200 bytes. */
static inline unsigned frame_len(unsigned i)
{
    return 60 + i % 200;
}

static inline void fill(char *buf, unsigned i, unsigned len)
{
    static const char head[12] = { -1, -1, -1, -1, -1, -1, 2, 0, 0, 0, 0, 1 };

    for (unsigned k = 0; k < len; k++)
        buf[k] = k < sizeof(head) ? head[k] : (char)(i * 7 + k);
}

/* Frames *sent.. into TX ring 0 while it has room, up to n. */
static inline void put_frames(struct port *tx, unsigned *sent, unsigned n)
{
    struct netmap_ring *tr = NETMAP_TXRING(tx->nifp, 0);

    while (*sent < n && nm_ring_space(tr) > 0) {
        struct netmap_slot *s = &tr->slot[tr->head];
        unsigned len = frame_len(*sent);
        fill(NETMAP_BUF(tr, s->buf_idx), *sent, len);
        s->len = (uint16_t)len;
        tr->head = tr->cur = nm_ring_next(tr, tr->head);
        (*sent)++;
    }
}

/* Every frame RX ring 0 holds, checked to be frames *got.. in order. */
static inline void take_frames(struct port *rx, unsigned *got)
{
    struct netmap_ring *rr = NETMAP_RXRING(rx->nifp, 0);

    while (!nm_ring_empty(rr)) {
        struct netmap_slot *s = &rr->slot[rr->head];
        char want[2048];
        unsigned len = frame_len(*got);
        fill(want, *got, len);
        CHECK(s->len == len && memcmp(NETMAP_BUF(rr, s->buf_idx), want, len) == 0, "frame %u", *got);
        rr->head = rr->cur = nm_ring_next(rr, rr->head);
        (*got)++;
    }
}

#endif
