#pragma once
// One client connection: parses pipelined requests, routes each, and writes replies strictly in request order.
// Memory is bounded: reading pauses while too many requests are in flight or too many bytes are buffered.
#include <deque>
#include <memory>
#include <string>

#include "sidecar/core/libevent.h"
#include "sidecar/router/context.h"

namespace memha {

class Proxy;

class ClientConn {
 public:
  ClientConn(Proxy* proxy, std::string pool_name, evutil_socket_t fd);
  ~ClientConn();
  ClientConn(const ClientConn&) = delete;
  ClientConn& operator=(const ClientConn&) = delete;

  bool idle() const { return slots_.empty(); }
  void CloseWhenIdle();  // drain: finish what is in flight, then close

 private:
  static void ReadCb(bufferevent* bev, void* arg);
  static void WriteCb(bufferevent* bev, void* arg);
  static void EventCb(bufferevent* bev, short what, void* arg);
  void ProcessInput();
  void Dispatch(std::string raw, protocol::Request req);
  std::shared_ptr<ReplySlot> NewSlot();
  void Flush();
  bool OverLimits() const;
  void Close();

  Proxy* proxy_;
  std::string pool_name_;
  BuffereventPtr bev_;
  std::deque<std::shared_ptr<ReplySlot>> slots_;
  size_t swallow_ = 0;   // bytes of an oversized value still to discard
  size_t need_ = 0;      // bytes needed before parsing again
  bool closing_ = false; // no more requests are read; close once replies are written
  bool paused_ = false;
  bool in_process_ = false;
  bool closed_ = false;
};

}  // namespace memha
