#pragma once
// One TCP connection to a memcached member: requests are pipelined, replies are matched in FIFO order, and each
// reply must prove it is the one its request is waiting for (the opaque it echoes, or the mn fence after it):
// a reply that does not closes the connection and fails every request on it, so a desync costs errors, never a
// reply handed to the wrong client. Requests queued during one loop pass leave in one write (FlushQueue);
// replies are parsed in place.
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/address.h"
#include "sidecar/backend/failure.h"
#include "sidecar/core/flush_queue.h"
#include "sidecar/core/inline_function.h"
#include "sidecar/core/io_buffer.h"
#include "sidecar/core/libevent.h"
#include "sidecar/protocol/compose.h"
#include "sidecar/protocol/reply.h"

struct evdns_base;
struct evdns_getaddrinfo_request;
struct evutil_addrinfo;

namespace memha {

struct OpResult {
  OpStatus status = OpStatus::kOk;
  std::string_view buf;                      // the reply's bytes are reply->... spans into buf
  const protocol::Reply* reply = nullptr;    // set when status == kOk
};

using OpCallback = InlineFunction<void(const OpResult&)>;

class BackendConnection : public Flushable {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void OnConnectionFailed(BackendConnection* conn, OpStatus why) = 0;
    virtual void OnReplyReceived(BackendConnection* conn) = 0;
  };

  BackendConnection(event_base* base, evdns_base* dns, FlushQueue* flush, HostPort endpoint, Listener* listener);
  ~BackendConnection() override;
  BackendConnection(const BackendConnection&) = delete;
  BackendConnection& operator=(const BackendConnection&) = delete;

  // Queues `wire` (with this connection's next opaque, or an mn fence) and expects one reply of `kind`.
  // Connects first if needed. The callback runs exactly once.
  void Send(const protocol::MemberWire& wire, protocol::ReplyKind kind, Clock::time_point deadline, OpCallback&& done);

  // Fails every pending operation with `why` and drops the socket. Safe to call from inside a callback.
  void Close(OpStatus why);
  // Checks connect and request deadlines; closes the connection with kTimeout/kConnectFailed when one passed.
  void CheckDeadlines(Clock::time_point now, Clock::duration connect_timeout);

  // Forgets every pending request without running its callback (exit: their jobs may own this connection's member).
  void DropPending() {
    std::deque<Op> dropped;
    dropped.swap(pending_);
  }
  bool connected() const { return state_ == State::kReady; }
  bool idle() const { return pending_.empty(); }
  size_t pending() const { return pending_.size(); }
  void FlushOutput() override;

 private:
  enum class State { kClosed, kConnecting, kReady };
  struct Op {
    Op(protocol::ReplyKind k, uint32_t o, Clock::time_point d, OpCallback&& cb)
        : kind(k), opaque(o), deadline(d), done(std::move(cb)) {}
    protocol::ReplyKind kind;
    uint32_t opaque;
    Clock::time_point deadline;
    OpCallback done;
  };

  void Connect();
  void StartConnect(const sockaddr* addr, int len);
  void OnConnected();
  bool SocketHas(short events) const;
  void OnRead();
  void OnWritable();
  static void ReadCb(evutil_socket_t fd, short what, void* arg);
  static void WriteCb(evutil_socket_t fd, short what, void* arg);
  static void DnsCb(int result, evutil_addrinfo* res, void* arg);

  event_base* base_;
  evdns_base* dns_;
  FlushQueue* flush_;
  HostPort endpoint_;
  Listener* listener_;
  evutil_socket_t fd_ = -1;
  EventPtr read_event_;
  EventPtr write_event_;
  bool write_armed_ = false;
  evdns_getaddrinfo_request* dns_request_ = nullptr;
  State state_ = State::kClosed;
  uint64_t generation_ = 0;  // grows with every Close: a read loop stops when its socket is gone
  Clock::time_point connect_started_;
  bool connect_failed_ = false;  // resolution or connect() failed at once: closed on the next deadline check
  std::deque<Op> pending_;
  IoBuffer in_{256 * 1024};   // few member connections: keep their buffers instead of reallocating
  IoBuffer out_{256 * 1024};
  protocol::Reply reply_;     // the reply handed to a callback
  uint32_t next_opaque_ = 1;  // never reset: a late reply from before a reconnect can never match
  size_t need_ = 0;
  int in_read_ = 0;          // >0 while OnRead runs: Close() leaves in_ alone until it returns
};

}  // namespace memha
