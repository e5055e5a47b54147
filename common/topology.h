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

std::string_view ToString(WritePolicy p);
std::string_view ToString(MemberState s);
bool ParseWritePolicy(std::string_view text, WritePolicy* out);
bool ParseMemberState(std::string_view text, MemberState* out);

struct MemberSpec {
  std::string name;     // ring identity: pod name, or host:port in static mode
  std::string address;  // as given
  HostPort endpoint;    // parsed address
  MemberState state = MemberState::kUp;
  bool operator==(const MemberSpec&) const = default;
};

struct PoolSpec {
  std::string name;
  std::string listen;
  HostPort listen_endpoint;
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
std::string TopologyToJson(const Topology& topology, int indent = -1);

}  // namespace memha
