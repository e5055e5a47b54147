#pragma once
// The head of an HTTP/1.x request (request line and headers), parsed from the bytes read so far. Pure: no I/O,
// so the admin server's limits are unit-tested on every cut of the input. A deliberately small subset: origin-form
// targets, Content-Length bodies only (any Transfer-Encoding is refused), no obsolete line folding.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace memha::http {

struct RequestHead {
  std::string method;  // "GET"
  std::string target;  // as sent: "/v1/topology?x=1"
  std::string path;    // the target before '?'
  std::string query;   // after '?', not decoded
  int minor_version = 1;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, values trimmed
  std::optional<uint64_t> content_length;
  bool expect_continue = false;  // "Expect: 100-continue"
  size_t size = 0;               // bytes of the head, its blank line included
  // Set by the server, not parsed: the client connected from a loopback address (127.0.0.0/8, ::1, or IPv4-mapped
  // 127/8), i.e. from inside the pod's network namespace (another container of the pod, kubectl exec/port-forward).
  bool from_loopback = false;

  // The first value of a header (name in lower case), or null.
  const std::string* Header(std::string_view lower_name) const;
};

struct HeadParse {
  enum class State { kOk, kNeedMore, kError };
  State state = State::kNeedMore;
  int status = 0;      // kError: the HTTP status to answer (400, 431, 501, 505)
  std::string reason;  // kError: one line for the client
  RequestHead head;    // kOk
};

inline constexpr size_t kMaxHeaderCount = 64;

// `input` starts at the first byte of the request. kNeedMore until the blank line that ends the head arrives;
// kError (431) once `max_head_bytes` have arrived without it, or more than kMaxHeaderCount headers.
HeadParse ParseRequestHead(std::string_view input, size_t max_head_bytes);

}  // namespace memha::http
