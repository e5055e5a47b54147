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
  bool StreamPart(ReplySlot* slot, std::string_view bytes) override;
  bool IsNext(const ReplySlot* slot) const override;
  bool CanHold(const ReplySlot* slot, size_t bytes) const override;
  bool DeferAllowed(const ReplySlot* slot) const override;
  bool Backlogged() const override;
  void Charge(int64_t delta) override;
  void ResumeAtHead(ReplySlot* slot, std::shared_ptr<Resumable> job) override;
  bool RoomToFetch(size_t bytes) const override;
  void Reserve(int64_t delta) override;
  size_t ReplyEstimate() const override { return estimate_; }
  void OrderBarrier(int delta) override;

 private:
  static void ReadCb(evutil_socket_t fd, short what, void* arg);
  static void WriteCb(evutil_socket_t fd, short what, void* arg);
  void OnReadable();
  // Parses and dispatches complete requests from `in`; returns the bytes consumed.
  size_t ProcessBytes(std::string_view in);
  void ProcessBuffered();
  void Dispatch(std::string_view raw, protocol::Request&& req, std::optional<std::string> reply_override = {});
  ReplySlot* NewSlot();                       // a reply the connection makes itself
  void AddSlot(std::shared_ptr<ReplySlot> slot);
  bool OverLimits() const;
  size_t Held() const { return slot_bytes_ + job_bytes_ + out_.size(); }  // reply bytes held for this client
  void Account(int64_t delta);     // keeps the sidecar-wide total in step
  void OutAppend(std::string_view bytes);
  void OutConsume(size_t n);
  void PopFront();
  void ResumeHeadIfWaiting();
  void ObserveReply(size_t bytes);  // learns how large this client's replies are
  void UpdateReserved();
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
  size_t slot_bytes_ = 0;  // completed replies waiting for earlier ones
  size_t job_bytes_ = 0;   // held by requests still in progress
  // Requests in flight reserve room for their replies before they are sent: the larger this client's recent
  // replies, the fewer it may have in flight (a client pipelining gets of 1 MB values gets a few at a time).
  size_t estimate_;        // a recent reply's size, biased to the largest (starts pessimistic)
  size_t in_flight_ = 0;   // routed requests not completed
  size_t reserved_ = 0;    // in_flight_ * estimate_, mirrored in Proxy::reserved()
  size_t fetch_reserved_ = 0;  // reserved by jobs for further keys of requests in flight
  int barriers_ = 0;       // requests still sending their keys: nothing later is dispatched meanwhile
  uint64_t next_seq_ = 1;
  uint64_t last_write_seq_ = 0;
  const PoolPtr* pool_slot_ = nullptr;  // cached Proxy::CurrentPoolSlot(pool_name_)
  uint64_t pool_generation_ = 0;
};

}  // namespace memha
