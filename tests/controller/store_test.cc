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

}  // namespace
}  // namespace memha::model
