/*
 * raw_hello.c -- a program on netmap's own fd interface: open("/dev/netmap"),
 * NIOCCTRL REGISTER and mmap for both ends of a netmap pipe, one frame written
 * into a TX slot, NIOCTXSYNC, poll() on the other end.  Linked with nothing of
 * nmcompat: it runs under `nmcompat exec`.
 *
 *   raw_hello [PIPE]     PIPE defaults to "raw": the ends are PIPE{1 and
 *                        PIPE}1; prints "raw ok LEN"
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <net/netmap_user.h>

#define FAIL(what) do { perror(what); return 1; } while (0)

/* The port's netmap_if, or NULL with errno set. */
static struct netmap_if *register_port(const char *name, int *fd)
{
    struct nmreq_register reg = { .nr_mode = NR_REG_ALL_NIC };
    struct nmreq_header hdr = { .nr_version = NETMAP_API, .nr_reqtype = NETMAP_REQ_REGISTER,
                                .nr_body = (uintptr_t)&reg };
    void *mem;

    snprintf(hdr.nr_name, sizeof(hdr.nr_name), "%s", name);
    if ((*fd = open("/dev/netmap", O_RDWR)) < 0 || ioctl(*fd, NIOCCTRL, &hdr) != 0)
        return NULL;
    mem = mmap(NULL, reg.nr_memsize, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
    return mem == MAP_FAILED ? NULL : NETMAP_IF(mem, reg.nr_offset);
}

int main(int argc, char **argv)
{
    const char *pipe = argc > 1 ? argv[1] : "raw";
    char tx_name[64], rx_name[64];
    struct netmap_if *tx_if, *rx_if;
    struct netmap_ring *ring;
    struct pollfd pfd;
    int tx_fd, rx_fd;

    snprintf(tx_name, sizeof(tx_name), "%s{1", pipe);
    snprintf(rx_name, sizeof(rx_name), "%s}1", pipe);
    if ((tx_if = register_port(tx_name, &tx_fd)) == NULL)
        FAIL(tx_name);
    if ((rx_if = register_port(rx_name, &rx_fd)) == NULL)
        FAIL(rx_name);
    ring = NETMAP_TXRING(tx_if, 0);
    memcpy(NETMAP_BUF(ring, ring->slot[ring->head].buf_idx), "raw hello", 10);
    ring->slot[ring->head].len = 10;
    ring->head = ring->cur = nm_ring_next(ring, ring->head);
    if (ioctl(tx_fd, NIOCTXSYNC, NULL) != 0)
        FAIL("NIOCTXSYNC");
    pfd = (struct pollfd){ .fd = rx_fd, .events = POLLIN };
    if (poll(&pfd, 1, 5000) != 1)
        FAIL("poll");
    ring = NETMAP_RXRING(rx_if, 0);
    if (nm_ring_empty(ring) || strcmp(NETMAP_BUF(ring, ring->slot[ring->cur].buf_idx), "raw hello") != 0) {
        fprintf(stderr, "raw_hello: the frame did not arrive\n");
        return 1;
    }
    printf("raw ok %u\n", ring->slot[ring->cur].len);
    ring->head = ring->cur = nm_ring_next(ring, ring->cur);
    close(rx_fd);
    close(tx_fd);
    return 0;
}
