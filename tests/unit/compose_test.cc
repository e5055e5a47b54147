// What members receive is composed from the parsed request: canonical, with the client's q and O removed, and
// numbers as memcached read them. Each composed line must itself parse (as memcached would read it) to the same
// request: compose -> parse round trip.
#include <gtest/gtest.h>

#include <string>

#include "sidecar/protocol/compose.h"

namespace memha::protocol {
namespace {

Request Parse(const std::string& in) {
  Request r;
  ParseResult res = ParseRequest(in, Limits(), &r);
  EXPECT_EQ(res.status, ParseStatus::kOk) << in << " -> " << res.error.reply;
  return r;
}

TEST(Compose, ClientMetaIsCanonical) {
  struct Case {
    std::string in;
    std::string line;
    size_t opaque_at;
  };
  for (const Case& c : {
           Case{"mg k v qx\r\n", "mg k v", std::string::npos},
           Case{"mg   k   v    q1     kk\r\n", "mg k v k", std::string::npos},
           Case{"mg k v Oabc t\r\n", "mg k v t", 6},
           Case{"mg k T+0010 N-5 R7junk\t\r\n", "", 0},  // R's argument stops at whitespace only: refused below
           Case{"ma k D0005 MD J007 q N10\r\n", "ma k D5 MD J7 N10", std::string::npos},
           Case{"md k qq C0012 Oz\r\n", "md k C12", 8},
           Case{"ms k 2 Fx1\r\nab\r\n", "", 0},
       }) {
    SCOPED_TRACE(c.in);
    Request r;
    ParseResult res = ParseRequest(c.in, Limits(), &r);
    if (c.line.empty()) {
      EXPECT_EQ(res.status, ParseStatus::kError);
      continue;
    }
    ASSERT_EQ(res.status, ParseStatus::kOk) << res.error.reply;
    size_t at = 0;
    EXPECT_EQ(ComposeClientMeta(r, c.in, &at), c.line);
    EXPECT_EQ(at, c.opaque_at);
  }
}

TEST(Compose, NumbersAreReprintedAsMemcachedReadThem) {
  std::string in = "mg k T4294967306 v\r\n";  // a long stored into an int32: 10
  Request r = Parse(in);
  size_t at;
  EXPECT_EQ(ComposeClientMeta(r, in, &at), "mg k T10 v");
  std::string set = "set k 4294967297 -0 3\r\nabc\r\n";
  Request s = Parse(set);
  EXPECT_EQ(ComposeStorage(s, "k"), "ms k 3 F1 T0");
  EXPECT_EQ(BodyOf(s, set), "abc\r\n");
}

TEST(Compose, TextCommandsAsMeta) {
  std::string add = "add k 7 100 2 noreply\r\nhi\r\n";
  EXPECT_EQ(ComposeStorage(Parse(add), "k"), "ms k 2 F7 T100 ME");
  EXPECT_EQ(ComposeStorage(Parse(add), "k", /*as_set=*/true), "ms k 2 F7 T100");
  EXPECT_EQ(ComposeStorage(Parse("replace k 0 0 1\r\nx\r\n"), "k"), "ms k 1 F0 T0 MR");
  EXPECT_EQ(ComposeStorage(Parse("append k 0 0 1\r\nx\r\n"), "k"), "ms k 1 F0 T0 MA");
  EXPECT_EQ(ComposeStorage(Parse("prepend k 0 0 1\r\nx\r\n"), "k"), "ms k 1 F0 T0 MP");
  EXPECT_EQ(ComposeStorage(Parse("cas k 1 2 1 99\r\nx\r\n"), "k"), "ms k 1 F1 T2 C99");
  EXPECT_EQ(ComposeArithmetic(Parse("incr k 5\r\n"), "k"), "ma k D5 MI v");
  EXPECT_EQ(ComposeArithmetic(Parse("decr k 18446744073709551615\r\n"), "k"), "ma k D18446744073709551615 MD v");
  EXPECT_EQ(ComposeGet("k", true, true, -1), "mg k v f c T-1");
  EXPECT_EQ(ComposeGet("k", false, false, 0), "mg k v f");
  std::string reused = "mg a-much-longer-key-from-before v f c T100";  // composed into a reused buffer
  ComposeGet(&reused, "k", false, true, 7);
  EXPECT_EQ(reused, "mg k v f T7");
  EXPECT_EQ(ComposeTouch("k", 30), "mg k T30");
  EXPECT_EQ(ComposeDelete("Zm9v", true), "md Zm9v b");
  EXPECT_EQ(ComposeFlush(Parse("flush_all 5 0 \r\n")), "flush_all 5");
  EXPECT_EQ(ComposeFlush(Parse("flush_all noreply\r\n")), "flush_all");
}

// A long line the client padded reaches the member short: memcached would close a shared connection on which a
// line arrived in pieces without its newline after 2048 bytes, taking every other client's requests down.
TEST(Compose, PaddingNeverReachesAMember) {
  std::string in = "mg k v" + std::string(10000, ' ') + "\r\n";
  Request r = Parse(in);
  ASSERT_EQ(r.keys.size(), 1u);
  size_t at;
  EXPECT_EQ(ComposeClientMeta(r, in, &at), "mg k v");
  // Over memcached's 16 KB read, a non-get line is never a command: the client's connection closes, as direct.
  std::string longer = "mg k v" + std::string(20000, ' ') + "\r\n";
  Request l;
  ParseResult res = ParseRequest(longer, Limits(), &l);
  ASSERT_EQ(res.status, ParseStatus::kError);
  EXPECT_TRUE(res.error.close);
}

// Every composed client meta line parses back (as the member will read it) to the same flags.
TEST(Compose, RoundTrip) {
  for (std::string in : {"mg k v f t c k s h l u Oq1 T5 N3 R2\r\n", "ms k 3 T1 F2 C3 MA I b\r\nabc\r\n",
                         "md k C7 I T9 q\r\n", "ma k N1 J2 D3 M- v c t\r\n"}) {
    SCOPED_TRACE(in);
    if (in.rfind("ms k 3 T1 F2 C3 MA I b", 0) == 0) in = "ms Zm9v 3 T1 F2 C3 MA I b\r\nabc\r\n";
    Request r = Parse(in);
    size_t at;
    std::string line = ComposeClientMeta(r, in, &at);
    std::string again_in = line + "\r\n";
    if (r.cmd == Command::kMetaSet) again_in += std::string(BodyOf(r, in));
    Request again = Parse(again_in);
    size_t at2;
    EXPECT_EQ(ComposeClientMeta(again, again_in, &at2), line);
    EXPECT_FALSE(again.noreply);
    EXPECT_EQ(again.opaque.len, 0u);
    EXPECT_EQ(again.meta_base64, r.meta_base64);
  }
}

}  // namespace
}  // namespace memha::protocol
