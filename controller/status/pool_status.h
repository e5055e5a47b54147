#pragma once
// Each pool's status as users look for it (issue 13 "Status where users look"; docs/OPERATIONS.md "Pool status"):
// its members and their state (up, down, terminating, refilling with progress), its backup pool, how many of the
// sidecars that use it hold the current topology. A pure function of what the reconciler computed, the refill
// manager's targets and the pusher's acknowledgements; the writer (writer.h) stores it and records Events.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "controller/refill/manager.h"
#include "controller/topology/desired.h"

namespace memha::status {

struct MemberStatus {
  std::string name;
  std::string address;
  std::string state;            // up | down | terminating | refilling
  std::string refill;           // "" | running | done | failed (the last refill or handover of this member)
  uint64_t refill_owned = 0;    // refilling: keys owned on the peers dumped so far
  uint64_t refill_processed = 0;
  bool operator==(const MemberStatus&) const = default;
};

struct PoolStatus {
  std::string service;                 // "ns/name"
  std::string backup;                  // its backup pool ("ns/name"), if it has one
  std::vector<std::string> backup_of;  // the pools it is the backup of
  std::vector<MemberStatus> members;
  size_t sidecars = 0;                 // sidecars whose topology uses it as a primary pool
  size_t sidecars_in_sync = 0;         // of those, holding the current topology (acknowledged)
  std::vector<std::string> behind;     // the first few that are not ("ns/pod")
  // Healthy | Refilling (a member being refilled, the rest up) | Degraded (a member down/terminating, a refill
  // failed, sidecars behind, or its backup without a member up) | Unavailable (no member up).
  std::string phase;
  std::string message;                 // why, when not Healthy
  bool operator==(const PoolStatus&) const = default;
};

// Whether the pusher holds `pod`'s current topology as acknowledged: nullopt when it does not know the pod
// (a follower, or a pod without a sidecar).
using InSync = std::function<std::optional<bool>(const std::string& pod)>;

inline constexpr size_t kBehindListed = 5;

// Every pool Service in `state` (primary or backup), sorted by Service.
std::vector<PoolStatus> ComputePoolStatus(const topology::State& state,
                                          const std::vector<refill::TargetStatus>& refills, const InSync& in_sync);

// The stored form: compact JSON, keys in a fixed order. `last_change` is RFC 3339 (when members or phase last
// changed).
std::string ToJson(const PoolStatus& status, const std::string& last_change);

// The same status without the refill progress counts: a change here is written at once, a change of progress
// only at the writer's progress interval.
PoolStatus WithoutProgress(PoolStatus status);

}  // namespace memha::status
