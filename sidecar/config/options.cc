#include "sidecar/config/options.h"

#include <cstdlib>

#include <charconv>
#include <functional>
#include <map>

#include "common/crypto/push_signature.h"

namespace memha {
namespace {

bool ToInt(const std::string& s, long long lo, long long hi, long long* out) {
  long long v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < lo || v > hi) return false;
  *out = v;
  return true;
}

void SplitInto(const std::string& value, std::vector<std::string>* out) {
  size_t start = 0;
  while (start <= value.size()) {
    size_t comma = value.find(',', start);
    if (comma == std::string::npos) comma = value.size();
    if (comma > start) out->push_back(value.substr(start, comma - start));
    start = comma + 1;
  }
}

}  // namespace

std::string SidecarUsage() {
  return R"(Usage: memha-sidecar [options]
memcached high-availability proxy: ketama over a primary pool, writes mirrored to a backup pool, reads failed
over to the backup, a recovered primary warmed from the backup.

Static mode (magent-compatible):
  -p, --port PORT              listen port (default 11211)
  -l, --listen ADDR            listen address (default 127.0.0.1)
      --listen-unix PATH       also accept clients on this unix socket (mode 0666; a stale socket file is
                               replaced, a live one refused; removed at exit)
  -s, --server HOST:PORT[,...] primary member(s); repeatable; IPv6 as [addr]:port; port defaults to 11211
  -b, --backup HOST:PORT[,...] backup member(s); repeatable
      --write-policy POLICY    async (default) | sync | primary-only
      --no-warmup              do not warm returning primaries from the backup
  -c, --config FILE            topology JSON (the schema of PUT /v1/topology); SIGHUP reloads it

Pushed mode (Kubernetes):
      --state-file FILE        keep the last good pushed topology here; loaded at start if present
      --admin-address ADDR     admin HTTP address (default 127.0.0.1)
      --admin-port PORT        admin HTTP port (default 11299; 0 picks a free port)
      --no-admin               no admin HTTP server
      --push-public-key KEYS   the controller's Ed25519 public key(s), base64 of the raw 32 bytes, comma
                               separated or repeated (current and next): every push must then be signed for this
                               pod, newer than the last accepted one and within --push-max-skew-s of this clock;
                               without it, pushes are refused
      --push-max-skew-s N      accepted distance of a push's signing time from this clock (default 60)
      --pod-uid UID            this pod's uid, bound into signed pushes (default: $MEMHA_POD_UID)
      --admin-max-body BYTES   largest pushed topology; a bigger body is refused (413) unread (default 1048576)
      --admin-max-connections N  open connections per admin/health port; when full, the oldest unfinished
                               request is dropped for a new one (default 64)
      --admin-request-timeout-ms N  a request (head and body) must arrive within this (default 5000)
      --health-port PORT       serve /healthz, /readyz and /metrics on this port too, for probes and scrapes
                               (default: none, they are on the admin port; 0 picks a free port)
      --health-address ADDR    health port address (default: the admin address)
      --loop-stall-ms N        /healthz and /readyz fail once the event loop has not turned for N ms (default 5000)
      --controller-url URL     at boot, fetch this pod's topology from the controller (http://host:port), retried
                               with backoff until a topology is held
      --controller-token-file FILE  the token the boot fetch presents: this pod's projected ServiceAccount token
                               (audience memha), re-read at every attempt as the kubelet rotates it
      --pod NS/NAME            this pod (default: $MEMHA_POD_NAMESPACE/$MEMHA_POD_NAME)

Health and limits:
      --connect-timeout-ms N   (default 250)      --request-timeout-ms N  (default 250)
      --failure-limit N        consecutive timeouts before a member is marked down (default 1)
      --probe-interval-ms N    (default 250)      --probe-backoff-cap-ms N (default 5000)
      --connections-per-member N (default 1)
      --mirror-queue-limit N   async mirror writes in flight per backup member (default 10000)
      --replay-log-limit N     missed invalidations kept per member before it is flushed on return (default 100000)
      --warmup-max-s N         longest a returning member stays warming (default 300)
      --max-item-size BYTES    largest value accepted (default 1048576)
      --log-level LEVEL        debug | info | warn | error (default info)
  -h, --help                   this text
      --version                print the version
)";
}

Result<SidecarOptions> ParseSidecarOptions(const std::vector<std::string>& args) {
  SidecarOptions o;
  using Setter = std::function<Status(const std::string&)>;
  auto int_opt = [](long long lo, long long hi, std::function<void(long long)> set) -> Setter {
    return [=](const std::string& v) {
      long long n;
      if (!ToInt(v, lo, hi, &n)) {
        return Status::InvalidArgument("expects an integer in " + std::to_string(lo) + ".." + std::to_string(hi) +
                                       ", got \"" + v + "\"");
      }
      set(n);
      return Status::Ok();
    };
  };
  auto ms = [&](std::chrono::milliseconds* field) {
    return int_opt(1, 3600000, [field](long long n) { *field = std::chrono::milliseconds(n); });
  };
  std::map<std::string, Setter> with_value = {
      {"--port", int_opt(1, 65535, [&](long long n) { o.port = static_cast<uint16_t>(n); })},
      {"--listen", [&](const std::string& v) { o.listen_address = v; return Status::Ok(); }},
      {"--listen-unix", [&](const std::string& v) { o.listen_unix = v; return Status::Ok(); }},
      {"--server", [&](const std::string& v) { SplitInto(v, &o.primary); return Status::Ok(); }},
      {"--backup", [&](const std::string& v) { SplitInto(v, &o.backup); return Status::Ok(); }},
      {"--write-policy", [&](const std::string& v) {
         return ParseWritePolicy(v, &o.write_policy)
                    ? Status::Ok()
                    : Status::InvalidArgument("must be async, sync or primary-only, got \"" + v + "\"");
       }},
      {"--config", [&](const std::string& v) { o.config_file = v; return Status::Ok(); }},
      {"--state-file", [&](const std::string& v) { o.state_file = v; return Status::Ok(); }},
      {"--admin-address", [&](const std::string& v) { o.admin_address = v; return Status::Ok(); }},
      {"--admin-port", int_opt(0, 65535, [&](long long n) { o.admin_port = static_cast<uint16_t>(n); })},
      {"--controller-token-file", [&](const std::string& v) { o.controller_token_file = v; return Status::Ok(); }},
      {"--push-public-key", [&](const std::string& v) {
         auto keys = crypto::ParsePublicKeys(v);
         if (!keys.ok()) return keys.status();
         o.push_public_keys.push_back(v);
         return Status::Ok();
       }},
      {"--push-max-skew-s",
       int_opt(1, 86400, [&](long long n) { o.push_max_skew = std::chrono::seconds(n); })},
      {"--pod-uid", [&](const std::string& v) { o.pod_uid = v; return Status::Ok(); }},
      {"--admin-max-body",
       int_opt(1024, 64 << 20, [&](long long n) { o.admin_max_body = static_cast<size_t>(n); })},
      {"--admin-max-connections",
       int_opt(1, 10000, [&](long long n) { o.admin_max_connections = static_cast<size_t>(n); })},
      {"--admin-request-timeout-ms", ms(&o.admin_request_timeout)},
      {"--health-port", int_opt(0, 65535, [&](long long n) { o.health_port = static_cast<uint16_t>(n); })},
      {"--health-address", [&](const std::string& v) { o.health_address = v; return Status::Ok(); }},
      {"--loop-stall-ms",
       int_opt(500, 3600000, [&](long long n) { o.loop_stall = std::chrono::milliseconds(n); })},
      {"--controller-url", [&](const std::string& v) {
         if (v.rfind("http://", 0) != 0 && v.rfind("https://", 0) != 0) {
           return Status::InvalidArgument("must start with http:// or https://: " + v);
         }
         o.controller_url = v;
         while (!o.controller_url.empty() && o.controller_url.back() == '/') o.controller_url.pop_back();
         return Status::Ok();
       }},
      {"--pod", [&](const std::string& v) { o.pod = v; return Status::Ok(); }},
      {"--connect-timeout-ms", ms(&o.tunables.connect_timeout)},
      {"--request-timeout-ms", ms(&o.tunables.request_timeout)},
      {"--failure-limit", int_opt(1, 1000, [&](long long n) { o.tunables.failure_limit = static_cast<int>(n); })},
      {"--probe-interval-ms", ms(&o.tunables.probe_interval)},
      {"--probe-backoff-cap-ms", ms(&o.tunables.probe_backoff_cap)},
      {"--connections-per-member",
       int_opt(1, 64, [&](long long n) { o.tunables.connections_per_member = static_cast<int>(n); })},
      {"--mirror-queue-limit",
       int_opt(1, 100000000, [&](long long n) { o.tunables.mirror_queue_limit = static_cast<size_t>(n); })},
      {"--replay-log-limit",
       int_opt(1, 100000000, [&](long long n) { o.tunables.replay_log_limit = static_cast<size_t>(n); })},
      {"--warmup-max-s",
       int_opt(0, 86400, [&](long long n) { o.tunables.warmup_max = std::chrono::seconds(n); })},
      {"--max-item-size",
       int_opt(1, 1 << 30, [&](long long n) { o.tunables.max_value = static_cast<size_t>(n); })},
      {"--log-level", [&](const std::string& v) {
         if (v != "debug" && v != "info" && v != "warn" && v != "error") {
           return Status::InvalidArgument("must be debug, info, warn or error");
         }
         o.log_level = v;
         return Status::Ok();
       }},
  };
  const std::map<std::string, std::string> short_names = {
      {"-p", "--port"}, {"-l", "--listen"}, {"-s", "--server"}, {"-b", "--backup"}, {"-c", "--config"}};

  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    std::string value;
    bool has_inline = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_inline = true;
    }
    if (auto it = short_names.find(arg); it != short_names.end()) arg = it->second;
    if (arg == "-h" || arg == "--help") { o.help = true; continue; }
    if (arg == "--version") { o.version = true; continue; }
    if (arg == "--no-warmup") { o.warmup = false; continue; }
    if (arg == "--no-admin") { o.admin_enabled = false; continue; }
    auto it = with_value.find(arg);
    if (it == with_value.end()) return Status::InvalidArgument("unknown option " + args[i]);
    if (!has_inline) {
      if (i + 1 >= args.size()) return Status::InvalidArgument(arg + " needs a value");
      value = args[++i];
    }
    if (Status s = it->second(value); !s.ok()) return Status::InvalidArgument(arg + " " + s.message());
  }
  if (o.help || o.version) return o;
  if (!o.config_file.empty() && (!o.primary.empty() || !o.backup.empty())) {
    return Status::InvalidArgument("--config and -s/-b are alternatives; give one");
  }
  if (o.primary.empty() && !o.backup.empty()) return Status::InvalidArgument("-b needs at least one -s");
  if (Status s = o.tunables.Validate(); !s.ok()) return s;
  if (o.pod_uid.empty()) {
    if (const char* uid = std::getenv("MEMHA_POD_UID"); uid != nullptr) o.pod_uid = uid;
  }
  if (!o.controller_url.empty() || !o.push_public_keys.empty()) {
    if (o.pod.empty()) {
      const char* ns = std::getenv("MEMHA_POD_NAMESPACE");
      const char* name = std::getenv("MEMHA_POD_NAME");
      if (ns && *ns && name && *name) o.pod = std::string(ns) + "/" + name;
    }
    size_t slash = o.pod.find('/');
    if (o.pod.empty() || slash == 0 || slash == std::string::npos || slash + 1 == o.pod.size() ||
        o.pod.find('/', slash + 1) != std::string::npos) {
      return Status::InvalidArgument(std::string(o.controller_url.empty() ? "--push-public-key" : "--controller-url") +
                                     " needs --pod NAMESPACE/NAME (or MEMHA_POD_NAMESPACE and MEMHA_POD_NAME in "
                                     "the environment)");
    }
    if (!o.controller_url.empty() && o.controller_token_file.empty()) {
      return Status::InvalidArgument("--controller-url needs --controller-token-file (the pod's ServiceAccount token)");
    }
  }
  if (o.primary.empty() && o.config_file.empty() && o.state_file.empty() && o.push_public_keys.empty() &&
      o.controller_url.empty()) {
    return Status::InvalidArgument("nothing to serve: give -s HOST:PORT, --config FILE, --push-public-key to "
                                   "receive pushes, or --controller-url");
  }
  return o;
}

Result<Topology> StaticTopology(const SidecarOptions& o) {
  Topology t;
  PoolSpec pool;
  pool.name = "static";
  std::string host = o.listen_address;  // "127.0.0.1", "::1" or "[::1]"
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  HostPort listen{host, o.port};
  auto parsed = ParseHostPort(listen.ToString());
  if (!parsed.ok()) return Status::InvalidArgument("-l: " + parsed.status().message());
  pool.listen = listen.ToString();
  if (!o.listen_unix.empty()) {
    if (Status s = ValidateUnixSocketPath(o.listen_unix); !s.ok()) {
      return Status::InvalidArgument("--listen-unix: " + s.message());
    }
  }
  pool.listen_unix = o.listen_unix;
  pool.write_policy = o.write_policy;
  pool.warmup = o.warmup;
  for (const auto& [flag, in, out] : {std::tuple{"-s", &o.primary, &pool.primary},
                                      std::tuple{"-b", &o.backup, &pool.backup}}) {
    for (const std::string& s : *in) {
      auto hp = ParseHostPort(s, 11211);
      if (!hp.ok()) return Status::InvalidArgument(std::string(flag) + ": " + hp.status().message());
      MemberSpec m;
      m.endpoint = hp.value();
      m.name = m.address = hp.value().ToString();  // static mode: members are named by host:port
      out->push_back(m);
    }
  }
  pool.listen_endpoint = parsed.value();
  t.pools.push_back(pool);
  if (Status s = ValidateTopology(t); !s.ok()) return s;
  return t;
}

}  // namespace memha
