// The admin server's request-head parser: what it accepts, what it refuses with which status, and that every cut
// of the input gives NeedMore until the blank line arrives, then the same result.
#include <gtest/gtest.h>

#include <string>

#include "sidecar/admin/http_request.h"

namespace memha::http {
namespace {

using State = HeadParse::State;

// Parses `in` whole, and checks that every prefix short of the head's end is NeedMore (or the same error).
HeadParse Parse(const std::string& in, size_t max_head = 8192) {
  HeadParse whole = ParseRequestHead(in, max_head);
  for (size_t cut = 0; cut < in.size(); ++cut) {
    HeadParse part = ParseRequestHead(std::string_view(in).substr(0, cut), max_head);
    if (whole.state == State::kOk && cut < whole.head.size) {
      EXPECT_EQ(part.state, State::kNeedMore) << "cut at " << cut << " of " << in.size();
    }
    if (part.state == State::kOk) {
      EXPECT_EQ(part.head.size, whole.head.size) << "cut at " << cut;
      EXPECT_EQ(part.head.target, whole.head.target);
    }
  }
  return whole;
}

TEST(HttpRequest, GetWithHeaders) {
  HeadParse p = Parse("GET /v1/topology?pod=a%2Fb HTTP/1.1\r\nHost: x\r\nAuthorization:  Bearer t0k \r\n\r\n");
  ASSERT_EQ(p.state, State::kOk) << p.reason;
  EXPECT_EQ(p.head.method, "GET");
  EXPECT_EQ(p.head.target, "/v1/topology?pod=a%2Fb");
  EXPECT_EQ(p.head.path, "/v1/topology");
  EXPECT_EQ(p.head.query, "pod=a%2Fb");
  EXPECT_EQ(p.head.minor_version, 1);
  ASSERT_NE(p.head.Header("authorization"), nullptr);
  EXPECT_EQ(*p.head.Header("authorization"), "Bearer t0k");
  EXPECT_EQ(p.head.Header("content-length"), nullptr);
  EXPECT_FALSE(p.head.content_length);
}

TEST(HttpRequest, SizeStopsAtTheBlankLineBodyFollows) {
  std::string head = "PUT /v1/topology HTTP/1.0\r\nContent-Length: 2\r\nEXPECT: 100-Continue\r\n\r\n";
  HeadParse p = Parse(head + "{}");
  ASSERT_EQ(p.state, State::kOk) << p.reason;
  EXPECT_EQ(p.head.size, head.size());
  EXPECT_EQ(p.head.content_length, 2u);
  EXPECT_TRUE(p.head.expect_continue);
  EXPECT_EQ(p.head.minor_version, 0);
}

TEST(HttpRequest, BareLineFeedsAndLeadingEmptyLines) {
  HeadParse p = Parse("\r\n\nGET /healthz HTTP/1.1\nHost: x\n\n");
  ASSERT_EQ(p.state, State::kOk) << p.reason;
  EXPECT_EQ(p.head.path, "/healthz");
}

TEST(HttpRequest, Refusals) {
  struct Case {
    std::string in;
    int status;
  };
  const Case cases[] = {
      {"GET /healthz\r\n\r\n", 400},
      {"GET  /healthz HTTP/1.1\r\n\r\n", 400},
      {"get /healthz HTTP/1.1\r\n\r\n", 400},
      {"GET healthz HTTP/1.1\r\n\r\n", 400},
      {"GET http://x/healthz HTTP/1.1\r\n\r\n", 400},
      {"GET /healthz HTTP/2.0\r\n\r\n", 505},
      {"GET /healthz HTTX/1.1\r\n\r\n", 400},
      {"GET /healthz HTTP/1.1\r\nNo colon\r\n\r\n", 400},
      {"GET /healthz HTTP/1.1\r\nBad name: v\r\n\r\n", 400},
      {"GET /healthz HTTP/1.1\r\n: v\r\n\r\n", 400},
      {"GET /healthz HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400},
      {"GET /healthz HTTP/1.1\r\nA: b\x01\r\n\r\n", 400},
      {"GET /healthz HTTP/1.1\r\nA: b\rc\r\n\r\n", 400},
      {"PUT /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
      {"PUT /x HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n", 400},
      {"PUT /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
      {"PUT /x HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
      {"PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
      {"PUT /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: identity\r\n\r\n", 501},
  };
  for (const Case& c : cases) {
    HeadParse p = Parse(c.in);
    EXPECT_EQ(p.state, State::kError) << c.in;
    EXPECT_EQ(p.status, c.status) << c.in << " -> " << p.reason;
    EXPECT_FALSE(p.reason.empty());
  }
}

TEST(HttpRequest, RepeatedEqualContentLengthIsAccepted) {
  HeadParse p = Parse("PUT /x HTTP/1.1\r\nContent-Length: 7\r\ncontent-length: 7\r\n\r\n");
  ASSERT_EQ(p.state, State::kOk) << p.reason;
  EXPECT_EQ(p.head.content_length, 7u);
}

TEST(HttpRequest, HeadLimitIsEnforcedWhetherOrNotTheHeadEnded) {
  std::string big_header = "GET /healthz HTTP/1.1\r\nX: " + std::string(300, 'v') + "\r\n";
  EXPECT_EQ(ParseRequestHead(big_header, 128).status, 431) << "no end yet, but already over the limit";
  EXPECT_EQ(ParseRequestHead(big_header + "\r\n", 128).status, 431);
  EXPECT_EQ(ParseRequestHead(big_header, 4096).state, State::kNeedMore);
  EXPECT_EQ(ParseRequestHead(std::string(5000, '\n'), 4096).status, 431) << "empty lines count too";
}

TEST(HttpRequest, HeaderCountIsBounded) {
  std::string in = "GET /healthz HTTP/1.1\r\n";
  for (size_t i = 0; i < kMaxHeaderCount; ++i) in += "A: b\r\n";
  EXPECT_EQ(ParseRequestHead(in + "\r\n", 1 << 20).state, State::kOk);
  EXPECT_EQ(ParseRequestHead(in + "A: b\r\n\r\n", 1 << 20).status, 431);
}

}  // namespace
}  // namespace memha::http
