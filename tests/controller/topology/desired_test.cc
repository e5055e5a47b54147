#include "controller/topology/desired.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace memha::topology {
namespace {

using model::PodInfo;
using model::ServiceInfo;
using namespace std::chrono_literals;

PodInfo MemcachedPod(std::string ns, std::string name, std::string ip, std::string app = "cache-a") {
  PodInfo p;
  p.meta.ns = std::move(ns);
  p.meta.name = std::move(name);
  p.meta.labels = {{"app", std::move(app)}};
  p.pod_ip = std::move(ip);
  p.phase = "Running";
  p.ready = true;
  p.ports = {{"memcache", 11211}};
  return p;
}

PodInfo AppPod(std::string ns, std::string name, std::string ip, std::string pools) {
  PodInfo p;
  p.meta.ns = std::move(ns);
  p.meta.name = std::move(name);
  p.meta.labels = {{"app", "web"}};
  p.meta.annotations = {{"memha.io/pools", std::move(pools)}};
  p.pod_ip = std::move(ip);
  p.phase = "Running";
  p.ready = true;
  return p;
}

ServiceInfo PoolService(std::string ns, std::string name, std::string app = "") {
  ServiceInfo s;
  s.meta.ns = std::move(ns);
  s.meta.name = name;
  s.selector = {{"app", app.empty() ? name : app}};
  s.ports = {{"memcache", 11211, 11211, ""}};
  return s;
}

// A store-like fixture: objects by key, recomputed against the previous state like the reconcile loop does.
class DesiredTest : public ::testing::Test {
 protected:
  void Add(PodInfo p) { pods_[p.meta.Key()] = std::move(p); }
  void Add(ServiceInfo s) { services_[s.meta.Key()] = std::move(s); }
  PodInfo& Pod(const std::string& key) { return pods_.at(key); }
  ServiceInfo& Service(const std::string& key) { return services_.at(key); }

  const ComputeResult& Compute(uint64_t epoch = 3) {
    model::StoreView view{pods_, services_};
    last_ = ComputeTopologies(view, options_, epoch, state_, now_);
    state_ = last_.state;
    return last_;
  }
  const Topology* For(const std::string& pod) {
    auto it = state_.sidecars.find(pod);
    return it == state_.sidecars.end() ? nullptr : it->second.topology.get();
  }
  bool HasError(const std::string& object, ErrorReason reason) {
    return std::any_of(last_.errors.begin(), last_.errors.end(),
                       [&](const TopologyError& e) { return e.object == object && e.reason == reason; });
  }

  std::map<std::string, PodInfo> pods_;
  std::map<std::string, ServiceInfo> services_;
  Options options_;
  State state_{.version = 1000};
  ComputeResult last_;
  Clock::time_point now_ = Clock::time_point{} + 1h;
};

std::vector<std::string> Names(const std::vector<MemberSpec>& members) {
  std::vector<std::string> out;
  for (const auto& m : members) out.push_back(m.name + "@" + m.address + "=" + std::string(ToString(m.state)));
  return out;
}

TEST_F(DesiredTest, OnePoolFromTheSameNamespace) {
  Add(PoolService("shop", "cache-a"));
  Add(MemcachedPod("shop", "cache-a-1", "10.0.0.2"));
  Add(MemcachedPod("shop", "cache-a-0", "10.0.0.1"));
  Add(MemcachedPod("other", "cache-a-9", "10.0.9.9"));  // same labels, other namespace: not a member
  Add(AppPod("shop", "web-1", "10.1.0.1", "cache-a"));
  const auto& r = Compute();
  EXPECT_TRUE(r.errors.empty());
  ASSERT_EQ(r.state.sidecars.size(), 1u);
  const SidecarTopology& s = r.state.sidecars.at("shop/web-1");
  EXPECT_EQ(s.admin_address, "10.1.0.1:11299");
  const Topology& t = *s.topology;
  EXPECT_EQ(t.epoch, 3u);
  EXPECT_EQ(t.version, 1001u);
  ASSERT_EQ(t.pools.size(), 1u);
  EXPECT_EQ(t.pools[0].name, "shop/cache-a");
  EXPECT_EQ(t.pools[0].listen, "127.0.0.1:11211");
  EXPECT_EQ(t.pools[0].write_policy, WritePolicy::kAsync);
  EXPECT_TRUE(t.pools[0].warmup);
  EXPECT_EQ(Names(t.pools[0].primary),
            (std::vector<std::string>{"cache-a-0@10.0.0.1:11211=up", "cache-a-1@10.0.0.2:11211=up"}));
  EXPECT_TRUE(t.pools[0].backup.empty());
  // What is pushed is what the sidecar accepts.
  auto parsed = ParseTopology(TopologyToJson(t));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed.value().pools, t.pools);
}

TEST_F(DesiredTest, ServiceAnnotationsBackupPolicyWarmupAndOtherNamespace) {
  Add(PoolService("infra", "cache-a"));
  Add(PoolService("infra", "cache-b"));
  Service("infra/cache-a").meta.annotations = {{"memha.io/backup-pool", "cache-b"},
                                               {"memha.io/write-policy", "sync"},
                                               {"memha.io/warmup", "off"},
                                               {"memha.io/allow-from", "shop"}};
  Add(MemcachedPod("infra", "cache-a-0", "10.0.0.1"));
  Add(MemcachedPod("infra", "cache-b-0", "10.0.1.1", "cache-b"));
  Add(PoolService("shop", "sessions"));
  Add(MemcachedPod("shop", "sessions-0", "10.0.2.1", "sessions"));
  Add(AppPod("shop", "web-1", "10.1.0.1", "infra/cache-a, sessions:11212"));
  Compute();
  EXPECT_TRUE(last_.errors.empty());
  const Topology* t = For("shop/web-1");
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->pools.size(), 2u);
  EXPECT_EQ(t->pools[0].name, "infra/cache-a");
  EXPECT_EQ(t->pools[0].write_policy, WritePolicy::kSync);
  EXPECT_FALSE(t->pools[0].warmup);
  EXPECT_EQ(Names(t->pools[0].backup), (std::vector<std::string>{"cache-b-0@10.0.1.1:11211=up"}));
  EXPECT_EQ(t->pools[1].name, "shop/sessions");
  EXPECT_EQ(t->pools[1].listen, "127.0.0.1:11212");

  // Removing the backup annotation removes the backup, in a new version.
  uint64_t v = t->version;
  Service("infra/cache-a").meta.annotations.erase("memha.io/backup-pool");
  Compute();
  EXPECT_TRUE(For("shop/web-1")->pools[0].backup.empty());
  EXPECT_GT(For("shop/web-1")->version, v);
}

TEST_F(DesiredTest, PoolInAnotherNamespaceNeedsItsConsent) {
  // Issue 12: any pod could name victim/cache and get its members' addresses (and write to them).
  Add(PoolService("victim", "cache"));
  Add(MemcachedPod("victim", "cache-0", "10.0.0.1", "cache"));
  Add(PoolService("shop", "local"));
  Add(MemcachedPod("shop", "local-0", "10.0.2.1", "local"));
  Add(AppPod("shop", "web-1", "10.1.0.1", "victim/cache"));
  Compute();
  EXPECT_TRUE(HasError("shop/web-1", ErrorReason::kPoolNotAllowed));
  EXPECT_EQ(For("shop/web-1"), nullptr);
  for (const TopologyError& e : last_.errors) EXPECT_EQ(e.message.find("10.0.0.1"), std::string::npos) << e.message;

  for (const char* consent : {"other", "other, shop", "*"}) {
    Service("victim/cache").meta.annotations["memha.io/allow-from"] = consent;
    Compute();
    bool allowed = std::string(consent) != "other";
    EXPECT_EQ(HasError("shop/web-1", ErrorReason::kPoolNotAllowed), !allowed) << consent;
    ASSERT_EQ(For("shop/web-1") != nullptr, allowed) << consent;
    if (allowed) {
      EXPECT_EQ(Names(For("shop/web-1")->pools[0].primary), (std::vector<std::string>{"cache-0@10.0.0.1:11211=up"}));
    }
  }
  // A backup pool in another namespace needs the same consent, else the pool is served without it.
  Service("shop/local").meta.annotations["memha.io/backup-pool"] = "victim/cache";
  Service("victim/cache").meta.annotations["memha.io/allow-from"] = "elsewhere";
  Add(AppPod("shop", "web-2", "10.1.0.2", "local"));
  Compute();
  EXPECT_TRUE(HasError("shop/local", ErrorReason::kPoolNotAllowed));
  ASSERT_NE(For("shop/web-2"), nullptr);
  EXPECT_TRUE(For("shop/web-2")->pools[0].backup.empty());
  Service("victim/cache").meta.annotations["memha.io/allow-from"] = "shop";
  Compute();
  EXPECT_EQ(Names(For("shop/web-2")->pools[0].backup), (std::vector<std::string>{"cache-0@10.0.0.1:11211=up"}));
}

TEST_F(DesiredTest, SocketAnnotationServesEachPoolOnAUnixSocket) {
  Add(PoolService("shop", "cache-a"));
  Add(MemcachedPod("shop", "cache-a-0", "10.0.0.1"));
  Add(PoolService("other", "cache-a", "cache-a"));
  Add(MemcachedPod("other", "cache-a-0", "10.0.9.1"));
  Service("other/cache-a").meta.annotations["memha.io/allow-from"] = "shop";
  Add(AppPod("shop", "web-1", "10.1.0.1", "cache-a:11211,other/cache-a:11212"));
  Compute();
  const Topology* t = For("shop/web-1");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->pools[0].listen_unix, "");  // off unless asked for
  const uint64_t before = t->version;
  Pod("shop/web-1").meta.annotations["memha.io/socket"] = "on";
  Compute();  // annotated after its creation: no socket volume, so its sidecar could not bind one
  EXPECT_EQ(For("shop/web-1")->pools[0].listen_unix, "");
  Pod("shop/web-1").has_socket_volume = true;  // as the webhook injects it
  Compute();
  t = For("shop/web-1");
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->pools.size(), 2u);
  // Same name in two namespaces: the other namespace's pool is named with its namespace.
  EXPECT_EQ(t->pools[0].listen_unix, "/var/run/memha/sockets/cache-a.sock");
  EXPECT_EQ(t->pools[1].listen_unix, "/var/run/memha/sockets/other.cache-a.sock");
  EXPECT_GT(t->version, before);  // a new topology, not the previous one reused
  auto parsed = ParseTopology(TopologyToJson(*t));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed.value().pools, t->pools);
  // A bad value follows the pod's volumes (mounted, or not, when it was created) and says why.
  Pod("shop/web-1").meta.annotations["memha.io/socket"] = "yes";
  Compute();
  EXPECT_TRUE(HasError("shop/web-1", ErrorReason::kBadSocket));
  EXPECT_EQ(For("shop/web-1")->pools[0].listen_unix, "/var/run/memha/sockets/cache-a.sock");
  Pod("shop/web-1").meta.annotations["memha.io/socket"] = "off";
  Compute();
  EXPECT_FALSE(HasError("shop/web-1", ErrorReason::kBadSocket));
  EXPECT_EQ(For("shop/web-1")->pools[0].listen_unix, "");
}

struct StateCase {
  const char* what;
  std::string phase;
  bool ready;
  std::string ip;
  bool deleting;
  std::string want;  // "" = not on the ring
};

class MemberStates : public DesiredTest, public ::testing::WithParamInterface<StateCase> {};

TEST_P(MemberStates, PodStatusBecomesMemberState) {
  const StateCase& c = GetParam();
  Add(PoolService("shop", "cache-a"));
  Add(MemcachedPod("shop", "cache-a-0", "10.0.0.1"));
  PodInfo p = MemcachedPod("shop", "cache-a-1", c.ip);
  p.phase = c.phase;
  p.ready = c.ready;
  p.meta.deleting = c.deleting;
  Add(p);
  Add(AppPod("shop", "web-1", "10.1.0.1", "cache-a"));
  Compute();
  const Topology* t = For("shop/web-1");
  ASSERT_NE(t, nullptr);
  auto names = Names(t->pools[0].primary);
  if (c.want.empty()) {
    EXPECT_EQ(names.size(), 1u) << c.what;
  } else {
    ASSERT_EQ(names.size(), 2u) << c.what;
    EXPECT_EQ(names[1], c.want) << c.what;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, MemberStates,
    ::testing::Values(StateCase{"ready", "Running", true, "10.0.0.2", false, "cache-a-1@10.0.0.2:11211=up"},
                      StateCase{"not ready", "Running", false, "10.0.0.2", false, "cache-a-1@10.0.0.2:11211=down"},
                      StateCase{"failed", "Failed", false, "10.0.0.2", false, "cache-a-1@10.0.0.2:11211=down"},
                      StateCase{"ready but not running", "Pending", true, "10.0.0.2", false,
                                "cache-a-1@10.0.0.2:11211=down"},
                      StateCase{"terminating", "Running", true, "10.0.0.2", true,
                                "cache-a-1@10.0.0.2:11211=terminating"},
                      StateCase{"no IP, never addressed", "Pending", false, "", false, ""},
                      StateCase{"v6", "Running", true, "fd00::2", false, "cache-a-1@[fd00::2]:11211=up"}));

TEST_F(DesiredTest, MemcachedPortSelectionAndNamedTargetPort) {
  ServiceInfo svc = PoolService("shop", "cache-a");
  svc.ports = {{"metrics", 9150, 9150, ""}, {"memcached", 11211, 0, "mc"}};
  Add(svc);
  PodInfo a = MemcachedPod("shop", "cache-a-0", "10.0.0.1");
  a.ports = {{"mc", 21211}, {"metrics", 9150}};
  Add(a);
  PodInfo b = MemcachedPod("shop", "cache-a-1", "10.0.0.2");
  b.ports = {{"metrics", 9150}};  // the named port is not declared: cannot be addressed
  Add(b);
  Add(AppPod("shop", "web-1", "10.1.0.1", "cache-a"));
  Compute();
  EXPECT_EQ(Names(For("shop/web-1")->pools[0].primary), (std::vector<std::string>{"cache-a-0@10.0.0.1:21211=up"}));

  // No port named memcache(d): the first one; targetPort absent: the Service port.
  Service("shop/cache-a").ports = {{"a", 11300, 0, ""}, {"b", 9150, 9150, ""}};
  Compute();
  EXPECT_EQ(Names(For("shop/web-1")->pools[0].primary),
            (std::vector<std::string>{"cache-a-0@10.0.0.1:11300=up", "cache-a-1@10.0.0.2:11300=up"}));
}

TEST_F(DesiredTest, VersionStableWithoutChangeAndGrowsOnChange) {
  Add(PoolService("shop", "cache-a"));
  Add(PoolService("shop", "cache-b"));
  Add(MemcachedPod("shop", "cache-a-0", "10.0.0.1"));
  Add(MemcachedPod("shop", "cache-b-0", "10.0.1.1", "cache-b"));
  Add(AppPod("shop", "web-1", "10.1.0.1", "cache-a"));
  Add(AppPod("shop", "web-2", "10.1.0.2", "cache-b"));
  Compute();
  auto t1 = state_.sidecars.at("shop/web-1").topology;
  auto t2 = state_.sidecars.at("shop/web-2").topology;
  EXPECT_EQ(t1->version, 1001u);
  EXPECT_EQ(t2->version, 1001u);

  Compute();  // nothing changed
  EXPECT_EQ(state_.sidecars.at("shop/web-1").topology->version, 1001u);
  EXPECT_EQ(state_.version, 1001u);

  Pod("shop/cache-a-0").ready = false;  // only web-1 is affected
  Compute();
  EXPECT_EQ(state_.sidecars.at("shop/web-2").topology, t2);  // not rebuilt: the very same object
  EXPECT_EQ(state_.pools.at("shop/cache-b"), state_.sidecars.at("shop/web-2").bases.at(0));
  EXPECT_EQ(For("shop/web-1")->version, 1002u);
  EXPECT_EQ(For("shop/web-1")->pools[0].primary[0].state, MemberState::kDown);
  EXPECT_EQ(For("shop/web-2")->version, 1001u);

  Compute(4);  // a new leader epoch re-stamps every pod
  EXPECT_EQ(For("shop/web-1")->epoch, 4u);
  EXPECT_EQ(For("shop/web-2")->epoch, 4u);
  EXPECT_TRUE(For("shop/web-2")->NewerThan(*t2));
}

TEST_F(DesiredTest, BadPoolsAnnotationKeepsTheLastGoodPoolsAndFollowsMembers) {
  Add(PoolService("shop", "cache-a"));
  Add(MemcachedPod("shop", "cache-a-0", "10.0.0.1"));
  Add(AppPod("shop", "web-1", "10.1.0.1", "cache-a"));
  Add(AppPod("shop", "web-2", "10.1.0.2", "cache-a:x"));  // never good
  Compute();
  EXPECT_TRUE(HasError("shop/web-2", ErrorReason::kBadPoolsAnnotation));
  EXPECT_EQ(For("shop/web-2"), nullptr);
  ASSERT_NE(For("shop/web-1"), nullptr);

  Pod("shop/web-1").meta.annotations["memha.io/pools"] = "cache-a,other";
  Compute();
  EXPECT_TRUE(HasError("shop/web-1", ErrorReason::kDuplicateLocalPort));
  ASSERT_NE(For("shop/web-1"), nullptr);
  EXPECT_EQ(For("shop/web-1")->version, 1001u);  // unchanged content, same generation
  EXPECT_TRUE(state_.sidecars.at("shop/web-1").stale);

  Pod("shop/cache-a-0").ready = false;  // members still follow the last good pools
  Compute();
  EXPECT_EQ(For("shop/web-1")->pools[0].primary[0].state, MemberState::kDown);

  Pod("shop/web-1").meta.annotations["memha.io/pools"] = "cache-a";  // fixed: only web-2's error is left
  Compute();
  ASSERT_EQ(last_.errors.size(), 1u);
  EXPECT_EQ(last_.errors[0].object, "shop/web-2");
  EXPECT_FALSE(state_.sidecars.at("shop/web-1").stale);
}

TEST_F(DesiredTest, UnknownOrEmptyPoolKeepsTheLastGoodTopology) {
  Add(PoolService("shop", "cache-a"));
  Add(MemcachedPod("shop", "cache-a-0", "10.0.0.1"));
  Add(AppPod("shop", "web-1", "10.1.0.1", "cache-a"));
  Compute();
  auto good = state_.sidecars.at("shop/web-1").topology;

  Pod("shop/web-1").meta.annotations["memha.io/pools"] = "cache-a,nosuch:11300";
  Compute();
  EXPECT_TRUE(HasError("shop/web-1", ErrorReason::kUnknownPool));
  EXPECT_EQ(state_.sidecars.at("shop/web-1").topology, good);

  Add(PoolService("shop", "nosuch"));  // exists now but selects nothing
  Compute();
  EXPECT_TRUE(HasError("shop/web-1", ErrorReason::kEmptyPool));
  EXPECT_EQ(state_.sidecars.at("shop/web-1").topology, good);

  Add(MemcachedPod("shop", "nosuch-0", "10.0.3.1", "nosuch"));
  Compute();
  EXPECT_TRUE(last_.errors.empty());
  EXPECT_EQ(For("shop/web-1")->pools.size(), 2u);
  EXPECT_GT(For("shop/web-1")->version, good->version);
}

TEST_F(DesiredTest, BadServiceAnnotationsKeepTheLastGoodValue) {
  Add(PoolService("shop", "cache-a"));
  Add(PoolService("shop", "cache-b"));
  Service("shop/cache-a").meta.annotations = {{"memha.io/write-policy", "sync"}, {"memha.io/backup-pool", "cache-b"}};
  Add(MemcachedPod("shop", "cache-a-0", "10.0.0.1"));
  Add(MemcachedPod("shop", "cache-b-0", "10.0.1.1", "cache-b"));
  Add(AppPod("shop", "web-1", "10.1.0.1", "cache-a"));
  Compute();
  EXPECT_EQ(For("shop/web-1")->pools[0].write_policy, WritePolicy::kSync);

  Service("shop/cache-a").meta.annotations = {
      {"memha.io/write-policy", "fast"}, {"memha.io/warmup", "maybe"}, {"memha.io/backup-pool", "Cache_B"}};
  Compute();
  EXPECT_TRUE(HasError("shop/cache-a", ErrorReason::kBadWritePolicy));
  EXPECT_TRUE(HasError("shop/cache-a", ErrorReason::kBadWarmup));
  EXPECT_TRUE(HasError("shop/cache-a", ErrorReason::kBadBackupPool));
  ASSERT_EQ(last_.errors.size(), 3u);
  EXPECT_EQ(last_.errors[0].kind, "Service");
  EXPECT_EQ(For("shop/web-1")->pools[0].write_policy, WritePolicy::kSync);
  EXPECT_TRUE(For("shop/web-1")->pools[0].warmup);
  EXPECT_EQ(For("shop/web-1")->pools[0].backup.size(), 1u);

  Service("shop/cache-a").meta.annotations = {{"memha.io/backup-pool", "cache-a"}};  // itself
  Compute();
  EXPECT_TRUE(HasError("shop/cache-a", ErrorReason::kBadBackupPool));
  EXPECT_EQ(For("shop/web-1")->pools[0].write_policy, WritePolicy::kAsync);  // annotation removed: default

  Service("shop/cache-a").meta.annotations = {{"memha.io/backup-pool", "gone"}};
  Compute();
  EXPECT_TRUE(HasError("shop/cache-a", ErrorReason::kUnknownBackupPool));
  EXPECT_TRUE(For("shop/web-1")->pools[0].backup.empty());
}

TEST_F(DesiredTest, NeverGoodServiceAnnotationUsesTheDefault) {
  Add(PoolService("shop", "cache-a"));
  Service("shop/cache-a").meta.annotations = {{"memha.io/write-policy", "fast"}};
  Add(MemcachedPod("shop", "cache-a-0", "10.0.0.1"));
  Add(AppPod("shop", "web-1", "10.1.0.1", "cache-a"));
  Add(AppPod("shop", "web-2", "10.1.0.2", "cache-a"));
  Compute();
  EXPECT_EQ(For("shop/web-1")->pools[0].write_policy, WritePolicy::kAsync);
  ASSERT_EQ(last_.errors.size(), 1u);  // one error per object, however many pods use it
  EXPECT_EQ(last_.errors[0].object, "shop/cache-a");
  EXPECT_EQ(ToString(last_.errors[0].reason), "BadWritePolicy");
}

TEST_F(DesiredTest, MemberWithoutIpKeepsItsNameDownAtTheLastAddress) {
  Add(PoolService("shop", "cache-a"));
  Add(MemcachedPod("shop", "cache-a-0", "10.0.0.1"));
  Add(MemcachedPod("shop", "cache-a-1", "10.0.0.2"));
  Add(AppPod("shop", "web-1", "10.1.0.1", "cache-a"));
  Compute();
  // StatefulSet pod recreated: gone, then back without an IP, then with a new one.
  pods_.erase("shop/cache-a-1");
  now_ += 5s;
  Compute();
  EXPECT_EQ(Names(For("shop/web-1")->pools[0].primary),
            (std::vector<std::string>{"cache-a-0@10.0.0.1:11211=up", "cache-a-1@10.0.0.2:11211=down"}));
  PodInfo p = MemcachedPod("shop", "cache-a-1", "");
  p.phase = "Pending";
  p.ready = false;
  Add(p);
  now_ += 300s;  // longer than the grace: the pod exists, so it is kept anyway
  Compute();
  EXPECT_EQ(Names(For("shop/web-1")->pools[0].primary)[1], "cache-a-1@10.0.0.2:11211=down");
  Add(MemcachedPod("shop", "cache-a-1", "10.0.0.7"));
  Compute();
  EXPECT_EQ(Names(For("shop/web-1")->pools[0].primary)[1], "cache-a-1@10.0.0.7:11211=up");
}

TEST_F(DesiredTest, VanishedMemberLeavesTheRingAfterTheGrace) {
  options_.member_grace = 60s;
  Add(PoolService("shop", "cache-a"));
  Add(MemcachedPod("shop", "cache-a-0", "10.0.0.1"));
  Add(MemcachedPod("shop", "cache-a-1", "10.0.0.2"));
  Add(AppPod("shop", "web-1", "10.1.0.1", "cache-a"));
  Compute();
  pods_.erase("shop/cache-a-1");
  now_ += 59s;
  Compute();
  EXPECT_EQ(For("shop/web-1")->pools[0].primary.size(), 2u);
  now_ += 1s;
  Compute();
  EXPECT_EQ(Names(For("shop/web-1")->pools[0].primary), (std::vector<std::string>{"cache-a-0@10.0.0.1:11211=up"}));
}

TEST_F(DesiredTest, WhichPodsGetATopology) {
  Add(PoolService("shop", "cache-a"));
  Add(MemcachedPod("shop", "cache-a-0", "10.0.0.1"));
  Add(AppPod("shop", "web-1", "", "cache-a"));  // no IP yet: served on GET, not pushed
  PodInfo done = AppPod("shop", "job-1", "10.1.0.3", "cache-a");
  done.phase = "Succeeded";
  Add(done);
  PodInfo plain = AppPod("shop", "plain", "10.1.0.4", "cache-a");
  plain.meta.annotations.clear();
  Add(plain);
  Compute();
  ASSERT_EQ(state_.sidecars.size(), 1u);
  EXPECT_EQ(state_.sidecars.at("shop/web-1").admin_address, "");
  ServiceInfo no_selector = PoolService("shop", "cache-a");
  no_selector.selector.clear();  // Kubernetes semantics: selects nothing
  Add(no_selector);
  pods_.erase("shop/cache-a-0");
  now_ += 1h;
  Compute();
  EXPECT_TRUE(HasError("shop/web-1", ErrorReason::kEmptyPool));
}

TEST_F(DesiredTest, PodsWithTheSameContentShareOneVersionPerPass) {
  Add(PoolService("shop", "cache-a"));
  Add(MemcachedPod("shop", "cache-a-0", "10.0.0.1"));
  for (int i = 0; i < 50; ++i) Add(AppPod("shop", "web-" + std::to_string(i), "10.1.0." + std::to_string(i), "cache-a"));
  Compute();
  EXPECT_EQ(state_.version, 1001u);
  for (const auto& [k, s] : state_.sidecars) EXPECT_EQ(s.topology->version, 1001u) << k;
  Add(AppPod("shop", "web-new", "10.1.1.1", "cache-a"));
  Compute();
  EXPECT_EQ(For("shop/web-new")->version, 1002u);
  EXPECT_EQ(For("shop/web-0")->version, 1001u);
}

}  // namespace
}  // namespace memha::topology
