// Text retrieval (get/gets/gat/gats): each key is read from its primary with its own `mg` (so each value is
// proven to be that key's by the opaque it echoes); a member that fails moves only its keys to the backup;
// misses on a warming member are looked up on the backup and written back. Replies are memcached's VALUE blocks
// in the client's order.
//
// Memory: keys are fetched through a window sized by the largest value seen so far; when the request is next in
// line, values stream to the client as the keys before them complete; a value the client has no room for is
// dropped and read again once the request is next in line (only pure reads, and only when no later write of
// the same client could be seen by the re-read). So a client that asks for a lot and reads nothing holds at
// most its share of memory (docs/ARCHITECTURE.md, "Bounded memory").
#include <algorithm>
#include <charconv>
#include <cstring>
#include <memory>

#include "sidecar/protocol/compose.h"
#include "sidecar/router/context.h"
#include "sidecar/router/meta_value.h"

namespace memha {
namespace {

using protocol::Command;

constexpr size_t kMaxWindow = 64;      // keys in flight per request at most
constexpr size_t kFirstEstimate = 1024;
constexpr std::string_view kEnd = "END\r\n";

// The `mg` of one key is composed here and copied into the member connection's output at once: one buffer for
// every key of every request instead of a heap string per key. Large capacities are not kept.
std::string& WireScratch() {
  thread_local std::string scratch;
  if (scratch.capacity() > 4096) std::string().swap(scratch);
  return scratch;
}

// The value of a VA reply followed by its "\r\n", as both lie in the member's read buffer (ParseReply checked
// the terminator); empty if they do not (the block is then built instead).
std::string_view DataWithCrlf(const MetaValue& v) {
  const char* end = v.data.data() + v.data.size();
  if (end[0] != '\r' || end[1] != '\n') return {};
  return std::string_view(v.data.data(), v.data.size() + 2);
}

class RetrievalJob : public Resumable, public std::enable_shared_from_this<RetrievalJob> {
 public:
  explicit RetrievalJob(RoutedPtr r) : r_(std::move(r)) {}

  void Start() {
    if (ReplySink* s = sink()) estimate_ = std::max(estimate_, s->ReplyEstimate());
    const Pool& pool = *r_->pool;
    const size_t n = r_->req.keys.size();
    keys_.resize(n);
    for (uint32_t i = 0; i < n; ++i) {
      KeyResult& k = keys_[i];
      k.key = r_->key(i);
      k.hash = pool.Hash(k.key);
      k.primary = pool.PrimaryFor(k.hash);
    }
    Pump();
  }

  void Resume() override {
    for (uint32_t i : refetch_) keys_[i].state = State::kUnsent;
    next_send_ = refetch_.empty() ? next_send_ : std::min<size_t>(next_send_, refetch_.front());
    refetch_.clear();
    Pump();
  }

 private:
  enum class State : uint8_t { kUnsent, kPending, kHit, kMiss, kError, kDeferred };
  struct KeyResult {
    std::string_view key;
    uint32_t hash = 0;
    Member* primary = nullptr;
    State state = State::kUnsent;
    size_t reserved = 0;  // room reserved for its reply while in flight
    uint64_t fill_cas = 0;  // the warm-up placeholder this request's read made on the primary (meta_value.h),
                            // or the CAS of a suspect copy of a moved key (pool.h, RingChange)
    bool moved = false;     // a topology change moved the key onto its primary
    bool streamed = false;  // its block went straight to the client (not held in `block`)
    std::string block;    // "VALUE ...\r\n<data>\r\n"
  };

  // A request's keys; a single-key request (most gets) keeps its one key inside the job.
  class KeyList {
   public:
    void resize(size_t n) {
      n_ = n;
      if (n > 1) more_ = std::make_unique<KeyResult[]>(n);
    }
    size_t size() const { return n_; }
    KeyResult& operator[](size_t i) { return data()[i]; }
    const KeyResult& operator[](size_t i) const { return data()[i]; }
    KeyResult* begin() { return data(); }
    KeyResult* end() { return data() + n_; }
    const KeyResult* begin() const { return data(); }
    const KeyResult* end() const { return data() + n_; }

   private:
    KeyResult* data() { return more_ ? more_.get() : &one_; }
    const KeyResult* data() const { return more_ ? more_.get() : &one_; }
    size_t n_ = 0;
    KeyResult one_;
    std::unique_ptr<KeyResult[]> more_;
  };

  bool WantsCas() const { return r_->req.cmd == Command::kGets || r_->req.cmd == Command::kGats; }
  bool Touches() const { return r_->req.cmd == Command::kGat || r_->req.cmd == Command::kGats; }
  ReplySink* sink() const { return r_->slot->sink; }

  // Whether one more key may be fetched now: the request's first key always may (its reservation was made
  // when the client sent it); further ones need room in the client's share and the sidecar's total.
  bool MayFetch() const {
    ReplySink* s = sink();
    if (s == nullptr) return false;  // the client is gone: fetch nothing more for it
    if (!refetch_.empty() || s->Backlogged() || in_flight_ >= kMaxWindow) return false;
    return in_flight_ == 0 || s->RoomToFetch(estimate_);
  }

  // Sends keys in order while the window has room and the client can take more.
  void Pump() {
    auto self = shared_from_this();  // a key answered synchronously must not end the job mid-loop
    ++busy_;
    while (next_send_ < keys_.size() && MayFetch()) {
      uint32_t i = static_cast<uint32_t>(next_send_++);
      if (keys_[i].state != State::kUnsent) continue;
      if (in_flight_ > 0 && sink() != nullptr) {
        keys_[i].reserved = estimate_;
        sink()->Reserve(static_cast<int64_t>(estimate_));
      }
      SendKey(i);
    }
    --busy_;
    // Keys still to send hold back the client's later requests: none may reach a member before them.
    bool unsent = next_send_ < keys_.size() || !refetch_.empty();
    if (ReplySink* s = sink(); s != nullptr && unsent != barrier_) {
      barrier_ = unsent;
      s->OrderBarrier(unsent ? 1 : -1);
    }
    Advance();
  }

  void SendKey(uint32_t i) {
    KeyResult& k = keys_[i];
    k.state = State::kPending;
    ++in_flight_;
    if (!k.primary->Usable()) return LookupOnBackup(i, /*fill=*/false, OpStatus::kMemberDown);
    std::string& wire = WireScratch();
    protocol::ComposeGet(&wire, k.key, WantsCas(), Touches(), r_->req.exptime);
    k.moved = r_->pool->Moved(k.hash, k.primary->name());
    bool fillable = Fillable(k);
    if ((fillable || k.moved) && !WantsCas()) wire.append(" c");  // a moved key's copy is judged by its CAS
    if (fillable) {  // a miss leaves a placeholder that only this read's fill replaces
      wire.append(" N");
      protocol::AppendDecimal(&wire, kPlaceholderTtl);
    }
    k.primary->SendMeta(k.hash, wire, [self = shared_from_this(), i](const OpResult& res) { self->OnPrimary(i, res); });
  }

  bool WarmEligible(Member* primary, uint32_t hash) const {
    if (!r_->pool->spec.warmup || !primary->Warming()) return false;
    Member* b = r_->pool->BackupFor(hash);
    return b != nullptr && b->Usable();
  }

  // A miss may be filled from the backup: the primary warms, or the key moved onto it (pool.h, RingChange).
  bool Fillable(const KeyResult& k) const {
    if (WarmEligible(k.primary, k.hash)) return true;
    if (!k.moved || !r_->pool->spec.warmup) return false;
    Member* b = r_->pool->BackupFor(k.hash);
    return b != nullptr && b->Usable();
  }

  void Done(uint32_t i, State s) {
    keys_[i].state = s;
    if (keys_[i].reserved > 0) {
      if (ReplySink* sk = sink()) sk->Reserve(-static_cast<int64_t>(keys_[i].reserved));
      keys_[i].reserved = 0;
    }
    --in_flight_;
    if (busy_ == 0) Pump();  // else the Pump on the stack goes on (no recursion per key)
  }

  void SetHit(uint32_t i, const MetaValue& v) {
    KeyResult& k = keys_[i];
    if (sink() == nullptr) return Done(i, State::kMiss);  // the client is gone: hold nothing for it
    size_t size = k.key.size() + v.data.size() + 48;
    estimate_ = std::max(estimate_, size);
    ReplySink* s = sink();
    // The next block due of a request that is next in line goes out at once; any other is held only if the
    // client has room for it, or dropped to be read again later.
    bool streams_now = s != nullptr && i == next_emit_ && s->IsNext(r_->slot);
    if (s != nullptr && !streams_now && !s->CanHold(r_->slot, size) && s->DeferAllowed(r_->slot)) {
      refetch_.push_back(i);
      std::sort(refetch_.begin(), refetch_.end());
      r_->metrics->replies_deferred().Increment();
      return Done(i, State::kDeferred);
    }
    // "VALUE <key> <flags> <bytes>[ <cas>]\r\n": a key is at most 250 bytes, each number at most 20 digits.
    char head[320];
    char* p = head;
    auto put = [&p](std::string_view t) {
      std::memcpy(p, t.data(), t.size());
      p += t.size();
    };
    put("VALUE ");
    put(k.key.substr(0, 250));
    *p++ = ' ';
    p = std::to_chars(p, p + 20, v.flags).ptr;
    *p++ = ' ';
    p = std::to_chars(p, p + 20, v.data.size()).ptr;
    if (WantsCas()) {
      *p++ = ' ';
      p = std::to_chars(p, p + 20, v.cas).ptr;
    }
    *p++ = '\r';
    *p++ = '\n';
    std::string_view header(head, static_cast<size_t>(p - head));
    // Next in line: straight from the member's read buffer to the client's output (no copy held here); the
    // client's one write per loop pass takes it together with whatever follows.
    std::string_view body = streams_now ? DataWithCrlf(v) : std::string_view();
    if (!body.empty() && s->StreamPart(r_->slot, header)) {
      s->StreamPart(r_->slot, body);  // next in line still: cannot fail
      k.streamed = true;
      ++hits_;
      ++next_emit_;
      return Done(i, State::kHit);
    }
    // Held until its turn; room for the END of a request whose last block it is.
    k.block.reserve(header.size() + v.data.size() + 2 + kEnd.size());
    k.block.assign(header).append(v.data).append("\r\n");
    Charge(static_cast<int64_t>(k.block.size()));
    Done(i, State::kHit);
  }

  void OnPrimary(uint32_t i, const OpResult& res) {
    KeyResult& k = keys_[i];
    if (res.status != OpStatus::kOk) return LookupOnBackup(i, false, res.status);
    const protocol::Reply& reply = *res.reply;
    if (k.primary->Warming()) k.primary->NoteWarmupRead();
    MetaValue v;
    if (reply.error) {
      if (first_error_.empty()) first_error_.assign(reply.line.in(res.buf)).append("\r\n");
      return Done(i, State::kError);
    }
    if (ParseMetaValue(res.buf, reply, &v)) {
      if (!k.moved || !r_->pool->SuspectCopy(k.hash, k.primary->name(), v.cas)) return SetHit(i, v);
      // A copy from before the key moved here: the backup's value replaces it (ms C<its CAS>), or, if the
      // backup has none, it is deleted (md C<its CAS>); a write that reached it since wins either way.
      r_->metrics->moved_key_checks().Increment();
      k.fill_cas = v.cas;
      if (Fillable(k)) return LookupOnBackup(i, /*fill=*/true, OpStatus::kOk);
      DropPlaceholder(k.primary, k.hash, k.key, /*base64=*/false, k.fill_cas);
      return Done(i, State::kMiss);
    }
    k.fill_cas = v.won ? v.cas : 0;
    if (Fillable(k)) return LookupOnBackup(i, /*fill=*/true, OpStatus::kOk);
    if (k.fill_cas != 0) DropPlaceholder(k.primary, k.hash, k.key, /*base64=*/false, k.fill_cas);
    Done(i, State::kMiss);
  }

  void LookupOnBackup(uint32_t i, bool fill, OpStatus why) {
    KeyResult& k = keys_[i];
    Member* b = r_->pool->BackupFor(k.hash);
    if (b == nullptr || !b->Usable()) {
      if (fill) DropPlaceholder(k.primary, k.hash, k.key, /*base64=*/false, k.fill_cas);
      return Done(i, fill ? State::kMiss : State::kError);
    }
    if (fill) {
      r_->metrics->warmup_lookups().Increment();
    } else {
      r_->pool->CountFailover(why);
    }
    std::string& wire = WireScratch();
    protocol::ComposeGet(&wire, k.key, WantsCas(), Touches(), r_->req.exptime);
    wire.append(" t");
    b->SendMeta(k.hash, wire, [self = shared_from_this(), i, fill](const OpResult& res) {
      self->OnBackupReply(i, fill, res);
    });
  }

  void OnBackupReply(uint32_t i, bool fill, const OpResult& res) {
    KeyResult& k = keys_[i];
    MetaValue v;
    if (res.status != OpStatus::kOk || res.reply->error || !ParseMetaValue(res.buf, *res.reply, &v)) {
      if (fill) {
        if (res.status == OpStatus::kOk) k.primary->NoteWarmupLookup(false);
        DropPlaceholder(k.primary, k.hash, k.key, /*base64=*/false, k.fill_cas);
      }
      bool failed = res.status != OpStatus::kOk || res.reply->error;
      return Done(i, failed && !fill ? State::kError : State::kMiss);
    }
    if (fill) {
      k.primary->NoteWarmupLookup(true);
      WriteBack(k.primary, k.hash, k.key, /*base64=*/false, v, k.fill_cas, r_->metrics);
    }
    SetHit(i, v);
  }

  void Charge(int64_t delta) {
    held_ += delta;
    if (ReplySink* s = sink()) s->Charge(delta);
  }

  // Streams the completed prefix when the request is next in line; finishes or parks when nothing is in flight.
  void Advance() {
    if (busy_ > 0 || finished_) return;
    ReplySink* s = sink();
    // Streaming is for requests still in progress: a finished one goes out whole (one write with its END).
    const bool done = in_flight_ == 0 && next_send_ >= keys_.size() && refetch_.empty();
    while (!done && next_emit_ < keys_.size()) {
      KeyResult& k = keys_[next_emit_];
      if (k.state == State::kUnsent || k.state == State::kPending || k.state == State::kDeferred) break;
      if (k.state == State::kHit && !k.streamed) {
        if (s == nullptr || !s->StreamPart(r_->slot, k.block)) break;
        ++hits_;
        Charge(-static_cast<int64_t>(k.block.size()));
        std::string().swap(k.block);
      }
      ++next_emit_;
    }
    if (in_flight_ > 0) return;
    if (next_emit_ < keys_.size() && (!refetch_.empty() || next_send_ < keys_.size())) {
      if (s == nullptr) {  // the client is gone: nobody to wait for
        finished_ = true;
        return;
      }
      s->ResumeAtHead(r_->slot, shared_from_this());  // more to fetch once the client has room
      return;
    }
    Finish();
  }

  void Finish() {
    finished_ = true;
    if (barrier_) {
      barrier_ = false;
      if (ReplySink* s = sink()) s->OrderBarrier(-1);
    }
    auto seconds = std::chrono::duration<double>(Clock::now() - r_->start).count();
    size_t errors = 0, bytes = 5;
    for (const KeyResult& k : keys_) {
      Outcome o = k.state == State::kHit ? Outcome::kHit : k.state == State::kError ? Outcome::kServerError
                                                                                     : Outcome::kMiss;
      r_->metrics->Request(r_->req.cmd, o, seconds);
      hits_ += k.state == State::kHit && !k.block.empty();
      errors += k.state == State::kError;
      bytes += k.block.size();
    }
    Charge(-held_);
    if (errors == keys_.size()) {
      return r_->Finish(first_error_.empty() ? std::string(kNoMember) : first_error_, Outcome::kServerError);
    }
    const Outcome outcome = hits_ ? Outcome::kHit : Outcome::kMiss;
    size_t held = 0, last = keys_.size();
    for (size_t i = next_emit_; i < keys_.size(); ++i) {
      if (!keys_[i].block.empty()) ++held, last = i;
    }
    if (held == 0) return r_->FinishWith(kEnd, outcome);  // everything streamed, or all misses
    if (held == 1) {  // one block (a single-key get): it becomes the reply, END appended in its reserved room
      std::string out = std::move(keys_[last].block);
      out.append(kEnd);
      return r_->Finish(std::move(out), outcome);
    }
    std::string out;
    out.reserve(bytes);
    for (size_t i = next_emit_; i < keys_.size(); ++i) out += keys_[i].block;
    out.append(kEnd);
    r_->Finish(std::move(out), outcome);
  }

  RoutedPtr r_;
  KeyList keys_;
  size_t next_send_ = 0;
  size_t next_emit_ = 0;
  size_t in_flight_ = 0;
  size_t estimate_ = kFirstEstimate;  // the largest value block seen: sizes the window
  std::vector<uint32_t> refetch_;     // dropped for lack of room; read again when the request is next in line
  int64_t held_ = 0;                  // bytes of blocks held, charged to the client
  size_t hits_ = 0;
  int busy_ = 0;
  bool barrier_ = false;  // holding the client's later requests back
  bool finished_ = false;
  std::string first_error_;
};

}  // namespace

void RouteRetrieval(const RoutedPtr& r) { std::make_shared<RetrievalJob>(r)->Start(); }

}  // namespace memha
