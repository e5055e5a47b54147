#pragma once
// The desired topology of every application pod: a pure function of the store, the leader's epoch, the previous
// result and the time (DESIGN.md "Topology push"; docs/CONTROLLER.md "Pools and topology").
//
// Level-based: call it with the whole store view after any change; it returns the whole desired state. Versions
// are stable when nothing changed (pushes are idempotent) and grow when a pod's content changes.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/topology.h"
#include "controller/model/store.h"
#include "controller/topology/annotations.h"
#include "controller/topology/errors.h"

namespace memha::topology {

using Clock = std::chrono::steady_clock;

// The leader's bulk refill of members (controller/refill), by Service "ns/name" then member name: written into
// each member's "refill" field, so the sidecars learn when a member that came back empty has been filled.
using RefillMarks = std::map<std::string, std::map<std::string, MemberRefill>>;

struct Options {
  uint16_t sidecar_admin_port = kDefaultSidecarAdminPort;  // the sidecar is pushed at podIP:this
  uint16_t default_local_port = kDefaultLocalPort;         // a pool without ":port" in memha.io/pools
  std::string listen_host = "127.0.0.1"; // where the sidecar listens for the application
  // A member pod that vanished (deleted, relabelled) stays on its pool's ring as `down` this long, so a
  // StatefulSet pod being recreated under the same name does not move its keys to a neighbour meanwhile.
  std::chrono::seconds member_grace{120};
  RefillMarks refill;  // set per pass by the reconciler (empty: no member is marked)
};

// What a pool Service contributes to every topology that uses it (all but the local listen address). Shared
// between passes while unchanged: pointer identity then means "same content", so an unaffected pod is not rebuilt.
struct PoolBase {
  WritePolicy write_policy = WritePolicy::kAsync;
  bool warmup = true;
  std::vector<MemberSpec> primary;
  std::vector<MemberSpec> backup;
  bool operator==(const PoolBase&) const = default;
};

// What one application pod's sidecar should serve.
struct SidecarTopology {
  std::string pod;                            // "ns/name"
  std::string admin_address;                  // "podIP:adminPort"; empty while the pod has no IP
  std::shared_ptr<const Topology> topology;   // never null
  std::vector<PoolRef> refs;                  // the last good memha.io/pools, used while the annotation is bad
  bool stale = false;                         // an error kept the last good topology unchanged
  std::vector<std::shared_ptr<const PoolBase>> bases;  // what `topology` was built from (empty when stale)
  bool has_sidecar = true;  // the pod has a memha-sidecar container: pushed; otherwise only served on GET
  bool socket = false;      // memha.io/socket: each pool also on a unix socket (listen_unix)
};

// The last good value of each Service annotation (a bad value keeps the previous one).
struct PoolSettings {
  std::string backup;  // "ns/name" or empty
  WritePolicy write_policy = WritePolicy::kAsync;
  bool warmup = true;
};

struct KnownMember {
  std::string address;     // last address the member was reachable at
  Clock::time_point seen;  // last pass in which the pod existed and matched the selector
};

// Everything carried from one computation to the next. Start with State{.version = seed} (see docs).
struct State {
  uint64_t epoch = 0;
  uint64_t version = 0;                                           // the last version handed out
  std::map<std::string, SidecarTopology> sidecars;                // by pod "ns/name"
  std::map<std::string, PoolSettings> settings;                   // by Service "ns/name"
  std::map<std::string, std::map<std::string, KnownMember>> members;  // Service -> pod name -> last known
  std::map<std::string, std::shared_ptr<const PoolBase>> pools;   // by Service "ns/name", as of this pass
};

struct ComputeResult {
  State state;
  std::vector<TopologyError> errors;  // the current errors (level-based: repeated every pass until fixed)
};

ComputeResult ComputeTopologies(const model::StoreView& view, const Options& options, uint64_t epoch,
                                const State& previous, Clock::time_point now);

// The Service port that carries memcached: the one named "memcache" or "memcached", else the only one, else
// the first. Null when the Service has no ports.
const model::ServicePort* MemcachedPort(const model::ServiceInfo& service);

// The member's port on this pod: numeric targetPort, named targetPort resolved against the pod's container
// ports, or the Service port itself when targetPort is absent. 0 when a named port is not declared.
int ResolveTargetPort(const model::ServicePort& port, const model::PodInfo& pod);

MemberState PodMemberState(const model::PodInfo& pod);

}  // namespace memha::topology
