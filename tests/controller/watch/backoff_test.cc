#include "controller/watch/backoff.h"

#include <gtest/gtest.h>

namespace memha::watch {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(Backoff, GrowsWithJitterUpToTheCapAndResets) {
  Backoff b(BackoffPolicy{}, 42);
  double base = 0.5;
  for (int i = 0; i < 10; ++i, base = std::min(base * 2, 30.0)) {
    double d = std::chrono::duration<double>(b.Next()).count();
    EXPECT_GE(d, base / 2 - 1e-9);
    EXPECT_LE(d, base + 1e-9);
  }
  b.Reset();
  EXPECT_LE(b.Next(), milliseconds(500));
}

TEST(Backoff, JitterSpreadsDelays) {
  Backoff a(BackoffPolicy{}, 1), b(BackoffPolicy{}, 2);
  bool differ = false;
  for (int i = 0; i < 5; ++i) differ |= a.Next() != b.Next();
  EXPECT_TRUE(differ);
}

TEST(RetryAfter, Parses) {
  EXPECT_EQ(ParseRetryAfter("7"), seconds(7));
  EXPECT_EQ(ParseRetryAfter(" 0 "), seconds(0));
  EXPECT_FALSE(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT"));
  EXPECT_FALSE(ParseRetryAfter(""));
  EXPECT_FALSE(ParseRetryAfter("-1"));
}

}  // namespace
}  // namespace memha::watch
