// Request parser errors: memcached's exact reply strings, how much of the stream is consumed or swallowed, noreply
// suppression, and when the connection must be closed. Every input is also checked prefix by prefix.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "sidecar/protocol/request.h"
#include "tests/unit/request_check.h"

namespace memha::protocol {
namespace {

using test::ParseAllPrefixes;

constexpr std::string_view kError = "ERROR\r\n";
constexpr std::string_view kBadFormat = "CLIENT_ERROR bad command line format\r\n";
constexpr std::string_view kTooLarge = "SERVER_ERROR object too large for cache\r\n";
constexpr std::string_view kBadChunk = "CLIENT_ERROR bad data chunk\r\n";
constexpr std::string_view kBadDelta = "CLIENT_ERROR invalid numeric delta argument\r\n";
constexpr std::string_view kBadExptime = "CLIENT_ERROR invalid exptime argument\r\n";
constexpr std::string_view kDeleteUsage = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";
constexpr std::string_view kBadKeyEncoding = "CLIENT_ERROR error decoding key\r\n";

struct ErrorCase {
  std::string in;
  std::string_view reply;
  size_t consume;  // 0: the whole first line
};

ParseError ParseErr(std::string_view in, const Limits& limits = Limits()) {
  Request r;
  ParseResult res = ParseAllPrefixes(in, &r, limits);
  EXPECT_EQ(res.status, ParseStatus::kError) << "input: " << in;
  return res.error;
}

void ExpectErrors(const std::vector<ErrorCase>& cases, const Limits& limits = Limits()) {
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE("input: " + c.in.substr(0, 120));
    ParseError e = ParseErr(c.in, limits);
    EXPECT_EQ(e.reply, c.reply);
    EXPECT_EQ(e.consume, c.consume ? c.consume : c.in.find('\n') + 1);
    EXPECT_EQ(e.swallow, 0u);
    EXPECT_FALSE(e.close);
  }
}

TEST(RequestErrors, UnknownOrMalformedCommandIsError) {
  ExpectErrors({
      {"bogus\r\n", kError, 0},
      {"\r\n", kError, 2},
      {"\n", kError, 1},
      {"    \r\n", kError, 0},
      {"GET a\r\n", kError, 0},
      {"get\r\n", kError, 0},
      {"get    \r\n", kError, 0},
      {"gets\r\n", kError, 0},
      {"set k 0 0\r\n", kError, 0},
      {"set k 0 0 1 noreply extra\r\n", kError, 0},
      {"cas k 0 0 1\r\n", kError, 0},
      {"incr k\r\n", kError, 0},
      {"touch k\r\n", kError, 0},
      {"delete\r\n", kError, 0},
      {"delete a 0 noreply x\r\n", kError, 0},
      {"verbosity\r\n", kError, 0},
      {"flush_all 1 noreply x\r\n", kError, 0},
      {"mg\r\n", kError, 0},
      {"bogus\r\nget a\r\n", kError, 7},
  });
}

TEST(RequestErrors, GatWithoutKeyIsEnd) {
  ExpectErrors({
      {"gat 10\r\n", "END\r\n", 0},
      {"gats 10\r\n", "END\r\n", 0},
      {"gat abc k\r\n", kBadExptime, 0},
  });
}

TEST(RequestErrors, KeyTooLong) {
  const std::string key(251, 'k');
  ExpectErrors({
      {"get " + key + "\r\n", kBadFormat, 0},
      {"get a " + key + " b\r\n", kBadFormat, 0},
      {"gat 1 " + key + "\r\n", kBadFormat, 0},
      {"set " + key + " 0 0 1\r\nx\r\n", kBadFormat, 0},
      {"delete " + key + "\r\n", kBadFormat, 0},
      {"incr " + key + " 1\r\n", kBadFormat, 0},
      {"touch " + key + " 1\r\n", kBadFormat, 0},
      {"mg " + key + " v\r\n", kBadFormat, 0},
      {"ms " + key + " 1\r\nx\r\n", kBadFormat, 0},
  });
}

TEST(RequestErrors, BadNumbersInStorageLine) {
  ExpectErrors({
      {"set k 0 0 -1\r\n", kBadFormat, 0},
      {"set k 0 0 abc\r\n", kBadFormat, 0},
      {"set k 0 0 5x\r\n", kBadFormat, 0},
      {"set k x 0 1\r\nx\r\n", kBadFormat, 0},
      {"set k -1 0 1\r\nx\r\n", kBadFormat, 0},
      {"set k 0 zz 1\r\nx\r\n", kBadFormat, 0},
      {"cas k 0 0 1 notanumber\r\nx\r\n", kBadFormat, 0},
      {"cas k 0 0 1 -5\r\nx\r\n", kBadFormat, 0},
      {"ms k -1\r\n", kBadFormat, 0},
      {"ms k abc\r\n", kBadFormat, 0},
      {"ms k\r\n", kBadFormat, 0},
  });
}

// Found by tests/integration/test_protocol_fuzz.py: inputs memcached reads differently from a naive parser. Had
// memha forwarded them, the member would have read the rest of the request as commands on a connection other
// clients share.
TEST(RequestErrors, ALineEndsAtANulByteAsInMemcached) {
  using namespace std::string_literals;
  ExpectErrors({
      {"set a\0 0 0 12\r\nget secret\r\n\r\n"s, kError, 0},  // "set a": no value to read
  });
  Request r;
  const std::string get = "get k\0 junk\r\n"s;
  ParseResult res = ParseRequest(get, Limits(), &r);
  ASSERT_EQ(res.status, ParseStatus::kOk);
  ASSERT_EQ(r.keys.size(), 1u);
  EXPECT_EQ(r.keys[0].in(get), "k");
}

TEST(RequestErrors, MetaWithTwentyTokensIsRefusedWithoutReadingTheValue) {
  std::string ms = "ms x 12";
  for (int i = 0; i < 17; ++i) ms += " T0";  // 20 tokens
  ExpectErrors({
      {ms + "\r\nget secret\r\n\r\n", "CLIENT_ERROR options flags too long\r\n", 0},  // ms's text
      {"mg k" + std::string(18 * 2, ' ').replace(0, 36, " v v v v v v v v v v v v v v v v v v") + "\r\n",
       "CLIENT_ERROR options flags are too long\r\n", 0},
  });
  std::string ok = "ms x 2 T0 F0 k c Oa s t f v h u l I MS P L";  // 19 tokens, no flag twice: fine
  Request r;
  EXPECT_EQ(ParseRequest(ok + "\r\nhi\r\n", Limits(), &r).status, ParseStatus::kOk);
}

TEST(RequestErrors, ADataLengthThatOverflowsAnIntIsRefusedWithoutSwallowing) {
  ExpectErrors({
      {"set k 0 0 2147483647\r\nx\r\n", kBadFormat, 0},
      {"set k 0 0 2147483646\r\nx\r\n", kBadFormat, 0},
      {"ms k 2147483646\r\nx\r\n", kBadFormat, 0},
  });
}

TEST(RequestErrors, ValueTooLargeIsSwallowed) {
  Limits limits;
  limits.max_value = 16;
  const std::string line = "set k 0 0 20\r\n";
  // Only the line has arrived: all 20 + 2 value bytes are still to come.
  {
    Request r;
    ParseResult res = ParseRequest(line, limits, &r);
    ASSERT_EQ(res.status, ParseStatus::kError);
    EXPECT_EQ(res.error.reply, kTooLarge);
    EXPECT_EQ(res.error.consume, line.size());
    EXPECT_EQ(res.error.swallow, 22u);
    EXPECT_FALSE(res.error.close);
  }
  // Part of the value has arrived.
  {
    const std::string in = line + "0123456789";
    ParseError e = ParseErr(in, limits);
    EXPECT_EQ(e.reply, kTooLarge);
    EXPECT_EQ(e.consume, in.size());
    EXPECT_EQ(e.swallow, 12u);
  }
  // The whole value and the next request have arrived: only the value is dropped.
  {
    const std::string in = line + std::string(20, 'v') + "\r\nget k\r\n";
    ParseError e = ParseErr(in, limits);
    EXPECT_EQ(e.reply, kTooLarge);
    EXPECT_EQ(e.consume, line.size() + 22);
    EXPECT_EQ(e.swallow, 0u);
    Request next;
    EXPECT_EQ(ParseRequest(std::string_view(in).substr(e.consume), limits, &next).status, ParseStatus::kOk);
    EXPECT_EQ(next.cmd, Command::kGet);
  }
  // Exactly the limit is fine.
  {
    const std::string in = "set k 0 0 16\r\n" + std::string(16, 'v') + "\r\n";
    Request r;
    EXPECT_EQ(ParseAllPrefixes(in, &r, limits).status, ParseStatus::kOk);
    EXPECT_EQ(r.value_len, 16u);
  }
  // noreply: no reply, still swallowed.
  {
    const std::string in = "set k 0 0 20 noreply\r\n01234";
    ParseError e = ParseErr(in, limits);
    EXPECT_EQ(e.reply, "");
    EXPECT_EQ(e.consume, in.size());
    EXPECT_EQ(e.swallow, 17u);
  }
  // Meta set as well.
  {
    const std::string in = "ms k 100 T0\r\n" + std::string(50, 'v');
    ParseError e = ParseErr(in, limits);
    EXPECT_EQ(e.reply, kTooLarge);
    EXPECT_EQ(e.consume, in.size());
    EXPECT_EQ(e.swallow, 52u);
  }
}

TEST(RequestErrors, DefaultLimitIsOneMegabyte) {
  const std::string in = "set k 0 0 1048577\r\n";
  Request r;
  ParseResult res = ParseRequest(in, Limits(), &r);
  ASSERT_EQ(res.status, ParseStatus::kError);
  EXPECT_EQ(res.error.reply, kTooLarge);
  EXPECT_EQ(res.error.swallow, 1048579u);

  ParseResult ok = ParseRequest("set k 0 0 1048576\r\n", Limits(), &r);
  EXPECT_EQ(ok.status, ParseStatus::kNeedMore);
  EXPECT_EQ(ok.need, 19u + 1048576u + 2u);
}

TEST(RequestErrors, BadDataChunk) {
  ExpectErrors({
      {"set k 0 0 3\r\nabcde\r\n", kBadChunk, 13 + 3 + 2},
      {"set k 0 0 3\r\nabc\n\n", kBadChunk, 13 + 3 + 2},
      {"set k 0 0 3\r\nabc\r\r", kBadChunk, 13 + 3 + 2},
      {"cas k 0 0 1 5\r\nxyz", kBadChunk, 15 + 1 + 2},
      {"ms k 2 T0\r\nabcd", kBadChunk, 11 + 2 + 2},
      {"set k 0 0 0\r\nXY", kBadChunk, 13 + 0 + 2},
  });
  ParseError quiet = ParseErr("set k 0 0 3 noreply\r\nabcde\r\n");
  EXPECT_EQ(quiet.reply, "");
  EXPECT_EQ(quiet.consume, 21u + 5u);
}

TEST(RequestErrors, IncrDecrBadDelta) {
  ExpectErrors({
      {"incr k abc\r\n", kBadDelta, 0},
      {"incr k -1\r\n", kBadDelta, 0},
      {"decr k 18446744073709551616\r\n", kBadDelta, 0},
      {"decr k 1.5\r\n", kBadDelta, 0},
  });
}

TEST(RequestErrors, TouchBadExptime) {
  ExpectErrors({
      {"touch k abc\r\n", kBadExptime, 0},
  });
}

TEST(RequestErrors, DeleteWithTimeIsUsageError) {
  ExpectErrors({
      {"delete a 5\r\n", kDeleteUsage, 0},
      {"delete a x\r\n", kDeleteUsage, 0},
      {"delete a 5 noreplyx\r\n", kDeleteUsage, 0},
  });
}

TEST(RequestErrors, FlushAllBadDelay) {
  ExpectErrors({
      {"flush_all abc\r\n", kBadExptime, 0},
      {"flush_all -x noreply\r\n", "", 0},
  });
}

TEST(RequestErrors, TextNoreplySuppressesErrorReplies) {
  const std::string key(251, 'k');
  for (const std::string& in : std::vector<std::string>{"set k 0 0 abc noreply\r\n", "set " + key + " 0 0 1 noreply\r\n",
                               "cas k 0 0 1 x noreply\r\n", "incr k abc noreply\r\n", "decr " + key + " 1 noreply\r\n",
                               "touch k abc noreply\r\n", "delete a 5 noreply\r\n", "delete " + key + " noreply\r\n",
                               "flush_all abc noreply\r\n"}) {
    SCOPED_TRACE(in.substr(0, 60));
    ParseError e = ParseErr(in);
    EXPECT_EQ(e.reply, "");
    EXPECT_EQ(e.consume, in.size());
    EXPECT_FALSE(e.close);
  }
}

TEST(RequestErrors, MetaQuietDoesNotSuppressErrors) {
  const std::string key(251, 'k');
  ExpectErrors({
      {"mg " + key + " q\r\n", kBadFormat, 0},
      {"ms k abc q\r\n", kBadFormat, 0},
      {"mg !!!! b q\r\n", kBadKeyEncoding, 0},
  });
}

TEST(RequestErrors, MetaBadBase64Key) {
  ExpectErrors({
      {"mg abc b\r\n", kBadKeyEncoding, 0},
      // md and ma answer every flag error with one text (memcached 1.6.18).
      {"md Zm9v= b\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n", 0},
      {"ma Zm9*Zm9v b\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n", 0},
  });
}

// Regression (fixed): memcached answers an ms whose b-flag key does not
// decode with "CLIENT_ERROR error decoding key" and then swallows the <datalen>+2 value bytes (proto_text.c
// process_mset_command: _meta_flag_preparse fails -> goto error -> c->sbytes = vlen; conn_swallow). ParseRequest
// consumes only the command line, so the value block is parsed as the next command and the client gets a second,
// unrequested reply ("ERROR") - its replies no longer line up with its requests.
TEST(RequestErrors, MetaSetBadBase64KeySwallowsValue) {
  const std::string in = "ms Zg=AA 1 b\r\nx\r\nmn\r\n";  // five digits: memcached cannot decode it
  ParseError e = ParseErr(in);
  EXPECT_EQ(e.reply, kBadKeyEncoding);
  EXPECT_FALSE(e.close);
  EXPECT_EQ(e.consume + e.swallow, 14u + 1u + 2u);  // line + value + CRLF; "mn" is the next request
}

TEST(RequestErrors, OverlongLineWithoutNewlineCloses) {
  std::string in = "set ";
  in.append(2100 - in.size(), 'x');
  ParseError e = ParseErr(in);
  EXPECT_TRUE(e.close);
  EXPECT_EQ(e.reply, "");
  EXPECT_EQ(e.consume, in.size());

  ParseError junk = ParseErr(std::string(2049, 'z'));
  EXPECT_TRUE(junk.close);
}

TEST(RequestErrors, LongGetLineIsAllowedUpToRetrievalLimit) {
  Limits limits;
  limits.max_retrieval_line = 4096;
  for (std::string start : {"get ", "gets ", "  get "}) {
    SCOPED_TRACE(start);
    std::string in = start;
    while (in.size() < 3000) in += "key" + std::to_string(in.size()) + " ";
    Request r;
    EXPECT_EQ(ParseAllPrefixes(in, &r, limits).status, ParseStatus::kNeedMore);
    // Past the retrieval limit without a newline: closed.
    while (in.size() <= 4096) in += "key ";
    ParseError e = ParseErr(in, limits);
    EXPECT_TRUE(e.close);
  }
  // A complete get line longer than the retrieval limit is refused as well.
  std::string in = "get";
  while (in.size() < 5000) in += " k";
  in += "\r\n";
  Request r;
  ParseResult res = ParseRequest(in, limits, &r);
  ASSERT_EQ(res.status, ParseStatus::kError);
  EXPECT_TRUE(res.error.close);
}

}  // namespace
}  // namespace memha::protocol

namespace memha::protocol {
namespace {

// Numbers are read as memcached reads them (strtol and friends, truncated to the field's width), so a request
// memcached accepts is accepted, and what the sidecar composes from it means the same to the member.
TEST(RequestErrors, NumbersAreReadAsMemcachedReadsThem) {
  struct Case {
    std::string in;
    uint32_t flags;
    int64_t exptime;
    uint32_t vlen;
  };
  for (const Case& c : {Case{"set k 4294967296 0 1\r\nx\r\n", 0, 0, 1},       // flags truncated to 32 bits
                        Case{"set k 0 0 4294967297\r\nx\r\n", 0, 0, 1},       // length truncated to an int
                        Case{"set k +5 -0 1\r\nx\r\n", 5, 0, 1},              // signs strtol accepts
                        Case{"set k 7\t 2147483648 1\r\nx\r\n", 7, INT32_MIN, 1}}) {  // stops at whitespace
    SCOPED_TRACE(c.in);
    Request r;
    ParseResult res = ParseRequest(c.in, Limits(), &r);
    ASSERT_EQ(res.status, ParseStatus::kOk) << res.error.reply;
    EXPECT_EQ(r.client_flags, c.flags);
    EXPECT_EQ(r.exptime, c.exptime);
    EXPECT_EQ(r.value_len, c.vlen);
  }
  int32_t v;
  EXPECT_FALSE(McStrtol("", &v));
  EXPECT_FALSE(McStrtol("5x", &v));
  EXPECT_FALSE(McStrtol("99999999999999999999", &v));  // overflows a long: ERANGE
  uint32_t u;
  EXPECT_FALSE(McStrtoul("-1", &u));
  uint64_t u64;
  EXPECT_FALSE(McStrtoull("-1", &u64));
  EXPECT_TRUE(McStrtoull("18446744073709551615", &u64));
}

// memcached closes, without a word, a connection whose unknown command ends like an HTTP request line: a forged
// HTTP request (SSRF) must not reach the cache behind it.
TEST(RequestErrors, HttpRequestLineClosesTheConnection) {
  for (std::string in : {"POST / HTTP/1.1\r\nset smuggled 0 0 1\r\nX\r\n", "GET /x HTTP/1.0\r\n"}) {
    Request r;
    ParseResult res = ParseRequest(in, Limits(), &r);
    ASSERT_EQ(res.status, ParseStatus::kError);
    EXPECT_TRUE(res.error.close);
    EXPECT_EQ(res.error.reply, "");
  }
  // Commands memcached dispatches by their first letter answer ERROR instead, like memcached.
  Request r;
  ParseResult res = ParseRequest("gx / HTTP/1.1\r\n", Limits(), &r);
  ASSERT_EQ(res.status, ParseStatus::kError);
  EXPECT_FALSE(res.error.close);
  EXPECT_EQ(res.error.reply, "ERROR\r\n");
}

// Meta flags are read by their first character, as memcached reads them: "qx" is quiet mode, "O" a client opaque.
TEST(RequestErrors, MetaFlagsAreReadByTheirFirstCharacter) {
  const std::string in = "mg k v qx kk Oabc T+10\r\n";
  Request r;
  ASSERT_EQ(ParseRequest(in, Limits(), &r).status, ParseStatus::kOk);
  EXPECT_TRUE(r.noreply);
  EXPECT_EQ(r.opaque.in(in), "Oabc");
  EXPECT_EQ(r.nflags, 5);
  for (const auto& [bad, reply] : std::vector<std::pair<std::string, std::string>>{
           {"mg k v vv\r\n", "CLIENT_ERROR duplicate flag\r\n"},
           {"mg k v Z\r\n", "CLIENT_ERROR invalid flag\r\n"},
           {"mg k Tx\r\n", "CLIENT_ERROR bad token in command line format\r\n"},
           {"mg k O" + std::string(32, 'a') + "\r\n", "CLIENT_ERROR opaque token too long\r\n"},
           {"ma k MX\r\n", "CLIENT_ERROR invalid mode for ma M token\r\n"},
           {"md k k k\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n"}}) {
    SCOPED_TRACE(bad);
    ParseResult res = ParseRequest(bad, Limits(), &r);
    ASSERT_EQ(res.status, ParseStatus::kError);
    EXPECT_EQ(res.error.reply, reply);
  }
  // An ms refused for its flags swallows its value block, as memcached does.
  ParseResult res = ParseRequest("ms k 3 MX\r\nabc\r\nmn\r\n", Limits(), &r);
  ASSERT_EQ(res.status, ParseStatus::kError);
  EXPECT_EQ(res.error.reply, "CLIENT_ERROR invalid mode for ms M token\r\n");
  EXPECT_EQ(res.error.consume, std::string("ms k 3 MX\r\nabc\r\n").size());
}

}  // namespace
}  // namespace memha::protocol

namespace memha::protocol {
namespace {

// From memcached's t/strtol-testing.t: verbosity's level is an unsigned number (the sidecar answers verbosity
// itself, as memcached would).
TEST(RequestErrors, VerbosityReadsItsLevelLikeMemcached) {
  Request r;
  ParseResult res = ParseRequest("verbosity invalid\r\n", Limits(), &r);
  ASSERT_EQ(res.status, ParseStatus::kError);
  EXPECT_EQ(res.error.reply, "CLIENT_ERROR bad command line format\r\n");
  res = ParseRequest("verbosity -1\r\n", Limits(), &r);
  ASSERT_EQ(res.status, ParseStatus::kError);
  EXPECT_EQ(ParseRequest("verbosity 1 noreply\r\n", Limits(), &r).status, ParseStatus::kOk);
  EXPECT_TRUE(r.noreply);
}

}  // namespace
}  // namespace memha::protocol
