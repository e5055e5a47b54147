#pragma once
// The user-facing annotations (DESIGN.md "How users drive it"), parsed without I/O.
//   Pod:     memha.io/pools         "cache-a", "cache-a:11211,sessions:11212", "other-ns/cache-a"
//   Service: memha.io/backup-pool   "cache-b" or "ns/cache-b"
//            memha.io/write-policy  async | sync | primary-only
//            memha.io/warmup        on | off   (also true/false)
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/topology.h"

namespace memha::topology {

inline constexpr std::string_view kPoolsAnnotation = "memha.io/pools";
inline constexpr std::string_view kBackupPoolAnnotation = "memha.io/backup-pool";
inline constexpr std::string_view kWritePolicyAnnotation = "memha.io/write-policy";
inline constexpr std::string_view kWarmupAnnotation = "memha.io/warmup";

// One entry of memha.io/pools, resolved to a Service key and the sidecar's local port.
struct PoolRef {
  std::string service;  // "ns/name"
  uint16_t local_port = 0;
  bool operator==(const PoolRef&) const = default;
};

// Entries are "[ns/]name[:port]" separated by commas (spaces around them ignored). A pool without a port
// listens on `default_port`; only one pool may omit its port, and local ports must be distinct.
// The error message names the offending entry; the code is kInvalidArgument for syntax and ports and
// kConflict for a duplicate local port or pool.
Result<std::vector<PoolRef>> ParsePoolsAnnotation(std::string_view text, std::string_view pod_namespace,
                                                  uint16_t default_port = 11211);

// "name" or "ns/name" -> "ns/name" (validated as DNS labels).
Result<std::string> ParseServiceRef(std::string_view text, std::string_view default_namespace);

Result<WritePolicy> ParseWritePolicyAnnotation(std::string_view text);
Result<bool> ParseWarmupAnnotation(std::string_view text);

}  // namespace memha::topology
