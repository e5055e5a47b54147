#include "controller/webhook/flags.h"

#include <functional>

#include "controller/cli/flag_table.h"

namespace memha::webhook {
namespace {

using Flag = cli::Flag<WebhookSettings>;
using cli::IntegerFlag;

Flag Str(const char* help, std::function<std::string*(WebhookSettings*)> field) {
  return cli::StringFlag<WebhookSettings>(help, std::move(field));
}

const cli::FlagTable<WebhookSettings>& Flags() {
  static const auto* flags = new cli::FlagTable<WebhookSettings>{
      {"--webhook-port",
       IntegerFlag<WebhookSettings>("N  HTTPS port of the admission webhook (default 8443; 0: no webhook)", 0, 65535,
                                    [](WebhookSettings* s, long long n) {
                                      s->enabled = n != 0;
                                      s->server.port = static_cast<int>(n);
                                    })},
      {"--webhook-address", Str("ADDR  webhook listen address (default 0.0.0.0)",
                                [](WebhookSettings* s) { return &s->server.address; })},
      {"--webhook-configuration",
       Str("NAME  MutatingWebhookConfiguration whose caBundle the controller sets (default memha-sidecar-injector)", [](WebhookSettings* s) { return &s->certificates.webhook_configuration; })},
      {"--webhook-service", Str("NAME  Service in front of the webhook: the certificate's DNS names (default memha-controller)", [](WebhookSettings* s) { return &s->certificates.service_name; })},
      {"--webhook-cert-manager",
       {"on|off  the webhook Secret and caBundle are cert-manager's (cert-manager.io/inject-ca-from): read, never "
        "written (default off: the controller makes and renews them)",
        [](std::string_view n, std::string_view v, WebhookSettings* s) {
          if (v != "on" && v != "off") {
            return Status::InvalidArgument(std::string(n) + ": expected on or off, got \"" + std::string(v) + "\"");
          }
          s->certificates.external = v == "on";
          return Status::Ok();
        }}},
      {"--webhook-secret", Str("NAME  Secret holding the webhook CA and serving certificate (default memha-webhook-tls)", [](WebhookSettings* s) { return &s->certificates.secret_name; })},
      {"--webhook-cert-ip",
       {"IP  extra IP address in the serving certificate (repeatable)",
        [](std::string_view, std::string_view v, WebhookSettings* s) {
          s->certificates.ip_addresses.emplace_back(v);
          return Status::Ok();
        }}},
      {"--cluster-domain", Str("DOMAIN  cluster DNS domain (default cluster.local)",
                               [](WebhookSettings* s) { return &s->certificates.cluster_domain; })},
      {"--push-signing-secret",
       Str("NAME  Secret in the controller's namespace with the Ed25519 keys that sign pushes, created if missing "
           "(default memha-push-signing-key; sidecars take no unsigned push, so one of the two is required)",
           [](WebhookSettings* s) { return &s->signing_secret; })},
      {"--push-signing-key-file", Str("FILE  read the signing keys from this file instead (lines current: and "
                                      "next: with base64 Ed25519 seeds)",
                                      [](WebhookSettings* s) { return &s->signing_key_file; })},
      {"--sidecar-image", Str("IMAGE  image of the injected memha-sidecar",
                              [](WebhookSettings* s) { return &s->inject.image; })},
      {"--sidecar-image-pull-policy", Str("POLICY  Always | IfNotPresent (default) | Never",
                                          [](WebhookSettings* s) { return &s->inject.image_pull_policy; })},
      {"--sidecar-admin-port",
       IntegerFlag<WebhookSettings>("N  the sidecar's admin port (default 11299)", 1, 65535,
                                    [](WebhookSettings* s, long long n) { s->inject.admin_port = static_cast<int>(n); })},
      {"--sidecar-cpu-request", Str("QTY  (default 50m; empty: none)",
                                    [](WebhookSettings* s) { return &s->inject.resources.cpu_request; })},
      {"--sidecar-memory-request", Str("QTY  (default 32Mi; empty: none)",
                                       [](WebhookSettings* s) { return &s->inject.resources.memory_request; })},
      {"--sidecar-cpu-limit", Str("QTY  (default none)",
                                  [](WebhookSettings* s) { return &s->inject.resources.cpu_limit; })},
      {"--sidecar-memory-limit", Str("QTY  (default 128Mi; empty: none)",
                                     [](WebhookSettings* s) { return &s->inject.resources.memory_limit; })},
      {"--sidecar-log-level", Str("LEVEL  the sidecar's --log-level (default info)",
                                  [](WebhookSettings* s) { return &s->inject.log_level; })},
      {"--sidecar-startup-timeout-s",
       IntegerFlag<WebhookSettings>("N  how long the sidecar's startup probe waits for a first topology (default 120)",
                                    1, 3600, [](WebhookSettings* s, long long n) {
                                      s->inject.startup_timeout_s = static_cast<int>(n);
                                    })},
      {"--controller-url",
       Str("URL  where sidecars fetch their first topology (default http://<webhook-service>.<namespace>.svc:8080)", [](WebhookSettings* s) { return &s->inject.controller_url; })},
  };
  return *flags;
}

}  // namespace

Status WebhookSettings::Finish(const std::string& controller_namespace) {
  certificates.ns = controller_namespace;
  if (inject.controller_url.empty() || inject.controller_url == InjectConfig{}.controller_url) {
    inject.controller_url = "http://" + certificates.service_name + "." + controller_namespace + ".svc:8080";
  }
  if (controller_namespace.empty()) return Status::InvalidArgument("the controller's namespace is unknown");
  if (signing_secret.empty() && signing_key_file.empty()) {
    return Status::InvalidArgument("pushes must be signed (sidecars refuse unsigned ones): give --push-signing-secret "
                                   "or --push-signing-key-file");
  }
  if (!enabled) return Status::Ok();
  return inject.Validate();
}

Result<bool> ApplyWebhookFlag(std::string_view name, std::string_view value, WebhookSettings* settings) {
  return cli::ApplyFlag(Flags(), name, value, settings);
}

bool IsWebhookFlag(std::string_view name) { return Flags().contains(name); }

std::string WebhookFlagsHelp() { return cli::FlagTableHelp(Flags()); }

}  // namespace memha::webhook
