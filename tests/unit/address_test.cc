// host:port parsing: IPv4/hostnames, bracketed IPv6, default ports, and rejected forms.
#include <gtest/gtest.h>

#include <string>

#include "common/address.h"

namespace memha {
namespace {

HostPort Ok(std::string_view text, uint16_t default_port = 0) {
  Result<HostPort> r = ParseHostPort(text, default_port);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().message();
  return r.ok() ? r.value() : HostPort{};
}

std::string Rejected(std::string_view text, uint16_t default_port = 0) {
  Result<HostPort> r = ParseHostPort(text, default_port);
  EXPECT_FALSE(r.ok()) << "accepted " << text;
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  // Every message quotes the offending text.
  EXPECT_NE(r.status().message().find("\"" + std::string(text) + "\""), std::string::npos) << r.status().message();
  return r.status().message();
}

TEST(Address, HostAndPort) {
  EXPECT_EQ(Ok("127.0.0.1:11211"), (HostPort{"127.0.0.1", 11211}));
  EXPECT_EQ(Ok("cache-a-0.cache.shop.svc:1"), (HostPort{"cache-a-0.cache.shop.svc", 1}));
  EXPECT_EQ(Ok("localhost:65535"), (HostPort{"localhost", 65535}));
  EXPECT_EQ(Ok("h:11212", 11211), (HostPort{"h", 11212}));  // an explicit port wins over the default
}

TEST(Address, BracketedIpv6) {
  EXPECT_EQ(Ok("[::1]:11211"), (HostPort{"::1", 11211}));
  EXPECT_EQ(Ok("[fe80::1%eth0]:80"), (HostPort{"fe80::1%eth0", 80}));
  EXPECT_EQ(Ok("[2001:db8::7]", 11211), (HostPort{"2001:db8::7", 11211}));
}

TEST(Address, BareHostTakesDefaultPort) {
  EXPECT_EQ(Ok("memcached", 11211), (HostPort{"memcached", 11211}));
  EXPECT_EQ(Ok("10.0.0.1", 11300), (HostPort{"10.0.0.1", 11300}));
  std::string msg = Rejected("memcached");
  EXPECT_NE(msg.find("missing port"), std::string::npos) << msg;
  Rejected("[::1]");
  Rejected("[::1]:");
}

TEST(Address, BadPorts) {
  for (const char* bad : {"h:0", "h:65536", "h:abc", "h:-1", "h:+80", "h:80x", "h: 80", "h:99999999999999999999"}) {
    SCOPED_TRACE(bad);
    std::string msg = Rejected(bad);
    EXPECT_NE(msg.find("port must be 1-65535"), std::string::npos) << msg;
    Rejected(bad, 11211);
  }
  Rejected("[::1]:0");
  Rejected("[::1]:65536");
}

TEST(Address, Ipv6WithoutBracketsRejected) {
  for (const char* bad : {"::1", "::1:11211", "fe80::1:80", "2001:db8::7"}) {
    SCOPED_TRACE(bad);
    std::string msg = Rejected(bad);
    EXPECT_NE(msg.find("brackets"), std::string::npos) << msg;
    Rejected(bad, 11211);
  }
}

TEST(Address, MalformedRejected) {
  Rejected("");
  Rejected(":11211");
  Rejected("[]:11211");
  Rejected("[::1:11211");
  Rejected("[::1]11211");
  Rejected("host name:1");
  Rejected("user@host:1");
  Rejected("a,b:1");
  Rejected("http://h:1");
  Rejected("h\t:1");
}

TEST(Address, ToStringBracketsIpv6) {
  EXPECT_EQ((HostPort{"10.0.0.1", 11211}).ToString(), "10.0.0.1:11211");
  EXPECT_EQ((HostPort{"::1", 11211}).ToString(), "[::1]:11211");
  for (const char* text : {"127.0.0.1:1", "[::1]:11211", "[2001:db8::7]:65535", "name:42"}) {
    EXPECT_EQ(Ok(text).ToString(), text);
  }
}

}  // namespace
}  // namespace memha
