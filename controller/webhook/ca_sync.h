#pragma once
// One writer of the webhook CA (issue 12: each replica rewrote caBundle every minute with the CA it had loaded at
// start, so two replicas holding different CAs overwrote each other, and under failurePolicy Ignore pods silently
// got no sidecar). Each round (every minute):
//  - the leader reconciles the Secret (creates or renews it: CertificateBootstrap::LoadOrCreate) and sets caBundle
//    to the Secret's CA (not with an external, cert-manager, Secret: cert-manager writes both);
//  - every replica serves what the Secret holds, reloading its serving certificate when it changed (no restart);
//    a replica that does not lead never replaces the Secret or a caBundle, but fills a missing caBundle with the
//    Secret's CA (a fresh install is callable before any election: `helm install --wait` means injecting).
// Hooks keep it free of the webhook server and of leader election, so it is tested with two of it on one fake API.
#include <functional>

#include "common/status.h"
#include "controller/webhook/certificates.h"

namespace memha::webhook {

class WebhookCaSync {
 public:
  struct Hooks {
    std::function<bool()> leading;
    std::function<ServingCertificate()> serving;                 // what this replica serves now
    std::function<Status(const ServingCertificate&)> reload;     // serve this from the next handshake on
  };
  WebhookCaSync(CertificateBootstrap& certificates, Hooks hooks) : certificates_(certificates), hooks_(std::move(hooks)) {}

  // One round; the first error (after doing what could be done).
  Status Once();

 private:
  CertificateBootstrap& certificates_;
  Hooks hooks_;
};

}  // namespace memha::webhook
