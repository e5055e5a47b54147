#include "bench/loadgen/verifier.h"

#include <algorithm>
#include <charconv>

namespace memha::bench {

size_t EncodeValuePrefix(char* out, size_t cap, uint64_t key, uint64_t seq) {
  char* end = out + cap;
  auto r = std::to_chars(out, end, key);
  if (r.ec != std::errc() || r.ptr == end) return 0;
  *r.ptr++ = ':';
  r = std::to_chars(r.ptr, end, seq);
  if (r.ec != std::errc() || r.ptr == end) return 0;
  *r.ptr++ = ':';
  return static_cast<size_t>(r.ptr - out);
}

bool DecodeValue(std::string_view v, DecodedValue* out) {
  const char* p = v.data();
  const char* end = p + v.size();
  auto r = std::from_chars(p, end, out->key);
  if (r.ec != std::errc() || r.ptr == end || *r.ptr != ':') return false;
  r = std::from_chars(r.ptr + 1, end, out->seq);
  return r.ec == std::errc() && r.ptr != end && *r.ptr == ':';
}

uint64_t Verifier::BeginWrite(uint32_t key, bool is_delete) {
  KeyState& k = keys_[key];
  uint64_t seq = ++next_seq_;
  uint64_t low = seq;
  for (const Flight& f : k.in_flight) low = std::min(low, f.seq);
  k.in_flight.push_back({seq, low, is_delete});
  return seq;
}

void Verifier::EndWrite(uint32_t key, uint64_t seq, bool ok) {
  KeyState& k = keys_[key];
  auto it = std::find_if(k.in_flight.begin(), k.in_flight.end(), [&](const Flight& f) { return f.seq == seq; });
  if (it == k.in_flight.end()) return;
  Flight f = *it;
  k.in_flight.erase(it);
  if (!ok) {
    if (!f.is_delete) {
      if (k.failed.size() == kFailedKept) k.failed.erase(k.failed.begin());
      k.failed.push_back(seq);
    }
    return;
  }
  // Everything below L(w) was acknowledged before w was sent, so w (a set or a delete) supersedes it.
  if (f.low >= k.floor) {
    k.floor = f.low;
    k.floor_is_delete = f.is_delete;
  }
}

ReadVerdict Verifier::Check(uint32_t key, const ReadSnapshot& snap, std::string_view value) const {
  DecodedValue d;
  if (!DecodeValue(value, &d) || d.key != key || d.seq == 0 || d.seq > next_seq_) return ReadVerdict::kCorrupt;
  const KeyState& k = keys_[key];
  if (std::find(k.failed.begin(), k.failed.end(), d.seq) != k.failed.end()) return ReadVerdict::kIndeterminate;
  if (d.seq >= snap.floor) return ReadVerdict::kFresh;
  return snap.floor_is_delete ? ReadVerdict::kResurrected : ReadVerdict::kStale;
}

}  // namespace memha::bench
