#pragma once
// Why a backend operation did not produce a reply. One closed enum, one string table, shared by logs and metrics.
#include <cstdint>
#include <string_view>

namespace memha {

enum class OpStatus : uint8_t {
  kOk,
  kConnectFailed,    // could not connect (refused, unreachable, connect timeout)
  kConnectionLost,   // the member closed the connection or a socket error occurred
  kTimeout,          // no reply within the request timeout
  kBadReply,         // the member sent bytes that are not a memcached reply
  kMemberDown,       // marked down by health checking, or by the controller
  kOverloaded,       // a bounded queue was full
  kCount
};

inline std::string_view ToString(OpStatus s) {
  static constexpr std::string_view kNames[] = {"ok",         "connect_failed", "connection_lost", "timeout",
                                                "bad_reply",  "member_down",    "overloaded"};
  return kNames[static_cast<size_t>(s)];
}

}  // namespace memha
