// mg and me: one key, composed for the member from the parsed request (canonical flags; the sidecar's opaque in
// place of the client's, and quiet mode applied by the sidecar). Failover to the backup; on a warming primary,
// a miss is looked up on the backup and written back.
#include "sidecar/protocol/compose.h"
#include "sidecar/router/client_reply.h"
#include "sidecar/router/context.h"
#include "sidecar/router/meta_value.h"
#include "sidecar/router/replicate.h"

namespace memha {
namespace {

using protocol::Command;

class MetaReadJob : public Resumable, public std::enable_shared_from_this<MetaReadJob> {
 public:
  explicit MetaReadJob(RoutedPtr r) : r_(std::move(r)) {}

  void Resume() override { Start(); }  // read again: the client has room now

  void Start() {
    hash_ = r_->pool->Hash(r_->key());
    primary_ = r_->pool->PrimaryFor(hash_);
    if (r_->req.cmd == Command::kMetaDebug) {
      line_ = protocol::ComposeMetaDebug(r_->req, r_->raw);
      kind_ = protocol::ReplyKind::kFenced;
    } else {
      line_ = protocol::ComposeClientMeta(r_->req, r_->raw, &opaque_at_);
    }
    if (!primary_->Usable()) return Failover(OpStatus::kMemberDown);
    if (r_->req.cmd == Command::kMetaGet && !settled_ && SettleNeeded(r_->pool, primary_, hash_)) {
      // On a warming primary the key is filled first; a copy from before a topology change is settled.
      settled_ = true;
      if (ReplySink* s = r_->slot->sink) s->OrderBarrier(1);  // later requests reach the primary after this one
      return SettleKey(r_->pool, primary_, hash_, std::string(r_->key_token()), r_->req.meta_base64,
                            r_->metrics, [self = shared_from_this()] {
                              if (ReplySink* s = self->r_->slot->sink) s->OrderBarrier(-1);
                              self->Send();
                            });
    }
    Send();
  }

  void Send() {
    primary_->Send(hash_, Wire(), kind_, [self = shared_from_this()](const OpResult& res) { self->OnPrimary(res); });
  }

 private:
  protocol::MemberWire Wire() const { return protocol::MemberWire{line_, {}, opaque_at_}; }

  void OnPrimary(const OpResult& res) {
    if (res.status != OpStatus::kOk) return Failover(res.status);
    Member* b = r_->pool->BackupFor(hash_);
    const bool mg = r_->req.cmd == Command::kMetaGet;
    if (mg && primary_->Warming()) primary_->NoteWarmupRead();
    // A sidecar's fill in progress (another read's placeholder) is a miss to a client that does not use leases
    // itself; one that asks to vivify (N) gets memcached's answer, W/Z included.
    MetaValue v;
    bool placeholder = mg && !ClientVivifies() && !ParseMetaValue(res.buf, *res.reply, &v) && v.placeholder;
    bool miss = mg && (res.reply->code(res.buf) == "EN" || placeholder);
    if (miss && !settled_ && r_->pool->spec.warmup && primary_->Warming() && b != nullptr && b->Usable()) {
      return Warm(b);
    }
    if (placeholder) {
      std::string_view o = r_->req.opaque.in(r_->raw);
      return Finish(o.empty() ? std::string("EN\r\n") : "EN " + std::string(o) + "\r\n");
    }
    Finish(ClientReply(res));
  }

  bool ClientVivifies() const {
    for (uint8_t i = 0; i < r_->req.nflags; ++i) {
      if (r_->req.flags[i].in(r_->raw)[0] == 'N') return true;
    }
    return false;
  }

  std::string ClientReply(const OpResult& res) const {
    std::string out;
    if (kind_ == protocol::ReplyKind::kFenced) {
      out.assign(res.reply->line.in(res.buf)).append("\r\n");
    } else {
      AppendClientMeta(&out, res.buf, *res.reply, r_->req.opaque.in(r_->raw));
    }
    return out;
  }

  void Failover(OpStatus why) {
    Member* b = r_->pool->BackupFor(hash_);
    if (b == nullptr || !b->Usable()) return r_->Finish(std::string(kNoMember), Outcome::kServerError);
    r_->pool->CountFailover(why);
    b->Send(hash_, Wire(), kind_, [self = shared_from_this()](const OpResult& res) {
      if (res.status != OpStatus::kOk) return self->r_->Finish(std::string(kNoMember), Outcome::kServerError);
      self->Finish(self->ClientReply(res));
    });
  }

  // The client's own request on the backup answers the client. The fill needs a placeholder on the primary
  // (`mg <key> c N`, meta_value.h) and the value with what a copy needs (`mg v f t` on the backup); a write or
  // delete that reaches the primary after the placeholder was made replaces or removes it, and the fill fails.
  void Warm(Member* b) {
    r_->metrics->warmup_lookups().Increment();
    auto self = shared_from_this();
    pending_ = 2;
    b->Send(hash_, Wire(), kind_, [self](const OpResult& res) {
      if (res.status != OpStatus::kOk) {
        self->reply_ = self->r_->req.opaque.len ? "EN " + std::string(self->r_->req.opaque.in(self->r_->raw)) + "\r\n"
                                                 : std::string("EN\r\n");
      } else {
        self->reply_ = self->ClientReply(res);
      }
      self->WarmStepDone();
    });
    std::string vivify("mg ");
    vivify.append(r_->key_token());
    if (r_->req.meta_base64) vivify.append(" b");
    vivify.append(" c N");
    protocol::AppendDecimal(&vivify, kPlaceholderTtl);
    primary_->SendMeta(hash_, vivify, [self, b](const OpResult& res) {
      MetaValue placeholder;
      if (res.status == OpStatus::kOk && !res.reply->error && !ParseMetaValue(res.buf, *res.reply, &placeholder) &&
          placeholder.won && b->Usable()) {
        self->Fill(b, placeholder.cas);
      } else {
        self->primary_->NoteWarmupLookup(false);
      }
      self->WarmStepDone();
    });
  }

  void Fill(Member* b, uint64_t placeholder_cas) {
    ++pending_;
    std::string fill = protocol::ComposeValueRead(r_->key_token(), r_->req.meta_base64);
    b->SendMeta(hash_, fill, [self = shared_from_this(), placeholder_cas](const OpResult& res) {
      MetaValue v;
      bool found = res.status == OpStatus::kOk && !res.reply->error && ParseMetaValue(res.buf, *res.reply, &v);
      self->primary_->NoteWarmupLookup(found);
      if (found) {
        WriteBack(self->primary_, self->hash_, self->r_->key_token(), self->r_->req.meta_base64, v, placeholder_cas,
                  self->r_->metrics);
      } else {
        DropPlaceholder(self->primary_, self->hash_, self->r_->key_token(), self->r_->req.meta_base64,
                        placeholder_cas);
      }
      self->WarmStepDone();
    });
  }

  void WarmStepDone() {
    if (--pending_ == 0) Finish(std::move(reply_));
  }

  void Finish(std::string reply) {
    // A value the client has no room for is dropped and read again once this request is next in line.
    ReplySink* s = r_->slot->sink;
    if (s != nullptr && reply.size() > 64 && !s->IsNext(r_->slot) && !s->CanHold(r_->slot, reply.size()) &&
        s->DeferAllowed(r_->slot)) {
      r_->metrics->replies_deferred().Increment();
      s->ResumeAtHead(r_->slot, shared_from_this());
      return;
    }
    Outcome outcome = OutcomeOfLine(reply);
    if (r_->req.cmd == Command::kMetaGet && outcome == Outcome::kOk) outcome = Outcome::kHit;
    if (r_->req.noreply && IsMetaQuietSuppressed(r_->req.cmd, reply)) reply.clear();
    r_->Finish(std::move(reply), outcome);
  }

  RoutedPtr r_;
  uint32_t hash_ = 0;
  Member* primary_ = nullptr;
  std::string line_;  // what members get
  size_t opaque_at_ = std::string_view::npos;
  protocol::ReplyKind kind_ = protocol::ReplyKind::kMeta;
  std::string reply_;
  int pending_ = 0;  // warm-up replies still due
  bool settled_ = false;  // SettleKey ran (a deferred read that starts again does not repeat it)
};

}  // namespace

void RouteMetaRead(const RoutedPtr& r) { std::make_shared<MetaReadJob>(r)->Start(); }

}  // namespace memha
