// Text retrieval (get/gets/gat/gats): each key is read from its primary with its own `mg` (so each value is
// proven to be that key's by the opaque it echoes), in parallel; a member that fails moves only its keys to the
// backup; misses on a warming member are looked up on the backup and written back. Replies are reassembled in
// the client's order as memcached's VALUE blocks.
#include <charconv>

#include "sidecar/protocol/compose.h"
#include "sidecar/router/context.h"
#include "sidecar/router/meta_value.h"

namespace memha {
namespace {

using protocol::Command;

void AppendNumber(std::string* out, uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, static_cast<size_t>(end - buf));
}

class RetrievalJob : public std::enable_shared_from_this<RetrievalJob> {
 public:
  explicit RetrievalJob(RoutedPtr r) : r_(std::move(r)) {}

  void Start() {
    const Pool& pool = *r_->pool;
    const size_t n = r_->req.keys.size();
    keys_.resize(n);
    ++outstanding_;  // held until every key is sent
    for (uint32_t i = 0; i < n; ++i) {
      KeyResult& k = keys_[i];
      k.key = r_->key(i);
      k.hash = pool.Hash(k.key);
      k.primary = pool.PrimaryFor(k.hash);
      if (k.primary->Usable()) {
        ++outstanding_;
        std::string wire = protocol::ComposeGet(k.key, WantsCas(), Touches(), r_->req.exptime);
        k.primary->SendMeta(k.hash, wire, [self = shared_from_this(), i](const OpResult& res) {
          self->OnPrimary(i, res);
        });
      } else {
        LookupOnBackup(i, /*fill=*/false, OpStatus::kMemberDown);
      }
    }
    Release();
  }

 private:
  enum class State : uint8_t { kPending, kHit, kMiss, kError };
  struct KeyResult {
    std::string_view key;
    uint32_t hash = 0;
    Member* primary = nullptr;
    State state = State::kPending;
    std::string block;  // "VALUE ...\r\n<data>\r\n"
  };

  bool WantsCas() const { return r_->req.cmd == Command::kGets || r_->req.cmd == Command::kGats; }
  bool Touches() const { return r_->req.cmd == Command::kGat || r_->req.cmd == Command::kGats; }

  bool WarmEligible(Member* primary, uint32_t hash) const {
    if (!r_->pool->spec.warmup || !primary->Warming()) return false;
    Member* b = r_->pool->BackupFor(hash);
    return b != nullptr && b->Usable();
  }

  void SetHit(KeyResult& k, const MetaValue& v) {
    k.state = State::kHit;
    k.block.reserve(k.key.size() + v.data.size() + 48);
    k.block.assign("VALUE ").append(k.key).push_back(' ');
    AppendNumber(&k.block, v.flags);
    k.block.push_back(' ');
    AppendNumber(&k.block, v.data.size());
    if (WantsCas()) {
      k.block.push_back(' ');
      AppendNumber(&k.block, v.cas);
    }
    k.block.append("\r\n").append(v.data).append("\r\n");
  }

  void OnPrimary(uint32_t i, const OpResult& res) {
    KeyResult& k = keys_[i];
    if (res.status != OpStatus::kOk) {
      LookupOnBackup(i, false, res.status);
      return Release();
    }
    const protocol::Reply& reply = *res.reply;
    if (k.primary->Warming()) k.primary->NoteWarmupRead();
    MetaValue v;
    if (reply.error) {
      if (first_error_.empty()) first_error_.assign(reply.line.in(res.buf)).append("\r\n");
      k.state = State::kError;
    } else if (ParseMetaValue(res.buf, reply, &v)) {
      SetHit(k, v);
    } else if (WarmEligible(k.primary, k.hash)) {
      LookupOnBackup(i, /*fill=*/true, OpStatus::kOk);
    } else {
      k.state = State::kMiss;
    }
    Release();
  }

  void LookupOnBackup(uint32_t i, bool fill, OpStatus why) {
    KeyResult& k = keys_[i];
    Member* b = r_->pool->BackupFor(k.hash);
    if (b == nullptr || !b->Usable()) {
      k.state = fill ? State::kMiss : State::kError;
      return;
    }
    if (fill) {
      r_->metrics->warmup_lookups().Increment();
    } else {
      r_->metrics->Failover(why);
    }
    std::string wire = protocol::ComposeGet(k.key, WantsCas(), Touches(), r_->req.exptime);
    wire.append(" t");
    ++outstanding_;
    b->SendMeta(k.hash, wire, [self = shared_from_this(), i, fill](const OpResult& res) {
      self->OnBackupReply(i, fill, res);
    });
  }

  void OnBackupReply(uint32_t i, bool fill, const OpResult& res) {
    KeyResult& k = keys_[i];
    if (res.status != OpStatus::kOk || res.reply->error) {
      k.state = fill ? State::kMiss : State::kError;
      return Release();
    }
    MetaValue v;
    if (!ParseMetaValue(res.buf, *res.reply, &v)) {
      k.state = State::kMiss;
      if (fill) k.primary->NoteWarmupLookup(false);
      return Release();
    }
    SetHit(k, v);
    if (fill) {
      k.primary->NoteWarmupLookup(true);
      WriteBack(k.primary, k.hash, k.key, /*base64=*/false, v, r_->metrics);
    }
    Release();
  }

  void Release() {
    if (--outstanding_ > 0) return;
    auto seconds = std::chrono::duration<double>(Clock::now() - r_->start).count();
    size_t hits = 0, errors = 0, bytes = 5;
    for (const KeyResult& k : keys_) {
      Outcome o = k.state == State::kHit ? Outcome::kHit : k.state == State::kError ? Outcome::kServerError
                                                                                     : Outcome::kMiss;
      r_->metrics->Request(r_->req.cmd, o, seconds);
      hits += k.state == State::kHit;
      errors += k.state == State::kError;
      bytes += k.block.size();
    }
    if (errors == keys_.size()) {
      return r_->Finish(first_error_.empty() ? std::string(kNoMember) : first_error_, Outcome::kServerError);
    }
    if (keys_.size() == 1) {  // the common case: the block is the reply
      std::string out = std::move(keys_[0].block);
      out.append("END\r\n");
      return r_->Finish(std::move(out), hits ? Outcome::kHit : Outcome::kMiss);
    }
    std::string out;
    out.reserve(bytes);
    for (const KeyResult& k : keys_) out += k.block;
    out.append("END\r\n");
    r_->Finish(std::move(out), hits ? Outcome::kHit : Outcome::kMiss);
  }

  RoutedPtr r_;
  std::vector<KeyResult> keys_;
  size_t outstanding_ = 0;
  std::string first_error_;
};

}  // namespace

void RouteRetrieval(const RoutedPtr& r) { std::make_shared<RetrievalJob>(r)->Start(); }

}  // namespace memha
