#pragma once
// What a routed request carries: its bytes, its parsed form, the pool snapshot it started with, and the slot in
// the client's in-order reply queue that it fills exactly once.
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "sidecar/metrics/metrics.h"
#include "sidecar/protocol/request.h"
#include "sidecar/router/pool.h"

namespace memha {

struct ReplySlot;

// Where completed replies go: the client connection. Cleared from the slot when the client goes away.
class ReplySink {
 public:
  virtual ~ReplySink() = default;
  virtual void SlotReady(ReplySlot* slot) = 0;
  // The slot's reply, offered before it is copied into the slot: a client whose next reply is this slot's
  // appends it straight to its output buffer. Returns false when the slot has to keep it (replies before it
  // are still pending).
  virtual bool TakeReply(ReplySlot* slot, std::string_view bytes) = 0;
};

// One reply position in a client's pipeline. The client connection flushes ready slots in order.
struct ReplySlot {
  std::string out;
  bool ready = false;
  bool close_after = false;
  ReplySink* sink = nullptr;

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
