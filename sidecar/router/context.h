#pragma once
// What a routed request carries: its bytes, its parsed form, the pool snapshot it started with, and the slot in
// the client's in-order reply queue that it fills exactly once.
#include <functional>
#include <memory>
#include <string>

#include "sidecar/metrics/metrics.h"
#include "sidecar/protocol/request.h"
#include "sidecar/router/pool.h"

namespace memha {

// One reply position in a client's pipeline. The client connection flushes ready slots in order.
struct ReplySlot {
  std::string out;
  bool ready = false;
  bool close_after = false;
  std::function<void()> on_ready;  // set by the client connection; cleared when the client goes away

  void Complete() {
    ready = true;
    if (on_ready) on_ready();
  }
};

struct RoutedRequest {
  std::string raw;            // the request's bytes: line + data block
  protocol::Request req;      // spans into raw
  PoolPtr pool;
  std::shared_ptr<ReplySlot> slot;
  Clock::time_point start;
  Metrics* metrics = nullptr;
  const Tunables* tunables = nullptr;

  std::string_view key(size_t i = 0) const { return protocol::RoutingKey(req, raw, i); }
  std::string_view key_token(size_t i = 0) const { return req.keys[i].in(raw); }  // as sent (base64 if b)
  std::string_view line() const { return req.line.in(raw); }
  std::string_view data() const { return req.data.in(raw); }
  void Finish(std::string out, Outcome outcome);
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
