#pragma once
// One memcached meta reply (mg/ms/md/mn), or an error line, parsed in place: Ok(consumed) / NeedMore / Error.
//   VA <len> <flags>*\r\n<data>\r\n | HD|EN|NS|EX|NF|MN <flags>*\r\n | ERROR|CLIENT_ERROR ...|SERVER_ERROR ...\r\n
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace memha::refill {

enum class ReplyCode { kValue, kHit, kMiss, kNotStored, kExists, kNotFound, kNoop, kError };

struct MetaReply {
  ReplyCode code = ReplyCode::kError;
  std::string_view line;   // the first line without \r\n
  std::string_view flags;  // the tokens after the code (VA: after the length)
  std::string_view value;  // VA only

  // The token of return flag `c` ("c123" -> "123"), nullopt when absent.
  std::optional<std::string_view> Flag(char c) const;
  // Flag `c` as a number; false when absent or not a number.
  bool NumberFlag(char c, int64_t* out) const;
  bool NumberFlag(char c, uint64_t* out) const;
};

enum class ReplyParse { kOk, kNeedMore, kError };

struct ParsedReply {
  ReplyParse status = ReplyParse::kNeedMore;
  size_t consumed = 0;
};

inline constexpr size_t kMaxReplyLine = 8192;
inline constexpr size_t kMaxValue = 128u << 20;  // memcached's item size cap is 1 GB in theory; 128 MiB is ours

ParsedReply ParseMetaReply(std::string_view in, MetaReply* out);

}  // namespace memha::refill
