#include "sidecar/protocol/request.h"

#include <array>
#include <cctype>
#include <cerrno>
#include <cstdlib>
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

// Fast path for the common case: a short run of digits, which every strto* reads the same way.
bool ShortDigits(std::string_view t, uint64_t* out) {
  if (t.empty() || t.size() > 18) return false;
  uint64_t v = 0;
  for (char c : t) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

// Runs `fn` on a NUL-terminated copy of the token: memcached's parsers are libc's strto* on C strings.
template <typename Fn>
bool WithCString(std::string_view t, Fn fn) {
  char small[64];
  if (t.size() < sizeof small) {
    std::memcpy(small, t.data(), t.size());
    small[t.size()] = '\0';
    return fn(static_cast<const char*>(small));
  }
  std::string copy(t);
  return fn(copy.c_str());
}

// After strto*: memcached accepts the number if it stopped at whitespace or at the end of a non-empty token.
bool AcceptedEnd(const char* str, const char* end) {
  return std::isspace(static_cast<unsigned char>(*end)) || (*end == '\0' && end != str);
}

}  // namespace

bool McStrtol(std::string_view t, int32_t* out) {
  uint64_t fast;
  if (ShortDigits(t, &fast)) {
    *out = static_cast<int32_t>(static_cast<int64_t>(fast));  // a long stored into an int32_t, as memcached does
    return true;
  }
  return WithCString(t, [&](const char* str) {
    errno = 0;
    char* end = nullptr;
    long l = std::strtol(str, &end, 10);
    if (errno == ERANGE || str == end || !AcceptedEnd(str, end)) return false;
    *out = static_cast<int32_t>(l);
    return true;
  });
}

bool McStrtoul(std::string_view t, uint32_t* out) {
  uint64_t fast;
  if (ShortDigits(t, &fast)) {
    *out = static_cast<uint32_t>(fast);
    return true;
  }
  return WithCString(t, [&](const char* str) {
    errno = 0;
    char* end = nullptr;
    unsigned long l = std::strtoul(str, &end, 10);
    if (errno == ERANGE || str == end || !AcceptedEnd(str, end)) return false;
    if (static_cast<long>(l) < 0 && std::strchr(str, '-') != nullptr) return false;
    *out = static_cast<uint32_t>(l);
    return true;
  });
}

bool McStrtoull(std::string_view t, uint64_t* out) {
  if (ShortDigits(t, out)) return true;
  return WithCString(t, [&](const char* str) {
    errno = 0;
    char* end = nullptr;
    unsigned long long l = std::strtoull(str, &end, 10);
    if (errno == ERANGE || str == end || !AcceptedEnd(str, end)) return false;
    if (static_cast<long long>(l) < 0 && std::strchr(str, '-') != nullptr) return false;
    *out = l;
    return true;
  });
}

namespace {

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

// memcached's _meta_flag_preparse, plus the opaque length check its commands make afterwards: reads each flag by
// its first character, refuses duplicates and unknown flags at once, and checks the numbers of N T R F C J D and
// the length of M. Returns the error memcached would print, or an empty view. Records q, b, O and every flag.
std::string_view ValidateMetaFlags(std::string_view in, const Tokens& tok, size_t first, Request* out,
                                   std::string* decoded_key) {
  bool seen[128] = {};
  bool has_error = false;
  std::string_view errstr = "CLIENT_ERROR bad command line format";
  for (size_t i = first; i < tok.n; ++i) {
    Span f = tok.t[i];
    std::string_view v = f.in(in);
    unsigned char o = static_cast<unsigned char>(v[0]);
    if (o >= 127 || seen[o]) return "CLIENT_ERROR duplicate flag";
    seen[o] = true;
    out->flags[out->nflags++] = f;
    std::string_view arg = v.substr(1);
    int32_t i32;
    uint32_t u32;
    uint64_t u64;
    switch (o) {
      case 'b':
        out->meta_base64 = true;
        if (!Base64Decode(tok.t[1].in(in), decoded_key)) {
          errstr = "CLIENT_ERROR error decoding key";
          has_error = true;
        }
        break;
      case 'N': case 'T': case 'R':
        if (!McStrtol(arg, &i32)) {
          errstr = "CLIENT_ERROR bad token in command line format";
          has_error = true;
        }
        break;
      case 'F':
        if (!McStrtoul(arg, &u32)) has_error = true;
        break;
      case 'C':
        if (!McStrtoull(arg, &u64)) {
          errstr = "CLIENT_ERROR bad token in command line format";
          has_error = true;
        }
        break;
      case 'M':
        if (v.size() != 2) {
          errstr = "CLIENT_ERROR incorrect length for M token";
          has_error = true;
        }
        break;
      case 'J':
        if (!McStrtoull(arg, &u64)) {
          errstr = "CLIENT_ERROR invalid numeric initial value";
          has_error = true;
        }
        break;
      case 'D':
        if (!McStrtoull(arg, &u64)) {
          errstr = "CLIENT_ERROR invalid numeric delta value";
          has_error = true;
        }
        break;
      case 'q':
        out->noreply = true;
        break;
      case 'O':
        out->opaque = f;
        break;
      case 'l': case 'P': case 'L': case 'k': case 's': case 't': case 'c': case 'f': case 'v': case 'h':
      case 'u': case 'I':
        break;
      default:
        return "CLIENT_ERROR invalid flag";
    }
  }
  if (has_error) return errstr;
  return {};
}

// memcached's commands check the opaque's length (32) after the flags.
constexpr size_t kMaxOpaque = 32;

// The mode of an ms or ma M flag ('\0' when absent).
char ModeOf(const Request& r, std::string_view in) {
  for (uint8_t i = 0; i < r.nflags; ++i) {
    std::string_view v = r.flags[i].in(in);
    if (v[0] == 'M') return v.size() > 1 ? v[1] : '\0';
  }
  return '\0';
}

// Commands memcached dispatches on the first letter: an unknown word starting with one of these is answered
// ERROR; any other unknown line whose last token starts with "HTTP/" makes memcached close the connection.
bool DispatchedByFirstLetter(std::string_view name) {
  if (name.size() == 2 && name[0] == 'm') return true;
  switch (name[0]) {
    case 'g': case 's': case 'a': case 'c': case 'i': case 'd': case 't': return true;
    default: return false;
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

// memcached's base64_decode, byte for byte: characters outside the alphabet are skipped, '=' counts as a zero
// digit, decoding stops after the first block with padding, and an empty result is a failure. The key the
// sidecar routes by must be the key memcached stores.
bool Base64Decode(std::string_view in, std::string* out) {
  auto val = [](unsigned char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    if (c == '=') return 0;
    return -1;
  };
  size_t count = 0;
  for (unsigned char c : in) count += val(c) >= 0;
  if (count == 0 || count % 4 != 0) return false;
  out->clear();
  unsigned char block[4];
  size_t n = 0;
  int pad = 0;
  for (unsigned char c : in) {
    int v = val(c);
    if (v < 0) continue;
    if (c == '=') ++pad;
    block[n++] = static_cast<unsigned char>(v);
    if (n < 4) continue;
    out->push_back(static_cast<char>(static_cast<unsigned char>((block[0] << 2) | (block[1] >> 4))));
    out->push_back(static_cast<char>(static_cast<unsigned char>((block[1] << 4) | (block[2] >> 2))));
    out->push_back(static_cast<char>(static_cast<unsigned char>((block[2] << 6) | block[3])));
    n = 0;
    if (pad) {
      if (pad > 2) return false;
      out->resize(out->size() - static_cast<size_t>(pad));
      break;
    }
  }
  return !out->empty();
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
  // memcached reads 16 KB at a time and closes a connection whose first read holds no newline (after 2 KB)
  // unless the line starts a get/gets: a longer line is never a command to it.
  if (line_bytes > limits.max_read && !IsRetrievalPrefix(in)) {
    ParseResult r = Fail("", line_bytes);
    r.error.close = true;
    return r;
  }
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
  if (info == nullptr) {
    if (name == "bget") {  // memcached's ancient alias of get
      static const CommandInfo kBget{"bget", Command::kGet};
      info = &kBget;
    } else {
      // memcached closes, without a reply, a connection whose unknown command line ends like an HTTP request
      // line: a cache on localhost must not be writable by a forged HTTP request (SSRF).
      size_t last = std::min<size_t>(tok.n, kMaxTokens - 1) - 1;
      if (name.size() >= 2 && !DispatchedByFirstLetter(name) && tok.t[last].in(in).substr(0, 5) == "HTTP/") {
        ParseResult r = Fail("", line_bytes);
        r.error.close = true;
        return r;
      }
      return Fail(kError, line_bytes);
    }
  }
  out->cmd = info->cmd;
  const Command cmd = info->cmd;
  auto tokv = [&](size_t i) { return tok.t[i].in(in); };

  // Retrieval: get/gets <key>+, gat/gats <exptime> <key>+. Long key lists exceed kMaxTokens: re-scan the line.
  if (IsRetrieval(cmd)) {
    const bool touch = cmd == Command::kGat || cmd == Command::kGats;
    if (tok.n < 2) return Fail(kError, line_bytes);
    size_t first_key = 1;
    if (touch) {
      int32_t exptime;
      if (!McStrtol(tokv(1), &exptime)) return Fail("CLIENT_ERROR invalid exptime argument\r\n", line_bytes);
      out->exptime = exptime;
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
  const bool meta_keyed = cmd == Command::kMetaGet || cmd == Command::kMetaSet ||
                          cmd == Command::kMetaDelete || cmd == Command::kMetaArithmetic;
  if (tok.overflow && !meta_keyed) return Fail(kError, line_bytes);

  auto key_ok = [&](size_t i) { return tok.t[i].len <= limits.max_key; };
  // memcached's set_noreply_maybe: the last token, whatever the count (its errors are then silent too).
  auto last_is_noreply = [&]() { return tokv(tok.n - 1) == "noreply"; };

  // Reads the value block that follows a storage line; shared by the text storage commands and ms.
  auto value_block = [&](int64_t vlen, bool suppress_errors) -> ParseResult {
    // memcached adds 2 (the \r\n) to the length in an int: a length that overflows is refused without reading
    // a data block, so the bytes after the line are commands, not a value to swallow.
    if (vlen < 0 || vlen > INT32_MAX - 2) return Fail(kBadFormat, line_bytes, suppress_errors);
    if (static_cast<uint64_t>(vlen) > limits.max_value) {
      ParseResult r = FailSwallowing(kTooLarge, in, line_bytes, vlen, suppress_errors);
      r.error.too_large = true;
      return r;
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
      out->noreply = last_is_noreply();
      out->keys.push_back(tok.t[1]);
      int32_t exptime = 0, vlen = 0;
      if (!key_ok(1) || !McStrtoul(tokv(2), &out->client_flags) || !McStrtol(tokv(3), &exptime) ||
          !McStrtol(tokv(4), &vlen) || (cmd == Command::kCas && !McStrtoull(tokv(5), &out->cas_unique))) {
        return Fail(kBadFormat, line_bytes, out->noreply);
      }
      out->exptime = exptime;
      return value_block(vlen, out->noreply);
    }
    case Command::kIncr: case Command::kDecr: {
      if (tok.n != 3 && tok.n != 4) return Fail(kError, line_bytes);
      out->noreply = last_is_noreply();
      out->keys.push_back(tok.t[1]);
      if (!key_ok(1)) return Fail(kBadFormat, line_bytes, out->noreply);
      if (!McStrtoull(tokv(2), &out->delta)) {
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
      out->noreply = last_is_noreply();
      out->keys.push_back(tok.t[1]);
      if (!key_ok(1)) return Fail(kBadFormat, line_bytes, out->noreply);
      int32_t exptime;
      if (!McStrtol(tokv(2), &exptime)) {
        return Fail("CLIENT_ERROR invalid exptime argument\r\n", line_bytes, out->noreply);
      }
      out->exptime = exptime;
      return Ok();
    }
    case Command::kVersion: case Command::kQuit:  // memcached ignores any further tokens
      return Ok();
    case Command::kStats:
      return Ok();
    case Command::kVerbosity: {
      if (tok.n < 2 || tok.n > 3) return Fail(kError, line_bytes);
      out->noreply = tokv(tok.n - 1) == "noreply";
      uint32_t level;
      if (!McStrtoul(tokv(1), &level)) return Fail(kBadFormat, line_bytes, out->noreply);
      return Ok();
    }
    case Command::kFlushAll: {
      if (tok.n > 3) return Fail(kError, line_bytes);
      out->noreply = tok.n > 1 && tokv(tok.n - 1) == "noreply";
      if (tok.n != (out->noreply ? 2u : 1u)) {  // memcached reads the first argument, whatever follows it
        int32_t delay;
        if (!McStrtol(tokv(1), &delay)) {
          return Fail("CLIENT_ERROR invalid exptime argument\r\n", line_bytes, out->noreply);
        }
        out->exptime = delay;
      }
      return Ok();
    }
    case Command::kMetaNoop:
      return Ok();
    case Command::kMetaDebug: {
      if (tok.n < 2 || !key_ok(1)) return Fail(kBadFormat, line_bytes);
      out->keys.push_back(tok.t[1]);
      if (tok.n > 2) out->meta_flags = Span{tok.t[2].off, tok.t[tok.n - 1].off + tok.t[tok.n - 1].len - tok.t[2].off};
      if (tok.n >= 3 && tokv(2) == "b") {
        out->meta_base64 = true;
        if (!Base64Decode(tokv(1), &out->decoded_key)) return Fail(kBadFormat, line_bytes);
      }
      return Ok();
    }
    case Command::kMetaGet: case Command::kMetaDelete: case Command::kMetaArithmetic: case Command::kMetaSet: {
      if (tok.n < 2) return Fail(kError, line_bytes);
      out->keys.push_back(tok.t[1]);
      if (!key_ok(1)) return Fail(kBadFormat, line_bytes);
      if (cmd == Command::kMetaSet && tok.n < 3) return Fail(kBadFormat, line_bytes);
      // memcached refuses 20 or more tokens before anything else, without reading an ms value: forwarding one
      // would leave its value block to be read as commands on the shared member connection.
      if (tok.overflow || tok.n >= kMetaMaxTokens) {
        return Fail(cmd == Command::kMetaGet ? "CLIENT_ERROR options flags are too long\r\n"
                                             : "CLIENT_ERROR options flags too long\r\n",
                    line_bytes);
      }
      const size_t first_flag = cmd == Command::kMetaSet ? 3 : 2;
      if (first_flag < tok.n) {
        out->meta_flags = Span{tok.t[first_flag].off,
                               tok.t[tok.n - 1].off + tok.t[tok.n - 1].len - tok.t[first_flag].off};
      }
      int32_t vlen = 0;
      if (cmd == Command::kMetaSet) {
        if (!McStrtol(tokv(2), &vlen) || vlen < 0 || vlen > INT32_MAX - 2) return Fail(kBadFormat, line_bytes);
      }
      // Errors from here on are answered after the flags were read; ms then swallows its value block.
      auto fail = [&](std::string_view reply) {
        std::string line(reply);
        line += "\r\n";
        if (cmd == Command::kMetaSet) return FailSwallowing(line, in, line_bytes, vlen, false);
        return Fail(line, line_bytes);
      };
      std::string_view err = ValidateMetaFlags(in, tok, first_flag, out, &out->decoded_key);
      if (!err.empty()) {
        if (cmd == Command::kMetaDelete || cmd == Command::kMetaArithmetic) {
          err = "CLIENT_ERROR invalid or duplicate flag";
        }
        return fail(err);
      }
      const char mode = ModeOf(*out, in);
      if (cmd == Command::kMetaSet && mode != '\0' && std::string_view("EAPRS").find(mode) == std::string_view::npos) {
        return fail("CLIENT_ERROR invalid mode for ms M token");
      }
      if (cmd == Command::kMetaArithmetic && mode != '\0' &&
          std::string_view("I+D-").find(mode) == std::string_view::npos) {
        return fail("CLIENT_ERROR invalid mode for ma M token");
      }
      if (out->opaque.len > kMaxOpaque) return fail("CLIENT_ERROR opaque token too long");
      if (cmd != Command::kMetaSet) return Ok();
      ParseResult r = value_block(vlen, /*suppress_errors=*/false);
      // ms unlinks the key when the value is too large, in every mode.
      return r;
    }
    default:
      return Fail(kError, line_bytes);
  }
}

}  // namespace memha::protocol
