#include "sidecar/admin/admin_server.h"

#include "common/http_serving.h"
#include "sidecar/metrics/metrics.h"
#include "sidecar/proxy/proxy.h"

namespace memha {
namespace {

using http::ReplyJson;

}  // namespace

AdminServer::AdminServer(Options options, Proxy* proxy, Metrics* metrics, TopologyStore* store)
    : options_(std::move(options)), proxy_(proxy), metrics_(metrics), store_(store),
      http_(std::make_unique<http::ServingThread>()) {}

AdminServer::~AdminServer() { Stop(); }

Status AdminServer::Start() {
  httplib::Server& s = http_->server();
  s.set_payload_max_length(8 * 1024 * 1024);

  s.Put("/v1/topology", [this](const httplib::Request& req, httplib::Response& res) {
    if (options_.token == nullptr) {
      return ReplyJson(res, 403, {{"error", "topology pushes are disabled: start the sidecar with --admin-token-file"}});
    }
    std::string auth = req.get_header_value("Authorization");
    if (auth.rfind("Bearer ", 0) != 0 || !options_.token->Matches(auth.substr(7))) {
      return ReplyJson(res, 401, {{"error", "missing or wrong bearer token"}});
    }
    auto topo = ParseTopology(req.body);
    if (!topo.ok()) {
      metrics_->topology_updates(false).Increment();
      return ReplyJson(res, 400, {{"error", topo.status().message()}});
    }
    Status st = store_->Offer(topo.value(), [this](const Topology& t) { return proxy_->PostTopology(t); });
    if (st.code() == Status::Code::kConflict) {
      metrics_->topology_updates(false).Increment();
      return ReplyJson(res, 409, {{"error", st.message()}});
    }
    if (!st.ok()) return ReplyJson(res, 500, {{"error", st.message()}});
    ReplyJson(res, 200, {{"applied", true}, {"epoch", topo.value().epoch}, {"version", topo.value().version}});
  });

  s.Get("/v1/topology", [this](const httplib::Request&, httplib::Response& res) {
    auto cur = store_->Current();
    if (!cur) return ReplyJson(res, 404, {{"error", "no topology loaded yet"}});
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

  return http_->Start(options_.address, options_.port, "admin");
}

void AdminServer::Stop() { http_->Stop(); }

int AdminServer::port() const { return http_->port(); }

}  // namespace memha
