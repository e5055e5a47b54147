#pragma once
// What a member receives, composed from a parsed request: never the client's bytes. Every request becomes one
// meta command (text commands are translated: get -> mg, set -> ms, incr -> ma, ...), with canonical tokens:
// single spaces, each flag as memcached reads it (first character, numbers re-printed after memcached's own
// parsing), no quiet flag (the sidecar applies quiet mode itself) and no client opaque (the member connection
// adds its own, to prove which request each reply answers). So a member can never read a request differently
// from the sidecar, and every reply is matched to its request by the opaque it echoes.
#include <cstdint>
#include <string>
#include <string_view>

#include "sidecar/protocol/request.h"

namespace memha::protocol {

// One request for a member. The connection appends " O<opaque>" at opaque_at (npos: the end of the line) for
// meta replies, then "\r\n", then the body; fenced requests are followed by "mn\r\n".
struct MemberWire {
  std::string_view line;  // without "\r\n"
  std::string_view body;  // the value block with its "\r\n", or empty
  size_t opaque_at = std::string_view::npos;
};

// Appends `v` in decimal (composed requests and the text replies built from meta replies).
void AppendDecimal(std::string* out, uint64_t v);
void AppendDecimal(std::string* out, int64_t v);
inline void AppendDecimal(std::string* out, uint32_t v) { AppendDecimal(out, static_cast<uint64_t>(v)); }
inline void AppendDecimal(std::string* out, int32_t v) { AppendDecimal(out, static_cast<int64_t>(v)); }

// mg/ms/md/ma from a client. *opaque_at: where the client's O flag was (the sidecar's opaque goes there, so the
// member's reply carries it where the client's would have been), or npos.
std::string ComposeClientMeta(const Request& r, std::string_view base, size_t* opaque_at);
// me <key> [b]
std::string ComposeMetaDebug(const Request& r, std::string_view base);

// Text commands as meta commands.
std::string ComposeGet(std::string_view key, bool with_cas, bool touch, int64_t exptime);   // mg k v f [c] [T]
// The same into `out` (replacing its contents): a reused buffer keeps a multi-get's keys off the heap.
void ComposeGet(std::string* out, std::string_view key, bool with_cas, bool touch, int64_t exptime);
// `as_set`: a plain set of the same value (what the backup gets after the primary applied add/replace/cas).
std::string ComposeStorage(const Request& r, std::string_view key, bool as_set = false);   // ms k len F T [M] [C]
std::string ComposeArithmetic(const Request& r, std::string_view key);                      // ma k D M v
std::string ComposeDelete(std::string_view key_token, bool base64);                        // md k [b]
std::string ComposeTouch(std::string_view key, int64_t exptime);                            // mg k T
std::string ComposeFlush(const Request& r);                                                 // flush_all [delay]

// Internal requests: read a value with what a copy needs, write one back.
std::string ComposeValueRead(std::string_view key_token, bool base64);                     // mg k [b] v f t
// ms k len T<ttl> F<flags> [b] [ME]; ttl < 0: no expiry.
std::string ComposeValueWrite(std::string_view key_token, bool base64, size_t len, int64_t ttl, uint32_t flags,
                              bool add_only);

// The body of a storage request: its value and "\r\n", as they follow the line in `base`.
inline std::string_view BodyOf(const Request& r, std::string_view base) {
  return base.substr(r.data.off, static_cast<size_t>(r.data.len) + 2);
}

}  // namespace memha::protocol
