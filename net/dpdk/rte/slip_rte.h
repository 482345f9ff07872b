// The DPDK headers the project uses, in one place: what net/dpdk, iokerneld
// and the DPDK tests include instead of <rte_*.h> (meson: slip_rte_dep, which
// also carries libdpdk). Internal: never from a public header, which must
// build without DPDK. DPDK 22.11's spinlock header uses ++/-- on volatile
// ints, which C++20 deprecates (-Wvolatile under g++, -Wdeprecated-volatile
// under clang); the warning is silenced for these includes only, so -Werror
// builds pass without hiding our own code's warnings.
#pragma once

#pragma GCC diagnostic push
#if defined(__clang__)
#pragma GCC diagnostic ignored "-Wdeprecated-volatile"
#else
#pragma GCC diagnostic ignored "-Wvolatile"
#endif
#include <rte_alarm.h>
#include <rte_bus_vdev.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_epoll.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_eth_ring.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_memory.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#pragma GCC diagnostic pop
