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
        PoolsCase{"cache-a\n", {{"shop/cache-a", 11211}}},                      // a YAML block scalar's newline
        PoolsCase{"cache-a : 20000", {{"shop/cache-a", 20000}}},
        PoolsCase{"0ns/a", {{"0ns/a", 11211}}},                                  // namespaces may start with a digit
        PoolsCase{"cache-a:11299", {}, Status::Code::kInvalidArgument},         // the sidecar's admin port
        PoolsCase{"cache-a:11298", {}, Status::Code::kInvalidArgument},         // the sidecar's health port
        PoolsCase{"1cache", {}, Status::Code::kInvalidArgument},                // Service names start with a letter
        PoolsCase{"NS/cache", {}, Status::Code::kInvalidArgument},
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

TEST(PoolsAnnotationMessages, NameWhatIsWrong) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "empty"},
      {"  ", "empty"},
      {"cache-a,", "empty entry"},
      {",cache-a", "empty entry"},
      {"cache-a:", "bad port \"\" in \"cache-a:\""},
      {"cache-a:0", "bad port"},
      {"cache-a:65536", "bad port"},
      {"cache-a:12x", "bad port \"12x\""},
      {"cache-a:-1", "bad port"},
      {"Cache-A", "bad Service name \"Cache-A\""},
      {"1cache", "bad Service name"},
      {"cache_a", "bad Service name"},
      {"cache-a-", "bad Service name"},
      {"/cache-a", "bad namespace \"\""},
      {"ns/", "bad Service name"},
      {"a/b/c", "bad Service name \"b/c\""},
      {"NS/cache", "bad namespace \"NS\""},
      {std::string(64, 'a'), "bad Service name"},
      {"cache-a:11299", "port 11299 is the sidecar's admin port"},
      {"cache-a:11298", "port 11298 is the sidecar's health port"},
      {"cache-a,cache-b", "two pools listen on port 11211 (a pool without :port listens there)"},
      {"cache-a:11300,cache-b:11300", "two pools listen on port 11300"},
      {"cache-a:11300,cache-a:11301", "pool shop/cache-a is listed twice"},
  };
  for (const auto& [text, why] : bad) {
    auto r = ParsePoolsAnnotation(text, "shop");
    ASSERT_FALSE(r.ok()) << "accepted: " << text;
    EXPECT_NE(r.status().message().find(why), std::string::npos) << text << " -> " << r.status().message();
  }
  EXPECT_EQ(ParsePoolsAnnotation("cache-a:11300,cache-b:11300", "shop").status().message(),
            "two pools listen on port 11300");  // both explicit: no hint about the default
}

TEST(PoolsAnnotation, PortsFollowTheOptions) {
  auto r = ParsePoolsAnnotation("cache-a,b:11299", "shop", {.default_port = 2000, .admin_port = 3000});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r.value(), (std::vector<PoolRef>{{"shop/cache-a", 2000}, {"shop/b", 11299}}));
  EXPECT_FALSE(ParsePoolsAnnotation("cache-a:3000", "shop", {.default_port = 2000, .admin_port = 3000}).ok());
}

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
