/*
 * nmc_kinds.h -- the kind ids stored in port records (one per transport
 * ops table).  They are part of the region layout: never renumber.
 */
#ifndef NMC_KINDS_H
#define NMC_KINDS_H

enum { NMC_KIND_PIPE = 1, NMC_KIND_VALE = 2, NMC_KIND_NIC = 3, NMC_KIND_PKT = 4, NMC_KIND_NULL = 5,
       NMC_KIND_MONITOR = 6 };

#endif /* NMC_KINDS_H */
