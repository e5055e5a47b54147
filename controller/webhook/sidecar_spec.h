#pragma once
// What the webhook injects: the memha-sidecar native sidecar container (an initContainers entry with
// restartPolicy: Always, Kubernetes >= 1.29) and the two volumes it needs: the pod's own ServiceAccount token for
// the controller (projected, audience memha, rotated by the kubelet) and the state file. Pure data in, JSON out.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "controller/model/objects.h"

namespace memha::webhook {

inline constexpr const char* kSidecarContainerName = model::kSidecarContainer.data();
inline constexpr const char* kTokenVolumeName = "memha-token";
inline constexpr const char* kStateVolumeName = "memha-sidecar-state";
inline constexpr const char* kTokenMountPath = "/var/run/memha/token";
inline constexpr const char* kStateMountPath = "/var/run/memha/state";
inline constexpr const char* kTokenFileName = "token";  // the projected token's path in its volume
// memha.io/socket: the pools' unix sockets, in an emptyDir shared by the sidecar and the application containers.
inline constexpr const char* kSocketVolumeName = model::kSocketVolume.data();
inline constexpr const char* kSocketDirEnv = "MEMHA_SOCKET_DIR";
inline constexpr const char* kTokenAudience = "memha";  // what the controller's TokenReview asks for

// Kubernetes quantities as strings ("50m", "64Mi"); an empty one is left out of the container spec.
struct SidecarResources {
  std::string cpu_request = "50m";
  std::string memory_request = "32Mi";
  std::string cpu_limit;                 // none by default: a throttled proxy adds latency to every request
  std::string memory_limit = "128Mi";
};

struct InjectConfig {
  std::string image = "memha:0.1.0";
  std::string image_pull_policy = "IfNotPresent";
  // Where the sidecar asks for its first topology (GET /v1/topology?pod=ns/name) before any push.
  std::string controller_url = "http://memha-controller.memha-system.svc:8080";
  int admin_port = 11299;
  // The sidecar's health port (/healthz, /readyz, /metrics): the probes and Prometheus use it, never the admin port,
  // so nothing on the admin port (pushes, or a flood of connections to it) can fail a probe.
  int health_port = 11298;
  // Lifetime of the projected token (the API server's minimum is 600 s); the kubelet replaces it at 80%.
  int64_t token_expiration_s = 600;
  // The controller's push-verification keys (base64 Ed25519 public keys: current, next), filled per review from
  // the keyring. Non-empty: the sidecar gets --push-public-key and its pod uid, and accepts only signed pushes.
  std::vector<std::string> push_public_keys;
  SidecarResources resources;
  int64_t run_as_user = 65532;
  std::string log_level = "info";
  // The startup probe allows this long for the first topology; the application containers start after it.
  int startup_timeout_s = 120;

  Status Validate() const;
};

// The initContainers entry.
// `socket`: the pod asked for unix sockets (memha.io/socket): the socket volume is mounted too.
nlohmann::json SidecarContainer(const InjectConfig& config, bool socket = false);
// The projected ServiceAccount token volume and the state-file emptyDir.
nlohmann::json SidecarVolumes(const InjectConfig& config, bool socket = false);

}  // namespace memha::webhook
