// The member "refill" field of a pushed topology (common/topology.*): parsed, printed only when set, and
// forward compatible (an unknown value reads as none), while "state" stays strict.
#include <gtest/gtest.h>

#include "common/topology.h"

namespace memha {
namespace {

std::string Body(const std::string& member_extra) {
  return R"({"epoch":1,"version":2,"pools":[{"name":"shop/cache-a","listen":"127.0.0.1:11211",
    "primary":[{"name":"cache-a-0","address":"10.0.0.1:11211","state":"up")" +
         member_extra + R"(}],"backup":[]}]})";
}

TEST(TopologyRefillField, ParsedAndPrinted) {
  for (const auto& [text, want] : std::vector<std::pair<std::string, MemberRefill>>{
           {"", MemberRefill::kNone},
           {R"(,"refill":"running")", MemberRefill::kRunning},
           {R"(,"refill":"done")", MemberRefill::kDone},
           {R"(,"refill":"paused")", MemberRefill::kNone},  // a later controller's value: ignored
           {R"(,"refill":7)", MemberRefill::kNone}}) {
    auto t = ParseTopology(Body(text));
    ASSERT_TRUE(t.ok()) << text << ": " << t.status().message();
    EXPECT_EQ(t.value().pools[0].primary[0].refill, want) << text;
    std::string json = TopologyToJson(t.value());
    EXPECT_EQ(json.find("refill") != std::string::npos, want != MemberRefill::kNone) << json;
    auto again = ParseTopology(json);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again.value().pools[0].primary[0].refill, want);
  }
}

// Why the refill is a field of its own: a sidecar refuses a state it does not know, so a new state value would
// make every older sidecar refuse every push.
TEST(TopologyRefillField, UnknownStatesAreStillRefused) {
  std::string body = Body("");
  body.replace(body.find(R"("state":"up")"), 12, R"("state":"refilling")");
  EXPECT_FALSE(ParseTopology(body).ok());
}

}  // namespace
}  // namespace memha
