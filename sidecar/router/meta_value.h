#pragma once
// A value read with `mg <key> v f t [c]`, and writing such a value back to a warming primary with add semantics,
// so a newer write that reached the primary meanwhile is never overwritten.
#include <cstdint>
#include <string_view>

#include "sidecar/backend/member.h"
#include "sidecar/protocol/reply.h"

namespace memha {

struct MetaValue {
  std::string_view data;
  uint32_t flags = 0;
  int64_t ttl = -1;  // -1: no expiry
  uint64_t cas = 0;
};

// True for a "VA" reply; fills `out` from its f/t/c flags.
bool ParseMetaValue(std::string_view buf, const protocol::Reply& reply, MetaValue* out);

// `ms <key> <len> T<ttl> F<flags> ME` (add) on `primary`; counts successful fills.
void WriteBack(Member* primary, uint32_t hash, std::string_view key_token, bool base64, const MetaValue& v,
               Metrics* metrics);

}  // namespace memha
