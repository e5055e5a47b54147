#pragma once
// Why a pod's or Service's configuration could not be used. Closed set; the string is the Kubernetes Event
// reason, the `reason` metric label and the log field.
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>

namespace memha::topology {

enum class ErrorReason : uint8_t {
  kBadPoolsAnnotation,    // memha.io/pools does not parse (syntax, bad name, bad port)
  kDuplicateLocalPort,    // two pools on one local port, or two without a port, or a pool listed twice
  kUnknownPool,           // memha.io/pools names a Service that does not exist
  kEmptyPool,             // a pool's Service selects no pod (a sidecar cannot serve an empty ring)
  kNoMemcachedPort,       // the Service has no ports
  kBadWritePolicy,        // memha.io/write-policy is not async|sync|primary-only
  kBadWarmup,             // memha.io/warmup is not on|off
  kBadBackupPool,         // memha.io/backup-pool does not parse or names the pool itself
  kUnknownBackupPool,     // memha.io/backup-pool names a Service that does not exist
  kPoolNotAllowed,        // a pool (or backup pool) in another namespace whose Service's memha.io/allow-from
                          // does not name the referring namespace
  kBadSocket,             // memha.io/socket is not on|off
  kInvalidTopology,       // the result fails the push contract's validation (should not happen)
  kCount
};

std::string_view ToString(ErrorReason reason);

struct TopologyError {
  std::string kind;    // "Pod" | "Service": the object the Event is recorded on
  std::string object;  // "ns/name"
  ErrorReason reason = ErrorReason::kInvalidTopology;
  std::string message;
  bool operator==(const TopologyError&) const = default;
  bool operator<(const TopologyError& o) const {
    return std::tie(kind, object, reason, message) < std::tie(o.kind, o.object, o.reason, o.message);
  }
};

}  // namespace memha::topology
