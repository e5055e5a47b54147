#pragma once
// Parsing of replies from a memcached member. Every request the sidecar sends is a meta command carrying an
// opaque token (compose.h), so every reply but an error line must echo the opaque of the request it is matched
// with; a reply that does not is proof the stream is out of step, and the parser says so (kBad) instead of
// handing it to anyone. Resumable: a reply whose value has not fully arrived reports the size it needs.
#include <cstdint>
#include <string_view>

#include "sidecar/protocol/request.h"

namespace memha::protocol {

enum class ReplyKind : uint8_t {
  kMeta,    // one meta line with the request's opaque (VA/HD/EN/NF/NS/EX); "VA <len>" is followed by a data block
  kFenced,  // one line with no opaque (flush_all, me), then the "MN" of the mn the connection sent after it
  kNoop,    // "MN" (probes)
};

struct Reply {
  size_t consumed = 0;  // bytes of the whole reply, fence included
  Span line;            // the status line without "\r\n"
  Span data;            // kMeta with VA
  Span opaque;          // kMeta: " O<n>" as it appears in line (with its leading space), empty for error lines
  bool error = false;   // ERROR / CLIENT_ERROR / SERVER_ERROR

  void Reset() { *this = Reply(); }
  std::string_view code(std::string_view buf) const { return line.in(buf).substr(0, 2); }
};

enum class ReplyStatus { kDone, kNeedMore, kBad };

// `opaque`: the number the request carried (kMeta). `need` (on kNeedMore): the total buffered size needed
// before calling again, or 0 if unknown.
ReplyStatus ParseReply(std::string_view in, ReplyKind kind, uint32_t opaque, Reply* reply, size_t* need);

bool IsErrorLine(std::string_view line);

}  // namespace memha::protocol
