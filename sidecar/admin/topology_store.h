#pragma once
// The last accepted topology: (epoch, version) ordering, idempotent re-push, and the state file that lets a
// sidecar restart with its last good topology when the controller is unreachable.
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "common/topology.h"

namespace memha {

class TopologyStore {
 public:
  using Apply = std::function<Status(const Topology&)>;
  explicit TopologyStore(std::string state_file) : state_file_(std::move(state_file)) {}

  // Pushed topologies must be newer than the current one (409 otherwise); the same generation with the same
  // content is accepted as a no-op. `force` (file reload, boot) skips the ordering check.
  Status Offer(const Topology& topology, const Apply& apply, bool force = false);
  std::optional<Topology> Current() const;
  // Reads the state file, if any.
  static Result<Topology> Load(const std::string& path);

 private:
  Status Persist(const Topology& topology) const;
  mutable std::mutex mu_;
  std::optional<Topology> current_;
  std::string state_file_;
};

}  // namespace memha
