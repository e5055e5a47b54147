// The webhook (inject or not) and the topology computation (serve or not) must agree on every memha.io/pools
// value: a pod the webhook injects but the controller rejects waits in Init for a topology that never comes; one
// the controller would serve but the webhook refuses runs without its cache. One table, both real paths.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "controller/topology/desired.h"
#include "controller/webhook/admission.h"

namespace memha {
namespace {

using nlohmann::json;

constexpr int kAdminPort = 11299;

struct Verdict {
  bool accepted = false;
  std::string message;  // why not, as the user reads it (webhook warning / controller Event)
};

Verdict Webhook(const std::string& pools) {
  json review = {
      {"apiVersion", "admission.k8s.io/v1"},
      {"kind", "AdmissionReview"},
      {"request",
       {{"uid", "u1"},
        {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
        {"operation", "CREATE"},
        {"namespace", "shop"},
        {"name", "web-0"},
        {"object",
         {{"metadata", {{"name", "web-0"}, {"namespace", "shop"}, {"labels", {{"memha.io/inject", "true"}}},
                        {"annotations", {{"memha.io/pools", pools}}}}},
          {"spec", {{"containers", json::array({{{"name", "app"}, {"image", "app:1"}}})}}}}}}}};
  webhook::InjectConfig config;
  config.image = "memha:test";
  config.controller_url = "http://memha-controller.memha-system.svc:8080";
  config.admin_port = kAdminPort;
  webhook::AdmissionResult r = webhook::ReviewPod(review.dump(), config);
  EXPECT_TRUE(r.decision == webhook::Decision::kInjected || r.decision == webhook::Decision::kBadPools)
      << pools << " -> " << webhook::DecisionName(r.decision) << ": " << r.reason;
  return {r.decision == webhook::Decision::kInjected, r.reason};
}

Verdict Controller(const std::string& pools) {
  std::map<std::string, model::PodInfo> pods;
  std::map<std::string, model::ServiceInfo> services;
  model::PodInfo app;
  app.meta.ns = "shop";
  app.meta.name = "web-0";
  app.meta.annotations = {{"memha.io/pools", pools}};
  app.pod_ip = "10.0.0.1";
  app.phase = "Running";
  app.ready = true;
  pods[app.meta.Key()] = app;
  topology::Options options;
  options.sidecar_admin_port = kAdminPort;
  auto result = topology::ComputeTopologies(model::StoreView{pods, services}, options, 1, topology::State{}, {});
  for (const topology::TopologyError& e : result.errors) {
    // Unknown Services are expected here (the store has none); only the annotation's own verdict counts.
    if (e.reason == topology::ErrorReason::kBadPoolsAnnotation || e.reason == topology::ErrorReason::kDuplicateLocalPort) {
      return {false, e.message};
    }
  }
  return {true, ""};
}

TEST(PoolsAnnotationAgreement, WebhookAndControllerDecideAlikeWithTheSameReason) {
  const std::vector<std::string> table = {
      // accepted
      "cache-a", " cache-a ", "cache-a\n", "cache-a:11211,sessions:11212", "cache-a, sessions:11212",
      "other-ns/cache-a", "other-ns/cache-a:20000", "cache-a : 11300", "0ns/cache-a", "a", "cache-a:11297",
      "cache-a:65535", std::string(63, 'a'),
      // rejected: syntax
      "", "   ", "cache-a,", ",cache-a", "cache-a,,sessions:1", "cache-a:", "cache-a:0", "cache-a:65536",
      "cache-a:99999", "cache-a:12x", "cache-a:-1", "cache-a:+1", "cache-a:http", "Cache-A", "1cache", "cache_a",
      "cache-a-", "-cache", "/cache-a", "ns/", "a/b/c", "NS/cache", "cache-a:1:2", std::string(64, 'a'),
      // rejected: the sidecar's admin and health ports
      "cache-a:11299", "sessions:1,cache-a:11299", "cache-a:11298",
      // rejected: conflicts
      "cache-a,sessions", "cache-a,sessions:11211", "cache-a:11300,sessions:11300", "cache-a:1,shop/cache-a:2",
      "cache-a:11300,cache-a:11301", "cache-a,cache-a",
  };
  int accepted = 0;
  for (const std::string& pools : table) {
    const Verdict hook = Webhook(pools);
    const Verdict ctl = Controller(pools);
    EXPECT_EQ(hook.accepted, ctl.accepted) << "\"" << pools << "\" webhook: " << hook.message
                                           << " | controller: " << ctl.message;
    if (!hook.accepted && !ctl.accepted) {
      // Same parser message: "memha.io/pools: <why>" in both, then each path's own consequence.
      const std::string why = ctl.message;
      EXPECT_NE(hook.message.find(why), std::string::npos) << "webhook: " << hook.message << " | controller: " << why;
      EXPECT_TRUE(why.starts_with("memha.io/pools: ")) << why;
    }
    accepted += hook.accepted ? 1 : 0;
  }
  EXPECT_EQ(accepted, 13);  // the table above has both kinds: a test that accepts nothing proves little
}

}  // namespace
}  // namespace memha
