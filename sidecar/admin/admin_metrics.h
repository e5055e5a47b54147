#pragma once
// Metrics of the admin side: the two HTTP servers (connections refused, evicted, timed out; replies by code) and
// the event loop's heartbeat. A registry of its own, appended to the data plane's on /metrics.
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "sidecar/admin/http_server.h"

namespace memha {

class AdminMetrics {
 public:
  AdminMetrics();
  ~AdminMetrics();
  std::string Serialize() const;

  // The observer of the server named `server` ("admin", "health"); lives as long as this object.
  http::ServerObserver* ForServer(const std::string& server);
  void ObserveLoopLag(double seconds) { loop_lag_->Observe(seconds); }
  void SetLoopHeartbeatAge(double seconds) { heartbeat_age_->Set(seconds); }
  // A push refused before its topology was looked at (signature checks); `reason` is crypto::ToString(PushRefusal)
  // or "token".
  void PushRefused(const std::string& reason) { push_refused_->Add({{"reason", reason}}).Increment(); }
  // A signed epoch reset was applied (the sidecar held a generation from the future).
  void EpochReset() { epoch_resets_->Increment(); }

 private:
  class ServerCounters;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* connections_;
  prometheus::Family<prometheus::Gauge>* open_;
  prometheus::Family<prometheus::Counter>* responses_;
  prometheus::Histogram* loop_lag_;
  prometheus::Gauge* heartbeat_age_;
  prometheus::Family<prometheus::Counter>* push_refused_;
  prometheus::Counter* epoch_resets_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<ServerCounters>> servers_;
};

}  // namespace memha
