#pragma once
// The user-facing annotations (DESIGN.md "How users drive it"), parsed without I/O.
//   Pod:     memha.io/pools         "cache-a", "cache-a:11211,sessions:11212", "other-ns/cache-a"
//   Service: memha.io/backup-pool   "cache-b" or "ns/cache-b"
//            memha.io/write-policy  async | sync | primary-only
//            memha.io/warmup        on | off   (also true/false)
//   Pod:     memha.io/socket        on | off   (also true/false): unix sockets in a shared emptyDir as well
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/topology.h"
#include "controller/model/objects.h"

namespace memha::topology {

inline constexpr std::string_view kPoolsAnnotation = model::kPoolsAnnotation;
inline constexpr std::string_view kBackupPoolAnnotation = "memha.io/backup-pool";
inline constexpr std::string_view kWritePolicyAnnotation = "memha.io/write-policy";
inline constexpr std::string_view kWarmupAnnotation = "memha.io/warmup";
// On a pool Service: the other namespaces whose pods (memha.io/pools) and Services (memha.io/backup-pool) may use
// it: "ns1,ns2" or "*". Its own namespace always may.
inline constexpr std::string_view kAllowFromAnnotation = "memha.io/allow-from";
// On an application pod: serve each pool on a unix socket as well, in an emptyDir the webhook mounts at kSocketDir
// into the sidecar and every application container (env MEMHA_SOCKET_DIR). docs/ARCHITECTURE.md "Unix socket".
inline constexpr std::string_view kSocketAnnotation = "memha.io/socket";
inline constexpr std::string_view kSocketDir = "/var/run/memha/sockets";

inline constexpr uint16_t kDefaultLocalPort = 11211;   // a pool without ":port" in memha.io/pools
inline constexpr uint16_t kDefaultSidecarAdminPort = 11299;
inline constexpr uint16_t kDefaultSidecarHealthPort = 11298;  // health/readiness/metrics in injected pods

// One entry of memha.io/pools, resolved to a Service key and the sidecar's local port.
struct PoolRef {
  std::string service;  // "ns/name"
  uint16_t local_port = 0;
  bool operator==(const PoolRef&) const = default;
};

struct PoolsAnnotationOptions {
  uint16_t default_port = kDefaultLocalPort;        // where a pool without ":port" listens
  uint16_t admin_port = kDefaultSidecarAdminPort;   // the sidecar's own listeners: no pool may take them
  uint16_t health_port = kDefaultSidecarHealthPort;
};

// The one parser of memha.io/pools: the webhook (inject or not) and the topology (serve or not) both call it,
// so a pod the webhook injects is never one the controller rejects, nor the reverse.
// Entries are "[ns/]name[:port]" separated by commas (whitespace around names and ports ignored). A pool
// without a port listens on `default_port`; only one pool may omit its port, local ports must be distinct and
// none may be the sidecar's admin port. The message names the offending entry and reads well after
// "memha.io/pools: "; the code is kInvalidArgument for syntax and ports, kConflict for a duplicate local port
// or pool.
Result<std::vector<PoolRef>> ParsePoolsAnnotation(std::string_view text, std::string_view pod_namespace,
                                                  const PoolsAnnotationOptions& options = {});

// "name" or "ns/name" -> "ns/name": the namespace an RFC 1123 label, the name an RFC 1035 label (a Service
// name starts with a letter).
Result<std::string> ParseServiceRef(std::string_view text, std::string_view default_namespace);

Result<WritePolicy> ParseWritePolicyAnnotation(std::string_view text);
// Whether `service` may be used from namespace `ns`: its own, or one memha.io/allow-from lists ("*": any).
bool AllowsNamespace(const model::ServiceInfo& service, std::string_view ns);
Result<bool> ParseWarmupAnnotation(std::string_view text);
// memha.io/socket: on | off (also true/false).
Result<bool> ParseSocketAnnotation(std::string_view text);
// A pool's socket in kSocketDir: "<service>.sock" for a Service in the pod's namespace, "<namespace>.<service>.sock"
// for one in another (neither part can hold a dot, so names never collide).
std::string SocketPath(const std::string& service_key, std::string_view pod_namespace);

}  // namespace memha::topology
