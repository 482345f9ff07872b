// Inside net/select: what open_nic() returns for a NIC it owns, and the
// direct-mode backend (direct_dpdk.cc, or direct_none.cc without DPDK).
#pragma once

#include <memory>
#include <utility>

#include "slip/net/select.h"

namespace slip::net {

// Owns a Nic and makes the slip stack over it (shared mode; direct mode adds
// its port's per-queue counts).
class OwnedNic : public OpenedNic {
 public:
  explicit OwnedNic(std::unique_ptr<Nic> nic) : nic_(std::move(nic)) {}
  std::unique_ptr<Stack> make_stack(const StackConfig& cfg) override { return make_slip_stack(*nic_, cfg); }
  Nic* nic() noexcept override { return nic_.get(); }

 protected:
  std::unique_ptr<Nic> nic_;
};

// Starts EAL and opens the DPDK port c names; throws without DPDK.
std::unique_ptr<OpenedNic> open_direct(const NicChoice& c);

}  // namespace slip::net
