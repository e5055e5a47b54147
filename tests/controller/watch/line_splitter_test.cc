#include "controller/watch/line_splitter.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace memha::watch {
namespace {

std::vector<std::string> FeedAll(LineSplitter& s, const std::vector<std::string>& chunks) {
  std::vector<std::string> lines;
  for (const auto& c : chunks) {
    s.Feed(c, [&](std::string_view l) {
      lines.emplace_back(l);
      return true;
    });
  }
  return lines;
}

TEST(LineSplitter, EveryCutGivesTheSameLines) {
  const std::string text = "{\"a\":1}\n\n{\"b\":2}\r\n{\"c\":3}\n";
  const std::vector<std::string> expected = {"{\"a\":1}", "{\"b\":2}\r", "{\"c\":3}"};
  for (size_t i = 0; i <= text.size(); ++i) {
    for (size_t j = i; j <= text.size(); ++j) {
      LineSplitter s;
      auto lines = FeedAll(s, {text.substr(0, i), text.substr(i, j - i), text.substr(j)});
      ASSERT_EQ(lines, expected) << i << "," << j;
      ASSERT_FALSE(s.HasPartial());
    }
  }
}

TEST(LineSplitter, KeepsAPartialLine) {
  LineSplitter s;
  EXPECT_EQ(FeedAll(s, {"{\"a\":1}\n{\"b\""}), std::vector<std::string>{"{\"a\":1}"});
  EXPECT_TRUE(s.HasPartial());
  s.Reset();
  EXPECT_FALSE(s.HasPartial());
}

TEST(LineSplitter, StopsWhenTheCallbackSaysSo) {
  LineSplitter s;
  int calls = 0;
  auto outcome = s.Feed("a\nb\nc\n", [&](std::string_view) { return ++calls < 2; });
  EXPECT_EQ(outcome, LineSplitter::Outcome::kStopped);
  EXPECT_EQ(calls, 2);
}

TEST(LineSplitter, RejectsAnOverlongLine) {
  LineSplitter s(8);
  EXPECT_EQ(s.Feed("12345", [](std::string_view) { return true; }), LineSplitter::Outcome::kOk);
  EXPECT_EQ(s.Feed("67890", [](std::string_view) { return true; }), LineSplitter::Outcome::kTooLong);
}

}  // namespace
}  // namespace memha::watch
