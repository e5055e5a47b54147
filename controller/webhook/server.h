#pragma once
// The admission webhook over HTTPS: POST /mutate runs ReviewPod with the current push-verification keys. No side
// effects: nothing is created in the pod's namespace (the sidecar's identity is the pod's own projected
// ServiceAccount token). Exceptions stop at this edge.
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "controller/webhook/admission.h"
#include "controller/webhook/certificates.h"

namespace httplib {
class SSLServer;
}

namespace memha::webhook {

class WebhookServer {
 public:
  struct Options {
    std::string address = "0.0.0.0";
    int port = 8443;                       // 0 picks a free port (tests)
    size_t max_body_bytes = 8 << 20;
  };
  // Called after every review (metrics: DecisionName(result.decision) as the label), from the server threads,
  // possibly concurrently; may be empty.
  using Observer = std::function<void(const AdmissionResult&)>;

  WebhookServer(Options options, ServingCertificate tls, InjectConfig config, Observer observer = nullptr);
  ~WebhookServer();
  WebhookServer(const WebhookServer&) = delete;
  WebhookServer& operator=(const WebhookServer&) = delete;

  // Binds and serves on a thread of its own. The certificate is fixed for the life of the server: after the
  // Secret was replaced (expiry, renamed Service), restart the process.
  Status Start();
  int port() const { return port_; }
  void Stop();

  // What POST /mutate does, without the HTTP.
  AdmissionResult Handle(std::string_view body);
  // The controller's push-verification public keys, asked at every review (they rotate); call before Start().
  void SetPushPublicKeys(std::function<std::vector<std::string>()> keys) { push_public_keys_ = std::move(keys); }

 private:
  Options options_;
  ServingCertificate tls_;
  InjectConfig config_;
  Observer observer_;
  std::function<std::vector<std::string>()> push_public_keys_;
  std::unique_ptr<httplib::SSLServer> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace memha::webhook
