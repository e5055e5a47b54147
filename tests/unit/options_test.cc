// Sidecar command line: magent-style -p/-l/-s/-b, --config, tunables; errors name the flag; StaticTopology names
// members by host:port.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sidecar/config/options.h"

namespace memha {
namespace {

using Args = std::vector<std::string>;

SidecarOptions Ok(const Args& args) {
  Result<SidecarOptions> r = ParseSidecarOptions(args);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? r.value() : SidecarOptions{};
}

std::string Error(const Args& args) {
  Result<SidecarOptions> r = ParseSidecarOptions(args);
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.status().message();
}

Topology Static(const Args& args) {
  Result<Topology> t = StaticTopology(Ok(args));
  EXPECT_TRUE(t.ok()) << t.status().message();
  return t.ok() ? t.value() : Topology{};
}

TEST(Options, MagentStyleFlags) {
  SidecarOptions o = Ok({"-p", "11300", "-l", "0.0.0.0", "-s", "10.0.0.1:11211", "-b", "10.0.0.9:11211"});
  EXPECT_EQ(o.port, 11300);
  EXPECT_EQ(o.listen_address, "0.0.0.0");
  EXPECT_EQ(o.primary, (std::vector<std::string>{"10.0.0.1:11211"}));
  EXPECT_EQ(o.backup, (std::vector<std::string>{"10.0.0.9:11211"}));
  EXPECT_EQ(o.write_policy, WritePolicy::kAsync);
  EXPECT_TRUE(o.warmup);
  EXPECT_TRUE(o.config_file.empty());
}

TEST(Options, Defaults) {
  SidecarOptions o = Ok({"-s", "a:1"});
  EXPECT_EQ(o.port, 11211);
  EXPECT_EQ(o.listen_address, "127.0.0.1");
  EXPECT_TRUE(o.backup.empty());
  EXPECT_EQ(o.admin_port, 11299);
  EXPECT_TRUE(o.admin_enabled);
  EXPECT_EQ(o.log_level, "info");
  EXPECT_FALSE(o.help);
}

TEST(Options, ServersCommaSeparatedAndRepeated) {
  SidecarOptions o = Ok({"-s", "a:1,b:2", "--server", "c:3", "-s", "d:4,,e:5,", "-b", "x:1,y:2", "--backup=z:3"});
  EXPECT_EQ(o.primary, (std::vector<std::string>{"a:1", "b:2", "c:3", "d:4", "e:5"}));
  EXPECT_EQ(o.backup, (std::vector<std::string>{"x:1", "y:2", "z:3"}));
}

TEST(Options, LongFormsAndInlineValues) {
  SidecarOptions o = Ok({"--port=12000", "--listen", "::1", "--server=a:1", "--write-policy", "sync", "--no-warmup",
                         "--state-file", "/var/lib/memha/state.json", "--admin-port", "0", "--no-admin",
                         "--log-level=debug", "--request-timeout-ms", "100", "--failure-limit", "3",
                         "--max-item-size", "2097152", "--connections-per-member", "4"});
  EXPECT_EQ(o.port, 12000);
  EXPECT_EQ(o.listen_address, "::1");
  EXPECT_EQ(o.write_policy, WritePolicy::kSync);
  EXPECT_FALSE(o.warmup);
  EXPECT_EQ(o.state_file, "/var/lib/memha/state.json");
  EXPECT_EQ(o.admin_port, 0);
  EXPECT_FALSE(o.admin_enabled);
  EXPECT_EQ(o.log_level, "debug");
  EXPECT_EQ(o.tunables.request_timeout.count(), 100);
  EXPECT_EQ(o.tunables.failure_limit, 3);
  EXPECT_EQ(o.tunables.max_value, 2097152u);
  EXPECT_EQ(o.tunables.connections_per_member, 4);
}

TEST(Options, AdminAndHealthPorts) {
  SidecarOptions d = Ok({"-s", "a:1"});
  EXPECT_FALSE(d.health_port) << "no health port unless asked for: the probe paths are on the admin port";
  EXPECT_EQ(d.health_address, "");
  EXPECT_EQ(d.loop_stall.count(), 5000);
  EXPECT_EQ(d.admin_max_body, 1024u * 1024u);
  EXPECT_EQ(d.admin_max_connections, 64u);
  EXPECT_EQ(d.admin_request_timeout.count(), 5000);
  SidecarOptions o = Ok({"-s", "a:1", "--health-port", "11298", "--health-address=0.0.0.0", "--loop-stall-ms", "1000",
                         "--admin-max-body", "4096", "--admin-max-connections", "8",
                         "--admin-request-timeout-ms", "250"});
  EXPECT_EQ(o.health_port, 11298);
  EXPECT_EQ(o.health_address, "0.0.0.0");
  EXPECT_EQ(o.loop_stall.count(), 1000);
  EXPECT_EQ(o.admin_max_body, 4096u);
  EXPECT_EQ(o.admin_max_connections, 8u);
  EXPECT_EQ(o.admin_request_timeout.count(), 250);
  EXPECT_EQ(Ok({"-s", "a:1", "--health-port", "0"}).health_port, 0) << "0 picks a free port";
  EXPECT_NE(SidecarUsage().find("--health-port"), std::string::npos);
}

TEST(Options, ConfigFile) {
  SidecarOptions o = Ok({"--config", "/etc/memha/topology.json"});
  EXPECT_EQ(o.config_file, "/etc/memha/topology.json");
  EXPECT_TRUE(o.primary.empty());
  EXPECT_EQ(Ok({"-c", "t.json"}).config_file, "t.json");
  EXPECT_EQ(Ok({"--config=t2.json"}).config_file, "t2.json");
}

TEST(Options, HelpAndVersionSkipValidation) {
  EXPECT_TRUE(Ok({"-h"}).help);
  EXPECT_TRUE(Ok({"--help"}).help);
  EXPECT_TRUE(Ok({"--version"}).version);
  EXPECT_NE(SidecarUsage().find("--server"), std::string::npos);
}

TEST(Options, BadFlagsNameTheFlag) {
  struct Case {
    Args args;
    std::string flag;
  };
  for (const Case& c : std::vector<Case>{
           {{"--bogus"}, "--bogus"},
           {{"-x", "-s", "a:1"}, "-x"},
           {{"-s", "a:1", "-p", "abc"}, "--port"},
           {{"-s", "a:1", "-p", "0"}, "--port"},
           {{"-s", "a:1", "-p", "65536"}, "--port"},
           {{"-s", "a:1", "--port=-5"}, "--port"},
           {{"-s", "a:1", "-p"}, "--port"},
           {{"-s"}, "--server"},
           {{"-s", "a:1", "--write-policy", "eventually"}, "--write-policy"},
           {{"-s", "a:1", "--log-level", "trace"}, "--log-level"},
           {{"-s", "a:1", "--admin-port", "70000"}, "--admin-port"},
           {{"-s", "a:1", "--failure-limit", "0"}, "--failure-limit"},
           {{"-s", "a:1", "--request-timeout-ms", "0"}, "--request-timeout-ms"},
           {{"-s", "a:1", "--connections-per-member", "65"}, "--connections-per-member"},
           {{"-s", "a:1", "--max-item-size", "1x"}, "--max-item-size"},
           {{"-s", "a:1", "--health-port", "65536"}, "--health-port"},
           {{"-s", "a:1", "--loop-stall-ms", "100"}, "--loop-stall-ms"},
           {{"-s", "a:1", "--admin-max-body", "10"}, "--admin-max-body"},
           {{"-s", "a:1", "--admin-max-connections", "0"}, "--admin-max-connections"},
           {{"-s", "a:1", "--admin-request-timeout-ms", "0"}, "--admin-request-timeout-ms"},
       }) {
    std::string msg = Error(c.args);
    EXPECT_NE(msg.find(c.flag), std::string::npos) << "message \"" << msg << "\" should name " << c.flag;
  }
  EXPECT_EQ(Error({"-s", "a:1", "-p", "abc"}), "--port expects an integer in 1..65535, got \"abc\"");
  EXPECT_EQ(Error({"--bogus"}), "unknown option --bogus");
}

TEST(Options, InconsistentCombinations) {
  EXPECT_NE(Error({"--config", "t.json", "-s", "a:1"}).find("--config"), std::string::npos);
  EXPECT_NE(Error({"-b", "a:1"}).find("-b"), std::string::npos);
  EXPECT_NE(Error({}).find("nothing to serve"), std::string::npos);
  EXPECT_NE(Error({"-p", "11211"}).find("nothing to serve"), std::string::npos);
  // There is no shared token any more: pushes are signed, the boot fetch presents the pod's own token.
  EXPECT_NE(Error({"--admin-token-file", "/run/secrets/token"}).find("--admin-token-file"), std::string::npos);
  // The boot fetch alone is a source of topology (the sidecar may take no pushes).
  EXPECT_EQ(Ok({"--controller-url", "http://c:8080", "--pod", "shop/web-1", "--controller-token-file", "/t"}).pod,
            "shop/web-1");
  EXPECT_NE(Error({"--state-file", "s.json", "--controller-url", "http://c:8080", "--pod", "shop/web-1"})
                .find("--controller-token-file"),
            std::string::npos);
  EXPECT_EQ(Ok({"--state-file", "s.json", "--controller-url", "http://c:8080", "--pod", "shop/web-1",
                "--controller-token-file", "/var/run/memha/token/token"})
                .controller_token_file,
            "/var/run/memha/token/token");
}

TEST(Options, StaticTopologyNamesMembersByHostPort) {
  Topology t = Static({"-p", "11300", "-s", "10.0.0.1:11211,cache-b", "-s", "[::1]:11212", "-b", "10.0.0.9"});
  ASSERT_EQ(t.pools.size(), 1u);
  const PoolSpec& p = t.pools[0];
  EXPECT_EQ(p.name, "static");
  EXPECT_EQ(p.listen, "127.0.0.1:11300");
  EXPECT_EQ(p.listen_endpoint, (HostPort{"127.0.0.1", 11300}));
  ASSERT_EQ(p.primary.size(), 3u);
  EXPECT_EQ(p.primary[0].name, "10.0.0.1:11211");
  EXPECT_EQ(p.primary[0].endpoint, (HostPort{"10.0.0.1", 11211}));
  EXPECT_EQ(p.primary[1].name, "cache-b:11211");  // default port filled in
  EXPECT_EQ(p.primary[1].address, "cache-b:11211");
  EXPECT_EQ(p.primary[2].name, "[::1]:11212");
  EXPECT_EQ(p.primary[2].endpoint, (HostPort{"::1", 11212}));
  ASSERT_EQ(p.backup.size(), 1u);
  EXPECT_EQ(p.backup[0].name, "10.0.0.9:11211");
  for (const MemberSpec& m : p.primary) EXPECT_EQ(m.state, MemberState::kUp);
}

TEST(Options, StaticTopologyCarriesPolicyAndListen) {
  Topology t = Static({"-l", "::1", "-s", "a:1", "--write-policy", "primary-only", "--no-warmup"});
  ASSERT_EQ(t.pools.size(), 1u);
  EXPECT_EQ(t.pools[0].listen, "[::1]:11211");
  EXPECT_EQ(t.pools[0].listen_endpoint, (HostPort{"::1", 11211}));
  EXPECT_EQ(t.pools[0].write_policy, WritePolicy::kPrimaryOnly);
  EXPECT_FALSE(t.pools[0].warmup);
  EXPECT_EQ(t.pools[0].listen_unix, "");
  EXPECT_EQ(Static({"-s", "a:1", "--listen-unix", "/run/memha/m.sock"}).pools[0].listen_unix, "/run/memha/m.sock");
  Result<Topology> bad = StaticTopology(Ok({"-s", "a:1", "--listen-unix", "m.sock"}));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "--listen-unix: must be an absolute path");
}

TEST(Options, StaticTopologyRejectsBadMembers) {
  for (const Args& args : {Args{"-s", "a:0"}, Args{"-s", "::1:11211"}, Args{"-s", "a:1", "-b", "b:99999"},
                           Args{"-s", "a:1", "-l", "bad host"}}) {
    Result<Topology> t = StaticTopology(Ok(args));
    ASSERT_FALSE(t.ok()) << args[1];
  }
  EXPECT_EQ(StaticTopology(Ok({"-s", "a:0"})).status().message().rfind("-s: ", 0), 0u);
  EXPECT_EQ(StaticTopology(Ok({"-s", "a:1", "-b", "b:99999"})).status().message().rfind("-b: ", 0), 0u);
  EXPECT_EQ(StaticTopology(Ok({"-s", "a:1", "-l", "bad host"})).status().message().rfind("-l: ", 0), 0u);
  // The same member twice is a duplicate name.
  Result<Topology> dup = StaticTopology(Ok({"-s", "a:1,a:1"}));
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.status().message().find("duplicate member"), std::string::npos);
}

// Regression (fixed): a bracketed IPv6 listen address - the form -s takes -
// makes StaticTopology throw std::bad_variant_access instead of returning a Result: listen_address "[::1]" contains
// ':' so it skips the -l check, HostPort{"[::1]", port}.ToString() gives "[[::1]]:11211", and
// ParseHostPort(...).value() is called on the error. `memha-sidecar -l '[::1]' -s a:1` aborts with an uncaught
// exception instead of listening on [::1]:11211 (or printing an error).
TEST(Options, StaticTopologyBracketedListenDoesNotThrow) {
  SidecarOptions o = Ok({"-l", "[::1]", "-s", "a:1"});
  Result<Topology> t = Status::Internal("not run");
  ASSERT_NO_THROW(t = StaticTopology(o));
  if (t.ok()) {
    EXPECT_EQ(t.value().pools.at(0).listen, "[::1]:11211");
  } else {
    EXPECT_EQ(t.status().message().rfind("-l: ", 0), 0u) << t.status().message();
  }
}

}  // namespace
}  // namespace memha

namespace memha {
namespace {

TEST(Options, PushPublicKeysNeedThePodAndMustBeEd25519Keys) {
  const std::string key = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";  // RFC 8032 test 1's public key
  SidecarOptions o = Ok({"--push-public-key", key + "," + key, "--pod", "shop/web-1", "--pod-uid", "u-1",
                         "--push-max-skew-s", "30"});
  EXPECT_EQ(o.push_public_keys.size(), 1u);
  EXPECT_EQ(o.pod_uid, "u-1");
  EXPECT_EQ(o.push_max_skew, std::chrono::seconds(30));
  EXPECT_NE(Error({"--push-public-key", "YWI=", "--pod", "shop/web-1"}).find("--push-public-key"), std::string::npos);
  EXPECT_NE(Error({"--push-public-key", key}).find("--pod"), std::string::npos);
}

}  // namespace
}  // namespace memha
