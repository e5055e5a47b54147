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
}  // namespace

ClientConn::ClientConn(Proxy* proxy, std::string pool_name, evutil_socket_t fd)
    : proxy_(proxy), pool_name_(std::move(pool_name)), fd_(fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  evutil_make_socket_nonblocking(fd);
  read_event_.reset(event_new(proxy_->base(), fd, EV_READ | EV_PERSIST, &ReadCb, this));
  write_event_.reset(event_new(proxy_->base(), fd, EV_WRITE | EV_PERSIST, &WriteCb, this));
  event_add(read_event_.get(), nullptr);
}

ClientConn::~ClientConn() {
  proxy_->flush_queue().Remove(this);
  for (auto& slot : slots_) slot->sink = nullptr;  // in-flight requests finish into nothing
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
  return slots_.size() >= t.client_max_pending || out_.size() >= t.client_max_buffer;
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
  slots_.push_back(std::move(slot));
}

ReplySlot* ClientConn::NewSlot() {
  AddSlot(std::make_shared<ReplySlot>());
  return slots_.back().get();
}

void ClientConn::SlotReady(ReplySlot*) {
  if (!closed_ && !slots_.empty() && slots_.front()->ready) proxy_->flush_queue().Add(this);
}

bool ClientConn::TakeReply(ReplySlot* slot, std::string_view bytes) {
  // Only the next reply due may skip its copy: everything before it has been written or sits in out_.
  if (closed_ || slots_.empty() || slots_.front().get() != slot || slot->close_after) return false;
  out_.Append(bytes);
  return true;
}

void ClientConn::FlushOutput() {
  if (closed_) return;
  // Bytes a short write left behind go first.
  if (!out_.empty()) {
    ssize_t n = write(fd_, out_.view().data(), out_.size());
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return Close();
    if (n > 0) out_.Consume(static_cast<size_t>(n));
  }
  while (out_.empty() && !slots_.empty() && slots_.front()->ready) {
    iovec iov[kMaxIov];
    size_t count = 0, total = 0;
    size_t nslots = 0;
    for (auto it = slots_.begin(); it != slots_.end() && (*it)->ready && count < kMaxIov; ++it) {
      ++nslots;
      const std::string& s = (*it)->out;
      if (!s.empty()) {
        iov[count++] = iovec{const_cast<char*>(s.data()), s.size()};
        total += s.size();
      }
      if ((*it)->close_after) {
        break;
      }
    }
    ssize_t n = 0;
    if (count > 0) {
      n = writev(fd_, iov, static_cast<int>(count));
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return Close();
      if (n < 0) n = 0;
    }
    // Pop what was written. A slot cut by a short write leaves its tail in out_ (sent first next time).
    size_t written = static_cast<size_t>(n);
    for (size_t i = 0; i < nslots; ++i) {
      ReplySlot& front = *slots_.front();
      if (written < front.out.size()) {
        if (written == 0) break;  // none of this slot went out: it stays queued
        out_.Append(std::string_view(front.out).substr(written));
        written = 0;
      } else {
        written -= front.out.size();
      }
      bool close_after = front.close_after;
      front.sink = nullptr;
      slots_.pop_front();
      if (close_after) {
        closing_ = true;
        PauseReading();
        for (auto& rest : slots_) rest->sink = nullptr;
        slots_.clear();
        break;
      }
      if (!out_.empty()) break;
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
  if (paused_ && !closing_ && !in_process_ && !OverLimits()) ResumeReading();
}

void ClientConn::Dispatch(std::string_view raw, protocol::Request req, std::optional<std::string> reply_override) {
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
  Route(r);
}

}  // namespace memha
