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
  store.UpsertPod(Pod("a", "x", "1"));  // same resourceVersion: no change
  EXPECT_EQ(store.Generation(), g);
  store.UpsertPod(Pod("a", "x", "2"));
  EXPECT_EQ(store.Generation(), g + 1);
  store.ErasePod("a/missing");
  EXPECT_EQ(store.Generation(), g + 1);
  store.ErasePod("a/x");
  EXPECT_EQ(store.Generation(), g + 2);
  EXPECT_EQ(store.WaitForChange(g, std::chrono::milliseconds(1)), g + 2);
}

}  // namespace
}  // namespace memha::model
