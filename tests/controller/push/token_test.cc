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

}  // namespace
}  // namespace memha::push
