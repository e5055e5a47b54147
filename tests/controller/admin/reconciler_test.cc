// The reconcile loop end to end without Kubernetes: a Store filled by hand, the real pusher, and a fake sidecar
// on 127.0.0.1 standing for the application pod's sidecar (pod IP 127.0.0.1, admin port = the fake's port).
#include "controller/app/reconciler.h"

#include <gtest/gtest.h>

#include <functional>

#include "tests/controller/push/fake_sidecar.h"

namespace memha::app {
namespace {

using namespace std::chrono_literals;

bool Eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit = 5000ms) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return cond();
}

model::PodInfo Pod(std::string name, std::string ip, std::string app, int rv) {
  model::PodInfo p;
  p.meta.ns = "shop";
  p.meta.name = std::move(name);
  p.meta.uid = "uid-" + p.meta.name;
  p.meta.resource_version = std::to_string(rv);
  p.meta.labels = {{"app", std::move(app)}};
  p.pod_ip = std::move(ip);
  p.phase = "Running";
  p.ready = true;
  p.has_sidecar = true;  // application pods are pushed only with the container the webhook injects
  return p;
}

model::ServiceInfo Service(std::string name) {
  model::ServiceInfo s;
  s.meta.ns = "shop";
  s.meta.name = name;
  s.meta.uid = "uid-" + name;
  s.meta.resource_version = "1";
  s.selector = {{"app", name}};
  s.ports = {{"memcache", 11211, 11211, ""}};
  return s;
}

class ReconcilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    push::PusherOptions po;
    po.backoff_initial = 20ms;
    po.backoff_max = 100ms;
    pusher_ = std::make_unique<push::TopologyPusher>(po, &metrics_);
    ReconcileOptions ro;
    ro.topology.sidecar_admin_port = static_cast<uint16_t>(std::stoi(fake_.address().substr(10)));
    ro.coalesce = 5ms;
    ro.poll = 10ms;
    ro.interval = 1h;  // no periodic pass: every pass here is caused by a change (or a leadership change)
    ro.version_seed = 100;
    reconciler_ = std::make_unique<Reconciler>(store_, *pusher_, &metrics_, ro,
                                               [this](const topology::TopologyError& e, const std::string& uid) {
                                                 std::lock_guard l(mu_);
                                                 events_.push_back(e.object + " " +
                                                                   std::string(topology::ToString(e.reason)) + " " +
                                                                   uid);
                                               });
  }
  void TearDown() override {
    reconciler_->Stop();
    reconciler_->StopLeading();
  }
  void Fill() {
    model::PodInfo app = Pod("web-1", "127.0.0.1", "web", 1);
    app.meta.annotations = {{"memha.io/pools", "cache-a"}};
    store_.ReplacePods({Pod("cache-a-0", "10.0.0.1", "cache-a", 1), Pod("cache-a-1", "10.0.0.2", "cache-a", 1), app});
    store_.ReplaceServices({Service("cache-a")});
  }
  // No pass running or due: the pass count stays the same for a while.
  bool Settled() {
    uint64_t last = reconciler_->Passes();
    auto deadline = std::chrono::steady_clock::now() + 5s;
    int stable = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
      uint64_t now = reconciler_->Passes();
      stable = now == last ? stable + 1 : 0;
      last = now;
      if (stable >= 5) return true;
    }
    return false;
  }
  std::vector<std::string> Events() {
    std::lock_guard l(mu_);
    return events_;
  }
  std::optional<Topology> Served() {
    auto json = reconciler_->TopologyJson("shop/web-1");
    if (!json) return std::nullopt;
    return ParseTopology(*json).value();
  }

  push::FakeSidecar fake_;
  admin::ControllerMetrics metrics_;
  model::Store store_;
  std::unique_ptr<push::TopologyPusher> pusher_;
  std::unique_ptr<Reconciler> reconciler_;
  std::mutex mu_;
  std::vector<std::string> events_;
};

TEST_F(ReconcilerTest, NothingBeforeTheStoreIsSynced) {
  model::PodInfo app = Pod("web-1", "127.0.0.1", "web", 1);
  app.meta.annotations = {{"memha.io/pools", "cache-a"}};
  store_.ReplacePods({Pod("cache-a-0", "10.0.0.1", "cache-a", 1), app});  // services not listed yet
  reconciler_->StartLeading(3);
  reconciler_->ReconcileOnce();
  EXPECT_FALSE(Served().has_value());
  EXPECT_EQ(reconciler_->Passes(), 0u);
  EXPECT_FALSE(pusher_->Running());
}

TEST_F(ReconcilerTest, FollowerServesWithEpochZeroAndPushesNothing) {
  Fill();
  reconciler_->Start();
  ASSERT_TRUE(Eventually([&] { return Served().has_value(); }));
  EXPECT_EQ(Served()->epoch, 0u);
  EXPECT_EQ(Served()->version, 101u);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(fake_.requests(), 0);
  EXPECT_FALSE(pusher_->Running());
}

TEST_F(ReconcilerTest, LeaderPushesAndFollowsMemberChanges) {
  Fill();
  reconciler_->Start();
  reconciler_->StartLeading(3);
  ASSERT_TRUE(Eventually([&] { return fake_.applied_version() != 0; }));
  auto pushed = Served();
  ASSERT_TRUE(pushed.has_value());
  EXPECT_EQ(pushed->epoch, 3u);
  EXPECT_EQ(fake_.applied_version(), pushed->version);

  // A member turns NotReady: the sidecar gets the member down in a newer version.
  model::PodInfo down = Pod("cache-a-1", "10.0.0.2", "cache-a", 2);
  down.ready = false;
  store_.UpsertPod(down);
  ASSERT_TRUE(Eventually([&] { return fake_.applied_version() > pushed->version; }));
  auto now = Served();
  EXPECT_EQ(now->pools[0].primary[1].state, MemberState::kDown);
  EXPECT_EQ(fake_.applied_version(), now->version);
  EXPECT_TRUE(Eventually([&] { return pusher_->Behind() == 0; }));  // the ack is processed after the fake applied it

  // Losing leadership stops the pushes; the topology is still served (epoch 0).
  reconciler_->StopLeading();
  EXPECT_FALSE(pusher_->Running());
  int before = fake_.requests();
  store_.UpsertPod(Pod("cache-a-1", "10.0.0.2", "cache-a", 3));
  ASSERT_TRUE(Eventually([&] { return Served()->epoch == 0 && Served()->pools[0].primary[1].state == MemberState::kUp; }));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(fake_.requests(), before);
}

TEST_F(ReconcilerTest, NewLeaderEpochIsAcceptedOverTheOldOne) {
  Fill();
  reconciler_->StartLeading(3);
  reconciler_->ReconcileOnce();
  ASSERT_TRUE(Eventually([&] { return pusher_->Behind() == 0 && fake_.applied_version() != 0; }));
  reconciler_->StopLeading();
  reconciler_->StartLeading(5);
  reconciler_->ReconcileOnce();
  ASSERT_TRUE(Eventually([&] { return pusher_->Sidecar("shop/web-1")->acked_epoch == 5; }));
  EXPECT_EQ(pusher_->Sidecar("shop/web-1")->last_result, push::PushResult::kOk);
}

TEST_F(ReconcilerTest, NewErrorsBecomeOneEventEachWhileLeading) {
  Fill();
  reconciler_->ReconcileOnce();  // follower: errors are logged, not posted
  model::PodInfo bad = Pod("web-2", "127.0.0.2", "web", 1);
  bad.meta.annotations = {{"memha.io/pools", "nosuch"}};
  store_.UpsertPod(bad);
  reconciler_->ReconcileOnce();
  EXPECT_TRUE(Events().empty());
  EXPECT_EQ(reconciler_->CurrentErrors(), 1u);

  reconciler_->StartLeading(2);
  reconciler_->ReconcileOnce();
  reconciler_->ReconcileOnce();
  EXPECT_EQ(Events(), (std::vector<std::string>{"shop/web-2 UnknownPool uid-web-2"}));

  bad.meta.resource_version = "2";
  bad.meta.annotations = {{"memha.io/pools", "cache-a"}};  // fixed
  store_.UpsertPod(bad);
  reconciler_->ReconcileOnce();
  EXPECT_EQ(reconciler_->CurrentErrors(), 0u);
  bad.meta.resource_version = "3";
  bad.meta.annotations = {{"memha.io/pools", "nosuch"}};  // broken again: a new Event
  store_.UpsertPod(bad);
  reconciler_->ReconcileOnce();
  EXPECT_EQ(Events().size(), 2u);
  EXPECT_NE(metrics_.Serialize().find("memha_controller_topology_errors_total{reason=\"UnknownPool\"} 2"),
            std::string::npos);
}

TEST_F(ReconcilerTest, AServiceDeletedKeepsTheLastGoodTopologyAndADeletedPodIsNoLongerPushed) {
  Fill();
  reconciler_->StartLeading(3);
  reconciler_->ReconcileOnce();
  ASSERT_TRUE(Eventually([&] { return pusher_->Behind() == 0 && fake_.applied_version() != 0; }));
  const uint64_t version = Served()->version;

  // The pool's Service goes away while the pod still names it: the sidecar keeps what it has (traffic goes on).
  store_.EraseService("shop/cache-a");
  reconciler_->ReconcileOnce();
  ASSERT_TRUE(Served().has_value());
  EXPECT_EQ(Served()->version, version);
  EXPECT_EQ(reconciler_->CurrentErrors(), 1u);
  EXPECT_EQ(pusher_->Behind(), 0u);

  // The application pod is deleted: no topology served, nothing pushed or retried for it any more.
  store_.ErasePod("shop/web-1");
  reconciler_->ReconcileOnce();
  EXPECT_FALSE(Served().has_value());
  EXPECT_FALSE(pusher_->Sidecar("shop/web-1").has_value());
  EXPECT_EQ(pusher_->Size(), 0u);
}

TEST_F(ReconcilerTest, PodsOutsideThePoolsInUseCostNoPass) {
  Fill();
  model::ServiceInfo backup = Service("cache-b");
  model::ServiceInfo primary = Service("cache-a");
  primary.meta.annotations = {{"memha.io/backup-pool", "cache-b"}};
  store_.ReplaceServices({primary, backup, Service("web")});
  reconciler_->Start();
  reconciler_->StartLeading(3);
  ASSERT_TRUE(Eventually([&] { return fake_.applied_version() != 0 && pusher_->Behind() == 0; }));
  ASSERT_TRUE(Settled());
  const uint64_t passes = reconciler_->Passes();
  const uint64_t generation = store_.Generation();

  // A rollout of an unrelated Deployment (selected by a Service that is no pool) and pods no Service selects.
  for (int i = 0; i < 50; ++i) {
    store_.UpsertPod(Pod("web-" + std::to_string(i + 10), "10.1.0." + std::to_string(i), "web", 1));
    store_.UpsertPod(Pod("job-" + std::to_string(i), "10.2.0." + std::to_string(i), "batch", 1));
  }
  for (int i = 0; i < 50; ++i) store_.ErasePod("shop/job-" + std::to_string(i));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(store_.Generation(), generation);
  EXPECT_EQ(reconciler_->Passes(), passes);
  EXPECT_EQ(store_.IgnoredPodChanges(), 150u);

  // A pod joining the backup pool is in use (through cache-a's memha.io/backup-pool): it reaches the sidecar.
  const uint64_t version = Served()->version;
  store_.UpsertPod(Pod("cache-b-0", "10.0.1.1", "cache-b", 1));
  EXPECT_EQ(store_.Generation(), generation + 1);
  ASSERT_TRUE(Eventually([&] { return fake_.applied_version() > version; }));
  EXPECT_GT(reconciler_->Passes(), passes);
  ASSERT_EQ(Served()->pools.size(), 1u);
  ASSERT_EQ(Served()->pools[0].backup.size(), 1u);
  EXPECT_EQ(Served()->pools[0].backup[0].address, "10.0.1.1:11211");
}

TEST_F(ReconcilerTest, APodWithoutTheSidecarContainerIsServedButNotPushed) {
  Fill();
  model::PodInfo opted_out = Pod("web-2", "127.0.0.2", "web", 1);  // nothing listens there
  opted_out.meta.annotations = {{"memha.io/pools", "cache-a"}};
  opted_out.has_sidecar = false;
  store_.UpsertPod(opted_out);
  reconciler_->StartLeading(3);
  reconciler_->ReconcileOnce();
  ASSERT_TRUE(Eventually([&] { return fake_.applied_version() != 0 && pusher_->Behind() == 0; }));
  EXPECT_TRUE(reconciler_->TopologyJson("shop/web-2").has_value());  // a sidecar added by hand can still boot
  EXPECT_FALSE(pusher_->Sidecar("shop/web-2").has_value());
  EXPECT_EQ(pusher_->Size(), 1u);
  EXPECT_EQ(reconciler_->PodsWithoutSidecar(), 1u);

  // Recreated with the sidecar: pushed like any other.
  opted_out.has_sidecar = true;
  opted_out.pod_ip = "127.0.0.1";
  store_.UpsertPod(opted_out);
  reconciler_->ReconcileOnce();
  EXPECT_TRUE(pusher_->Sidecar("shop/web-2").has_value());
  EXPECT_EQ(reconciler_->PodsWithoutSidecar(), 0u);
}

TEST_F(ReconcilerTest, AMemberJoiningAnEmptyPoolCountsAtOnce) {
  // The application is deployed before its memcached: the pool is empty, the pod has no topology yet.
  model::PodInfo app = Pod("web-1", "127.0.0.1", "web", 1);
  app.meta.annotations = {{"memha.io/pools", "cache-a"}};
  store_.ReplacePods({app});
  store_.ReplaceServices({Service("cache-a")});
  reconciler_->Start();
  reconciler_->StartLeading(3);
  ASSERT_TRUE(Eventually([&] { return reconciler_->CurrentErrors() == 1; }));  // EmptyPool
  ASSERT_TRUE(Settled());
  EXPECT_FALSE(Served().has_value());
  const uint64_t generation = store_.Generation();
  store_.UpsertPod(Pod("cache-a-0", "10.0.0.1", "cache-a", 1));  // memcached comes up
  EXPECT_EQ(store_.Generation(), generation + 1);
  ASSERT_TRUE(Eventually([&] { return fake_.applied_version() != 0; }));
  EXPECT_EQ(Served()->pools[0].primary.size(), 1u);
}

TEST(PoolServicesInUse, NamesEveryReferencedPoolAndItsBackup) {
  topology::State state;
  topology::SidecarTopology a;
  a.refs = {{"shop/cache-a", 11211}, {"other/sessions", 11212}};
  topology::SidecarTopology b;
  b.refs = {{"shop/cache-a", 11211}};
  state.sidecars = {{"shop/web-1", a}, {"shop/web-2", b}};
  state.settings["shop/cache-a"].backup = "shop/cache-b";
  state.settings["other/sessions"] = {};
  state.settings["shop/unused"].backup = "shop/unused-backup";
  // A pool the pass built although no pod got a topology from it (it is empty), with a backup.
  state.pools["shop/empty"] = std::make_shared<topology::PoolBase>();
  state.settings["shop/empty"].backup = "shop/empty-backup";
  EXPECT_EQ(PoolServicesInUse(state), (std::set<std::string>{"other/sessions", "shop/cache-a", "shop/cache-b",
                                                             "shop/empty", "shop/empty-backup"}));
}

}  // namespace
}  // namespace memha::app

namespace memha::app {
namespace {

// Bulk refill wiring: the marks the refill manager reports reach each member of the served topology (and a Poke is
// enough for a pass), and every pass hands the pools with their backups to the observer.
TEST(ReconcilerRefill, MarksReachTheTopologyAndPoolsReachTheObserver) {
  push::FakeSidecar fake;
  admin::ControllerMetrics metrics;
  model::Store store;
  push::TopologyPusher pusher(push::PusherOptions{}, &metrics);
  std::mutex mu;
  topology::RefillMarks marks;
  std::vector<std::pair<std::string, size_t>> observed;  // pool service -> backup members
  ReconcileOptions ro;
  ro.topology.sidecar_admin_port = static_cast<uint16_t>(std::stoi(fake.address().substr(10)));
  ro.coalesce = 5ms;
  ro.poll = 10ms;
  ro.interval = 1h;
  ro.version_seed = 100;
  ro.refill_marks = [&] {
    std::lock_guard l(mu);
    return marks;
  };
  ro.on_pass = [&](const topology::State& state, bool) {
    std::lock_guard l(mu);
    observed.clear();
    for (const auto& [service, base] : state.pools) observed.emplace_back(service, base->backup.size());
  };
  Reconciler reconciler(store, pusher, &metrics, ro);

  model::PodInfo app = Pod("web-1", "127.0.0.1", "web", 1);
  app.meta.annotations = {{"memha.io/pools", "cache-a"}};
  model::ServiceInfo primary = Service("cache-a");
  primary.meta.annotations = {{"memha.io/backup-pool", "cache-b"}};
  store.ReplacePods({Pod("cache-a-0", "10.0.0.1", "cache-a", 1), Pod("cache-a-1", "10.0.0.2", "cache-a", 1),
                     Pod("cache-b-0", "10.0.1.1", "cache-b", 1), app});
  store.ReplaceServices({primary, Service("cache-b")});
  reconciler.ReconcileOnce();
  auto served = [&]() -> Topology { return ParseTopology(*reconciler.TopologyJson("shop/web-1")).value(); };
  Topology before = served();
  ASSERT_EQ(before.pools.size(), 1u);
  ASSERT_EQ(before.pools[0].primary.size(), 2u);
  EXPECT_EQ(before.pools[0].primary[1].refill, MemberRefill::kNone);
  EXPECT_EQ(reconciler.TopologyJson("shop/web-1")->find("refill"), std::string::npos);
  {
    std::lock_guard l(mu);
    ASSERT_EQ(observed.size(), 1u);
    EXPECT_EQ(observed[0], std::make_pair(std::string("shop/cache-a"), size_t{1}));
  }

  {
    std::lock_guard l(mu);
    marks["shop/cache-a"]["cache-a-1"] = MemberRefill::kRunning;
    marks["shop/cache-b"]["cache-b-0"] = MemberRefill::kDone;
  }
  reconciler.Start();
  reconciler.Poke();
  ASSERT_TRUE(Eventually([&] { return served().version > before.version; }));
  reconciler.Stop();
  Topology after = served();
  EXPECT_EQ(after.pools[0].primary[0].refill, MemberRefill::kNone);
  EXPECT_EQ(after.pools[0].primary[1].refill, MemberRefill::kRunning);
  EXPECT_EQ(after.pools[0].backup[0].refill, MemberRefill::kDone);
  EXPECT_NE(reconciler.TopologyJson("shop/web-1")->find(R"("refill":"running")"), std::string::npos);
}

}  // namespace
}  // namespace memha::app
