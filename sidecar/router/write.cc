// Writes: to the key's primary, mirrored to its backup per write policy. A write is never applied twice on one
// member; a member that misses a write (down, timed out, mirror dropped) gets the key invalidated before it
// serves again. Non-idempotent writes are mirrored by copying the primary's resulting value. What members get
// is composed from the parsed request (text writes become ms/md/ma/mg, compose.h); replies are turned back into
// what memcached would have answered the client (client_reply.h).
#include "sidecar/protocol/compose.h"
#include "sidecar/router/client_reply.h"
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
      for (uint8_t i = 0; i < r.req.nflags; ++i) {
        std::string_view tok = r.req.flags[i].in(r.raw);
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
    // The backup applies a key's writes in the primary's order: a mirror known only after the primary's reply
    // takes its place now, and a mirror that could go at once waits if places before it are still open.
    if (mirrors_ && (mode_ != MirrorMode::kParallel || backup_->HasMirrorTickets(key_))) {
      ticket_ = backup_->TakeMirrorTicket(key_);
      has_ticket_ = ticket_waiting_ = true;
      backup_alive_ = backup_->alive_token();
    }
    primary_->Send(hash_, Wire(), protocol::ReplyKind::kMeta,
                   [self = shared_from_this()](const OpResult& res) { self->OnPrimary(res); });
    if (mirrors_ && mode_ == MirrorMode::kParallel) {
      if (has_ticket_) {
        ReleaseTicket([self = shared_from_this()] { self->parallel_sent_ = self->Mirror(self->MirrorWire()); });
      } else {
        parallel_sent_ = Mirror(MirrorWire());
      }
    }
  }

  ~WriteJob() {
    if (has_ticket_ && !backup_alive_.expired()) backup_->ReleaseMirrorTicket(key_, ticket_, nullptr);
  }

 private:
  // The request as members get it, composed from the parsed request.
  void BuildWire() {
    const auto& req = r_->req;
    switch (req.cmd) {
      case Command::kSet: case Command::kAdd: case Command::kReplace: case Command::kAppend:
      case Command::kPrepend: case Command::kCas:
        line_ = protocol::ComposeStorage(req, key_);
        body_ = protocol::BodyOf(req, r_->raw);
        break;
      case Command::kIncr: case Command::kDecr: line_ = protocol::ComposeArithmetic(req, key_); break;
      case Command::kDelete: line_ = protocol::ComposeDelete(key_, false); break;
      case Command::kTouch: line_ = protocol::ComposeTouch(key_, req.exptime); break;
      default:  // ms, md, ma
        line_ = protocol::ComposeClientMeta(req, r_->raw, &opaque_at_);
        if (req.cmd == Command::kMetaSet) body_ = protocol::BodyOf(req, r_->raw);
        break;
    }
  }

  protocol::MemberWire Wire() const { return protocol::MemberWire{line_, body_, opaque_at_}; }

  // Deletes mirror as plain deletes: a compare-and-delete must not leave the backup's copy behind.
  protocol::MemberWire MirrorWire() {
    if (r_->req.cmd == Command::kMetaDelete) {
      mirror_line_ = MetaDelete();
      return protocol::MemberWire{mirror_line_};
    }
    return Wire();
  }

  std::string MetaDelete() const { return protocol::ComposeDelete(r_->key_token(), r_->req.meta_base64); }

  // What the client sees for a member's reply to its request.
  std::string ClientReply(const OpResult& res) const {
    if (!protocol::IsMeta(r_->req.cmd)) return TextWriteReply(r_->req.cmd, res.buf, *res.reply);
    std::string out;
    AppendClientMeta(&out, res.buf, *res.reply, r_->req.opaque.in(r_->raw));
    return out;
  }

  // Gives this write's mirror ticket its action (none: nothing to mirror); it runs when the key's earlier
  // mirrors have been sent.
  void ReleaseTicket(std::function<void()> action) {
    if (!has_ticket_) {
      if (action) action();
      return;
    }
    has_ticket_ = false;
    backup_->ReleaseMirrorTicket(key_, ticket_, [self = shared_from_this(), action = std::move(action)] {
      self->ticket_waiting_ = false;
      if (action) action();
      if (!self->in_primary_reply_) self->MaybeFinish();  // else OnPrimary finishes once its reply is set
    });
  }

  void OnPrimary(const OpResult& res) {
    in_primary_reply_ = true;
    OnPrimaryReply(res);
    in_primary_reply_ = false;
    MaybeFinish();
  }

  void OnPrimaryReply(const OpResult& res) {
    primary_pending_ = false;
    if (mode_ != MirrorMode::kParallel && (res.status != OpStatus::kOk || res.reply->error ||
                                           OutcomeOfLine(res.reply->line.in(res.buf)) != Outcome::kOk)) {
      ReleaseTicket(nullptr);  // nothing to mirror (a failed primary is handled below)
    }
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
    reply_ = ClientReply(res);
    Outcome outcome = res.reply->error ? Outcome::kServerError : OutcomeOfLine(res.reply->line.in(res.buf));
    if (mirrors_ && outcome == Outcome::kOk) {
      if (mode_ == MirrorMode::kSetAfter) {
        ReleaseTicket([self = shared_from_this()] {
          std::string line = protocol::ComposeStorage(self->r_->req, self->key_, /*as_set=*/true);
          self->Mirror(protocol::MemberWire{line, self->body_});
        });
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
    backup_->Send(hash_, Wire(), protocol::ReplyKind::kMeta, [self = shared_from_this()](const OpResult& res) {
      self->primary_pending_ = false;
      if (res.status != OpStatus::kOk) {
        self->backup_->RecordMissed(self->key_);
        self->reply_ = kNoMember;
      } else {
        self->reply_ = self->ClientReply(res);
      }
      self->MaybeFinish();
    });
  }

  // Sends one mirror write to the backup. Async mode bounds the writes in flight; a dropped or failed mirror
  // leaves the key logged as missed on the backup (or invalidated there at once if it is still up).
  bool Mirror(const protocol::MemberWire& wire) {
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
    backup_->Send(hash_, wire, protocol::ReplyKind::kMeta, [self = shared_from_this()](const OpResult& res) {
      --self->backup_->mirror_in_flight;
      --self->mirrors_pending_;
      self->r_->metrics->mirror_queue_depth().Decrement();
      bool failed = res.status != OpStatus::kOk || res.reply->error;
      if (failed) {
        self->r_->metrics->mirror_failed().Increment();
        self->InvalidateBackup();
      } else {
        self->mirror_reply_ = self->ClientReply(res);
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
    backup_->SendMeta(hash_, wire, [self](const OpResult& res) {
      if (res.status != OpStatus::kOk) self->backup_->RecordMissed(self->key_);
    });
  }

  // After append/prepend/incr/decr/ma or a conditional ms: the backup gets the primary's resulting value.
  void CopyToBackup() {
    ++mirrors_pending_;
    std::string wire = protocol::ComposeValueRead(r_->key_token(), r_->req.meta_base64);
    primary_->SendMeta(hash_, wire, [self = shared_from_this()](const OpResult& res) {
      --self->mirrors_pending_;
      MetaValue v;
      if (res.status == OpStatus::kOk && ParseMetaValue(res.buf, *res.reply, &v)) {
        std::string line = protocol::ComposeValueWrite(self->r_->key_token(), self->r_->req.meta_base64,
                                                       v.data.size(), v.ttl, v.flags, /*add_only=*/false);
        std::string body(v.data);
        body += "\r\n";
        self->ReleaseTicket([self, line = std::move(line), body = std::move(body)] {
          self->Mirror(protocol::MemberWire{line, body});
        });
      } else {
        // gone or unreadable on the primary: the backup must not keep an old value
        self->ReleaseTicket([self] { self->InvalidateBackup(); });
      }
      self->MaybeFinish();
    });
  }

  void MaybeFinish() {
    if (finished_ || primary_pending_ || (sync_ && (mirrors_pending_ > 0 || ticket_waiting_))) return;
    finished_ = true;
    std::string_view line = std::string_view(reply_).substr(0, reply_.find('\r'));
    Outcome outcome = OutcomeOfLine(line);
    std::string out = r_->reply_override ? *r_->reply_override : reply_;
    if (r_->reply_override) outcome = Outcome::kClientError;
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
  std::string line_;            // what members get (composed), with body_
  std::string_view body_;       // the value block with its "\r\n", in r_->raw
  size_t opaque_at_ = std::string_view::npos;
  std::string mirror_line_;     // a delete mirrored as a plain delete
  MirrorMode mode_ = MirrorMode::kParallel;
  bool sync_ = false;
  bool mirrors_ = false;
  bool primary_pending_ = false;
  size_t mirrors_pending_ = 0;
  bool finished_ = false;
  bool parallel_sent_ = false;     // an idempotent write went to the backup alongside the primary
  uint64_t ticket_ = 0;            // this write's place in the key's mirror order on the backup
  bool has_ticket_ = false;        // taken and not released yet
  bool ticket_waiting_ = false;    // released or not, its action has not run yet
  bool in_primary_reply_ = false;
  std::weak_ptr<bool> backup_alive_;
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
    std::string line = protocol::ComposeFlush(r_->req);
    outstanding_ = 1;
    for (Member* m : members) {
      if (!m->Usable()) {
        missed_.push_back(m);  // flushed when it returns, if the flush happened anywhere
        continue;
      }
      ++outstanding_;
      m->Send(0, protocol::MemberWire{line}, protocol::ReplyKind::kFenced,
              [self = shared_from_this(), m](const OpResult& res) {
                if (res.status != OpStatus::kOk) {
                  m->RecordMissedAll();
                } else if (res.reply->line.in(res.buf) != "OK") {
                  if (self->refused_.empty()) {
                    self->refused_.assign(res.reply->line.in(res.buf)).append("\r\n");  // e.g. memcached -F
                  }
                } else {
                  self->applied_ = true;
                }
                self->Release();
              });
    }
    Release();
  }

 private:
  void Release() {
    if (--outstanding_ > 0) return;
    // A flush every reachable member refused (memcached -F) removed nothing: a member that missed it missed
    // nothing. Otherwise it is flushed before it serves again.
    if (refused_.empty() || applied_) {
      for (Member* m : missed_) m->RecordMissedAll();
    }
    if (!refused_.empty()) return r_->Finish(r_->req.noreply ? std::string() : refused_, Outcome::kClientError);
    r_->Finish(r_->req.noreply ? std::string() : std::string("OK\r\n"), Outcome::kOk);
  }
  RoutedPtr r_;
  size_t outstanding_ = 0;
  std::string refused_;  // a member's refusal, returned as memcached would return it
  bool applied_ = false;   // some member did flush
  std::vector<Member*> missed_;
};

}  // namespace

void RouteWrite(const RoutedPtr& r) { std::make_shared<WriteJob>(r)->Start(); }
void RouteFlush(const RoutedPtr& r) { std::make_shared<FlushJob>(r)->Start(); }

}  // namespace memha
