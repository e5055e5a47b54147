#pragma once
// The controller's admin HTTP server (cpp-httplib, its own threads), on both replicas:
//   GET /healthz                  200 while the process serves
//   GET /readyz                   200 once the store has had its first full list of Pods and Services, else 503
//   GET /metrics                  Prometheus text
//   GET /v1/topology?pod=ns/name  bearer token; the pod's current topology (a sidecar that boots before any push
//                                 asks here); 404 unknown pod, 503 before the store is synced
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"
#include "controller/push/token.h"

namespace memha::http { class ServingThread; }

namespace memha::admin {

struct AdminHooks {
  std::function<bool()> synced;                                        // the store's synced gate
  std::function<std::optional<std::string>(const std::string&)> topology;  // pod -> topology JSON
  std::function<std::string()> metrics;                                // Prometheus text
};

class AdminServer {
 public:
  struct Options {
    std::string address = "0.0.0.0";
    uint16_t port = 8080;  // 0: any free port (tests)
  };
  AdminServer(Options options, push::TokenFile* token, AdminHooks hooks);
  ~AdminServer();

  Status Start();  // binds, then serves on a thread
  void Stop();
  int port() const;

 private:
  Options options_;
  push::TokenFile* token_;
  AdminHooks hooks_;
  std::unique_ptr<http::ServingThread> http_;  // the httplib server and its thread
};

}  // namespace memha::admin
