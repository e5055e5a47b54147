#include "common/address.h"

#include <charconv>

namespace memha {

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Result<HostPort> ParseHostPort(std::string_view text, uint16_t default_port) {
  auto bad = [&](const char* why) {
    return Status::InvalidArgument("bad address \"" + std::string(text) + "\": " + why);
  };
  HostPort out;
  std::string_view port_text;
  if (text.empty()) return bad("empty");
  if (text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return bad("missing ']'");
    out.host = std::string(text.substr(1, close - 1));
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("expected ':' after ']'");
      port_text = rest.substr(1);
    }
  } else {
    auto colon = text.rfind(':');
    if (colon != std::string_view::npos && text.find(':') != colon) {
      return bad("IPv6 literals need brackets, e.g. [::1]:11211");
    }
    if (colon == std::string_view::npos) {
      out.host = std::string(text);
    } else {
      out.host = std::string(text.substr(0, colon));
      port_text = text.substr(colon + 1);
    }
  }
  if (out.host.empty()) return bad("empty host");
  for (char c : out.host) {
    if (c <= ' ' || c == '/' || c == '@' || c == ',' || static_cast<unsigned char>(c) >= 127) {
      return bad("invalid character in host");
    }
  }
  if (port_text.empty()) {
    if (default_port == 0) return bad("missing port");
    out.port = default_port;
    return out;
  }
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || value == 0 || value > 65535) {
    return bad("port must be 1-65535");
  }
  out.port = static_cast<uint16_t>(value);
  return out;
}

}  // namespace memha
