#pragma once
// One client connection: parses pipelined requests, routes each, and writes replies strictly in request order.
// Memory is bounded: reading pauses while too many requests are in flight or too many bytes are buffered.
// I/O is done on the raw socket: requests are parsed straight from a shared read buffer (a connection keeps
// bytes only for a request cut in the middle), and replies go out with one writev per loop pass.
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "sidecar/core/flush_queue.h"
#include "sidecar/core/io_buffer.h"
#include "sidecar/core/libevent.h"
#include "sidecar/router/context.h"

namespace memha {

class Proxy;

class ClientConn : public Flushable, public ReplySink {
 public:
  ClientConn(Proxy* proxy, std::string pool_name, evutil_socket_t fd);
  ~ClientConn() override;
  ClientConn(const ClientConn&) = delete;
  ClientConn& operator=(const ClientConn&) = delete;

  bool idle() const { return slots_.empty(); }
  void CloseWhenIdle();  // drain: finish what is in flight, then close
  void FlushOutput() override;
  void SlotReady(ReplySlot* slot) override;
  bool TakeReply(ReplySlot* slot, std::string_view bytes) override;

 private:
  static void ReadCb(evutil_socket_t fd, short what, void* arg);
  static void WriteCb(evutil_socket_t fd, short what, void* arg);
  void OnReadable();
  // Parses and dispatches complete requests from `in`; returns the bytes consumed.
  size_t ProcessBytes(std::string_view in);
  void ProcessBuffered();
  void Dispatch(std::string_view raw, protocol::Request req, std::optional<std::string> reply_override = {});
  ReplySlot* NewSlot();                       // a reply the connection makes itself
  void AddSlot(std::shared_ptr<ReplySlot> slot);
  bool OverLimits() const;
  void PauseReading();
  void ResumeReading();
  void Close();

  Proxy* proxy_;
  std::string pool_name_;
  evutil_socket_t fd_;
  EventPtr read_event_;
  EventPtr write_event_;
  IoBuffer in_;          // an incomplete request carried to the next read
  IoBuffer out_;         // reply bytes a short write left behind; they go before any newer reply
  std::deque<std::shared_ptr<ReplySlot>> slots_;
  size_t swallow_ = 0;   // bytes of an oversized value still to discard
  size_t need_ = 0;      // bytes needed before parsing again
  bool closing_ = false; // no more requests are read; close once replies are written
  bool paused_ = false;
  bool in_process_ = false;
  bool closed_ = false;
  bool write_armed_ = false;
  const PoolPtr* pool_slot_ = nullptr;  // cached Proxy::CurrentPoolSlot(pool_name_)
  uint64_t pool_generation_ = 0;
};

}  // namespace memha
