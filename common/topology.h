#pragma once
// The topology contract of DESIGN.md ("Topology push"): what a sidecar serves, as pushed by the controller,
// loaded from --config, or built from magent-style flags. Immutable once validated.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/address.h"
#include "common/status.h"

namespace memha {

enum class WritePolicy { kAsync, kSync, kPrimaryOnly };
// The controller's view of a member. kTerminating is taken out of service like kDown, before the pod dies.
enum class MemberState { kUp, kDown, kTerminating };
// The controller's bulk refill of a member (docs/ARCHITECTURE.md "Bulk refill"): "running" while its share is
// copied from the other pool, "done" once that completed since it last came back. An optional field beside
// "state": a sidecar that does not know it ignores it, and an unknown value reads as kNone.
enum class MemberRefill { kNone, kRunning, kDone };

std::string_view ToString(WritePolicy p);
std::string_view ToString(MemberState s);
std::string_view ToString(MemberRefill r);
bool ParseWritePolicy(std::string_view text, WritePolicy* out);
bool ParseMemberState(std::string_view text, MemberState* out);

struct MemberSpec {
  std::string name;     // ring identity: pod name, or host:port in static mode
  std::string address;  // as given
  HostPort endpoint;    // parsed address
  MemberState state = MemberState::kUp;
  MemberRefill refill = MemberRefill::kNone;
  bool operator==(const MemberSpec&) const = default;
};

struct PoolSpec {
  std::string name;
  std::string listen;
  HostPort listen_endpoint;
  // Optional: also accept clients on this unix socket (an absolute path; docs/ARCHITECTURE.md "Unix socket").
  std::string listen_unix;
  WritePolicy write_policy = WritePolicy::kAsync;
  bool warmup = true;
  std::vector<MemberSpec> primary;
  std::vector<MemberSpec> backup;
  bool operator==(const PoolSpec&) const = default;
};

struct Topology {
  uint64_t epoch = 0;
  uint64_t version = 0;
  std::vector<PoolSpec> pools;

  // (epoch, version) compared lexicographically.
  bool NewerThan(const Topology& other) const {
    return epoch != other.epoch ? epoch > other.epoch : version > other.version;
  }
  bool SameGeneration(const Topology& other) const { return epoch == other.epoch && version == other.version; }
};

// Parses and validates; the error says which field is wrong. Unknown fields are ignored (forward compatible).
Result<Topology> ParseTopology(std::string_view json_text);
Status ValidateTopology(const Topology& topology);
// A unix socket path a pool may listen on: absolute, at most kMaxUnixSocketPath bytes (sockaddr_un's sun_path).
inline constexpr size_t kMaxUnixSocketPath = 107;
Status ValidateUnixSocketPath(const std::string& path);
std::string TopologyToJson(const Topology& topology, int indent = -1);

}  // namespace memha
