#include "sidecar/router/replicate.h"

#include <charconv>
#include <memory>

#include "sidecar/protocol/compose.h"
#include "sidecar/router/meta_value.h"

namespace memha {
namespace {

constexpr int kMaxCopies = 3;  // re-copies after a newer write overtook; then the key is deleted on the backup

class MirrorJob : public std::enable_shared_from_this<MirrorJob> {
 public:
  explicit MirrorJob(MirrorTask t) : t_(std::move(t)) {}

  void Start() {
    ++t_.backup->mirror_in_flight;
    t_.metrics->mirror_queue_depth().Increment();
    if (t_.line.empty()) return Copy();
    Write(t_.line, t_.body, t_.primary_cas);
  }

 private:
  void Write(std::string_view line, std::string_view body, uint64_t cas) {
    if (!t_.backup->Usable()) return Missed();
    auto self = shared_from_this();
    t_.backup->Send(t_.hash, protocol::MemberWire{line, body}, protocol::ReplyKind::kMeta,
                    [self, cas](const OpResult& res) {
                      if (res.status != OpStatus::kOk) return self->Missed();
                      if (res.reply->error || res.reply->code(res.buf) != "HD") {
                        // e.g. the backup's item size limit or memory: its older value must not stay
                        self->t_.metrics->mirror_failed().Increment();
                        return self->Invalidate();
                      }
                      self->Stored(true);
                      self->Verify(cas);
                    });
  }

  // The primary still holds the value this mirror copied: nothing newer can be overtaken by it. Asked at the next
  // tick (RunDeferredVerifies), so the proofs of a tick's mirrors leave in one write per primary connection and
  // the primary reads them in one pass, instead of a system call and a wake-up on both sides per write.
  void Verify(uint64_t cas) {
    verify_cas_ = cas;
    DeferredVerifies().push_back(shared_from_this());
  }

 public:
  static std::vector<std::shared_ptr<MirrorJob>>& DeferredVerifies() {
    static thread_local std::vector<std::shared_ptr<MirrorJob>> jobs;
    return jobs;
  }

  void VerifyNow() {
    uint64_t cas = verify_cas_;
    if (!t_.primary->Usable()) return Invalidate();
    std::string line("mg ");
    line.append(t_.key_token);
    if (t_.base64) line.append(" b");
    line.append(" c");
    auto self = shared_from_this();
    t_.primary->SendMeta(t_.hash, line, [self, cas](const OpResult& res) {
      if (res.status != OpStatus::kOk || res.reply->error) return self->Invalidate();
      std::string_view l = res.reply->line.in(res.buf);
      if (l.substr(0, 2) == "HD" && cas != 0 && CasOfLine(l) == cas) {
        self->t_.metrics->mirror_verified().Increment();
        return self->Finish();
      }
      self->t_.metrics->mirror_recopied().Increment();
      self->Copy();
    });
  }


 private:
  // Copies the primary's current value (and its CAS) to the backup, or deletes the key there if it has none.
  void Copy() {
    if (++copies_ > kMaxCopies || !t_.primary->Usable()) return Invalidate();
    std::string line = protocol::ComposeValueRead(t_.key_token, t_.base64);
    line.append(" c");
    auto self = shared_from_this();
    t_.primary->SendMeta(t_.hash, line, [self](const OpResult& res) {
      if (res.status != OpStatus::kOk || res.reply->error) return self->Invalidate();
      MetaValue v;
      if (!ParseMetaValue(res.buf, *res.reply, &v) || v.ttl == 0) return self->Invalidate();  // gone (or going)
      self->line_ = protocol::ComposeValueWrite(self->t_.key_token, self->t_.base64, v.data.size(), v.ttl, v.flags,
                                                /*add_only=*/false);
      self->body_.assign(v.data).append("\r\n");
      self->Write(self->line_, self->body_, v.cas);
    });
  }

  void Invalidate() {
    if (!t_.backup->Usable()) return Missed();
    t_.metrics->mirror_invalidated().Increment();
    std::string line = protocol::ComposeDelete(t_.key_token, t_.base64);
    auto self = shared_from_this();
    t_.backup->SendMeta(t_.hash, line, [self](const OpResult& res) {
      if (res.status != OpStatus::kOk || res.reply->error) return self->Missed();
      self->Stored(true);
      self->Finish();
    });
  }

  // The backup could not be brought in line: it is told to invalidate the key (now from the repair queue while
  // it is up, or when it returns).
  void Missed() {
    t_.metrics->mirror_failed().Increment();
    t_.backup->RecordRepair(t_.key);
    Stored(false);
    Finish();
  }

  void Stored(bool ok) {
    if (!t_.on_stored) return;
    auto cb = std::move(t_.on_stored);
    t_.on_stored = nullptr;
    cb(ok);
  }

  void Finish() {
    if (finished_) return;
    finished_ = true;
    --t_.backup->mirror_in_flight;
    t_.metrics->mirror_queue_depth().Decrement();
  }

  MirrorTask t_;
  uint64_t verify_cas_ = 0;
  int copies_ = 0;
  bool finished_ = false;
  std::string line_;  // a copy's write
  std::string body_;
};

class SettleJob : public std::enable_shared_from_this<SettleJob> {
 public:
  SettleJob(PoolPtr pool, Member* primary, uint32_t hash, std::string key_token, bool base64, Metrics* metrics,
            std::function<void()> then)
      : pool_(std::move(pool)), primary_(primary), hash_(hash), key_token_(std::move(key_token)), base64_(base64),
        metrics_(metrics), then_(std::move(then)) {}

  // `fill`: a miss may be filled from the backup (the probe makes a placeholder, meta_value.h).
  void Start(bool fill) {
    std::string line("mg ");
    line.append(key_token_);
    if (base64_) line.append(" b");
    line.append(" s c");
    if (fill) {
      line.append(" N");
      protocol::AppendDecimal(&line, kPlaceholderTtl);
    }
    auto self = shared_from_this();
    primary_->SendMeta(hash_, line, [self](const OpResult& res) {
      if (res.status != OpStatus::kOk || res.reply->error) return self->Done();  // the request itself fails over
      std::string_view l = res.reply->line.in(res.buf);
      if (l.substr(0, 2) != "HD") return self->Done();  // a miss without a placeholder: nothing to settle
      uint64_t cas = CasOfLine(l);
      bool win = false, sent = false, stale = false, empty = false;
      for (size_t i = 0; i < l.size();) {
        size_t end = std::min(l.find(' ', i), l.size());
        std::string_view tok = l.substr(i, end - i);
        win = win || tok == "W";
        sent = sent || tok == "Z";
        stale = stale || tok == "X";
        empty = empty || tok == "s0";
        i = end + 1;
      }
      if ((win || sent) && !stale && empty) {  // a placeholder: ours (W) is filled now, another's is left to it
        if (win) return self->FromBackup(cas);
        return self->Done();
      }
      if (!self->pool_->SuspectCopy(self->hash_, self->primary_->name(), cas)) return self->Done();
      self->metrics_->moved_key_checks().Increment();
      self->FromBackup(cas);
    });
  }

 private:
  void FromBackup(uint64_t cas) {
    Member* b = pool_->BackupFor(hash_);
    if (b == nullptr || !b->Usable()) return Replace(cas, nullptr);
    auto self = shared_from_this();
    b->SendMeta(hash_, protocol::ComposeValueRead(key_token_, base64_), [self, cas](const OpResult& res) {
      MetaValue v;
      bool found = res.status == OpStatus::kOk && !res.reply->error && ParseMetaValue(res.buf, *res.reply, &v);
      self->Replace(cas, found ? &v : nullptr);
    });
  }

  // The primary's suspect copy becomes the backup's value, or goes; the request follows on the same connection.
  void Replace(uint64_t cas, const MetaValue* v) {
    std::string line;
    std::string body;
    if (v != nullptr && v->ttl != 0) {
      line = protocol::ComposeValueWrite(key_token_, base64_, v->data.size(), v->ttl, v->flags, /*add_only=*/false);
      body.assign(v->data).append("\r\n");
    } else {
      line = protocol::ComposeDelete(key_token_, base64_);
    }
    line.append(" C");
    protocol::AppendDecimal(&line, cas);
    primary_->Send(hash_, protocol::MemberWire{line, body}, protocol::ReplyKind::kMeta, [](const OpResult&) {});
    Done();
  }

  void Done() {
    auto then = std::move(then_);
    then_ = nullptr;
    if (then) then();
  }

  PoolPtr pool_;
  Member* primary_;
  uint32_t hash_;
  std::string key_token_;
  bool base64_;
  Metrics* metrics_;
  std::function<void()> then_;
};

}  // namespace

namespace {
bool FillEligible(const PoolPtr& pool, Member* primary, uint32_t hash) {
  Member* b = pool->BackupFor(hash);
  return pool->spec.warmup && b != nullptr && b->Usable() && (primary->Warming() || pool->Moved(hash, primary->name()));
}
}  // namespace

bool SettleNeeded(const PoolPtr& pool, Member* primary, uint32_t hash) {
  return primary->Usable() && (FillEligible(pool, primary, hash) || pool->Moved(hash, primary->name()));
}

void SettleKey(const PoolPtr& pool, Member* primary, uint32_t hash, std::string key_token, bool base64,
               Metrics* metrics, std::function<void()> then) {
  if (!SettleNeeded(pool, primary, hash)) return then();
  bool fill = FillEligible(pool, primary, hash);
  std::make_shared<SettleJob>(pool, primary, hash, std::move(key_token), base64, metrics, std::move(then))
      ->Start(fill);
}

uint64_t CasOfLine(std::string_view line) {
  size_t i = 0;
  while (i < line.size()) {
    size_t end = line.find(' ', i);
    if (end == std::string_view::npos) end = line.size();
    if (i > 0 && end - i >= 2 && line[i] == 'c') {
      uint64_t cas = 0;
      auto [p, ec] = std::from_chars(line.data() + i + 1, line.data() + end, cas);
      if (ec == std::errc() && p == line.data() + end) return cas;
    }
    i = end + 1;
  }
  return 0;
}

void RunDeferredVerifies() {
  auto jobs = std::move(MirrorJob::DeferredVerifies());
  MirrorJob::DeferredVerifies().clear();
  for (auto& job : jobs) job->VerifyNow();
}

void DropDeferredVerifies() { MirrorJob::DeferredVerifies().clear(); }

void StartMirror(MirrorTask task) { std::make_shared<MirrorJob>(std::move(task))->Start(); }

void DrainRepairs(const PoolPtr& pool, Metrics* metrics, const Tunables* tunables) {
  for (const auto& b : pool->backup) {
    Member* backup = b.get();
    while (backup->HasRepairs() && backup->Usable() && backup->mirror_in_flight < tunables->mirror_queue_limit) {
      std::string key = backup->PopRepair();
      uint32_t hash = pool->Hash(key);
      if (pool->BackupFor(hash) != backup) continue;  // the topology moved the key to another backup member
      MirrorTask t;
      t.pool = pool;
      t.primary = pool->PrimaryFor(hash);
      t.backup = backup;
      t.hash = hash;
      t.key_token = Member::WireKey(key, &t.base64);
      t.key = std::move(key);
      t.metrics = metrics;
      t.tunables = tunables;
      metrics->repairs_done().Increment();
      StartMirror(std::move(t));
    }
  }
}

}  // namespace memha
