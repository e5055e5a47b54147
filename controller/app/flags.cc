#include "controller/app/flags.h"

#include <charconv>
#include <functional>
#include <map>

namespace memha::app {
namespace {

Result<long long> ParseNumber(std::string_view name, std::string_view v, long long lo, long long hi) {
  long long n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || end != v.data() + v.size() || n < lo || n > hi) {
    return Status::InvalidArgument(std::string(name) + ": expected an integer in [" + std::to_string(lo) + ", " +
                                   std::to_string(hi) + "], got \"" + std::string(v) + "\"");
  }
  return n;
}

struct Flag {
  const char* help;
  std::function<Status(std::string_view name, std::string_view value, ControllerFlags* f)> apply;
};

Flag Str(const char* help, std::string ControllerFlags::*field) {
  return {help, [field](std::string_view, std::string_view v, ControllerFlags* f) {
            f->*field = std::string(v);
            return Status::Ok();
          }};
}

Flag Duration(const char* help, std::chrono::milliseconds ControllerFlags::*field) {
  return {help, [field](std::string_view name, std::string_view v, ControllerFlags* f) {
            auto d = ParseDuration(v);
            if (!d.ok() || d.value().count() <= 0) {
              return Status::InvalidArgument(std::string(name) + ": expected a positive duration like 15s or 500ms, "
                                             "got \"" + std::string(v) + "\"");
            }
            f->*field = d.value();
            return Status::Ok();
          }};
}

Status SetPort(std::string_view name, std::string_view v, uint16_t* out) {
  auto p = ParseNumber(name, v, 1, 65535);
  if (p.ok()) *out = static_cast<uint16_t>(p.value());
  return p.status();
}

const std::map<std::string, Flag, std::less<>>& Flags() {
  static const auto* flags = new std::map<std::string, Flag, std::less<>>{
      {"--kubeconfig", Str("PATH  kubeconfig (default: in-cluster, else $KUBECONFIG)", &ControllerFlags::kubeconfig)},
      {"--namespace", Str("NS  the controller's namespace: Lease, token Secret, certificates "
                          "(default $POD_NAMESPACE, else the kubeconfig's)", &ControllerFlags::ns)},
      {"--lease-name", Str("NAME  the leader-election Lease (default memha-controller)", &ControllerFlags::lease_name)},
      {"--identity", Str("ID  this replica in the Lease (default $POD_NAME, else the hostname)",
                         &ControllerFlags::identity)},
      {"--lease-duration", Duration("DUR  Lease duration (default 15s)", &ControllerFlags::lease_duration)},
      {"--renew-deadline", Duration("DUR  the leader steps down if it cannot renew this long (default 10s)",
                                    &ControllerFlags::renew_deadline)},
      {"--retry-period", Duration("DUR  Lease renew/acquire period (default 2s)", &ControllerFlags::retry_period)},
      {"--admin-address", Str("ADDR  admin HTTP listen address (default 0.0.0.0)", &ControllerFlags::admin_address)},
      {"--admin-port", {"N  admin HTTP port: /healthz /readyz /metrics /v1/topology (default 8080)",
                        [](std::string_view n, std::string_view v, ControllerFlags* f) {
                          return SetPort(n, v, &f->admin_port);
                        }}},
      {"--http-port", {"N  same as --admin-port", [](std::string_view n, std::string_view v, ControllerFlags* f) {
                         return SetPort(n, v, &f->admin_port);
                       }}},
      {"--token-file", Str("PATH  the sidecar bearer token (default: the shared Secret named by --token-secret in "
                           "--namespace, created if missing)", &ControllerFlags::token_file)},
      {"--sidecar-admin-port",
       {"N  the sidecars' admin port, pushed at podIP:N (default 11299; also the injected sidecar's)",
        [](std::string_view n, std::string_view v, ControllerFlags* f) {
          if (Status s = SetPort(n, v, &f->sidecar_admin_port); !s.ok()) return s;
          auto applied = webhook::ApplyWebhookFlag(n, v, &f->webhook);
          return applied.status();
        }}},
      {"--resync-s", {"N  re-push every sidecar's topology every N seconds (default 60)",
                      [](std::string_view n, std::string_view v, ControllerFlags* f) {
                        auto s = ParseNumber(n, v, 1, 86400);
                        if (s.ok()) f->resync = std::chrono::seconds(s.value());
                        return s.status();
                      }}},
      {"--push-parallelism", {"N  pushes in flight at most (default 16)",
                              [](std::string_view n, std::string_view v, ControllerFlags* f) {
                                auto s = ParseNumber(n, v, 1, 1024);
                                if (s.ok()) f->push_parallelism = static_cast<size_t>(s.value());
                                return s.status();
                              }}},
      {"--push-timeout", Duration("DUR  connect and read timeout of one push (default 3s)",
                                  &ControllerFlags::push_timeout)},
      {"--member-grace-s", {"N  a vanished member pod stays on its ring, down, this long (default 120)",
                            [](std::string_view n, std::string_view v, ControllerFlags* f) {
                              auto s = ParseNumber(n, v, 0, 86400);
                              if (s.ok()) f->member_grace = std::chrono::seconds(s.value());
                              return s.status();
                            }}},
      {"--log-level", {"LEVEL  debug | info | warn | error (default info)",
                       [](std::string_view n, std::string_view v, ControllerFlags* f) {
                         if (!log::ParseLevel(v, &f->log_level)) {
                           return Status::InvalidArgument(std::string(n) + ": expected debug, info, warn or error, "
                                                          "got \"" + std::string(v) + "\"");
                         }
                         return Status::Ok();
                       }}},
  };
  return *flags;
}

}  // namespace

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return Status::InvalidArgument("not a duration");
  long long n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + digits, n);
  if (ec != std::errc() || n > 10'000'000) return Status::InvalidArgument("not a duration");
  std::string_view unit = text.substr(digits);
  if (unit.empty() || unit == "s") return std::chrono::milliseconds(n * 1000);
  if (unit == "ms") return std::chrono::milliseconds(n);
  if (unit == "m") return std::chrono::milliseconds(n * 60'000);
  if (unit == "h") return std::chrono::milliseconds(n * 3'600'000);
  return Status::InvalidArgument("not a duration");
}

Result<ControllerFlags> ParseFlags(const std::vector<std::string>& args) {
  ControllerFlags flags;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h" || arg == "--help") {
      flags.help = true;
      continue;
    }
    if (!arg.starts_with("--")) return Status::InvalidArgument("unexpected argument \"" + arg + "\"");
    std::string name = arg;
    std::string value;
    bool has_value = false;
    if (size_t eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    auto take_value = [&]() -> Status {
      if (has_value) return Status::Ok();
      if (i + 1 >= args.size()) return Status::InvalidArgument(name + ": missing value");
      value = args[++i];
      return Status::Ok();
    };
    if (auto it = Flags().find(name); it != Flags().end()) {
      if (Status s = take_value(); !s.ok()) return s;
      if (Status s = it->second.apply(name, value, &flags); !s.ok()) return s;
      continue;
    }
    // Not ours: the webhook's? Probe with a dummy value only to learn whether it is known.
    webhook::WebhookSettings probe;
    auto known = webhook::ApplyWebhookFlag(name, "0", &probe);
    if (known.ok() && !known.value()) return Status::InvalidArgument("unknown flag " + name + " (see --help)");
    if (Status s = take_value(); !s.ok()) return s;
    auto applied = webhook::ApplyWebhookFlag(name, value, &flags.webhook);
    if (!applied.ok()) return applied.status();
  }
  if (flags.renew_deadline >= flags.lease_duration) {
    return Status::InvalidArgument("--renew-deadline must be shorter than --lease-duration");
  }
  if (flags.retry_period >= flags.renew_deadline) {
    return Status::InvalidArgument("--retry-period must be shorter than --renew-deadline");
  }
  return flags;
}

std::string FlagsHelp() {
  std::string out =
      "usage: memha-controller [flags]\n"
      "Watches Services and Pods, pushes each memha-sidecar its topology (leader only), serves\n"
      "GET /v1/topology, /healthz, /readyz, /metrics and the admission webhook.\n\n";
  for (const auto& [name, flag] : Flags()) out += "  " + name + " " + flag.help + "\n";
  out += "\nwebhook:\n" + webhook::WebhookFlagsHelp();
  return out;
}

}  // namespace memha::app
