#include "sidecar/admin/admin_server.h"

#include <cctype>
#include <cstdio>

#include "common/log.h"
#include "sidecar/admin/admin_metrics.h"
#include "sidecar/admin/loop_heartbeat.h"
#include "sidecar/metrics/metrics.h"
#include "sidecar/proxy/proxy.h"

namespace memha {
namespace {

using http::Response;
using http::Route;

Response MethodNotAllowed(const char* allow) {
  Response r = Response::Text(405, std::string("method not allowed; use ") + allow);
  r.headers.emplace_back("Allow", allow);
  return r;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Seconds(Clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", std::chrono::duration<double>(d).count());
  return buf;
}

}  // namespace

AdminServer::AdminServer(Options options, Proxy* proxy, Metrics* metrics, TopologyStore* store,
                         const LoopHeartbeat* heartbeat, AdminMetrics* admin_metrics)
    : options_(std::move(options)), proxy_(proxy), metrics_(metrics), store_(store), heartbeat_(heartbeat),
      admin_metrics_(admin_metrics) {}

AdminServer::~AdminServer() { Stop(); }

Status AdminServer::Start() {
  auto observer = [this](const char* name) { return admin_metrics_ ? admin_metrics_->ForServer(name) : nullptr; };
  if (options_.admin) {
    admin_ = std::make_unique<http::Server>(
        "admin", options_.limits, [this](const http::RequestHead& h) { return RouteAdmin(h); }, observer("admin"));
    if (Status s = admin_->Start(options_.admin->address, options_.admin->port); !s.ok()) return s;
  }
  if (options_.health) {
    health_ = std::make_unique<http::Server>(
        "health", options_.limits, [this](const http::RequestHead& h) { return RouteHealth(h); }, observer("health"));
    if (Status s = health_->Start(options_.health->address, options_.health->port); !s.ok()) return s;
  }
  return Status::Ok();
}

void AdminServer::Stop() {
  if (health_) health_->Stop();
  if (admin_) admin_->Stop();
}

int AdminServer::port() const { return admin_ ? admin_->port() : -1; }
int AdminServer::health_port() const { return health_ ? health_->port() : -1; }

Route AdminServer::RouteHealth(const http::RequestHead& head) {
  using Handler = Response (AdminServer::*)() const;
  Handler handler = head.path == "/healthz" ? &AdminServer::Healthz
                    : head.path == "/readyz" ? &AdminServer::Readyz
                    : head.path == "/metrics" ? &AdminServer::MetricsText
                                              : nullptr;
  if (handler == nullptr) return Route::Reply(Response::Text(404, "not found: " + head.path));
  if (head.method != "GET") return Route::Reply(MethodNotAllowed("GET"));
  return Route::Handle([this, handler](const http::Request&) { return (this->*handler)(); });
}

Route AdminServer::RouteAdmin(const http::RequestHead& head) {
  // The admin port is reachable from the cluster (pushes come from the controller): apart from the probe paths,
  // what it answers without a signature (the topology, metrics: member pod IPs) is for the pod itself only.
  // Prometheus scrapes the health port.
  if (!head.from_loopback && head.method == "GET" && (head.path == "/v1/topology" || head.path == "/metrics")) {
    return Route::Reply(Response::Json(
        403, {{"error", head.path + " on the admin port is served to the pod itself (loopback) only" +
                            std::string(options_.health ? "; metrics are on the health port" : "")}}));
  }
  if (head.path != "/v1/topology") return RouteHealth(head);
  if (head.method == "GET") {
    return Route::Handle([this](const http::Request&) {
      auto current = store_->Current();
      if (!current) return Response::Json(404, {{"error", "no topology loaded yet"}});
      Response r;
      r.content_type = "application/json";
      r.body = TopologyToJson(*current, 2) + "\n";
      return r;
    });
  }
  if (head.method != "PUT") return Route::Reply(MethodNotAllowed("GET, PUT"));
  // Decided on the head alone: no body byte is read before the signature's headers were checked.
  if (options_.verifier == nullptr) {
    return Route::Reply(
        Response::Json(403, {{"error", "topology pushes are disabled: start the sidecar with --push-public-key"}}));
  }
  {
    auto header = [&head](const char* name) -> std::optional<std::string> {
      const std::string* v = head.Header(Lower(name));
      return v ? std::optional<std::string>(*v) : std::nullopt;
    };
    if (auto refusal = options_.verifier->CheckHead(header)) {
      return Route::Reply(Refuse(*refusal, *refusal == crypto::PushRefusal::kUnsigned
                                               ? "unsigned push: this sidecar accepts only pushes signed by the controller"
                                               : "push signed for another pod"));
    }
  }
  // Applying waits for the data-plane loop: on the worker thread, so the probe paths never wait behind it.
  return Route::Handle([this](const http::Request& req) { return PutTopology(req); }, options_.max_body,
                       /*blocking=*/true);
}

Response AdminServer::Refuse(crypto::PushRefusal refusal, const std::string& why) {
  if (admin_metrics_) admin_metrics_->PushRefused(std::string(crypto::ToString(refusal)));
  // 403 for a push this pod must never take (another pod's); 401 for everything that is not proof of the controller.
  int status = refusal == crypto::PushRefusal::kWrongPod ? 403 : 401;
  return Response::Json(status, {{"error", why}, {"reason", crypto::ToString(refusal)}});
}

Response AdminServer::PutTopology(const http::Request& request) {
  bool reset = false;
  {
    auto header = [&request](const char* name) -> std::optional<std::string> {
      const std::string* v = request.head.Header(Lower(name));
      return v ? std::optional<std::string>(*v) : std::nullopt;
    };
    crypto::PushRefusal refusal{};
    auto envelope = options_.verifier->Verify(header, request.body, &refusal);
    if (!envelope.ok()) return Refuse(refusal, envelope.status().message());
    reset = envelope.value().reset;
  }
  auto topo = ParseTopology(request.body);
  if (!topo.ok()) {
    metrics_->topology_updates(false).Increment();
    return Response::Json(400, {{"error", topo.status().message()}});
  }
  // A signed reset is the controller's word that the generation held here is not one it issued (a leader that
  // never existed, a state file from another cluster): apply it whatever (epoch, version) is held.
  auto held = store_->Current();
  Status st = store_->Offer(topo.value(), [this](const Topology& t) { return proxy_->PostTopology(t); },
                            /*force=*/reset);
  if (st.code() == Status::Code::kConflict) {
    metrics_->topology_updates(false).Increment();
    nlohmann::json body = {{"error", st.message()}};
    if (held) {
      body["held_epoch"] = held->epoch;
      body["held_version"] = held->version;
    }
    return Response::Json(409, body);
  }
  if (st.ok() && reset && held && held->NewerThan(topo.value())) {
    MEMHA_LOG(kWarn, "admin", "signed epoch reset applied: held epoch=" << held->epoch << " version=" << held->version
                                                                         << ", now epoch=" << topo.value().epoch
                                                                         << " version=" << topo.value().version);
    if (admin_metrics_) admin_metrics_->EpochReset();
  }
  if (!st.ok()) return Response::Json(500, {{"error", st.message()}});
  return Response::Json(200, {{"applied", true}, {"epoch", topo.value().epoch}, {"version", topo.value().version}});
}

std::optional<std::string> AdminServer::LoopStalled() const {
  if (heartbeat_ == nullptr) return std::nullopt;
  Clock::duration age = heartbeat_->Age();
  if (age <= options_.loop_stall_limit) return std::nullopt;
  return "event loop stalled: it has not turned for " + Seconds(age) + " (limit " +
         Seconds(options_.loop_stall_limit) + ")";
}

Response AdminServer::Healthz() const {
  if (auto stalled = LoopStalled()) return Response::Text(503, *stalled);
  return Response::Text(200, "ok");
}

Response AdminServer::Readyz() const {
  if (auto stalled = LoopStalled()) return Response::Text(503, *stalled);
  if (!store_->Current()) return Response::Text(503, "no topology yet");
  return Response::Text(200, "ready");
}

Response AdminServer::MetricsText() const {
  Response r;
  r.content_type = "text/plain; version=0.0.4";
  if (admin_metrics_ && heartbeat_) {
    admin_metrics_->SetLoopHeartbeatAge(std::chrono::duration<double>(heartbeat_->Age()).count());
  }
  r.body = metrics_->Serialize();
  if (admin_metrics_) r.body += admin_metrics_->Serialize();
  return r;
}

}  // namespace memha
