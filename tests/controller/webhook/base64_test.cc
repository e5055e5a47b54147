#include "controller/webhook/base64.h"

#include <gtest/gtest.h>

namespace memha::webhook {
namespace {

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
