// Text retrieval (get/gets/gat/gats): keys split per primary member and sent in parallel; a member that fails
// moves only its keys to the backup; misses on a warming member are looked up on the backup and written back.
#include <charconv>

#include "sidecar/router/context.h"
#include "sidecar/router/meta_value.h"

namespace memha {
namespace {

using protocol::Command;

class RetrievalJob : public std::enable_shared_from_this<RetrievalJob> {
 public:
  explicit RetrievalJob(RoutedPtr r) : r_(std::move(r)) {}

  void Start() {
    const Pool& pool = *r_->pool;
    const size_t n = r_->req.keys.size();
    keys_.resize(n);
    single_group_ = true;
    for (uint32_t i = 0; i < n; ++i) {
      KeyResult& k = keys_[i];
      k.key = r_->key(i);
      k.hash = pool.Hash(k.key);
      k.primary = pool.PrimaryFor(k.hash);
      if (k.primary != keys_[0].primary) single_group_ = false;
    }
    ++outstanding_;  // held until every group is sent
    if (single_group_) {
      // The common case (one key, or all keys on one member): no grouping, the client's line goes as is.
      Member* member = keys_[0].primary;
      if (member->Usable()) {
        ++outstanding_;
        member->Send(keys_[0].hash, r_->raw, protocol::ReplyKind::kRetrieval,
                     [self = shared_from_this(), member](const OpResult& res) { self->OnGroupReply(member, nullptr, res); });
      } else {
        for (uint32_t i = 0; i < n; ++i) LookupOnBackup(i, /*fill=*/false, OpStatus::kMemberDown);
      }
      Release();
      return;
    }
    std::vector<std::pair<Member*, std::vector<uint32_t>>> groups;
    for (uint32_t i = 0; i < n; ++i) {
      Member* primary = keys_[i].primary;
      auto it = std::find_if(groups.begin(), groups.end(), [&](auto& g) { return g.first == primary; });
      if (it == groups.end()) {
        groups.push_back({primary, {}});
        it = groups.end() - 1;
      }
      it->second.push_back(i);
    }
    for (auto& [member, idx] : groups) {
      if (member->Usable()) {
        SendGroup(member, std::move(idx));
      } else {
        for (uint32_t i : idx) LookupOnBackup(i, /*fill=*/false, OpStatus::kMemberDown);
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

  std::string Wire(const std::vector<uint32_t>& idx) const {
    std::string wire(protocol::CommandName(r_->req.cmd));
    if (Touches()) wire.append(" ").append(std::to_string(r_->req.exptime));
    for (uint32_t i : idx) {
      wire.push_back(' ');
      wire.append(keys_[i].key);
    }
    wire.append("\r\n");
    return wire;
  }

  void SendGroup(Member* member, std::vector<uint32_t> idx) {
    ++outstanding_;
    std::string wire = Wire(idx);
    uint32_t hash = keys_[idx.front()].hash;
    auto shared_idx = std::make_shared<const std::vector<uint32_t>>(std::move(idx));
    member->Send(hash, wire, protocol::ReplyKind::kRetrieval,
                 [self = shared_from_this(), member, shared_idx](const OpResult& res) {
                   self->OnGroupReply(member, shared_idx.get(), res);
                 });
  }

  bool WarmEligible(Member* primary, uint32_t hash) const {
    if (!r_->pool->spec.warmup || !primary->Warming()) return false;
    Member* b = r_->pool->BackupFor(hash);
    return b != nullptr && b->Usable();
  }

  // `idx` null: the group is every key (single group).
  void OnGroupReply(Member* member, const std::vector<uint32_t>* idx, const OpResult& res) {
    const size_t count = idx ? idx->size() : keys_.size();
    auto key_at = [&](size_t j) { return idx ? (*idx)[j] : static_cast<uint32_t>(j); };
    if (res.status != OpStatus::kOk) {
      for (size_t j = 0; j < count; ++j) LookupOnBackup(key_at(j), false, res.status);
      Release();
      return;
    }
    const protocol::Reply& reply = *res.reply;
    if (reply.error) {
      first_error_.assign(reply.line.in(res.buf)).append("\r\n");
      for (size_t j = 0; j < count; ++j) keys_[key_at(j)].state = State::kError;
      Release();
      return;
    }
    const bool warming = member->Warming();
    // One group whose misses need no backup lookup: the member's reply is the client's reply, byte for byte.
    if (idx == nullptr && (reply.items.size() == count || !(warming && r_->pool->spec.warmup))) {
      passthrough_ = res.buf.substr(0, reply.consumed);
      size_t j = 0;
      for (KeyResult& k : keys_) {
        if (warming) member->NoteWarmupRead();
        bool hit = j < reply.items.size() && reply.items[j].key.in(res.buf) == k.key;
        k.state = hit ? State::kHit : State::kMiss;
        j += hit;
      }
      Release();
      return;
    }
    size_t j = 0;
    for (size_t n = 0; n < count; ++n) {
      KeyResult& k = keys_[key_at(n)];
      if (warming) member->NoteWarmupRead();
      if (j < reply.items.size() && reply.items[j].key.in(res.buf) == k.key) {
        k.state = State::kHit;
        k.block.assign(reply.items[j].whole.in(res.buf));
        ++j;
      } else if (WarmEligible(member, k.hash)) {
        LookupOnBackup(key_at(n), /*fill=*/true, OpStatus::kOk);
      } else {
        k.state = State::kMiss;
      }
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
    // append() rather than operator+: GCC 12 -O3 reports a false -Wrestrict on "literal" + std::string.
    std::string wire("mg ");
    wire.append(k.key).append(" v f t");
    if (WantsCas()) wire += " c";
    if (Touches()) wire.append(" T").append(std::to_string(r_->req.exptime));
    wire += "\r\n";
    ++outstanding_;
    b->Send(k.hash, wire, protocol::ReplyKind::kMeta, [self = shared_from_this(), i, fill](const OpResult& res) {
      self->OnBackupReply(i, fill, res);
    });
  }

  void OnBackupReply(uint32_t i, bool fill, const OpResult& res) {
    KeyResult& k = keys_[i];
    if (res.status != OpStatus::kOk || res.reply->error) {
      k.state = fill ? State::kMiss : State::kError;
      Release();
      return;
    }
    MetaValue v;
    if (!ParseMetaValue(res.buf, *res.reply, &v)) {
      k.state = State::kMiss;
      if (fill) k.primary->NoteWarmupLookup(false);
      Release();
      return;
    }
    k.state = State::kHit;
    k.block.assign("VALUE ").append(k.key).append(" ").append(std::to_string(v.flags)).append(" ");
    k.block.append(std::to_string(v.data.size()));
    if (WantsCas()) k.block.append(" ").append(std::to_string(v.cas));
    k.block += "\r\n";
    k.block.append(v.data);
    k.block += "\r\n";
    if (fill) {
      k.primary->NoteWarmupLookup(true);
      WriteBack(k.primary, k.hash, k.key, /*base64=*/false, v, r_->metrics);
    }
    Release();
  }

  void Release() {
    if (--outstanding_ > 0) {
      if (passthrough_.data() != nullptr && passthrough_copy_.empty()) {  // the view dies with this callback
        passthrough_copy_.assign(passthrough_);
        passthrough_ = passthrough_copy_;
      }
      return;
    }
    auto seconds = std::chrono::duration<double>(Clock::now() - r_->start).count();
    std::string out;
    size_t hits = 0, errors = 0;
    for (const KeyResult& k : keys_) {
      Outcome o = k.state == State::kHit ? Outcome::kHit : k.state == State::kError ? Outcome::kServerError
                                                                                     : Outcome::kMiss;
      r_->metrics->Request(r_->req.cmd, o, seconds);
      if (k.state == State::kHit) {
        ++hits;
        out += k.block;
      } else if (k.state == State::kError) {
        ++errors;
      }
    }
    if (passthrough_.data() != nullptr) {
      r_->FinishWith(passthrough_, hits ? Outcome::kHit : Outcome::kMiss);
      return;
    }
    if (errors == keys_.size()) {
      out = first_error_.empty() ? std::string(kNoMember) : first_error_;
    } else {
      out += "END\r\n";
    }
    r_->Finish(std::move(out), hits ? Outcome::kHit : Outcome::kMiss);
  }

  RoutedPtr r_;
  std::vector<KeyResult> keys_;
  size_t outstanding_ = 0;
  bool single_group_ = false;
  std::string first_error_;
  std::string_view passthrough_;  // the member's whole reply, when it is the client's reply unchanged
  std::string passthrough_copy_;
};

}  // namespace

void RouteRetrieval(const RoutedPtr& r) { std::make_shared<RetrievalJob>(r)->Start(); }

}  // namespace memha
