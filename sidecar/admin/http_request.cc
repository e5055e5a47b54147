#include "sidecar/admin/http_request.h"

#include <algorithm>
#include <cctype>

namespace memha::http {
namespace {

bool IsTokenChar(char c) {
  static constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
  return std::isalnum(static_cast<unsigned char>(c)) || kExtra.find(c) != std::string_view::npos;
}

bool IsVisible(char c) { return static_cast<unsigned char>(c) > 0x20 && c != 0x7f; }

HeadParse Error(int status, std::string reason) {
  HeadParse p;
  p.state = HeadParse::State::kError;
  p.status = status;
  p.reason = std::move(reason);
  return p;
}

// The next line of `in` from `*pos` without its terminator ("\r\n" or "\n"), or nullopt if it has not arrived.
// A CR anywhere else is reported as `*bad_cr`.
std::optional<std::string_view> NextLine(std::string_view in, size_t* pos, bool* bad_cr) {
  size_t nl = in.find('\n', *pos);
  if (nl == std::string_view::npos) return std::nullopt;
  std::string_view line = in.substr(*pos, nl - *pos);
  *pos = nl + 1;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.find('\r') != std::string_view::npos) *bad_cr = true;
  return line;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

}  // namespace

const std::string* RequestHead::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return &value;
  }
  return nullptr;
}

HeadParse ParseRequestHead(std::string_view in, size_t max_head_bytes) {
  auto too_big = [&] { return Error(431, "request head over " + std::to_string(max_head_bytes) + " bytes"); };
  size_t pos = 0;
  bool bad_cr = false;
  std::vector<std::string_view> lines;
  bool complete = false;
  for (;;) {
    auto line = NextLine(in, &pos, &bad_cr);
    if (!line) break;
    if (bad_cr) return Error(400, "bare CR in the request head");
    if (line->empty()) {
      if (lines.empty()) continue;  // empty lines before the request line are ignored (RFC 9112 2.2)
      complete = true;
      break;
    }
    if (lines.size() > kMaxHeaderCount) return Error(431, "more than " + std::to_string(kMaxHeaderCount) + " headers");
    lines.push_back(*line);
  }
  if (!complete) {
    if (in.size() >= max_head_bytes) return too_big();
    return HeadParse{};
  }
  if (pos > max_head_bytes) return too_big();

  HeadParse out;
  RequestHead& h = out.head;
  h.size = pos;
  // Request line: METHOD SP origin-form SP HTTP/1.x
  std::string_view rl = lines[0];
  size_t sp1 = rl.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : rl.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || rl.find(' ', sp2 + 1) != std::string_view::npos) {
    return Error(400, "malformed request line");
  }
  std::string_view method = rl.substr(0, sp1), target = rl.substr(sp1 + 1, sp2 - sp1 - 1),
                   version = rl.substr(sp2 + 1);
  if (method.empty() || method.size() > 16 ||
      !std::all_of(method.begin(), method.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
    return Error(400, "malformed method");
  }
  if (target.empty() || target.front() != '/' || !std::all_of(target.begin(), target.end(), IsVisible)) {
    return Error(400, "malformed request target");
  }
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || !std::isdigit(static_cast<unsigned char>(version[5])) ||
      version[6] != '.' || !std::isdigit(static_cast<unsigned char>(version[7]))) {
    return Error(400, "malformed HTTP version");
  }
  if (version[5] != '1') return Error(505, "only HTTP/1.x is served");
  h.method = std::string(method);
  h.target = std::string(target);
  h.minor_version = version[7] - '0';
  size_t q = target.find('?');
  h.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) h.query = std::string(target.substr(q + 1));

  for (size_t i = 1; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (line.front() == ' ' || line.front() == '\t') return Error(400, "folded header lines are not accepted");
    size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos ||
        !std::all_of(line.begin(), line.begin() + colon, IsTokenChar)) {
      return Error(400, "malformed header line");
    }
    std::string_view value = Trim(line.substr(colon + 1));
    if (std::any_of(value.begin(), value.end(),
                    [](char c) { return (static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f; })) {
      return Error(400, "control character in a header value");
    }
    std::string name = Lower(line.substr(0, colon));
    if (name == "content-length") {
      if (value.empty() || value.size() > 18 ||
          !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return Error(400, "malformed Content-Length");
      }
      uint64_t n = std::stoull(std::string(value));
      if (h.content_length && *h.content_length != n) return Error(400, "conflicting Content-Length headers");
      h.content_length = n;
    } else if (name == "transfer-encoding") {
      return Error(501, "Transfer-Encoding is not supported: send the body with Content-Length");
    } else if (name == "expect" && Lower(value) == "100-continue") {
      h.expect_continue = true;
    }
    h.headers.emplace_back(std::move(name), std::string(value));
  }
  out.state = HeadParse::State::kOk;
  return out;
}

}  // namespace memha::http
