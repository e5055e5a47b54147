// Member reply parser: every meta reply must echo the opaque of the request it is matched with, fenced replies
// must be followed by their "MN", and anything else is kBad (the stream is out of step: nobody gets it). Every
// input is also parsed from each of its prefixes (a reply arriving in pieces).
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "sidecar/protocol/reply.h"
#include "sidecar/router/client_reply.h"

namespace memha::protocol {
namespace {

// Parses `in` whole, after checking that every proper prefix is kNeedMore (never a premature kDone or kBad).
ReplyStatus ParseWhole(std::string_view in, ReplyKind kind, uint32_t opaque, Reply* reply) {
  for (size_t n = 0; n < in.size(); ++n) {
    Reply partial;
    size_t need = 0;
    ReplyStatus st = ParseReply(in.substr(0, n), kind, opaque, &partial, &need);
    if (st != ReplyStatus::kNeedMore) {
      ADD_FAILURE() << "prefix of " << n << " bytes of '" << in << "' gave a verdict";
      return st;
    }
    EXPECT_TRUE(need == 0 || need > n) << "need " << need << " at " << n;
  }
  size_t need = 0;
  return ParseReply(in, kind, opaque, reply, &need);
}

TEST(Reply, MetaRepliesWithTheirOpaque) {
  struct Case {
    std::string in;
    std::string code;
    std::string data;
  };
  for (const Case& c : {Case{"HD O7\r\n", "HD", ""}, Case{"EN O7\r\n", "EN", ""}, Case{"NF O7\r\n", "NF", ""},
                        Case{"NS O7\r\n", "NS", ""}, Case{"EX O7\r\n", "EX", ""},
                        Case{"VA 3 f5 O7\r\nabc\r\n", "VA", "abc"}, Case{"VA 0 O7\r\n\r\n", "VA", ""},
                        Case{"VA 4 f0 c99 kfoo O7 W\r\na\r\nb\r\n", "VA", "a\r\nb"},
                        Case{"HD c5 O7 kk\r\n", "HD", ""}, Case{"VA 1 f0 kO7 O7\r\nx\r\n", "VA", "x"}}) {
    SCOPED_TRACE(c.in);
    Reply r;
    ASSERT_EQ(ParseWhole(c.in, ReplyKind::kMeta, 7, &r), ReplyStatus::kDone);
    EXPECT_EQ(r.code(c.in), c.code);
    EXPECT_EQ(r.data.in(c.in), c.data);
    EXPECT_EQ(r.opaque.in(c.in), " O7");
    EXPECT_EQ(r.consumed, c.in.size());
    EXPECT_FALSE(r.error);
  }
}

TEST(Reply, ErrorLinesNeedNoOpaque) {
  for (std::string in : {"SERVER_ERROR out of memory storing object\r\n", "CLIENT_ERROR bad data chunk\r\n",
                         "ERROR\r\n"}) {
    Reply r;
    ASSERT_EQ(ParseWhole(in, ReplyKind::kMeta, 3, &r), ReplyStatus::kDone) << in;
    EXPECT_TRUE(r.error);
    EXPECT_EQ(r.opaque.len, 0u);
  }
}

// The property the data path rests on: a reply that is not this request's is never accepted.
TEST(Reply, AReplyForAnotherRequestIsBad) {
  for (std::string in : {"HD O8\r\n", "VA 2 O70\r\nab\r\n", "EN\r\n", "HD\r\n", "VA 2\r\nab\r\n", "MN\r\n",
                         "STORED\r\n", "VALUE k 0 1\r\nx\r\nEND\r\n", "END\r\n", "HD O7x\r\n", "HDO7\r\n",
                         "XX O7\r\n", "VA x O7\r\nab\r\n", "VA 2 O7\r\nabcd\r\n",
                         // another opaque first (the last token alone does not prove it), or only a longer one
                         "HD O9 O7\r\n", "VA 1 f0 O8 O7\r\nx\r\n", "HD O17\r\n", "HD O77\r\n"}) {
    SCOPED_TRACE(in);
    Reply r;
    size_t need = 0;
    EXPECT_EQ(ParseReply(in, ReplyKind::kMeta, 7, &r, &need), ReplyStatus::kBad);
  }
}

TEST(Reply, FencedAndNoop) {
  Reply r;
  std::string ok = "OK\r\nMN\r\n";
  ASSERT_EQ(ParseWhole(ok, ReplyKind::kFenced, 0, &r), ReplyStatus::kDone);
  EXPECT_EQ(r.line.in(ok), "OK");
  EXPECT_EQ(r.consumed, ok.size());
  std::string refused = "CLIENT_ERROR flush_all not allowed\r\nMN\r\n";
  ASSERT_EQ(ParseWhole(refused, ReplyKind::kFenced, 0, &r), ReplyStatus::kDone);
  EXPECT_TRUE(r.error);
  std::string miss = "EN\r\nMN\r\n";  // me of a missing key
  ASSERT_EQ(ParseWhole(miss, ReplyKind::kFenced, 0, &r), ReplyStatus::kDone);
  for (std::string bad : {"MN\r\n", "OK\r\nOK\r\n", "HD O1\r\nOK\r\n"}) {
    size_t need = 0;
    Reply b;
    EXPECT_EQ(ParseReply(bad, ReplyKind::kFenced, 0, &b, &need), ReplyStatus::kBad) << bad;
  }
  std::string mn = "MN\r\n";
  ASSERT_EQ(ParseWhole(mn, ReplyKind::kNoop, 0, &r), ReplyStatus::kDone);
  size_t need = 0;
  EXPECT_EQ(ParseReply("VERSION 1.6.18\r\n", ReplyKind::kNoop, 0, &r, &need), ReplyStatus::kBad);
}

TEST(Reply, ValueSizeIsReportedBeforeItArrives) {
  std::string in = "VA 10 O1\r\n0123";
  Reply r;
  size_t need = 0;
  EXPECT_EQ(ParseReply(in, ReplyKind::kMeta, 1, &r, &need), ReplyStatus::kNeedMore);
  EXPECT_EQ(need, std::string("VA 10 O1\r\n").size() + 12);
}

TEST(Reply, AnEndlessLineIsBad) {
  std::string in(9000, 'V');
  Reply r;
  size_t need = 0;
  EXPECT_EQ(ParseReply(in, ReplyKind::kMeta, 1, &r, &need), ReplyStatus::kBad);
}

// What the client sees: its own opaque in place of the sidecar's, text replies for text commands.
TEST(Reply, ClientRepliesFromMetaReplies) {
  std::string in = "VA 3 f5 O12 kfoo\r\nabc\r\n";
  Reply r;
  ASSERT_EQ(ParseWhole(in, ReplyKind::kMeta, 12, &r), ReplyStatus::kDone);
  std::string out;
  AppendClientMeta(&out, in, r, "Omine");
  EXPECT_EQ(out, "VA 3 f5 Omine kfoo\r\nabc\r\n");
  out.clear();
  AppendClientMeta(&out, in, r, "");
  EXPECT_EQ(out, "VA 3 f5 kfoo\r\nabc\r\n");

  struct Case {
    Command cmd;
    std::string member;
    std::string client;
  };
  for (const Case& c : {Case{Command::kSet, "HD O1\r\n", "STORED\r\n"}, Case{Command::kAdd, "NS O1\r\n", "NOT_STORED\r\n"},
                        Case{Command::kCas, "EX O1\r\n", "EXISTS\r\n"}, Case{Command::kCas, "NF O1\r\n", "NOT_FOUND\r\n"},
                        Case{Command::kDelete, "HD O1\r\n", "DELETED\r\n"}, Case{Command::kDelete, "NF O1\r\n", "NOT_FOUND\r\n"},
                        Case{Command::kTouch, "HD O1\r\n", "TOUCHED\r\n"}, Case{Command::kTouch, "EN O1\r\n", "NOT_FOUND\r\n"},
                        Case{Command::kIncr, "VA 2 O1\r\n42\r\n", "42\r\n"}, Case{Command::kDecr, "NF O1\r\n", "NOT_FOUND\r\n"},
                        Case{Command::kIncr, "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
                             "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"}}) {
    SCOPED_TRACE(c.member);
    Reply m;
    ASSERT_EQ(ParseWhole(c.member, ReplyKind::kMeta, 1, &m), ReplyStatus::kDone);
    EXPECT_EQ(TextWriteReply(c.cmd, c.member, m), c.client);
  }
}

}  // namespace
}  // namespace memha::protocol
