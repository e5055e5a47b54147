#pragma once
// Serving a configured httplib::Server on a thread of its own (bind, accept loop, stop, JSON replies): the
// controller's admin server. Header-only so that memha_common itself depends on no HTTP server; only that server
// includes it, and it links cpp-httplib already. (The sidecar's admin and health ports no longer use cpp-httplib:
// its thread-per-connection pool is starved by slow clients; see sidecar/admin/http_server.h.)
#include <httplib.h>

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/log.h"
#include "common/status.h"

namespace memha::http {

inline void ReplyJson(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump() + "\n", "application/json");
}

// One httplib::Server and the thread that runs it. Set the routes on server(), then Start().
class ServingThread {
 public:
  ServingThread() : server_(std::make_unique<httplib::Server>()) {}
  ServingThread(const ServingThread&) = delete;
  ServingThread& operator=(const ServingThread&) = delete;
  ~ServingThread() { Stop(); }

  // Binds `address:port` (0: any free port), then serves on a thread; returns once the accept loop runs.
  // Also sets what both admin servers want: 5 s read/write timeouts, a JSON 500 on a handler exception, and
  // SO_REUSEADDR without httplib's default SO_REUSEPORT (which would let a second process share the port).
  Status Start(const std::string& address, uint16_t port, const char* component) {
    httplib::Server* server = server_.get();
    server->set_read_timeout(5, 0);
    server->set_write_timeout(5, 0);
    server->set_socket_options([](int sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    server->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      ReplyJson(res, 500, {{"error", "internal error"}});
    });
    bound_port_ = port == 0 ? server->bind_to_any_port(address) : (server->bind_to_port(address, port) ? port : -1);
    if (bound_port_ <= 0) {
      return Status::Unavailable(std::string(component) + ": cannot listen on " + address + ":" +
                                 std::to_string(port));
    }
    thread_ = std::thread([server] { server->listen_after_bind(); });
    // A stop() before the accept loop runs would be lost (httplib 0.11) and Stop() would wait forever.
    for (int i = 0; i < 5000 && !server->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    MEMHA_LOG(kInfo, component, "listening on " << address << ":" << bound_port_);
    return Status::Ok();
  }

  void Stop() {
    if (thread_.joinable()) {
      server_->stop();
      thread_.join();
    }
  }

  httplib::Server& server() { return *server_; }
  int port() const { return bound_port_; }

 private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int bound_port_ = 0;
};

}  // namespace memha::http
