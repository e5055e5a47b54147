#include "controller/refill/refill.h"

#include <algorithm>
#include <deque>
#include <memory>
#include <thread>

#include "common/log.h"
#include "common/ring/ketama.h"
#include "controller/refill/connection.h"
#include "controller/refill/meta_reply.h"
#include "controller/refill/metadump.h"
#include "controller/refill/rate_limiter.h"

namespace memha::refill {
namespace {

constexpr int64_t kRelativeTtlMax = 60 * 60 * 24 * 30;  // memcached reads a larger exptime as a unix time
constexpr auto kBusyWait = std::chrono::milliseconds(500);
constexpr std::string_view kFencePrefix = "memha:fence";

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct OwnedKey {
  uint32_t hash;
  std::string key;
  uint64_t cas = 0;  // as dumped (the target's own dump in a handover sweep)
  bool operator<(const OwnedKey& o) const { return hash != o.hash ? hash < o.hash : key < o.key; }
  bool operator==(const OwnedKey& o) const { return hash == o.hash && key == o.key; }
};

void AppendKey(std::string* out, std::string_view key, bool* base64) {
  *base64 = KeyNeedsBase64(key);
  out->append(*base64 ? Base64(key) : std::string(key));
}

class Runner {
 public:
  Runner(const RefillJob& job, const RefillLimits& limits, RefillCursor* cursor, RefillCounters* counters,
         const std::atomic<bool>* cancel)
      : job_(job), limits_(limits), cursor_(cursor), counters_(counters), cancel_(cancel), ring_(job.ring),
        old_ring_(job.old_ring), peer_ring_(job.peer_ring), keys_(limits.keys_per_second, static_cast<double>(limits.batch)),
        bytes_(limits.bytes_per_second, std::max(limits.bytes_per_second / 20, 65536.0)) {}

  RefillResult Run() {
    auto it = std::find(job_.ring.begin(), job_.ring.end(), job_.target.name);
    if (it == job_.ring.end()) return Failed(Status::InvalidArgument("target " + job_.target.name + " not on its ring"));
    target_index_ = static_cast<uint32_t>(it - job_.ring.begin());
    if (Status s = Sweep(); !s.ok()) return Cancelled() ? Abandoned() : Failed(s);
    if (Cancelled()) return Abandoned();
    for (const RefillMember& peer : job_.peers) {
      RefillCursor::Peer& at = cursor_->peers[peer.name];
      if (at.done) continue;
      std::vector<OwnedKey> keys;
      Status dumped = Dump(peer, &keys, [this](uint32_t hash, const DumpRecord&) { return Owned(hash); });
      if (!dumped.ok()) return Cancelled() ? Abandoned() : Failed(dumped);
      counters_->owned += keys.size();
      if (Cancelled()) return Abandoned();
      // Resume: everything up to the cursor was handled by an earlier run.
      size_t first = 0;
      if (at.started) {
        OwnedKey mark{at.hash, at.key};
        first = static_cast<size_t>(std::upper_bound(keys.begin(), keys.end(), mark) - keys.begin());
      } else {
        cursor_->owned += keys.size();
        if (limits_.on_progress) limits_.on_progress(cursor_->owned, cursor_->processed);
      }
      if (Status s = CopyFrom(peer, keys, first, &at); !s.ok()) return Cancelled() ? Abandoned() : Failed(s);
      if (Cancelled()) return Abandoned();
      at.done = true;
    }
    return RefillResult{RefillOutcome::kDone, Status::Ok()};
  }

 private:
  bool Cancelled() const { return cancel_ != nullptr && cancel_->load(); }
  RefillResult Failed(Status s) const { return RefillResult{RefillOutcome::kFailed, std::move(s)}; }
  RefillResult Abandoned() const { return RefillResult{RefillOutcome::kAbandoned, Status::Ok()}; }
  SteadyClock::time_point Deadline() const { return SteadyClock::now() + limits_.io_timeout; }

  // Sleeps in slices so a cancel is noticed within 50 ms. False when cancelled.
  bool Sleep(std::chrono::microseconds wait) {
    auto until = SteadyClock::now() + wait;
    while (!Cancelled()) {
      auto now = SteadyClock::now();
      if (now >= until) return true;
      std::this_thread::sleep_for(std::min<SteadyClock::duration>(until - now, std::chrono::milliseconds(50)));
    }
    return false;
  }

  // A key of the target's share; in a handover, only one that moved onto the target since the old ring.
  bool Owned(uint32_t hash) const {
    if (ring_.MemberForHash(hash) != target_index_) return false;
    return !job_.handover() || job_.old_ring[old_ring_.MemberForHash(hash)] != job_.target.name;
  }

  // The records of `peer`'s metadump that `keep` accepts, sorted by (hash, key), de-duplicated.
  Status Dump(const RefillMember& peer, std::vector<OwnedKey>* keys,
              const std::function<bool(uint32_t hash, const DumpRecord&)>& keep) {
    std::string_view mode = "hash";
    for (int attempt = 0;; ++attempt) {
      auto connection = MemberConnection::Connect(peer.address, limits_.io_timeout);
      if (!connection.ok()) return connection.status();
      MemberConnection& c = *connection.value();
      if (Status s = c.Send("lru_crawler metadump " + std::string(mode) + "\r\n", Deadline()); !s.ok()) return s;
      bool first_line = true;
      int64_t now = UnixNow();
      while (true) {
        if (Cancelled()) return Status::Unavailable("cancelled");
        DumpRecord record;
        DumpParse line = ParseDumpLine(c.buffer(), &record);
        if (line.kind == DumpLine::kNeedMore) {
          if (Status s = c.ReadMore(Deadline()); !s.ok()) return Status::Unavailable("metadump: " + s.message());
          continue;
        }
        if (line.kind == DumpLine::kTooLong) return Status::Internal("metadump of " + peer.name + ": line too long");
        std::string text(line.line.substr(0, 200));
        c.Consume(line.consumed);
        if (line.kind == DumpLine::kEnd) {
          std::sort(keys->begin(), keys->end());
          keys->erase(std::unique(keys->begin(), keys->end()), keys->end());
          return Status::Ok();
        }
        if (line.kind == DumpLine::kRefused) {
          if (!first_line) return Status::Internal("metadump of " + peer.name + " stopped: " + text);
          if (text.starts_with("NOTSTARTED")) return Status::Ok();  // nothing to crawl: an empty member
          if (text.starts_with("BUSY") && attempt < limits_.busy_retries) {
            if (!Sleep(kBusyWait)) return Status::Unavailable("cancelled");
            break;
          }
          if (mode == "hash" && (text.starts_with("BADCLASS") || text == "ERROR")) {
            mode = "all";  // an older memcached without the hash walk
            break;
          }
          return Status::Unavailable("metadump refused by " + peer.name + ": " + text);
        }
        first_line = false;
        if (line.kind == DumpLine::kBadLine) {
          if (counters_->bad_lines++ < 10) {
            MEMHA_LOG(kWarn, "refill", "metadump line skipped peer=" << peer.name << " line=\"" << text << "\"");
          }
          continue;
        }
        ++counters_->dumped;
        if (record.exp != -1 && record.exp <= now) continue;  // expired already
        if (record.key.starts_with(kFencePrefix)) continue;  // the sidecars' and the controller's fences
        uint32_t hash = KetamaRing::HashKey(record.key);
        if (keep(hash, record)) keys->push_back({hash, std::move(record.key), record.cas});
      }
    }
  }

  Status ConnectTarget() {
    if (target_) return Status::Ok();
    auto target = MemberConnection::Connect(job_.target.address, limits_.io_timeout);
    if (!target.ok()) return target.status();
    target_ = std::move(target).value();
    return Status::Ok();
  }

  // The up peer that owns `hash` on the other pool's ring (any up peer when that ring is unknown), or null.
  Result<MemberConnection*> PeerFor(uint32_t hash) {
    std::string name;
    if (!job_.peer_ring.empty()) {
      name = job_.peer_ring[peer_ring_.MemberForHash(hash)];
    } else if (!job_.peers.empty()) {
      name = job_.peers.front().name;
    }
    auto peer = std::find_if(job_.peers.begin(), job_.peers.end(), [&](const RefillMember& m) { return m.name == name; });
    if (peer == job_.peers.end()) return static_cast<MemberConnection*>(nullptr);  // down: its value is unknown
    auto& connection = peer_connections_[peer->name];
    if (!connection) {
      auto c = MemberConnection::Connect(peer->address, limits_.io_timeout);
      if (!c.ok()) return c.status();
      connection = std::move(c).value();
    }
    return connection.get();
  }

  // Handover, before any copy: the target's copies of keys that moved onto it, stored before the ring change
  // (CAS at or below the fence). Each is compared with the peer that owns the key now: equal (value and flags)
  // stays; otherwise (older, deleted there, the peer down or unsettled) it is deleted with `md C<cas>`, so only
  // that exact copy goes and a write made since wins. The copy phase then brings back what the peer holds.
  Status Sweep() {
    if (!job_.handover() || !job_.fenced || cursor_->swept) return Status::Ok();
    std::vector<OwnedKey> keys;
    Status dumped = Dump(job_.target, &keys, [this](uint32_t hash, const DumpRecord& record) {
      return record.cas <= job_.fence && Owned(hash);
    });
    if (!dumped.ok()) return dumped;
    if (!keys.empty()) {
      if (Status s = ConnectTarget(); !s.ok()) return s;
    }
    for (size_t begin = 0; begin < keys.size(); begin += limits_.batch) {
      size_t n = std::min(limits_.batch, keys.size() - begin);
      if (!Sleep(keys_.Take(static_cast<double>(n)))) return Status::Unavailable("cancelled");
      if (Status s = SweepBatch(&keys[begin], n); !s.ok()) return s;
    }
    cursor_->swept = true;
    return Status::Ok();
  }

  struct Copy {
    bool present = false;
    std::string value;
    uint64_t flags = 0;
    uint64_t cas = 0;
  };

  // `mg <key> v f c` for each key on `c`, pipelined; unsettled items (W/Z/X) and misses read as absent.
  Status ReadCopies(MemberConnection& c, const std::vector<const OwnedKey*>& keys, std::vector<Copy>* out) {
    std::string request;
    bool base64 = false;
    for (size_t i = 0; i < keys.size(); ++i) {
      request += "mg ";
      AppendKey(&request, keys[i]->key, &base64);
      request += base64 ? " b v f c O" : " v f c O";
      request += std::to_string(i);
      request += "\r\n";
    }
    if (Status s = c.Send(request, Deadline()); !s.ok()) return s;
    out->assign(keys.size(), Copy());
    for (size_t i = 0; i < keys.size(); ++i) {
      MetaReply reply;
      size_t consumed = 0;
      if (Status s = Read(c, &reply, &consumed); !s.ok()) return s;
      if (!InStep(reply, i)) return Status::Internal(c.address() + ": reply out of step: " + std::string(reply.line));
      Copy& copy = (*out)[i];
      if (reply.code == ReplyCode::kValue && !Unsettled(reply)) {
        if (!reply.NumberFlag('f', &copy.flags) || !reply.NumberFlag('c', &copy.cas)) {
          c.Consume(consumed);
          return Status::Internal(c.address() + ": mg reply without f/c: " + std::string(reply.line));
        }
        copy.present = true;
        copy.value = std::string(reply.value);
      } else if (reply.code == ReplyCode::kError) {
        ++counters_->key_errors;
      } else if (reply.code != ReplyCode::kValue && reply.code != ReplyCode::kMiss) {
        c.Consume(consumed);
        return Status::Internal(c.address() + ": unexpected reply to mg: " + std::string(reply.line));
      }
      c.Consume(consumed);
    }
    return Status::Ok();
  }

  Status SweepBatch(const OwnedKey* batch, size_t n) {
    std::vector<const OwnedKey*> all;
    for (size_t i = 0; i < n; ++i) all.push_back(&batch[i]);
    std::vector<Copy> ours;
    if (Status s = ReadCopies(*target_, all, &ours); !s.ok()) return s;
    // The peers' copies of the suspect ones, grouped by owner.
    std::map<MemberConnection*, std::vector<size_t>> by_peer;
    std::vector<Copy> theirs(n);
    for (size_t i = 0; i < n; ++i) {
      if (!ours[i].present || ours[i].cas > job_.fence) continue;  // gone, or rewritten since the change: current
      ++counters_->suspect;
      auto peer = PeerFor(batch[i].hash);
      if (!peer.ok()) return peer.status();
      if (peer.value() != nullptr) by_peer[peer.value()].push_back(i);
    }
    for (auto& [peer, indexes] : by_peer) {
      std::vector<const OwnedKey*> keys;
      for (size_t i : indexes) keys.push_back(&batch[i]);
      std::vector<Copy> copies;
      if (Status s = ReadCopies(*peer, keys, &copies); !s.ok()) return s;
      for (size_t j = 0; j < indexes.size(); ++j) theirs[indexes[j]] = std::move(copies[j]);
    }
    std::string request;
    size_t deletes = 0;
    bool base64 = false;
    for (size_t i = 0; i < n; ++i) {
      if (!ours[i].present || ours[i].cas > job_.fence) continue;
      if (theirs[i].present && theirs[i].value == ours[i].value && theirs[i].flags == ours[i].flags) {
        ++counters_->kept;
        continue;
      }
      request += "md ";
      AppendKey(&request, batch[i].key, &base64);
      request += " C" + std::to_string(ours[i].cas) + " O" + std::to_string(deletes);
      if (base64) request += " b";
      request += "\r\n";
      ++deletes;
    }
    if (deletes == 0) return Status::Ok();
    if (Status s = target_->Send(request, Deadline()); !s.ok()) return s;
    for (size_t j = 0; j < deletes; ++j) {
      MetaReply reply;
      size_t consumed = 0;
      if (Status s = Read(*target_, &reply, &consumed); !s.ok()) return s;
      if (!InStep(reply, j)) {
        return Status::Internal(target_->address() + ": reply out of step: " + std::string(reply.line));
      }
      if (reply.code == ReplyCode::kHit) ++counters_->dropped;  // EX/NF: a write or a delete since: theirs
      if (reply.code == ReplyCode::kError) ++counters_->key_errors;
      target_->Consume(consumed);
    }
    return Status::Ok();
  }

  // Reads one complete reply; the views stay valid until the next Consume.
  Status Read(MemberConnection& c, MetaReply* reply, size_t* consumed) {
    while (true) {
      ParsedReply parsed = ParseMetaReply(c.buffer(), reply);
      if (parsed.status == ReplyParse::kOk) {
        *consumed = parsed.consumed;
        return Status::Ok();
      }
      if (parsed.status == ReplyParse::kError) {
        return Status::Internal(c.address() + ": not a meta reply: \"" +
                                std::string(c.buffer().substr(0, std::min<size_t>(c.buffer().find('\n'), 120))) +
                                "\"");
      }
      if (Status s = c.ReadMore(Deadline()); !s.ok()) return s;
    }
  }

  // memcached appends W (this read won a recache), Z (another did: an empty placeholder being filled) and X
  // (marked stale by md I) whatever was asked.
  static bool Unsettled(const MetaReply& reply) {
    return reply.Flag('W').has_value() || reply.Flag('Z').has_value() || reply.Flag('X').has_value();
  }

  // A reply that is not an error line must carry the opaque of its request.
  static bool InStep(const MetaReply& reply, size_t index) {
    if (reply.code == ReplyCode::kError) return true;
    uint64_t opaque = 0;
    return reply.NumberFlag('O', &opaque) && opaque == index;
  }

  struct Item {
    const OwnedKey* key;
    std::string value;
    uint32_t flags = 0;
    int64_t ttl = 0;
    uint64_t peer_cas = 0;
  };
  struct Pending {
    std::string key;
    uint64_t peer_cas;
    uint64_t our_cas;
    SteadyClock::time_point due;
  };

  Status CopyFrom(const RefillMember& peer, const std::vector<OwnedKey>& keys, size_t first,
                  RefillCursor::Peer* at) {
    if (first >= keys.size()) return Status::Ok();
    auto source = MemberConnection::Connect(peer.address, limits_.io_timeout);
    if (!source.ok()) return source.status();
    if (Status s = ConnectTarget(); !s.ok()) return s;
    MemberConnection& src = *source.value();
    pending_.clear();
    for (size_t begin = first; begin < keys.size(); begin += limits_.batch) {
      if (!Sleep(keys_.Take(static_cast<double>(std::min(limits_.batch, keys.size() - begin))))) {
        return Status::Unavailable("cancelled");
      }
      size_t end = std::min(keys.size(), begin + limits_.batch);
      if (Status s = CopyBatch(src, &keys[begin], end - begin); !s.ok()) return s;
      at->started = true;
      at->hash = keys[end - 1].hash;
      at->key = keys[end - 1].key;
      cursor_->processed += end - begin;
      if (limits_.on_progress) limits_.on_progress(cursor_->owned, cursor_->processed);
      if (Status s = Verify(src, false); !s.ok()) return s;
    }
    return Verify(src, true);
  }

  Status CopyBatch(MemberConnection& src, const OwnedKey* batch, size_t n) {
    std::string request;
    bool base64 = false;
    for (size_t i = 0; i < n; ++i) {
      request += "mg ";
      AppendKey(&request, batch[i].key, &base64);
      request += base64 ? " b v f t c O" : " v f t c O";
      request += std::to_string(i);
      request += "\r\n";
    }
    if (Status s = src.Send(request, Deadline()); !s.ok()) return s;
    std::vector<Item> items;
    for (size_t i = 0; i < n; ++i) {
      MetaReply reply;
      size_t consumed = 0;
      if (Status s = Read(src, &reply, &consumed); !s.ok()) return s;
      if (!InStep(reply, i)) return Status::Internal(src.address() + ": reply out of step: " + std::string(reply.line));
      if (reply.code == ReplyCode::kValue && Unsettled(reply)) {
        ++counters_->unsettled;  // a sidecar's warm-up placeholder (Z/W) or a stale item (X): not a value to copy
      } else if (reply.code == ReplyCode::kValue) {
        Item item{&batch[i], std::string(reply.value)};
        uint64_t flags = 0;
        if (!reply.NumberFlag('f', &flags) || !reply.NumberFlag('t', &item.ttl) ||
            !reply.NumberFlag('c', &item.peer_cas) || flags > UINT32_MAX) {
          return Status::Internal(src.address() + ": mg reply without f/t/c: " + std::string(reply.line));
        }
        item.flags = static_cast<uint32_t>(flags);
        if (item.ttl == 0 || item.ttl < -1) {
          ++counters_->expiring;  // expires this second: not worth a copy that would outlive it
        } else {
          items.push_back(std::move(item));
        }
      } else if (reply.code == ReplyCode::kMiss) {
        ++counters_->missing;
      } else if (reply.code == ReplyCode::kError) {
        ++counters_->key_errors;
      } else {
        src.Consume(consumed);
        return Status::Internal(src.address() + ": unexpected reply to mg: " + std::string(reply.line));
      }
      src.Consume(consumed);
    }
    if (items.empty()) return Status::Ok();
    if (limits_.after_peer_read) {
      std::vector<std::string> read;
      for (const Item& item : items) read.push_back(item.key->key);
      limits_.after_peer_read(read);
    }

    request.clear();
    size_t value_bytes = 0;
    int64_t now = UnixNow();
    for (size_t i = 0; i < items.size(); ++i) {
      const Item& item = items[i];
      int64_t ttl = item.ttl == -1 ? 0 : item.ttl;
      if (ttl > kRelativeTtlMax) ttl += now;
      request += "ms ";
      AppendKey(&request, item.key->key, &base64);
      request += ' ';
      request += std::to_string(item.value.size());
      request += " T" + std::to_string(ttl) + " F" + std::to_string(item.flags) + " ME c O" + std::to_string(i);
      if (base64) request += " b";
      request += "\r\n";
      request += item.value;
      request += "\r\n";
      value_bytes += item.value.size();
    }
    if (!Sleep(bytes_.Take(static_cast<double>(value_bytes)))) return Status::Unavailable("cancelled");
    if (Status s = target_->Send(request, Deadline()); !s.ok()) return s;
    auto due = SteadyClock::now() + limits_.verify_delay;
    for (size_t i = 0; i < items.size(); ++i) {
      MetaReply reply;
      size_t consumed = 0;
      if (Status s = Read(*target_, &reply, &consumed); !s.ok()) return s;
      if (!InStep(reply, i)) {
        return Status::Internal(target_->address() + ": reply out of step: " + std::string(reply.line));
      }
      if (reply.code == ReplyCode::kHit) {
        uint64_t our_cas = 0;
        if (!reply.NumberFlag('c', &our_cas)) {
          target_->Consume(consumed);
          return Status::Internal(target_->address() + ": ms reply without c: " + std::string(reply.line));
        }
        ++counters_->copied;
        counters_->bytes += items[i].value.size();
        pending_.push_back({items[i].key->key, items[i].peer_cas, our_cas, due});
      } else if (reply.code == ReplyCode::kNotStored) {
        ++counters_->present;  // a newer write (or an earlier fill) got there first: it wins
      } else if (reply.code == ReplyCode::kError) {
        ++counters_->key_errors;
      } else {
        target_->Consume(consumed);
        return Status::Internal(target_->address() + ": unexpected reply to ms: " + std::string(reply.line));
      }
      target_->Consume(consumed);
    }
    return Status::Ok();
  }

  // Re-reads copied keys on the peer once they are due (all of them when `all`, waiting for the last): a key that
  // is gone or has another CAS there changed after we read it, so our copy may be older than what the sidecars
  // acknowledged (a delete that reached the target before our add). It is removed if it is still our copy.
  Status Verify(MemberConnection& src, bool all) {
    while (!pending_.empty()) {
      auto now = SteadyClock::now();
      if (pending_.front().due > now) {
        if (!all) return Status::Ok();
        if (!Sleep(std::chrono::duration_cast<std::chrono::microseconds>(pending_.front().due - now))) {
          return Status::Unavailable("cancelled");
        }
      }
      size_t n = 0;
      std::string request;
      bool base64 = false;
      while (n < pending_.size() && n < limits_.batch && pending_[n].due <= SteadyClock::now()) {
        request += "mg ";
        AppendKey(&request, pending_[n].key, &base64);
        request += base64 ? " b c O" : " c O";
        request += std::to_string(n);
        request += "\r\n";
        ++n;
      }
      if (n == 0) continue;
      if (Status s = src.Send(request, Deadline()); !s.ok()) return s;
      std::vector<size_t> changed;
      for (size_t i = 0; i < n; ++i) {
        MetaReply reply;
        size_t consumed = 0;
        if (Status s = Read(src, &reply, &consumed); !s.ok()) return s;
        if (!InStep(reply, i)) return Status::Internal(src.address() + ": reply out of step: " + std::string(reply.line));
        uint64_t cas = 0;
        if (reply.code == ReplyCode::kMiss ||
            (reply.code == ReplyCode::kHit &&
             (Unsettled(reply) || !reply.NumberFlag('c', &cas) || cas != pending_[i].peer_cas))) {
          changed.push_back(i);
        } else if (reply.code == ReplyCode::kError) {
          ++counters_->key_errors;
          changed.push_back(i);  // cannot tell: take the copy back (a miss is always safe)
        } else if (reply.code != ReplyCode::kHit) {
          src.Consume(consumed);
          return Status::Internal(src.address() + ": unexpected reply to mg: " + std::string(reply.line));
        }
        src.Consume(consumed);
      }
      if (!changed.empty()) {
        request.clear();
        for (size_t j = 0; j < changed.size(); ++j) {
          const Pending& p = pending_[changed[j]];
          request += "md ";
          AppendKey(&request, p.key, &base64);
          request += " C" + std::to_string(p.our_cas) + " O" + std::to_string(j);
          if (base64) request += " b";
          request += "\r\n";
        }
        if (Status s = target_->Send(request, Deadline()); !s.ok()) return s;
        for (size_t j = 0; j < changed.size(); ++j) {
          MetaReply reply;
          size_t consumed = 0;
          if (Status s = Read(*target_, &reply, &consumed); !s.ok()) return s;
          if (!InStep(reply, j)) {
            return Status::Internal(target_->address() + ": reply out of step: " + std::string(reply.line));
          }
          if (reply.code == ReplyCode::kHit) ++counters_->undone;  // EX/NF: a newer write or a delete: theirs
          if (reply.code == ReplyCode::kError) ++counters_->key_errors;
          target_->Consume(consumed);
        }
      }
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(n));
    }
    return Status::Ok();
  }

  const RefillJob& job_;
  const RefillLimits& limits_;
  RefillCursor* cursor_;
  RefillCounters* counters_;
  const std::atomic<bool>* cancel_;
  KetamaRing ring_;
  KetamaRing old_ring_;   // handover: the ring before the change (empty otherwise)
  KetamaRing peer_ring_;  // the other pool's ring (empty when not given)
  uint32_t target_index_ = 0;
  RateLimiter keys_;
  RateLimiter bytes_;
  std::unique_ptr<MemberConnection> target_;
  std::map<std::string, std::unique_ptr<MemberConnection>> peer_connections_;  // the sweep's, by peer name
  std::deque<Pending> pending_;
};

}  // namespace

std::string RefillJob::Describe() const {
  std::string peers_text;
  for (const auto& p : peers) peers_text += (peers_text.empty() ? "" : ",") + p.name;
  return "pool=" + pool + " role=" + role + " target=" + target.name + "@" + target.address +
         " ring=" + std::to_string(ring.size()) + " peers=" + peers_text;
}

Status RefillLimits::Validate() const {
  if (batch == 0 || batch > 4096) return Status::InvalidArgument("refill batch must be 1..4096");
  if (io_timeout.count() <= 0) return Status::InvalidArgument("refill I/O timeout must be positive");
  if (verify_delay.count() < 0) return Status::InvalidArgument("refill verify delay must not be negative");
  return Status::Ok();
}

std::string_view ToString(RefillOutcome outcome) {
  switch (outcome) {
    case RefillOutcome::kDone: return "done";
    case RefillOutcome::kAbandoned: return "abandoned";
    case RefillOutcome::kFailed: return "failed";
  }
  return "?";
}

bool KeyNeedsBase64(std::string_view key) {
  for (unsigned char c : key) {
    if (c <= ' ' || c == 0x7f) return true;
  }
  return false;
}

std::string Base64(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8 | uint8_t(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) out.push_back(kAlphabet[(v >> shift) & 63]);
  }
  if (i + 1 == bytes.size()) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    out += {kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == bytes.size()) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += {kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], '='};
  }
  return out;
}

RefillResult RunRefill(const RefillJob& job, const RefillLimits& limits, RefillCursor* cursor,
                       RefillCounters* counters, const std::atomic<bool>* cancel) {
  return Runner(job, limits, cursor, counters, cancel).Run();
}

}  // namespace memha::refill
