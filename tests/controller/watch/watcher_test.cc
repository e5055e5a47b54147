// The watcher against a scripted API server on loopback: chunking, bookmarks, 410 in both forms, dropped
// connections, 429/5xx backoff, token rotation, paged lists. Time is a FakeClock: backoffs are recorded, not slept.
#include "controller/watch/watcher.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "controller/kube/http_api.h"
#include "tests/controller/kube/fake_api_server.h"
#include "tests/controller/watch/watch_test_util.h"

namespace memha::watch {
namespace {

using memha::testing::Bookmark;
using memha::testing::Event;
using memha::testing::FakeApiServer;
using memha::testing::GoneEvent;
using memha::testing::ListBody;
using memha::testing::PodObject;
using memha::testing::Scripted;
using std::chrono::seconds;

constexpr const char* kList = "GET /api/v1/pods";
constexpr const char* kWatch = "WATCH /api/v1/pods";

Scripted Ok(std::string body) {
  Scripted s;
  s.body = std::move(body);
  return s;
}

Scripted Stream(std::vector<std::string> chunks) {
  Scripted s;
  s.chunks = std::move(chunks);
  s.chunked = true;
  return s;
}

Scripted Status(int code, std::multimap<std::string, std::string> headers = {}) {
  Scripted s;
  s.status = code;
  s.headers = std::move(headers);
  s.body = R"({"kind":"Status","code":)" + std::to_string(code) + "}";
  return s;
}

std::map<std::string, std::string> PodVersions(const model::Store& store) {
  std::map<std::string, std::string> out;
  store.Read([&](const model::StoreView& v) {
    for (const auto& [k, p] : v.pods) out[k] = p.meta.resource_version;
  });
  return out;
}

class WatcherTest : public ::testing::Test {
 protected:
  void SetUp() override { Rebuild(); }

  void Rebuild(WatchOptions options = {}) {
    watcher_.reset();
    store_ = std::make_unique<model::Store>();
    kube::KubeConfig config;
    config.server = server_->url();
    config.token = token_;
    config.token_file = token_file_;
    api_ = std::move(kube::HttpKubeApi::Create(config, {}, clock_)).value();
    options.seed = 7;
    watcher_ = NewPodWatcher(*api_, *store_, options, clock_);
  }

  void NewServer() { server_ = std::make_unique<FakeApiServer>(); }

  std::unique_ptr<FakeApiServer> server_ = std::make_unique<FakeApiServer>();
  kube::FakeClock clock_;
  std::string token_;
  std::string token_file_;
  std::unique_ptr<model::Store> store_;
  std::unique_ptr<kube::HttpKubeApi> api_;
  std::unique_ptr<Watcher> watcher_;
};

// ADDED p3, MODIFIED p1, DELETED p2, BOOKMARK: the expected end state from a list of p1, p2 at rv 10.
std::string ThreeEventsAndBookmark() {
  return Event("ADDED", PodObject("ns", "p3", "11")) + Event("MODIFIED", PodObject("ns", "p1", "12", false)) +
         Event("DELETED", PodObject("ns", "p2", "13")) + Bookmark("14");
}
const std::map<std::string, std::string> kAfterThreeEvents = {{"ns/p1", "12"}, {"ns/p3", "11"}};

TEST_F(WatcherTest, ListsThenWatchesFromTheListsResourceVersion) {
  server_->Script(kList, Ok(ListBody({PodObject("ns", "p1", "5"), PodObject("ns", "p2", "6")}, "10")));
  server_->Script(kWatch, Stream({ThreeEventsAndBookmark()}));
  EXPECT_EQ(watcher_->Step(), WatchState::kWatch);
  EXPECT_TRUE(watcher_->counters().synced);
  EXPECT_EQ(store_->PodCount(), 2u);
  EXPECT_EQ(watcher_->resource_version(), "10");
  EXPECT_EQ(watcher_->Step(), WatchState::kWatch);  // clean end: watch again, no relist
  EXPECT_EQ(PodVersions(*store_), kAfterThreeEvents);
  EXPECT_EQ(watcher_->resource_version(), "14");
  EXPECT_EQ(watcher_->counters().events, 3u);
  EXPECT_EQ(watcher_->counters().bookmarks, 1u);
  store_->Read([](const model::StoreView& v) { EXPECT_FALSE(v.pods.at("ns/p1").ready); });

  auto watches = server_->Requests(kWatch);
  ASSERT_EQ(watches.size(), 1u);
  EXPECT_EQ(watches[0].params["resourceVersion"], "10");
  EXPECT_EQ(watches[0].params["allowWatchBookmarks"], "true");
  int timeout = std::stoi(watches[0].params["timeoutSeconds"]);
  EXPECT_GE(timeout, 240);
  EXPECT_LE(timeout, 360);
  EXPECT_TRUE(clock_.Sleeps().empty());
}

TEST_F(WatcherTest, EveryEventCutAtEveryPosition) {
  const std::string stream = ThreeEventsAndBookmark();
  for (size_t cut = 1; cut < stream.size(); ++cut) {
    Rebuild();
    server_->Script(kList, Ok(ListBody({PodObject("ns", "p1", "5"), PodObject("ns", "p2", "6")}, "10")));
    server_->Script(kWatch, Stream({stream.substr(0, cut), stream.substr(cut)}));
    ASSERT_EQ(watcher_->Step(), WatchState::kWatch);
    ASSERT_EQ(watcher_->Step(), WatchState::kWatch) << "cut at " << cut;
    ASSERT_EQ(PodVersions(*store_), kAfterThreeEvents) << "cut at " << cut;
    ASSERT_EQ(watcher_->resource_version(), "14") << "cut at " << cut;
    ASSERT_EQ(watcher_->counters().errors, 0u) << "cut at " << cut;
  }
}

TEST_F(WatcherTest, OneByteChunks) {
  const std::string stream = ThreeEventsAndBookmark();
  std::vector<std::string> bytes;
  for (char c : stream) bytes.emplace_back(1, c);
  server_->Script(kList, Ok(ListBody({PodObject("ns", "p1", "5"), PodObject("ns", "p2", "6")}, "10")));
  server_->Script(kWatch, Stream(bytes));
  watcher_->Step();
  EXPECT_EQ(watcher_->Step(), WatchState::kWatch);
  EXPECT_EQ(PodVersions(*store_), kAfterThreeEvents);
  EXPECT_EQ(watcher_->resource_version(), "14");
}

TEST_F(WatcherTest, SeveralEventsInOneChunkAndAChunkEndingInsideAnEvent) {
  std::string a = Event("ADDED", PodObject("ns", "p3", "11"));
  std::string b = Event("MODIFIED", PodObject("ns", "p1", "12", false));
  std::string c = Event("DELETED", PodObject("ns", "p2", "13")) + Bookmark("14");
  server_->Script(kList, Ok(ListBody({PodObject("ns", "p1", "5"), PodObject("ns", "p2", "6")}, "10")));
  server_->Script(kWatch, Stream({a + b + c.substr(0, 10), c.substr(10)}));
  watcher_->Step();
  watcher_->Step();
  EXPECT_EQ(PodVersions(*store_), kAfterThreeEvents);
  EXPECT_EQ(watcher_->counters().events, 3u);
}

TEST_F(WatcherTest, BookmarkOnlyStreamAdvancesResourceVersionAndNothingElse) {
  server_->Script(kList, Ok(ListBody({PodObject("ns", "p1", "5")}, "10")));
  server_->Script(kWatch, Stream({Bookmark("50"), Bookmark("60")}));
  server_->Script(kWatch, Stream({Event("ADDED", PodObject("ns", "p2", "61"))}));
  watcher_->Step();
  uint64_t generation = store_->Generation();
  EXPECT_EQ(watcher_->Step(), WatchState::kWatch);
  EXPECT_EQ(store_->Generation(), generation);
  EXPECT_EQ(watcher_->resource_version(), "60");
  EXPECT_EQ(watcher_->counters().bookmarks, 2u);
  EXPECT_EQ(watcher_->counters().events, 0u);
  watcher_->Step();
  auto watches = server_->Requests(kWatch);
  ASSERT_EQ(watches.size(), 2u);
  EXPECT_EQ(watches[1].params["resourceVersion"], "60");
  EXPECT_EQ(server_->Requests(kList).size(), 1u);
  EXPECT_EQ(watcher_->counters().watch_restarts, 1u);
  EXPECT_EQ(watcher_->counters().relists, 0u);
}

TEST_F(WatcherTest, HttpGoneRelistsAtOnceAndSynthesizesDeletes) {
  server_->Script(kList, Ok(ListBody({PodObject("ns", "p1", "5"), PodObject("ns", "p2", "6")}, "10")));
  server_->Script(kWatch, Status(410));
  server_->Script(kList, Ok(ListBody({PodObject("ns", "p2", "16"), PodObject("ns", "p3", "17")}, "20")));
  server_->Script(kWatch, Stream({Bookmark("21")}));
  watcher_->Step();
  EXPECT_EQ(watcher_->Step(), WatchState::kList);
  uint64_t generation = store_->Generation();
  EXPECT_EQ(watcher_->Step(), WatchState::kWatch);
  EXPECT_EQ(store_->Generation(), generation + 1);  // swapped in one change
  EXPECT_EQ(PodVersions(*store_), (std::map<std::string, std::string>{{"ns/p2", "16"}, {"ns/p3", "17"}}));
  EXPECT_EQ(watcher_->resource_version(), "20");
  EXPECT_EQ(watcher_->counters().gone, 1u);
  EXPECT_EQ(watcher_->counters().relists, 1u);
  EXPECT_TRUE(clock_.Sleeps().empty());
  watcher_->Step();
  EXPECT_EQ(server_->Requests(kWatch)[1].params["resourceVersion"], "20");
}

TEST_F(WatcherTest, InStreamGoneAppliesEarlierEventsThenRelists) {
  server_->Script(kList, Ok(ListBody({PodObject("ns", "p1", "5"), PodObject("ns", "p2", "6")}, "10")));
  server_->Script(kWatch, Stream({Event("ADDED", PodObject("ns", "p3", "11")) + GoneEvent(),
                                  Event("ADDED", PodObject("ns", "never", "99"))}));
  server_->Script(kList, Ok(ListBody({PodObject("ns", "p3", "11"), PodObject("ns", "p4", "18")}, "20")));
  watcher_->Step();
  EXPECT_EQ(watcher_->Step(), WatchState::kList);
  EXPECT_EQ(PodVersions(*store_),
            (std::map<std::string, std::string>{{"ns/p1", "5"}, {"ns/p2", "6"}, {"ns/p3", "11"}}));
  EXPECT_EQ(watcher_->Step(), WatchState::kWatch);
  EXPECT_EQ(PodVersions(*store_), (std::map<std::string, std::string>{{"ns/p3", "11"}, {"ns/p4", "18"}}));
  EXPECT_EQ(watcher_->counters().gone, 1u);
  EXPECT_EQ(watcher_->counters().relists, 1u);
  EXPECT_EQ(watcher_->counters().errors, 0u);
  EXPECT_TRUE(clock_.Sleeps().empty());
}

TEST_F(WatcherTest, DroppedConnectionMidStreamBacksOffAndRewatchesFromTheLastEvent) {
  std::string second = Event("ADDED", PodObject("ns", "p3", "12"));
  Scripted dropped = Stream({Event("ADDED", PodObject("ns", "p2", "11")), second.substr(0, 20)});
  dropped.drop = true;
  server_->Script(kList, Ok(ListBody({PodObject("ns", "p1", "5")}, "10")));
  server_->Script(kWatch, dropped);
  server_->Script(kWatch, Stream({second}));
  watcher_->Step();
  EXPECT_EQ(watcher_->Step(), WatchState::kBackoff);
  EXPECT_EQ(PodVersions(*store_), (std::map<std::string, std::string>{{"ns/p1", "5"}, {"ns/p2", "11"}}));
  EXPECT_EQ(watcher_->counters().errors, 1u);
  EXPECT_EQ(watcher_->Step(), WatchState::kWatch);
  ASSERT_EQ(clock_.Sleeps().size(), 1u);
  EXPECT_LE(clock_.Sleeps()[0], std::chrono::milliseconds(500));
  EXPECT_EQ(watcher_->Step(), WatchState::kWatch);
  EXPECT_EQ(server_->Requests(kWatch)[1].params["resourceVersion"], "11");
  EXPECT_EQ(store_->PodCount(), 3u);
  EXPECT_EQ(server_->Requests(kList).size(), 1u);  // no relist
}

TEST_F(WatcherTest, TooManyRequestsHonoursRetryAfter) {
  server_->Script(kList, Status(429, {{"Retry-After", "7"}}));
  server_->Script(kList, Ok(ListBody({}, "10")));
  server_->Script(kWatch, Status(429, {{"Retry-After", "9"}}));
  server_->Script(kWatch, Stream({Bookmark("11")}));
  EXPECT_EQ(watcher_->Step(), WatchState::kBackoff);
  EXPECT_FALSE(watcher_->counters().synced);
  EXPECT_EQ(watcher_->Step(), WatchState::kList);
  EXPECT_EQ(watcher_->Step(), WatchState::kWatch);
  EXPECT_EQ(watcher_->Step(), WatchState::kBackoff);
  EXPECT_EQ(watcher_->Step(), WatchState::kWatch);  // a 429 on watch does not relist
  EXPECT_EQ(watcher_->Step(), WatchState::kWatch);
  auto sleeps = clock_.Sleeps();
  ASSERT_EQ(sleeps.size(), 2u);
  EXPECT_GE(sleeps[0], seconds(7));
  EXPECT_LT(sleeps[0], seconds(8));
  EXPECT_GE(sleeps[1], seconds(9));
  EXPECT_LT(sleeps[1], seconds(10));
  EXPECT_EQ(watcher_->counters().throttled, 2u);
  EXPECT_EQ(server_->Requests(kList).size(), 2u);
  EXPECT_EQ(watcher_->resource_version(), "11");
}

TEST_F(WatcherTest, ServerErrorsBackOffExponentiallyWithJitterAndResetOnSuccess) {
  server_->Script(kList, Ok(ListBody({}, "10")));
  for (int i = 0; i < 6; ++i) server_->Script(kWatch, Status(i % 2 ? 503 : 500));
  server_->Script(kWatch, Stream({Bookmark("11")}));
  server_->Script(kWatch, Status(500));
  watcher_->Step();
  for (int i = 0; i < 6; ++i) {
    ASSERT_EQ(watcher_->Step(), WatchState::kBackoff);
    ASSERT_EQ(watcher_->Step(), WatchState::kWatch);
  }
  EXPECT_EQ(watcher_->Step(), WatchState::kWatch);  // success
  EXPECT_EQ(watcher_->Step(), WatchState::kBackoff);
  watcher_->Step();
  auto sleeps = clock_.Sleeps();
  ASSERT_EQ(sleeps.size(), 7u);
  double base = 0.5;
  for (int i = 0; i < 6; ++i, base *= 2) {
    double s = std::chrono::duration<double>(sleeps[i]).count();
    EXPECT_GE(s, base / 2 - 1e-6) << i;
    EXPECT_LE(s, base + 1e-6) << i;
  }
  EXPECT_LE(sleeps[6], std::chrono::milliseconds(500));  // reset after the successful watch
  EXPECT_EQ(watcher_->counters().errors, 7u);
  EXPECT_EQ(server_->Requests(kList).size(), 1u);
}

TEST_F(WatcherTest, BackoffIsCapped) {
  WatchOptions options;
  options.backoff.max = seconds(4);
  Rebuild(options);
  server_->Script(kList, Ok(ListBody({}, "10")));
  for (int i = 0; i < 8; ++i) server_->Script(kWatch, Status(500));
  watcher_->Step();
  for (int i = 0; i < 8; ++i) {
    watcher_->Step();
    watcher_->Step();
  }
  for (auto d : clock_.Sleeps()) EXPECT_LE(d, seconds(4));
  EXPECT_GE(clock_.Sleeps().back(), seconds(2));
}

TEST_F(WatcherTest, ForbiddenWatchRelistsAfterBackoff) {
  server_->Script(kList, Ok(ListBody({}, "10")));
  server_->Script(kWatch, Status(403));
  server_->Script(kList, Ok(ListBody({}, "12")));
  watcher_->Step();
  EXPECT_EQ(watcher_->Step(), WatchState::kBackoff);
  EXPECT_EQ(watcher_->Step(), WatchState::kList);
  EXPECT_EQ(watcher_->Step(), WatchState::kWatch);
  EXPECT_EQ(watcher_->resource_version(), "12");
}

TEST_F(WatcherTest, TokenRotationRereadsTheFileOn401AndRetries) {
  std::string dir = ::testing::TempDir() + "watch_token_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  token_file_ = dir + "/token";
  std::ofstream(token_file_) << "old-token\n";
  Rebuild();
  server_->RequireToken("old-token");
  server_->Script(kList, Ok(ListBody({PodObject("ns", "p1", "5")}, "10")));
  EXPECT_EQ(watcher_->Step(), WatchState::kWatch);
  // Rotation: the file is rewritten and the server stops accepting the old token at once.
  std::ofstream(token_file_) << "new-token\n";
  server_->RequireToken("new-token");
  server_->Script(kWatch, Stream({Event("ADDED", PodObject("ns", "p2", "11"))}));
  EXPECT_EQ(watcher_->Step(), WatchState::kWatch);
  EXPECT_EQ(store_->PodCount(), 2u);
  EXPECT_EQ(watcher_->counters().errors, 0u);
  auto all = server_->Requests();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[1].status, 401);
  EXPECT_EQ(all[1].authorization, "Bearer old-token");
  EXPECT_EQ(all[2].status, 200);
  EXPECT_EQ(all[2].authorization, "Bearer new-token");
  std::filesystem::remove_all(dir);
}

TEST_F(WatcherTest, PagedListWithContinueSwapsOnceAtTheEnd) {
  WatchOptions options;
  options.page_size = 2;
  Rebuild(options);
  store_->ReplacePods({});
  const std::string token = "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTB9+/=";
  server_->Script(kList, Ok(ListBody({PodObject("ns", "p1", "5"), PodObject("ns", "p2", "6")}, "30", token)));
  server_->Script(kList, Ok(ListBody({PodObject("ns", "p3", "7")}, "30")));
  uint64_t generation = store_->Generation();
  EXPECT_EQ(watcher_->Step(), WatchState::kWatch);
  EXPECT_EQ(store_->Generation(), generation + 1);
  EXPECT_EQ(store_->PodCount(), 3u);
  auto lists = server_->Requests(kList);
  ASSERT_EQ(lists.size(), 2u);
  EXPECT_EQ(lists[0].params["limit"], "2");
  EXPECT_EQ(lists[0].params.count("continue"), 0u);
  EXPECT_EQ(lists[1].params["continue"], token);
  EXPECT_EQ(watcher_->counters().list_pages, 2u);
  EXPECT_EQ(watcher_->resource_version(), "30");
}

TEST_F(WatcherTest, ExpiredContinueTokenRestartsTheList) {
  WatchOptions options;
  options.page_size = 1;
  Rebuild(options);
  server_->Script(kList, Ok(ListBody({PodObject("ns", "old", "5")}, "30", "c1")));
  server_->Script(kList, Status(410));
  server_->Script(kList, Ok(ListBody({PodObject("ns", "p1", "41")}, "40", "c2")));
  server_->Script(kList, Ok(ListBody({PodObject("ns", "p2", "42")}, "40")));
  EXPECT_EQ(watcher_->Step(), WatchState::kWatch);
  EXPECT_EQ(PodVersions(*store_), (std::map<std::string, std::string>{{"ns/p1", "41"}, {"ns/p2", "42"}}));
  EXPECT_EQ(server_->Requests(kList)[2].params.count("continue"), 0u);
  EXPECT_EQ(watcher_->counters().gone, 1u);
}

TEST_F(WatcherTest, UndecodableObjectIsSkippedOthersApplied) {
  nlohmann::json nameless = PodObject("ns", "x", "11");
  nameless["metadata"].erase("name");
  server_->Script(kList, Ok(ListBody({PodObject("ns", "p1", "5"), nameless}, "10")));
  server_->Script(kWatch, Stream({Event("ADDED", nameless) + Event("ADDED", PodObject("ns", "p2", "12"))}));
  watcher_->Step();
  EXPECT_EQ(store_->PodCount(), 1u);
  EXPECT_EQ(watcher_->Step(), WatchState::kWatch);
  EXPECT_EQ(store_->PodCount(), 2u);
  EXPECT_EQ(watcher_->counters().errors, 2u);
  EXPECT_EQ(watcher_->resource_version(), "12");
}

TEST_F(WatcherTest, GarbageLineBacksOffAndRewatches) {
  server_->Script(kList, Ok(ListBody({}, "10")));
  server_->Script(kWatch, Stream({Event("ADDED", PodObject("ns", "p1", "11")) + "this is not json\n"}));
  watcher_->Step();
  EXPECT_EQ(watcher_->Step(), WatchState::kBackoff);
  EXPECT_EQ(store_->PodCount(), 1u);
  EXPECT_EQ(watcher_->Step(), WatchState::kWatch);
}

TEST_F(WatcherTest, EmptyStreamsDoNotSpin) {
  server_->Script(kList, Ok(ListBody({}, "10")));
  server_->Script(kWatch, Stream({}));
  server_->Script(kWatch, Stream({}));
  watcher_->Step();
  EXPECT_EQ(watcher_->Step(), WatchState::kBackoff);
  watcher_->Step();
  EXPECT_EQ(watcher_->Step(), WatchState::kBackoff);
  EXPECT_EQ(watcher_->counters().errors, 0u);
}

TEST_F(WatcherTest, StopCancelsAStreamInProgress) {
  server_->Script(kList, Ok(ListBody({PodObject("ns", "p1", "5")}, "10")));
  Scripted hang = Stream({Event("ADDED", PodObject("ns", "p2", "11"))});
  hang.hang = true;
  server_->Script(kWatch, hang);
  // Real clock: Run() really blocks in the stream until Stop().
  kube::KubeConfig config;
  config.server = server_->url();
  auto api = std::move(kube::HttpKubeApi::Create(config)).value();
  model::Store store;
  auto watcher = NewPodWatcher(*api, store);
  std::thread runner([&] { watcher->Run(); });
  for (int i = 0; i < 500 && store.PodCount() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(store.PodCount(), 2u);
  auto start = std::chrono::steady_clock::now();
  watcher->Stop();
  runner.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(3));
  EXPECT_EQ(watcher->state(), WatchState::kStopped);
}

TEST_F(WatcherTest, ServiceWatcherFillsServices) {
  nlohmann::json svc = {{"metadata", {{"namespace", "shop"}, {"name", "cache-a"}, {"resourceVersion", "3"},
                                      {"annotations", {{"memha.io/backup-pool", "cache-b"}}}}},
                        {"spec", {{"selector", {{"app", "cache-a"}}},
                                  {"ports", {{{"name", "mc"}, {"port", 11211}, {"targetPort", "memcache"}}}}}}};
  server_->Script("GET /api/v1/services", Ok(ListBody({svc}, "10")));
  model::Store store;
  auto watcher = NewServiceWatcher(*api_, store, {}, clock_);
  EXPECT_EQ(watcher->Step(), WatchState::kWatch);
  store.Read([](const model::StoreView& v) {
    ASSERT_EQ(v.services.count("shop/cache-a"), 1u);
    const auto& s = v.services.at("shop/cache-a");
    EXPECT_EQ(s.meta.annotations.at("memha.io/backup-pool"), "cache-b");
    ASSERT_EQ(s.ports.size(), 1u);
    EXPECT_EQ(s.ports[0].target_port_name, "memcache");
  });
}

}  // namespace
}  // namespace memha::watch
