#pragma once
// One TCP connection to a memcached member: requests are pipelined, replies are matched in FIFO order.
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/address.h"
#include "sidecar/backend/failure.h"
#include "sidecar/core/libevent.h"
#include "sidecar/protocol/reply.h"

struct evdns_base;

namespace memha {

struct OpResult {
  OpStatus status = OpStatus::kOk;
  std::string_view buf;                      // the reply's bytes are reply->... spans into buf
  const protocol::Reply* reply = nullptr;    // set when status == kOk
};

using OpCallback = std::function<void(const OpResult&)>;

class BackendConnection {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void OnConnectionFailed(BackendConnection* conn, OpStatus why) = 0;
    virtual void OnReplyReceived(BackendConnection* conn) = 0;
  };

  BackendConnection(event_base* base, evdns_base* dns, HostPort endpoint, Listener* listener);
  ~BackendConnection();
  BackendConnection(const BackendConnection&) = delete;
  BackendConnection& operator=(const BackendConnection&) = delete;

  // Queues `wire` and expects one reply of `kind`. Connects first if needed. The callback runs exactly once.
  void Send(std::string_view wire, protocol::ReplyKind kind, Clock::time_point deadline, OpCallback done);
  // Two-part send (header + value) without concatenating them first.
  void Send2(std::string_view head, std::string_view body, protocol::ReplyKind kind, Clock::time_point deadline,
             OpCallback done);

  // Fails every pending operation with `why` and drops the socket. Safe to call from inside a callback.
  void Close(OpStatus why);
  // Checks connect and request deadlines; closes the connection with kTimeout/kConnectFailed when one passed.
  void CheckDeadlines(Clock::time_point now, Clock::duration connect_timeout);

  bool connected() const { return state_ == State::kReady; }
  bool idle() const { return pending_.empty(); }
  size_t pending() const { return pending_.size(); }

 private:
  enum class State { kClosed, kConnecting, kReady };
  struct Op {
    protocol::ReplyKind kind;
    Clock::time_point deadline;
    OpCallback done;
  };

  void Connect();
  bool SocketHas(short events) const;
  void Enqueue(protocol::ReplyKind kind, Clock::time_point deadline, OpCallback done);
  void OnRead();
  void OnEvent(short what);
  static void ReadCb(bufferevent* bev, void* arg);
  static void EventCb(bufferevent* bev, short what, void* arg);

  event_base* base_;
  evdns_base* dns_;
  HostPort endpoint_;
  Listener* listener_;
  BuffereventPtr bev_;
  State state_ = State::kClosed;
  Clock::time_point connect_started_;
  std::deque<Op> pending_;
  protocol::Reply reply_;    // progress on the reply at the head of pending_
  size_t need_ = 0;
  int in_read_ = 0;          // >0 while OnRead runs: Close() defers freeing the bufferevent
  std::vector<BuffereventPtr> retired_;  // closed during OnRead, freed when OnRead returns
};

}  // namespace memha
