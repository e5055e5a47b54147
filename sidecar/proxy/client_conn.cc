#include "sidecar/proxy/client_conn.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "common/log.h"
#include "sidecar/proxy/proxy.h"

namespace memha {

using protocol::Command;

ClientConn::ClientConn(Proxy* proxy, std::string pool_name, evutil_socket_t fd)
    : proxy_(proxy), pool_name_(std::move(pool_name)) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  bev_.reset(bufferevent_socket_new(proxy_->base(), fd, BEV_OPT_CLOSE_ON_FREE));
  bufferevent_setcb(bev_.get(), &ReadCb, &WriteCb, &EventCb, this);
  const Tunables& t = proxy_->tunables();
  bufferevent_setwatermark(bev_.get(), EV_READ, 0, t.client_max_buffer + t.max_value + 4096);
  bufferevent_enable(bev_.get(), EV_READ | EV_WRITE);
}

ClientConn::~ClientConn() {
  for (auto& slot : slots_) slot->on_ready = nullptr;  // in-flight requests finish into nothing
}

void ClientConn::ReadCb(bufferevent*, void* arg) { static_cast<ClientConn*>(arg)->ProcessInput(); }

void ClientConn::WriteCb(bufferevent*, void* arg) {
  auto* self = static_cast<ClientConn*>(arg);
  if (self->closing_ && self->slots_.empty()) {
    self->Close();
    return;
  }
  if (self->paused_ && !self->OverLimits()) {
    self->paused_ = false;
    bufferevent_enable(self->bev_.get(), EV_READ);
    self->ProcessInput();
  }
}

void ClientConn::EventCb(bufferevent*, short what, void* arg) {
  if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) static_cast<ClientConn*>(arg)->Close();
}

void ClientConn::Close() {
  if (closed_) return;
  closed_ = true;
  bufferevent_disable(bev_.get(), EV_READ | EV_WRITE);
  proxy_->RemoveClient(this);  // deferred delete
}

void ClientConn::CloseWhenIdle() {
  closing_ = true;
  bufferevent_disable(bev_.get(), EV_READ);
  if (slots_.empty() && evbuffer_get_length(bufferevent_get_output(bev_.get())) == 0) Close();
}

bool ClientConn::OverLimits() const {
  const Tunables& t = proxy_->tunables();
  return slots_.size() >= t.client_max_pending ||
         evbuffer_get_length(bufferevent_get_output(bev_.get())) >= t.client_max_buffer;
}

std::shared_ptr<ReplySlot> ClientConn::NewSlot() {
  auto slot = std::make_shared<ReplySlot>();
  slot->on_ready = [this] { Flush(); };
  slots_.push_back(slot);
  return slot;
}

void ClientConn::Flush() {
  if (closed_) return;
  evbuffer* out = bufferevent_get_output(bev_.get());
  while (!slots_.empty() && slots_.front()->ready) {
    auto& slot = slots_.front();
    if (!slot->out.empty()) evbuffer_add(out, slot->out.data(), slot->out.size());
    if (slot->close_after) {
      closing_ = true;
      bufferevent_disable(bev_.get(), EV_READ);
      for (auto& s : slots_) s->on_ready = nullptr;
      slots_.clear();
      break;
    }
    slots_.pop_front();
  }
  if (closing_ && slots_.empty() && evbuffer_get_length(out) == 0) {
    Close();
    return;
  }
  if (paused_ && !in_process_ && !OverLimits()) {
    paused_ = false;
    bufferevent_enable(bev_.get(), EV_READ);
    ProcessInput();
  }
}

void ClientConn::ProcessInput() {
  if (in_process_ || closed_) return;
  in_process_ = true;
  evbuffer* in = bufferevent_get_input(bev_.get());
  const protocol::Limits& limits = proxy_->limits();
  while (!closing_ && !closed_) {
    size_t len = evbuffer_get_length(in);
    if (swallow_ > 0) {
      size_t n = std::min(len, swallow_);
      evbuffer_drain(in, n);
      swallow_ -= n;
      if (swallow_ > 0) break;
      continue;
    }
    if (len == 0 || len < need_) break;
    if (OverLimits()) {
      paused_ = true;
      bufferevent_disable(bev_.get(), EV_READ);
      break;
    }
    const char* p = reinterpret_cast<const char*>(evbuffer_pullup(in, -1));
    protocol::Request req;
    protocol::ParseResult res = protocol::ParseRequest(std::string_view(p, len), limits, &req);
    if (res.status == protocol::ParseStatus::kNeedMore) {
      need_ = res.need;
      break;
    }
    need_ = 0;
    if (res.status == protocol::ParseStatus::kError) {
      proxy_->metrics().ClientProtocolError();
      auto slot = NewSlot();
      slot->out = std::move(res.error.reply);
      slot->close_after = res.error.close;
      evbuffer_drain(in, res.error.consume);
      swallow_ = res.error.swallow;
      slot->Complete();
      continue;
    }
    std::string raw(p, req.consumed);
    evbuffer_drain(in, req.consumed);
    Dispatch(std::move(raw), std::move(req));
  }
  in_process_ = false;
}

void ClientConn::Dispatch(std::string raw, protocol::Request req) {
  auto slot = NewSlot();
  auto local = [&](std::string out) {
    proxy_->metrics().Request(req.cmd, Outcome::kOk, 0);
    slot->out = std::move(out);
    slot->Complete();
  };
  switch (req.cmd) {
    case Command::kQuit:
      slot->close_after = true;
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
  PoolPtr pool = proxy_->CurrentPool(pool_name_);
  if (!pool) {
    proxy_->metrics().Request(req.cmd, Outcome::kServerError, 0);
    slot->out = "SERVER_ERROR memha: pool " + pool_name_ + " is not in the current topology\r\n";
    slot->Complete();
    return;
  }
  auto r = std::make_shared<RoutedRequest>();
  r->raw = std::move(raw);
  r->req = std::move(req);
  r->pool = std::move(pool);
  r->slot = std::move(slot);
  r->start = Clock::now();
  r->metrics = &proxy_->metrics();
  r->tunables = &proxy_->tunables();
  Route(r);
}

}  // namespace memha
