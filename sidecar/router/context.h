#pragma once
// What a routed request carries: its bytes, its parsed form, the pool snapshot it started with, and the slot in
// the client's in-order reply queue that it fills exactly once.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "sidecar/metrics/metrics.h"
#include "sidecar/protocol/request.h"
#include "sidecar/router/pool.h"

namespace memha {

struct ReplySlot;

// A job that stopped fetching because its client holds too many reply bytes; resumed by the client connection
// once the job's slot is next in line and the client's output has room.
class Resumable {
 public:
  virtual ~Resumable() = default;
  virtual void Resume() = 0;
};

// Where completed replies go: the client connection. Cleared from the slot when the client goes away. It also
// keeps the memory a client can make the sidecar hold bounded (docs/ARCHITECTURE.md, "Bounded memory").
class ReplySink {
 public:
  virtual ~ReplySink() = default;
  virtual void SlotReady(ReplySlot* slot) = 0;
  // The slot's reply, offered before it is copied into the slot: a client whose next reply is this slot's
  // appends it straight to its output buffer. Returns false when the slot has to keep it (replies before it
  // are still pending).
  virtual bool TakeReply(ReplySlot* slot, std::string_view bytes) = 0;
  // Part of a reply that is next in line, written ahead of the rest (a long multi-get streamed as it arrives).
  // Returns false (nothing taken) when the slot is not next in line.
  virtual bool StreamPart(ReplySlot* slot, std::string_view bytes) = 0;
  // Whether this slot's reply is the next one due (everything before it written or in the output buffer).
  virtual bool IsNext(const ReplySlot* slot) const = 0;
  // Whether `bytes` more reply bytes for this slot fit in what the client (and the sidecar as a whole) may hold.
  virtual bool CanHold(const ReplySlot* slot, size_t bytes) const = 0;
  // Whether this slot's read may be dropped and done again later: a pure read, not next in line, and no later
  // write of the same client that the second read could see.
  virtual bool DeferAllowed(const ReplySlot* slot) const = 0;
  // Whether the client's written-but-unread output is over its limit (stop fetching more for it).
  virtual bool Backlogged() const = 0;
  // Reply bytes a job holds for this client before completing its slot (+ taken, - released).
  virtual void Charge(int64_t delta) = 0;
  // Room to fetch `bytes` more for a request already in flight (a multi-get's further keys), within this
  // client's share and the sidecar's total; Reserve() takes it (+) and gives it back (-).
  virtual bool RoomToFetch(size_t bytes) const = 0;
  virtual void Reserve(int64_t delta) = 0;
  virtual size_t ReplyEstimate() const = 0;  // how large this client's replies have recently been
  // A request that has not sent all of its keys yet holds back the client's later requests (+1), so none of
  // them reaches a member before it (-1 when it has sent them all).
  virtual void OrderBarrier(int delta) = 0;
  // Resume `job` once `slot` is next in line and the client's output has room.
  virtual void ResumeAtHead(ReplySlot* slot, std::shared_ptr<Resumable> job) = 0;
};

// One reply position in a client's pipeline. The client connection flushes ready slots in order.
struct ReplySlot {
  std::string out;
  bool ready = false;
  bool close_after = false;
  bool deferrable = false;   // a pure read: may be dropped and read again later (see ReplySink::DeferAllowed)
  bool in_flight = false;    // routed to members, not completed yet (the client's reservation counts it)
  uint64_t seq = 0;          // position in the client's pipeline
  ReplySink* sink = nullptr;
  std::shared_ptr<Resumable> waiting;  // a job parked until this slot is next in line

  void Complete() {
    ready = true;
    if (sink) sink->SlotReady(this);
  }
  // Completes with bytes that are only valid during this call (e.g. a member's reply in its read buffer).
  void CompleteWith(std::string_view bytes) {
    if (sink == nullptr || !sink->TakeReply(this, bytes)) out.assign(bytes);
    Complete();
  }
};

struct RoutedRequest {
  std::string raw;            // the request's bytes: line + data block
  protocol::Request req;      // spans into raw
  PoolPtr pool;
  ReplySlot slot_storage;
  ReplySlot* slot = &slot_storage;  // the client holds it through an aliasing shared_ptr to this request
  Clock::time_point start;
  Metrics* metrics = nullptr;
  const Tunables* tunables = nullptr;
  std::optional<std::string> reply_override;  // a write done for its effect (unlinking a too-large set's key)

  std::string_view key(size_t i = 0) const { return protocol::RoutingKey(req, raw, i); }
  std::string_view key_token(size_t i = 0) const { return req.keys[i].in(raw); }  // as sent (base64 if b)
  std::string_view line() const { return req.line.in(raw); }
  std::string_view data() const { return req.data.in(raw); }
  void Finish(std::string out, Outcome outcome);
  void FinishWith(std::string_view out, Outcome outcome);  // `out` need only live during the call
};

using RoutedPtr = std::shared_ptr<RoutedRequest>;

// Entry point: routes one parsed request through `pool` and completes its slot.
void Route(const RoutedPtr& r);

// Shared by the handlers.
Outcome OutcomeOfLine(std::string_view line);
std::string LineWithout(std::string_view line, std::string_view token);  // drops every token equal to `token`
bool IsMetaQuietSuppressed(protocol::Command cmd, std::string_view line);

void RouteRetrieval(const RoutedPtr& r);
void RouteMetaRead(const RoutedPtr& r);
void RouteWrite(const RoutedPtr& r);
void RouteFlush(const RoutedPtr& r);

constexpr std::string_view kNoMember = "SERVER_ERROR memha: no member available for this key\r\n";

}  // namespace memha
