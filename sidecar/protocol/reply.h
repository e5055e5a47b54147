#pragma once
// Parsing of replies from a memcached member. Resumable: a partially received multi-get reply keeps its
// parsed items and cursor, so a large reply is scanned once.
#include <cstdint>
#include <string_view>
#include <vector>

#include "sidecar/protocol/request.h"

namespace memha::protocol {

enum class ReplyKind : uint8_t {
  kRetrieval,  // VALUE ... END (get/gets/gat/gats)
  kLine,       // one line (storage, delete, incr/decr, touch, flush_all, verbosity, version)
  kMeta,       // one meta line; "VA <len> ..." is followed by a data block
};

struct ReplyItem {
  Span key;
  Span whole;  // "VALUE ...\r\n<data>\r\n"
  Span data;
  uint32_t flags = 0;
  uint64_t cas = 0;
};

struct Reply {
  size_t consumed = 0;        // bytes of complete reply parsed so far (final once done)
  Span line;                  // kLine/kMeta: the status line without "\r\n"; kRetrieval: END or the error line
  Span data;                  // kMeta with VA
  std::vector<ReplyItem> items;
  bool done = false;
  bool error = false;         // ERROR / CLIENT_ERROR / SERVER_ERROR

  void Reset() {  // to parse the next reply; keeps the item vector's capacity
    consumed = 0;
    line = Span();
    data = Span();
    items.clear();
    done = false;
    error = false;
  }
};

enum class ReplyStatus { kDone, kNeedMore, kBad };

// `need` (on kNeedMore) is the total buffered size needed before calling again, or 0 if unknown.
ReplyStatus ParseReply(std::string_view in, ReplyKind kind, Reply* reply, size_t* need);

bool IsErrorLine(std::string_view line);

}  // namespace memha::protocol
