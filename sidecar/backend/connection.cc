#include "sidecar/backend/connection.h"

#include <event2/dns.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <utility>

namespace memha {

BackendConnection::BackendConnection(event_base* base, evdns_base* dns, HostPort endpoint, Listener* listener)
    : base_(base), dns_(dns), endpoint_(std::move(endpoint)), listener_(listener) {}

BackendConnection::~BackendConnection() {
  // Owners destroy connections only when nothing waits on them; drop callbacks without running them.
  pending_.clear();
}

void BackendConnection::Connect() {
  bev_.reset(bufferevent_socket_new(base_, -1, BEV_OPT_CLOSE_ON_FREE));
  state_ = State::kConnecting;
  connect_started_ = Clock::now();
  reply_ = protocol::Reply();
  need_ = 0;
  if (!bev_) {
    connect_started_ = Clock::time_point::min();  // CheckDeadlines fails it on the next tick
    return;
  }
  bufferevent_setcb(bev_.get(), &ReadCb, nullptr, &EventCb, this);
  bufferevent_enable(bev_.get(), EV_READ | EV_WRITE);
  if (bufferevent_socket_connect_hostname(bev_.get(), dns_, AF_UNSPEC, endpoint_.host.c_str(), endpoint_.port) != 0) {
    connect_started_ = Clock::time_point::min();
  }
}

void BackendConnection::Enqueue(protocol::ReplyKind kind, Clock::time_point deadline, OpCallback done) {
  pending_.push_back(Op{kind, deadline, std::move(done)});
}

void BackendConnection::Send(std::string_view wire, protocol::ReplyKind kind, Clock::time_point deadline,
                             OpCallback done) {
  if (state_ == State::kClosed) Connect();
  if (bev_) evbuffer_add(bufferevent_get_output(bev_.get()), wire.data(), wire.size());
  Enqueue(kind, deadline, std::move(done));
}

void BackendConnection::Send2(std::string_view head, std::string_view body, protocol::ReplyKind kind,
                              Clock::time_point deadline, OpCallback done) {
  if (state_ == State::kClosed) Connect();
  if (bev_) {
    evbuffer* out = bufferevent_get_output(bev_.get());
    evbuffer_add(out, head.data(), head.size());
    evbuffer_add(out, body.data(), body.size());
  }
  Enqueue(kind, deadline, std::move(done));
}

void BackendConnection::Close(OpStatus why) {
  if (state_ == State::kClosed && pending_.empty()) return;
  state_ = State::kClosed;
  if (bev_) {
    bufferevent_setcb(bev_.get(), nullptr, nullptr, nullptr, nullptr);
    bufferevent_disable(bev_.get(), EV_READ | EV_WRITE);
    if (in_read_ > 0) {
      retired_.push_back(std::move(bev_));
    } else {
      bev_.reset();
    }
  }
  reply_ = protocol::Reply();
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
  if (!bev_) return false;
  pollfd p{bufferevent_getfd(bev_.get()), events, 0};
  if (p.fd < 0 || poll(&p, 1, 0) != 1) return false;
  return (p.revents & events) != 0 && (p.revents & (POLLERR | POLLNVAL)) == 0;
}

void BackendConnection::CheckDeadlines(Clock::time_point now, Clock::duration connect_timeout) {
  if (state_ == State::kConnecting && now - connect_started_ > connect_timeout) {
    if (connect_started_ != Clock::time_point::min() && SocketHas(POLLOUT)) return;  // connected, event pending
    Close(OpStatus::kConnectFailed);
    return;
  }
  if (!pending_.empty() && now > pending_.front().deadline) {
    if (SocketHas(POLLIN)) return;  // the reply has arrived; the read callback runs in this loop iteration
    Close(OpStatus::kTimeout);
  }
}

void BackendConnection::ReadCb(bufferevent*, void* arg) { static_cast<BackendConnection*>(arg)->OnRead(); }

void BackendConnection::EventCb(bufferevent*, short what, void* arg) {
  static_cast<BackendConnection*>(arg)->OnEvent(what);
}

void BackendConnection::OnEvent(short what) {
  if (what & BEV_EVENT_CONNECTED) {
    state_ = State::kReady;
    int one = 1;
    setsockopt(bufferevent_getfd(bev_.get()), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return;
  }
  if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
    Close(state_ == State::kConnecting ? OpStatus::kConnectFailed : OpStatus::kConnectionLost);
  }
}

void BackendConnection::OnRead() {
  ++in_read_;
  bufferevent* bev = bev_.get();
  evbuffer* in = bufferevent_get_input(bev);
  while (bev_.get() == bev) {
    size_t len = evbuffer_get_length(in);
    if (len == 0 || len < need_) break;
    if (pending_.empty()) {  // bytes nobody asked for: the stream cannot be trusted any more
      Close(OpStatus::kBadReply);
      break;
    }
    auto* data = reinterpret_cast<const char*>(evbuffer_pullup(in, -1));
    std::string_view view(data, len);
    protocol::ReplyStatus st = protocol::ParseReply(view, pending_.front().kind, &reply_, &need_);
    if (st == protocol::ReplyStatus::kNeedMore) break;
    if (st == protocol::ReplyStatus::kBad) {
      Close(OpStatus::kBadReply);
      break;
    }
    Op op = std::move(pending_.front());
    pending_.pop_front();
    protocol::Reply reply = std::move(reply_);
    reply_ = protocol::Reply();
    need_ = 0;
    listener_->OnReplyReceived(this);
    OpResult result;
    result.buf = view;
    result.reply = &reply;
    op.done(result);
    evbuffer_drain(in, reply.consumed);
  }
  if (--in_read_ == 0) retired_.clear();
}

}  // namespace memha
