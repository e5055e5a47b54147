#include "sidecar/admin/admin_server.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "common/log.h"
#include "sidecar/metrics/metrics.h"
#include "sidecar/proxy/proxy.h"

namespace memha {
namespace {

void Reply(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump() + "\n", "application/json");
}

}  // namespace

AdminServer::AdminServer(Options options, Proxy* proxy, Metrics* metrics, TopologyStore* store)
    : options_(std::move(options)), proxy_(proxy), metrics_(metrics), store_(store),
      server_(std::make_unique<httplib::Server>()) {}

AdminServer::~AdminServer() { Stop(); }

Status AdminServer::Start() {
  httplib::Server& s = *server_;
  s.set_payload_max_length(8 * 1024 * 1024);
  s.set_read_timeout(5, 0);
  s.set_write_timeout(5, 0);

  s.Put("/v1/topology", [this](const httplib::Request& req, httplib::Response& res) {
    if (options_.token == nullptr) {
      return Reply(res, 403, {{"error", "topology pushes are disabled: start the sidecar with --admin-token-file"}});
    }
    std::string auth = req.get_header_value("Authorization");
    if (auth.rfind("Bearer ", 0) != 0 || !options_.token->Matches(auth.substr(7))) {
      return Reply(res, 401, {{"error", "missing or wrong bearer token"}});
    }
    auto topo = ParseTopology(req.body);
    if (!topo.ok()) {
      metrics_->topology_updates(false).Increment();
      return Reply(res, 400, {{"error", topo.status().message()}});
    }
    Status st = store_->Offer(topo.value(), [this](const Topology& t) { return proxy_->PostTopology(t); });
    if (st.code() == Status::Code::kConflict) {
      metrics_->topology_updates(false).Increment();
      return Reply(res, 409, {{"error", st.message()}});
    }
    if (!st.ok()) return Reply(res, 500, {{"error", st.message()}});
    Reply(res, 200, {{"applied", true}, {"epoch", topo.value().epoch}, {"version", topo.value().version}});
  });

  s.Get("/v1/topology", [this](const httplib::Request&, httplib::Response& res) {
    auto cur = store_->Current();
    if (!cur) return Reply(res, 404, {{"error", "no topology loaded yet"}});
    res.set_content(TopologyToJson(*cur, 2) + "\n", "application/json");
  });

  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });

  s.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    if (!store_->Current()) {
      res.status = 503;
      res.set_content("no topology yet\n", "text/plain");
      return;
    }
    res.set_content("ready\n", "text/plain");
  });

  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_->Serialize(), "text/plain; version=0.0.4");
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
  MEMHA_LOG(kInfo, "admin", "listening on " << options_.address << ":" << bound_port_);
  return Status::Ok();
}

void AdminServer::Stop() {
  if (thread_.joinable()) {
    server_->stop();
    thread_.join();
  }
}

}  // namespace memha
