#pragma once
// Read verification for chaos runs. Every written value encodes "<key index>:<sequence>:", sequences are global
// and assigned at send time, so sequence order is send order. A read is judged only against writes that were
// acknowledged before the read was sent:
//   - write w, when sent, remembers L(w) = the lowest sequence still in flight for that key (or w itself);
//     every write below L(w) was acknowledged before w was sent, so once w is acknowledged they are superseded.
//   - floor(key) = max L(w) over acknowledged writes and deletes; a read snapshots the floor when it is sent.
//   - a hit with sequence v < snapshot floor is stale; if the op that set that floor was a delete (no write
//     acknowledged since), it is resurrected instead.
// Overlapping writes are never counted against a read (no false positives). A write that failed (error or
// timeout) has an unknown outcome: it does not raise the floor, and a read that returns it is counted as
// "indeterminate", not stale.
#include <cstdint>
#include <string_view>
#include <vector>

namespace memha::bench {

enum class ReadVerdict { kFresh, kStale, kResurrected, kCorrupt, kIndeterminate };

struct ReadSnapshot {
  uint64_t floor = 0;
  bool floor_is_delete = false;
};

struct DecodedValue {
  uint64_t key = 0;
  uint64_t seq = 0;
};

// Writes "<key>:<seq>:" into `out` (which the caller pads to the value size); returns the prefix length.
size_t EncodeValuePrefix(char* out, size_t cap, uint64_t key, uint64_t seq);
bool DecodeValue(std::string_view value, DecodedValue* out);

class Verifier {
 public:
  explicit Verifier(size_t keys) : keys_(keys) {}

  // Assigns the sequence of a write (set) or delete of `key` and records it in flight.
  uint64_t BeginWrite(uint32_t key, bool is_delete);
  // The write's reply arrived (ok) or it failed (error, timeout, closed connection: outcome unknown).
  void EndWrite(uint32_t key, uint64_t seq, bool ok);

  ReadSnapshot Snapshot(uint32_t key) const {
    const KeyState& k = keys_[key];
    return {k.floor, k.floor_is_delete};
  }
  // Judges a hit for `key` read with `snap` and returning `value`.
  ReadVerdict Check(uint32_t key, const ReadSnapshot& snap, std::string_view value) const;

  uint64_t LastSeq() const { return next_seq_; }

 private:
  struct Flight {
    uint64_t seq;
    uint64_t low;  // L(w)
    bool is_delete;
  };
  struct KeyState {
    uint64_t floor = 0;
    bool floor_is_delete = false;
    std::vector<Flight> in_flight;  // usually 0 or 1 entries
    std::vector<uint64_t> failed;   // writes with unknown outcome (kept bounded)
  };
  static constexpr size_t kFailedKept = 8;
  std::vector<KeyState> keys_;
  uint64_t next_seq_ = 0;
};

}  // namespace memha::bench
