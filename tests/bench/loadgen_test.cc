// Unit tests of the load generator's logic: latency histogram, reply parser, read verification.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "bench/loadgen/histogram.h"
#include "bench/loadgen/reply_parser.h"
#include "bench/loadgen/verifier.h"

namespace memha::bench {
namespace {

TEST(Histogram, BucketsAreContiguousAndBoundsHoldTheirValues) {
  for (size_t i = 1; i + 1 < LatencyHistogram::kBuckets; ++i) {
    ASSERT_EQ(LatencyHistogram::LowerBound(i), LatencyHistogram::UpperBound(i - 1) + 1) << i;
  }
  for (uint64_t v : {0ull, 1ull, 127ull, 128ull, 129ull, 1000ull, 123456789ull, 4000000000000ull}) {
    size_t i = LatencyHistogram::IndexOf(v);
    EXPECT_LE(LatencyHistogram::LowerBound(i), v);
    EXPECT_GE(LatencyHistogram::UpperBound(i), v);
    // relative width of a bucket stays under 1/64
    EXPECT_LE(LatencyHistogram::UpperBound(i) - LatencyHistogram::LowerBound(i), v / 64 + 1);
  }
}

TEST(Histogram, PercentilesOfAUniformSpreadAreWithinBucketPrecision) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100000; ++v) h.Record(v * 1000);  // 1 us .. 100 ms
  EXPECT_EQ(h.Count(), 100000u);
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    double want = p / 100.0 * 100000.0 * 1000.0;
    double got = static_cast<double>(h.Percentile(p));
    EXPECT_NEAR(got, want, want * 0.02) << p;
    EXPECT_GE(got, want) << "a percentile reports the upper bound, never less";
  }
  EXPECT_EQ(h.Percentile(100), 100000u * 1000u);
  EXPECT_EQ(h.Max(), 100000u * 1000u);
}

TEST(Histogram, TailIsNotHiddenAndEmptyIsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.Percentile(99), 0u);
  for (int i = 0; i < 989; ++i) h.Record(50000);
  for (int i = 0; i < 11; ++i) h.Record(9000000);  // 1.1% slow requests
  EXPECT_LT(h.Percentile(50), 51000u);
  EXPECT_GE(h.Percentile(99), 8900000u);
  LatencyHistogram other;
  other.Record(20000000);
  h.Merge(other);
  EXPECT_EQ(h.Count(), 1001u);
  EXPECT_EQ(h.Max(), 20000000u);
}

// Parses `input` cut at every position: a prefix must say NeedMore, the whole must give `want_consumed`.
ParsedReply ParseWhole(const std::string& input, ReplyKind kind, std::vector<ValueView>* values) {
  for (size_t cut = 0; cut < input.size(); ++cut) {
    std::string part = input.substr(0, cut);
    ParsedReply r = ParseReply(part.data(), part.size(), kind, values);
    EXPECT_EQ(r.status, ParseStatus::kNeedMore) << "cut at " << cut;
  }
  return ParseReply(input.data(), input.size(), kind, values);
}

TEST(ReplyParser, MultiValueRetrievalAtEveryCut) {
  std::string in = "VALUE k1 0 3\r\nabc\r\nVALUE k2 5 0 77\r\n\r\nEND\r\n";
  std::vector<ValueView> v;
  ParsedReply r = ParseWhole(in, ReplyKind::kRetrieval, &v);
  ASSERT_EQ(r.status, ParseStatus::kOk);
  EXPECT_EQ(r.consumed, in.size());
  EXPECT_EQ(r.outcome, ReplyOutcome::kValues);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].key, "k1");
  EXPECT_EQ(v[0].data, "abc");
  EXPECT_EQ(v[1].key, "k2");
  EXPECT_EQ(v[1].data, "");
}

TEST(ReplyParser, PipelinedRepliesAreConsumedOneAtATime) {
  std::string in = "END\r\nSTORED\r\n";
  std::vector<ValueView> v;
  ParsedReply r = ParseReply(in.data(), in.size(), ReplyKind::kRetrieval, &v);
  ASSERT_EQ(r.status, ParseStatus::kOk);
  EXPECT_EQ(r.consumed, 5u);
  EXPECT_TRUE(v.empty());
  r = ParseReply(in.data() + 5, in.size() - 5, ReplyKind::kStorage, &v);
  EXPECT_EQ(r.outcome, ReplyOutcome::kStored);
  EXPECT_EQ(r.consumed, 8u);
}

TEST(ReplyParser, ErrorsAndUnexpectedBytes) {
  std::vector<ValueView> v;
  std::string e = "SERVER_ERROR backend down\r\n";
  ParsedReply r = ParseReply(e.data(), e.size(), ReplyKind::kRetrieval, &v);
  EXPECT_EQ(r.status, ParseStatus::kOk);
  EXPECT_EQ(r.outcome, ReplyOutcome::kServerError);
  EXPECT_EQ(r.error_line, "SERVER_ERROR backend down");
  r = ParseReply(e.data(), e.size(), ReplyKind::kStorage, &v);
  EXPECT_TRUE(IsFailure(r.outcome));
  std::string d = "NOT_FOUND\r\n";
  r = ParseReply(d.data(), d.size(), ReplyKind::kDelete, &v);
  EXPECT_EQ(r.outcome, ReplyOutcome::kNotFound);
  std::string g = "HELLO\r\n";
  EXPECT_EQ(ParseReply(g.data(), g.size(), ReplyKind::kStorage, &v).status, ParseStatus::kError);
  EXPECT_EQ(ParseReply(g.data(), g.size(), ReplyKind::kRetrieval, &v).status, ParseStatus::kError);
  std::string bad_len = "VALUE k 0 3\r\nabcd\r\nEND\r\n";  // data not followed by CRLF
  EXPECT_EQ(ParseReply(bad_len.data(), bad_len.size(), ReplyKind::kRetrieval, &v).status, ParseStatus::kError);
}

std::string Value(uint64_t key, uint64_t seq) {
  char buf[64];
  size_t n = EncodeValuePrefix(buf, sizeof buf, key, seq);
  return std::string(buf, n) + "padding";
}

TEST(Verifier, ValueEncodingRoundTrips) {
  DecodedValue d;
  ASSERT_TRUE(DecodeValue(Value(17, 123456789012ull), &d));
  EXPECT_EQ(d.key, 17u);
  EXPECT_EQ(d.seq, 123456789012ull);
  EXPECT_FALSE(DecodeValue("17:12", &d));
  EXPECT_FALSE(DecodeValue("vvvv", &d));
}

TEST(Verifier, OlderValueAfterAnAcknowledgedWriteIsStale) {
  Verifier v(10);
  uint64_t a = v.BeginWrite(3, false);
  v.EndWrite(3, a, true);
  uint64_t b = v.BeginWrite(3, false);
  v.EndWrite(3, b, true);
  ReadSnapshot s = v.Snapshot(3);
  EXPECT_EQ(v.Check(3, s, Value(3, b)), ReadVerdict::kFresh);
  EXPECT_EQ(v.Check(3, s, Value(3, a)), ReadVerdict::kStale);
}

TEST(Verifier, ReadOverlappingAWriteMaySeeEitherValue) {
  Verifier v(10);
  uint64_t a = v.BeginWrite(1, false);
  v.EndWrite(1, a, true);
  uint64_t b = v.BeginWrite(1, false);  // in flight
  ReadSnapshot s = v.Snapshot(1);       // read sent now
  v.EndWrite(1, b, true);               // acknowledged before the read's reply
  EXPECT_EQ(v.Check(1, s, Value(1, a)), ReadVerdict::kFresh);
  EXPECT_EQ(v.Check(1, s, Value(1, b)), ReadVerdict::kFresh);
  // a read sent after b's acknowledgement must see b
  EXPECT_EQ(v.Check(1, v.Snapshot(1), Value(1, a)), ReadVerdict::kStale);
}

TEST(Verifier, ConcurrentWritersDoNotSupersedeEachOther) {
  Verifier v(10);
  uint64_t a = v.BeginWrite(2, false);
  uint64_t b = v.BeginWrite(2, false);  // overlaps a: the server may apply them in either order
  v.EndWrite(2, b, true);
  v.EndWrite(2, a, true);
  ReadSnapshot s = v.Snapshot(2);
  EXPECT_EQ(v.Check(2, s, Value(2, a)), ReadVerdict::kFresh);
  EXPECT_EQ(v.Check(2, s, Value(2, b)), ReadVerdict::kFresh);
  uint64_t c = v.BeginWrite(2, false);  // after both acknowledged: supersedes both
  v.EndWrite(2, c, true);
  s = v.Snapshot(2);
  EXPECT_EQ(v.Check(2, s, Value(2, a)), ReadVerdict::kStale);
  EXPECT_EQ(v.Check(2, s, Value(2, b)), ReadVerdict::kStale);
  EXPECT_EQ(v.Check(2, s, Value(2, c)), ReadVerdict::kFresh);
}

TEST(Verifier, HitAfterAnAcknowledgedDeleteIsResurrected) {
  Verifier v(10);
  uint64_t a = v.BeginWrite(5, false);
  v.EndWrite(5, a, true);
  uint64_t d = v.BeginWrite(5, true);
  ReadSnapshot during = v.Snapshot(5);
  v.EndWrite(5, d, true);
  EXPECT_EQ(v.Check(5, during, Value(5, a)), ReadVerdict::kFresh) << "read overlapped the delete";
  EXPECT_EQ(v.Check(5, v.Snapshot(5), Value(5, a)), ReadVerdict::kResurrected);
  uint64_t b = v.BeginWrite(5, false);
  v.EndWrite(5, b, true);
  EXPECT_EQ(v.Check(5, v.Snapshot(5), Value(5, b)), ReadVerdict::kFresh);
  EXPECT_EQ(v.Check(5, v.Snapshot(5), Value(5, a)), ReadVerdict::kStale);
}

TEST(Verifier, FailedWriteHasUnknownOutcome) {
  Verifier v(10);
  uint64_t a = v.BeginWrite(7, false);
  v.EndWrite(7, a, true);
  uint64_t b = v.BeginWrite(7, false);
  v.EndWrite(7, b, false);  // timed out: may or may not have been applied
  uint64_t c = v.BeginWrite(7, false);
  v.EndWrite(7, c, true);
  ReadSnapshot s = v.Snapshot(7);
  EXPECT_EQ(v.Check(7, s, Value(7, b)), ReadVerdict::kIndeterminate);
  EXPECT_EQ(v.Check(7, s, Value(7, a)), ReadVerdict::kStale);
  // a failed write does not raise the floor
  Verifier w(10);
  uint64_t x = w.BeginWrite(1, false);
  w.EndWrite(1, x, true);
  uint64_t y = w.BeginWrite(1, false);
  w.EndWrite(1, y, false);
  EXPECT_EQ(w.Check(1, w.Snapshot(1), Value(1, x)), ReadVerdict::kFresh);
}

TEST(Verifier, ForeignOrMangledValuesAreCorrupt) {
  Verifier v(10);
  uint64_t a = v.BeginWrite(1, false);
  v.EndWrite(1, a, true);
  EXPECT_EQ(v.Check(1, v.Snapshot(1), Value(2, a)), ReadVerdict::kCorrupt);        // another key's value
  EXPECT_EQ(v.Check(1, v.Snapshot(1), Value(1, a + 5)), ReadVerdict::kCorrupt);    // never written
  EXPECT_EQ(v.Check(1, v.Snapshot(1), "garbage"), ReadVerdict::kCorrupt);
}

}  // namespace
}  // namespace memha::bench
