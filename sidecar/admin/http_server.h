#pragma once
// A small event-driven HTTP/1.1 server for the sidecar's admin and health ports: one libevent loop on a thread of
// its own (not the data-plane loop), so a slow or idle client costs a socket and a few KiB, never a thread.
// Limits, all enforced before any handler runs:
//  - at most `max_connections` open; when full, the oldest connection still sending its request (or lingering
//    after its reply) is closed to make room, and only if none is, the newcomer gets a 503 at once (no queue);
//  - the whole request (head and body) must arrive within `request_timeout` of the accept (slowloris);
//  - the head is at most `max_head_bytes`; the route sees the head and decides before any body byte is read
//    (token check), and a Content-Length over the route's `max_body` is answered 413 without reading the body;
//  - one request per connection (Connection: close), so nothing is parsed after a refused body.
// Handlers run on the server thread, or, if they may block (waiting for the data plane), on one worker thread.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "sidecar/admin/http_request.h"

namespace memha::http {

struct Request {
  RequestHead head;
  std::string body;
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers

  static Response Text(int status, std::string body);
  static Response Json(int status, const nlohmann::json& body);
};

// What to do with a request once its head has arrived. Either `reply` (answered now; a body is never read),
// or read a body of at most `max_body` bytes and call `handler`.
struct Route {
  std::optional<Response> reply;
  size_t max_body = 0;
  bool blocking = false;  // the handler may wait: run it on the worker thread
  std::function<Response(const Request&)> handler;

  static Route Reply(Response r) { return Route{std::move(r), 0, false, nullptr}; }
  static Route Handle(std::function<Response(const Request&)> h, size_t max_body = 0, bool blocking = false) {
    return Route{std::nullopt, max_body, blocking, std::move(h)};
  }
};
// Called on the server thread with every complete head; must not block.
using Router = std::function<Route(const RequestHead&)>;

struct ServerLimits {
  size_t max_connections = 64;
  size_t max_head_bytes = 8 * 1024;
  std::chrono::milliseconds request_timeout{5000};  // accept -> the whole request read
  std::chrono::milliseconds write_timeout{5000};    // to write the reply
  std::chrono::milliseconds linger{1000};           // after the reply, for the client to close first
};

// What a server counts; implemented by the admin metrics (and by tests).
class ServerObserver {
 public:
  virtual ~ServerObserver() = default;
  virtual void OnOpen() {}
  virtual void OnClose() {}
  virtual void OnRefused() {}   // connection cap reached, nothing to evict: 503 without reading
  virtual void OnEvicted() {}   // closed to make room for a newer connection
  virtual void OnTimeout() {}   // request not read, or reply not written, in time
  virtual void OnResponse(int /*status*/) {}
};

class Server {
 public:
  Server(std::string name, ServerLimits limits, Router router, ServerObserver* observer = nullptr);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds `address:port` (0: a free port) and serves on a thread of its own.
  Status Start(const std::string& address, uint16_t port);
  void Stop();  // closes every connection; waits for a running blocking handler
  int port() const { return port_; }

 private:
  struct Impl;
  std::string name_;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

// "OK", "Not Found", ...; "Unknown" for codes the admin servers never send.
const char* ReasonPhrase(int status);

}  // namespace memha::http
