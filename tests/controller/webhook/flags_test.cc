#include "controller/webhook/flags.h"

#include <gtest/gtest.h>

namespace memha::webhook {
namespace {

TEST(WebhookFlags, AppliesTheChartsFlags) {
  WebhookSettings s;
  const std::vector<std::pair<std::string, std::string>> flags = {
      {"--webhook-port", "9443"},          {"--webhook-configuration", "x-injector"},
      {"--webhook-service", "x-ctl"},       {"--webhook-secret", "x-tls"},
      {"--webhook-cert-ip", "127.0.0.1"},
      {"--sidecar-image", "r/memha:1"},     {"--sidecar-image-pull-policy", "Always"},
      {"--sidecar-admin-port", "12000"},    {"--sidecar-cpu-limit", "1"},
      {"--sidecar-memory-request", ""},     {"--sidecar-startup-timeout-s", "30"},
  };
  for (const auto& [n, v] : flags) {
    auto r = ApplyWebhookFlag(n, v, &s);
    ASSERT_TRUE(r.ok()) << n << ": " << r.status().message();
    EXPECT_TRUE(r.value()) << n;
  }
  ASSERT_TRUE(s.Finish("ops").ok());
  EXPECT_EQ(s.server.port, 9443);
  EXPECT_EQ(s.certificates.ns, "ops");
  EXPECT_EQ(s.certificates.webhook_configuration, "x-injector");
  EXPECT_EQ(s.certificates.ip_addresses, std::vector<std::string>{"127.0.0.1"});
  EXPECT_EQ(s.inject.controller_url, "http://x-ctl.ops.svc:8080");
  EXPECT_EQ(s.inject.admin_port, 12000);
  EXPECT_EQ(s.inject.resources.memory_request, "");
  EXPECT_EQ(s.inject.startup_timeout_s, 30);
}

TEST(WebhookFlags, UnknownIsNotMineAndBadValuesAreErrors) {
  WebhookSettings s;
  auto other = ApplyWebhookFlag("--lease-name", "x", &s);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other.value());
  EXPECT_FALSE(ApplyWebhookFlag("--webhook-port", "http", &s).ok());
  EXPECT_FALSE(ApplyWebhookFlag("--sidecar-admin-port", "0", &s).ok());
  ASSERT_TRUE(ApplyWebhookFlag("--webhook-port", "0", &s).ok());
  EXPECT_FALSE(s.enabled);
  ASSERT_TRUE(ApplyWebhookFlag("--sidecar-image-pull-policy", "Sometimes", &s).ok());
  EXPECT_TRUE(s.Finish("ops").ok());  // webhook off: the sidecar settings do not matter
  s.enabled = true;
  EXPECT_FALSE(s.Finish("ops").ok());
  EXPECT_NE(WebhookFlagsHelp().find("--sidecar-image "), std::string::npos);
}

TEST(WebhookFlags, CertManagerMode) {
  WebhookSettings s;
  EXPECT_FALSE(s.certificates.external);
  ASSERT_TRUE(ApplyWebhookFlag("--webhook-cert-manager", "on", &s).ok());
  EXPECT_TRUE(s.certificates.external);
  EXPECT_FALSE(ApplyWebhookFlag("--webhook-cert-manager", "yes", &s).ok());
}

TEST(WebhookFlags, UnsignedPushesAreNotAnOption) {
  // Sidecars take only signed pushes (there is no shared token any more): a controller without keys is refused.
  WebhookSettings s;
  ASSERT_TRUE(ApplyWebhookFlag("--push-signing-secret", "", &s).ok());
  Status st = s.Finish("ops");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("--push-signing-key-file"), std::string::npos) << st.message();
  ASSERT_TRUE(ApplyWebhookFlag("--push-signing-key-file", "/etc/memha/keys", &s).ok());
  EXPECT_TRUE(s.Finish("ops").ok());
}

}  // namespace
}  // namespace memha::webhook
