#pragma once
// host:port parsing shared by flags, topology JSON and listeners. IPv6 literals use [addr]:port.
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace memha {

struct HostPort {
  std::string host;  // without brackets
  uint16_t port = 0;
  std::string ToString() const;  // brackets IPv6 literals again
  bool operator==(const HostPort&) const = default;
};

// Accepts "host:port", "[v6]:port"; with default_port != 0 also a bare "host" or "[v6]".
Result<HostPort> ParseHostPort(std::string_view text, uint16_t default_port = 0);

}  // namespace memha
