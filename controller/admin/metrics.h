#pragma once
// Prometheus metrics of the controller. What this module counts itself (pushes, push latency, topology errors)
// lives in a prometheus-cpp registry; what other modules count (watch restarts, relists, cache sizes, leader
// state, sidecars behind) is read from their plain counters at scrape time through registered callbacks, so
// those modules do not depend on prometheus-cpp.
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "controller/push/pusher.h"
#include "controller/topology/errors.h"

namespace memha::admin {

class ControllerMetrics : public push::PushObserver {
 public:
  using Labels = std::map<std::string, std::string>;

  ControllerMetrics();

  // push::PushObserver (worker threads).
  void OnPush(push::PushResult result, double seconds) override;

  // Reconcile: a topology error seen for the first time (counter), and the current number per reason (gauge).
  void TopologyErrorRecorded(topology::ErrorReason reason);
  void SetCurrentTopologyErrors(const std::vector<topology::TopologyError>& errors);
  void ReconcileDone(double seconds);

  // Values read at scrape time. Samples with the same name form one family (same help and type).
  void AddCounterCallback(const std::string& name, const std::string& help, Labels labels,
                          std::function<double()> value);
  void AddGaugeCallback(const std::string& name, const std::string& help, Labels labels,
                        std::function<double()> value);

  std::string Serialize() const;

 private:
  struct Callback {
    std::string help;
    prometheus::MetricType type;
    std::vector<std::pair<Labels, std::function<double()>>> samples;
  };
  void AddCallback(const std::string& name, const std::string& help, prometheus::MetricType type, Labels labels,
                   std::function<double()> value);

  std::shared_ptr<prometheus::Registry> registry_;
  std::array<prometheus::Counter*, static_cast<size_t>(push::PushResult::kCount)> pushes_{};
  prometheus::Histogram* push_seconds_;
  prometheus::Histogram* reconcile_seconds_;
  std::array<prometheus::Counter*, static_cast<size_t>(topology::ErrorReason::kCount)> errors_total_{};
  std::array<prometheus::Gauge*, static_cast<size_t>(topology::ErrorReason::kCount)> errors_now_{};
  mutable std::mutex mu_;  // callbacks_
  std::map<std::string, Callback> callbacks_;
};

}  // namespace memha::admin
