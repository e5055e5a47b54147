#include "controller/admin/server.h"

#include "common/http_serving.h"

namespace memha::admin {
namespace {

using http::ReplyJson;

}  // namespace

AdminServer::AdminServer(Options options, AdminHooks hooks)
    : options_(std::move(options)), hooks_(std::move(hooks)),
      http_(std::make_unique<http::ServingThread>()) {}

AdminServer::~AdminServer() { Stop(); }

Status AdminServer::Start() {
  httplib::Server& s = http_->server();
  s.set_payload_max_length(64 * 1024);

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
    if (!hooks_.authenticate) {
      return ReplyJson(res, 403, {{"error", "topology reads are disabled"}});
    }
    std::string pod = req.get_param_value("pod");
    if (pod.empty() || pod.find('/') == std::string::npos) {
      return ReplyJson(res, 400, {{"error", "query parameter pod=<namespace>/<name> required"}});
    }
    const std::string header = req.get_header_value("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (header.compare(0, kBearer.size(), kBearer) != 0) {
      res.set_header("WWW-Authenticate", "Bearer");
      return ReplyJson(res, 401, {{"error", "a ServiceAccount token bound to the pod is required (audience memha)"}});
    }
    auto caller = hooks_.authenticate(header.substr(kBearer.size()));
    if (!caller.ok()) {
      if (caller.status().code() == Status::Code::kUnavailable) {
        res.set_header("Retry-After", "1");
        return ReplyJson(res, 503, {{"error", "the token cannot be checked now: " + caller.status().message()}});
      }
      res.set_header("WWW-Authenticate", "Bearer");
      return ReplyJson(res, 401, {{"error", caller.status().message()}});
    }
    // A pod reads its own topology only: the member addresses of another pod's pools are not its business.
    if (caller.value().pod != pod) {
      return ReplyJson(res, 403, {{"error", "the token is bound to pod " + caller.value().pod + ", not " + pod}});
    }
    if (!hooks_.synced()) {
      res.set_header("Retry-After", "1");
      return ReplyJson(res, 503, {{"error", "controller not synced yet"}});
    }
    if (hooks_.pod_uid) {
      std::string uid = hooks_.pod_uid(pod);
      if (!uid.empty() && uid != caller.value().uid) {
        return ReplyJson(res, 403, {{"error", "the token is bound to an earlier pod named " + pod}});
      }
    }
    std::optional<std::string> json = hooks_.topology(pod);
    if (!json) return ReplyJson(res, 404, {{"error", "no topology for pod " + pod}});
    res.set_content(*json + "\n", "application/json");
  });

  return http_->Start(options_.address, options_.port, "admin");
}

void AdminServer::Stop() { http_->Stop(); }

int AdminServer::port() const { return http_->port(); }

}  // namespace memha::admin
