// Request parser round trip: random requests (seeded) are composed into wire bytes, parsed, and every field is
// compared with what was composed. Each request is checked prefix by prefix, and the whole stream is also parsed
// pipelined, both at once and as it would arrive in random-sized reads.
#include <gtest/gtest.h>

#include <cstdint>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "sidecar/protocol/request.h"
#include "tests/unit/request_check.h"

namespace memha::protocol {
namespace {

struct Composed {
  std::string wire;
  Command cmd = Command::kGet;
  std::string line;  // without CRLF
  std::vector<std::string> keys;
  std::string data;
  bool has_data = false;
  std::string meta_flags;
  uint32_t client_flags = 0;
  int64_t exptime = 0;
  uint64_t cas_unique = 0;
  uint64_t delta = 0;
  bool noreply = false;
  bool meta_base64 = false;
  std::string decoded_key;
};

std::string Base64Encode(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t n = uint32_t(uint8_t(in[i])) << 16;
    if (i + 1 < in.size()) n |= uint32_t(uint8_t(in[i + 1])) << 8;
    if (i + 2 < in.size()) n |= uint32_t(uint8_t(in[i + 2]));
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < in.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  uint64_t Uniform(uint64_t lo, uint64_t hi) { return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_); }
  bool Chance(int percent) { return Uniform(1, 100) <= static_cast<uint64_t>(percent); }

  std::string Key() {
    size_t len = Chance(10) ? Uniform(200, 250) : Uniform(1, 40);
    std::string k;
    for (size_t i = 0; i < len; ++i) k += static_cast<char>(Uniform(0x21, 0x7e));  // printable, no space
    return k;
  }

  std::string Value() {
    size_t len = Chance(5) ? Uniform(1000, 4000) : Uniform(0, 64);
    std::string v;
    for (size_t i = 0; i < len; ++i) v += Chance(10) ? (Chance(50) ? '\r' : '\n') : static_cast<char>(Uniform(0, 255));
    return v;
  }

  int64_t Exptime() {
    return Chance(20) ? -static_cast<int64_t>(Uniform(1, 2147483648ull)) : static_cast<int64_t>(Uniform(0, 2147483647));
  }

  // Meta flags (without q/b, which the caller adds), as tokens.
  std::vector<std::string> MetaFlags() {
    static const char* kFlags[] = {"v", "f", "t", "c", "k", "s", "h", "l", "u", "I"};
    std::vector<std::string> out;
    std::string used;  // memcached refuses a flag given twice (by its first character)
    size_t n = Uniform(0, 6);
    for (size_t i = 0; i < n; ++i) {
      std::string f;
      switch (Uniform(0, 4)) {
        case 0: f = "T" + std::to_string(Uniform(0, 100000)); break;
        case 1: f = "O" + std::to_string(Uniform(0, 1u << 30)); break;
        case 2: f = "N" + std::to_string(Uniform(0, 600)); break;
        default: f = kFlags[Uniform(0, std::size(kFlags) - 1)];
      }
      if (used.find(f[0]) != std::string::npos) continue;
      used += f[0];
      out.push_back(f);
    }
    return out;
  }

  Composed Next() {
    Composed c;
    const std::string sep = Chance(10) ? "  " : " ";
    const std::string eol = Chance(10) ? "\n" : "\r\n";
    switch (Uniform(0, 13)) {
      case 0: case 1: {  // storage
        static const std::pair<const char*, Command> kStorage[] = {
            {"set", Command::kSet}, {"add", Command::kAdd}, {"replace", Command::kReplace},
            {"append", Command::kAppend}, {"prepend", Command::kPrepend}, {"cas", Command::kCas}};
        const auto& [name, cmd] = kStorage[Uniform(0, 5)];
        c.cmd = cmd;
        c.keys = {Key()};
        c.client_flags = static_cast<uint32_t>(Uniform(0, UINT32_MAX));
        c.exptime = Exptime();
        c.data = Value();
        c.has_data = true;
        c.line = std::string(name) + sep + c.keys[0] + " " + std::to_string(c.client_flags) + " " +
                 std::to_string(c.exptime) + sep + std::to_string(c.data.size());
        if (cmd == Command::kCas) {
          c.cas_unique = Uniform(0, UINT64_MAX);
          c.line += " " + std::to_string(c.cas_unique);
        }
        c.noreply = Chance(30);
        if (c.noreply) c.line += " noreply";
        break;
      }
      case 2: case 3: {  // get / gets
        c.cmd = Chance(50) ? Command::kGet : Command::kGets;
        c.line = std::string(CommandName(c.cmd));
        for (size_t i = 0, n = Uniform(1, 40); i < n; ++i) {
          c.keys.push_back(Key());
          c.line += sep + c.keys.back();
        }
        break;
      }
      case 4: {  // gat / gats
        c.cmd = Chance(50) ? Command::kGat : Command::kGats;
        c.exptime = Exptime();
        c.line = std::string(CommandName(c.cmd)) + " " + std::to_string(c.exptime);
        for (size_t i = 0, n = Uniform(1, 10); i < n; ++i) {
          c.keys.push_back(Key());
          c.line += " " + c.keys.back();
        }
        break;
      }
      case 5: {  // delete
        c.cmd = Command::kDelete;
        c.keys = {Key()};
        c.line = "delete " + c.keys[0];
        if (Chance(30)) c.line += " 0";
        c.noreply = Chance(40);
        if (c.noreply) c.line += " noreply";
        break;
      }
      case 6: {  // incr / decr
        c.cmd = Chance(50) ? Command::kIncr : Command::kDecr;
        c.keys = {Key()};
        c.delta = Uniform(0, UINT64_MAX);
        c.line = std::string(CommandName(c.cmd)) + " " + c.keys[0] + " " + std::to_string(c.delta);
        c.noreply = Chance(30);
        if (c.noreply) c.line += " noreply";
        break;
      }
      case 7: {  // touch
        c.cmd = Command::kTouch;
        c.keys = {Key()};
        c.exptime = Exptime();
        c.line = "touch " + c.keys[0] + " " + std::to_string(c.exptime);
        c.noreply = Chance(30);
        if (c.noreply) c.line += " noreply";
        break;
      }
      case 8: {  // no key
        if (Chance(50)) {
          c.cmd = Command::kMetaNoop;
          c.line = "mn";
        } else if (Chance(50)) {
          c.cmd = Command::kVersion;
          c.line = "version";
        } else {
          c.cmd = Command::kFlushAll;
          c.exptime = static_cast<int64_t>(Uniform(0, 1000));
          c.line = "flush_all " + std::to_string(c.exptime);
          c.noreply = Chance(50);
          if (c.noreply) c.line += " noreply";
        }
        break;
      }
      default: {  // meta: mg md ma me ms
        static const std::pair<const char*, Command> kMeta[] = {
            {"mg", Command::kMetaGet}, {"md", Command::kMetaDelete}, {"ma", Command::kMetaArithmetic},
            {"me", Command::kMetaDebug}, {"ms", Command::kMetaSet}};
        const auto& [name, cmd] = kMeta[Uniform(0, 4)];
        c.cmd = cmd;
        std::vector<std::string> flags = cmd == Command::kMetaDebug ? std::vector<std::string>() : MetaFlags();
        c.noreply = cmd != Command::kMetaDebug && Chance(30);
        if (c.noreply) flags.insert(flags.begin() + static_cast<std::ptrdiff_t>(Uniform(0, flags.size())), "q");
        c.meta_base64 = Chance(30);
        if (c.meta_base64) {
          std::string binary;
          for (size_t i = 0, n = Uniform(1, 180); i < n; ++i) binary += static_cast<char>(Uniform(0, 255));
          c.decoded_key = binary;
          c.keys = {Base64Encode(binary)};
          // me reads b only as its first flag
          size_t at = cmd == Command::kMetaDebug ? 0 : Uniform(0, flags.size());
          flags.insert(flags.begin() + static_cast<std::ptrdiff_t>(at), "b");
        } else {
          c.keys = {Key()};
        }
        c.line = std::string(name) + " " + c.keys[0];
        if (cmd == Command::kMetaSet) {
          c.data = Value();
          c.has_data = true;
          c.line += " " + std::to_string(c.data.size());
        }
        for (size_t i = 0; i < flags.size(); ++i) c.meta_flags += (i ? sep : "") + flags[i];
        if (!flags.empty()) c.line += " " + c.meta_flags;
        break;
      }
    }
    c.wire = c.line + eol;
    if (c.has_data) c.wire += c.data + "\r\n";
    return c;
  }

 private:
  std::mt19937 rng_;
};

// Compares a parsed request, whose spans point into `in`, with what was composed.
void ExpectMatches(const Composed& want, const Request& got, std::string_view in) {
  SCOPED_TRACE("line: " + want.line.substr(0, 200));
  EXPECT_EQ(got.cmd, want.cmd);
  EXPECT_EQ(got.line.in(in), want.line);
  ASSERT_EQ(got.keys.size(), want.keys.size());
  for (size_t i = 0; i < want.keys.size(); ++i) EXPECT_EQ(got.keys[i].in(in), want.keys[i]) << "key " << i;
  if (want.has_data) {
    EXPECT_EQ(got.data.in(in), want.data);
    EXPECT_EQ(got.value_len, want.data.size());
  } else {
    EXPECT_EQ(got.data.len, 0u);
    EXPECT_EQ(got.value_len, 0u);
  }
  EXPECT_EQ(got.meta_flags.in(in), want.meta_flags);
  EXPECT_EQ(got.client_flags, want.client_flags);
  EXPECT_EQ(got.exptime, want.exptime);
  EXPECT_EQ(got.cas_unique, want.cas_unique);
  EXPECT_EQ(got.delta, want.delta);
  EXPECT_EQ(got.noreply, want.noreply);
  EXPECT_EQ(got.meta_base64, want.meta_base64);
  if (want.meta_base64) {
    EXPECT_EQ(got.decoded_key, want.decoded_key);
    EXPECT_EQ(RoutingKey(got, in), want.decoded_key);
  } else if (!want.keys.empty()) {
    EXPECT_EQ(RoutingKey(got, in), want.keys[0]);
  }
  EXPECT_EQ(got.consumed, want.wire.size());
}

std::vector<Composed> Generate(uint32_t seed, size_t n) {
  Generator gen(seed);
  std::vector<Composed> out;
  for (size_t i = 0; i < n; ++i) out.push_back(gen.Next());
  return out;
}

TEST(RequestRoundTrip, EachRequestAndEveryPrefix) {
  for (const Composed& c : Generate(20240601, 400)) {
    Request r;
    ParseResult res = test::ParseAllPrefixes(c.wire, &r);
    ASSERT_EQ(res.status, ParseStatus::kOk) << c.line.substr(0, 200) << " " << test::DescribeError(res.error);
    ExpectMatches(c, r, c.wire);
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(RequestRoundTrip, CoversEveryComposedCommand) {
  std::vector<bool> seen(static_cast<size_t>(Command::kCount), false);
  for (const Composed& c : Generate(20240601, 400)) seen[static_cast<size_t>(c.cmd)] = true;
  for (Command c : {Command::kSet, Command::kAdd, Command::kReplace, Command::kAppend, Command::kPrepend,
                    Command::kCas, Command::kGet, Command::kGets, Command::kGat, Command::kGats, Command::kDelete,
                    Command::kIncr, Command::kDecr, Command::kTouch, Command::kMetaNoop, Command::kVersion,
                    Command::kFlushAll, Command::kMetaGet, Command::kMetaDelete, Command::kMetaArithmetic,
                    Command::kMetaDebug, Command::kMetaSet}) {
    EXPECT_TRUE(seen[static_cast<size_t>(c)]) << CommandName(c);
  }
}

TEST(RequestRoundTrip, PipelinedStream) {
  const std::vector<Composed> reqs = Generate(7, 300);
  std::string stream;
  for (const Composed& c : reqs) stream += c.wire;
  size_t pos = 0;
  for (const Composed& c : reqs) {
    std::string_view rest = std::string_view(stream).substr(pos);
    Request r;
    ParseResult res = ParseRequest(rest, Limits(), &r);
    ASSERT_EQ(res.status, ParseStatus::kOk) << c.line.substr(0, 200);
    ExpectMatches(c, r, rest);
    pos += r.consumed;
  }
  EXPECT_EQ(pos, stream.size());
}

// As a connection would see it: bytes arrive in random-sized reads; parse whatever is complete, honour `need`.
TEST(RequestRoundTrip, StreamInRandomReads) {
  const std::vector<Composed> reqs = Generate(99, 300);
  std::string stream;
  for (const Composed& c : reqs) stream += c.wire;
  std::mt19937 rng(1234);
  std::string buffer;
  size_t fed = 0, next = 0, parses = 0;
  while (next < reqs.size()) {
    size_t chunk = std::uniform_int_distribution<size_t>(1, 300)(rng);
    buffer.append(stream, fed, chunk);
    fed = std::min(stream.size(), fed + chunk);
    for (;;) {
      Request r;
      ParseResult res = ParseRequest(buffer, Limits(), &r);
      ++parses;
      if (res.status == ParseStatus::kNeedMore) {
        if (res.need != 0) {
          EXPECT_GT(res.need, buffer.size());
          EXPECT_LE(res.need, reqs[next].wire.size());
        }
        ASSERT_LT(buffer.size(), reqs[next].wire.size()) << "a complete request was not parsed";
        break;
      }
      ASSERT_EQ(res.status, ParseStatus::kOk) << test::DescribeError(res.error);
      ExpectMatches(reqs[next], r, buffer);
      buffer.erase(0, r.consumed);
      if (++next == reqs.size()) break;
    }
    if (::testing::Test::HasFailure()) return;
  }
  EXPECT_TRUE(buffer.empty());
  EXPECT_EQ(fed, stream.size());
  EXPECT_GT(parses, reqs.size());
}

}  // namespace
}  // namespace memha::protocol
