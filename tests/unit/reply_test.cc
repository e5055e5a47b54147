// Reply parser: retrieval (VALUE ... END), single-line and meta replies; resumable parsing fed byte by byte into
// the same Reply; malformed replies are kBad.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "sidecar/protocol/reply.h"

namespace memha::protocol {
namespace {

const char* Name(ReplyStatus s) {
  switch (s) {
    case ReplyStatus::kDone: return "kDone";
    case ReplyStatus::kNeedMore: return "kNeedMore";
    case ReplyStatus::kBad: return "kBad";
  }
  return "?";
}

bool SameSpan(Span a, Span b) { return a.off == b.off && a.len == b.len; }

::testing::AssertionResult SameReply(const Reply& a, const Reply& b) {
  if (a.consumed != b.consumed) return ::testing::AssertionFailure() << "consumed " << a.consumed << " vs " << b.consumed;
  if (!SameSpan(a.line, b.line)) return ::testing::AssertionFailure() << "line differs";
  if (!SameSpan(a.data, b.data)) return ::testing::AssertionFailure() << "data differs";
  if (a.done != b.done || a.error != b.error) return ::testing::AssertionFailure() << "done/error differ";
  if (a.items.size() != b.items.size()) {
    return ::testing::AssertionFailure() << "items " << a.items.size() << " vs " << b.items.size();
  }
  for (size_t i = 0; i < a.items.size(); ++i) {
    const ReplyItem& x = a.items[i];
    const ReplyItem& y = b.items[i];
    if (!SameSpan(x.key, y.key) || !SameSpan(x.whole, y.whole) || !SameSpan(x.data, y.data) || x.flags != y.flags ||
        x.cas != y.cas) {
      return ::testing::AssertionFailure() << "item " << i << " differs";
    }
  }
  return ::testing::AssertionSuccess();
}

// Parses `in` in one go, then again growing the buffer one byte at a time into the same Reply object, as a
// connection does when a reply trickles in. Every prefix before the end of the reply must be kNeedMore (with a
// `need` that is 0 or lies in (prefix, end]); the first kDone must come exactly at the end with the same result.
ReplyStatus ParseBoth(std::string_view in, ReplyKind kind, Reply* out) {
  size_t need = 0;
  ReplyStatus whole = ParseReply(in, kind, out, &need);
  if (whole != ReplyStatus::kDone) return whole;
  const size_t end = out->consumed;
  Reply r;
  for (size_t len = 0; len <= in.size(); ++len) {
    std::string_view prefix = in.substr(0, len);
    size_t n = 0;
    ReplyStatus s = ParseReply(prefix, kind, &r, &n);
    if (len < end) {
      if (s != ReplyStatus::kNeedMore) {
        ADD_FAILURE() << "prefix of " << len << "/" << end << " bytes: " << Name(s);
        return whole;
      }
      if (n != 0 && (n <= len || n > end)) {
        ADD_FAILURE() << "prefix of " << len << " bytes: need=" << n << " outside (" << len << ", " << end << "]";
        return whole;
      }
      if (r.done) ADD_FAILURE() << "done before the end";
      continue;
    }
    EXPECT_EQ(s, ReplyStatus::kDone) << "at " << len << " bytes";
    EXPECT_TRUE(SameReply(r, *out));
    break;
  }
  return whole;
}

Reply Done(std::string_view in, ReplyKind kind) {
  Reply r;
  EXPECT_EQ(ParseBoth(in, kind, &r), ReplyStatus::kDone) << in;
  EXPECT_TRUE(r.done);
  return r;
}

ReplyStatus StatusOf(std::string_view in, ReplyKind kind) {
  Reply r;
  size_t need = 0;
  return ParseReply(in, kind, &r, &need);
}

// --- retrieval ------------------------------------------------------------------------------------------------

TEST(ReplyParse, RetrievalOneItem) {
  const std::string in = "VALUE foo 5 3\r\nbar\r\nEND\r\n";
  Reply r = Done(in, ReplyKind::kRetrieval);
  EXPECT_FALSE(r.error);
  EXPECT_EQ(r.consumed, in.size());
  EXPECT_EQ(r.line.in(in), "END");
  ASSERT_EQ(r.items.size(), 1u);
  EXPECT_EQ(r.items[0].key.in(in), "foo");
  EXPECT_EQ(r.items[0].flags, 5u);
  EXPECT_EQ(r.items[0].cas, 0u);
  EXPECT_EQ(r.items[0].data.in(in), "bar");
  EXPECT_EQ(r.items[0].whole.in(in), "VALUE foo 5 3\r\nbar\r\n");
}

TEST(ReplyParse, RetrievalManyItemsWithCas) {
  const std::string in =
      "VALUE a 0 1 11\r\nx\r\nVALUE bb 4294967295 5 18446744073709551615\r\nEND\r\n\r\nVALUE c 7 0 3\r\n\r\nEND\r\n";
  Reply r = Done(in, ReplyKind::kRetrieval);
  EXPECT_FALSE(r.error);
  EXPECT_EQ(r.consumed, in.size());
  ASSERT_EQ(r.items.size(), 3u);
  EXPECT_EQ(r.items[0].key.in(in), "a");
  EXPECT_EQ(r.items[0].cas, 11u);
  EXPECT_EQ(r.items[0].data.in(in), "x");
  EXPECT_EQ(r.items[1].key.in(in), "bb");
  EXPECT_EQ(r.items[1].flags, 4294967295u);
  EXPECT_EQ(r.items[1].cas, 18446744073709551615ull);
  EXPECT_EQ(r.items[1].data.in(in), "END\r\n");  // data is taken by length, not scanned
  EXPECT_EQ(r.items[2].key.in(in), "c");
  EXPECT_EQ(r.items[2].flags, 7u);
  EXPECT_EQ(r.items[2].cas, 3u);
  EXPECT_EQ(r.items[2].data.len, 0u);
  EXPECT_EQ(r.items[2].whole.in(in), "VALUE c 7 0 3\r\n\r\n");
}

TEST(ReplyParse, RetrievalEmptyAndBareNewlines) {
  Reply e = Done("END\r\n", ReplyKind::kRetrieval);
  EXPECT_TRUE(e.items.empty());
  EXPECT_FALSE(e.error);
  EXPECT_EQ(e.consumed, 5u);

  const std::string in = "VALUE k 1 2\nhi\r\nEND\n";
  Reply r = Done(in, ReplyKind::kRetrieval);
  ASSERT_EQ(r.items.size(), 1u);
  EXPECT_EQ(r.items[0].data.in(in), "hi");
  EXPECT_EQ(r.consumed, in.size());
}

TEST(ReplyParse, RetrievalStopsAtEnd) {
  const std::string in = "VALUE k 0 1\r\nv\r\nEND\r\nVALUE z 0 1\r\nw\r\nEND\r\n";
  Reply r = Done(in, ReplyKind::kRetrieval);
  EXPECT_EQ(r.consumed, 21u);
  EXPECT_EQ(r.items.size(), 1u);
}

TEST(ReplyParse, RetrievalErrorLines) {
  for (std::string line : {"ERROR", "CLIENT_ERROR bad command line format", "SERVER_ERROR out of memory"}) {
    SCOPED_TRACE(line);
    const std::string in = line + "\r\n";
    Reply r = Done(in, ReplyKind::kRetrieval);
    EXPECT_TRUE(r.error);
    EXPECT_EQ(r.line.in(in), line);
    EXPECT_TRUE(r.items.empty());
    EXPECT_EQ(r.consumed, in.size());
  }
  // An error after some items ends the reply; the items are kept.
  const std::string in = "VALUE a 0 1\r\nx\r\nSERVER_ERROR busy\r\n";
  Reply r = Done(in, ReplyKind::kRetrieval);
  EXPECT_TRUE(r.error);
  EXPECT_EQ(r.line.in(in), "SERVER_ERROR busy");
  ASSERT_EQ(r.items.size(), 1u);
  EXPECT_EQ(r.items[0].data.in(in), "x");
}

TEST(ReplyParse, RetrievalResumesWithoutDuplicatingItems) {
  const std::string in = "VALUE a 0 3\r\naaa\r\nVALUE b 0 3\r\nbbb\r\nEND\r\n";
  Reply r;
  size_t need = 0;
  // First item and half of the second.
  ASSERT_EQ(ParseReply(std::string_view(in).substr(0, 25), ReplyKind::kRetrieval, &r, &need), ReplyStatus::kNeedMore);
  EXPECT_EQ(r.items.size(), 1u);
  EXPECT_EQ(r.consumed, 18u);
  EXPECT_FALSE(r.done);
  // Second item's line complete, data missing: need names the end of that item.
  ASSERT_EQ(ParseReply(std::string_view(in).substr(0, 31), ReplyKind::kRetrieval, &r, &need), ReplyStatus::kNeedMore);
  EXPECT_EQ(need, 36u);
  EXPECT_EQ(r.items.size(), 1u);
  ASSERT_EQ(ParseReply(in, ReplyKind::kRetrieval, &r, &need), ReplyStatus::kDone);
  ASSERT_EQ(r.items.size(), 2u);
  EXPECT_EQ(r.items[1].key.in(in), "b");
  EXPECT_EQ(r.items[1].data.in(in), "bbb");
  EXPECT_EQ(r.consumed, in.size());
}

TEST(ReplyParse, RetrievalLargeValue) {
  const std::string value(100000, 'v');
  const std::string in = "VALUE big 0 100000\r\n" + value + "\r\nEND\r\n";
  Reply r;
  size_t need = 0;
  ASSERT_EQ(ParseReply(std::string_view(in).substr(0, 100), ReplyKind::kRetrieval, &r, &need), ReplyStatus::kNeedMore);
  EXPECT_EQ(need, 20u + 100000u + 2u);
  ASSERT_EQ(ParseReply(in, ReplyKind::kRetrieval, &r, &need), ReplyStatus::kDone);
  ASSERT_EQ(r.items.size(), 1u);
  EXPECT_EQ(r.items[0].data.len, 100000u);
}

// --- single line ----------------------------------------------------------------------------------------------

TEST(ReplyParse, LineReplies) {
  for (std::string line : {"STORED", "NOT_STORED", "EXISTS", "NOT_FOUND", "DELETED", "TOUCHED", "OK", "42",
                           "VERSION 1.6.21"}) {
    SCOPED_TRACE(line);
    const std::string in = line + "\r\nNEXT\r\n";
    Reply r = Done(in, ReplyKind::kLine);
    EXPECT_EQ(r.line.in(in), line);
    EXPECT_FALSE(r.error);
    EXPECT_EQ(r.consumed, line.size() + 2);
  }
  for (std::string line : {"ERROR", "CLIENT_ERROR bad data chunk", "SERVER_ERROR out of memory storing object"}) {
    SCOPED_TRACE(line);
    const std::string in = line + "\r\n";
    Reply r = Done(in, ReplyKind::kLine);
    EXPECT_EQ(r.line.in(in), line);
    EXPECT_TRUE(r.error);
  }
  const std::string bare = "STORED\n";
  Reply b = Done(bare, ReplyKind::kLine);
  EXPECT_EQ(b.line.in(bare), "STORED");
  EXPECT_EQ(b.consumed, 7u);
}

// --- meta -----------------------------------------------------------------------------------------------------

TEST(ReplyParse, MetaValue) {
  const std::string in = "VA 5 f3 t-1 c99\r\nhello\r\nHD\r\n";
  Reply r = Done(in, ReplyKind::kMeta);
  EXPECT_EQ(r.line.in(in), "VA 5 f3 t-1 c99");
  EXPECT_EQ(r.data.in(in), "hello");
  EXPECT_FALSE(r.error);
  EXPECT_EQ(r.consumed, 24u);

  const std::string crlf = "VA 4\r\n\r\n\r\n\r\n";
  Reply c = Done(crlf, ReplyKind::kMeta);
  EXPECT_EQ(c.data.in(crlf), "\r\n\r\n");
  EXPECT_EQ(c.consumed, crlf.size());

  const std::string empty = "VA 0 k\r\n\r\n";
  Reply e = Done(empty, ReplyKind::kMeta);
  EXPECT_EQ(e.data.len, 0u);
  EXPECT_EQ(e.data.off, 8u);
  EXPECT_EQ(e.consumed, empty.size());
}

TEST(ReplyParse, MetaStatusLines) {
  for (std::string line : {"HD", "HD c123 Oabc", "EN", "MN", "NF", "NS", "EX"}) {
    SCOPED_TRACE(line);
    const std::string in = line + "\r\n";
    Reply r = Done(in, ReplyKind::kMeta);
    EXPECT_EQ(r.line.in(in), line);
    EXPECT_EQ(r.data.len, 0u);
    EXPECT_FALSE(r.error);
    EXPECT_EQ(r.consumed, in.size());
  }
  const std::string err = "CLIENT_ERROR bad command line format\r\n";
  Reply e = Done(err, ReplyKind::kMeta);
  EXPECT_TRUE(e.error);
}

TEST(ReplyParse, MetaNeedReportsValueEnd) {
  const std::string in = "VA 10 f0\r\n0123";
  Reply r;
  size_t need = 0;
  ASSERT_EQ(ParseReply(in, ReplyKind::kMeta, &r, &need), ReplyStatus::kNeedMore);
  EXPECT_EQ(need, 10u + 10u + 2u);
  EXPECT_FALSE(r.done);
}

// --- malformed ------------------------------------------------------------------------------------------------

TEST(ReplyParse, MalformedRetrievalIsBad) {
  for (std::string in : {"GARBAGE\r\n", "VALUE\r\n", "VALUE foo\r\n", "VALUE foo 0\r\n", "VALUE foo x 3\r\nbar\r\n",
                         "VALUE foo -1 3\r\nbar\r\n", "VALUE foo 0 y\r\nbar\r\n", "VALUE foo 0 -3\r\nbar\r\n",
                         "VALUE foo 0 3 z\r\nbar\r\n", "VALUE foo 0 3\r\nbarXY", "VALUE foo 0 3\r\nbarbar\r\nEND\r\n",
                         "VALUE foo 4294967296 1\r\nx\r\nEND\r\n", "STORED\r\n", "VALUE a 0 1\r\nx\r\nEN\r\n"}) {
    SCOPED_TRACE(in);
    EXPECT_EQ(StatusOf(in, ReplyKind::kRetrieval), ReplyStatus::kBad);
  }
}

TEST(ReplyParse, MalformedMetaIsBad) {
  for (std::string in : {"VA x\r\n", "VA -1\r\n", "VA 4294967296\r\n", "VA 3\r\nabcXY", "VA 3 f0\r\nabcdef\r\n"}) {
    SCOPED_TRACE(in);
    EXPECT_EQ(StatusOf(in, ReplyKind::kMeta), ReplyStatus::kBad);
  }
}

TEST(ReplyParse, OverlongLineIsBad) {
  for (ReplyKind kind : {ReplyKind::kRetrieval, ReplyKind::kLine, ReplyKind::kMeta}) {
    EXPECT_EQ(StatusOf(std::string(8192, 'x'), kind), ReplyStatus::kNeedMore);
    EXPECT_EQ(StatusOf(std::string(8193, 'x'), kind), ReplyStatus::kBad);
  }
  // After complete items, the limit applies to the unfinished line only.
  std::string in = "VALUE a 0 1\r\nx\r\n";
  in.append(8000, 'y');
  EXPECT_EQ(StatusOf(in, ReplyKind::kRetrieval), ReplyStatus::kNeedMore);
}

TEST(ReplyParse, IsErrorLine) {
  EXPECT_TRUE(IsErrorLine("ERROR"));
  EXPECT_TRUE(IsErrorLine("CLIENT_ERROR"));
  EXPECT_TRUE(IsErrorLine("CLIENT_ERROR bad data chunk"));
  EXPECT_TRUE(IsErrorLine("SERVER_ERROR"));
  EXPECT_TRUE(IsErrorLine("SERVER_ERROR out of memory"));
  EXPECT_FALSE(IsErrorLine("ERRORS"));
  EXPECT_FALSE(IsErrorLine("CLIENT_ERRORx"));
  EXPECT_FALSE(IsErrorLine("STORED"));
  EXPECT_FALSE(IsErrorLine("END"));
  EXPECT_FALSE(IsErrorLine(""));
  EXPECT_FALSE(IsErrorLine("error"));
}

}  // namespace
}  // namespace memha::protocol
