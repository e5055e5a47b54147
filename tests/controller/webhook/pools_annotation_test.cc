#include "controller/webhook/pools_annotation.h"

#include <gtest/gtest.h>

#include "controller/webhook/base64.h"

namespace memha::webhook {
namespace {

TEST(PoolsAnnotation, AcceptsTheDocumentedForms) {
  auto one = ParsePoolsAnnotation("cache-a", 11299);
  ASSERT_TRUE(one.ok()) << one.status().message();
  EXPECT_EQ(one.value(), (std::vector<PoolRef>{{"", "cache-a", 11211}}));

  auto two = ParsePoolsAnnotation("cache-a:11211,sessions:11212", 11299);
  ASSERT_TRUE(two.ok()) << two.status().message();
  EXPECT_EQ(two.value(), (std::vector<PoolRef>{{"", "cache-a", 11211}, {"", "sessions", 11212}}));

  auto other = ParsePoolsAnnotation(" other-ns/cache-a , sessions:11300 ", 11299);
  ASSERT_TRUE(other.ok()) << other.status().message();
  EXPECT_EQ(other.value(), (std::vector<PoolRef>{{"other-ns", "cache-a", 11211}, {"", "sessions", 11300}}));
}

TEST(PoolsAnnotation, RejectsMalformedWithAReason) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "empty"},
      {"  ", "empty"},
      {"cache-a,", "empty entry"},
      {",cache-a", "empty entry"},
      {"cache-a:", "bad port"},
      {"cache-a:0", "bad port"},
      {"cache-a:65536", "bad port"},
      {"cache-a:12x", "bad port"},
      {"cache-a:-1", "bad port"},
      {"Cache-A", "bad Service name"},
      {"1cache", "bad Service name"},
      {"cache_a", "bad Service name"},
      {"cache-a-", "bad Service name"},
      {"/cache-a", "bad namespace"},
      {"ns/", "bad Service name"},
      {"a/b/c", "bad Service name"},
      {"NS/cache", "bad namespace"},
      {std::string(64, 'a'), "bad Service name"},
      {"cache-a:11299", "admin port"},
      {"cache-a,cache-b", "two pools listen on port 11211"},
      {"cache-a:11300,cache-a:11301", "listed twice"},
  };
  for (const auto& [text, why] : bad) {
    auto r = ParsePoolsAnnotation(text, 11299);
    ASSERT_FALSE(r.ok()) << "accepted: " << text;
    EXPECT_NE(r.status().message().find(why), std::string::npos) << text << " -> " << r.status().message();
  }
}

TEST(Base64, RoundTripsEveryLengthAndRejectsGarbage) {
  std::string data;
  for (int n = 0; n < 300; ++n) {
    const std::string enc = Base64Encode(data);
    EXPECT_EQ(enc.size() % 4, 0u);
    auto dec = Base64Decode(enc);
    ASSERT_TRUE(dec.has_value()) << n;
    EXPECT_EQ(*dec, data);
    data += static_cast<char>((n * 37) & 0xff);
  }
  EXPECT_EQ(Base64Encode("memha"), "bWVtaGE=");
  EXPECT_EQ(Base64Decode("bWVtaGE="), "memha");
  for (const char* bad : {"a", "ab=c", "ab*c", "=abc", "a===", "bWVtaGE=bWVt"}) EXPECT_FALSE(Base64Decode(bad).has_value()) << bad;
}

}  // namespace
}  // namespace memha::webhook
