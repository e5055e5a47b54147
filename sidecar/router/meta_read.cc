// mg and me: one key, forwarded as the client wrote it (minus q, which the proxy applies itself so replies stay
// matched). Failover to the backup; on a warming primary, a miss is looked up on the backup and written back.
#include "sidecar/router/context.h"
#include "sidecar/router/meta_value.h"

namespace memha {
namespace {

using protocol::Command;

class MetaReadJob : public std::enable_shared_from_this<MetaReadJob> {
 public:
  explicit MetaReadJob(RoutedPtr r) : r_(std::move(r)) {}

  void Start() {
    hash_ = r_->pool->Hash(r_->key());
    primary_ = r_->pool->PrimaryFor(hash_);
    if (r_->req.noreply) stripped_ = LineWithout(r_->line(), "q");
    wire_ = r_->req.noreply ? std::string_view(stripped_) : std::string_view(r_->raw);
    if (!primary_->Usable()) return Failover(OpStatus::kMemberDown);
    primary_->Send(hash_, wire_, protocol::ReplyKind::kMeta,
                   [self = shared_from_this()](const OpResult& res) { self->OnPrimary(res); });
  }

 private:
  void OnPrimary(const OpResult& res) {
    if (res.status != OpStatus::kOk) return Failover(res.status);
    std::string_view line = res.reply->line.in(res.buf);
    Member* b = r_->pool->BackupFor(hash_);
    if (r_->req.cmd == Command::kMetaGet && primary_->Warming()) primary_->NoteWarmupRead();
    if (r_->req.cmd == Command::kMetaGet && line.substr(0, 2) == "EN" && r_->pool->spec.warmup &&
        primary_->Warming() && b != nullptr && b->Usable()) {
      return Warm(b);
    }
    Done(res);
  }

  void Failover(OpStatus why) {
    Member* b = r_->pool->BackupFor(hash_);
    if (b == nullptr || !b->Usable()) return r_->Finish(std::string(kNoMember), Outcome::kServerError);
    r_->metrics->Failover(why);
    b->Send(hash_, wire_, protocol::ReplyKind::kMeta, [self = shared_from_this()](const OpResult& res) {
      if (res.status != OpStatus::kOk) return self->r_->Finish(std::string(kNoMember), Outcome::kServerError);
      self->Done(res);
    });
  }

  // The client's own request on the backup answers the client; a second `mg v f t` carries what the fill needs.
  void Warm(Member* b) {
    r_->metrics->warmup_lookups().Increment();
    auto self = shared_from_this();
    b->Send(hash_, wire_, protocol::ReplyKind::kMeta, [self](const OpResult& res) {
      if (res.status != OpStatus::kOk) {
        self->reply_ = "EN\r\n";
      } else {
        self->reply_.assign(res.buf.substr(0, res.reply->consumed));
      }
    });
    std::string fill = "mg " + std::string(r_->key_token()) + (r_->req.meta_base64 ? " b" : "") + " v f t\r\n";
    b->Send(hash_, fill, protocol::ReplyKind::kMeta, [self](const OpResult& res) {
      MetaValue v;
      bool found = res.status == OpStatus::kOk && ParseMetaValue(res.buf, *res.reply, &v);
      self->primary_->NoteWarmupLookup(found);
      if (found) WriteBack(self->primary_, self->hash_, self->r_->key_token(), self->r_->req.meta_base64, v,
                           self->r_->metrics);
      self->Finish(std::move(self->reply_));
    });
  }

  void Done(const OpResult& res) { Finish(std::string(res.buf.substr(0, res.reply->consumed))); }

  void Finish(std::string reply) {
    Outcome outcome = OutcomeOfLine(reply);
    if (r_->req.cmd == Command::kMetaGet && outcome == Outcome::kOk) outcome = Outcome::kHit;
    if (r_->req.noreply && IsMetaQuietSuppressed(r_->req.cmd, reply)) reply.clear();
    r_->Finish(std::move(reply), outcome);
  }

  RoutedPtr r_;
  uint32_t hash_ = 0;
  Member* primary_ = nullptr;
  std::string stripped_;   // the line without q, when the client asked for quiet mode
  std::string_view wire_;  // what members get: stripped_ or the client's bytes
  std::string reply_;
};

}  // namespace

void RouteMetaRead(const RoutedPtr& r) { std::make_shared<MetaReadJob>(r)->Start(); }

}  // namespace memha
