#include "controller/push/token.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace memha::push {
namespace {

TEST(TokenFile, ReadsTrimsAndPicksUpRotation) {
  std::string path = ::testing::TempDir() + "/token-" + std::to_string(::getpid());
  std::ofstream(path) << "first\n";
  TokenFile token(path, "", std::chrono::seconds(0));
  ASSERT_TRUE(token.Load().ok());
  EXPECT_EQ(token.Get(), "first");
  std::ofstream(path) << "second";
  EXPECT_EQ(token.Get(), "second");
  std::ofstream(path) << "";  // emptied: keep the last good one
  EXPECT_EQ(token.Get(), "second");
  std::remove(path.c_str());
  EXPECT_EQ(token.Get(), "second");
  EXPECT_FALSE(token.Load().ok());
}

TEST(TokenFile, FixedTokenWithoutAFile) {
  TokenFile token("", "fixed");
  EXPECT_TRUE(token.Load().ok());
  EXPECT_EQ(token.Get(), "fixed");
}

TEST(TokenFile, AcceptsThePreviousTokenOnlyWithinTheGrace) {
  TokenFile token("", "old", std::chrono::seconds(30), std::chrono::hours(1));
  EXPECT_TRUE(token.Accepts("old"));
  EXPECT_FALSE(token.Accepts("ol"));
  EXPECT_FALSE(token.Accepts(""));
  token.Set("new");  // rotated: sidecars whose copy is not refreshed yet still present "old"
  EXPECT_TRUE(token.Accepts("new"));
  EXPECT_TRUE(token.Accepts("old"));
  token.Set("newer");  // only the one before the current token
  EXPECT_TRUE(token.Accepts("new"));
  EXPECT_FALSE(token.Accepts("old"));

  TokenFile strict("", "old", std::chrono::seconds(30), std::chrono::seconds(0));
  strict.Set("new");
  EXPECT_TRUE(strict.Accepts("new"));
  EXPECT_FALSE(strict.Accepts("old"));
  TokenFile none("", "");
  EXPECT_FALSE(none.Accepts(""));
}

}  // namespace
}  // namespace memha::push
