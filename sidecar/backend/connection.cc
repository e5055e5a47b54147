#include "sidecar/backend/connection.h"

#include "common/log.h"

#include <arpa/inet.h>
#include <event2/dns.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <charconv>
#include <cstring>
#include <utility>

namespace memha {

namespace {
constexpr size_t kReadChunk = 16 * 1024;
}  // namespace

BackendConnection::BackendConnection(event_base* base, evdns_base* dns, FlushQueue* flush, HostPort endpoint,
                                     Listener* listener)
    : base_(base), dns_(dns), flush_(flush), endpoint_(std::move(endpoint)), listener_(listener) {}

BackendConnection::~BackendConnection() {
  // Owners destroy connections only when nothing waits on them; drop callbacks without running them.
  pending_.clear();
  if (flush_) flush_->Remove(this);
  if (dns_request_) evdns_getaddrinfo_cancel(dns_request_);  // runs DnsCb with EVUTIL_EAI_CANCEL
  read_event_.reset();
  write_event_.reset();
  if (fd_ >= 0) evutil_closesocket(fd_);
}

void BackendConnection::Connect() {
  state_ = State::kConnecting;
  connect_started_ = Clock::now();
  connect_failed_ = false;
  reply_.Reset();
  need_ = 0;
  sockaddr_storage ss{};
  int len = sizeof ss;
  std::string numeric = endpoint_.host + ":" + std::to_string(endpoint_.port);
  if (endpoint_.host.find(':') != std::string::npos) numeric = "[" + endpoint_.host + "]:" + std::to_string(endpoint_.port);
  if (evutil_parse_sockaddr_port(numeric.c_str(), reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    StartConnect(reinterpret_cast<sockaddr*>(&ss), len);
    return;
  }
  evutil_addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  std::string port = std::to_string(endpoint_.port);
  uint64_t gen = generation_;
  evdns_getaddrinfo_request* req = evdns_getaddrinfo(dns_, endpoint_.host.c_str(), port.c_str(), &hints, &DnsCb, this);
  if (generation_ == gen && state_ == State::kConnecting && fd_ < 0) dns_request_ = req;  // else answered already
}

void BackendConnection::DnsCb(int result, evutil_addrinfo* res, void* arg) {
  auto* self = static_cast<BackendConnection*>(arg);
  if (result == EVUTIL_EAI_CANCEL) {
    if (res) evutil_freeaddrinfo(res);
    return;
  }
  self->dns_request_ = nullptr;
  if (result != 0 || res == nullptr) {
    if (res) evutil_freeaddrinfo(res);
    self->connect_failed_ = true;  // CheckDeadlines fails it on the next tick
    return;
  }
  self->StartConnect(res->ai_addr, static_cast<int>(res->ai_addrlen));
  evutil_freeaddrinfo(res);
}

void BackendConnection::StartConnect(const sockaddr* addr, int len) {
  fd_ = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    connect_failed_ = true;
    return;
  }
  read_event_.reset(event_new(base_, fd_, EV_READ | EV_PERSIST, &ReadCb, this));
  write_event_.reset(event_new(base_, fd_, EV_WRITE | EV_PERSIST, &WriteCb, this));
  int rc = connect(fd_, addr, static_cast<socklen_t>(len));
  if (rc != 0 && errno != EINPROGRESS) {
    connect_failed_ = true;
    return;
  }
  event_add(read_event_.get(), nullptr);
  write_armed_ = true;  // writable = connected (or failed: SO_ERROR tells)
  event_add(write_event_.get(), nullptr);
}

void BackendConnection::OnConnected() {
  state_ = State::kReady;
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  FlushOutput();
}

void BackendConnection::Send(const protocol::MemberWire& wire, protocol::ReplyKind kind, Clock::time_point deadline,
                             OpCallback&& done) {
  if (state_ == State::kClosed) Connect();
  uint32_t opaque = 0;
  // The whole request is written into the output buffer in one go: line (with " O<opaque>" spliced in at
  // opaque_at for meta requests), "\r\n", body, and the mn fence of a fenced request.
  constexpr std::string_view kFence = "mn\r\n";
  size_t total = wire.line.size() + 2 + wire.body.size();
  if (kind == protocol::ReplyKind::kMeta) total += 12;  // " O" + up to 10 digits
  if (kind == protocol::ReplyKind::kFenced) total += kFence.size();
  char* p = out_.Reserve(total);
  char* const start = p;
  auto put = [&p](std::string_view s) {
    if (!s.empty()) std::memcpy(p, s.data(), s.size());
    p += s.size();
  };
  if (kind == protocol::ReplyKind::kMeta) {
    opaque = next_opaque_++;
    if (next_opaque_ == 0) next_opaque_ = 1;
    size_t at = std::min(wire.opaque_at, wire.line.size());
    put(wire.line.substr(0, at));
    *p++ = ' ';
    *p++ = 'O';
    p = std::to_chars(p, p + 10, opaque).ptr;
    put(wire.line.substr(at));
  } else {
    put(wire.line);
  }
  *p++ = '\r';
  *p++ = '\n';
  put(wire.body);
  if (kind == protocol::ReplyKind::kFenced) put(kFence);
  out_.Commit(static_cast<size_t>(p - start));
  if (state_ == State::kReady && !write_armed_) flush_->Add(this);
  pending_.emplace_back(kind, opaque, deadline, std::move(done));
}

void BackendConnection::FlushOutput() {
  if (state_ != State::kReady || fd_ < 0) return;
  while (!out_.empty()) {
    ssize_t n = send(fd_, out_.view().data(), out_.size(), MSG_NOSIGNAL);
    if (n > 0) {
      out_.Consume(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    Close(OpStatus::kConnectionLost);
    return;
  }
  if (out_.empty() && write_armed_) {
    write_armed_ = false;
    event_del(write_event_.get());
  } else if (!out_.empty() && !write_armed_) {
    write_armed_ = true;
    event_add(write_event_.get(), nullptr);
  }
}

void BackendConnection::Close(OpStatus why) {
  if (state_ == State::kClosed && pending_.empty()) return;
  state_ = State::kClosed;
  ++generation_;
  if (flush_) flush_->Remove(this);
  if (dns_request_) {
    evdns_getaddrinfo_request* req = dns_request_;
    dns_request_ = nullptr;
    evdns_getaddrinfo_cancel(req);
  }
  read_event_.reset();
  write_event_.reset();
  write_armed_ = false;
  if (fd_ >= 0) {
    evutil_closesocket(fd_);
    fd_ = -1;
  }
  if (in_read_ == 0) in_.Clear();  // else OnRead clears it once it stops using it
  out_.Clear();
  reply_.Reset();
  need_ = 0;
  std::deque<Op> failed;
  failed.swap(pending_);
  listener_->OnConnectionFailed(this, why);  // health first, so callbacks see the member's new state
  for (Op& op : failed) {
    OpResult result;
    result.status = why;
    op.done(result);
  }
}

// A deadline only counts if the member is really silent: when the loop itself was busy (a burst of clients, a
// slow machine), the connect completion or the reply may already wait on the socket, unprocessed.
bool BackendConnection::SocketHas(short events) const {
  if (fd_ < 0) return false;
  pollfd p{fd_, events, 0};
  if (poll(&p, 1, 0) != 1) return false;
  return (p.revents & events) != 0 && (p.revents & (POLLERR | POLLNVAL)) == 0;
}

void BackendConnection::CheckDeadlines(Clock::time_point now, Clock::duration connect_timeout) {
  if (state_ == State::kConnecting && (connect_failed_ || now - connect_started_ > connect_timeout)) {
    if (!connect_failed_ && SocketHas(POLLOUT)) return;  // connected, event pending
    Close(OpStatus::kConnectFailed);
    return;
  }
  if (!pending_.empty() && now > pending_.front().deadline) {
    if (SocketHas(POLLIN)) return;  // the reply has arrived; the read callback runs in this loop iteration
    Close(OpStatus::kTimeout);
  }
}

void BackendConnection::ReadCb(evutil_socket_t, short, void* arg) { static_cast<BackendConnection*>(arg)->OnRead(); }

void BackendConnection::WriteCb(evutil_socket_t, short, void* arg) {
  static_cast<BackendConnection*>(arg)->OnWritable();
}

void BackendConnection::OnWritable() {
  if (state_ == State::kConnecting) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      if (err == EINPROGRESS) return;
      Close(OpStatus::kConnectFailed);
      return;
    }
    OnConnected();
    return;
  }
  FlushOutput();
}

void BackendConnection::OnRead() {
  if (state_ == State::kConnecting) {
    // Readable before writable while connecting: the connect failed (or the peer spoke first, which memcached
    // never does).
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      Close(OpStatus::kConnectFailed);
      return;
    }
    OnConnected();
    if (state_ != State::kReady) return;
  }
  const uint64_t gen = generation_;
  char* p = in_.Reserve(kReadChunk);
  size_t room = in_.tail_room();
  // Reserve may have moved bytes to the front; `p` points at the free space either way.
  ssize_t n = recv(fd_, p, room, 0);
  if (n == 0) {
    Close(OpStatus::kConnectionLost);
    return;
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    Close(OpStatus::kConnectionLost);
    return;
  }
  in_.Commit(static_cast<size_t>(n));
  ++in_read_;
  while (generation_ == gen) {
    size_t len = in_.size();
    if (len == 0 || len < need_) break;
    if (pending_.empty()) {  // bytes nobody asked for: the stream cannot be trusted any more
      Close(OpStatus::kBadReply);
      break;
    }
    std::string_view view = in_.view();
    const Op& head = pending_.front();
    protocol::ReplyStatus st = protocol::ParseReply(view, head.kind, head.opaque, &reply_, &need_);
    if (st == protocol::ReplyStatus::kNeedMore) break;
    if (st == protocol::ReplyStatus::kBad) {  // not the reply this request waits for: never hand it to anyone
      MEMHA_LOG(kWarn, "member", endpoint_.ToString() << ": reply out of step (expected "
                                  << (head.kind == protocol::ReplyKind::kMeta ? "opaque O" + std::to_string(head.opaque)
                                                                              : std::string("an mn fence"))
                                  << "), closing: " << log::Escape(view.substr(0, 120)));
      Close(OpStatus::kBadReply);
      break;
    }
    Op op = std::move(pending_.front());
    pending_.pop_front();
    need_ = 0;
    listener_->OnReplyReceived(this);
    OpResult result;
    result.buf = view;
    result.reply = &reply_;
    op.done(result);
    if (generation_ != gen) break;
    in_.Consume(reply_.consumed);
    reply_.Reset();
  }
  if (--in_read_ == 0 && generation_ != gen) in_.Clear();
}

}  // namespace memha
