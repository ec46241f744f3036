/*
 * nmc_nic.h -- what the two NIC transports (AF_XDP: xsk*.c, AF_PACKET:
 * pkt.c) share: the NIC region of a process and the kernel sockets a port
 * waits on (nic_region.c).
 */
#ifndef NMC_NIC_H
#define NMC_NIC_H

#include "nmc_transport.h"
#include "nmc_kinds.h"

#define NMC_NIC_MAXQ 256u
/* The kernel side of a receive queue (XSK RX and FILL rings) holds this
 * many times the netmap ring: a receiver that is descheduled for a moment
 * finds the burst waiting there instead of dropped. */
#define NMC_XSK_RX_FACTOR 4u

int nmc_nic_validate(const struct nmc_pipe_req *req);
int nmc_nic_resolve(const char *rundir, const struct nmc_pipe_req *req, struct nmc_region *r,
                    uint32_t *port, uint32_t kind);
int nmc_nic_wait(struct nmc_port *p, int events, int timeout_ms);
int nmc_nic_poll_fd(struct nmc_port *p);
void nmc_nic_forget_fds(struct nmc_port *p);

#endif /* NMC_NIC_H */
