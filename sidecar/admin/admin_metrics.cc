#include "sidecar/admin/admin_metrics.h"

#include <prometheus/text_serializer.h>

namespace memha {

class AdminMetrics::ServerCounters : public http::ServerObserver {
 public:
  ServerCounters(AdminMetrics* m, const std::string& server)
      : server_(server),
        responses_(m->responses_),
        accepted_(&m->connections_->Add({{"server", server}, {"result", "accepted"}})),
        refused_(&m->connections_->Add({{"server", server}, {"result", "refused"}})),
        evicted_(&m->connections_->Add({{"server", server}, {"result", "evicted"}})),
        timed_out_(&m->connections_->Add({{"server", server}, {"result", "timeout"}})),
        open_(&m->open_->Add({{"server", server}})) {}

  void OnOpen() override {
    accepted_->Increment();
    open_->Increment();
  }
  void OnClose() override { open_->Decrement(); }
  void OnRefused() override { refused_->Increment(); }
  void OnEvicted() override { evicted_->Increment(); }
  void OnTimeout() override { timed_out_->Increment(); }
  void OnResponse(int status) override {
    responses_->Add({{"server", server_}, {"code", std::to_string(status)}}).Increment();
  }

 private:
  std::string server_;
  prometheus::Family<prometheus::Counter>* responses_;
  prometheus::Counter *accepted_, *refused_, *evicted_, *timed_out_;
  prometheus::Gauge* open_;
};

AdminMetrics::AdminMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  using namespace prometheus;
  connections_ = &BuildCounter().Name("memha_admin_http_connections_total")
                      .Help("Connections to the admin and health HTTP servers: accepted; refused (connection cap "
                            "reached, nothing to evict); evicted (closed to make room for a newer one); timeout "
                            "(request not read or reply not written in time)")
                      .Register(*registry_);
  open_ = &BuildGauge().Name("memha_admin_http_open_connections")
               .Help("Open connections to the admin and health HTTP servers").Register(*registry_);
  responses_ = &BuildCounter().Name("memha_admin_http_responses_total")
                    .Help("Replies of the admin and health HTTP servers by status code").Register(*registry_);
  loop_lag_ = &BuildHistogram().Name("memha_event_loop_lag_seconds")
                   .Help("How late the data-plane loop's 250 ms heartbeat timer fired: the time a ready event waits")
                   .Register(*registry_)
                   .Add({}, Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5});
  heartbeat_age_ = &BuildGauge().Name("memha_event_loop_heartbeat_age_seconds")
                        .Help("Time since the data-plane loop last turned, when /metrics was read (/healthz fails "
                              "over --loop-stall-ms)")
                        .Register(*registry_).Add({});
  push_refused_ = &BuildCounter().Name("memha_push_refused_total")
                       .Help("Topology pushes refused by authentication: unsigned, bad_signature, wrong_pod (signed "
                             "for another pod), replay (not newer than the last accepted), skew (signing time outside "
                             "the window), token (missing or wrong bearer token)")
                       .Register(*registry_);
  epoch_resets_ = &BuildCounter().Name("memha_push_epoch_resets_total")
                       .Help("Signed epoch resets applied: the controller replaced a generation newer than any it "
                             "issued (lockout recovery)")
                       .Register(*registry_).Add({});
}

AdminMetrics::~AdminMetrics() = default;

http::ServerObserver* AdminMetrics::ForServer(const std::string& server) {
  std::lock_guard lock(mu_);
  auto& slot = servers_[server];
  if (!slot) slot = std::make_unique<ServerCounters>(this, server);
  return slot.get();
}

std::string AdminMetrics::Serialize() const {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry_->Collect());
}

}  // namespace memha
