#include "controller/topology/annotations.h"

#include <gtest/gtest.h>

namespace memha::topology {
namespace {

struct PoolsCase {
  const char* text;
  std::vector<PoolRef> want;  // empty: an error is expected
  Status::Code error = Status::Code::kOk;
};

class PoolsAnnotation : public ::testing::TestWithParam<PoolsCase> {};

TEST_P(PoolsAnnotation, Parses) {
  const PoolsCase& c = GetParam();
  auto got = ParsePoolsAnnotation(c.text, "shop");
  if (c.error == Status::Code::kOk) {
    ASSERT_TRUE(got.ok()) << got.status().message();
    EXPECT_EQ(got.value(), c.want);
  } else {
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), c.error) << got.status().message();
    EXPECT_FALSE(got.status().message().empty());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, PoolsAnnotation,
    ::testing::Values(
        PoolsCase{"cache-a", {{"shop/cache-a", 11211}}},
        PoolsCase{" cache-a ", {{"shop/cache-a", 11211}}},
        PoolsCase{"cache-a:11211,sessions:11212", {{"shop/cache-a", 11211}, {"shop/sessions", 11212}}},
        PoolsCase{"cache-a, sessions:11212", {{"shop/cache-a", 11211}, {"shop/sessions", 11212}}},
        PoolsCase{"other-ns/cache-a", {{"other-ns/cache-a", 11211}}},
        PoolsCase{"other-ns/cache-a:20000", {{"other-ns/cache-a", 20000}}},
        PoolsCase{"", {}, Status::Code::kInvalidArgument},
        PoolsCase{"   ", {}, Status::Code::kInvalidArgument},
        PoolsCase{"cache-a,", {}, Status::Code::kInvalidArgument},
        PoolsCase{",cache-a", {}, Status::Code::kInvalidArgument},
        PoolsCase{"cache-a:0", {}, Status::Code::kInvalidArgument},
        PoolsCase{"cache-a:65536", {}, Status::Code::kInvalidArgument},
        PoolsCase{"cache-a:http", {}, Status::Code::kInvalidArgument},
        PoolsCase{"cache-a:", {}, Status::Code::kInvalidArgument},
        PoolsCase{"cache-a:-1", {}, Status::Code::kInvalidArgument},
        PoolsCase{"Cache-A", {}, Status::Code::kInvalidArgument},
        PoolsCase{"cache_a", {}, Status::Code::kInvalidArgument},
        PoolsCase{"-cache", {}, Status::Code::kInvalidArgument},
        PoolsCase{"a/b/c", {}, Status::Code::kInvalidArgument},
        PoolsCase{"/cache-a", {}, Status::Code::kInvalidArgument},
        PoolsCase{"cache-a,sessions", {}, Status::Code::kConflict},               // two without a port
        PoolsCase{"cache-a,sessions:11211", {}, Status::Code::kConflict},         // default collides
        PoolsCase{"cache-a:11300,sessions:11300", {}, Status::Code::kConflict},   // same port twice
        PoolsCase{"cache-a:1,shop/cache-a:2", {}, Status::Code::kConflict}));     // same pool twice

TEST(ServiceRef, DefaultsToTheGivenNamespace) {
  EXPECT_EQ(ParseServiceRef("cache-b", "shop").value(), "shop/cache-b");
  EXPECT_EQ(ParseServiceRef("infra/cache-b", "shop").value(), "infra/cache-b");
  EXPECT_FALSE(ParseServiceRef("", "shop").ok());
  EXPECT_FALSE(ParseServiceRef("infra/", "shop").ok());
}

TEST(ServiceAnnotations, WritePolicyAndWarmup) {
  EXPECT_EQ(ParseWritePolicyAnnotation("sync").value(), WritePolicy::kSync);
  EXPECT_EQ(ParseWritePolicyAnnotation("primary-only").value(), WritePolicy::kPrimaryOnly);
  EXPECT_EQ(ParseWritePolicyAnnotation("async").value(), WritePolicy::kAsync);
  EXPECT_FALSE(ParseWritePolicyAnnotation("Sync").ok());
  EXPECT_FALSE(ParseWritePolicyAnnotation("").ok());
  EXPECT_TRUE(ParseWarmupAnnotation("on").value());
  EXPECT_FALSE(ParseWarmupAnnotation("off").value());
  EXPECT_FALSE(ParseWarmupAnnotation("false").value());
  EXPECT_FALSE(ParseWarmupAnnotation("maybe").ok());
}

}  // namespace
}  // namespace memha::topology
