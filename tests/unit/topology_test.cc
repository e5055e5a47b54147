// Topology JSON (DESIGN.md "Topology push"): the documented example parses; each invalid field is rejected with a
// message naming it; TopologyToJson round-trips; (epoch, version) ordering.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "common/topology.h"

namespace memha {
namespace {

using nlohmann::json;

// The example body of PUT /v1/topology in DESIGN.md.
constexpr const char* kDesignExample = R"({
  "epoch": 7, "version": 1042,
  "pools": [
    { "name": "shop/cache-a", "listen": "127.0.0.1:11211",
      "write_policy": "async", "warmup": true,
      "primary": [ {"name": "cache-a-0", "address": "10.1.2.3:11211", "state": "up"},
                   {"name": "cache-a-1", "address": "10.1.2.4:11211", "state": "down"} ],
      "backup":  [ {"name": "cache-b-0", "address": "10.1.9.9:11211", "state": "up"} ] }
  ]
})";

json Example() { return json::parse(kDesignExample); }

// Expects `doc` to be rejected with a message that starts with `field`.
void ExpectRejected(const std::string& text, const std::string& field) {
  Result<Topology> r = ParseTopology(text);
  ASSERT_FALSE(r.ok()) << "accepted: " << text;
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(r.status().message().rfind(field, 0), 0u) << "message \"" << r.status().message()
                                                       << "\" should start with \"" << field << "\"";
}
void ExpectRejected(const json& doc, const std::string& field) { ExpectRejected(doc.dump(), field); }

TEST(Topology, ParsesDesignExample) {
  Result<Topology> r = ParseTopology(kDesignExample);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const Topology& t = r.value();
  EXPECT_EQ(t.epoch, 7u);
  EXPECT_EQ(t.version, 1042u);
  ASSERT_EQ(t.pools.size(), 1u);
  const PoolSpec& p = t.pools[0];
  EXPECT_EQ(p.name, "shop/cache-a");
  EXPECT_EQ(p.listen, "127.0.0.1:11211");
  EXPECT_EQ(p.listen_endpoint, (HostPort{"127.0.0.1", 11211}));
  EXPECT_EQ(p.write_policy, WritePolicy::kAsync);
  EXPECT_TRUE(p.warmup);
  ASSERT_EQ(p.primary.size(), 2u);
  EXPECT_EQ(p.primary[0].name, "cache-a-0");
  EXPECT_EQ(p.primary[0].address, "10.1.2.3:11211");
  EXPECT_EQ(p.primary[0].endpoint, (HostPort{"10.1.2.3", 11211}));
  EXPECT_EQ(p.primary[0].state, MemberState::kUp);
  EXPECT_EQ(p.primary[1].name, "cache-a-1");
  EXPECT_EQ(p.primary[1].state, MemberState::kDown);
  ASSERT_EQ(p.backup.size(), 1u);
  EXPECT_EQ(p.backup[0].name, "cache-b-0");
  EXPECT_EQ(p.backup[0].endpoint, (HostPort{"10.1.9.9", 11211}));
}

TEST(Topology, DefaultsAndUnknownFields) {
  json doc = {{"epoch", 1}, {"version", 0}, {"future_field", {1, 2}},
              {"pools", {{{"name", "p"}, {"listen", "[::1]:11300"}, {"other", "x"},
                          {"primary", {{{"name", "m"}, {"address", "[fe80::1]:11211"}}}}}}}};
  Result<Topology> r = ParseTopology(doc.dump());
  ASSERT_TRUE(r.ok()) << r.status().message();
  const PoolSpec& p = r.value().pools.at(0);
  EXPECT_EQ(p.write_policy, WritePolicy::kAsync);
  EXPECT_TRUE(p.warmup);
  EXPECT_TRUE(p.backup.empty());
  EXPECT_EQ(p.listen_endpoint, (HostPort{"::1", 11300}));
  EXPECT_EQ(p.primary.at(0).state, MemberState::kUp);
  EXPECT_EQ(p.primary.at(0).endpoint, (HostPort{"fe80::1", 11211}));
}

TEST(Topology, RejectsInvalidJson) {
  ExpectRejected(std::string("{\"epoch\": 7,"), "invalid JSON");
  ExpectRejected(std::string(""), "invalid JSON");
  ExpectRejected(std::string("[1, 2]"), "topology");
}

TEST(Topology, RejectsBadGeneration) {
  json doc = Example();
  doc.erase("epoch");
  ExpectRejected(doc, "epoch");
  doc = Example();
  doc["version"] = -1;
  ExpectRejected(doc, "version");
  doc = Example();
  doc["epoch"] = "7";
  ExpectRejected(doc, "epoch");
  doc = Example();
  doc["version"] = 1.5;
  ExpectRejected(doc, "version");
}

TEST(Topology, RejectsBadPoolFields) {
  json doc = Example();
  doc["pools"] = json::object();
  ExpectRejected(doc, "pools");
  doc = Example();
  doc.erase("pools");
  ExpectRejected(doc, "pools");
  doc = Example();
  doc["pools"][0] = "pool";
  ExpectRejected(doc, "pools[0]");
  doc = Example();
  doc["pools"][0].erase("name");
  ExpectRejected(doc, "pools[0].name");
  doc = Example();
  doc["pools"][0]["name"] = "";
  ExpectRejected(doc, "pools[0].name");
  doc = Example();
  doc["pools"][0].erase("listen");
  ExpectRejected(doc, "pools[0].listen");
  doc = Example();
  doc["pools"][0]["write_policy"] = "eventually";
  ExpectRejected(doc, "pools[0].write_policy");
  doc = Example();
  doc["pools"][0]["warmup"] = "yes";
  ExpectRejected(doc, "pools[0].warmup");
  doc = Example();
  doc["pools"][0]["warmup"] = 1;
  ExpectRejected(doc, "pools[0].warmup");
}

TEST(Topology, RejectsDuplicatePoolNameAndListen) {
  json doc = Example();
  json second = doc["pools"][0];
  second["listen"] = "127.0.0.1:11212";
  doc["pools"].push_back(second);
  ExpectRejected(doc, "pools[1].name");

  doc = Example();
  second = doc["pools"][0];
  second["name"] = "shop/cache-b";
  doc["pools"].push_back(second);
  ExpectRejected(doc, "pools[1].listen");

  // The same address spelled differently is still a duplicate.
  doc = Example();
  second["listen"] = "127.0.0.1:011211";
  doc["pools"].push_back(second);
  ExpectRejected(doc, "pools[1].listen");

  // Distinct names and listens are fine.
  doc = Example();
  second["listen"] = "127.0.0.1:11212";
  doc["pools"].push_back(second);
  Result<Topology> ok = ParseTopology(doc.dump());
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok.value().pools.size(), 2u);
}

TEST(Topology, RejectsBadListenAddress) {
  for (const char* bad : {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:99999", "::1:11211", "", "host name:1"}) {
    SCOPED_TRACE(bad);
    json doc = Example();
    doc["pools"][0]["listen"] = bad;
    ExpectRejected(doc, "pools[0].listen");
  }
}

TEST(Topology, RejectsBadMembers) {
  json doc = Example();
  doc["pools"][0]["primary"] = json::array();
  ExpectRejected(doc, "pools[0].primary");
  doc = Example();
  doc["pools"][0].erase("primary");
  ExpectRejected(doc, "pools[0].primary");
  doc = Example();
  doc["pools"][0]["primary"] = "cache-a-0";
  ExpectRejected(doc, "pools[0].primary");
  doc = Example();
  doc["pools"][0]["backup"][0] = 5;
  ExpectRejected(doc, "pools[0].backup[0]");
  doc = Example();
  doc["pools"][0]["primary"][1]["name"] = "cache-a-0";
  ExpectRejected(doc, "pools[0].primary[1].name");
  doc = Example();
  doc["pools"][0]["primary"][0].erase("name");
  ExpectRejected(doc, "pools[0].primary[0].name");
  doc = Example();
  doc["pools"][0]["primary"][0]["name"] = "";
  ExpectRejected(doc, "pools[0].primary[0].name");
  doc = Example();
  doc["pools"][0]["primary"][0]["name"] = std::string(201, 'n');
  ExpectRejected(doc, "pools[0].primary[0].name");
  doc = Example();
  doc["pools"][0]["primary"][1].erase("address");
  ExpectRejected(doc, "pools[0].primary[1].address");
  doc = Example();
  doc["pools"][0]["backup"][0]["address"] = "10.1.9.9";
  ExpectRejected(doc, "pools[0].backup[0].address");
  doc = Example();
  doc["pools"][0]["backup"][0]["address"] = "10.1.9.9:65536";
  ExpectRejected(doc, "pools[0].backup[0].address");
  doc = Example();
  doc["pools"][0]["primary"][1]["state"] = "sleeping";
  ExpectRejected(doc, "pools[0].primary[1].state");
  doc = Example();
  doc["pools"][0]["primary"][1]["state"] = true;
  ExpectRejected(doc, "pools[0].primary[1].state");
}

TEST(Topology, MessagesExplainTheProblem) {
  json doc = Example();
  doc["pools"][0]["primary"][1]["name"] = "cache-a-0";
  Result<Topology> r = ParseTopology(doc.dump());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "pools[0].primary[1].name: duplicate member \"cache-a-0\"");
  doc = Example();
  doc["pools"][0]["write_policy"] = "eventually";
  EXPECT_EQ(ParseTopology(doc.dump()).status().message(),
            "pools[0].write_policy: must be one of async, sync, primary-only");
}

TEST(Topology, ListenUnix) {
  json doc = Example();
  doc["pools"][0]["listen_unix"] = "/run/memha/cache-a.sock";
  Result<Topology> ok = ParseTopology(doc.dump());
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok.value().pools[0].listen_unix, "/run/memha/cache-a.sock");
  EXPECT_EQ(ParseTopology(kDesignExample).value().pools[0].listen_unix, "");  // optional
  for (const json& bad : {json("relative.sock"), json(""), json("/run/memha/"), json(7),
                          json("/" + std::string(107, 'x'))}) {
    SCOPED_TRACE(bad.dump());
    doc = Example();
    doc["pools"][0]["listen_unix"] = bad;
    ExpectRejected(doc, "pools[0].listen_unix");
  }
  // Two pools on one socket.
  doc = Example();
  doc["pools"][0]["listen_unix"] = "/run/memha/a.sock";
  json second = doc["pools"][0];
  second["name"] = "shop/cache-b";
  second["listen"] = "127.0.0.1:11212";
  doc["pools"].push_back(second);
  ExpectRejected(doc, "pools[1].listen_unix");
  // 107 bytes is the most sun_path holds with its NUL.
  doc = Example();
  doc["pools"][0]["listen_unix"] = "/" + std::string(106, 'x');
  EXPECT_TRUE(ParseTopology(doc.dump()).ok());
}

TEST(Topology, JsonRoundTrip) {
  Result<Topology> first = ParseTopology(kDesignExample);
  ASSERT_TRUE(first.ok());
  Topology t = first.value();
  t.pools[0].write_policy = WritePolicy::kPrimaryOnly;
  t.pools[0].warmup = false;
  t.pools[0].primary[1].state = MemberState::kTerminating;
  PoolSpec second = t.pools[0];
  second.name = "other";
  second.listen = "[::1]:11300";
  second.listen_endpoint = HostPort{"::1", 11300};
  second.write_policy = WritePolicy::kSync;
  second.listen_unix = "/tmp/other.sock";
  second.backup.clear();
  t.pools.push_back(second);
  for (int indent : {-1, 2}) {
    std::string text = TopologyToJson(t, indent);
    Result<Topology> again = ParseTopology(text);
    ASSERT_TRUE(again.ok()) << again.status().message() << "\n" << text;
    EXPECT_EQ(again.value().epoch, t.epoch);
    EXPECT_EQ(again.value().version, t.version);
    ASSERT_EQ(again.value().pools.size(), 2u);
    EXPECT_EQ(again.value().pools[0], t.pools[0]);
    EXPECT_EQ(again.value().pools[1], t.pools[1]);
    EXPECT_TRUE(again.value().SameGeneration(t));
  }
}

TEST(Topology, NewerThanIsLexicographic) {
  auto gen = [](uint64_t e, uint64_t v) {
    Topology t;
    t.epoch = e;
    t.version = v;
    return t;
  };
  EXPECT_TRUE(gen(7, 1043).NewerThan(gen(7, 1042)));
  EXPECT_FALSE(gen(7, 1042).NewerThan(gen(7, 1043)));
  EXPECT_FALSE(gen(7, 1042).NewerThan(gen(7, 1042)));
  EXPECT_TRUE(gen(8, 0).NewerThan(gen(7, 999999)));    // a new leader always wins
  EXPECT_FALSE(gen(6, 999999).NewerThan(gen(7, 0)));   // an old leader's late push never does
  EXPECT_TRUE(gen(7, 1042).SameGeneration(gen(7, 1042)));
  EXPECT_FALSE(gen(7, 1042).SameGeneration(gen(8, 1042)));
}

TEST(Topology, EnumNames) {
  WritePolicy p;
  for (WritePolicy want : {WritePolicy::kAsync, WritePolicy::kSync, WritePolicy::kPrimaryOnly}) {
    ASSERT_TRUE(ParseWritePolicy(ToString(want), &p));
    EXPECT_EQ(p, want);
  }
  EXPECT_EQ(ToString(WritePolicy::kPrimaryOnly), "primary-only");
  EXPECT_FALSE(ParseWritePolicy("ASYNC", &p));
  MemberState s;
  for (MemberState want : {MemberState::kUp, MemberState::kDown, MemberState::kTerminating}) {
    ASSERT_TRUE(ParseMemberState(ToString(want), &s));
    EXPECT_EQ(s, want);
  }
  EXPECT_FALSE(ParseMemberState("", &s));
}

}  // namespace
}  // namespace memha
