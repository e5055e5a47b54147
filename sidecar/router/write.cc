// Writes: to the key's primary, mirrored to its backup per write policy. A write is never applied twice on one
// member; a member that misses a write (down, timed out, mirror not sent) gets the key invalidated (or, for a
// backup that is up, copied from the primary by the repair queue) before it serves again. A value reaches the
// backup only after the primary stored it, as a mirror proven against the primary's CAS (replicate.h), so the
// backup holds each key's primary value or nothing, whichever sidecar wrote it. Deletes go to both at once and
// are answered when both did. What members get is composed from the parsed request (text writes become
// ms/md/ma/mg, compose.h); replies are turned back into what memcached would have answered (client_reply.h).
#include "sidecar/protocol/compose.h"
#include "sidecar/router/client_reply.h"
#include "sidecar/router/context.h"
#include "sidecar/router/meta_value.h"
#include "sidecar/router/replicate.h"

namespace memha {
namespace {

using protocol::Command;

enum class MirrorMode : uint8_t {
  kParallel,   // no value to carry (delete, touch): sent to the backup alongside the primary
  kSetAfter,   // after the primary stored it, the same value with the primary's CAS (set, add, replace, cas, ms)
  kCopyAfter,  // the result depends on the old value: after success, copy the primary's value (append, incr, ...)
};

MirrorMode ModeFor(const RoutedRequest& r) {
  switch (r.req.cmd) {
    case Command::kDelete: case Command::kMetaDelete: case Command::kTouch: return MirrorMode::kParallel;
    case Command::kAppend: case Command::kPrepend: case Command::kIncr: case Command::kDecr:
    case Command::kMetaArithmetic: return MirrorMode::kCopyAfter;
    case Command::kMetaSet: {
      for (uint8_t i = 0; i < r.req.nflags; ++i) {
        std::string_view tok = r.req.flags[i].in(r.raw);
        if (tok[0] == 'C' || tok[0] == 'I') return MirrorMode::kCopyAfter;
        if (tok[0] == 'M' && tok != "MS" && tok != "Ms") return MirrorMode::kCopyAfter;
      }
      return MirrorMode::kSetAfter;
    }
    default: return MirrorMode::kSetAfter;
  }
}

// Removes the c<cas> token the sidecar added to a client's ms (the client did not ask for it).
void StripCasToken(std::string* reply) {
  size_t eol = reply->find("\r\n");
  if (eol == std::string::npos) eol = reply->size();
  for (size_t i = reply->find(' '); i != std::string::npos && i < eol; i = reply->find(' ', i + 1)) {
    if (i + 1 < eol && (*reply)[i + 1] == 'c') {
      size_t end = reply->find(' ', i + 1);
      if (end == std::string::npos || end > eol) end = eol;
      reply->erase(i, end - i);
      return;
    }
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
    sync_ = r_->pool->spec.write_policy == WritePolicy::kSync;
    mirrors_ = r_->pool->mirrors() && backup_ != nullptr;
    mode_ = ModeFor(*r_);
    BuildWire();
    // A delete is answered once the backup deleted too: a read sent after the answer finds the value nowhere.
    wait_mirror_ = sync_ || r_->req.cmd == Command::kDelete || r_->req.cmd == Command::kMetaDelete;
    if (!primary_->Usable()) {
      primary_->RecordMissed(key_);
      return FailoverTo(OpStatus::kMemberDown);
    }
    primary_pending_ = true;
    if (DependsOnOldValue() && SettleNeeded(r_->pool, primary_, hash_)) {
      // A warming primary may lack the key, or a topology change moved it here from a copy older than the
      // backup's: settle the copy first (replicate.h).
      // The client's later requests wait (they must reach the primary after this one).
      if (ReplySink* s = r_->slot->sink) s->OrderBarrier(1);
      return SettleKey(r_->pool, primary_, hash_, std::string(r_->key_token()), r_->req.meta_base64,
                            r_->metrics, [self = shared_from_this()] {
                              if (ReplySink* s = self->r_->slot->sink) s->OrderBarrier(-1);
                              self->Dispatch();
                            });
    }
    Dispatch();
  }

  // Whether the outcome depends on what the primary holds (everything but set, plain ms, delete and touch).
  bool DependsOnOldValue() const {
    Command c = r_->req.cmd;
    return mode_ == MirrorMode::kCopyAfter || c == Command::kAdd || c == Command::kReplace || c == Command::kCas;
  }

  void Dispatch() {
    if (primary_->WritesHeld(key_)) {  // a delete of this key deletes again soon: go after it
      if (ReplySink* s = r_->slot->sink; s != nullptr && !barrier_) {
        s->OrderBarrier(1);  // and the client's later requests after this one
        barrier_ = true;
      }
      return primary_->WaitForWrites(key_, [self = shared_from_this()] { self->Dispatch(); });
    }
    if (barrier_) {
      barrier_ = false;
      if (ReplySink* s = r_->slot->sink) s->OrderBarrier(-1);
    }
    if (mirrors_ && PlainDelete()) {  // this delete may delete again (MaybeFinish): later writes wait for it
      primary_->HoldWrites(key_);
      holds_writes_ = true;
      primary_alive_ = primary_->alive_token();
    }
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
    if (holds_writes_ && !primary_alive_.expired()) primary_->ReleaseWrites(key_);
  }

  void ReleaseHeldWrites() {
    if (!holds_writes_) return;
    holds_writes_ = false;
    primary_->ReleaseWrites(key_);
  }

 private:
  // The request as members get it, composed from the parsed request. A write whose value is mirrored asks the
  // primary for the CAS it gave the value (c), which proves the mirror (replicate.h).
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
    if (mirrors_ && mode_ == MirrorMode::kSetAfter) {
      bool has_c = false;
      if (req.cmd == Command::kMetaSet) {
        for (uint8_t i = 0; i < req.nflags; ++i) has_c = has_c || req.flags[i].in(r_->raw)[0] == 'c';
      }
      if (!has_c) {
        line_.append(" c");
        added_cas_ = protocol::IsMeta(req.cmd);
      }
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
    if (added_cas_) StripCasToken(&out);
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
        r_->pool->CountFailover(res.status);
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
    std::string_view code = res.reply->code(res.buf);
    redelete_ = parallel_sent_ && (code == "HD" || code == "NF") && PlainDelete();
    if (mirrors_ && outcome == Outcome::kOk && mode_ != MirrorMode::kParallel) {
      uint64_t cas = CasOfLine(res.reply->line.in(res.buf));
      bool copy = mode_ == MirrorMode::kCopyAfter;
      ReleaseTicket([self = shared_from_this(), cas, copy] { self->MirrorValue(copy, cas); });
    }
    MaybeFinish();
  }

  void FailoverTo(OpStatus why) {
    if (backup_ == nullptr || !backup_->Usable()) {
      if (backup_ != nullptr) backup_->RecordMissed(key_);
      reply_ = kNoMember;
      return MaybeFinish();
    }
    r_->pool->CountFailover(why);
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

  // Whether a mirror may start now. Async mode bounds the mirrors in flight per backup member; one over the
  // bound is not dropped: the key waits in the backup's repair queue and is copied from the primary later.
  bool MirrorAdmitted() {
    if (!backup_->Usable()) {
      backup_->RecordMissed(key_);
      return false;
    }
    if (!sync_ && backup_->mirror_in_flight >= r_->tunables->mirror_queue_limit) {
      r_->metrics->mirror_dropped().Increment();
      backup_->RecordRepair(key_);
      return false;
    }
    return true;
  }

  // The value the primary stored goes to the backup, proven by the primary's CAS (`copy`: read it from the
  // primary first).
  void MirrorValue(bool copy, uint64_t cas) {
    if (!MirrorAdmitted()) return;
    MirrorTask t;
    t.pool = r_->pool;
    t.primary = primary_;
    t.backup = backup_;
    t.hash = hash_;
    t.key.assign(key_);
    t.key_token.assign(r_->key_token());
    t.base64 = r_->req.meta_base64;
    if (!copy) {
      if (r_->req.cmd == Command::kMetaSet) {
        t.line = line_;  // the client's ms as composed (plain set mode, no O: the connection adds its own)
      } else {
        t.line = protocol::ComposeStorage(r_->req, key_, /*as_set=*/true);
      }
      t.body.assign(body_);
      t.primary_cas = cas;
    }
    t.metrics = r_->metrics;
    t.tunables = r_->tunables;
    if (wait_mirror_) {
      ++mirrors_pending_;
      t.on_stored = [self = shared_from_this()](bool) {
        --self->mirrors_pending_;
        self->MaybeFinish();
      };
    }
    StartMirror(std::move(t));
  }

  // Sends a delete or touch to the backup alongside the primary. A failed one leaves the key to be repaired.
  bool Mirror(const protocol::MemberWire& wire) {
    if (!MirrorAdmitted()) return false;
    Metrics* m = r_->metrics;
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
        self->backup_->RecordRepair(self->key_);
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

  // A delete (not a compare-and-delete or an invalidation: those keep memcached's meaning).
  bool PlainDelete() const {
    if (r_->req.cmd == Command::kDelete) return true;
    if (r_->req.cmd != Command::kMetaDelete) return false;
    for (uint8_t i = 0; i < r_->req.nflags; ++i) {
      char f = r_->req.flags[i].in(r_->raw)[0];
      if (f == 'C' || f == 'I') return false;
    }
    return true;
  }

  void MaybeFinish() {
    if (finished_ || primary_pending_ || (wait_mirror_ && (mirrors_pending_ > 0 || ticket_waiting_))) return;
    if (redelete_) {
      // Once the backup has deleted, the primary deletes again: a warm-up read of any sidecar that found the
      // key absent on the primary and still present on the backup may have filled it in between (its
      // placeholder was made after the first delete). After this, no fill can read the old value any more.
      redelete_ = false;
      primary_pending_ = true;
      mirror_line_ = MetaDelete();
      primary_->SendMeta(hash_, mirror_line_, [self = shared_from_this()](const OpResult&) {
        self->primary_pending_ = false;
        self->MaybeFinish();
      });
      ReleaseHeldWrites();  // sent: the key's later writes follow it on the same connection
      return;
    }
    ReleaseHeldWrites();
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
  bool wait_mirror_ = false;       // the client's reply waits for the backup (sync policy, deletes)
  bool added_cas_ = false;         // the sidecar asked the primary for a CAS the client did not ask for
  bool primary_pending_ = false;
  size_t mirrors_pending_ = 0;
  bool finished_ = false;
  bool parallel_sent_ = false;     // a delete or touch went to the backup alongside the primary
  bool redelete_ = false;          // delete on the primary again once the backup has deleted
  uint64_t ticket_ = 0;            // this write's place in the key's mirror order on the backup
  bool has_ticket_ = false;        // taken and not released yet
  bool ticket_waiting_ = false;    // released or not, its action has not run yet
  bool in_primary_reply_ = false;
  std::weak_ptr<bool> backup_alive_;
  bool barrier_ = false;           // waiting for a held key, it holds back the client's later requests
  bool holds_writes_ = false;      // this delete holds the key's later writes on the primary (Member::HoldWrites)
  std::weak_ptr<bool> primary_alive_;
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
