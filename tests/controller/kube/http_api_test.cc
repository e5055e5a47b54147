#include "controller/kube/http_api.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/controller/kube/fake_api_server.h"

namespace memha::kube {
namespace {

using memha::testing::FakeApiServer;
using memha::testing::Scripted;

std::unique_ptr<HttpKubeApi> Connect(const KubeConfig& config, Clock& clock = RealClock::Instance(),
                                     HttpOptions options = {}) {
  auto api = HttpKubeApi::Create(config, options, clock);
  EXPECT_TRUE(api.ok()) << api.status().message();
  return std::move(api).value();
}

Scripted Body(int status, std::string body, std::multimap<std::string, std::string> headers = {}) {
  Scripted s;
  s.status = status;
  s.body = std::move(body);
  s.headers = std::move(headers);
  return s;
}

TEST(ServerUrl, Parses) {
  auto u = ParseServerUrl("https://10.96.0.1:443");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u.value().https);
  EXPECT_EQ(u.value().host, "10.96.0.1");
  EXPECT_EQ(u.value().port, 443);
  u = ParseServerUrl("http://[::1]:8080/k8s/clusters/c-1/");
  ASSERT_TRUE(u.ok());
  EXPECT_FALSE(u.value().https);
  EXPECT_EQ(u.value().host, "::1");
  EXPECT_EQ(u.value().port, 8080);
  EXPECT_EQ(u.value().prefix, "/k8s/clusters/c-1");
  EXPECT_EQ(ParseServerUrl("https://kube.example").value().port, 443);
  EXPECT_FALSE(ParseServerUrl("kube.example:443").ok());
  EXPECT_FALSE(ParseServerUrl("https://h:99999").ok());
  EXPECT_FALSE(ParseServerUrl("https://:1").ok());
}

TEST(HttpKubeApi, RequestSendsMethodBodyTokenAndGivesStatusAndHeaders) {
  FakeApiServer server;
  server.Script("POST /api/v1/namespaces/n/events", Body(201, R"({"ok":true})", {{"X-Thing", "v"}}));
  KubeConfig config;
  config.server = server.url();
  config.token = "static";
  auto api = Connect(config);
  auto r = api->Request("POST", "/api/v1/namespaces/n/events", R"({"a":1})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r.value().status, 201);
  EXPECT_EQ(r.value().body, R"({"ok":true})");
  EXPECT_EQ(r.value().headers.at("x-thing"), "v");
  auto rec = server.Requests()[0];
  EXPECT_EQ(rec.authorization, "Bearer static");
  EXPECT_EQ(rec.body, R"({"a":1})");
  EXPECT_EQ(rec.content_type, "application/json");
  // Any HTTP answer is an ok Result; 4xx too.
  auto missing = api->Request("GET", "/api/v1/namespaces/n/pods/x");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing.value().status, 599);
}

TEST(HttpKubeApi, ServerPathPrefixIsKept) {
  FakeApiServer server;
  server.Script("GET /prefix/api/v1/pods", Body(200, "{}"));
  KubeConfig config;
  config.server = server.url() + "/prefix/";
  auto r = Connect(config)->Request("GET", "/api/v1/pods?limit=1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().status, 200);
  EXPECT_EQ(server.Requests()[0].params.at("limit"), "1");
}

TEST(HttpKubeApi, TransportErrorIsNotOk) {
  int port;
  { FakeApiServer gone; port = gone.port(); }
  KubeConfig config;
  config.server = "http://127.0.0.1:" + std::to_string(port);
  auto api = Connect(config);
  EXPECT_FALSE(api->Request("GET", "/api/v1/pods").ok());
  EXPECT_FALSE(api->Stream("/api/v1/pods?watch=1", [](std::string_view) { return true; }).ok());
}

class TokenFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "token_test_" + std::to_string(::getpid());
    std::filesystem::create_directories(dir_);
    Write("first");
    config_.server = server_.url();
    config_.token_file = dir_ + "/token";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& t) { std::ofstream(dir_ + "/token") << t << "\n"; }
  std::string dir_;
  FakeApiServer server_;
  KubeConfig config_;
  FakeClock clock_;
};

TEST_F(TokenFileTest, RereadOn401ThenRetriedOnce) {
  auto api = Connect(config_, clock_);
  server_.RequireToken("first");
  server_.Script("GET /x", Body(200, "a"));
  EXPECT_EQ(api->Request("GET", "/x").value().status, 200);
  Write("second");
  server_.RequireToken("second");
  server_.Script("GET /x", Body(200, "b"));
  auto r = api->Request("GET", "/x");
  EXPECT_EQ(r.value().status, 200);
  EXPECT_EQ(r.value().body, "b");
  auto reqs = server_.Requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[1].status, 401);
  EXPECT_EQ(reqs[2].authorization, "Bearer second");
  // Still wrong after the re-read: the 401 is returned after exactly one retry.
  server_.RequireToken("third");
  EXPECT_EQ(api->Request("GET", "/x").value().status, 401);
  EXPECT_EQ(server_.Requests().size(), 5u);
}

TEST_F(TokenFileTest, RereadEveryMinuteWithoutA401) {
  auto api = Connect(config_, clock_);
  server_.Script("GET /x", Body(200, ""));
  server_.Script("GET /x", Body(200, ""));
  server_.Script("GET /x", Body(200, ""));
  api->Request("GET", "/x");
  Write("rotated");
  clock_.Advance(std::chrono::seconds(30));
  api->Request("GET", "/x");
  clock_.Advance(std::chrono::seconds(31));
  api->Request("GET", "/x");
  auto reqs = server_.Requests();
  EXPECT_EQ(reqs[0].authorization, "Bearer first");
  EXPECT_EQ(reqs[1].authorization, "Bearer first");
  EXPECT_EQ(reqs[2].authorization, "Bearer rotated");
}

TEST_F(TokenFileTest, StreamRetriesOnceAfter401) {
  auto api = Connect(config_, clock_);
  server_.Script("GET /x", Body(200, ""));
  api->Request("GET", "/x");  // the token "first" is cached now
  Write("new");
  server_.RequireToken("new");
  Scripted s;
  s.chunks = {"a\n", "b\n"};
  server_.Script("WATCH /w", s);
  std::string got;
  auto r = api->Stream("/w?watch=1", [&](std::string_view c) {
    got += c;
    return true;
  });
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r.value().status, 200);
  EXPECT_EQ(got, "a\nb\n");
  auto reqs = server_.Requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[1].status, 401);
  EXPECT_EQ(reqs[2].authorization, "Bearer new");
}

TEST(HttpKubeApiStream, DeliversChunksAndErrorBodies) {
  FakeApiServer server;
  Scripted s;
  s.chunks = {"one", "two", "three"};
  server.Script("WATCH /w", s);
  server.Script("WATCH /w", Body(410, R"({"code":410})", {{"Retry-After", "3"}}));
  KubeConfig config;
  config.server = server.url();
  auto api = Connect(config);
  std::vector<std::string> chunks;
  auto r = api->Stream("/w?watch=1", [&](std::string_view c) {
    chunks.emplace_back(c);
    return true;
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(chunks, (std::vector<std::string>{"one", "two", "three"}));
  chunks.clear();
  r = api->Stream("/w?watch=1", [&](std::string_view c) {
    chunks.emplace_back(c);
    return true;
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().status, 410);
  EXPECT_EQ(r.value().body, R"({"code":410})");
  EXPECT_EQ(r.value().headers.at("retry-after"), "3");
  EXPECT_TRUE(chunks.empty());
}

TEST(HttpKubeApiStream, CallbackStopsTheStream) {
  FakeApiServer server;
  Scripted s;
  s.chunks = {"one", "two"};
  s.hang = true;
  server.Script("WATCH /w", s);
  KubeConfig config;
  config.server = server.url();
  auto api = Connect(config);
  int calls = 0;
  auto r = api->Stream("/w?watch=1", [&](std::string_view) { return ++calls < 2; });
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(calls, 2);
}

TEST(HttpKubeApiStream, CancelFromAnotherThreadEndsAHangingStreamAndLaterOnes) {
  FakeApiServer server;
  Scripted s;
  s.chunks = {"x"};
  s.hang = true;
  server.Script("WATCH /w", s);
  KubeConfig config;
  config.server = server.url();
  auto api = Connect(config);
  std::atomic<bool> got{false};
  Result<ApiResponse> result = Status::Internal("not run");
  std::thread t([&] {
    result = api->Stream("/w?watch=1", [&](std::string_view) {
      got = true;
      return true;
    });
  });
  while (!got) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  auto start = std::chrono::steady_clock::now();
  api->Cancel();
  t.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_FALSE(result.ok());
  EXPECT_FALSE(api->Stream("/w?watch=1", [](std::string_view) { return true; }).ok());
  // Ordinary requests still work (the Lease can be released after the watches were cancelled).
  server.Script("GET /after", Body(200, "ok"));
  EXPECT_EQ(api->Request("GET", "/after").value().status, 200);
}

TEST(HttpKubeApiStream, CancelBeforeConnectIsNotLost) {
  FakeApiServer server;
  for (int i = 0; i < 20; ++i) {
    Scripted s;
    s.hang = true;
    server.Script("WATCH /w", s);
  }
  for (int i = 0; i < 20; ++i) {
    KubeConfig config;
    config.server = server.url();
    auto api = Connect(config);
    std::thread t([&] { api->Stream("/w?watch=1", [](std::string_view) { return true; }); });
    if (i % 2) std::this_thread::sleep_for(std::chrono::microseconds(200 * i));
    api->Cancel();
    t.join();  // must not hang
  }
}

TEST(HttpKubeApi, BadTlsMaterialIsRefusedAtCreate) {
  KubeConfig config;
  config.server = "https://127.0.0.1:1";
  config.ca_pem = "not pem";
  EXPECT_FALSE(HttpKubeApi::Create(config).ok());
  config.ca_pem.clear();
  config.client_cert_pem = "x";
  config.client_key_pem = "y";
  EXPECT_FALSE(HttpKubeApi::Create(config).ok());
  config.server = "http://127.0.0.1:1";
  EXPECT_FALSE(HttpKubeApi::Create(config).ok());
}

}  // namespace
}  // namespace memha::kube
