#pragma once
// The admission webhook over HTTPS: POST /mutate runs ReviewPod with the current push-verification keys. No side
// effects: nothing is created in the pod's namespace (the sidecar's identity is the pod's own projected
// ServiceAccount token). Exceptions stop at this edge.
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <openssl/evp.h>
#include <openssl/x509.h>

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

  // Binds and serves on a thread of its own.
  Status Start();
  // Serves this certificate from the next TLS handshake on (the Secret was replaced: renewal, another replica's
  // CA), without a restart and without dropping connections. Any thread.
  Status Reload(const ServingCertificate& tls);
  ServingCertificate Serving() const;  // what is served now
  int port() const { return port_; }
  void Stop();

  // What POST /mutate does, without the HTTP.
  AdmissionResult Handle(std::string_view body);
  // The controller's push-verification public keys, asked at every review (they rotate); call before Start().
  void SetPushPublicKeys(std::function<std::vector<std::string>()> keys) { push_public_keys_ = std::move(keys); }

  // Called, off the admission path (one thread, at most 256 waiting; more are dropped), with every review of a
  // selected pod that was not injected for a reason worth an Event (AdmissionResult::WorthAnEvent), dry runs
  // excepted. Call before Start().
  void SetNotInjectedSink(std::function<void(const AdmissionResult&)> sink) { not_injected_sink_ = std::move(sink); }

  struct KeyPair {
    std::unique_ptr<X509, decltype(&X509_free)> cert{nullptr, &X509_free};
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{nullptr, &EVP_PKEY_free};
  };
  std::shared_ptr<const KeyPair> CurrentKeyPair() const;  // for the handshake callback

 private:
  static Result<std::shared_ptr<const KeyPair>> ParseKeyPair(const ServingCertificate& tls);
  Options options_;
  mutable std::mutex key_mu_;
  ServingCertificate tls_;                    // key_mu_
  std::shared_ptr<const KeyPair> key_pair_;   // key_mu_
  InjectConfig config_;
  Observer observer_;
  std::function<std::vector<std::string>()> push_public_keys_;
  std::function<void(const AdmissionResult&)> not_injected_sink_;
  std::mutex sink_mu_;
  std::condition_variable sink_cv_;
  std::deque<AdmissionResult> sink_queue_;  // sink_mu_
  bool sink_stop_ = false;                  // sink_mu_
  std::thread sink_thread_;
  std::unique_ptr<httplib::SSLServer> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace memha::webhook
