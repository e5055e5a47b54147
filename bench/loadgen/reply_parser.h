#pragma once
// Incremental parser for the memcached text replies the load generator expects. No I/O, no allocation beyond
// the caller's vector; views point into the caller's buffer.
#include <cstddef>
#include <string_view>
#include <vector>

namespace memha::bench {

enum class ReplyKind { kRetrieval, kStorage, kDelete };
enum class ParseStatus { kOk, kNeedMore, kError };
enum class ReplyOutcome { kValues, kStored, kNotStored, kDeleted, kNotFound, kServerError, kClientError, kError, kUnexpected };

struct ValueView {
  std::string_view key;
  std::string_view data;
};

struct ParsedReply {
  ParseStatus status = ParseStatus::kNeedMore;
  size_t consumed = 0;
  ReplyOutcome outcome = ReplyOutcome::kUnexpected;
  std::string_view error_line;  // for error outcomes
};

// Parses one reply to a request of `kind` from [p, p+n). For retrievals, the VALUE items are appended to `values`
// (cleared first). kError means the byte stream is not a memcached reply (the connection must be dropped).
ParsedReply ParseReply(const char* p, size_t n, ReplyKind kind, std::vector<ValueView>* values);

inline bool IsFailure(ReplyOutcome o) {
  return o == ReplyOutcome::kServerError || o == ReplyOutcome::kClientError || o == ReplyOutcome::kError ||
         o == ReplyOutcome::kUnexpected;
}

}  // namespace memha::bench
