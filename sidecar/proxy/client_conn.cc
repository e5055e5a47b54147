#include "sidecar/proxy/client_conn.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

#include "common/log.h"
#include "sidecar/protocol/compose.h"
#include "sidecar/proxy/proxy.h"

namespace memha {

using protocol::Command;

namespace {
constexpr size_t kMaxIov = 64;
constexpr size_t kKeepOutCapacity = 4096;  // an idle client keeps at most this much
constexpr size_t kFirstEstimate = 256 * 1024;  // until a client's replies were seen: 16 requests in 4 MiB
constexpr size_t kMinEstimate = 512;
constexpr size_t kBacklog = 64 * 1024;
}  // namespace

ClientConn::ClientConn(Proxy* proxy, std::string pool_name, evutil_socket_t fd)
    : proxy_(proxy), pool_name_(std::move(pool_name)), fd_(fd), estimate_(kFirstEstimate) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  evutil_make_socket_nonblocking(fd);
  read_event_.reset(event_new(proxy_->base(), fd, EV_READ | EV_PERSIST, &ReadCb, this));
  write_event_.reset(event_new(proxy_->base(), fd, EV_WRITE | EV_PERSIST, &WriteCb, this));
  event_add(read_event_.get(), nullptr);
}

ClientConn::~ClientConn() {
  proxy_->flush_queue().Remove(this);
  proxy_->AdjustBuffered(-static_cast<int64_t>(Held()));
  proxy_->AdjustReserved(-static_cast<int64_t>(reserved_ + fetch_reserved_));
  for (auto& slot : slots_) {  // in-flight requests finish into nothing
    slot->sink = nullptr;
    slot->waiting.reset();
  }
  read_event_.reset();
  write_event_.reset();
  if (fd_ >= 0) evutil_closesocket(fd_);
}

void ClientConn::ReadCb(evutil_socket_t, short, void* arg) { static_cast<ClientConn*>(arg)->OnReadable(); }

void ClientConn::WriteCb(evutil_socket_t, short, void* arg) { static_cast<ClientConn*>(arg)->FlushOutput(); }

void ClientConn::Close() {
  if (closed_) return;
  closed_ = true;
  event_del(read_event_.get());
  event_del(write_event_.get());
  proxy_->flush_queue().Remove(this);
  proxy_->RemoveClient(this);  // deferred delete
}

void ClientConn::CloseWhenIdle() {
  closing_ = true;
  PauseReading();
  if (slots_.empty() && out_.empty()) Close();
}

bool ClientConn::OverLimits() const {
  const Tunables& t = proxy_->tunables();
  if (barriers_ > 0 || slots_.size() >= t.client_max_pending || Held() >= t.client_max_buffer || Backlogged()) {
    return true;
  }
  if (in_flight_ == 0) return false;  // one request in flight is always allowed: every client makes progress
  return (in_flight_ + 1) * estimate_ + Held() > t.client_max_buffer ||
         proxy_->reserved() + proxy_->buffered() + estimate_ > t.total_max_buffer;
}

void ClientConn::OrderBarrier(int delta) {
  barriers_ += delta;
  if (barriers_ == 0) proxy_->flush_queue().Add(this);  // FlushOutput resumes reading
}

bool ClientConn::RoomToFetch(size_t bytes) const {
  const Tunables& t = proxy_->tunables();
  return Held() + fetch_reserved_ + bytes <= t.client_max_buffer &&
         proxy_->reserved() + proxy_->buffered() + bytes <= t.total_max_buffer;
}

void ClientConn::Reserve(int64_t delta) {
  fetch_reserved_ = static_cast<size_t>(static_cast<int64_t>(fetch_reserved_) + delta);
  proxy_->AdjustReserved(delta);
}

void ClientConn::ObserveReply(size_t bytes) {
  if (bytes > estimate_) {
    estimate_ = bytes;
  } else {
    estimate_ -= (estimate_ - bytes) / 16;
  }
  estimate_ = std::max(estimate_, kMinEstimate);
  UpdateReserved();
}

void ClientConn::UpdateReserved() {
  size_t now = in_flight_ * estimate_;
  proxy_->AdjustReserved(static_cast<int64_t>(now) - static_cast<int64_t>(reserved_));
  reserved_ = now;
}

void ClientConn::Account(int64_t delta) { proxy_->AdjustBuffered(delta); }

void ClientConn::OutAppend(std::string_view bytes) {
  out_.Append(bytes);
  Account(static_cast<int64_t>(bytes.size()));
}

void ClientConn::OutConsume(size_t n) {
  out_.Consume(n);
  Account(-static_cast<int64_t>(n));
}

bool ClientConn::IsNext(const ReplySlot* slot) const {
  return !closed_ && !slots_.empty() && slots_.front().get() == slot;
}

bool ClientConn::CanHold(const ReplySlot*, size_t bytes) const {
  const Tunables& t = proxy_->tunables();
  return Held() + bytes <= t.client_max_buffer && proxy_->buffered() + bytes <= t.total_max_buffer;
}

bool ClientConn::DeferAllowed(const ReplySlot* slot) const {
  return slot->deferrable && !IsNext(slot) && last_write_seq_ < slot->seq;
}

// The client does not keep up: its socket is full and this much is waiting. Nothing more is fetched for it (and
// nothing read from it) until it reads.
bool ClientConn::Backlogged() const { return out_.size() >= kBacklog; }

void ClientConn::Charge(int64_t delta) {
  job_bytes_ = static_cast<size_t>(static_cast<int64_t>(job_bytes_) + delta);
  Account(delta);
}

bool ClientConn::StreamPart(ReplySlot* slot, std::string_view bytes) {
  if (!IsNext(slot) || slot->close_after) return false;
  OutAppend(bytes);
  // A part can only raise the estimate: small parts (a block's header) would pull it below the reply's size.
  if (bytes.size() >= kMinEstimate) ObserveReply(bytes.size());
  proxy_->flush_queue().Add(this);
  return true;
}

void ClientConn::ResumeAtHead(ReplySlot* slot, std::shared_ptr<Resumable> job) {
  slot->waiting = std::move(job);
  if (IsNext(slot)) proxy_->flush_queue().Add(this);  // resumed from FlushOutput, never from inside the job
}

void ClientConn::ResumeHeadIfWaiting() {
  if (closed_ || slots_.empty() || !slots_.front()->waiting || Backlogged()) return;
  std::shared_ptr<Resumable> job = std::move(slots_.front()->waiting);
  job->Resume();
}

void ClientConn::PopFront() {
  ReplySlot& front = *slots_.front();
  if (front.ready) slot_bytes_ -= front.out.size(), Account(-static_cast<int64_t>(front.out.size()));
  if (front.in_flight) {
    front.in_flight = false;
    --in_flight_;
    UpdateReserved();
  }
  front.sink = nullptr;
  front.waiting.reset();
  slots_.pop_front();
}

void ClientConn::PauseReading() {
  if (paused_) return;
  paused_ = true;
  event_del(read_event_.get());
}

void ClientConn::ResumeReading() {
  if (!paused_ || closing_ || closed_) return;
  paused_ = false;
  event_add(read_event_.get(), nullptr);
  ProcessBuffered();
}

void ClientConn::OnReadable() {
  if (closed_ || paused_) return;
  const Tunables& t = proxy_->tunables();
  const size_t cap = t.client_max_buffer + t.max_value + 4096;
  // Read into the connection's own buffer only when it already holds part of a request; otherwise into the
  // loop's shared buffer, and keep just the unparsed tail.
  if (in_.empty() && swallow_ == 0) {
    IoBuffer& scratch = proxy_->read_scratch();
    char* p = scratch.Reserve(64 * 1024);
    ssize_t n = read(fd_, p, 64 * 1024);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return Close();
    if (n < 0) return;
    std::string_view bytes(p, static_cast<size_t>(n));
    size_t used = ProcessBytes(bytes);
    if (used < bytes.size() && !closed_) in_.Append(bytes.substr(used));
    return;
  }
  size_t room = in_.size() < cap ? std::min<size_t>(cap - in_.size(), 64 * 1024) : 0;
  if (room == 0) return PauseReading();  // the parser would have cut an over-long line; defensive
  char* p = in_.Reserve(room);
  ssize_t n = read(fd_, p, room);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return Close();
  if (n < 0) return;
  in_.Commit(static_cast<size_t>(n));
  ProcessBuffered();
}

void ClientConn::ProcessBuffered() {
  if (in_.empty()) return;
  size_t used = ProcessBytes(in_.view());
  if (!closed_) in_.Consume(used);
  if (in_.empty() && in_.capacity() > IoBuffer::kKeepCapacity) in_.Release();
}

size_t ClientConn::ProcessBytes(std::string_view in) {
  if (in_process_ || closed_) return 0;
  in_process_ = true;
  const protocol::Limits& limits = proxy_->limits();
  size_t pos = 0;
  while (!closing_ && !closed_) {
    size_t len = in.size() - pos;
    if (swallow_ > 0) {
      size_t n = std::min(len, swallow_);
      pos += n;
      swallow_ -= n;
      if (swallow_ > 0) break;
      continue;
    }
    if (len == 0 || len < need_) break;
    if (OverLimits()) {
      PauseReading();
      break;
    }
    protocol::Request req;
    std::string_view rest = in.substr(pos);
    protocol::ParseResult res = protocol::ParseRequest(rest, limits, &req);
    if (res.status == protocol::ParseStatus::kNeedMore) {
      need_ = res.need;
      break;
    }
    need_ = 0;
    if (res.status == protocol::ParseStatus::kError) {
      proxy_->metrics().ClientProtocolError();
      if (res.error.too_large && (req.cmd == Command::kSet || req.cmd == Command::kMetaSet)) {
        // memcached unlinks the key of a set whose value is too large: the old value must not stay readable.
        std::string raw = protocol::ComposeDelete(req.keys[0].in(rest), req.meta_base64) + "\r\n";
        protocol::Request del;
        if (protocol::ParseRequest(raw, limits, &del).status == protocol::ParseStatus::kOk) {
          pos += res.error.consume;
          swallow_ = res.error.swallow;
          Dispatch(raw, std::move(del), std::move(res.error.reply));
          continue;
        }
      }
      auto slot = NewSlot();
      slot->out = std::move(res.error.reply);
      slot->close_after = res.error.close;
      pos += res.error.consume;
      swallow_ = res.error.swallow;
      slot->Complete();
      if (res.error.close) {  // nothing after it is read, as memcached reads nothing after it
        closing_ = true;
        PauseReading();
        pos = in.size();
      }
      continue;
    }
    size_t consumed = req.consumed;
    Dispatch(rest.substr(0, consumed), std::move(req));
    pos += consumed;
  }
  in_process_ = false;
  return pos;
}

void ClientConn::AddSlot(std::shared_ptr<ReplySlot> slot) {
  slot->sink = this;
  slot->seq = next_seq_++;
  slots_.push_back(std::move(slot));
}

ReplySlot* ClientConn::NewSlot() {
  AddSlot(std::make_shared<ReplySlot>());
  return slots_.back().get();
}

void ClientConn::SlotReady(ReplySlot* slot) {
  if (slot->in_flight) {
    slot->in_flight = false;
    --in_flight_;
    ObserveReply(slot->out.size());
  }
  slot_bytes_ += slot->out.size();
  Account(static_cast<int64_t>(slot->out.size()));
  if (!closed_ && !slots_.empty() && slots_.front()->ready) proxy_->flush_queue().Add(this);
}

bool ClientConn::TakeReply(ReplySlot* slot, std::string_view bytes) {
  // Only the next reply due may skip its copy: everything before it has been written or sits in out_.
  if (closed_ || slots_.empty() || slots_.front().get() != slot || slot->close_after) return false;
  OutAppend(bytes);
  if (slot->in_flight) {
    slot->in_flight = false;
    --in_flight_;
    ObserveReply(bytes.size());
  }
  return true;
}

void ClientConn::FlushOutput() {
  if (closed_) return;
  // One writev per pass: bytes a short write left behind (or streamed parts) first, then every ready reply.
  for (;;) {
    iovec iov[kMaxIov];
    size_t count = 0, total = 0, nslots = 0;
    const size_t pending = out_.size();
    if (pending > 0) {
      iov[count++] = iovec{const_cast<char*>(out_.view().data()), pending};
      total += pending;
    }
    for (auto it = slots_.begin(); it != slots_.end() && (*it)->ready && count < kMaxIov; ++it) {
      ++nslots;
      const std::string& s = (*it)->out;
      if (!s.empty()) {
        iov[count++] = iovec{const_cast<char*>(s.data()), s.size()};
        total += s.size();
      }
      if ((*it)->close_after) break;
    }
    if (count == 0 && nslots == 0) break;
    ssize_t n = 0;
    if (count > 0) {
      n = count == 1 ? write(fd_, iov[0].iov_base, iov[0].iov_len) : writev(fd_, iov, static_cast<int>(count));
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return Close();
      if (n < 0) n = 0;
    }
    size_t written = static_cast<size_t>(n);
    const size_t from_out = std::min(written, pending);
    if (from_out > 0) OutConsume(from_out);
    written -= from_out;
    bool stop = from_out < pending;  // out_ still has bytes: no slot went out
    // Pop what was written. A slot cut by a short write leaves its tail in out_ (sent first next time).
    for (size_t i = 0; i < nslots && !stop; ++i) {
      ReplySlot& front = *slots_.front();
      if (written < front.out.size()) {
        if (written == 0) break;  // none of this slot went out: it stays queued
        OutAppend(std::string_view(front.out).substr(written));
        written = 0;
        stop = true;
      } else {
        written -= front.out.size();
      }
      bool close_after = front.close_after;
      PopFront();
      if (close_after) {
        closing_ = true;
        PauseReading();
        while (!slots_.empty()) PopFront();
        break;
      }
    }
    if (static_cast<size_t>(n) < total) break;  // the socket is full
  }
  if (out_.empty()) {
    if (out_.capacity() > kKeepOutCapacity) out_.Release();
    if (write_armed_) {
      write_armed_ = false;
      event_del(write_event_.get());
    }
  } else if (!write_armed_) {
    write_armed_ = true;
    event_add(write_event_.get(), nullptr);
  }
  if (closing_ && slots_.empty() && out_.empty()) return Close();
  ResumeHeadIfWaiting();
  if (paused_ && !closing_ && !in_process_ && !OverLimits()) ResumeReading();
}

void ClientConn::Dispatch(std::string_view raw, protocol::Request&& req, std::optional<std::string> reply_override) {
  auto local = [&](std::string out) {
    ReplySlot* slot = NewSlot();
    proxy_->metrics().Request(req.cmd, Outcome::kOk, 0);
    slot->out = std::move(out);
    slot->close_after = req.cmd == Command::kQuit;
    slot->Complete();
  };
  switch (req.cmd) {
    case Command::kQuit:
      return local("");
    case Command::kVersion:
      return local("VERSION " + std::string(Proxy::kVersionString) + "\r\n");
    case Command::kVerbosity:
      return local(req.noreply ? "" : "OK\r\n");
    case Command::kMetaNoop:
      return local("MN\r\n");
    case Command::kStats:
      return local(proxy_->StatsText(pool_name_));
    default:
      break;
  }
  if (pool_generation_ != proxy_->pools_generation()) {
    pool_slot_ = proxy_->CurrentPoolSlot(pool_name_);
    pool_generation_ = proxy_->pools_generation();
  }
  PoolPtr pool = pool_slot_ ? *pool_slot_ : nullptr;
  if (!pool) {
    ReplySlot* slot = NewSlot();
    proxy_->metrics().Request(req.cmd, Outcome::kServerError, 0);
    slot->out = "SERVER_ERROR memha: pool " + pool_name_ + " is not in the current topology\r\n";
    slot->Complete();
    return;
  }
  auto r = std::make_shared<RoutedRequest>();
  r->raw.assign(raw);
  r->req = std::move(req);
  r->pool = std::move(pool);
  r->start = Clock::now();
  r->metrics = &proxy_->metrics();
  r->tunables = &proxy_->tunables();
  r->reply_override = std::move(reply_override);
  AddSlot(std::shared_ptr<ReplySlot>(r, &r->slot_storage));  // one allocation for request and slot
  r->slot_storage.in_flight = true;
  ++in_flight_;
  UpdateReserved();
  switch (r->req.cmd) {
    case Command::kGet: case Command::kGets: case Command::kGat: case Command::kGats: case Command::kMetaDebug:
      r->slot_storage.deferrable = true;
      break;
    case Command::kMetaGet: {  // unless it changes the item (N vivifies, T touches, R can win a token)
      bool pure = true;
      for (uint8_t i = 0; i < r->req.nflags; ++i) {
        char f = protocol::FlagChar(r->req.flags[i], r->raw);
        pure = pure && f != 'N' && f != 'R' && f != 'T';
      }
      r->slot_storage.deferrable = pure;
      if (!pure) last_write_seq_ = r->slot_storage.seq;
      break;
    }
    default:
      last_write_seq_ = r->slot_storage.seq;
      break;
  }
  Route(r);
}

}  // namespace memha
