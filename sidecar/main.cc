// memha-sidecar: the data-plane proxy. See --help.
#include <signal.h>

#include <cstdio>
#include <iostream>

#include "common/crypto/push_signature.h"
#include "common/log.h"
#include "sidecar/admin/admin_metrics.h"
#include "sidecar/admin/admin_server.h"
#include "sidecar/admin/bootstrap.h"
#include "sidecar/admin/loop_heartbeat.h"
#include "sidecar/admin/topology_store.h"
#include "sidecar/config/options.h"
#include "sidecar/metrics/metrics.h"
#include "sidecar/proxy/proxy.h"

namespace {

int Fail(const std::string& why, int code) {
  std::fprintf(stderr, "memha-sidecar: %s\n", why.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace memha;
  signal(SIGPIPE, SIG_IGN);
  auto parsed = ParseSidecarOptions(std::vector<std::string>(argv + 1, argv + argc));
  if (!parsed.ok()) return Fail(parsed.status().message() + " (see --help)", 2);
  const SidecarOptions& opt = parsed.value();
  if (opt.help) {
    std::cout << SidecarUsage();
    return 0;
  }
  if (opt.version) {
    std::cout << "memha-sidecar " << MEMHA_VERSION << "\n";
    return 0;
  }
  log::Level level;
  log::ParseLevel(opt.log_level, &level);
  log::SetLevel(level);

  std::unique_ptr<crypto::PushVerifier> verifier;
  if (!opt.push_public_keys.empty()) {
    std::string all;
    for (const std::string& k : opt.push_public_keys) all += k + ",";
    auto keys = crypto::ParsePublicKeys(all);
    if (!keys.ok()) return Fail("--push-public-key: " + keys.status().message(), 2);
    verifier = std::make_unique<crypto::PushVerifier>(crypto::PushVerifier::Options{
        keys.value(), opt.pod, opt.pod_uid, std::chrono::duration_cast<std::chrono::milliseconds>(opt.push_max_skew),
        nullptr});
    MEMHA_LOG(kInfo, "admin", "pushes must be signed: keys=" << keys.value().size() << " pod=" << opt.pod
                                                              << " uid=" << (opt.pod_uid.empty() ? "-" : opt.pod_uid));
  }

  Metrics metrics;
  AdminMetrics admin_metrics;
  Proxy proxy(opt.tunables, &metrics);
  // Before the loop runs, on the thread that will run it: /healthz reads how long ago the loop last turned.
  LoopHeartbeat heartbeat(proxy.base(), [&admin_metrics](double lag) { admin_metrics.ObserveLoopLag(lag); });
  TopologyStore store(opt.state_file);
  auto apply_here = [&proxy](const Topology& t) { return proxy.ApplyTopology(t); };

  std::optional<Topology> initial;
  if (!opt.primary.empty()) {
    auto t = StaticTopology(opt);
    if (!t.ok()) return Fail(t.status().message(), 2);
    initial = t.value();
  } else if (!opt.config_file.empty()) {
    auto t = TopologyStore::Load(opt.config_file);
    if (!t.ok()) return Fail(t.status().message(), 2);
    initial = t.value();
  } else if (!opt.state_file.empty()) {
    auto t = TopologyStore::Load(opt.state_file);
    if (t.ok()) {
      initial = t.value();
      MEMHA_LOG(kInfo, "topology", "loaded last good topology from " << opt.state_file);
    } else if (t.status().code() != Status::Code::kNotFound) {
      MEMHA_LOG(kWarn, "topology", "ignoring state file: " << t.status().message());
    }
  }
  if (initial) {
    if (Status s = store.Offer(*initial, apply_here, /*force=*/true); !s.ok()) return Fail(s.message(), 1);
  }
  if (!opt.config_file.empty()) {
    proxy.SetReloadHook([&] {
      auto t = TopologyStore::Load(opt.config_file);
      if (!t.ok()) {
        MEMHA_LOG(kError, "topology", "reload failed, keeping the current topology: " << t.status().message());
        return;
      }
      if (Status s = store.Offer(t.value(), apply_here, /*force=*/true); !s.ok()) {
        MEMHA_LOG(kError, "topology", "reload failed, keeping the current topology: " << s.message());
      }
    });
  }

  std::unique_ptr<AdminServer> admin;
  if (opt.admin_enabled || opt.health_port) {
    AdminServer::Options ao;
    ao.admin.reset();
    if (opt.admin_enabled) ao.admin = AdminServer::Listen{opt.admin_address, opt.admin_port};
    if (opt.health_port) {
      ao.health = AdminServer::Listen{opt.health_address.empty() ? opt.admin_address : opt.health_address,
                                      *opt.health_port};
    }
    ao.verifier = verifier.get();
    ao.max_body = opt.admin_max_body;
    ao.loop_stall_limit = opt.loop_stall;
    ao.limits.max_connections = opt.admin_max_connections;
    ao.limits.request_timeout = opt.admin_request_timeout;
    admin = std::make_unique<AdminServer>(std::move(ao), &proxy, &metrics, &store, &heartbeat, &admin_metrics);
    if (Status s = admin->Start(); !s.ok()) return Fail(s.message(), 1);
  }
  std::unique_ptr<TopologyBootstrap> bootstrap;
  if (!opt.controller_url.empty()) {
    auto apply_on_loop = [&proxy](const Topology& t) { return proxy.PostTopology(t); };
    bootstrap = std::make_unique<TopologyBootstrap>(
        TopologyBootstrap::Options{opt.controller_url, opt.pod, opt.controller_token_file},
        [&store, apply_on_loop](const Topology& t) { return store.Offer(t, apply_on_loop); },
        [&store] { return store.Current().has_value(); });
    bootstrap->Start();
  }
  for (const auto& [pool, addr] : proxy.BoundListeners()) {
    MEMHA_LOG(kInfo, "proxy", "pool " << pool << " listening on " << addr);
  }
  for (const auto& [pool, path] : proxy.UnixListeners()) {
    MEMHA_LOG(kInfo, "proxy", "pool " << pool << " listening on unix socket " << path);
  }
  proxy.Run();
  if (bootstrap) bootstrap->Stop();
  if (admin) admin->Stop();
  MEMHA_LOG(kInfo, "proxy", "drained, exiting");
  return 0;
}
