#pragma once
// The pod annotation memha.io/pools: "cache-a", "cache-a:11211,sessions:11212", "other-ns/cache-a".
// The webhook only checks its syntax (the controller resolves the Services); a pool without a port listens on
// 11211, so at most one entry may leave it out.
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace memha::webhook {

inline constexpr int kDefaultPoolPort = 11211;

struct PoolRef {
  std::string ns;    // empty: the pod's namespace
  std::string name;  // the Service
  int port = kDefaultPoolPort;  // local listen port on 127.0.0.1 inside the pod
  bool operator==(const PoolRef&) const = default;
};

// `reserved_port` (the sidecar's admin port) may not be used by a pool.
Result<std::vector<PoolRef>> ParsePoolsAnnotation(std::string_view text, int reserved_port);

}  // namespace memha::webhook
