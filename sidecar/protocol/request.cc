#include "sidecar/protocol/request.h"

#include <array>
#include <cstring>

namespace memha::protocol {
namespace {

constexpr std::string_view kError = "ERROR\r\n";
constexpr std::string_view kBadFormat = "CLIENT_ERROR bad command line format\r\n";
constexpr std::string_view kTooLarge = "SERVER_ERROR object too large for cache\r\n";
constexpr size_t kMaxTokens = 24;  // beyond this only retrieval commands make sense
constexpr size_t kMetaMaxTokens = 20;  // memcached's MFLAG_MAX_OPT_LENGTH (its count has one more, empty, token)

struct CommandInfo {
  std::string_view name;
  Command cmd;
};
constexpr std::array<CommandInfo, static_cast<size_t>(Command::kCount)> kCommands = {{
    {"get", Command::kGet}, {"gets", Command::kGets}, {"gat", Command::kGat}, {"gats", Command::kGats},
    {"set", Command::kSet}, {"add", Command::kAdd}, {"replace", Command::kReplace},
    {"append", Command::kAppend}, {"prepend", Command::kPrepend}, {"cas", Command::kCas},
    {"delete", Command::kDelete}, {"incr", Command::kIncr}, {"decr", Command::kDecr}, {"touch", Command::kTouch},
    {"version", Command::kVersion}, {"stats", Command::kStats}, {"verbosity", Command::kVerbosity},
    {"flush_all", Command::kFlushAll}, {"quit", Command::kQuit},
    {"mg", Command::kMetaGet}, {"ms", Command::kMetaSet}, {"md", Command::kMetaDelete},
    {"ma", Command::kMetaArithmetic}, {"mn", Command::kMetaNoop}, {"me", Command::kMetaDebug},
}};

bool ParseU64(std::string_view t, uint64_t* out) {
  if (t.empty() || t.size() > 20) return false;
  uint64_t v = 0;
  for (char c : t) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

bool ParseU32(std::string_view t, uint32_t* out) {
  uint64_t v;
  if (!ParseU64(t, &v) || v > UINT32_MAX) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

// memcached's safe_strtol: a 32-bit signed integer.
bool ParseI32(std::string_view t, int64_t* out) {
  bool neg = !t.empty() && t.front() == '-';
  if (neg) t.remove_prefix(1);
  uint64_t v;
  if (!ParseU64(t, &v) || v > (neg ? 2147483648ULL : 2147483647ULL)) return false;
  *out = neg ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
  return true;
}

struct Tokens {
  std::array<Span, kMaxTokens + 1> t;
  size_t n = 0;
  bool overflow = false;  // more than kMaxTokens
};

// End of the token starting at `i` (the next space, or `end`): memchr scans a long key in a few instructions.
inline size_t TokenEnd(std::string_view in, size_t i, size_t end) {
  const void* sp = std::memchr(in.data() + i, ' ', end - i);
  return sp ? static_cast<size_t>(static_cast<const char*>(sp) - in.data()) : end;
}

void Tokenize(std::string_view in, Span line, Tokens* tok) {
  size_t i = line.off, end = line.off + line.len;
  while (i < end) {
    while (i < end && in[i] == ' ') ++i;
    if (i >= end) break;
    size_t start = i;
    i = TokenEnd(in, i, end);
    if (tok->n == kMaxTokens) {
      tok->overflow = true;
      return;
    }
    tok->t[tok->n++] = Span{static_cast<uint32_t>(start), static_cast<uint32_t>(i - start)};
  }
}

ParseResult Fail(std::string_view reply, size_t consume, bool suppress = false) {
  ParseResult r;
  r.status = ParseStatus::kError;
  r.error.reply = suppress ? std::string() : std::string(reply);
  r.error.consume = consume;
  return r;
}

// An error after a value length was read: memcached discards the value block too, as it arrives.
ParseResult FailSwallowing(std::string_view reply, std::string_view in, size_t line_bytes, int64_t vlen,
                           bool suppress) {
  ParseResult r = Fail(reply, line_bytes, suppress);
  size_t have = in.size() - line_bytes, total = static_cast<size_t>(vlen) + 2;
  r.error.consume = line_bytes + std::min(have, total);
  r.error.swallow = total - std::min(have, total);
  return r;
}

ParseResult Ok() {
  ParseResult r;
  r.status = ParseStatus::kOk;
  return r;
}

// The 24-byte binary header gets a binary "not supported" reply naming the alternative, then the connection closes.
ParseResult BinaryRefusal(std::string_view in) {
  if (in.size() < 24) return ParseResult{ParseStatus::kNeedMore, 24, {}};
  static constexpr std::string_view kMsg = "memha: binary protocol not supported; use the text or meta protocol";
  std::string reply(24, '\0');
  reply[0] = static_cast<char>(0x81);
  reply[1] = in[1];                                   // opcode
  reply[7] = static_cast<char>(0x83);                 // status: not supported
  uint32_t body = static_cast<uint32_t>(kMsg.size());
  for (int i = 0; i < 4; ++i) reply[8 + i] = static_cast<char>(body >> (24 - 8 * i));
  std::memcpy(reply.data() + 12, in.data() + 12, 4);  // opaque
  reply.append(kMsg);
  ParseResult r;
  r.status = ParseStatus::kError;
  r.error.reply = std::move(reply);
  r.error.consume = in.size();
  r.error.close = true;
  return r;
}

bool IsRetrievalPrefix(std::string_view in) {
  size_t i = 0;
  while (i < in.size() && i < 100 && in[i] == ' ') ++i;
  std::string_view rest = in.substr(i);
  for (std::string_view p : {"get ", "gets ", "gat ", "gats "}) {
    if (rest.substr(0, p.size()) == p) return true;
  }
  return false;
}

// Meta flags after the key: q (quiet) and b (base64 key) change how the proxy treats the request.
void ScanMetaFlags(std::string_view in, const Tokens& tok, size_t first, Request* out) {
  for (size_t i = first; i < tok.n; ++i) {
    std::string_view f = tok.t[i].in(in);
    if (f == "q") out->noreply = true;
    if (f == "b") out->meta_base64 = true;
  }
  if (first < tok.n) {
    uint32_t start = tok.t[first].off;
    out->meta_flags = Span{start, tok.t[tok.n - 1].off + tok.t[tok.n - 1].len - start};
  }
}

}  // namespace

std::string_view CommandName(Command c) { return kCommands[static_cast<size_t>(c)].name; }
bool IsRetrieval(Command c) { return c <= Command::kGats; }
bool IsStorage(Command c) { return c >= Command::kSet && c <= Command::kCas; }
bool IsMeta(Command c) { return c >= Command::kMetaGet && c <= Command::kMetaDebug; }

std::string_view RoutingKey(const Request& r, std::string_view base, size_t i) {
  if (r.meta_base64) return r.decoded_key;
  return r.keys[i].in(base);
}

bool Base64Decode(std::string_view in, std::string* out) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (in.empty() || in.size() % 4 != 0) return false;
  out->clear();
  for (size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int j = 0; j < 4; ++j) {
      char c = in[i + j];
      if (c == '=' && i + 4 == in.size() && j >= 2) {
        v[j] = 0;
        ++pad;
      } else {
        if (pad) return false;
        v[j] = val(c);
        if (v[j] < 0) return false;
      }
    }
    uint32_t triple = uint32_t(v[0]) << 18 | uint32_t(v[1]) << 12 | uint32_t(v[2]) << 6 | uint32_t(v[3]);
    out->push_back(static_cast<char>(triple >> 16));
    if (pad < 2) out->push_back(static_cast<char>((triple >> 8) & 0xff));
    if (pad < 1) out->push_back(static_cast<char>(triple & 0xff));
  }
  return true;
}

ParseResult ParseRequest(std::string_view in, const Limits& limits, Request* out) {
  if (in.empty()) return ParseResult{};
  if (static_cast<unsigned char>(in[0]) == 0x80) return BinaryRefusal(in);

  size_t nl = in.find('\n');
  if (nl == std::string_view::npos) {
    if (in.size() > limits.max_line &&
        (!IsRetrievalPrefix(in) || in.size() > limits.max_retrieval_line)) {
      ParseResult r = Fail("", in.size());
      r.error.close = true;  // memcached closes a connection that sends a line this long
      return r;
    }
    return ParseResult{};
  }
  size_t line_end = (nl > 0 && in[nl - 1] == '\r') ? nl - 1 : nl;
  // memcached's line ends at a NUL byte (C strings): parse only that much, as the member will. A request read
  // further would be forwarded whole and read differently by the member, desynchronising a shared connection.
  if (const void* z = std::memchr(in.data(), '\0', line_end); z != nullptr) {
    line_end = static_cast<size_t>(static_cast<const char*>(z) - in.data());
  }
  const size_t line_bytes = nl + 1;
  if (line_bytes > limits.max_retrieval_line) {
    ParseResult r = Fail("", line_bytes);
    r.error.close = true;
    return r;
  }

  *out = Request();
  out->line = Span{0, static_cast<uint32_t>(line_end)};
  out->consumed = line_bytes;
  Tokens tok;
  Tokenize(in, out->line, &tok);
  if (tok.n == 0) return Fail(kError, line_bytes);

  std::string_view name = tok.t[0].in(in);
  const CommandInfo* info = nullptr;
  for (const CommandInfo& c : kCommands) {
    if (c.name == name) {
      info = &c;
      break;
    }
  }
  if (info == nullptr) return Fail(kError, line_bytes);
  out->cmd = info->cmd;
  const Command cmd = info->cmd;
  auto tokv = [&](size_t i) { return tok.t[i].in(in); };

  // Retrieval: get/gets <key>+, gat/gats <exptime> <key>+. Long key lists exceed kMaxTokens: re-scan the line.
  if (IsRetrieval(cmd)) {
    const bool touch = cmd == Command::kGat || cmd == Command::kGats;
    if (tok.n < 2) return Fail(kError, line_bytes);
    size_t first_key = 1;
    if (touch) {
      if (!ParseI32(tokv(1), &out->exptime)) return Fail("CLIENT_ERROR invalid exptime argument\r\n", line_bytes);
      first_key = 2;
      if (tok.n < 3) return Fail("END\r\n", line_bytes);
    }
    size_t i = tok.t[first_key].off, end = line_end;
    while (i < end) {
      while (i < end && in[i] == ' ') ++i;
      if (i >= end) break;
      size_t start = i;
      i = TokenEnd(in, i, end);
      if (i - start > limits.max_key) return Fail(kBadFormat, line_bytes);
      out->keys.push_back(Span{static_cast<uint32_t>(start), static_cast<uint32_t>(i - start)});
    }
    return Ok();
  }
  if (tok.overflow) return Fail(kError, line_bytes);

  auto key_ok = [&](size_t i) { return tok.t[i].len <= limits.max_key; };
  auto last_is_noreply = [&](size_t expected_without) {
    return tok.n == expected_without + 1 && tokv(tok.n - 1) == "noreply";
  };

  // Reads the value block that follows a storage line; shared by the text storage commands and ms.
  auto value_block = [&](int64_t vlen, bool suppress_errors) -> ParseResult {
    // memcached adds 2 (the \r\n) to the length in an int: a length that overflows is refused without reading
    // a data block, so the bytes after the line are commands, not a value to swallow.
    if (vlen < 0 || vlen > INT32_MAX - 2) return Fail(kBadFormat, line_bytes, suppress_errors);
    if (static_cast<uint64_t>(vlen) > limits.max_value) {
      return FailSwallowing(kTooLarge, in, line_bytes, vlen, suppress_errors);
    }
    size_t total = line_bytes + static_cast<size_t>(vlen) + 2;
    if (in.size() < total) return ParseResult{ParseStatus::kNeedMore, total, {}};
    if (in[total - 2] != '\r' || in[total - 1] != '\n') {
      return Fail("CLIENT_ERROR bad data chunk\r\n", total, suppress_errors);
    }
    out->value_len = static_cast<uint32_t>(vlen);
    out->data = Span{static_cast<uint32_t>(line_bytes), static_cast<uint32_t>(vlen)};
    out->consumed = total;
    return Ok();
  };

  switch (cmd) {
    case Command::kSet: case Command::kAdd: case Command::kReplace: case Command::kAppend:
    case Command::kPrepend: case Command::kCas: {
      const size_t base = cmd == Command::kCas ? 6 : 5;
      if (tok.n != base && tok.n != base + 1) return Fail(kError, line_bytes);
      out->noreply = tok.n == base + 1 && tokv(base) == "noreply";
      out->keys.push_back(tok.t[1]);
      int64_t vlen = 0;
      if (!key_ok(1) || !ParseU32(tokv(2), &out->client_flags) || !ParseI32(tokv(3), &out->exptime) ||
          !ParseI32(tokv(4), &vlen) ||
          (cmd == Command::kCas && !ParseU64(tokv(5), &out->cas_unique))) {
        return Fail(kBadFormat, line_bytes, out->noreply);
      }
      return value_block(vlen, out->noreply);
    }
    case Command::kIncr: case Command::kDecr: {
      if (tok.n != 3 && tok.n != 4) return Fail(kError, line_bytes);
      out->noreply = last_is_noreply(3);
      out->keys.push_back(tok.t[1]);
      if (!key_ok(1)) return Fail(kBadFormat, line_bytes, out->noreply);
      if (!ParseU64(tokv(2), &out->delta)) {
        return Fail("CLIENT_ERROR invalid numeric delta argument\r\n", line_bytes, out->noreply);
      }
      return Ok();
    }
    case Command::kDelete: {
      if (tok.n < 2 || tok.n > 4) return Fail(kError, line_bytes);
      out->keys.push_back(tok.t[1]);
      if (tok.n > 2) {
        bool hold_is_zero = tokv(2) == "0";
        out->noreply = tokv(tok.n - 1) == "noreply";
        bool valid = (tok.n == 3 && (hold_is_zero || out->noreply)) || (tok.n == 4 && hold_is_zero && out->noreply);
        if (!valid) {
          return Fail("CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n", line_bytes,
                      out->noreply);
        }
      }
      if (!key_ok(1)) return Fail(kBadFormat, line_bytes, out->noreply);
      return Ok();
    }
    case Command::kTouch: {
      if (tok.n != 3 && tok.n != 4) return Fail(kError, line_bytes);
      out->noreply = last_is_noreply(3);
      out->keys.push_back(tok.t[1]);
      if (!key_ok(1)) return Fail(kBadFormat, line_bytes, out->noreply);
      if (!ParseI32(tokv(2), &out->exptime)) {
        return Fail("CLIENT_ERROR invalid exptime argument\r\n", line_bytes, out->noreply);
      }
      return Ok();
    }
    case Command::kVersion: case Command::kQuit:
      return tok.n == 1 ? Ok() : Fail(kError, line_bytes);
    case Command::kStats:
      return Ok();
    case Command::kVerbosity:
      if (tok.n < 2 || tok.n > 3) return Fail(kError, line_bytes);
      out->noreply = tokv(tok.n - 1) == "noreply";
      return Ok();
    case Command::kFlushAll: {
      if (tok.n > 3) return Fail(kError, line_bytes);
      out->noreply = tok.n > 1 && tokv(tok.n - 1) == "noreply";
      size_t args = tok.n - 1 - (out->noreply ? 1 : 0);
      if (args == 1 && !ParseI32(tokv(1), &out->exptime)) {
        return Fail("CLIENT_ERROR invalid exptime argument\r\n", line_bytes, out->noreply);
      }
      if (args > 1) return Fail(kBadFormat, line_bytes, out->noreply);
      return Ok();
    }
    case Command::kMetaNoop:
      return Ok();
    case Command::kMetaGet: case Command::kMetaDelete: case Command::kMetaArithmetic:
    case Command::kMetaDebug: case Command::kMetaSet: {
      if (tok.n < 2) return Fail(kError, line_bytes);
      if (cmd == Command::kMetaSet && tok.n < 3) return Fail(kBadFormat, line_bytes);
      out->keys.push_back(tok.t[1]);
      if (!key_ok(1)) return Fail(kBadFormat, line_bytes);
      // memcached refuses mg/ms/md with 20 or more tokens before anything else, without reading an ms value:
      // forwarding one would leave its value block to be read as commands on the shared member connection.
      if (tok.n >= kMetaMaxTokens &&
          (cmd == Command::kMetaGet || cmd == Command::kMetaSet || cmd == Command::kMetaDelete)) {
        return Fail("CLIENT_ERROR options flags are too long\r\n", line_bytes);
      }
      ScanMetaFlags(in, tok, cmd == Command::kMetaSet ? 3 : 2, out);
      int64_t vlen = 0;
      if (cmd == Command::kMetaSet && !ParseI32(tokv(2), &vlen)) return Fail(kBadFormat, line_bytes);
      if (out->meta_base64 && !Base64Decode(tokv(1), &out->decoded_key)) {
        constexpr std::string_view kBadKey = "CLIENT_ERROR error decoding key\r\n";
        if (cmd == Command::kMetaSet && vlen >= 0) return FailSwallowing(kBadKey, in, line_bytes, vlen, false);
        return Fail(kBadKey, line_bytes);
      }
      if (cmd != Command::kMetaSet) return Ok();
      return value_block(vlen, /*suppress_errors=*/false);
    }
    default:
      return Fail(kError, line_bytes);
  }
}

}  // namespace memha::protocol
