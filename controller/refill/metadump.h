#pragma once
// `lru_crawler metadump all|hash` output, one line at a time (memcached 1.6 crawler.c):
//   key=<uri-encoded key> exp=<unix time|-1> la=<unix time> cas=<n> fetch=yes|no cls=<n> size=<n>\n
//   ...
//   END\r\n
// or a refusal instead of any record: BUSY ..., BADCLASS ..., NOTSTARTED ..., ERROR ..., CLIENT_ERROR ...
// Pure: no I/O, no allocation but the decoded key. Unknown fields are ignored (memcached says the set may grow).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace memha::refill {

inline constexpr size_t kMaxKeyLength = 250;      // memcached KEY_MAX_LENGTH
inline constexpr size_t kMaxDumpLine = 8192;      // memcached formats a record into 4096 bytes

struct DumpRecord {
  std::string key;        // decoded bytes
  int64_t exp = -1;       // absolute unix time, -1: never
  uint64_t cas = 0;
  uint64_t size = 0;      // item size in memory (header + key + value), 0 when absent
};

enum class DumpLine {
  kRecord,    // *record filled
  kEnd,       // END: the dump is complete
  kRefused,   // BUSY/BADCLASS/NOTSTARTED/ERROR/CLIENT_ERROR/SERVER_ERROR: no dump on this request
  kBadLine,   // a complete line that is none of the above (skip it: `consumed` covers it)
  kNeedMore,  // no complete line yet
  kTooLong,   // no newline within kMaxDumpLine bytes: the stream cannot be trusted any more
};

struct DumpParse {
  DumpLine kind = DumpLine::kNeedMore;
  size_t consumed = 0;     // bytes of `in` this line used (0 for kNeedMore/kTooLong)
  std::string_view line;   // the line without its end of line (kRefused, kBadLine: for the log)
};

DumpParse ParseDumpLine(std::string_view in, DumpRecord* record);

// memcached's uriencode reversed: %XX (either case) -> byte; any other byte as is. False on a bad escape.
bool UriDecode(std::string_view in, std::string* out);

}  // namespace memha::refill
