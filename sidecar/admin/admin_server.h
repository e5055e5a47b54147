#pragma once
// The sidecar's HTTP endpoints, on two ports served by http::Server (event-driven, on threads of their own):
//  - admin:  PUT /v1/topology (signed by the controller), /healthz and /readyz to anyone; GET /v1/topology and
//            /metrics (member addresses) only to a loopback peer, i.e. the pod itself;
//  - health: /healthz, /readyz, /metrics only, for the kubelet's probes and Prometheus (optional port).
// /healthz answers from the data-plane loop's heartbeat: 503 once the loop has not turned for `loop_stall_limit`.
// Never touches data-plane objects: a push is validated into a Topology and handed to the loop.
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "common/crypto/push_signature.h"
#include "common/status.h"
#include "sidecar/admin/http_server.h"
#include "sidecar/admin/topology_store.h"

namespace memha {

class AdminMetrics;
class LoopHeartbeat;
class Metrics;
class Proxy;

class AdminServer {
 public:
  struct Listen {
    std::string address = "127.0.0.1";
    uint16_t port = 0;  // 0: a free port
  };
  struct Options {
    std::optional<Listen> admin = Listen{};
    std::optional<Listen> health;                  // none: the probe paths are on the admin port only
    crypto::PushVerifier* verifier = nullptr;      // pushes must be signed by it (null: PUT refused)
    size_t max_body = 1024 * 1024;                 // a pushed topology; more is answered 413 unread
    std::chrono::milliseconds loop_stall_limit{5000};
    http::ServerLimits limits;                     // per port
  };
  // `heartbeat` may be null (no loop check); `admin_metrics` may be null (no admin-side metrics).
  AdminServer(Options options, Proxy* proxy, Metrics* metrics, TopologyStore* store, const LoopHeartbeat* heartbeat,
              AdminMetrics* admin_metrics);
  ~AdminServer();

  Status Start();  // binds both ports, then serves
  void Stop();
  int port() const;         // the admin port, -1 if none
  int health_port() const;  // -1 if none

 private:
  http::Route RouteAdmin(const http::RequestHead& head);
  http::Route RouteHealth(const http::RequestHead& head);
  http::Response Healthz() const;
  http::Response Readyz() const;
  http::Response MetricsText() const;
  http::Response PutTopology(const http::Request& request);
  http::Response Refuse(crypto::PushRefusal refusal, const std::string& why);
  std::optional<std::string> LoopStalled() const;  // why the loop counts as stalled, if it does

  Options options_;
  Proxy* proxy_;
  Metrics* metrics_;
  TopologyStore* store_;
  const LoopHeartbeat* heartbeat_;
  AdminMetrics* admin_metrics_;
  std::unique_ptr<http::Server> admin_;
  std::unique_ptr<http::Server> health_;
};

}  // namespace memha
