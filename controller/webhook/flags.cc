#include "controller/webhook/flags.h"

#include <charconv>
#include <functional>
#include <map>

namespace memha::webhook {
namespace {

Result<int> ParseInt(std::string_view name, std::string_view v, int lo, int hi) {
  int n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || end != v.data() + v.size() || n < lo || n > hi) {
    return Status::InvalidArgument(std::string(name) + ": expected an integer in [" + std::to_string(lo) + ", " +
                                   std::to_string(hi) + "], got \"" + std::string(v) + "\"");
  }
  return n;
}

struct Flag {
  const char* help;
  std::function<Status(std::string_view name, std::string_view value, WebhookSettings* s)> apply;
};

Flag Str(const char* help, std::function<std::string*(WebhookSettings*)> field) {
  return Flag{help, [field](std::string_view, std::string_view v, WebhookSettings* s) {
                *field(s) = std::string(v);
                return Status::Ok();
              }};
}

const std::map<std::string, Flag, std::less<>>& Flags() {
  static const auto* flags = new std::map<std::string, Flag, std::less<>>{
      {"--webhook-port",
       {"N  HTTPS port of the admission webhook (default 8443; 0: no webhook)",
        [](std::string_view n, std::string_view v, WebhookSettings* s) {
          auto p = ParseInt(n, v, 0, 65535);
          if (!p.ok()) return p.status();
          s->enabled = p.value() != 0;
          s->server.port = p.value();
          return Status::Ok();
        }}},
      {"--webhook-address", Str("ADDR  webhook listen address (default 0.0.0.0)",
                                [](WebhookSettings* s) { return &s->server.address; })},
      {"--webhook-configuration",
       Str("NAME  MutatingWebhookConfiguration whose caBundle the controller sets (default memha-sidecar-injector)", [](WebhookSettings* s) { return &s->certificates.webhook_configuration; })},
      {"--webhook-service", Str("NAME  Service in front of the webhook: the certificate's DNS names (default memha-controller)", [](WebhookSettings* s) { return &s->certificates.service_name; })},
      {"--webhook-secret", Str("NAME  Secret holding the webhook CA and serving certificate (default memha-webhook-tls)", [](WebhookSettings* s) { return &s->certificates.secret_name; })},
      {"--webhook-cert-ip",
       {"IP  extra IP address in the serving certificate (repeatable)",
        [](std::string_view, std::string_view v, WebhookSettings* s) {
          s->certificates.ip_addresses.emplace_back(v);
          return Status::Ok();
        }}},
      {"--cluster-domain", Str("DOMAIN  cluster DNS domain (default cluster.local)",
                               [](WebhookSettings* s) { return &s->certificates.cluster_domain; })},
      {"--token-secret", Str("NAME  Secret with the sidecar token, in the controller's and every app namespace "
                             "(default memha-sidecar-token)", [](WebhookSettings* s) { return &s->tokens.secret_name; })},
      {"--sidecar-image", Str("IMAGE  image of the injected memha-sidecar",
                              [](WebhookSettings* s) { return &s->inject.image; })},
      {"--sidecar-image-pull-policy", Str("POLICY  Always | IfNotPresent (default) | Never",
                                          [](WebhookSettings* s) { return &s->inject.image_pull_policy; })},
      {"--sidecar-admin-port",
       {"N  the sidecar's admin port (default 11299)",
        [](std::string_view n, std::string_view v, WebhookSettings* s) {
          auto p = ParseInt(n, v, 1, 65535);
          if (p.ok()) s->inject.admin_port = p.value();
          return p.status();
        }}},
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
       {"N  how long the sidecar's startup probe waits for a first topology (default 120)",
        [](std::string_view n, std::string_view v, WebhookSettings* s) {
          auto p = ParseInt(n, v, 1, 3600);
          if (p.ok()) s->inject.startup_timeout_s = p.value();
          return p.status();
        }}},
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
  inject.token_secret = tokens.secret_name;
  if (controller_namespace.empty()) return Status::InvalidArgument("the controller's namespace is unknown");
  if (!enabled) return Status::Ok();
  return inject.Validate();
}

Result<bool> ApplyWebhookFlag(std::string_view name, std::string_view value, WebhookSettings* settings) {
  auto it = Flags().find(name);
  if (it == Flags().end()) return false;
  if (Status s = it->second.apply(name, value, settings); !s.ok()) return s;
  return true;
}

std::string WebhookFlagsHelp() {
  std::string out;
  for (const auto& [name, flag] : Flags()) out += "  " + name + " " + flag.help + "\n";
  return out;
}

}  // namespace memha::webhook
