#include "controller/kube/parse.h"

#include <gtest/gtest.h>

namespace memha::kube {
namespace {

using nlohmann::json;

const char* kPod = R"({
  "kind": "Pod", "apiVersion": "v1",
  "metadata": {"name": "cache-a-0", "namespace": "shop", "uid": "u-1", "resourceVersion": "123",
               "labels": {"app": "cache-a", "n": "1"}, "annotations": {"memha.io/pools": "cache-a"},
               "managedFields": [{"manager": "kubectl"}], "deletionTimestamp": "2024-01-01T00:00:00Z"},
  "spec": {"containers": [
    {"name": "memcached", "image": "memcached:1.6", "ports": [{"name": "memcache", "containerPort": 11211},
                                                             {"name": "udp", "containerPort": 11211, "protocol": "UDP"}]},
    {"name": "exporter", "ports": [{"containerPort": 9150, "protocol": "TCP"}]}]},
  "status": {"phase": "Running", "podIP": "10.1.2.3",
             "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}]}
})";

TEST(ParsePod, KeepsOnlyWhatTheControllerNeeds) {
  auto p = ParsePod(json::parse(kPod));
  ASSERT_TRUE(p.ok()) << p.status().message();
  const model::PodInfo& pod = p.value();
  EXPECT_EQ(pod.meta.Key(), "shop/cache-a-0");
  EXPECT_EQ(pod.meta.uid, "u-1");
  EXPECT_EQ(pod.meta.resource_version, "123");
  EXPECT_EQ(pod.meta.labels, (model::StringMap{{"app", "cache-a"}, {"n", "1"}}));
  EXPECT_EQ(pod.meta.annotations.at("memha.io/pools"), "cache-a");
  EXPECT_TRUE(pod.meta.deleting);
  EXPECT_EQ(pod.pod_ip, "10.1.2.3");
  EXPECT_EQ(pod.phase, "Running");
  EXPECT_TRUE(pod.ready);
  EXPECT_EQ(pod.ports, (std::vector<model::ContainerPort>{{"memcache", 11211}, {"", 9150}}));
  EXPECT_FALSE(pod.has_sidecar);
  EXPECT_FALSE(pod.has_socket_volume);
}

TEST(ParsePod, HasSocketVolumeWhenTheWebhookMountedIt) {
  json pod = json::parse(kPod);
  pod["spec"]["volumes"] = json::array({{{"name", "data"}}, {{"name", "memha-sockets"}, {"emptyDir", json::object()}}});
  EXPECT_TRUE(ParsePod(pod).value().has_socket_volume);
  pod["spec"]["volumes"] = json::array({{{"name", "memha-sockets-old"}}, {{"name", 7}}});
  EXPECT_FALSE(ParsePod(pod).value().has_socket_volume);
}

TEST(ParsePod, HasSidecarWhenAContainerOrInitContainerIsNamedMemhaSidecar) {
  json injected = json::parse(kPod);  // as the webhook injects it: a native sidecar
  injected["spec"]["initContainers"] = json::array(
      {{{"name", "migrate"}}, {{"name", "memha-sidecar"}, {"restartPolicy", "Always"}}});
  EXPECT_TRUE(ParsePod(injected).value().has_sidecar);
  json by_hand = json::parse(kPod);  // added to the pod's containers by hand
  by_hand["spec"]["containers"].push_back({{"name", "memha-sidecar"}});
  EXPECT_TRUE(ParsePod(by_hand).value().has_sidecar);
  json other = json::parse(kPod);
  other["spec"]["initContainers"] = json::array({{{"name", "memha-sidecar-old"}}, {{"name", 7}}});
  EXPECT_FALSE(ParsePod(other).value().has_sidecar);
}

TEST(ParsePod, NotReadyPendingAndMinimal) {
  json j = json::parse(kPod);
  j["status"]["conditions"][1]["status"] = "False";
  j["metadata"].erase("deletionTimestamp");
  auto p = ParsePod(j);
  EXPECT_FALSE(p.value().ready);
  EXPECT_FALSE(p.value().meta.deleting);
  auto minimal = ParsePod(json::parse(R"({"metadata":{"name":"x","namespace":"n"}})"));
  ASSERT_TRUE(minimal.ok());
  EXPECT_FALSE(minimal.value().ready);
  EXPECT_TRUE(minimal.value().pod_ip.empty());
  EXPECT_TRUE(minimal.value().ports.empty());
}

TEST(ParsePod, RejectsWhatIsNotAnObject) {
  EXPECT_FALSE(ParsePod(json::parse(R"({"metadata":{}})")).ok());
  EXPECT_FALSE(ParsePod(json::parse(R"([1])")).ok());
  EXPECT_FALSE(ParsePod(json::parse(R"({"metadata":{"name":5}})")).ok());
  // Wrong types in optional fields are ignored, not fatal.
  auto odd = ParsePod(json::parse(R"({"metadata":{"name":"x","labels":{"a":1,"b":"c"}},"status":{"conditions":7},
                                     "spec":{"containers":[{"ports":[{"containerPort":"80"}]}]}})"));
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ(odd.value().meta.labels, (model::StringMap{{"b", "c"}}));
}

TEST(ParseService, SelectorAndPortsWithNumericNamedAndDefaultTargetPorts) {
  auto s = ParseService(json::parse(R"({
    "metadata": {"name": "cache-a", "namespace": "shop", "uid": "s-1", "resourceVersion": "9",
                 "annotations": {"memha.io/backup-pool": "cache-b", "memha.io/write-policy": "sync"}},
    "spec": {"selector": {"app": "cache-a"}, "clusterIP": "10.96.0.10",
             "ports": [{"name": "mc", "port": 11211, "targetPort": 11211, "protocol": "TCP"},
                       {"name": "named", "port": 11212, "targetPort": "memcache"},
                       {"name": "stringnum", "port": 11213, "targetPort": "11300"},
                       {"name": "default", "port": 11214},
                       {"name": "udp", "port": 53, "protocol": "UDP"}]}})"));
  ASSERT_TRUE(s.ok()) << s.status().message();
  const model::ServiceInfo& svc = s.value();
  EXPECT_EQ(svc.meta.Key(), "shop/cache-a");
  EXPECT_EQ(svc.selector, (model::StringMap{{"app", "cache-a"}}));
  EXPECT_EQ(svc.meta.annotations.at("memha.io/write-policy"), "sync");
  ASSERT_EQ(svc.ports.size(), 4u);
  EXPECT_EQ(svc.ports[0].target_port, 11211);
  EXPECT_EQ(svc.ports[1].target_port, 0);
  EXPECT_EQ(svc.ports[1].target_port_name, "memcache");
  EXPECT_EQ(svc.ports[2].target_port, 11300);
  EXPECT_EQ(svc.ports[3].target_port, 11214);
}

TEST(ParseService, NoSelector) {
  auto s = ParseService(json::parse(R"({"metadata":{"name":"ext","namespace":"n"},"spec":{"type":"ExternalName"}})"));
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s.value().selector.empty());
  EXPECT_TRUE(s.value().ports.empty());
}

TEST(ParseListPage, EnvelopeAndErrors) {
  auto p = ParseListPage(R"({"kind":"PodList","metadata":{"resourceVersion":"77","continue":"abc"},"items":[{},{}]})");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.value().resource_version, "77");
  EXPECT_EQ(p.value().continue_token, "abc");
  EXPECT_EQ(p.value().items.size(), 2u);
  auto empty = ParseListPage(R"({"metadata":{"resourceVersion":"1"},"items":null})");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty.value().items.empty());
  EXPECT_FALSE(ParseListPage("not json").ok());
  EXPECT_FALSE(ParseListPage(R"({"items":{}})").ok());
}

TEST(ParseApiStatus, Gone) {
  ApiStatus s = ParseApiStatus(json::parse(R"({"kind":"Status","code":410,"reason":"Expired","message":"too old"})"));
  EXPECT_EQ(s.code, 410);
  EXPECT_EQ(s.reason, "Expired");
  EXPECT_EQ(s.message, "too old");
}

}  // namespace
}  // namespace memha::kube
