#include "controller/model/store.h"

#include <gtest/gtest.h>

namespace memha::model {
namespace {

PodInfo Pod(std::string ns, std::string name, std::string rv) {
  PodInfo p;
  p.meta.ns = std::move(ns);
  p.meta.name = std::move(name);
  p.meta.resource_version = std::move(rv);
  return p;
}

TEST(Store, SyncedOnlyAfterBothKindsListed) {
  Store store;
  EXPECT_FALSE(store.Synced());
  store.ReplacePods({});
  EXPECT_FALSE(store.Synced());
  store.ReplaceServices({});
  EXPECT_TRUE(store.Synced());
}

TEST(Store, RelistSynthesizesDeletesAndKeepsTheRest) {
  Store store;
  store.ReplacePods({Pod("a", "x", "1"), Pod("a", "y", "2")});
  store.ReplacePods({Pod("a", "y", "3")});
  store.Read([](const StoreView& v) {
    ASSERT_EQ(v.pods.size(), 1u);
    EXPECT_EQ(v.pods.at("a/y").meta.resource_version, "3");
  });
}

TEST(Store, GenerationGrowsOnlyOnRealChanges) {
  Store store;
  store.ReplacePods({Pod("a", "x", "1")});
  uint64_t g = store.Generation();
  store.UpsertPod(Pod("a", "x", "1"));  // the same object again: no change
  EXPECT_EQ(store.Generation(), g);
  store.UpsertPod(Pod("a", "x", "2"));  // a new resourceVersion but nothing the controller keeps changed
  EXPECT_EQ(store.Generation(), g);
  store.Read([](const StoreView& v) { EXPECT_EQ(v.pods.at("a/x").meta.resource_version, "2"); });
  PodInfo ready = Pod("a", "x", "3");
  ready.ready = true;
  store.UpsertPod(ready);
  EXPECT_EQ(store.Generation(), g + 1);
  store.ErasePod("a/missing");
  EXPECT_EQ(store.Generation(), g + 1);
  store.ErasePod("a/x");
  EXPECT_EQ(store.Generation(), g + 2);
  ServiceInfo svc;
  svc.meta.ns = "a";
  svc.meta.name = "cache";
  svc.selector = {{"app", "cache"}};
  store.UpsertService(svc);
  EXPECT_EQ(store.Generation(), g + 3);
  svc.meta.resource_version = "9";
  store.UpsertService(svc);
  EXPECT_EQ(store.Generation(), g + 3);
  svc.selector["tier"] = "hot";
  store.UpsertService(svc);
  EXPECT_EQ(store.Generation(), g + 4);
  EXPECT_EQ(store.WaitForChange(g, std::chrono::milliseconds(1)), g + 4);
}

PodInfo Labelled(std::string name, StringMap labels) {
  PodInfo p = Pod("a", std::move(name), "1");
  p.meta.labels = std::move(labels);
  return p;
}

ServiceInfo Service(std::string ns, std::string name, StringMap selector) {
  ServiceInfo s;
  s.meta.ns = std::move(ns);
  s.meta.name = std::move(name);
  s.selector = std::move(selector);
  return s;
}

class StoreFilterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_.ReplaceServices({Service("a", "cache", {{"app", "cache"}}), Service("a", "web", {{"app", "web"}}),
                            Service("b", "cache", {{"app", "cache"}})});
    store_.ReplacePods({});
    store_.SetPoolServices({"a/cache"}, 0);
  }
  uint64_t Generation() const { return store_.Generation(); }
  Store store_;
};

TEST_F(StoreFilterTest, EveryChangeCountsUntilThePoolsAreKnown) {
  Store store;
  store.ReplaceServices({});
  store.ReplacePods({});
  uint64_t g = store.Generation();
  store.UpsertPod(Labelled("x", {{"app", "other"}}));
  EXPECT_EQ(store.Generation(), g + 1);
  EXPECT_EQ(store.IgnoredPodChanges(), 0u);
}

TEST_F(StoreFilterTest, APodOutsideEveryPoolInUseIsStoredWithoutAPass) {
  uint64_t g = Generation();
  store_.UpsertPod(Labelled("w", {{"app", "web"}}));  // selected by a Service, but not by a pool in use
  PodInfo ready = Labelled("w", {{"app", "web"}});
  ready.ready = true;
  store_.UpsertPod(ready);
  store_.UpsertPod(Labelled("n", {}));
  store_.ErasePod("a/n");
  EXPECT_EQ(Generation(), g);
  EXPECT_EQ(store_.IgnoredPodChanges(), 4u);
  store_.Read([](const StoreView& v) {
    EXPECT_TRUE(v.pods.at("a/w").ready);  // stored all the same: the next pass sees it
    EXPECT_EQ(v.ignored_pod_changes, 4u);
  });
}

TEST_F(StoreFilterTest, SameLabelsInAnotherNamespaceDoNotCount) {
  uint64_t g = Generation();
  PodInfo p = Labelled("x", {{"app", "cache"}});
  p.meta.ns = "b";  // b/cache selects it, but b/cache is not in use
  store_.UpsertPod(p);
  EXPECT_EQ(Generation(), g);
}

TEST_F(StoreFilterTest, PoolMembersAndApplicationPodsCount) {
  uint64_t g = Generation();
  store_.UpsertPod(Labelled("m", {{"app", "cache"}, {"pod-template-hash", "1"}}));
  EXPECT_EQ(Generation(), g + 1);
  PodInfo app = Labelled("app", {});
  app.meta.annotations[std::string(kPoolsAnnotation)] = "not even valid,,";
  store_.UpsertPod(app);  // a bad annotation counts too: the pass reports it
  EXPECT_EQ(Generation(), g + 2);
  store_.ErasePod("a/app");
  EXPECT_EQ(Generation(), g + 3);
  EXPECT_EQ(store_.IgnoredPodChanges(), 0u);
}

TEST_F(StoreFilterTest, LeavingOrJoiningAPoolCountsBothWays) {
  store_.UpsertPod(Labelled("m", {{"app", "cache"}}));
  uint64_t g = Generation();
  store_.UpsertPod(Labelled("m", {{"app", "retired"}}));  // relabelled out: its old labels matched
  EXPECT_EQ(Generation(), g + 1);
  store_.UpsertPod(Labelled("m", {{"app", "cache"}}));  // and back in
  EXPECT_EQ(Generation(), g + 2);
  store_.ErasePod("a/m");
  EXPECT_EQ(Generation(), g + 3);
}

TEST_F(StoreFilterTest, AnEmptySelectorSelectsNothing) {
  store_.UpsertService(Service("a", "cache", {}));
  uint64_t g = Generation();
  store_.UpsertPod(Labelled("x", {{"app", "cache"}}));
  EXPECT_EQ(Generation(), g);
}

TEST_F(StoreFilterTest, AChangeIgnoredDuringAPassIsLookedAtAgainWhenThePoolsChange) {
  uint64_t mark = 0;
  store_.Read([&](const StoreView& v) { mark = v.ignored_pod_changes; });
  // After the pass read the store, a pod of a/web changes; a/web is not yet in use, so it is ignored ...
  store_.UpsertPod(Labelled("w", {{"app", "web"}}));
  uint64_t g = Generation();
  // ... but the pass computed that a/web is now in use: the change must not be lost.
  store_.SetPoolServices({"a/cache", "a/web"}, mark);
  EXPECT_EQ(Generation(), g + 1);
  // The same set again, or nothing ignored since the read: no extra pass.
  store_.Read([&](const StoreView& v) { mark = v.ignored_pod_changes; });
  store_.SetPoolServices({"a/cache", "a/web"}, mark);
  store_.SetPoolServices({"a/cache"}, mark);
  EXPECT_EQ(Generation(), g + 1);
  // Now a/web is out of use again: its pods are ignored.
  store_.UpsertPod(Labelled("w2", {{"app", "web"}}));
  EXPECT_EQ(Generation(), g + 1);
}

}  // namespace
}  // namespace memha::model
