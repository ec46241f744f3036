/*
 * pktgen_int.h -- state and helpers shared by pktgen.c (the loops) and
 * pktgen_frame.c (frames, checksums, address ranges, capture, waiting).
 */
#ifndef NMC_PKTGEN_INT_H
#define NMC_PKTGEN_INT_H

#include "tools_port.h"

#include <time.h>
#include <net/netmap_user.h>

#define PG_MS           1000000LL
#define PG_SEC          1000000000LL
#define PG_ETH_HLEN     14
#define PG_CS_IP        1               /* put16(): adjust the IPv4 header checksum */
#define PG_CS_UDP       2               /* put16(): adjust the UDP checksum */

enum { PH_START, PH_PACE_START, PH_FIRST, PH_RUN, PH_WAIT, PH_DRAIN, PH_DONE };

struct nmc_pg_state {
    struct tl_port *p, view;    /* p points at view */
    int phase;
    int64_t deadline;           /* this call's end, CLOCK_MONOTONIC */
    int64_t wait_start;         /* the current wait's start, 0 if none */
    int64_t next_ns;            /* rate: when the next burst is due, CLOCK_REALTIME */
    int64_t tosend;             /* rate: packets left in this burst */
    bool pace_armed;            /* rate: next_ns already moved for this burst */
    int64_t drain_since;
    uint32_t size;              /* current frame length */
    uint32_t udp, pay;          /* offsets of the UDP header and payload */
    uint32_t seq;               /* ping, txseq: next sequence number */
    uint32_t fcnt;              /* txseq: slots left in the current packet */
    bool copy;                  /* write every packet */
    bool cap_full;
    unsigned short rnd[3];
    uint32_t *seq_exp;          /* rxseq: per bound RX ring */
    bool *seq_init;
    uint32_t frags_seen, frags_exp;
    bool first_packet;
};

static inline int64_t pg_clock(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * PG_SEC + ts.tv_nsec;
}

static inline int64_t pg_mono(void) { return pg_clock(CLOCK_MONOTONIC); }
static inline int64_t pg_real(void) { return pg_clock(CLOCK_REALTIME); }

static inline bool pg_stopped(const struct nmc_pktgen *pg)
{
    return __atomic_load_n(&pg->stop, __ATOMIC_RELAXED) != 0;
}

static inline bool pg_out_of_time(const struct nmc_pg_state *s)
{
    return pg_mono() >= s->deadline;
}

static inline uint32_t pg_ring_prev(const struct netmap_ring *ring, uint32_t i)
{
    return i == 0 ? ring->num_slots - 1 : i - 1;
}

static inline uint16_t pg_rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t pg_rd32(const uint8_t *p) { return (uint32_t)pg_rd16(p) << 16 | pg_rd16(p + 2); }

/* pktgen_frame.c */
void nmc_pg_put16(const struct nmc_pktgen *pg, uint8_t *f, uint32_t off, uint16_t v, int which);
void nmc_pg_put32(const struct nmc_pktgen *pg, uint8_t *f, uint32_t off, uint32_t v, int which);
void nmc_pg_set_size(struct nmc_pktgen *pg, uint32_t size);
void nmc_pg_next_addresses(struct nmc_pktgen *pg);
uint8_t *nmc_pg_slot_data(struct netmap_ring *ring, struct netmap_slot *slot);
uint32_t nmc_pg_rec_size(const struct nmc_pktgen *pg, uint32_t len);
bool nmc_pg_cap_room(struct nmc_pktgen *pg, uint32_t len);
void nmc_pg_cap_packet(struct nmc_pktgen *pg, struct netmap_ring *ring, uint32_t ringno,
                       uint32_t first, uint32_t nfrags, uint32_t len, int64_t ts);
int nmc_pg_wait(struct nmc_pktgen *pg, int events, int timeout_ms);
int nmc_pg_pace(struct nmc_pktgen *pg);
int nmc_pg_start(struct nmc_pktgen *pg);

#endif /* NMC_PKTGEN_INT_H */
