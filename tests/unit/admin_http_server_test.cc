// The admin HTTP server on loopback: replies, the head-only decisions (a refused body is never read), the request
// deadline, the connection cap (eviction of the oldest unfinished request, fast refusal when nothing can go),
// Expect: 100-continue, and blocking handlers that never hold up the others.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>

#include "sidecar/admin/http_server.h"

namespace memha::http {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class Counting : public ServerObserver {
 public:
  void OnOpen() override { ++opened; }
  void OnClose() override { ++closed; }
  void OnRefused() override { ++refused; }
  void OnEvicted() override { ++evicted; }
  void OnTimeout() override { ++timeouts; }
  std::atomic<int> opened{0}, closed{0}, refused{0}, evicted{0}, timeouts{0};
};

// A blocking client socket with a receive timeout.
class Conn {
 public:
  explicit Conn(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    timeval tv{2, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Conn() { ::close(fd_); }
  void Send(const std::string& s) { ASSERT_EQ(::send(fd_, s.data(), s.size(), MSG_NOSIGNAL), ssize_t(s.size())); }
  // Everything until the server closes (or the timeout).
  std::string ReadAll() {
    std::string out;
    char buf[4096];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return out;
      out.append(buf, static_cast<size_t>(n));
    }
  }
  std::string ReadSome() {
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

int StatusOf(const std::string& reply) {
  if (reply.rfind("HTTP/1.1 ", 0) != 0) return 0;
  return std::stoi(reply.substr(9, 3));
}

std::string BodyOf(const std::string& reply) {
  size_t p = reply.find("\r\n\r\n");
  return p == std::string::npos ? "" : reply.substr(p + 4);
}

struct Fixture : ::testing::Test {
  void StartServer(ServerLimits limits = {}) {
    server = std::make_unique<Server>("test", limits, [this](const RequestHead& h) { return router(h); }, &counts);
    ASSERT_TRUE(server->Start("127.0.0.1", 0).ok());
  }
  void TearDown() override {
    if (server) server->Stop();
  }
  Router router = [](const RequestHead& h) {
    if (h.path == "/hello") return Route::Handle([](const Request&) { return Response::Text(200, "hello"); });
    if (h.path == "/echo") {
      return Route::Handle([](const Request& r) { return Response::Text(200, std::to_string(r.body.size())); }, 1024);
    }
    if (h.path == "/secret") {
      const std::string* auth = h.Header("authorization");
      if (auth == nullptr || *auth != "Bearer ok") return Route::Reply(Response::Text(401, "no"));
      return Route::Handle([](const Request& r) { return Response::Text(200, r.body); }, 16);
    }
    return Route::Reply(Response::Text(404, "nope"));
  };
  Counting counts;
  std::unique_ptr<Server> server;
};

TEST_F(Fixture, AnswersAndCloses) {
  StartServer();
  Conn c(server->port());
  c.Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string reply = c.ReadAll();
  EXPECT_EQ(StatusOf(reply), 200);
  EXPECT_NE(reply.find("Connection: close\r\n"), std::string::npos);
  EXPECT_NE(reply.find("Content-Length: 6\r\n"), std::string::npos);
  EXPECT_EQ(BodyOf(reply), "hello\n");
  Conn other(server->port());
  other.Send("GET /missing HTTP/1.1\r\n\r\n");
  EXPECT_EQ(StatusOf(other.ReadAll()), 404);
  Conn bad(server->port());
  bad.Send("NOT HTTP\r\n\r\n");
  EXPECT_EQ(StatusOf(bad.ReadAll()), 400);
}

TEST_F(Fixture, BodyTooLargeIsRefusedFromTheHead) {
  StartServer();
  Conn c(server->port());
  c.Send("PUT /echo HTTP/1.1\r\nContent-Length: 1025\r\n\r\n");  // no body byte sent
  auto t0 = Clock::now();
  std::string reply = c.ReadAll();
  EXPECT_EQ(StatusOf(reply), 413) << reply;
  EXPECT_LT(Clock::now() - t0, 1s);
  Conn get(server->port());
  get.Send("GET /hello HTTP/1.1\r\nContent-Length: 1\r\n\r\nx");
  EXPECT_EQ(StatusOf(get.ReadAll()), 413) << "a route without a body refuses one";
  Conn ok(server->port());
  ok.Send("PUT /echo HTTP/1.1\r\nContent-Length: 1024\r\n\r\n" + std::string(1024, 'b'));
  EXPECT_EQ(BodyOf(ok.ReadAll()), "1024\n");
}

TEST_F(Fixture, RouteDecidesOnTheHeadBeforeTheBody) {
  StartServer();
  Conn c(server->port());
  c.Send("PUT /secret HTTP/1.1\r\nContent-Length: 10\r\n\r\n");
  EXPECT_EQ(StatusOf(c.ReadAll()), 401);
  Conn big(server->port());
  big.Send("PUT /secret HTTP/1.1\r\nAuthorization: Bearer ok\r\nContent-Length: 17\r\n\r\n");
  EXPECT_EQ(StatusOf(big.ReadAll()), 413);
  Conn good(server->port());
  good.Send("PUT /secret HTTP/1.1\r\nAuthorization: Bearer ok\r\nContent-Length: 4\r\n\r\nab");
  std::this_thread::sleep_for(50ms);  // the body in two pieces
  good.Send("cdEXTRA");               // bytes past Content-Length are not part of the request
  EXPECT_EQ(BodyOf(good.ReadAll()), "abcd\n");
}

TEST_F(Fixture, ExpectContinue) {
  StartServer();
  Conn c(server->port());
  c.Send("PUT /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  EXPECT_EQ(c.ReadSome(), "HTTP/1.1 100 Continue\r\n\r\n");
  c.Send("abc");
  EXPECT_EQ(BodyOf(c.ReadAll()), "3\n");
  Conn refused(server->port());
  refused.Send("PUT /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n");
  EXPECT_EQ(StatusOf(refused.ReadAll()), 413) << "no 100 Continue for a body that will not be read";
}

TEST_F(Fixture, SlowRequestTimesOut) {
  ServerLimits limits;
  limits.request_timeout = 300ms;
  StartServer(limits);
  Conn c(server->port());
  auto t0 = Clock::now();
  for (int i = 0; i < 5; ++i) {  // a byte every 100 ms keeps a per-read timeout happy, not the deadline
    ssize_t n = ::send(c.fd(), &"GET /"[i], 1, MSG_NOSIGNAL);  // fails once the server has given up
    (void)n;
    std::this_thread::sleep_for(100ms);
  }
  std::string reply = c.ReadAll();
  EXPECT_EQ(StatusOf(reply), 408) << reply;
  EXPECT_LT(Clock::now() - t0, 1500ms);
  EXPECT_EQ(counts.timeouts.load(), 1);
}

TEST_F(Fixture, FullServerEvictsTheOldestUnfinishedRequest) {
  ServerLimits limits;
  limits.max_connections = 3;
  StartServer(limits);
  Conn a(server->port()), b(server->port()), c(server->port());
  a.Send("GET /hel");
  b.Send("GET /hel");
  c.Send("GET /hel");
  std::this_thread::sleep_for(100ms);
  Conn d(server->port());
  d.Send("GET /hello HTTP/1.1\r\n\r\n");
  EXPECT_EQ(StatusOf(d.ReadAll()), 200);
  EXPECT_EQ(counts.evicted.load(), 1);
  EXPECT_EQ(StatusOf(a.ReadAll()), 503) << "the oldest goes";
  b.Send("lo HTTP/1.1\r\n\r\n");
  EXPECT_EQ(StatusOf(b.ReadAll()), 200) << "the others stay";
}

TEST_F(Fixture, BlockingHandlersRunAsideAndAFullServerRefusesFast) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  router = [&](const RequestHead& h) {
    if (h.path == "/slow") {
      return Route::Handle(
          [&](const Request&) {
            std::unique_lock lock(mu);
            cv.wait(lock, [&] { return release; });
            return Response::Text(200, "slow done");
          },
          0, /*blocking=*/true);
    }
    return Route::Handle([](const Request&) { return Response::Text(200, "fast"); });
  };
  ServerLimits limits;
  limits.max_connections = 1;
  StartServer(limits);
  Conn slow(server->port());
  slow.Send("GET /slow HTTP/1.1\r\n\r\n");
  std::this_thread::sleep_for(100ms);
  // The only slot is busy with a request being handled, which cannot be evicted: a newcomer gets 503 at once.
  Conn extra(server->port());
  auto t0 = Clock::now();
  EXPECT_EQ(StatusOf(extra.ReadAll()), 503);
  EXPECT_LT(Clock::now() - t0, 500ms);
  EXPECT_EQ(counts.refused.load(), 1);
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  EXPECT_EQ(BodyOf(slow.ReadAll()), "slow done\n");
}

TEST_F(Fixture, BlockingHandlerDoesNotDelayOthers) {
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  router = [open](const RequestHead& h) {
    if (h.path == "/slow") {
      return Route::Handle([open](const Request&) { open.wait(); return Response::Text(200, "slow"); }, 0, true);
    }
    return Route::Handle([](const Request&) { return Response::Text(200, "fast"); });
  };
  StartServer();
  Conn slow(server->port());
  slow.Send("GET /slow HTTP/1.1\r\n\r\n");
  std::this_thread::sleep_for(50ms);
  auto t0 = Clock::now();
  Conn fast(server->port());
  fast.Send("GET /fast HTTP/1.1\r\n\r\n");
  EXPECT_EQ(BodyOf(fast.ReadAll()), "fast\n");
  EXPECT_LT(Clock::now() - t0, 500ms);
  gate.set_value();
  EXPECT_EQ(BodyOf(slow.ReadAll()), "slow\n");
}

TEST_F(Fixture, StopClosesOpenConnections) {
  StartServer();
  Conn idle(server->port());
  idle.Send("GET /hel");
  std::this_thread::sleep_for(50ms);
  server->Stop();
  EXPECT_EQ(idle.ReadAll(), "");
  EXPECT_EQ(counts.opened.load(), 1);
}

TEST(HttpServer, BindFailureIsReported) {
  Server a("a", {}, [](const RequestHead&) { return Route::Reply(Response::Text(200, "")); });
  ASSERT_TRUE(a.Start("127.0.0.1", 0).ok());
  Server b("b", {}, [](const RequestHead&) { return Route::Reply(Response::Text(200, "")); });
  Status s = b.Start("127.0.0.1", static_cast<uint16_t>(a.port()));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("cannot listen"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace memha::http
