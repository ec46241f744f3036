/*
 * vale_swdump.c -- print the port table of a VALE switch file as the
 * engine laid it out (csrc/transport/vale/nmc_vale.h), without going through the engine:
 * reading it reaps nothing and changes nothing.
 *
 *   vale_swdump <rundir>/vale.<sw>
 *   vale_swdump <rundir>/vale.<sw> forge <idx> <name> <mem_id> <rec> <nrx> <first_obj> <slots>
 *       write a live entry, as a process killed half-way through adding a
 *       port would leave it (tests of stale switch state)
 *
 * One line per live entry:
 *   port <idx> name=<n> gen=<g> mem_id=<m> rec=<r> nrx=<k> rx_slots=<s>
 *        drops=<d> forwarded=<f> sent=<t> tx_dropped=<x>
 * then "learned <count>" (valid learning-table entries).  Exit 1 if the
 * file cannot be read.
 */
#include "nmc_vale.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct nmc_switch *sw;
    struct stat st;
    unsigned learned = 0;
    int fd;

    if (argc == 10 && strcmp(argv[2], "forge") == 0) {
        unsigned q = (unsigned)strtoul(argv[3], NULL, 0);
        struct nmc_sw_port *p;
        fd = open(argv[1], O_RDWR | O_CLOEXEC);
        if (fd < 0 || q >= NMC_SW_MAXPORTS) {
            perror(argv[1]);
            return 1;
        }
        sw = mmap(NULL, sizeof(*sw), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (sw == MAP_FAILED) {
            perror("mmap");
            return 1;
        }
        p = &sw->ports[q];
        memset(p, 0, sizeof(*p));
        snprintf(p->name, sizeof(p->name), "%s", argv[4]);
        p->mem_id = (uint16_t)strtoul(argv[5], NULL, 0);
        p->rec = (uint32_t)strtoul(argv[6], NULL, 0);
        p->nrx = p->ntx = (uint32_t)strtoul(argv[7], NULL, 0);
        p->rx_first_obj = (uint32_t)strtoul(argv[8], NULL, 0);
        p->rx_slots = (uint32_t)strtoul(argv[9], NULL, 0);
        p->gen = 1;
        __atomic_store_n(&p->state, 1u, __ATOMIC_RELEASE);
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: vale_swdump <switch file> [forge ...]\n");
        return 2;
    }
    fd = open(argv[1], O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0 || (size_t)st.st_size != sizeof(*sw)) {
        perror(argv[1]);
        return 1;
    }
    sw = mmap(NULL, sizeof(*sw), PROT_READ, MAP_SHARED, fd, 0);
    if (sw == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    printf("switch name=%.*s magic_ok=%d batch=%u\n", (int)sizeof(sw->name), sw->name,
           sw->magic == NMC_SW_MAGIC, sw->bridge_batch);
    for (unsigned q = 0; q < NMC_SW_MAXPORTS; q++) {
        const struct nmc_sw_port *p = &sw->ports[q];
        if (p->state != 1)
            continue;
        printf("port %u name=%.*s gen=%u mem_id=%u rec=%u nrx=%u rx_slots=%u drops=%" PRIu64
               " forwarded=%" PRIu64 " sent=%" PRIu64 " tx_dropped=%" PRIu64 "\n",
               q, (int)sizeof(p->name), p->name, p->gen, p->mem_id, p->rec, p->nrx, p->rx_slots,
               p->drops, p->forwarded, p->sent, p->tx_dropped);
    }
    for (unsigned i = 0; i < NMC_BDG_HASH; i++)
        learned += (unsigned)(sw->ht[i] >> 63);
    printf("learned %u\n", learned);
    return 0;
}
