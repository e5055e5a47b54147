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
  bool placeholder = false;  // an empty item made by `mg ... N` (vivify on miss) that a fill has yet to replace
  bool won = false;          // ... and this read made it (W): the caller fills it
};

// True for a "VA" reply that holds a value; fills `out` from its f/t/c flags. A placeholder (empty, W or Z, not X:
// vivified, not filled yet) is no value: false, with out->placeholder (and out->won, out->cas) set.
bool ParseMetaValue(std::string_view buf, const protocol::Reply& reply, MetaValue* out);

// How long a placeholder made by a warm-up read lives if its fill never comes (the N flag of that read).
constexpr int kPlaceholderTtl = 3;

// Fills a warming primary: `ms <key> <len> T<ttl> F<flags> C<placeholder_cas>` on `primary`. It stores only if
// the placeholder this sidecar's read made is still there, so a write or delete that reached the primary after
// that read (from any sidecar) is never undone. Without a placeholder (placeholder_cas 0) nothing is written.
// Counts successful fills.
void WriteBack(Member* primary, uint32_t hash, std::string_view key_token, bool base64, const MetaValue& v,
               uint64_t placeholder_cas, Metrics* metrics);
// Removes the placeholder a warm-up read made when the backup had no value either (md ... C<cas>).
void DropPlaceholder(Member* primary, uint32_t hash, std::string_view key_token, bool base64, uint64_t cas);

}  // namespace memha
