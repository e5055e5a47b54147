#pragma once
// The webhook's command-line flags, parsed here so the chart (charts/memha/templates/deployment.yaml) and the
// code agree on one list. memha-controller's main hands every "--name=value" / "--name value" it does not know
// itself to ApplyWebhookFlag.
#include <string>
#include <string_view>

#include "common/status.h"
#include "controller/webhook/certificates.h"
#include "controller/webhook/server.h"
#include "controller/webhook/sidecar_spec.h"

namespace memha::webhook {

struct WebhookSettings {
  bool enabled = true;                // --webhook-port=0 turns the webhook off
  WebhookServer::Options server;      // --webhook-address, --webhook-port
  CertificateOptions certificates;    // ns is the controller's namespace (main fills it)
  InjectConfig inject;                // --sidecar-*, --controller-url
  // Push signing (docs/DEPLOY.md "Signed pushes"): a Secret in the controller's namespace, or a mounted file.
  std::string signing_secret = "memha-push-signing-key";  // --push-signing-secret (one of the two is required)
  std::string signing_key_file;                           // --push-signing-key-file (wins over the Secret)

  // Fills the parts that follow from the namespace (certificate ns, default controller URL) and validates.
  Status Finish(const std::string& controller_namespace);
};

// Ok(true): the flag was a webhook flag and was applied; Ok(false): not a webhook flag; error: bad value.
Result<bool> ApplyWebhookFlag(std::string_view name, std::string_view value, WebhookSettings* settings);

// Whether `name` ("--webhook-port") is a webhook flag.
bool IsWebhookFlag(std::string_view name);

// One line per flag, for --help.
std::string WebhookFlagsHelp();

}  // namespace memha::webhook
