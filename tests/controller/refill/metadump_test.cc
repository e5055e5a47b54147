// lru_crawler metadump lines and meta replies: every record kind, every cut of a stream, malformed input.
#include "controller/refill/metadump.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "controller/refill/meta_reply.h"

namespace memha::refill {
namespace {

// What memcached 1.6.18 prints (crawler.c): records end in \n, END in \r\n.
const std::string kDump =
    "key=plain exp=-1 la=1700000000 cas=7 fetch=no cls=1 size=68\n"
    "key=with%20space%0D%0A exp=1900000000 la=1700000001 cas=8 fetch=yes cls=2 size=100\n"
    "key=%E2%82%AC exp=-1 la=1 cas=9 fetch=no cls=1 size=70 future=field\n"
    "END\r\n";

struct Parsed {
  std::vector<DumpRecord> records;
  int bad = 0;
  bool end = false;
};

// Feeds `input` in pieces of `piece` bytes, the way a socket delivers it, and parses whatever is complete.
Parsed ParseInPieces(const std::string& input, size_t piece) {
  Parsed out;
  std::string buffer;
  for (size_t fed = 0; fed < input.size() && !out.end;) {
    buffer += input.substr(fed, piece);
    fed += piece;
    while (true) {
      DumpRecord r;
      DumpParse p = ParseDumpLine(buffer, &r);
      if (p.kind == DumpLine::kNeedMore) break;
      EXPECT_NE(p.kind, DumpLine::kTooLong);
      buffer.erase(0, p.consumed);
      if (p.kind == DumpLine::kRecord) out.records.push_back(r);
      if (p.kind == DumpLine::kBadLine) ++out.bad;
      if (p.kind == DumpLine::kEnd) {
        out.end = true;
        break;
      }
    }
  }
  return out;
}

TEST(Metadump, ParsesRecordsAndEnd) {
  Parsed p = ParseInPieces(kDump, kDump.size());
  ASSERT_TRUE(p.end);
  ASSERT_EQ(p.records.size(), 3u);
  EXPECT_EQ(p.records[0].key, "plain");
  EXPECT_EQ(p.records[0].exp, -1);
  EXPECT_EQ(p.records[0].cas, 7u);
  EXPECT_EQ(p.records[0].size, 68u);
  EXPECT_EQ(p.records[1].key, "with space\r\n");
  EXPECT_EQ(p.records[1].exp, 1900000000);
  EXPECT_EQ(p.records[2].key, "\xE2\x82\xAC");
  EXPECT_EQ(p.bad, 0);
}

TEST(Metadump, EveryCutGivesTheSameRecords) {
  Parsed whole = ParseInPieces(kDump, kDump.size());
  for (size_t piece = 1; piece < kDump.size(); ++piece) {
    Parsed p = ParseInPieces(kDump, piece);
    ASSERT_TRUE(p.end) << piece;
    ASSERT_EQ(p.records.size(), whole.records.size()) << piece;
    for (size_t i = 0; i < p.records.size(); ++i) EXPECT_EQ(p.records[i].key, whole.records[i].key) << piece;
  }
  // Every strict prefix of a line is incomplete, never a record or an error.
  for (size_t cut = 0; cut < kDump.find('\n'); ++cut) {
    DumpRecord r;
    EXPECT_EQ(ParseDumpLine(std::string_view(kDump).substr(0, cut), &r).kind, DumpLine::kNeedMore) << cut;
  }
}

TEST(Metadump, Refusals) {
  for (const char* line : {"BUSY currently processing crawler request\r\n", "BADCLASS invalid class id\r\n",
                           "NOTSTARTED no items to crawl\r\n", "ERROR\r\n", "ERROR metadump not allowed\r\n",
                           "CLIENT_ERROR lru crawler disabled\r\n", "SERVER_ERROR out of memory\r\n"}) {
    DumpRecord r;
    DumpParse p = ParseDumpLine(line, &r);
    EXPECT_EQ(p.kind, DumpLine::kRefused) << line;
    EXPECT_EQ(p.consumed, std::string(line).size());
  }
  DumpRecord r;
  EXPECT_EQ(ParseDumpLine("BUSYNESS\r\n", &r).kind, DumpLine::kBadLine);
}

TEST(Metadump, MalformedLinesAreSkippedNotTrusted) {
  for (const char* line : {
           "key=%zz exp=-1\n",             // bad escape
           "key=%4 exp=-1\n",              // cut escape
           "key=abc%\n",                   // escape at the end
           "key= exp=-1\n",                // empty key
           "key=a key=b\n",                // two keys
           "key=a exp=soon\n",             // exp not a number
           "key=a cas=-1\n",               // cas negative
           "key=a size=12x\n",             // trailing garbage in a number
           "key=a garbage\n",              // a field without '='
           "exp=-1 key=a\n",               // does not start with key= (memcached always prints key first)
           "hello world\n", "\n", "\r\n", "END \r\n", "\x01\x02\xff\n",
       }) {
    DumpRecord r;
    DumpParse p = ParseDumpLine(line, &r);
    EXPECT_EQ(p.kind, DumpLine::kBadLine) << line;
    EXPECT_EQ(p.consumed, std::string(line).size()) << line;
  }
  std::string long_key = "key=" + std::string(251, 'k') + " exp=-1\n";
  DumpRecord r;
  EXPECT_EQ(ParseDumpLine(long_key, &r).kind, DumpLine::kBadLine);
  EXPECT_EQ(ParseDumpLine("key=" + std::string(250, 'k') + "\n", &r).kind, DumpLine::kRecord);
  std::string encoded;
  for (int i = 0; i < 250; ++i) encoded += "%41";  // 750 bytes on the wire, 250 decoded: the limit is on the key
  ASSERT_EQ(ParseDumpLine("key=" + encoded + "\n", &r).kind, DumpLine::kRecord);
  EXPECT_EQ(r.key, std::string(250, 'A'));
}

TEST(Metadump, ALineWithoutEndIsTooLongOnceOverTheLimit) {
  DumpRecord r;
  EXPECT_EQ(ParseDumpLine(std::string(kMaxDumpLine - 1, 'x'), &r).kind, DumpLine::kNeedMore);
  EXPECT_EQ(ParseDumpLine(std::string(kMaxDumpLine, 'x'), &r).kind, DumpLine::kTooLong);
  EXPECT_EQ(ParseDumpLine(std::string(kMaxDumpLine + 10, 'x') + "\n", &r).kind, DumpLine::kTooLong);
}

TEST(Metadump, UriDecode) {
  std::string out;
  EXPECT_TRUE(UriDecode("a%2Fb%2fc", &out));
  EXPECT_EQ(out, "a/b/c");
  EXPECT_TRUE(UriDecode("%00", &out));
  EXPECT_EQ(out, std::string(1, '\0'));
  EXPECT_FALSE(UriDecode("%", &out));
  EXPECT_FALSE(UriDecode("%a", &out));
  EXPECT_FALSE(UriDecode("%g0", &out));
}

// Meta replies: every prefix of a reply stream is NeedMore until the reply is complete.
TEST(MetaReply, ValueHitMissAndEveryCut) {
  const std::string stream = "VA 5 f7 t-1 c42 O3\r\nhello\r\nHD c43 O4\r\nEN\r\nNS O5\r\nSERVER_ERROR too large\r\n";
  std::vector<ReplyCode> codes;
  std::string_view rest = stream;
  while (!rest.empty()) {
    MetaReply r;
    ParsedReply p = ParseMetaReply(rest, &r);
    ASSERT_EQ(p.status, ReplyParse::kOk) << rest;
    for (size_t cut = 0; cut < p.consumed; ++cut) {
      MetaReply partial;
      EXPECT_EQ(ParseMetaReply(rest.substr(0, cut), &partial).status, ReplyParse::kNeedMore) << cut;
    }
    codes.push_back(r.code);
    if (r.code == ReplyCode::kValue) {
      EXPECT_EQ(r.value, "hello");
      int64_t ttl = 0;
      uint64_t flags = 0, cas = 0, opaque = 0;
      EXPECT_TRUE(r.NumberFlag('t', &ttl));
      EXPECT_EQ(ttl, -1);
      EXPECT_TRUE(r.NumberFlag('f', &flags));
      EXPECT_EQ(flags, 7u);
      EXPECT_TRUE(r.NumberFlag('c', &cas));
      EXPECT_EQ(cas, 42u);
      EXPECT_TRUE(r.NumberFlag('O', &opaque));
      EXPECT_EQ(opaque, 3u);
      EXPECT_FALSE(r.NumberFlag('k', &opaque));
    }
    rest.remove_prefix(p.consumed);
  }
  EXPECT_EQ(codes, (std::vector<ReplyCode>{ReplyCode::kValue, ReplyCode::kHit, ReplyCode::kMiss,
                                           ReplyCode::kNotStored, ReplyCode::kError}));
}

TEST(MetaReply, MalformedIsAnError) {
  for (const char* bad : {"VA x\r\nhello\r\n", "VA 5\r\nhelloXX", "XX 1\r\n", "HD\n", "VA -1\r\n\r\n",
                          "VA 99999999999999999999\r\n"}) {
    MetaReply r;
    EXPECT_EQ(ParseMetaReply(bad, &r).status, ReplyParse::kError) << bad;
  }
  MetaReply r;
  EXPECT_EQ(ParseMetaReply(std::string(kMaxReplyLine, 'H'), &r).status, ReplyParse::kError);
}

}  // namespace
}  // namespace memha::refill
