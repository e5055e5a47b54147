#include "sidecar/protocol/reply.h"

#include <charconv>
#include <cstring>

namespace memha::protocol {
namespace {

constexpr size_t kMaxReplyLine = 8192;

bool NextToken(std::string_view line, size_t* pos, std::string_view* tok) {
  while (*pos < line.size() && line[*pos] == ' ') ++*pos;
  if (*pos >= line.size()) return false;
  size_t start = *pos;
  const void* sp = std::memchr(line.data() + *pos, ' ', line.size() - *pos);
  *pos = sp ? static_cast<size_t>(static_cast<const char*>(sp) - line.data()) : line.size();
  *tok = line.substr(start, *pos - start);
  return true;
}

template <typename T>
bool ToNumber(std::string_view t, T* out) {
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), *out);
  return ec == std::errc() && p == t.data() + t.size();
}

// Finds the next line starting at `from`; returns false if incomplete.
bool LineAt(std::string_view in, size_t from, Span* line, size_t* next) {
  size_t nl = in.find('\n', from);
  if (nl == std::string_view::npos) return false;
  size_t end = (nl > from && in[nl - 1] == '\r') ? nl - 1 : nl;
  *line = Span{static_cast<uint32_t>(from), static_cast<uint32_t>(end - from)};
  *next = nl + 1;
  return true;
}

}  // namespace

bool IsErrorLine(std::string_view line) {
  return line == "ERROR" || line.substr(0, 13) == "CLIENT_ERROR " || line.substr(0, 13) == "SERVER_ERROR " ||
         line == "CLIENT_ERROR" || line == "SERVER_ERROR";
}

ReplyStatus ParseReply(std::string_view in, ReplyKind kind, Reply* reply, size_t* need) {
  *need = 0;
  size_t pos = reply->consumed;
  for (;;) {
    Span line;
    size_t next;
    if (!LineAt(in, pos, &line, &next)) {
      return in.size() - pos > kMaxReplyLine ? ReplyStatus::kBad : ReplyStatus::kNeedMore;
    }
    std::string_view text = line.in(in);
    if (kind == ReplyKind::kLine) {
      reply->line = line;
      reply->error = IsErrorLine(text);
      reply->consumed = next;
      reply->done = true;
      return ReplyStatus::kDone;
    }
    if (kind == ReplyKind::kMeta) {
      reply->line = line;
      reply->error = IsErrorLine(text);
      if (text.substr(0, 3) == "VA ") {
        size_t p = 3;
        std::string_view len_tok;
        uint32_t len = 0;
        if (!NextToken(text, &p, &len_tok) || !ToNumber(len_tok, &len)) return ReplyStatus::kBad;
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
      reply->done = true;
      return ReplyStatus::kDone;
    }
    // Retrieval.
    if (text == "END" || IsErrorLine(text)) {
      reply->line = line;
      reply->error = text != "END";
      reply->consumed = next;
      reply->done = true;
      return ReplyStatus::kDone;
    }
    if (text.substr(0, 6) != "VALUE ") return ReplyStatus::kBad;
    size_t p = 6;
    std::string_view key, flags, len_tok, cas;
    uint32_t len = 0;
    ReplyItem item;
    if (!NextToken(text, &p, &key) || !NextToken(text, &p, &flags) || !NextToken(text, &p, &len_tok) ||
        !ToNumber(flags, &item.flags) || !ToNumber(len_tok, &len)) {
      return ReplyStatus::kBad;
    }
    if (NextToken(text, &p, &cas) && !ToNumber(cas, &item.cas)) return ReplyStatus::kBad;
    size_t total = next + len + 2;
    if (in.size() < total) {
      *need = total;
      return ReplyStatus::kNeedMore;
    }
    if (in[total - 2] != '\r' || in[total - 1] != '\n') return ReplyStatus::kBad;
    item.key = Span{static_cast<uint32_t>(line.off + (key.data() - text.data())), static_cast<uint32_t>(key.size())};
    item.whole = Span{static_cast<uint32_t>(pos), static_cast<uint32_t>(total - pos)};
    item.data = Span{static_cast<uint32_t>(next), len};
    reply->items.push_back(item);
    pos = total;
    reply->consumed = pos;
  }
}

}  // namespace memha::protocol
