#include "controller/refill/meta_reply.h"

#include <charconv>

namespace memha::refill {
namespace {

template <typename T>
bool ParseNumber(std::string_view text, T* out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

template <typename T>
bool NumberFlagOf(const MetaReply& r, char c, T* out) {
  auto token = r.Flag(c);
  return token.has_value() && ParseNumber(*token, out);
}

}  // namespace

std::optional<std::string_view> MetaReply::Flag(char c) const {
  size_t pos = 0;
  while (pos < flags.size()) {
    size_t end = flags.find(' ', pos);
    if (end == std::string_view::npos) end = flags.size();
    std::string_view token = flags.substr(pos, end - pos);
    if (!token.empty() && token[0] == c) return token.substr(1);
    pos = end + 1;
  }
  return std::nullopt;
}

bool MetaReply::NumberFlag(char c, int64_t* out) const { return NumberFlagOf(*this, c, out); }
bool MetaReply::NumberFlag(char c, uint64_t* out) const { return NumberFlagOf(*this, c, out); }

ParsedReply ParseMetaReply(std::string_view in, MetaReply* out) {
  ParsedReply result;
  size_t nl = in.substr(0, kMaxReplyLine).find('\n');
  if (nl == std::string_view::npos) {
    result.status = in.size() >= kMaxReplyLine ? ReplyParse::kError : ReplyParse::kNeedMore;
    return result;
  }
  if (nl == 0 || in[nl - 1] != '\r') {
    result.status = ReplyParse::kError;
    return result;
  }
  std::string_view line = in.substr(0, nl - 1);
  size_t line_bytes = nl + 1;
  *out = MetaReply{};
  out->line = line;
  std::string_view code = line.substr(0, line.find(' '));
  std::string_view rest = code.size() < line.size() ? line.substr(code.size() + 1) : std::string_view();
  if (code == "ERROR" || code == "CLIENT_ERROR" || code == "SERVER_ERROR") {
    out->code = ReplyCode::kError;
    result = {ReplyParse::kOk, line_bytes};
    return result;
  }
  if (code == "VA") {
    std::string_view length_text = rest.substr(0, rest.find(' '));
    uint64_t length = 0;
    if (!ParseNumber(length_text, &length) || length > kMaxValue) {
      result.status = ReplyParse::kError;
      return result;
    }
    out->code = ReplyCode::kValue;
    out->flags = length_text.size() < rest.size() ? rest.substr(length_text.size() + 1) : std::string_view();
    if (in.size() < line_bytes + length + 2) return result;  // kNeedMore
    if (in.substr(line_bytes + length, 2) != "\r\n") {
      result.status = ReplyParse::kError;
      return result;
    }
    out->value = in.substr(line_bytes, length);
    result = {ReplyParse::kOk, line_bytes + length + 2};
    return result;
  }
  static constexpr std::pair<std::string_view, ReplyCode> kCodes[] = {
      {"HD", ReplyCode::kHit},       {"EN", ReplyCode::kMiss},     {"NS", ReplyCode::kNotStored},
      {"EX", ReplyCode::kExists},    {"NF", ReplyCode::kNotFound}, {"MN", ReplyCode::kNoop}};
  for (const auto& [text, value] : kCodes) {
    if (code == text) {
      out->code = value;
      out->flags = rest;
      result = {ReplyParse::kOk, line_bytes};
      return result;
    }
  }
  result.status = ReplyParse::kError;
  return result;
}

}  // namespace memha::refill
