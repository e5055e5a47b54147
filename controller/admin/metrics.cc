#include "controller/admin/metrics.h"

#include <prometheus/gauge.h>
#include <prometheus/text_serializer.h>

namespace memha::admin {

ControllerMetrics::ControllerMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  prometheus::BuildGauge().Name("memha_build_info").Help("Always 1; the memha-controller version in its label")
      .Register(*registry_).Add({{"version", MEMHA_VERSION}}).Set(1);
  auto& pushes = prometheus::BuildCounter()
                     .Name("memha_controller_pushes_total")
                     .Help("Topology pushes to sidecars by result (ok, refused = 409, rejected = other 4xx, "
                           "error, timeout)")
                     .Register(*registry_);
  for (size_t i = 0; i < pushes_.size(); ++i) {
    pushes_[i] = &pushes.Add({{"result", std::string(push::ToString(static_cast<push::PushResult>(i)))}});
  }
  push_seconds_ = &prometheus::BuildHistogram()
                       .Name("memha_controller_push_duration_seconds")
                       .Help("Duration of one PUT /v1/topology, whatever its result")
                       .Register(*registry_)
                       .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                                        0.25, 0.5, 1, 2.5, 5});
  reconcile_seconds_ = &prometheus::BuildHistogram()
                            .Name("memha_controller_reconcile_duration_seconds")
                            .Help("Duration of one reconcile pass (store -> desired topologies -> pusher)")
                            .Register(*registry_)
                            .Add({}, prometheus::Histogram::BucketBoundaries{0.0001, 0.001, 0.005, 0.01, 0.05, 0.1,
                                                                             0.5, 1});
  auto& total = prometheus::BuildCounter()
                    .Name("memha_controller_topology_errors_total")
                    .Help("Configuration errors (bad annotations, unknown or empty pools) seen, by reason; each "
                          "distinct error counts once")
                    .Register(*registry_);
  auto& now = prometheus::BuildGauge()
                  .Name("memha_controller_topology_errors")
                  .Help("Configuration errors present in the last reconcile pass, by reason")
                  .Register(*registry_);
  for (size_t i = 0; i < errors_total_.size(); ++i) {
    std::string reason(topology::ToString(static_cast<topology::ErrorReason>(i)));
    errors_total_[i] = &total.Add({{"reason", reason}});
    errors_now_[i] = &now.Add({{"reason", reason}});
  }
}

void ControllerMetrics::OnPush(push::PushResult result, double seconds) {
  pushes_[static_cast<size_t>(result)]->Increment();
  push_seconds_->Observe(seconds);
}

void ControllerMetrics::TopologyErrorRecorded(topology::ErrorReason reason) {
  errors_total_[static_cast<size_t>(reason)]->Increment();
}

void ControllerMetrics::SetCurrentTopologyErrors(const std::vector<topology::TopologyError>& errors) {
  std::array<double, static_cast<size_t>(topology::ErrorReason::kCount)> n{};
  for (const auto& e : errors) n[static_cast<size_t>(e.reason)] += 1;
  for (size_t i = 0; i < n.size(); ++i) errors_now_[i]->Set(n[i]);
}

void ControllerMetrics::ReconcileDone(double seconds) { reconcile_seconds_->Observe(seconds); }

void ControllerMetrics::AddCounterCallback(const std::string& name, const std::string& help, Labels labels,
                                           std::function<double()> value) {
  AddCallback(name, help, prometheus::MetricType::Counter, std::move(labels), std::move(value));
}

void ControllerMetrics::AddGaugeCallback(const std::string& name, const std::string& help, Labels labels,
                                         std::function<double()> value) {
  AddCallback(name, help, prometheus::MetricType::Gauge, std::move(labels), std::move(value));
}

void ControllerMetrics::AddCallback(const std::string& name, const std::string& help, prometheus::MetricType type,
                                    Labels labels, std::function<double()> value) {
  std::lock_guard lock(mu_);
  Callback& c = callbacks_[name];
  c.help = help;
  c.type = type;
  c.samples.emplace_back(std::move(labels), std::move(value));
}

std::string ControllerMetrics::Serialize() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, c] : callbacks_) {
      prometheus::MetricFamily f;
      f.name = name;
      f.help = c.help;
      f.type = c.type;
      for (const auto& [labels, fn] : c.samples) {
        prometheus::ClientMetric m;
        for (const auto& [k, v] : labels) m.label.push_back({k, v});
        double v = fn();
        if (c.type == prometheus::MetricType::Counter) {
          m.counter.value = v;
        } else {
          m.gauge.value = v;
        }
        f.metric.push_back(std::move(m));
      }
      families.push_back(std::move(f));
    }
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace memha::admin
