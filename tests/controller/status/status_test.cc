// Pool status: what each pool's status says (pure), and what the writer stores and records, against a scripted API.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "controller/status/pool_status.h"
#include "controller/status/writer.h"

namespace memha::status {
namespace {

using nlohmann::json;

MemberSpec Member(std::string name, std::string address, MemberState state = MemberState::kUp) {
  MemberSpec m;
  m.name = std::move(name);
  m.address = std::move(address);
  m.state = state;
  return m;
}

// shop/cache-a (two members) backed by shop/cache-b (one), used by two application pods.
struct World {
  World() {
    base = std::make_shared<topology::PoolBase>();
    base->primary = {Member("cache-a-0", "10.0.0.1:11211"), Member("cache-a-1", "10.0.0.2:11211")};
    base->backup = {Member("cache-b-0", "10.0.1.1:11211")};
    Rebuild();
    for (std::string pod : {"shop/app-1", "shop/app-2"}) {
      topology::SidecarTopology s;
      s.pod = pod;
      s.topology = std::make_shared<const Topology>();
      sidecars.push_back(s);
    }
  }
  void Rebuild() { frozen = std::make_shared<const topology::PoolBase>(*base); }
  topology::State State() const {
    topology::State st;
    st.pools["shop/cache-a"] = frozen;
    st.settings["shop/cache-a"].backup = "shop/cache-b";
    for (topology::SidecarTopology s : sidecars) {
      s.bases = {frozen};
      st.sidecars[s.pod] = s;
    }
    return st;
  }
  std::shared_ptr<topology::PoolBase> base;
  std::shared_ptr<const topology::PoolBase> frozen;
  std::vector<topology::SidecarTopology> sidecars;
  std::map<std::string, bool> synced = {{"shop/app-1", true}, {"shop/app-2", true}};
  std::vector<refill::TargetStatus> refills;
  InSync in_sync() {
    return [this](const std::string& pod) -> std::optional<bool> {
      auto it = synced.find(pod);
      if (it == synced.end()) return std::nullopt;
      return it->second;
    };
  }
};

TEST(PoolStatus, HealthyPoolAndItsBackup) {
  World w;
  auto pools = ComputePoolStatus(w.State(), {}, w.in_sync());
  ASSERT_EQ(pools.size(), 2u);
  const PoolStatus& a = pools[0];
  EXPECT_EQ(a.service, "shop/cache-a");
  EXPECT_EQ(a.phase, "Healthy");
  EXPECT_EQ(a.message, "");
  EXPECT_EQ(a.backup, "shop/cache-b");
  ASSERT_EQ(a.members.size(), 2u);
  EXPECT_EQ(a.members[1].name, "cache-a-1");
  EXPECT_EQ(a.members[1].state, "up");
  EXPECT_EQ(a.sidecars, 2u);
  EXPECT_EQ(a.sidecars_in_sync, 2u);
  const PoolStatus& b = pools[1];
  EXPECT_EQ(b.service, "shop/cache-b");
  EXPECT_EQ(b.backup_of, std::vector<std::string>{"shop/cache-a"});
  EXPECT_EQ(b.members.size(), 1u);
  EXPECT_EQ(b.phase, "Healthy");
  EXPECT_EQ(b.sidecars, 0u);  // no pod uses the backup as its pool
  json j = json::parse(ToJson(a, "2026-12-03T17:00:00Z"));
  EXPECT_EQ(j["phase"], "Healthy");
  EXPECT_EQ(j["members"][0], json::parse(R"({"name":"cache-a-0","address":"10.0.0.1:11211","state":"up"})"));
  EXPECT_EQ(j["sidecars"], json::parse(R"({"total":2,"inSync":2})"));
  EXPECT_EQ(j["lastChange"], "2026-12-03T17:00:00Z");
}

TEST(PoolStatus, DegradedSaysWhy) {
  World w;
  w.base->primary[1].state = MemberState::kDown;
  w.base->backup[0].state = MemberState::kTerminating;
  w.Rebuild();
  w.synced["shop/app-2"] = false;
  auto pools = ComputePoolStatus(w.State(), {}, w.in_sync());
  EXPECT_EQ(pools[0].phase, "Degraded");
  EXPECT_EQ(pools[0].message, "1 of 2 members down; 1 sidecar(s) behind; backup shop/cache-b has no member up");
  EXPECT_EQ(pools[0].behind, std::vector<std::string>{"shop/app-2"});
  EXPECT_EQ(pools[1].phase, "Unavailable");
  EXPECT_EQ(pools[1].members[0].state, "terminating");
}

TEST(PoolStatus, ARefillShowsItsProgress) {
  World w;
  refill::TargetStatus t;
  t.pool = "shop/cache-a";
  t.role = "primary";
  t.service = "shop/cache-a";
  t.member = "cache-a-1";
  t.state = refill::TargetState::kRunning;
  t.owned = 3000;
  t.processed = 1200;
  w.refills = {t};
  auto pools = ComputePoolStatus(w.State(), w.refills, w.in_sync());
  EXPECT_EQ(pools[0].phase, "Refilling");
  EXPECT_EQ(pools[0].members[1].state, "refilling");
  json j = json::parse(ToJson(pools[0], "t"));
  EXPECT_EQ(j["members"][1]["refill"], "running");
  EXPECT_EQ(j["members"][1]["refillKeys"], 3000);
  EXPECT_EQ(j["members"][1]["refillProcessed"], 1200);
  // Failed: the member is up again for the sidecars, the pool is degraded.
  w.refills[0].state = refill::TargetState::kFailed;
  pools = ComputePoolStatus(w.State(), w.refills, w.in_sync());
  EXPECT_EQ(pools[0].members[1].state, "up");
  EXPECT_EQ(pools[0].members[1].refill, "failed");
  EXPECT_EQ(pools[0].phase, "Degraded");
}

TEST(PoolStatus, NoMemberUpIsUnavailable) {
  World w;
  for (auto& m : w.base->primary) m.state = MemberState::kDown;
  w.Rebuild();
  auto pools = ComputePoolStatus(w.State(), {}, w.in_sync());
  EXPECT_EQ(pools[0].phase, "Unavailable");
  EXPECT_EQ(pools[0].message, "no member up");
}

class ScriptedApi : public kube::KubeApi {
 public:
  struct Call {
    std::string method, path, body, content_type;
  };
  Result<kube::ApiResponse> Request(std::string_view method, const std::string& path, const std::string& body,
                                    std::string_view content_type) override {
    calls.push_back({std::string(method), path, body, std::string(content_type)});
    kube::ApiResponse r;
    r.status = method == "POST" ? 201 : 200;
    if (!next.empty()) {
      r.status = next.front();
      next.erase(next.begin());
    }
    return r;
  }
  Result<kube::ApiResponse> Stream(const std::string&, const std::function<bool(std::string_view)>&) override {
    return Status::Unavailable("no");
  }
  void Cancel() override {}
  std::vector<Call> calls;
  std::vector<int> next;
};

class WriterTest : public ::testing::Test {
 protected:
  WriterTest() {
    options_.ns = "memha-system";
    options_.progress_interval = std::chrono::hours(1);
    options_.behind_warning = std::chrono::milliseconds(0);
    writer_ = std::make_unique<StatusWriter>(
        api_, options_,
        [this](const std::string& service, bool warning, const std::string& reason, const std::string& message) {
          events_.push_back(service + " " + (warning ? "Warning " : "Normal ") + reason + ": " + message);
        },
        [this] { return world_.refills; }, world_.in_sync());
  }
  void Round(bool leading = true) {
    writer_->Update(std::make_shared<const topology::State>(world_.State()), leading);
    writer_->RunOnce();
  }
  json Data(size_t call) { return json::parse(api_.calls.at(call).body)["data"]; }

  World world_;
  ScriptedApi api_;
  WriterOptions options_;
  std::vector<std::string> events_;
  std::unique_ptr<StatusWriter> writer_;
};

TEST_F(WriterTest, WritesEveryPoolThenOnlyChanges) {
  api_.next = {404};  // the chart's ConfigMap is missing: an error, never a create (no such permission)
  Round();
  ASSERT_EQ(api_.calls.size(), 1u);
  EXPECT_EQ(writer_->Failures(), 1u);
  Round();  // retried: both pools, still unwritten
  ASSERT_EQ(api_.calls.size(), 2u);
  EXPECT_EQ(api_.calls[1].method, "PATCH");
  EXPECT_EQ(api_.calls[1].path, "/api/v1/namespaces/memha-system/configmaps/memha-status");
  EXPECT_EQ(api_.calls[1].content_type, "application/merge-patch+json");
  for (const auto& c : api_.calls) EXPECT_NE(c.method, "POST");
  EXPECT_EQ(json::parse(Data(1)["shop.cache-a"].get<std::string>())["phase"], "Healthy");
  EXPECT_TRUE(Data(1).contains("shop.cache-b"));
  EXPECT_TRUE(events_.empty());  // the first round is the baseline
  EXPECT_EQ(writer_->Writes(), 1u);

  Round();  // nothing changed: nothing written
  EXPECT_EQ(api_.calls.size(), 2u);

  world_.base->primary[1].state = MemberState::kDown;
  world_.Rebuild();
  Round();
  ASSERT_EQ(api_.calls.size(), 3u);
  json data = Data(2);
  EXPECT_EQ(data.size(), 1u);  // only the pool that changed
  json a = json::parse(data["shop.cache-a"].get<std::string>());
  EXPECT_EQ(a["phase"], "Degraded");
  EXPECT_EQ(a["members"][1]["state"], "down");
  EXPECT_EQ(events_, std::vector<std::string>{"shop/cache-a Normal MemberDown: cache-a-1 (10.0.0.2:11211) is down"});
  EXPECT_EQ(writer_->Pools("Degraded"), 1u);
  EXPECT_EQ(writer_->Pools("Healthy"), 1u);

  world_.base->primary[1].state = MemberState::kUp;
  world_.Rebuild();
  Round();
  EXPECT_EQ(api_.calls.size(), 4u);
  EXPECT_EQ(events_.back(), "shop/cache-a Normal MemberUp: cache-a-1 (10.0.0.2:11211) is back: up");
}

TEST_F(WriterTest, ProgressAloneWaitsForItsInterval) {
  Round();
  refill::TargetStatus t;
  t.service = "shop/cache-a";
  t.member = "cache-a-1";
  t.state = refill::TargetState::kRunning;
  t.owned = 100;
  world_.refills = {t};
  Round();  // refilling: a new phase, written at once
  ASSERT_EQ(api_.calls.size(), 2u);
  world_.refills[0].processed = 50;
  Round();  // progress only, interval one hour: not written
  EXPECT_EQ(api_.calls.size(), 2u);
  world_.refills[0].state = refill::TargetState::kDone;
  Round();  // done: written, with the state
  ASSERT_EQ(api_.calls.size(), 3u);
  EXPECT_EQ(json::parse(Data(2)["shop.cache-a"].get<std::string>())["members"][1]["refill"], "done");
}

TEST_F(WriterTest, AFailedWriteIsRetriedAndAGonePoolIsRemoved) {
  api_.next = {500};
  Round();
  EXPECT_EQ(writer_->Failures(), 1u);
  Round();  // unchanged, but not stored yet
  ASSERT_EQ(api_.calls.size(), 2u);
  EXPECT_EQ(Data(1).size(), 2u);
  EXPECT_EQ(writer_->Writes(), 1u);
  world_.sidecars.clear();
  topology::State empty;
  writer_->Update(std::make_shared<const topology::State>(empty), true);
  writer_->RunOnce();
  ASSERT_EQ(api_.calls.size(), 3u);
  EXPECT_TRUE(Data(2)["shop.cache-a"].is_null());
  EXPECT_TRUE(Data(2)["shop.cache-b"].is_null());
}

TEST_F(WriterTest, AFollowerWritesNothingAndANewTermStartsFromABaseline) {
  Round(false);
  EXPECT_TRUE(api_.calls.empty());
  EXPECT_EQ(writer_->Pools("Healthy"), 0u);
  Round(true);
  EXPECT_EQ(api_.calls.size(), 1u);
  world_.base->primary[0].state = MemberState::kDown;
  world_.Rebuild();
  Round(false);
  Round(true);  // a new term: written again, no Event for what changed while following
  EXPECT_EQ(api_.calls.size(), 2u);
  EXPECT_TRUE(events_.empty());
}

TEST_F(WriterTest, SidecarsBehindAndAnUnavailablePoolAreWarnings) {
  Round();
  world_.synced["shop/app-2"] = false;
  Round();
  Round();  // still behind: one Warning per episode
  for (auto& m : world_.base->primary) m.state = MemberState::kDown;
  world_.Rebuild();
  Round();
  std::vector<std::string> warnings;
  for (const auto& e : events_) {
    if (e.find(" Warning ") != std::string::npos) warnings.push_back(e.substr(0, e.find(':')));
  }
  EXPECT_EQ(warnings, (std::vector<std::string>{"shop/cache-a Warning SidecarsBehind",
                                                "shop/cache-a Warning PoolUnavailable"}));
}

}  // namespace
}  // namespace memha::status
