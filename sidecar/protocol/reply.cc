#include "sidecar/protocol/reply.h"

#include <charconv>
#include <cstring>

namespace memha::protocol {
namespace {

constexpr size_t kMaxReplyLine = 8192;

// Finds the line starting at `from`; returns false if incomplete.
bool LineAt(std::string_view in, size_t from, Span* line, size_t* next) {
  const void* nl = std::memchr(in.data() + from, '\n', in.size() - from);
  if (nl == nullptr) return false;
  size_t at = static_cast<size_t>(static_cast<const char*>(nl) - in.data());
  size_t end = (at > from && in[at - 1] == '\r') ? at - 1 : at;
  *line = Span{static_cast<uint32_t>(from), static_cast<uint32_t>(end - from)};
  *next = at + 1;
  return true;
}

bool IsMetaCode(std::string_view text) {
  if (text.size() < 2 || (text.size() > 2 && text[2] != ' ')) return false;
  switch (text[0]) {
    case 'V': return text[1] == 'A';
    case 'H': return text[1] == 'D';
    case 'E': return text[1] == 'N' || text[1] == 'X';
    case 'N': return text[1] == 'F' || text[1] == 'S';
    default: return false;
  }
}

// The " O<n>" token of a meta reply line, checked against the number the request carried: the first token of
// the line that starts with 'O' must be exactly it. memcached prints the opaque once, as a token of its own; a
// key echoed with k is "k<key>", never " O...".
bool FindOpaque(std::string_view text, uint32_t opaque, Span line, Span* out) {
  const char* d = text.data();
  const size_t n = text.size();
  size_t pos = 2;
  while (pos + 1 < n && !(d[pos] == ' ' && d[pos + 1] == 'O')) ++pos;
  if (pos + 1 >= n) return false;
  size_t tok_end = pos + 2;
  while (tok_end < n && d[tok_end] != ' ') ++tok_end;
  char want[16];
  want[0] = ' ';
  want[1] = 'O';
  auto [end, ec] = std::to_chars(want + 2, want + sizeof want, opaque);
  const size_t len = static_cast<size_t>(end - want);
  if (tok_end - pos != len || std::memcmp(d + pos, want, len) != 0) return false;  // out of step
  *out = Span{static_cast<uint32_t>(line.off + pos), static_cast<uint32_t>(len)};
  return true;
}

}  // namespace

bool IsErrorLine(std::string_view line) {
  if (line.empty() || (line[0] != 'E' && line[0] != 'C' && line[0] != 'S')) return false;  // VA, HD, NF, ...
  return line == "ERROR" || line.substr(0, 13) == "CLIENT_ERROR " || line.substr(0, 13) == "SERVER_ERROR " ||
         line == "CLIENT_ERROR" || line == "SERVER_ERROR";
}

ReplyStatus ParseReply(std::string_view in, ReplyKind kind, uint32_t opaque, Reply* reply, size_t* need) {
  *need = 0;
  Span line;
  size_t next;
  if (!LineAt(in, 0, &line, &next)) return in.size() > kMaxReplyLine ? ReplyStatus::kBad : ReplyStatus::kNeedMore;
  std::string_view text = line.in(in);
  reply->line = line;
  reply->error = IsErrorLine(text);
  if (kind == ReplyKind::kNoop) {
    if (text != "MN") return ReplyStatus::kBad;
    reply->consumed = next;
    return ReplyStatus::kDone;
  }
  if (kind == ReplyKind::kFenced) {
    if (text == "MN") return ReplyStatus::kBad;  // the request's own reply is missing
    Span fence;
    size_t after;
    if (!LineAt(in, next, &fence, &after)) {
      return in.size() - next > kMaxReplyLine ? ReplyStatus::kBad : ReplyStatus::kNeedMore;
    }
    if (fence.in(in) != "MN") return ReplyStatus::kBad;
    reply->consumed = after;
    return ReplyStatus::kDone;
  }
  if (reply->error) {  // errors carry no opaque; the next reply's opaque proves the stream is still in step
    reply->consumed = next;
    return ReplyStatus::kDone;
  }
  if (!IsMetaCode(text) || !FindOpaque(text, opaque, line, &reply->opaque)) return ReplyStatus::kBad;
  if (text[0] == 'V') {
    size_t p = 3;
    while (p < text.size() && text[p] == ' ') ++p;
    uint32_t len = 0;
    auto [end, ec] = std::from_chars(text.data() + p, text.data() + text.size(), len);
    if (ec != std::errc() || end == text.data() + p || (end != text.data() + text.size() && *end != ' ')) {
      return ReplyStatus::kBad;
    }
    size_t total = next + len + 2;
    if (in.size() < total) {
      *need = total;
      return ReplyStatus::kNeedMore;
    }
    if (in[total - 2] != '\r' || in[total - 1] != '\n') return ReplyStatus::kBad;
    reply->data = Span{static_cast<uint32_t>(next), len};
    next = total;
  }
  reply->consumed = next;
  return ReplyStatus::kDone;
}

}  // namespace memha::protocol
