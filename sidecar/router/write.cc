// Writes: to the key's primary, mirrored to its backup per write policy. A write is never applied twice on one
// member; a member that misses a write (down, timed out, mirror dropped) gets the key invalidated before it
// serves again. Non-idempotent writes are mirrored by copying the primary's resulting value.
#include "sidecar/router/context.h"
#include "sidecar/router/meta_value.h"

namespace memha {
namespace {

using protocol::Command;

enum class MirrorMode : uint8_t {
  kParallel,   // idempotent: sent to the backup alongside the primary (set, delete, touch, plain ms, md)
  kSetAfter,   // conditional on the primary's state: after success, set the same value (add, replace, cas)
  kCopyAfter,  // result depends on the old value: after success, copy the primary's value (append, incr, ma, ...)
};

MirrorMode ModeFor(const RoutedRequest& r) {
  switch (r.req.cmd) {
    case Command::kAdd: case Command::kReplace: case Command::kCas: return MirrorMode::kSetAfter;
    case Command::kAppend: case Command::kPrepend: case Command::kIncr: case Command::kDecr:
    case Command::kMetaArithmetic: return MirrorMode::kCopyAfter;
    case Command::kMetaSet: {
      std::string_view flags = r.req.meta_flags.in(r.raw);
      size_t i = 0;
      while (i < flags.size()) {
        while (i < flags.size() && flags[i] == ' ') ++i;
        size_t start = i;
        while (i < flags.size() && flags[i] != ' ') ++i;
        std::string_view tok = flags.substr(start, i - start);
        if (tok.empty()) continue;
        if (tok[0] == 'C' || tok[0] == 'I') return MirrorMode::kCopyAfter;
        if (tok[0] == 'M' && tok != "MS" && tok != "Ms") return MirrorMode::kCopyAfter;
      }
      return MirrorMode::kParallel;
    }
    default: return MirrorMode::kParallel;
  }
}

class WriteJob : public std::enable_shared_from_this<WriteJob> {
 public:
  explicit WriteJob(RoutedPtr r) : r_(std::move(r)) {}

  void Start() {
    key_ = r_->key();
    hash_ = r_->pool->Hash(key_);
    primary_ = r_->pool->PrimaryFor(hash_);
    backup_ = r_->pool->BackupFor(hash_);
    BuildWire();
    sync_ = r_->pool->spec.write_policy == WritePolicy::kSync;
    mirrors_ = r_->pool->mirrors() && backup_ != nullptr;
    mode_ = ModeFor(*r_);
    if (!primary_->Usable()) {
      primary_->RecordMissed(key_);
      return FailoverTo(OpStatus::kMemberDown);
    }
    primary_pending_ = true;
    primary_->Send2(hash_, head_view_, body_, protocol::ReplyKind(kind_),
                    [self = shared_from_this()](const OpResult& res) { self->OnPrimary(res); });
    if (mirrors_ && mode_ == MirrorMode::kParallel) parallel_sent_ = Mirror(MirrorHead(), body_, kind_);
  }

 private:
  // The request as sent to members: without noreply / q, so every reply is seen and matched.
  void BuildWire() {
    const auto& req = r_->req;
    kind_ = protocol::IsMeta(req.cmd) ? protocol::ReplyKind::kMeta : protocol::ReplyKind::kLine;
    if (req.noreply) {
      head_ = LineWithout(r_->line(), protocol::IsMeta(req.cmd) ? "q" : "noreply");
      if (req.data.len || protocol::IsStorage(req.cmd) || req.cmd == Command::kMetaSet) {
        body_.assign(r_->data());
        body_ += "\r\n";
      }
      head_view_ = head_;
    } else {
      head_view_ = r_->raw;  // line and data block, unchanged
    }
  }

  // Deletes mirror as plain deletes: a compare-and-delete must not leave the backup's copy behind.
  std::string_view MirrorHead() {
    if (r_->req.cmd == Command::kMetaDelete) return mirror_head_ = MetaDelete();
    if (r_->req.cmd == Command::kDelete) return mirror_head_ = "delete " + std::string(key_) + "\r\n";
    return head_view_;
  }

  std::string MetaDelete() const {
    return "md " + std::string(r_->key_token()) + (r_->req.meta_base64 ? " b" : "") + "\r\n";
  }

  void OnPrimary(const OpResult& res) {
    primary_pending_ = false;
    if (res.status != OpStatus::kOk) {
      primary_->RecordMissed(key_);  // it may or may not have applied it; invalidate before it serves again
      if (parallel_sent_) {           // the backup already has (or is getting) this very write: its reply stands
        r_->metrics->Failover(res.status);
        if (mirror_done_) {
          reply_ = mirror_reply_.empty() ? std::string(kNoMember) : mirror_reply_;
        } else {
          primary_pending_ = true;
          reply_from_mirror_ = true;
        }
        return MaybeFinish();
      }
      return FailoverTo(res.status);
    }
    reply_.assign(res.buf.substr(0, res.reply->consumed));
    Outcome outcome = OutcomeOfLine(res.reply->line.in(res.buf));
    if (mirrors_ && outcome == Outcome::kOk) {
      if (mode_ == MirrorMode::kSetAfter) {
        const auto& req = r_->req;
        std::string head = "set " + std::string(key_) + " " + std::to_string(req.client_flags) + " " +
                           std::to_string(req.exptime) + " " + std::to_string(req.value_len) + "\r\n";
        std::string body(r_->data());
        body += "\r\n";
        Mirror(head, body, protocol::ReplyKind::kLine);
      } else if (mode_ == MirrorMode::kCopyAfter) {
        CopyToBackup();
      }
    }
    MaybeFinish();
  }

  void FailoverTo(OpStatus why) {
    if (backup_ == nullptr || !backup_->Usable()) {
      if (backup_ != nullptr) backup_->RecordMissed(key_);
      reply_ = kNoMember;
      return MaybeFinish();
    }
    r_->metrics->Failover(why);
    primary_pending_ = true;
    backup_->Send2(hash_, head_view_, body_, kind_, [self = shared_from_this()](const OpResult& res) {
      self->primary_pending_ = false;
      if (res.status != OpStatus::kOk) {
        self->backup_->RecordMissed(self->key_);
        self->reply_ = kNoMember;
      } else {
        self->reply_.assign(res.buf.substr(0, res.reply->consumed));
      }
      self->MaybeFinish();
    });
  }

  // Sends one mirror write to the backup. Async mode bounds the writes in flight; a dropped or failed mirror
  // leaves the key logged as missed on the backup (or invalidated there at once if it is still up).
  bool Mirror(std::string_view head, std::string_view body, protocol::ReplyKind kind) {
    Metrics* m = r_->metrics;
    if (!backup_->Usable()) {
      backup_->RecordMissed(key_);
      return false;
    }
    if (!sync_ && backup_->mirror_in_flight >= r_->tunables->mirror_queue_limit) {
      m->mirror_dropped().Increment();
      backup_->RecordMissed(key_);
      return false;
    }
    ++backup_->mirror_in_flight;
    ++mirrors_pending_;
    m->mirror_queue_depth().Increment();
    backup_->Send2(hash_, head, body, kind, [self = shared_from_this()](const OpResult& res) {
      --self->backup_->mirror_in_flight;
      --self->mirrors_pending_;
      self->r_->metrics->mirror_queue_depth().Decrement();
      bool failed = res.status != OpStatus::kOk || res.reply->error;
      if (failed) {
        self->r_->metrics->mirror_failed().Increment();
        self->InvalidateBackup();
      } else {
        self->mirror_reply_.assign(res.buf.substr(0, res.reply->consumed));
      }
      self->mirror_done_ = true;
      if (self->reply_from_mirror_) {
        self->reply_from_mirror_ = false;
        self->primary_pending_ = false;
        self->reply_ = failed ? std::string(kNoMember) : self->mirror_reply_;
      }
      self->MaybeFinish();
    });
    return true;
  }

  void InvalidateBackup() {
    if (!backup_->Usable()) {
      backup_->RecordMissed(key_);
      return;
    }
    std::string wire = MetaDelete();
    auto self = shared_from_this();
    backup_->Send(hash_, wire, protocol::ReplyKind::kMeta, [self](const OpResult& res) {
      if (res.status != OpStatus::kOk) self->backup_->RecordMissed(self->key_);
    });
  }

  // After append/prepend/incr/decr/ma or a conditional ms: the backup gets the primary's resulting value.
  void CopyToBackup() {
    ++mirrors_pending_;
    std::string wire = "mg " + std::string(r_->key_token()) + (r_->req.meta_base64 ? " b" : "") + " v f t\r\n";
    primary_->Send(hash_, wire, protocol::ReplyKind::kMeta, [self = shared_from_this()](const OpResult& res) {
      --self->mirrors_pending_;
      MetaValue v;
      if (res.status == OpStatus::kOk && ParseMetaValue(res.buf, *res.reply, &v)) {
        std::string head = "ms " + std::string(self->r_->key_token()) + " " + std::to_string(v.data.size()) +
                           " T" + std::to_string(v.ttl < 0 ? 0 : v.ttl) + " F" + std::to_string(v.flags) +
                           (self->r_->req.meta_base64 ? " b" : "") + "\r\n";
        std::string body(v.data);
        body += "\r\n";
        self->Mirror(head, body, protocol::ReplyKind::kMeta);
      } else {
        self->InvalidateBackup();  // gone or unreadable on the primary: the backup must not keep an old value
      }
      self->MaybeFinish();
    });
  }

  void MaybeFinish() {
    if (finished_ || primary_pending_ || (sync_ && mirrors_pending_ > 0)) return;
    finished_ = true;
    std::string_view line = std::string_view(reply_).substr(0, reply_.find('\r'));
    Outcome outcome = OutcomeOfLine(line);
    std::string out = reply_;
    if (r_->req.noreply) {
      if (!protocol::IsMeta(r_->req.cmd) || IsMetaQuietSuppressed(r_->req.cmd, line)) out.clear();
    }
    r_->Finish(std::move(out), outcome);
  }

  RoutedPtr r_;
  std::string_view key_;
  uint32_t hash_ = 0;
  Member* primary_ = nullptr;
  Member* backup_ = nullptr;
  std::string head_, body_;   // head_ holds a rewritten line only when noreply/q had to be stripped
  std::string_view head_view_;  // what members get: head_, or the client's bytes unchanged
  std::string mirror_head_;     // a delete mirrored as a plain delete
  protocol::ReplyKind kind_ = protocol::ReplyKind::kLine;
  MirrorMode mode_ = MirrorMode::kParallel;
  bool sync_ = false;
  bool mirrors_ = false;
  bool primary_pending_ = false;
  size_t mirrors_pending_ = 0;
  bool finished_ = false;
  bool parallel_sent_ = false;     // an idempotent write went to the backup alongside the primary
  bool mirror_done_ = false;
  bool reply_from_mirror_ = false;  // the primary failed: answer with the parallel mirror's reply
  std::string mirror_reply_;
  std::string reply_;
};

class FlushJob : public std::enable_shared_from_this<FlushJob> {
 public:
  explicit FlushJob(RoutedPtr r) : r_(std::move(r)) {}
  void Start() {
    std::vector<Member*> members;
    for (const auto* list : {&r_->pool->primary, &r_->pool->backup}) {
      for (const auto& m : *list) {
        if (std::find(members.begin(), members.end(), m.get()) == members.end()) members.push_back(m.get());
      }
    }
    std::string wire = r_->req.noreply ? LineWithout(r_->line(), "noreply") : r_->raw;
    outstanding_ = 1;
    for (Member* m : members) {
      if (!m->Usable()) {
        m->RecordMissedAll();  // flushed when it returns
        continue;
      }
      ++outstanding_;
      m->Send(0, wire, protocol::ReplyKind::kLine, [self = shared_from_this(), m](const OpResult& res) {
        if (res.status != OpStatus::kOk || res.reply->error) m->RecordMissedAll();
        self->Release();
      });
    }
    Release();
  }

 private:
  void Release() {
    if (--outstanding_ > 0) return;
    r_->Finish(r_->req.noreply ? std::string() : std::string("OK\r\n"), Outcome::kOk);
  }
  RoutedPtr r_;
  size_t outstanding_ = 0;
};

}  // namespace

void RouteWrite(const RoutedPtr& r) { std::make_shared<WriteJob>(r)->Start(); }
void RouteFlush(const RoutedPtr& r) { std::make_shared<FlushJob>(r)->Start(); }

}  // namespace memha
