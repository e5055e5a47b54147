#include "controller/admin/metrics.h"

#include <gtest/gtest.h>

namespace memha::admin {
namespace {

bool Has(const std::string& text, const std::string& line) { return text.find(line) != std::string::npos; }

TEST(ControllerMetrics, PushesByResultAndLatency) {
  ControllerMetrics m;
  m.OnPush(push::PushResult::kOk, 0.002);
  m.OnPush(push::PushResult::kOk, 0.004);
  m.OnPush(push::PushResult::kRefused, 0.001);
  std::string text = m.Serialize();
  EXPECT_TRUE(Has(text, "memha_controller_pushes_total{result=\"ok\"} 2")) << text;
  EXPECT_TRUE(Has(text, "memha_controller_pushes_total{result=\"refused\"} 1"));
  EXPECT_TRUE(Has(text, "memha_controller_pushes_total{result=\"timeout\"} 0"));
  EXPECT_TRUE(Has(text, "memha_controller_push_duration_seconds_count 3"));
}

TEST(ControllerMetrics, BuildInfoNamesTheVersion) {
  std::string text = ControllerMetrics().Serialize();
  EXPECT_TRUE(Has(text, std::string("memha_build_info{version=\"") + MEMHA_VERSION + "\"} 1")) << text;
}

TEST(ControllerMetrics, TopologyErrorsCountedAndCurrent) {
  ControllerMetrics m;
  m.TopologyErrorRecorded(topology::ErrorReason::kUnknownPool);
  m.SetCurrentTopologyErrors({{"Pod", "a/b", topology::ErrorReason::kUnknownPool, "x"},
                              {"Pod", "a/c", topology::ErrorReason::kUnknownPool, "y"}});
  std::string text = m.Serialize();
  EXPECT_TRUE(Has(text, "memha_controller_topology_errors_total{reason=\"UnknownPool\"} 1")) << text;
  EXPECT_TRUE(Has(text, "memha_controller_topology_errors{reason=\"UnknownPool\"} 2"));
  EXPECT_TRUE(Has(text, "memha_controller_topology_errors{reason=\"BadWarmup\"} 0"));
  m.SetCurrentTopologyErrors({});
  EXPECT_TRUE(Has(m.Serialize(), "memha_controller_topology_errors{reason=\"UnknownPool\"} 0"));
}

TEST(ControllerMetrics, CallbacksAreReadAtScrapeTime) {
  ControllerMetrics m;
  double behind = 3;
  m.AddGaugeCallback("memha_controller_sidecars_behind", "help", {}, [&] { return behind; });
  m.AddCounterCallback("memha_controller_relists_total", "help", {{"kind", "pods"}}, [] { return 4.0; });
  m.AddCounterCallback("memha_controller_relists_total", "help", {{"kind", "services"}}, [] { return 1.0; });
  std::string text = m.Serialize();
  EXPECT_TRUE(Has(text, "memha_controller_sidecars_behind 3")) << text;
  EXPECT_TRUE(Has(text, "# TYPE memha_controller_relists_total counter"));
  EXPECT_TRUE(Has(text, "memha_controller_relists_total{kind=\"pods\"} 4"));
  EXPECT_TRUE(Has(text, "memha_controller_relists_total{kind=\"services\"} 1"));
  behind = 0;
  EXPECT_TRUE(Has(m.Serialize(), "memha_controller_sidecars_behind 0"));
}

}  // namespace
}  // namespace memha::admin
