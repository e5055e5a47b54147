#pragma once
// memha-controller assembled: the Kubernetes client, the Pod and Service watchers filling the Store, the
// reconciler, the pusher, the leader elector, the admin HTTP server and the admission webhook.
//
//   app::Controller c(flags);
//   if (Status s = c.Start(); !s.ok()) { ...; return 1; }
//   <wait for SIGTERM>
//   c.Shutdown();  // releases the Lease, stops everything
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/crypto/push_signature.h"
#include "common/status.h"
#include "controller/admin/metrics.h"
#include "controller/admin/server.h"
#include "controller/app/flags.h"
#include "controller/app/reconciler.h"
#include "controller/kube/http_api.h"
#include "controller/kube/events.h"
#include "controller/kube/token_review.h"
#include "controller/leader/lease.h"
#include "controller/model/store.h"
#include "controller/push/pusher.h"
#include "controller/refill/manager.h"
#include "controller/status/writer.h"
#include "controller/watch/watcher.h"
#include "controller/webhook/ca_sync.h"
#include "controller/webhook/server.h"
#include "controller/webhook/signing_keys.h"

namespace memha::app {

class Controller {
 public:
  explicit Controller(ControllerFlags flags);
  ~Controller();

  Status Start();
  void Shutdown();  // idempotent; the Lease is released before it returns

  int admin_port() const { return admin_ ? admin_->port() : 0; }

 private:
  Status StartWebhook();
  Status ReloadSigningKeys();
  void RegisterMetrics();
  void RegisterRefillMetrics();
  // An Event on a pool Service "ns/name" (refill, status): best effort, logged when it fails.
  void ServiceEvent(const std::string& service, bool warning, const std::string& reason, const std::string& message);

  ControllerFlags flags_;
  kube::KubeConfig config_;
  std::unique_ptr<kube::HttpKubeApi> pods_api_, services_api_, lease_api_, api_;
  webhook::SigningKeyring signing_keys_;            // the Secret or file, re-read every --keys-refresh-s
  std::unique_ptr<crypto::PushSigner> signer_;      // null: pushes are not signed (--push-signing-secret=)
  model::Store store_;
  std::unique_ptr<watch::Watcher> pod_watcher_, service_watcher_;
  admin::ControllerMetrics metrics_;
  std::unique_ptr<push::TopologyPusher> pusher_;
  std::unique_ptr<kube::EventRecorder> events_;
  std::unique_ptr<refill::RefillManager> refill_;
  std::unique_ptr<status::StatusWriter> status_;
  std::unique_ptr<Reconciler> reconciler_;
  std::unique_ptr<leader::LeaderElector> elector_;
  std::unique_ptr<kube::PodTokenReviewer> token_reviewer_;  // GET /v1/topology: whose token it is
  std::unique_ptr<admin::AdminServer> admin_;
  std::unique_ptr<webhook::WebhookServer> webhook_;
  std::vector<std::thread> threads_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;  // stop_mu_
  bool shut_down_ = false;
};

}  // namespace memha::app
