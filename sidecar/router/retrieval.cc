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
    std::vector<std::pair<Member*, std::vector<uint32_t>>> groups;
    for (uint32_t i = 0; i < n; ++i) {
      KeyResult& k = keys_[i];
      k.key = r_->key(i);
      k.hash = KetamaRing::HashKey(k.key);
      k.primary = pool.PrimaryFor(k.hash);
      auto it = std::find_if(groups.begin(), groups.end(), [&](auto& g) { return g.first == k.primary; });
      if (it == groups.end()) {
        groups.push_back({k.primary, {}});
        it = groups.end() - 1;
      }
      it->second.push_back(i);
    }
    single_group_ = groups.size() == 1;
    ++outstanding_;  // held until every group is sent
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
    if (Touches()) wire += " " + std::to_string(r_->req.exptime);
    for (uint32_t i : idx) {
      wire.push_back(' ');
      wire.append(keys_[i].key);
    }
    wire.append("\r\n");
    return wire;
  }

  void SendGroup(Member* member, std::vector<uint32_t> idx) {
    ++outstanding_;
    std::string composed;
    // All keys on one member: forward the client's line unchanged.
    std::string_view wire = single_group_ ? std::string_view(r_->raw) : (composed = Wire(idx));
    uint32_t hash = keys_[idx.front()].hash;
    member->Send(hash, wire, protocol::ReplyKind::kRetrieval,
                 [self = shared_from_this(), member, idx = std::move(idx)](const OpResult& res) {
                   self->OnGroupReply(member, idx, res);
                 });
  }

  bool WarmEligible(Member* primary, uint32_t hash) const {
    if (!r_->pool->spec.warmup || !primary->Warming()) return false;
    Member* b = r_->pool->BackupFor(hash);
    return b != nullptr && b->Usable();
  }

  void OnGroupReply(Member* member, const std::vector<uint32_t>& idx, const OpResult& res) {
    if (res.status != OpStatus::kOk) {
      for (uint32_t i : idx) LookupOnBackup(i, false, res.status);
      Release();
      return;
    }
    const protocol::Reply& reply = *res.reply;
    if (reply.error) {
      first_error_ = std::string(reply.line.in(res.buf)) + "\r\n";
      for (uint32_t i : idx) keys_[i].state = State::kError;
      Release();
      return;
    }
    size_t j = 0;
    for (uint32_t i : idx) {
      KeyResult& k = keys_[i];
      if (member->Warming()) member->NoteWarmupRead();
      if (j < reply.items.size() && reply.items[j].key.in(res.buf) == k.key) {
        k.state = State::kHit;
        k.block.assign(reply.items[j].whole.in(res.buf));
        ++j;
      } else if (WarmEligible(member, k.hash)) {
        LookupOnBackup(i, /*fill=*/true, OpStatus::kOk);
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
    std::string wire = "mg " + std::string(k.key) + " v f t";
    if (WantsCas()) wire += " c";
    if (Touches()) wire += " T" + std::to_string(r_->req.exptime);
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
    k.block = "VALUE " + std::string(k.key) + " " + std::to_string(v.flags) + " " + std::to_string(v.data.size());
    if (WantsCas()) k.block += " " + std::to_string(v.cas);
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
    if (--outstanding_ > 0) return;
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
};

}  // namespace

void RouteRetrieval(const RoutedPtr& r) { std::make_shared<RetrievalJob>(r)->Start(); }

}  // namespace memha
