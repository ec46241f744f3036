/*
 * nm_hello.c -- a netmap program on netmap's C API, nothing of nmcompat in it:
 * nm_open() both ends of a netmap pipe, nm_inject() one frame, poll() and
 * nm_nextpkt() it on the other end.
 *
 *   nm_hello [PIPE]      PIPE defaults to "hello": the ends are netmap:PIPE{1
 *                        and netmap:PIPE}1; prints "hello ok LEN"
 */
#define NETMAP_WITH_LIBS
#include <net/netmap_user.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *pipe = argc > 1 ? argv[1] : "hello";
    char tx_name[64], rx_name[64], frame[60] = "hello";
    struct nm_desc *tx, *rx;
    struct nm_pkthdr hdr;
    struct pollfd pfd;
    const u_char *got;

    snprintf(tx_name, sizeof(tx_name), "netmap:%s{1", pipe);
    snprintf(rx_name, sizeof(rx_name), "netmap:%s}1", pipe);
    tx = nm_open(tx_name, NULL, 0, NULL);
    rx = nm_open(rx_name, NULL, 0, NULL);
    if (tx == NULL || rx == NULL) {
        perror("nm_open");
        return 1;
    }
    if (nm_inject(tx, frame, sizeof(frame)) != (int)sizeof(frame) || ioctl(tx->fd, NIOCTXSYNC, NULL) != 0) {
        perror("nm_inject");
        return 1;
    }
    pfd = (struct pollfd){ .fd = rx->fd, .events = POLLIN };
    if (poll(&pfd, 1, 5000) != 1 || (got = nm_nextpkt(rx, &hdr)) == NULL ||
        hdr.len != sizeof(frame) || memcmp(got, frame, sizeof(frame)) != 0) {
        fprintf(stderr, "nm_hello: the frame did not arrive\n");
        return 1;
    }
    printf("hello ok %u\n", hdr.len);
    nm_close(rx);
    nm_close(tx);
    return 0;
}
