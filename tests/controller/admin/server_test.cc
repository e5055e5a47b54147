#include "controller/admin/server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>

#include "common/topology.h"

namespace memha::admin {
namespace {

class AdminServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AdminHooks hooks;
    hooks.synced = [this] { return synced_.load(); };
    hooks.topology = [](const std::string& pod) -> std::optional<std::string> {
      if (pod != "shop/web-1") return std::nullopt;
      Topology t;
      t.epoch = 2;
      t.version = 9;
      PoolSpec p;
      p.name = "shop/cache-a";
      p.listen = "127.0.0.1:11211";
      p.primary.push_back(MemberSpec{"cache-a-0", "10.0.0.1:11211", {}, MemberState::kUp});
      t.pools.push_back(p);
      return TopologyToJson(t);
    };
    hooks.metrics = [] { return std::string("memha_controller_test 1\n"); };
    // Stands for the TokenReview: "web-1-token" is bound to shop/web-1 (uid-1), "web-2-token" to shop/web-2,
    // "old-web-1-token" to an earlier pod shop/web-1 (uid-0); "down" cannot be checked; anything else is refused.
    hooks.authenticate = [](const std::string& token) -> Result<Caller> {
      if (token == "web-1-token") return Caller{"shop/web-1", "uid-1"};
      if (token == "web-2-token") return Caller{"shop/web-2", "uid-2"};
      if (token == "old-web-1-token") return Caller{"shop/web-1", "uid-0"};
      if (token == "down") return Status::Unavailable("TokenReview: connection refused");
      return Status::InvalidArgument("token not authenticated");
    };
    hooks.pod_uid = [](const std::string& pod) { return pod == "shop/web-1" ? std::string("uid-1") : std::string(); };
    server_ = std::make_unique<AdminServer>(AdminServer::Options{"127.0.0.1", 0}, std::move(hooks));
    ASSERT_TRUE(server_->Start().ok());
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  }
  httplib::Result Get(const std::string& path, const std::string& token = "web-1-token") {
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    return client_->Get(path.c_str(), h);
  }

  std::atomic<bool> synced_{false};
  std::unique_ptr<AdminServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(AdminServerTest, HealthAlwaysReadyOnlyOnceSynced) {
  EXPECT_EQ(Get("/healthz")->status, 200);
  EXPECT_EQ(Get("/readyz")->status, 503);
  synced_ = true;
  EXPECT_EQ(Get("/readyz")->status, 200);
}

TEST_F(AdminServerTest, MetricsAreServed) {
  auto r = Get("/metrics", "");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("memha_controller_test 1"), std::string::npos);
}

TEST_F(AdminServerTest, TopologyNeedsThePodsOwnTokenAndTheSync) {
  EXPECT_EQ(Get("/v1/topology?pod=shop/web-1", "")->status, 401);
  EXPECT_EQ(Get("/v1/topology?pod=shop/web-1", "wrong")->status, 401);
  // Another pod's valid token never reads this pod's topology, before or after the sync.
  EXPECT_EQ(Get("/v1/topology?pod=shop/web-1", "web-2-token")->status, 403);
  auto down = Get("/v1/topology?pod=shop/web-1", "down");
  EXPECT_EQ(down->status, 503);
  EXPECT_EQ(down->get_header_value("Retry-After"), "1");
  auto early = Get("/v1/topology?pod=shop/web-1");
  EXPECT_EQ(early->status, 503);
  EXPECT_EQ(early->get_header_value("Retry-After"), "1");
  synced_ = true;
  EXPECT_EQ(Get("/v1/topology")->status, 400);
  EXPECT_EQ(Get("/v1/topology?pod=web-1")->status, 400);
  EXPECT_EQ(Get("/v1/topology?pod=shop/nobody")->status, 403);  // web-1's token
  EXPECT_EQ(Get("/v1/topology?pod=shop/web-2", "web-2-token")->status, 404);
  EXPECT_EQ(Get("/v1/topology?pod=shop/web-1", "web-2-token")->status, 403);
  EXPECT_EQ(Get("/v1/topology?pod=shop/web-1", "old-web-1-token")->status, 403);  // a deleted pod of that name
  auto r = Get("/v1/topology?pod=shop/web-1");
  ASSERT_EQ(r->status, 200);
  auto t = ParseTopology(r->body);  // what the sidecar's bootstrap parses
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t.value().epoch, 2u);
  EXPECT_EQ(t.value().version, 9u);
  EXPECT_EQ(t.value().pools.at(0).primary.at(0).name, "cache-a-0");
}

TEST(AdminServer, NoAuthenticatorRefusesTopologyReads) {
  AdminHooks hooks{[] { return true; }, [](const std::string&) { return std::optional<std::string>("{}"); },
                   [] { return std::string(); }, nullptr, nullptr};
  AdminServer server({"127.0.0.1", 0}, hooks);
  ASSERT_TRUE(server.Start().ok());
  httplib::Client c("127.0.0.1", server.port());
  EXPECT_EQ(c.Get("/v1/topology?pod=a/b")->status, 403);
}

TEST(AdminServer, PortInUseIsAnError) {
  AdminHooks hooks{[] { return true; }, [](const std::string&) { return std::nullopt; }, [] { return std::string(); },
                   nullptr, nullptr};
  AdminServer first({"127.0.0.1", 0}, hooks);
  ASSERT_TRUE(first.Start().ok());
  AdminServer second({"127.0.0.1", static_cast<uint16_t>(first.port())}, hooks);
  Status s = second.Start();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(std::to_string(first.port())), std::string::npos);
}

}  // namespace
}  // namespace memha::admin
