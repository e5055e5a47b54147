// memha-controller's command line: its own flags, the webhook's (one shared table kind), and the errors a user
// sees for a bad one.
#include "controller/app/flags.h"

#include <gtest/gtest.h>

namespace memha::app {
namespace {

using namespace std::chrono_literals;

TEST(ControllerFlags, ParsesBothFormsAndTheWebhooksFlags) {
  auto f = ParseFlags({"--namespace=ops", "--lease-duration", "20s", "--http-port=9090", "--resync-s", "30",
                       "--push-timeout=500ms", "--sidecar-admin-port=12000", "--webhook-port", "0",
                       "--sidecar-image=r/memha:1", "--log-level=debug"});
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f.value().ns, "ops");
  EXPECT_EQ(f.value().lease_duration, 20s);
  EXPECT_EQ(f.value().admin_port, 9090);
  EXPECT_EQ(f.value().resync, 30s);
  EXPECT_EQ(f.value().push_timeout, 500ms);
  // One value for where the controller pushes and what the webhook injects.
  EXPECT_EQ(f.value().sidecar_admin_port, 12000);
  EXPECT_EQ(f.value().webhook.inject.admin_port, 12000);
  EXPECT_FALSE(f.value().webhook.enabled);
  EXPECT_EQ(f.value().webhook.inject.image, "r/memha:1");
  EXPECT_EQ(f.value().log_level, log::Level::kDebug);
}

TEST(ControllerFlags, ABadFlagIsOneLineNamingIt) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"--nope=1"}, "unknown flag --nope"},
      {{"--resync-s=0"}, "--resync-s: expected an integer in [1, 86400], got \"0\""},
      {{"--admin-port", "http"}, "--admin-port: expected an integer in [1, 65535]"},
      {{"--webhook-port=70000"}, "--webhook-port: expected an integer in [0, 65535]"},
      {{"--sidecar-admin-port=0"}, "--sidecar-admin-port: expected an integer in [1, 65535]"},
      {{"--lease-duration=soon"}, "--lease-duration: expected a positive duration"},
      {{"--namespace"}, "--namespace: missing value"},
      {{"--webhook-port"}, "--webhook-port: missing value"},
      {{"--renew-deadline=20s"}, "--renew-deadline must be shorter than --lease-duration"},
      {{"stray"}, "unexpected argument \"stray\""},
  };
  for (const auto& [args, want] : bad) {
    auto f = ParseFlags(args);
    ASSERT_FALSE(f.ok()) << args[0];
    EXPECT_NE(f.status().message().find(want), std::string::npos) << f.status().message();
    EXPECT_EQ(f.status().message().find('\n'), std::string::npos) << f.status().message();
  }
}

TEST(ControllerFlags, Refill) {
  auto defaults = ParseFlags({});
  ASSERT_TRUE(defaults.ok());
  EXPECT_TRUE(defaults.value().refill.enabled);
  EXPECT_EQ(defaults.value().refill.limits.keys_per_second, 20000);
  EXPECT_EQ(defaults.value().refill.limits.bytes_per_second, 32 << 20);
  EXPECT_EQ(defaults.value().refill.probe_interval, 10s);
  EXPECT_EQ(defaults.value().refill.limits.verify_delay, 1s);
  EXPECT_TRUE(defaults.value().refill.handover);
  EXPECT_EQ(defaults.value().refill.handover_delay, 3s);
  auto f = ParseFlags({"--refill=off", "--refill-keys-per-second=0", "--refill-bytes-per-second", "1048576",
                       "--refill-probe-interval=2s", "--refill-verify-delay=250ms", "--refill-handover=off",
                       "--refill-handover-delay=500ms"});
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_FALSE(f.value().refill.enabled);
  EXPECT_EQ(f.value().refill.limits.keys_per_second, 0);  // unlimited
  EXPECT_EQ(f.value().refill.limits.bytes_per_second, 1 << 20);
  EXPECT_EQ(f.value().refill.probe_interval, 2s);
  EXPECT_EQ(f.value().refill.limits.verify_delay, 250ms);
  EXPECT_FALSE(f.value().refill.handover);
  EXPECT_EQ(f.value().refill.handover_delay, 500ms);
  for (const auto& [arg, want] : std::vector<std::pair<std::string, std::string>>{
           {"--refill=maybe", "--refill: expected on or off"},
           {"--refill-handover=yes", "--refill-handover: expected on or off"},
           {"--refill-keys-per-second=-1", "--refill-keys-per-second: expected an integer"},
           {"--refill-probe-interval=0s", "--refill-probe-interval: expected a positive duration"}}) {
    auto bad = ParseFlags({arg});
    ASSERT_FALSE(bad.ok()) << arg;
    EXPECT_NE(bad.status().message().find(want), std::string::npos) << bad.status().message();
  }
}

TEST(ControllerFlags, HelpListsBothTables) {
  const std::string help = FlagsHelp();
  EXPECT_NE(help.find("  --resync-s N  "), std::string::npos) << help;
  EXPECT_NE(help.find("  --webhook-port N  "), std::string::npos) << help;
  EXPECT_NE(help.find("  --version  "), std::string::npos) << help;
}

TEST(ControllerFlags, VersionNeedsNoOtherFlag) {
  auto f = ParseFlags({"--version"});
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_TRUE(f.value().version);
  EXPECT_FALSE(ParseFlags({}).value().version);
}

}  // namespace
}  // namespace memha::app
