// Against the REAL local kube-apiserver (CTest fixture k8s_cluster, label k8s; KUBECONFIG from the fixture):
// kubeconfig with client certificate + CA data, list/watch of Pods and Services into the Store, pod status
// patches, deletes, annotation changes, Events, and Lease acquire/renew/release/hand-over.
// Fails (does not skip) without KUBECONFIG.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <thread>

#include <nlohmann/json.hpp>

#include "controller/kube/config.h"
#include "controller/kube/events.h"
#include "controller/kube/http_api.h"
#include "controller/leader/lease.h"
#include "controller/watch/watcher.h"

namespace memha {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

bool WaitFor(const std::function<bool()>& cond, std::chrono::seconds limit = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return cond();
}

class RealApiServer : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* path = std::getenv("KUBECONFIG");
    ASSERT_TRUE(path != nullptr && *path != '\0') << "KUBECONFIG is not set: run under the k8s_cluster fixture";
    auto config = kube::LoadKubeconfigFile(path);
    ASSERT_TRUE(config.ok()) << config.status().message();
    config_ = config.value();
    api_ = Api();
    ns_ = "memha-kube-" + std::to_string(::getpid()) + "-" +
          std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 100000);
    Expect("POST", "/api/v1/namespaces", json{{"metadata", {{"name", ns_}}}}, 201);
  }
  void TearDown() override {
    if (api_ && !ns_.empty()) api_->Request("DELETE", "/api/v1/namespaces/" + ns_);
  }

  std::unique_ptr<kube::HttpKubeApi> Api() {
    auto api = kube::HttpKubeApi::Create(config_);
    EXPECT_TRUE(api.ok()) << api.status().message();
    return api.ok() ? std::move(api).value() : nullptr;
  }

  json Expect(const std::string& method, const std::string& path, const json& body, int status,
              std::string_view content_type = "application/json") {
    auto r = api_->Request(method, path, body.is_null() ? "" : body.dump(), content_type);
    EXPECT_TRUE(r.ok()) << method << " " << path << ": " << r.status().message();
    if (!r.ok()) return json();
    EXPECT_EQ(r.value().status, status) << method << " " << path << ": " << r.value().body;
    return json::parse(r.value().body, nullptr, false);
  }

  json Pod(const std::string& name) {
    return {{"metadata", {{"name", name}, {"labels", {{"app", "cache-a"}}}}},
            {"spec", {{"containers", {{{"name", "memcached"}, {"image", "memcached:1.6"},
                                       {"ports", {{{"name", "memcache"}, {"containerPort", 11211}}}}}}}}}};
  }

  kube::KubeConfig config_;
  std::unique_ptr<kube::HttpKubeApi> api_;
  std::string ns_;
};

TEST_F(RealApiServer, ListsAndWatchesPodsAndServicesIntoTheStore) {
  ASSERT_TRUE(api_);
  auto version = api_->Request("GET", "/version");
  ASSERT_TRUE(version.ok()) << version.status().message();
  EXPECT_EQ(version.value().status, 200);

  model::Store store;
  auto pods_api = Api();
  auto services_api = Api();
  auto pods = watch::NewPodWatcher(*pods_api, store);
  auto services = watch::NewServiceWatcher(*services_api, store);
  std::thread pods_thread([&] { pods->Run(); });
  std::thread services_thread([&] { services->Run(); });
  ASSERT_TRUE(WaitFor([&] { return store.Synced(); }));

  const std::string api_ns = "/api/v1/namespaces/" + ns_;
  Expect("POST", api_ns + "/services",
         {{"metadata", {{"name", "cache-a"}, {"annotations", {{"memha.io/backup-pool", "cache-b"}}}}},
          {"spec", {{"selector", {{"app", "cache-a"}}},
                    {"ports", {{{"name", "mc"}, {"port", 11211}, {"targetPort", "memcache"}}}}}}},
         201);
  Expect("POST", api_ns + "/pods", Pod("cache-a-0"), 201);
  Expect("POST", api_ns + "/pods", Pod("cache-a-1"), 201);
  auto has = [&](const std::function<bool(const model::StoreView&)>& pred) {
    bool ok = false;
    store.Read([&](const model::StoreView& v) { ok = pred(v); });
    return ok;
  };
  ASSERT_TRUE(WaitFor([&] {
    return has([&](const model::StoreView& v) {
      return v.services.count(ns_ + "/cache-a") && v.pods.count(ns_ + "/cache-a-0") && v.pods.count(ns_ + "/cache-a-1");
    });
  }));
  store.Read([&](const model::StoreView& v) {
    const auto& svc = v.services.at(ns_ + "/cache-a");
    EXPECT_EQ(svc.meta.annotations.at("memha.io/backup-pool"), "cache-b");
    ASSERT_EQ(svc.ports.size(), 1u);
    EXPECT_EQ(svc.ports[0].target_port_name, "memcache");
    const auto& pod = v.pods.at(ns_ + "/cache-a-0");
    EXPECT_FALSE(pod.ready);
    EXPECT_EQ(pod.ports, (std::vector<model::ContainerPort>{{"memcache", 11211}}));
  });

  // Ready with an IP (what a kubelet would report), through the status subresource.
  json status = {{"status", {{"phase", "Running"}, {"podIP", "127.0.0.5"}, {"podIPs", {{{"ip", "127.0.0.5"}}}},
                             {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}};
  Expect("PATCH", api_ns + "/pods/cache-a-0/status", status, 200, "application/merge-patch+json");
  ASSERT_TRUE(WaitFor([&] {
    return has([&](const model::StoreView& v) {
      auto it = v.pods.find(ns_ + "/cache-a-0");
      return it != v.pods.end() && it->second.ready && it->second.pod_ip == "127.0.0.5";
    });
  }));

  Expect("PATCH", api_ns + "/services/cache-a", {{"metadata", {{"annotations", {{"memha.io/write-policy", "sync"}}}}}},
         200, "application/merge-patch+json");
  ASSERT_TRUE(WaitFor([&] {
    return has([&](const model::StoreView& v) {
      auto it = v.services.find(ns_ + "/cache-a");
      return it != v.services.end() && it->second.meta.annotations.count("memha.io/write-policy");
    });
  }));

  Expect("DELETE", api_ns + "/pods/cache-a-1", json(), 200);
  ASSERT_TRUE(WaitFor([&] { return has([&](const model::StoreView& v) { return !v.pods.count(ns_ + "/cache-a-1"); }); }));

  EXPECT_GE(pods->counters().events.load(), 3u);
  EXPECT_GE(services->counters().events.load(), 2u);
  EXPECT_EQ(pods->counters().lists.load(), 1u);
  pods->Stop();
  services->Stop();
  pods_thread.join();
  services_thread.join();
}

TEST_F(RealApiServer, RecordsAndDeduplicatesEvents) {
  ASSERT_TRUE(api_);
  kube::ObjectRef ref{"Service", ns_, "cache-a", "00000000-0000-0000-0000-000000000001"};
  kube::EventRecorder recorder(*api_, "memha-controller", "test");
  ASSERT_TRUE(recorder.Record(ref, kube::EventType::kWarning, "BadAnnotation", "unknown policy").ok());
  ASSERT_TRUE(recorder.Record(ref, kube::EventType::kWarning, "BadAnnotation", "unknown policy").ok());
  json list = Expect("GET", "/api/v1/namespaces/" + ns_ + "/events", json(), 200);
  ASSERT_EQ(list["items"].size(), 1u) << list.dump();
  const json& ev = list["items"][0];
  EXPECT_EQ(ev["reason"], "BadAnnotation");
  EXPECT_EQ(ev["type"], "Warning");
  EXPECT_EQ(ev["count"], 2);
  EXPECT_EQ(ev["involvedObject"]["name"], "cache-a");
}

TEST_F(RealApiServer, LeaseAcquireRenewReleaseAndHandOver) {
  ASSERT_TRUE(api_);
  auto options = [&](const std::string& id) {
    leader::LeaseOptions o;
    o.ns = ns_;
    o.identity = id;
    return o;
  };
  std::vector<uint64_t> started;
  leader::LeaderElector a(*api_, options("a"), {.on_started_leading = [&](uint64_t e) { started.push_back(e); }});
  leader::LeaderElector b(*api_, options("b"), {.on_started_leading = [&](uint64_t e) { started.push_back(e); }});
  a.Tick();
  ASSERT_TRUE(a.IsLeader());
  b.Tick();
  EXPECT_FALSE(b.IsLeader());
  a.Tick();  // renew
  EXPECT_TRUE(a.IsLeader());
  const std::string path = "/apis/coordination.k8s.io/v1/namespaces/" + ns_ + "/leases/memha-controller";
  json lease = Expect("GET", path, json(), 200);
  EXPECT_EQ(lease["spec"]["holderIdentity"], "a");
  EXPECT_EQ(lease["spec"]["leaseDurationSeconds"], 15);
  ASSERT_TRUE(a.Release().ok());
  lease = Expect("GET", path, json(), 200);
  EXPECT_FALSE(lease["spec"].contains("holderIdentity"));
  b.Tick();
  EXPECT_TRUE(b.IsLeader());
  EXPECT_GT(b.Epoch(), a.Epoch());
  EXPECT_EQ(started, (std::vector<uint64_t>{1, 2}));
  ASSERT_TRUE(b.Release().ok());
}

}  // namespace
}  // namespace memha
