#pragma once
// Shared by the request parser tests: parse an input and check that every shorter prefix of it is answered
// consistently, as bytes may arrive split anywhere.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "sidecar/protocol/request.h"

namespace memha::protocol::test {

inline const char* StatusName(ParseStatus s) {
  switch (s) {
    case ParseStatus::kOk: return "kOk";
    case ParseStatus::kNeedMore: return "kNeedMore";
    case ParseStatus::kError: return "kError";
  }
  return "?";
}

inline bool SameSpan(Span a, Span b) { return a.off == b.off && a.len == b.len; }

inline ::testing::AssertionResult SameRequest(const Request& a, const Request& b) {
  std::ostringstream diff;
  if (a.cmd != b.cmd) diff << " cmd " << CommandName(a.cmd) << " vs " << CommandName(b.cmd);
  if (!SameSpan(a.line, b.line)) diff << " line";
  if (a.keys.size() != b.keys.size()) {
    diff << " keys.size " << a.keys.size() << " vs " << b.keys.size();
  } else {
    for (size_t i = 0; i < a.keys.size(); ++i) {
      if (!SameSpan(a.keys[i], b.keys[i])) diff << " keys[" << i << "]";
    }
  }
  if (!SameSpan(a.data, b.data)) diff << " data";
  if (!SameSpan(a.meta_flags, b.meta_flags)) diff << " meta_flags";
  if (a.client_flags != b.client_flags) diff << " client_flags";
  if (a.exptime != b.exptime) diff << " exptime";
  if (a.cas_unique != b.cas_unique) diff << " cas_unique";
  if (a.delta != b.delta) diff << " delta";
  if (a.value_len != b.value_len) diff << " value_len";
  if (a.noreply != b.noreply) diff << " noreply";
  if (a.meta_base64 != b.meta_base64) diff << " meta_base64";
  if (a.decoded_key != b.decoded_key) diff << " decoded_key";
  if (a.consumed != b.consumed) diff << " consumed " << a.consumed << " vs " << b.consumed;
  if (diff.str().empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "requests differ:" << diff.str();
}

inline std::string DescribeError(const ParseError& e) {
  std::ostringstream s;
  s << "{reply=\"" << e.reply << "\" consume=" << e.consume << " swallow=" << e.swallow << " close=" << e.close
    << "}";
  return s.str();
}

// A prefix may report the full input's error early only if it is the same answer: same reply, same close, and
// (unless the connection closes anyway) the same number of bytes dropped in total (consumed now + swallowed later).
inline bool EquivalentError(const ParseError& a, const ParseError& b) {
  if (a.reply != b.reply || a.close != b.close) return false;
  return a.close || a.consume + a.swallow == b.consume + b.swallow;
}

inline bool IdenticalError(const ParseError& a, const ParseError& b) {
  return a.reply == b.reply && a.close == b.close && a.consume == b.consume && a.swallow == b.swallow;
}

// Parses `in` (which may hold several pipelined requests; the first is the one parsed) and checks every shorter
// prefix: one that ends before the first request does must be kNeedMore (with `need` either 0 or a size in
// (prefix, end of first request]) or, when the full input is an error the parser can decide early, the
// equivalent error; one that holds the whole first request must give exactly the full input's result.
inline ParseResult ParseAllPrefixes(std::string_view in, Request* out, const Limits& limits = Limits()) {
  ParseResult full = ParseRequest(in, limits, out);
  size_t end = in.size() + 1;  // kNeedMore: every prefix must need more too
  if (full.status == ParseStatus::kOk) end = out->consumed;
  if (full.status == ParseStatus::kError) end = full.error.close ? in.size() : full.error.consume;
  if (full.status == ParseStatus::kNeedMore && full.need != 0) end = full.need;
  for (size_t len = 0; len < in.size(); ++len) {
    std::vector<char> buf(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(len));  // exact size: no slack
    std::string_view prefix(buf.data(), buf.size());
    Request req;
    ParseResult r = ParseRequest(prefix, limits, &req);
    std::string where = "prefix of " + std::to_string(len) + "/" + std::to_string(in.size()) + " bytes: ";
    if (len < end) {
      if (r.status == ParseStatus::kNeedMore) {
        if (r.need != 0 && (r.need <= len || r.need > end)) {
          ADD_FAILURE() << where << "need=" << r.need << " outside (" << len << ", " << end << "]";
          return full;
        }
        continue;
      }
      if (r.status == ParseStatus::kError && full.status == ParseStatus::kError &&
          EquivalentError(r.error, full.error)) {
        continue;
      }
      ADD_FAILURE() << where << StatusName(r.status) << " " << DescribeError(r.error) << " but the full input gives "
                    << StatusName(full.status) << " " << DescribeError(full.error);
      return full;
    }
    if (r.status != full.status) {
      ADD_FAILURE() << where << StatusName(r.status) << " but the full input gives " << StatusName(full.status);
      return full;
    }
    if (r.status == ParseStatus::kOk) {
      ::testing::AssertionResult same = SameRequest(req, *out);
      if (!same) {
        ADD_FAILURE() << where << same.message();
        return full;
      }
    } else if (r.status == ParseStatus::kError && !IdenticalError(r.error, full.error)) {
      ADD_FAILURE() << where << DescribeError(r.error) << " vs full " << DescribeError(full.error);
      return full;
    }
  }
  return full;
}

// The text of the i-th key of a parsed request.
inline std::string KeyOf(const Request& r, std::string_view in, size_t i = 0) {
  if (i >= r.keys.size()) return "<no key " + std::to_string(i) + ">";
  return std::string(r.keys[i].in(in));
}

}  // namespace memha::protocol::test
