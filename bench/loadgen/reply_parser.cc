#include "bench/loadgen/reply_parser.h"

#include <charconv>
#include <cstring>

namespace memha::bench {
namespace {

// Finds "\r\n" in [p, p+n); returns the line length without it, or npos.
size_t LineEnd(const char* p, size_t n) {
  const char* nl = static_cast<const char*>(std::memchr(p, '\n', n));
  if (nl == nullptr) return std::string_view::npos;
  size_t len = static_cast<size_t>(nl - p);
  return (len > 0 && p[len - 1] == '\r') ? len - 1 : len;
}

bool StartsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

ReplyOutcome Classify(std::string_view line) {
  if (line == "STORED") return ReplyOutcome::kStored;
  if (line == "NOT_STORED" || line == "EXISTS") return ReplyOutcome::kNotStored;
  if (line == "DELETED") return ReplyOutcome::kDeleted;
  if (line == "NOT_FOUND") return ReplyOutcome::kNotFound;
  if (StartsWith(line, "SERVER_ERROR")) return ReplyOutcome::kServerError;
  if (StartsWith(line, "CLIENT_ERROR")) return ReplyOutcome::kClientError;
  if (line == "ERROR") return ReplyOutcome::kError;
  return ReplyOutcome::kUnexpected;
}

}  // namespace

ParsedReply ParseReply(const char* p, size_t n, ReplyKind kind, std::vector<ValueView>* values) {
  ParsedReply r;
  if (kind != ReplyKind::kRetrieval) {
    size_t len = LineEnd(p, n);
    if (len == std::string_view::npos) return r;
    std::string_view line(p, len);
    r.outcome = Classify(line);
    r.consumed = static_cast<size_t>(static_cast<const char*>(std::memchr(p, '\n', n)) - p) + 1;
    if (r.outcome == ReplyOutcome::kUnexpected) { r.status = ParseStatus::kError; return r; }
    if (IsFailure(r.outcome)) r.error_line = line;
    r.status = ParseStatus::kOk;
    return r;
  }
  values->clear();
  size_t off = 0;
  for (;;) {
    size_t len = LineEnd(p + off, n - off);
    if (len == std::string_view::npos) return r;  // NeedMore
    std::string_view line(p + off, len);
    size_t next = off + static_cast<size_t>(static_cast<const char*>(std::memchr(p + off, '\n', n - off)) - (p + off)) + 1;
    if (line == "END") {
      r.status = ParseStatus::kOk;
      r.consumed = next;
      r.outcome = ReplyOutcome::kValues;
      return r;
    }
    if (!StartsWith(line, "VALUE ")) {
      ReplyOutcome o = Classify(line);
      if (off == 0 && IsFailure(o) && o != ReplyOutcome::kUnexpected) {  // an error instead of the whole reply
        r.status = ParseStatus::kOk;
        r.consumed = next;
        r.outcome = o;
        r.error_line = line;
        return r;
      }
      r.status = ParseStatus::kError;
      return r;
    }
    // VALUE <key> <flags> <bytes> [<cas>]
    std::string_view rest = line.substr(6);
    size_t sp = rest.find(' ');
    if (sp == std::string_view::npos || sp == 0) { r.status = ParseStatus::kError; return r; }
    std::string_view key = rest.substr(0, sp);
    rest = rest.substr(sp + 1);
    sp = rest.find(' ');
    if (sp == std::string_view::npos) { r.status = ParseStatus::kError; return r; }
    rest = rest.substr(sp + 1);
    size_t bytes = 0;
    auto fc = std::from_chars(rest.data(), rest.data() + rest.size(), bytes);
    if (fc.ec != std::errc() || fc.ptr == rest.data()) { r.status = ParseStatus::kError; return r; }
    if (n - next < bytes + 2) return r;  // NeedMore
    if (p[next + bytes] != '\r' || p[next + bytes + 1] != '\n') { r.status = ParseStatus::kError; return r; }
    values->push_back({key, std::string_view(p + next, bytes)});
    off = next + bytes + 2;
  }
}

}  // namespace memha::bench
