// Request parser: every text and meta command parses into the right fields; pipelined input; binary refusal.
// Every input goes through ParseAllPrefixes, which also checks each shorter prefix of it.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "sidecar/protocol/request.h"
#include "tests/unit/request_check.h"

namespace memha::protocol {
namespace {

using test::KeyOf;
using test::ParseAllPrefixes;

Request ParseOk(std::string_view in, const Limits& limits = Limits()) {
  Request r;
  ParseResult res = ParseAllPrefixes(in, &r, limits);
  EXPECT_EQ(res.status, ParseStatus::kOk) << "input: " << in << " error: " << test::DescribeError(res.error);
  return r;
}

// --- text storage commands ---------------------------------------------------------------------------------

TEST(RequestParse, SetAllFields) {
  const std::string in = "set foo 5 100 3\r\nbar\r\n";
  Request r = ParseOk(in);
  EXPECT_EQ(r.cmd, Command::kSet);
  ASSERT_EQ(r.keys.size(), 1u);
  EXPECT_EQ(KeyOf(r, in), "foo");
  EXPECT_EQ(r.client_flags, 5u);
  EXPECT_EQ(r.exptime, 100);
  EXPECT_EQ(r.value_len, 3u);
  EXPECT_EQ(r.data.in(in), "bar");
  EXPECT_EQ(r.line.in(in), "set foo 5 100 3");
  EXPECT_FALSE(r.noreply);
  EXPECT_EQ(r.consumed, in.size());
}

TEST(RequestParse, StorageCommandsWithNoreply) {
  struct Case {
    std::string name;
    Command cmd;
  };
  for (const Case& c : {Case{"set", Command::kSet}, Case{"add", Command::kAdd}, Case{"replace", Command::kReplace},
                        Case{"append", Command::kAppend}, Case{"prepend", Command::kPrepend}}) {
    SCOPED_TRACE(c.name);
    const std::string in = c.name + " k:" + c.name + " 4294967295 -1 5 noreply\r\nhello\r\n";
    Request r = ParseOk(in);
    EXPECT_EQ(r.cmd, c.cmd);
    EXPECT_EQ(KeyOf(r, in), "k:" + c.name);
    EXPECT_EQ(r.client_flags, 4294967295u);
    EXPECT_EQ(r.exptime, -1);
    EXPECT_EQ(r.value_len, 5u);
    EXPECT_EQ(r.data.in(in), "hello");
    EXPECT_TRUE(r.noreply);
    EXPECT_EQ(r.consumed, in.size());
    EXPECT_TRUE(IsStorage(r.cmd));
  }
}

TEST(RequestParse, Cas) {
  const std::string in = "cas key 1 0 2 18446744073709551615\r\nab\r\n";
  Request r = ParseOk(in);
  EXPECT_EQ(r.cmd, Command::kCas);
  EXPECT_EQ(KeyOf(r, in), "key");
  EXPECT_EQ(r.cas_unique, 18446744073709551615ull);
  EXPECT_EQ(r.data.in(in), "ab");
  EXPECT_FALSE(r.noreply);

  const std::string quiet = "cas key 1 0 2 77 noreply\r\nab\r\n";
  Request q = ParseOk(quiet);
  EXPECT_EQ(q.cas_unique, 77u);
  EXPECT_TRUE(q.noreply);
}

TEST(RequestParse, ValueMayContainCrlfAndBeEmpty) {
  const std::string in = "set k 0 0 6\r\na\r\nb\r\n\r\n";
  Request r = ParseOk(in);
  EXPECT_EQ(r.data.in(in), "a\r\nb\r\n");
  EXPECT_EQ(r.consumed, in.size());

  const std::string empty = "set k 0 0 0\r\n\r\n";
  Request e = ParseOk(empty);
  EXPECT_EQ(e.value_len, 0u);
  EXPECT_EQ(e.data.len, 0u);
  EXPECT_EQ(e.data.off, 13u);
  EXPECT_EQ(e.consumed, empty.size());
}

TEST(RequestParse, BareNewlineTerminatesLine) {
  const std::string in = "set k 0 0 2\nhi\r\n";
  Request r = ParseOk(in);
  EXPECT_EQ(r.line.in(in), "set k 0 0 2");
  EXPECT_EQ(r.data.in(in), "hi");
  EXPECT_EQ(r.consumed, in.size());

  const std::string get = "get a b\n";
  Request g = ParseOk(get);
  ASSERT_EQ(g.keys.size(), 2u);
  EXPECT_EQ(KeyOf(g, get, 1), "b");
}

TEST(RequestParse, UnknownTrailingTokenIsNotNoreply) {
  const std::string in = "set k 0 0 1 later\r\nx\r\n";
  Request r = ParseOk(in);
  EXPECT_FALSE(r.noreply);
  EXPECT_EQ(r.data.in(in), "x");
}

// --- retrieval ------------------------------------------------------------------------------------------

TEST(RequestParse, GetOneAndManyKeys) {
  const std::string one = "get foo\r\n";
  Request r = ParseOk(one);
  EXPECT_EQ(r.cmd, Command::kGet);
  ASSERT_EQ(r.keys.size(), 1u);
  EXPECT_EQ(KeyOf(r, one), "foo");
  EXPECT_EQ(r.consumed, one.size());

  const std::string many = "  gets   a bb  ccc \r\n";
  Request m = ParseOk(many);
  EXPECT_EQ(m.cmd, Command::kGets);
  ASSERT_EQ(m.keys.size(), 3u);
  EXPECT_EQ(KeyOf(m, many, 0), "a");
  EXPECT_EQ(KeyOf(m, many, 1), "bb");
  EXPECT_EQ(KeyOf(m, many, 2), "ccc");
  EXPECT_EQ(RoutingKey(m, many, 2), "ccc");
}

TEST(RequestParse, GetWithMoreKeysThanTokenLimit) {
  std::string in = "get";
  for (int i = 0; i < 100; ++i) in += " key" + std::to_string(i);
  in += "\r\n";
  Request r = ParseOk(in);
  ASSERT_EQ(r.keys.size(), 100u);
  EXPECT_EQ(KeyOf(r, in, 0), "key0");
  EXPECT_EQ(KeyOf(r, in, 23), "key23");
  EXPECT_EQ(KeyOf(r, in, 99), "key99");
}

TEST(RequestParse, GatAndGats) {
  const std::string in = "gat 10 a b\r\n";
  Request r = ParseOk(in);
  EXPECT_EQ(r.cmd, Command::kGat);
  EXPECT_EQ(r.exptime, 10);
  ASSERT_EQ(r.keys.size(), 2u);
  EXPECT_EQ(KeyOf(r, in, 0), "a");
  EXPECT_EQ(KeyOf(r, in, 1), "b");

  const std::string s = "gats -1 z\r\n";
  Request g = ParseOk(s);
  EXPECT_EQ(g.cmd, Command::kGats);
  EXPECT_EQ(g.exptime, -1);
  ASSERT_EQ(g.keys.size(), 1u);
  EXPECT_EQ(KeyOf(g, s), "z");
}

TEST(RequestParse, KeyOfExactly250BytesIsAccepted) {
  const std::string key(250, 'k');
  const std::string in = "get " + key + "\r\n";
  Request r = ParseOk(in);
  ASSERT_EQ(r.keys.size(), 1u);
  EXPECT_EQ(KeyOf(r, in), key);

  const std::string set = "set " + key + " 0 0 1\r\nx\r\n";
  EXPECT_EQ(KeyOf(ParseOk(set), set), key);
}

TEST(RequestParse, LongGetLineWithinRetrievalLimit) {
  std::string in = "get";
  while (in.size() < 5000) in += " k" + std::to_string(in.size());
  in += "\r\n";
  Limits limits;
  limits.max_retrieval_line = 8192;
  Request r = ParseOk(in, limits);
  EXPECT_GT(r.keys.size(), 500u);
  EXPECT_EQ(r.consumed, in.size());
}

// --- other text commands ----------------------------------------------------------------------------------

TEST(RequestParse, DeleteForms) {
  struct Case {
    std::string in;
    bool noreply;
  };
  for (const Case& c : {Case{"delete k\r\n", false}, Case{"delete k noreply\r\n", true}, Case{"delete k 0\r\n", false},
                        Case{"delete k 0 noreply\r\n", true}}) {
    SCOPED_TRACE(c.in);
    Request r = ParseOk(c.in);
    EXPECT_EQ(r.cmd, Command::kDelete);
    EXPECT_EQ(KeyOf(r, c.in), "k");
    EXPECT_EQ(r.noreply, c.noreply);
    EXPECT_EQ(r.consumed, c.in.size());
  }
}

TEST(RequestParse, IncrDecr) {
  const std::string in = "incr counter 42\r\n";
  Request r = ParseOk(in);
  EXPECT_EQ(r.cmd, Command::kIncr);
  EXPECT_EQ(KeyOf(r, in), "counter");
  EXPECT_EQ(r.delta, 42u);
  EXPECT_FALSE(r.noreply);

  const std::string d = "decr c 18446744073709551615 noreply\r\n";
  Request dr = ParseOk(d);
  EXPECT_EQ(dr.cmd, Command::kDecr);
  EXPECT_EQ(dr.delta, 18446744073709551615ull);
  EXPECT_TRUE(dr.noreply);
}

TEST(RequestParse, Touch) {
  const std::string in = "touch k 3600\r\n";
  Request r = ParseOk(in);
  EXPECT_EQ(r.cmd, Command::kTouch);
  EXPECT_EQ(KeyOf(r, in), "k");
  EXPECT_EQ(r.exptime, 3600);
  EXPECT_FALSE(r.noreply);
  EXPECT_TRUE(ParseOk("touch k -5 noreply\r\n").noreply);
  EXPECT_EQ(ParseOk("touch k -5 noreply\r\n").exptime, -5);
}

TEST(RequestParse, AdminCommands) {
  Request v = ParseOk("version\r\n");
  EXPECT_EQ(v.cmd, Command::kVersion);
  EXPECT_TRUE(v.keys.empty());
  EXPECT_EQ(ParseOk("quit\r\n").cmd, Command::kQuit);
  EXPECT_EQ(ParseOk("stats\r\n").cmd, Command::kStats);
  const std::string stats = "stats slabs\r\n";
  Request s = ParseOk(stats);
  EXPECT_EQ(s.cmd, Command::kStats);
  EXPECT_EQ(s.line.in(stats), "stats slabs");

  Request vb = ParseOk("verbosity 1\r\n");
  EXPECT_EQ(vb.cmd, Command::kVerbosity);
  EXPECT_FALSE(vb.noreply);
  EXPECT_TRUE(ParseOk("verbosity 1 noreply\r\n").noreply);
}

TEST(RequestParse, FlushAllForms) {
  Request a = ParseOk("flush_all\r\n");
  EXPECT_EQ(a.cmd, Command::kFlushAll);
  EXPECT_EQ(a.exptime, 0);
  EXPECT_FALSE(a.noreply);

  Request b = ParseOk("flush_all 10\r\n");
  EXPECT_EQ(b.exptime, 10);
  EXPECT_FALSE(b.noreply);

  Request c = ParseOk("flush_all noreply\r\n");
  EXPECT_EQ(c.exptime, 0);
  EXPECT_TRUE(c.noreply);

  Request d = ParseOk("flush_all 30 noreply\r\n");
  EXPECT_EQ(d.exptime, 30);
  EXPECT_TRUE(d.noreply);
}

// --- meta commands ------------------------------------------------------------------------------------------

TEST(RequestParse, MetaGet) {
  const std::string in = "mg foo v f t T30\r\n";
  Request r = ParseOk(in);
  EXPECT_EQ(r.cmd, Command::kMetaGet);
  EXPECT_TRUE(IsMeta(r.cmd));
  EXPECT_EQ(KeyOf(r, in), "foo");
  EXPECT_EQ(r.meta_flags.in(in), "v f t T30");
  EXPECT_FALSE(r.noreply);
  EXPECT_FALSE(r.meta_base64);
  EXPECT_EQ(RoutingKey(r, in), "foo");

  const std::string bare = "mg foo\r\n";
  Request b = ParseOk(bare);
  EXPECT_EQ(KeyOf(b, bare), "foo");
  EXPECT_EQ(b.meta_flags.len, 0u);
}

TEST(RequestParse, MetaQuietSetsNoreply) {
  for (std::string in : {"mg foo v q\r\n", "md foo q\r\n", "ma foo q D5\r\n", "mg foo q k\r\n"}) {
    SCOPED_TRACE(in);
    EXPECT_TRUE(ParseOk(in).noreply);
  }
  // A flag that merely contains q is not q.
  EXPECT_FALSE(ParseOk("mg foo Oq\r\n").noreply);
  const std::string ms = "ms foo 2 q T0\r\nhi\r\n";
  Request r = ParseOk(ms);
  EXPECT_TRUE(r.noreply);
  EXPECT_EQ(r.meta_flags.in(ms), "q T0");
}

TEST(RequestParse, MetaSet) {
  const std::string in = "ms foo 5 T10 F3 I\r\nhello\r\n";
  Request r = ParseOk(in);
  EXPECT_EQ(r.cmd, Command::kMetaSet);
  EXPECT_EQ(KeyOf(r, in), "foo");
  EXPECT_EQ(r.value_len, 5u);
  EXPECT_EQ(r.data.in(in), "hello");
  EXPECT_EQ(r.meta_flags.in(in), "T10 F3 I");
  EXPECT_EQ(r.consumed, in.size());
  EXPECT_FALSE(r.noreply);

  const std::string noflags = "ms k 0\r\n\r\n";
  Request n = ParseOk(noflags);
  EXPECT_EQ(n.value_len, 0u);
  EXPECT_EQ(n.meta_flags.len, 0u);
  EXPECT_EQ(n.consumed, noflags.size());
}

TEST(RequestParse, MetaDeleteArithmeticDebugNoop) {
  const std::string md = "md k I T30\r\n";
  Request d = ParseOk(md);
  EXPECT_EQ(d.cmd, Command::kMetaDelete);
  EXPECT_EQ(KeyOf(d, md), "k");
  EXPECT_EQ(d.meta_flags.in(md), "I T30");

  const std::string ma = "ma n MD D7 N0\r\n";
  Request a = ParseOk(ma);
  EXPECT_EQ(a.cmd, Command::kMetaArithmetic);
  EXPECT_EQ(KeyOf(a, ma), "n");
  EXPECT_EQ(a.meta_flags.in(ma), "MD D7 N0");

  const std::string me = "me dbg\r\n";
  Request e = ParseOk(me);
  EXPECT_EQ(e.cmd, Command::kMetaDebug);
  EXPECT_EQ(KeyOf(e, me), "dbg");

  Request n = ParseOk("mn\r\n");
  EXPECT_EQ(n.cmd, Command::kMetaNoop);
  EXPECT_TRUE(n.keys.empty());
  EXPECT_FALSE(n.noreply);
}

TEST(RequestParse, MetaBase64KeyRoutesByDecodedKey) {
  const std::string in = "mg Zm9vYmFy b v\r\n";  // "foobar"
  Request r = ParseOk(in);
  EXPECT_TRUE(r.meta_base64);
  EXPECT_EQ(r.decoded_key, "foobar");
  EXPECT_EQ(RoutingKey(r, in), "foobar");
  EXPECT_EQ(KeyOf(r, in), "Zm9vYmFy");  // forwarded as sent

  const std::string ms = "ms AAEC/w== 1 b\r\nx\r\n";  // bytes 00 01 02 ff
  Request s = ParseOk(ms);
  EXPECT_TRUE(s.meta_base64);
  EXPECT_EQ(RoutingKey(s, ms), std::string("\x00\x01\x02\xff", 4));
  EXPECT_EQ(s.data.in(ms), "x");
}

TEST(RequestParse, Base64Decode) {
  std::string out;
  ASSERT_TRUE(Base64Decode("Zm9v", &out));
  EXPECT_EQ(out, "foo");
  ASSERT_TRUE(Base64Decode("Zm8=", &out));
  EXPECT_EQ(out, "fo");
  ASSERT_TRUE(Base64Decode("Zg==", &out));
  EXPECT_EQ(out, "f");
  ASSERT_TRUE(Base64Decode("+/+/", &out));
  EXPECT_EQ(out, "\xfb\xff\xbf");
  EXPECT_FALSE(Base64Decode("", &out));
  EXPECT_FALSE(Base64Decode("Zg=", &out));
  EXPECT_FALSE(Base64Decode("Z===", &out));
  EXPECT_FALSE(Base64Decode("Zm9!", &out));  // three digits
  // memcached 1.6.18's decoder, which the sidecar must match (the key it routes by is the key memcached stores):
  // characters outside the alphabet are skipped, '=' is a zero digit, decoding stops after a padded block.
  ASSERT_TRUE(Base64Decode("Zg==Zm9v", &out));
  EXPECT_EQ(out, "f");
  ASSERT_TRUE(Base64Decode("Zm=v", &out));
  EXPECT_EQ(out.size(), 2u);
  ASSERT_TRUE(Base64Decode("Zm9*v", &out));
  EXPECT_EQ(out, "foo");
  EXPECT_FALSE(Base64Decode("Zm9*Zm9v", &out));  // seven digits
}

TEST(RequestParse, CommandClassification) {
  EXPECT_EQ(CommandName(Command::kGet), "get");
  EXPECT_EQ(CommandName(Command::kFlushAll), "flush_all");
  EXPECT_EQ(CommandName(Command::kMetaSet), "ms");
  EXPECT_EQ(CommandName(Command::kMetaDebug), "me");
  for (int i = 0; i < static_cast<int>(Command::kCount); ++i) {
    Command c = static_cast<Command>(i);
    SCOPED_TRACE(std::string(CommandName(c)));
    const std::string_view n = CommandName(c);
    EXPECT_EQ(IsRetrieval(c), n == "get" || n == "gets" || n == "gat" || n == "gats");
    EXPECT_EQ(IsStorage(c), n == "set" || n == "add" || n == "replace" || n == "append" || n == "prepend" || n == "cas");
    EXPECT_EQ(IsMeta(c), n.size() == 2 && n[0] == 'm');
  }
}

// --- pipelining and incomplete input ------------------------------------------------------------------------

TEST(RequestParse, Pipeline) {
  const std::string in =
      "get a\r\nset b 1 2 3\r\nxyz\r\ndelete c noreply\r\nbogus\r\nmn\r\nms d 2 q\r\nhi\r\nincr e 1\r\n";
  struct Want {
    ParseStatus status;
    Command cmd;
    std::string key;
  };
  const Want want[] = {
      {ParseStatus::kOk, Command::kGet, "a"},      {ParseStatus::kOk, Command::kSet, "b"},
      {ParseStatus::kOk, Command::kDelete, "c"},   {ParseStatus::kError, Command::kGet, ""},
      {ParseStatus::kOk, Command::kMetaNoop, ""},  {ParseStatus::kOk, Command::kMetaSet, "d"},
      {ParseStatus::kOk, Command::kIncr, "e"},
  };
  size_t pos = 0;
  for (const Want& w : want) {
    SCOPED_TRACE("at offset " + std::to_string(pos));
    ASSERT_LT(pos, in.size());
    std::string_view rest = std::string_view(in).substr(pos);
    Request r;
    ParseResult res = ParseAllPrefixes(rest, &r);
    ASSERT_EQ(res.status, w.status);
    if (res.status == ParseStatus::kError) {
      EXPECT_EQ(res.error.reply, "ERROR\r\n");
      EXPECT_EQ(res.error.consume, 7u);
      pos += res.error.consume;
      continue;
    }
    EXPECT_EQ(r.cmd, w.cmd);
    if (!w.key.empty()) {
      EXPECT_EQ(KeyOf(r, rest), w.key);
    }
    pos += r.consumed;
  }
  EXPECT_EQ(pos, in.size());
  Request r;
  EXPECT_EQ(ParseRequest(std::string_view(in).substr(pos), Limits(), &r).status, ParseStatus::kNeedMore);
}

TEST(RequestParse, NeedMoreReportsTotalForValue) {
  const std::string in = "set k 0 0 10\r\n0123";
  Request r;
  ParseResult res = ParseRequest(in, Limits(), &r);
  ASSERT_EQ(res.status, ParseStatus::kNeedMore);
  EXPECT_EQ(res.need, 14u + 10u + 2u);

  ParseResult empty = ParseRequest("", Limits(), &r);
  EXPECT_EQ(empty.status, ParseStatus::kNeedMore);
  EXPECT_EQ(empty.need, 0u);
}

TEST(RequestParse, LineOfMaxLineWithoutNewlineWaits) {
  std::string in = "set ";
  in.append(2048 - in.size(), 'x');
  Request r;
  EXPECT_EQ(ParseRequest(in, Limits(), &r).status, ParseStatus::kNeedMore);
}

// --- binary protocol ------------------------------------------------------------------------------------

TEST(RequestParse, BinaryProtocolIsRefusedAndClosed) {
  std::string header(24, '\0');
  header[0] = static_cast<char>(0x80);
  header[1] = 0x01;  // set
  header[12] = static_cast<char>(0xde);
  header[13] = static_cast<char>(0xad);
  header[14] = static_cast<char>(0xbe);
  header[15] = static_cast<char>(0xef);
  Request r;
  ParseResult res = ParseAllPrefixes(header, &r);
  ASSERT_EQ(res.status, ParseStatus::kError);
  EXPECT_TRUE(res.error.close);
  EXPECT_EQ(res.error.consume, 24u);
  const std::string& reply = res.error.reply;
  ASSERT_GE(reply.size(), 24u);
  EXPECT_EQ(static_cast<uint8_t>(reply[0]), 0x81);
  EXPECT_EQ(static_cast<uint8_t>(reply[1]), 0x01);
  EXPECT_EQ(static_cast<uint8_t>(reply[6]), 0x00);
  EXPECT_EQ(static_cast<uint8_t>(reply[7]), 0x83);
  uint32_t body = uint32_t(uint8_t(reply[8])) << 24 | uint32_t(uint8_t(reply[9])) << 16 |
                  uint32_t(uint8_t(reply[10])) << 8 | uint32_t(uint8_t(reply[11]));
  EXPECT_EQ(body, reply.size() - 24);
  EXPECT_EQ(reply.substr(12, 4), "\xde\xad\xbe\xef");

  ParseResult partial = ParseRequest(std::string_view(header).substr(0, 10), Limits(), &r);
  EXPECT_EQ(partial.status, ParseStatus::kNeedMore);
  EXPECT_EQ(partial.need, 24u);
}

}  // namespace
}  // namespace memha::protocol
