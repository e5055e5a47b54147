#pragma once
// The controller's admin HTTP server (cpp-httplib, its own threads), on both replicas:
//   GET /healthz                  200 while the process serves
//   GET /readyz                   200 once the store has had its first full list of Pods and Services, else 503
//   GET /metrics                  Prometheus text
//   GET /v1/topology?pod=ns/name  the pod's current topology (a sidecar that boots before any push asks here);
//                                 only for the pod itself: the bearer token must be a ServiceAccount token bound
//                                 to that pod (checked by the API server, TokenReview); 401 no or a refused token,
//                                 403 another pod's token, 404 unknown pod, 503 before the store is synced or
//                                 when the token cannot be checked
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"

namespace memha::http { class ServingThread; }

namespace memha::admin {

// The pod a bearer token was issued to (see controller/kube/token_review.h).
struct Caller {
  std::string pod;  // ns/name
  std::string uid;
};

struct AdminHooks {
  std::function<bool()> synced;                                        // the store's synced gate
  std::function<std::optional<std::string>(const std::string&)> topology;  // pod -> topology JSON
  std::function<std::string()> metrics;                                // Prometheus text
  // Who presents `token`: an Unavailable status is answered 503 (try again), any other failure 401.
  // Null: topology reads are refused.
  std::function<Result<Caller>(const std::string& token)> authenticate;
  // The uid of pod ns/name as the store has it ("" unknown): a token bound to an earlier pod of the same name
  // is refused. Null: not checked.
  std::function<std::string(const std::string& pod)> pod_uid;
};

class AdminServer {
 public:
  struct Options {
    std::string address = "0.0.0.0";
    uint16_t port = 8080;  // 0: any free port (tests)
  };
  AdminServer(Options options, AdminHooks hooks);
  ~AdminServer();

  Status Start();  // binds, then serves on a thread
  void Stop();
  int port() const;

 private:
  Options options_;
  AdminHooks hooks_;
  std::unique_ptr<http::ServingThread> http_;  // the httplib server and its thread
};

}  // namespace memha::admin
