#include "controller/app/flags.h"

#include <charconv>
#include <functional>

#include "controller/cli/flag_table.h"

namespace memha::app {
namespace {

using Flag = cli::Flag<ControllerFlags>;

Flag Str(const char* help, std::string ControllerFlags::*field) {
  return cli::StringFlag<ControllerFlags>(help, [field](ControllerFlags* f) { return &(f->*field); });
}

Flag Integer(const char* help, long long lo, long long hi, std::function<void(ControllerFlags*, long long)> set) {
  return cli::IntegerFlag<ControllerFlags>(help, lo, hi, std::move(set));
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

Flag Port(const char* help, uint16_t ControllerFlags::*field) {
  return Integer(help, 1, 65535, [field](ControllerFlags* f, long long n) { f->*field = static_cast<uint16_t>(n); });
}

const cli::FlagTable<ControllerFlags>& Flags() {
  static const auto* flags = new cli::FlagTable<ControllerFlags>{
      {"--kubeconfig", Str("PATH  kubeconfig (default: in-cluster, else $KUBECONFIG)", &ControllerFlags::kubeconfig)},
      {"--namespace", Str("NS  the controller's namespace: Lease, signing keys, certificates "
                          "(default $POD_NAMESPACE, else the kubeconfig's)", &ControllerFlags::ns)},
      {"--lease-name", Str("NAME  the leader-election Lease (default memha-controller)", &ControllerFlags::lease_name)},
      {"--identity", Str("ID  this replica in the Lease (default $POD_NAME, else the hostname)",
                         &ControllerFlags::identity)},
      {"--lease-duration", Duration("DUR  Lease duration (default 15s)", &ControllerFlags::lease_duration)},
      {"--renew-deadline", Duration("DUR  the leader steps down if it cannot renew this long (default 10s)",
                                    &ControllerFlags::renew_deadline)},
      {"--retry-period", Duration("DUR  Lease renew/acquire period (default 2s)", &ControllerFlags::retry_period)},
      {"--admin-address", Str("ADDR  admin HTTP listen address (default 0.0.0.0)", &ControllerFlags::admin_address)},
      {"--admin-port", Port("N  admin HTTP port: /healthz /readyz /metrics /v1/topology (default 8080)",
                            &ControllerFlags::admin_port)},
      {"--http-port", Port("N  same as --admin-port", &ControllerFlags::admin_port)},
      {"--keys-refresh-s",
       Integer("N  re-read the push-signing keys (Secret or file) every N seconds (default 30)", 1, 3600,
               [](ControllerFlags* f, long long n) { f->keys_refresh = std::chrono::seconds(n); })},
      {"--sidecar-admin-port",
       {"N  the sidecars' admin port, pushed at podIP:N (default 11299; also the injected sidecar's)",
        [](std::string_view n, std::string_view v, ControllerFlags* f) {
          // One value for both: where the controller pushes and what the webhook injects.
          auto applied = webhook::ApplyWebhookFlag(n, v, &f->webhook);
          if (applied.ok()) f->sidecar_admin_port = static_cast<uint16_t>(f->webhook.inject.admin_port);
          return applied.status();
        }}},
      {"--resync-s", Integer("N  re-push every sidecar's topology every N seconds (default 60)", 1, 86400,
                             [](ControllerFlags* f, long long n) { f->resync = std::chrono::seconds(n); })},
      {"--push-parallelism", Integer("N  pushes in flight at most (default 16)", 1, 1024, [](ControllerFlags* f, long long n) {
                               f->push_parallelism = static_cast<size_t>(n);
                             })},
      {"--push-timeout", Duration("DUR  connect and read timeout of one push (default 3s)",
                                  &ControllerFlags::push_timeout)},
      {"--member-grace-s", Integer("N  a vanished member pod stays on its ring, down, this long (default 120)", 0,
                                   86400, [](ControllerFlags* f, long long n) { f->member_grace = std::chrono::seconds(n); })},
      {"--refill", {"on|off  bulk refill of a member that comes back empty from the other pool (default on)",
                    [](std::string_view n, std::string_view v, ControllerFlags* f) {
                      if (v != "on" && v != "off") {
                        return Status::InvalidArgument(std::string(n) + ": expected on or off, got \"" +
                                                       std::string(v) + "\"");
                      }
                      f->refill.enabled = v == "on";
                      return Status::Ok();
                    }}},
      {"--refill-keys-per-second",
       Integer("N  keys copied per second by the refill, all refills together; 0: unlimited (default 20000)", 0,
               10'000'000, [](ControllerFlags* f, long long n) {
                 f->refill.limits.keys_per_second = static_cast<double>(n);
               })},
      {"--refill-bytes-per-second",
       Integer("N  value bytes written per second by the refill; 0: unlimited (default 33554432, 32 MiB)", 0,
               1'000'000'000'000LL, [](ControllerFlags* f, long long n) {
                 f->refill.limits.bytes_per_second = static_cast<double>(n);
               })},
      {"--refill-probe-interval",
       Duration("DUR  how often the leader reads memcached stats to notice an empty member (default 10s)",
                &ControllerFlags::refill_probe_interval)},
      {"--refill-verify-delay",
       Duration("DUR  a copied key is re-read on its source this long after the copy; gone or changed there: the "
                "copy is taken back (default 1s)", &ControllerFlags::refill_verify_delay)},
      {"--refill-handover", {"on|off  after a pool's ring changes, check and copy the keys that moved onto each "
                             "member from the other pool (default on; needs --refill on)",
                             [](std::string_view n, std::string_view v, ControllerFlags* f) {
                               if (v != "on" && v != "off") {
                                 return Status::InvalidArgument(std::string(n) + ": expected on or off, got \"" +
                                                                std::string(v) + "\"");
                               }
                               f->refill.handover = v == "on";
                               return Status::Ok();
                             }}},
      {"--status-configmap", Str("NAME  the ConfigMap in --namespace where the leader keeps each pool's status; empty: "
                                 "none (default memha-status)", &ControllerFlags::status_config_map)},
      {"--refill-handover-delay",
       Duration("DUR  a ring change -> its handover starts, so the new topology reaches the sidecars first "
                "(default 3s)", &ControllerFlags::refill_handover_delay)},
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
    if (arg == "--version") {
      flags.version = true;
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
    const bool ours = Flags().contains(name);
    if (!ours && !webhook::IsWebhookFlag(name)) {
      return Status::InvalidArgument("unknown flag " + name + " (see --help)");
    }
    if (Status s = take_value(); !s.ok()) return s;
    auto applied = ours ? cli::ApplyFlag(Flags(), name, value, &flags)
                        : webhook::ApplyWebhookFlag(name, value, &flags.webhook);
    if (!applied.ok()) return applied.status();
  }
  if (flags.renew_deadline >= flags.lease_duration) {
    return Status::InvalidArgument("--renew-deadline must be shorter than --lease-duration");
  }
  flags.refill.probe_interval = flags.refill_probe_interval;
  flags.refill.limits.verify_delay = flags.refill_verify_delay;
  flags.refill.handover_delay = flags.refill_handover_delay;
  if (Status s = flags.refill.Validate(); !s.ok()) return s;
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
  out += cli::FlagTableHelp(Flags());
  out += "\nwebhook:\n" + webhook::WebhookFlagsHelp();
  out += "\n  -h, --help  this text\n  --version  print the version\n";
  return out;
}

}  // namespace memha::app
