#include "controller/kube/yaml.h"

#include <cctype>
#include <cstdint>
#include <string>
#include <vector>

namespace memha::kube {
namespace {

using nlohmann::json;

struct Line {
  int number = 0;  // 1-based, for errors
  size_t indent = 0;
  std::string text;  // without indentation, comment and trailing blanks
};

Status Error(int line, const std::string& what) {
  return Status::InvalidArgument("yaml line " + std::to_string(line) + ": " + what);
}

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string_view TrimLeft(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

std::string_view Trim(std::string_view s) { return TrimLeft(TrimRight(s)); }

// Cuts a trailing comment ("#" at the start or after a blank, outside quotes).
std::string_view StripComment(std::string_view s) {
  char quote = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quote == '"') {
      if (c == '\\') ++i;
      else if (c == '"') quote = 0;
    } else if (quote == '\'') {
      if (c == '\'') quote = 0;  // '' (escaped quote) closes and reopens: same result
    } else if (c == '"' || c == '\'') {
      if (i == 0 || s[i - 1] == ' ' || s[i - 1] == '\t' || s[i - 1] == '[' || s[i - 1] == '{' || s[i - 1] == ',' ||
          s[i - 1] == ':')
        quote = c;
    } else if (c == '#' && (i == 0 || s[i - 1] == ' ' || s[i - 1] == '\t')) {
      return s.substr(0, i);
    }
  }
  return s;
}

bool IsSeqItem(std::string_view t) { return t == "-" || (t.size() >= 2 && t[0] == '-' && t[1] == ' '); }

// Position of the ':' that ends a mapping key, or npos.
size_t FindMappingColon(std::string_view t) {
  if (t.empty() || t[0] == '{' || t[0] == '[') return std::string_view::npos;
  size_t i = 0;
  if (t[0] == '"' || t[0] == '\'') {
    char q = t[0];
    for (i = 1; i < t.size(); ++i) {
      if (q == '"' && t[i] == '\\') {
        ++i;
        continue;
      }
      if (t[i] == q) {
        if (q == '\'' && i + 1 < t.size() && t[i + 1] == '\'') {
          ++i;
          continue;
        }
        break;
      }
    }
    ++i;
  }
  for (; i < t.size(); ++i) {
    if (t[i] == ':' && (i + 1 == t.size() || t[i + 1] == ' ' || t[i + 1] == '\t')) return i;
  }
  return std::string_view::npos;
}

void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Parses a quoted scalar starting at s[0]; `consumed` gets its length including the quotes.
Result<std::string> ParseQuoted(std::string_view s, int line, size_t* consumed) {
  char q = s[0];
  std::string out;
  for (size_t i = 1; i < s.size(); ++i) {
    char c = s[i];
    if (q == '\'') {
      if (c == '\'') {
        if (i + 1 < s.size() && s[i + 1] == '\'') {
          out.push_back('\'');
          ++i;
          continue;
        }
        *consumed = i + 1;
        return out;
      }
      out.push_back(c);
      continue;
    }
    if (c == '"') {
      *consumed = i + 1;
      return out;
    }
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (++i >= s.size()) break;
    char e = s[i];
    int hex_digits = 0;
    switch (e) {
      case 'n': out.push_back('\n'); break;
      case 't': out.push_back('\t'); break;
      case 'r': out.push_back('\r'); break;
      case '0': out.push_back('\0'); break;
      case '\\': out.push_back('\\'); break;
      case '"': out.push_back('"'); break;
      case '/': out.push_back('/'); break;
      case ' ': out.push_back(' '); break;
      case 'x': hex_digits = 2; break;
      case 'u': hex_digits = 4; break;
      case 'U': hex_digits = 8; break;
      default: return Error(line, std::string("unsupported escape \\") + e);
    }
    if (hex_digits > 0) {
      if (i + hex_digits >= s.size()) return Error(line, "truncated escape");
      uint32_t cp = 0;
      for (int k = 1; k <= hex_digits; ++k) {
        char h = s[i + k];
        if (!std::isxdigit(static_cast<unsigned char>(h))) return Error(line, "bad hex escape");
        cp = cp * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0'
                                                                                         : (std::tolower(h) - 'a' + 10));
      }
      AppendUtf8(&out, cp);
      i += hex_digits;
    }
  }
  return Error(line, "unterminated quoted scalar");
}

json PlainScalar(std::string_view s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  if (s == "null" || s == "Null" || s == "NULL" || s == "~") return nullptr;
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  bool digits = i < s.size() && s.size() - i <= 18;
  for (size_t k = i; digits && k < s.size(); ++k) digits = std::isdigit(static_cast<unsigned char>(s[k])) != 0;
  if (digits && !(s.size() - i > 1 && s[i] == '0')) return std::stoll(std::string(s));
  return std::string(s);
}

Result<json> ParseScalar(std::string_view s, int line, bool in_flow);

// One-level flow collection: [a, "b"] or {k: v, k2: "v2"}.
Result<json> ParseFlow(std::string_view s, int line) {
  char open = s[0];
  char close = open == '[' ? ']' : '}';
  if (s.back() != close) return Error(line, "flow collection must end on the same line");
  std::string_view inner = Trim(s.substr(1, s.size() - 2));
  json out = open == '[' ? json::array() : json::object();
  if (inner.empty()) return out;
  // Split on commas outside quotes.
  std::vector<std::string_view> parts;
  char quote = 0;
  size_t start = 0;
  for (size_t i = 0; i < inner.size(); ++i) {
    char c = inner[i];
    if (quote) {
      if (quote == '"' && c == '\\') ++i;
      else if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '[' || c == '{') {
      return Error(line, "nested flow collections are not supported");
    } else if (c == ',') {
      parts.push_back(Trim(inner.substr(start, i - start)));
      start = i + 1;
    }
  }
  parts.push_back(Trim(inner.substr(start)));
  for (std::string_view p : parts) {
    if (p.empty()) continue;  // trailing comma
    if (open == '[') {
      auto v = ParseScalar(p, line, true);
      if (!v.ok()) return v.status();
      out.push_back(std::move(v).value());
      continue;
    }
    size_t colon = FindMappingColon(p);
    if (colon == std::string_view::npos) return Error(line, "expected 'key: value' in flow mapping");
    auto k = ParseScalar(Trim(p.substr(0, colon)), line, true);
    auto v = ParseScalar(Trim(p.substr(colon + 1)), line, true);
    if (!k.ok()) return k.status();
    if (!v.ok()) return v.status();
    std::string key = k.value().is_string() ? k.value().get<std::string>() : k.value().dump();
    out[key] = std::move(v).value();
  }
  return out;
}

Result<json> ParseScalar(std::string_view s, int line, bool in_flow) {
  if (s.empty()) return json(nullptr);
  char c = s[0];
  if (c == '"' || c == '\'') {
    size_t consumed = 0;
    auto r = ParseQuoted(s, line, &consumed);
    if (!r.ok()) return r.status();
    if (!Trim(s.substr(consumed)).empty()) return Error(line, "text after a quoted scalar");
    return json(std::move(r).value());
  }
  if (c == '{' || c == '[') {
    if (in_flow) return Error(line, "nested flow collections are not supported");
    return ParseFlow(s, line);
  }
  if (c == '|' || c == '>') return Error(line, "block scalars (| and >) are not supported");
  if (c == '&' || c == '*') return Error(line, "anchors and aliases are not supported");
  if (c == '!') return Error(line, "tags are not supported");
  if (c == '@' || c == '`') return Error(line, "a plain scalar cannot start with " + std::string(1, c));
  return PlainScalar(s);
}

class Parser {
 public:
  explicit Parser(std::vector<Line> lines) : lines_(std::move(lines)) {}

  Result<json> Document() {
    if (lines_.empty()) return json(nullptr);
    auto v = Node(lines_[0].indent);
    if (!v.ok()) return v;
    if (pos_ < lines_.size()) return Error(lines_[pos_].number, "unexpected indentation");
    return v;
  }

 private:
  bool More() const { return pos_ < lines_.size(); }

  Result<json> Node(size_t indent) {
    const Line& l = lines_[pos_];
    if (IsSeqItem(l.text)) return Sequence(indent);
    if (FindMappingColon(l.text) != std::string_view::npos) return Mapping(indent);
    ++pos_;
    auto v = ParseScalar(l.text, l.number, false);
    if (v.ok() && More() && lines_[pos_].indent > indent) return Error(l.number, "multi-line scalars are not supported");
    return v;
  }

  // The value of "key:" with nothing after the colon: a nested block, or null.
  Result<json> BlockValue(size_t indent) {
    if (More() && (lines_[pos_].indent > indent || (lines_[pos_].indent == indent && IsSeqItem(lines_[pos_].text))))
      return Node(lines_[pos_].indent);
    return json(nullptr);
  }

  Result<json> Mapping(size_t indent) {
    json out = json::object();
    while (More() && lines_[pos_].indent == indent && !IsSeqItem(lines_[pos_].text)) {
      const Line& l = lines_[pos_];
      std::string_view t = l.text;
      size_t colon = FindMappingColon(t);
      if (colon == std::string_view::npos) return Error(l.number, "expected 'key: value'");
      auto key_value = ParseScalar(Trim(t.substr(0, colon)), l.number, true);
      if (!key_value.ok()) return key_value.status();
      const json& kj = key_value.value();
      std::string key = kj.is_string() ? kj.get<std::string>() : kj.dump();
      if (out.contains(key)) return Error(l.number, "duplicate key '" + key + "'");
      std::string_view rest = Trim(t.substr(colon + 1));
      int number = l.number;
      ++pos_;
      Result<json> value = json(nullptr);
      if (rest.empty()) {
        value = BlockValue(indent);
      } else {
        value = ParseScalar(rest, number, false);
        if (value.ok() && More() && lines_[pos_].indent > indent)
          return Error(lines_[pos_].number, "multi-line scalars are not supported");
      }
      if (!value.ok()) return value.status();
      out[key] = std::move(value).value();
    }
    return out;
  }

  Result<json> Sequence(size_t indent) {
    json out = json::array();
    while (More() && lines_[pos_].indent == indent && IsSeqItem(lines_[pos_].text)) {
      Line& l = lines_[pos_];
      std::string_view rest = std::string_view(l.text).substr(1);
      size_t spaces = rest.size() - TrimLeft(rest).size();
      rest = TrimLeft(rest);
      if (rest.empty()) {
        ++pos_;
        auto v = More() && lines_[pos_].indent > indent ? Node(lines_[pos_].indent) : Result<json>(json(nullptr));
        if (!v.ok()) return v;
        out.push_back(std::move(v).value());
        continue;
      }
      // "- x": the item is the rest of the line, as if it started at its own column.
      l.indent = indent + 1 + spaces;
      l.text = std::string(rest);
      auto v = Node(l.indent);
      if (!v.ok()) return v;
      out.push_back(std::move(v).value());
    }
    return out;
  }

  std::vector<Line> lines_;
  size_t pos_ = 0;
};

}  // namespace

Result<json> ParseYamlSubset(std::string_view text) {
  std::vector<Line> lines;
  int number = 0;
  bool seen_document_start = false;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++number;
    size_t indent = 0;
    while (indent < raw.size() && raw[indent] == ' ') ++indent;
    std::string_view content = TrimRight(StripComment(raw.substr(indent)));
    if (content.empty()) continue;
    if (content[0] == '\t') return Error(number, "tabs in indentation are not supported");
    if (content == "---" || content.substr(0, 4) == "--- ") {
      if (!lines.empty() || seen_document_start) return Error(number, "several documents are not supported");
      seen_document_start = true;
      if (content.size() > 3) return Error(number, "content after '---' is not supported");
      continue;
    }
    if (content == "...") break;
    if (content[0] == '%') return Error(number, "directives are not supported");
    lines.push_back(Line{number, indent, std::string(content)});
  }
  try {
    return Parser(std::move(lines)).Document();
  } catch (const std::exception& e) {  // nlohmann / stoll: should not happen, but never let one escape
    return Status::InvalidArgument(std::string("yaml: ") + e.what());
  }
}

}  // namespace memha::kube
