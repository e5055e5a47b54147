#include "controller/admin/server.h"

#include <httplib.h>

#include <sys/socket.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "common/log.h"

namespace memha::admin {
namespace {

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

void Reply(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump() + "\n", "application/json");
}

}  // namespace

AdminServer::AdminServer(Options options, push::TokenFile* token, AdminHooks hooks)
    : options_(std::move(options)), token_(token), hooks_(std::move(hooks)),
      server_(std::make_unique<httplib::Server>()) {}

AdminServer::~AdminServer() { Stop(); }

Status AdminServer::Start() {
  httplib::Server& s = *server_;
  s.set_read_timeout(5, 0);
  s.set_write_timeout(5, 0);
  s.set_payload_max_length(64 * 1024);
  // httplib's default also sets SO_REUSEPORT, which would let a second process share the port silently.
  s.set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });

  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });

  s.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    if (!hooks_.synced()) {
      res.status = 503;
      res.set_content("store not synced yet\n", "text/plain");
      return;
    }
    res.set_content("ready\n", "text/plain");
  });

  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(hooks_.metrics(), "text/plain; version=0.0.4");
  });

  s.Get("/v1/topology", [this](const httplib::Request& req, httplib::Response& res) {
    std::string token = token_ != nullptr ? token_->Get() : "";
    if (token.empty()) return Reply(res, 403, {{"error", "topology reads are disabled: no --token-file"}});
    if (!ConstantTimeEquals(req.get_header_value("Authorization"), "Bearer " + token)) {
      return Reply(res, 401, {{"error", "missing or wrong bearer token"}});
    }
    std::string pod = req.get_param_value("pod");
    if (pod.empty() || pod.find('/') == std::string::npos) {
      return Reply(res, 400, {{"error", "query parameter pod=<namespace>/<name> required"}});
    }
    if (!hooks_.synced()) {
      res.set_header("Retry-After", "1");
      return Reply(res, 503, {{"error", "controller not synced yet"}});
    }
    std::optional<std::string> json = hooks_.topology(pod);
    if (!json) return Reply(res, 404, {{"error", "no topology for pod " + pod}});
    res.set_content(*json + "\n", "application/json");
  });

  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    Reply(res, 500, {{"error", "internal error"}});
  });

  if (options_.port == 0) {
    bound_port_ = s.bind_to_any_port(options_.address);
  } else {
    bound_port_ = s.bind_to_port(options_.address, options_.port) ? options_.port : -1;
  }
  if (bound_port_ <= 0) {
    return Status::Unavailable("admin: cannot listen on " + options_.address + ":" + std::to_string(options_.port));
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // A stop() before the accept loop runs would be lost (httplib 0.11): wait until it runs.
  for (int i = 0; i < 5000 && !server_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  MEMHA_LOG(kInfo, "admin", "listening on " << options_.address << ":" << bound_port_);
  return Status::Ok();
}

void AdminServer::Stop() {
  if (thread_.joinable()) {
    server_->stop();
    thread_.join();
  }
}

}  // namespace memha::admin
