#pragma once
// Ownership of libevent handles: every handle lives in a unique_ptr with its deleter.
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <chrono>
#include <cstdint>
#include <memory>

namespace memha {

struct EventBaseDeleter { void operator()(event_base* b) const { event_base_free(b); } };
struct EventDeleter { void operator()(event* e) const { event_free(e); } };
struct BuffereventDeleter { void operator()(bufferevent* b) const { bufferevent_free(b); } };
struct ListenerDeleter { void operator()(evconnlistener* l) const { evconnlistener_free(l); } };

using EventBasePtr = std::unique_ptr<event_base, EventBaseDeleter>;
using EventPtr = std::unique_ptr<event, EventDeleter>;
using BuffereventPtr = std::unique_ptr<bufferevent, BuffereventDeleter>;
using ListenerPtr = std::unique_ptr<evconnlistener, ListenerDeleter>;

inline timeval ToTimeval(std::chrono::microseconds d) {
  return timeval{static_cast<time_t>(d.count() / 1000000), static_cast<suseconds_t>(d.count() % 1000000)};
}

using Clock = std::chrono::steady_clock;

}  // namespace memha
