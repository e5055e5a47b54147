#include "controller/webhook/ca_sync.h"

#include "common/log.h"

namespace memha::webhook {

Status WebhookCaSync::Once() {
  const bool leading = hooks_.leading() && !certificates_.external();  // cert-manager's: nobody here writes
  auto stored = leading ? certificates_.LoadOrCreate() : certificates_.Load();
  if (!stored.ok()) return stored.status();  // a follower keeps serving what it has until the leader fixes the Secret
  const ServingCertificate& tls = stored.value();
  const ServingCertificate current = hooks_.serving();
  if (tls.cert_pem != current.cert_pem || tls.key_pem != current.key_pem || tls.ca_pem != current.ca_pem) {
    if (Status s = hooks_.reload(tls); !s.ok()) return s;
    MEMHA_LOG(kInfo, "webhook", "serving certificate reloaded from the Secret");
  }
  if (certificates_.external()) return Status::Ok();
  // A fresh install (or a re-applied manifest) has no caBundle: every replica fills it with the Secret's CA at once,
  // so the webhook is callable as soon as a replica is ready, before any election. Only the leader replaces one.
  return certificates_.EnsureCaBundle(tls.ca_pem, /*only_where_empty=*/!leading);
}

}  // namespace memha::webhook
