#pragma once
// Command-line options of memha-sidecar: magent-compatible static mode (-p/-l/-s/-b), a topology file, or
// pushes from the controller. Parsing is pure so it is unit-tested; errors are one line.
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "common/topology.h"
#include "sidecar/backend/tunables.h"

namespace memha {

struct SidecarOptions {
  // Static mode.
  uint16_t port = 11211;
  std::string listen_address = "127.0.0.1";
  std::string listen_unix;  // also accept clients on this unix socket (static mode)
  std::vector<std::string> primary;
  std::vector<std::string> backup;
  WritePolicy write_policy = WritePolicy::kAsync;
  bool warmup = true;
  std::string config_file;
  // Pushed mode.
  std::string state_file;
  std::string admin_address = "127.0.0.1";
  uint16_t admin_port = 11299;
  bool admin_enabled = true;
  // Signed pushes: the controller's Ed25519 public keys (base64 of the raw 32 bytes; current and next). With
  // them, a push must be signed for this pod (--pod, --pod-uid) within --push-max-skew-s of this clock.
  std::vector<std::string> push_public_keys;  // each as given (base64, comma separated); validated on parse
  std::chrono::seconds push_max_skew{60};
  std::string pod_uid;  // default from MEMHA_POD_UID
  // Health port: /healthz, /readyz, /metrics on a port of their own (without it, on the admin port only).
  std::string health_address;            // empty: the admin address
  std::optional<uint16_t> health_port;   // 0: a free port
  std::chrono::milliseconds loop_stall{5000};  // /healthz fails once the event loop has not turned for this long
  size_t admin_max_body = 1024 * 1024;
  size_t admin_max_connections = 64;     // per port
  std::chrono::milliseconds admin_request_timeout{5000};
  std::string controller_url;  // GET <url>/v1/topology?pod=<pod> at boot, until a topology arrives
  std::string controller_token_file;  // the pod's projected ServiceAccount token for that GET (audience memha)
  std::string pod;             // "namespace/name"; default from MEMHA_POD_NAMESPACE and MEMHA_POD_NAME
  std::string log_level = "info";
  Tunables tunables;
  bool help = false;
  bool version = false;
};

// Returns the options, or an error whose message is the one-line reason.
Result<SidecarOptions> ParseSidecarOptions(const std::vector<std::string>& args);
// The static topology built from -s/-b, if any were given.
Result<Topology> StaticTopology(const SidecarOptions& options);
std::string SidecarUsage();

}  // namespace memha
