#include "controller/refill/metadump.h"

#include <charconv>

namespace memha::refill {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

template <typename T>
bool ParseNumber(std::string_view text, T* out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

bool StartsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

bool IsRefusal(std::string_view line) {
  for (std::string_view word : {"BUSY", "BADCLASS", "NOTSTARTED", "ERROR", "CLIENT_ERROR", "SERVER_ERROR"}) {
    if (line == word || (StartsWith(line, word) && line.size() > word.size() && line[word.size()] == ' ')) {
      return true;
    }
  }
  return false;
}

// One record line: space-separated name=value fields; key is required, the numbers we use must be numbers.
bool ParseRecord(std::string_view line, DumpRecord* record) {
  bool have_key = false;
  record->exp = -1;
  record->cas = 0;
  record->size = 0;
  size_t pos = 0;
  while (pos < line.size()) {
    size_t end = line.find(' ', pos);
    if (end == std::string_view::npos) end = line.size();
    std::string_view field = line.substr(pos, end - pos);
    pos = end + 1;
    if (field.empty()) continue;
    size_t eq = field.find('=');
    if (eq == std::string_view::npos) return false;
    std::string_view name = field.substr(0, eq), value = field.substr(eq + 1);
    if (name == "key") {
      if (have_key || !UriDecode(value, &record->key)) return false;
      if (record->key.empty() || record->key.size() > kMaxKeyLength) return false;
      have_key = true;
    } else if (name == "exp") {
      if (!ParseNumber(value, &record->exp)) return false;
    } else if (name == "cas") {
      if (!ParseNumber(value, &record->cas)) return false;
    } else if (name == "size") {
      if (!ParseNumber(value, &record->size)) return false;
    }
  }
  return have_key;
}

}  // namespace

bool UriDecode(std::string_view in, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi << 4 | lo));
    i += 2;
  }
  return true;
}

DumpParse ParseDumpLine(std::string_view in, DumpRecord* record) {
  DumpParse result;
  size_t nl = in.substr(0, kMaxDumpLine).find('\n');
  if (nl == std::string_view::npos) {
    result.kind = in.size() >= kMaxDumpLine ? DumpLine::kTooLong : DumpLine::kNeedMore;
    return result;
  }
  result.consumed = nl + 1;
  std::string_view line = in.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  result.line = line;
  if (line == "END") {
    result.kind = DumpLine::kEnd;
  } else if (StartsWith(line, "key=")) {
    result.kind = ParseRecord(line, record) ? DumpLine::kRecord : DumpLine::kBadLine;
  } else if (IsRefusal(line)) {
    result.kind = DumpLine::kRefused;
  } else {
    result.kind = DumpLine::kBadLine;
  }
  return result;
}

}  // namespace memha::refill
