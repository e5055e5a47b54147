#pragma once
// Client-side request parsing for the memcached text and meta protocols. No I/O: the parser reads a contiguous
// view of buffered bytes and reports Ok (with the bytes consumed), NeedMore (with how many bytes it needs at
// least), or Error (the reply memcached would give, and what to do with the stream). Tokens are offsets into the
// input. Numbers are read exactly as memcached 1.6 reads them (strtol and friends, with its truncations), and
// meta flags by their first character as memcached does, so what the sidecar composes for a member from a
// parsed request (sidecar/protocol/compose.h) means to the member what the client's bytes meant.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace memha::protocol {

enum class Command : uint8_t {
  kGet, kGets, kGat, kGats,
  kSet, kAdd, kReplace, kAppend, kPrepend, kCas,
  kDelete, kIncr, kDecr, kTouch,
  kVersion, kStats, kVerbosity, kFlushAll, kQuit,
  kMetaGet, kMetaSet, kMetaDelete, kMetaArithmetic, kMetaNoop, kMetaDebug,
  kCount
};
std::string_view CommandName(Command c);

bool IsRetrieval(Command c);  // get gets gat gats
bool IsStorage(Command c);    // set add replace append prepend cas
bool IsMeta(Command c);

struct Span {
  uint32_t off = 0;
  uint32_t len = 0;
  std::string_view in(std::string_view base) const { return base.substr(off, len); }
};

// The keys of a request: the first inline (every keyed command and most gets: no allocation), further keys
// of a multi-key get on the heap.
class KeyList {
 public:
  void push_back(Span s) {
    if (n_ > 0) rest_.push_back(s);
    else first_ = s;
    ++n_;
  }
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  const Span& operator[](size_t i) const { return i == 0 ? first_ : rest_[i - 1]; }
  Span& operator[](size_t i) { return i == 0 ? first_ : rest_[i - 1]; }

 private:
  size_t n_ = 0;
  Span first_;
  std::vector<Span> rest_;
};

constexpr size_t kMaxMetaFlags = 20;  // memcached refuses mg/ms/md/ma with 20 or more tokens

struct Request {
  Command cmd = Command::kGet;
  Span line;                 // the command line without its "\r\n" / "\n"
  KeyList keys;              // retrieval: every key in order; keyed commands: one
  Span data;                 // storage/ms: the value without its trailing "\r\n"
  Span meta_flags;           // meta: everything after the key (and datalen for ms)
  std::array<Span, kMaxMetaFlags> flags{};  // meta: each flag token, validated as memcached validates them
  uint8_t nflags = 0;
  Span opaque;               // meta: the client's O token (with its 'O'), echoed back in place of the sidecar's
  uint32_t client_flags = 0;
  int64_t exptime = 0;       // also gat's exptime, touch's exptime, flush_all's delay
  uint64_t cas_unique = 0;
  uint64_t delta = 0;
  uint32_t value_len = 0;
  bool noreply = false;      // text noreply, or meta q (quiet)
  bool meta_base64 = false;  // meta b flag: the key is base64, routing uses the decoded key
  std::string decoded_key;   // set when meta_base64
  size_t consumed = 0;       // line + data bytes
};

struct Limits {
  size_t max_key = 250;
  size_t max_value = 1024 * 1024;     // larger values are answered "object too large" and swallowed
  size_t max_line = 2048;             // memcached closes a connection whose line has no newline by then
  size_t max_read = 16384;            // memcached's read buffer: a longer non-get line is never read whole
  size_t max_retrieval_line = 256 * 1024;  // multi-key get lines may be longer, but stay bounded
};

enum class ParseStatus { kOk, kNeedMore, kError };

struct ParseError {
  std::string reply;     // bytes to send (may be empty)
  size_t consume = 0;    // bytes of the input to drop
  size_t swallow = 0;    // further bytes to discard as they arrive (an oversized value)
  bool close = false;    // close the connection after sending reply
  bool too_large = false;  // a value over the item size limit: set and ms also unlink the key, as memcached does
};

struct ParseResult {
  ParseStatus status = ParseStatus::kNeedMore;
  size_t need = 0;       // kNeedMore: total bytes required before parsing again (0 = unknown, wait for more)
  ParseError error;      // kError
};

ParseResult ParseRequest(std::string_view in, const Limits& limits, Request* out);

// The key a request routes by (decoded when the meta b flag is set).
std::string_view RoutingKey(const Request& r, std::string_view base, size_t i = 0);

bool Base64Decode(std::string_view in, std::string* out);

// memcached's safe_strtol / safe_strtoul / safe_strtoull on one token, with their exact acceptance and
// truncation (a long stored into an int32, an unsigned long into a uint32).
bool McStrtol(std::string_view token, int32_t* out);
bool McStrtoul(std::string_view token, uint32_t* out);
bool McStrtoull(std::string_view token, uint64_t* out);

// The first character of a meta flag, as memcached dispatches on it.
inline char FlagChar(Span flag, std::string_view base) { return base[flag.off]; }

}  // namespace memha::protocol
