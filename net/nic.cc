// What every Nic has unless its backend knows better.
#include "slip/net/nic.h"

#include "net/proto/flow.h"

namespace slip::net {

uint16_t Nic::rx_queue_of(const FlowTuple& f) const noexcept {
  const uint16_t n = caps().rx_queues;
  if (n <= 1) return 0;
  return proto::pick_queue(
      proto::symmetric_flow_hash(f.local.v, f.local_port, f.remote.v, f.remote_port, f.proto), n);
}

}  // namespace slip::net
