// memha-loadgen: a memcached text-protocol load generator on libevent, single thread (pin it with taskset).
// Closed loop (N connections x pipeline depth D) or fixed-rate open loop (latency from the scheduled send time,
// so a slow server cannot hide its queueing: no coordinated omission). Optional verification of every read
// against acknowledged writes (bench/loadgen/verifier.h) and read-through fills, for chaos runs.
// Output: one JSON document (summary + per-second timeline). `--help` lists the options.
#include <arpa/inet.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench/loadgen/histogram.h"
#include "bench/loadgen/options.h"
#include "bench/loadgen/reply_parser.h"
#include "bench/loadgen/verifier.h"

namespace {

using memha::bench::kMaxMulti;
using memha::bench::kUsage;
using memha::bench::LatencyHistogram;
using memha::bench::Options;
using memha::bench::ParseOptions;
using memha::bench::ParsedReply;
using memha::bench::ParseReply;
using memha::bench::ParseStatus;
using memha::bench::ReadSnapshot;
using memha::bench::ReadVerdict;
using memha::bench::ReplyKind;
using memha::bench::ReplyOutcome;
using memha::bench::ValueView;
using memha::bench::Verifier;

uint64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}
double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}
uint64_t UnixMs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000ull + static_cast<uint64_t>(ts.tv_nsec) / 1000000ull;
}
timeval ToTimeval(uint64_t ns) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ns / 1000000000ull);
  tv.tv_usec = static_cast<suseconds_t>((ns % 1000000000ull) / 1000ull);
  return tv;
}

constexpr size_t kReadChunk = 64 * 1024;

enum class OpKind : uint8_t { kGet, kSet, kDelete, kFill, kPrefill };

struct Pending {
  OpKind kind;
  uint8_t nkeys;
  uint64_t intended_ns;
  uint64_t sent_ns;
  uint64_t seq;
  uint32_t keys[kMaxMulti];
  ReadSnapshot snaps[kMaxMulti];
};

struct Counters {
  uint64_t ops = 0, gets = 0, sets = 0, deletes = 0, fills = 0, keys = 0, hits = 0, misses = 0;
  uint64_t errors = 0, timeouts = 0, conn_errors = 0, dropped = 0;
  uint64_t stale = 0, resurrected = 0, corrupt = 0, indeterminate = 0;
};

struct Second {
  Counters c;
  LatencyHistogram h;
};

struct EventDeleter {
  void operator()(event* e) const { event_free(e); }
};
using EventPtr = std::unique_ptr<event, EventDeleter>;
struct BaseDeleter {
  void operator()(event_base* b) const { event_base_free(b); }
};

class Loadgen;

struct Conn {
  Loadgen* owner = nullptr;
  int id = 0;
  int fd = -1;
  bool connected = false;
  bool write_armed = false;
  EventPtr rev, wev, timer;
  std::string out;
  size_t out_off = 0;
  std::vector<char> in;
  size_t in_len = 0, in_off = 0;
  std::deque<Pending> pending;
  uint64_t next_ns = 0;  // open loop: next scheduled send
  uint64_t last_connect_ns = 0;
};

class Loadgen {
 public:
  explicit Loadgen(Options o) : o_(std::move(o)), verifier_(o_.keys), rng_(o_.seed * 2654435761u + 1) {}

  int Run();

 private:
  enum class Phase { kConnecting, kPrefill, kMain, kDone };

  // --- connections
  void Connect(Conn& c);
  void Fail(Conn& c, bool timeout);
  void OnConnected(Conn& c);
  void OnReadable(Conn& c);
  void OnWritable(Conn& c);
  void Flush(Conn& c);
  static void ReadCb(evutil_socket_t, short, void* arg);
  static void WriteCb(evutil_socket_t, short, void* arg);
  static void TimerCb(evutil_socket_t, short, void* arg);
  static void TickCb(evutil_socket_t, short, void* arg);
  static void EndCb(evutil_socket_t, short, void* arg);

  // --- requests
  uint64_t Rand() {
    rng_ ^= rng_ >> 12;
    rng_ ^= rng_ << 25;
    rng_ ^= rng_ >> 27;
    return rng_ * 2685821657736338717ull;
  }
  double RandUnit() { return static_cast<double>(Rand() >> 11) * (1.0 / 9007199254740992.0); }
  void AppendKey(std::string& out, uint32_t key);
  void IssueGet(Conn& c, uint64_t intended);
  void IssueWrite(Conn& c, OpKind kind, uint32_t key, uint64_t intended);
  void IssueOne(Conn& c, uint64_t intended);
  void Refill(Conn& c);
  void IssueDue(Conn& c);
  void ArmTimer(Conn& c);
  void HandleReply(Conn& c, const Pending& p, const ParsedReply& r);
  bool KeyIndexOf(std::string_view key, uint32_t* idx) const;

  // --- phases and stats
  void MaybeStart();
  void StartMain();
  Second& SecondAt(uint64_t now);
  bool InSummary(uint64_t now) const {
    return phase_ == Phase::kMain && now >= start_ns_ + static_cast<uint64_t>(o_.warmup_s * 1e9) && now < end_ns_;
  }
  template <typename F>
  void Count(uint64_t now, F&& f) {
    if (phase_ != Phase::kMain || now < start_ns_) return;
    f(SecondAt(now).c);
    if (InSummary(now)) f(total_);
  }
  void PrintProgress(size_t second);
  std::string Json() const;

  Options o_;
  Verifier verifier_;
  uint64_t rng_;
  std::unique_ptr<event_base, BaseDeleter> base_;
  std::vector<std::unique_ptr<Conn>> conns_;
  addrinfo* addr_ = nullptr;
  sockaddr_storage target_{};  // what Connect connects to: addr_'s first address, or the unix socket
  socklen_t target_len_ = 0;
  Phase phase_ = Phase::kConnecting;
  uint64_t start_ns_ = 0, start_unix_ms_ = 0, end_ns_ = 0;
  double cpu_start_ = 0, cpu_main_ = 0;  // this process's CPU seconds during the main phase
  uint32_t prefill_cursor_ = 0;
  uint64_t prefill_outstanding_ = 0, prefill_errors_ = 0, prefill_ns_ = 0;
  int connected_ = 0;
  std::string value_fill_;
  std::vector<ValueView> values_;
  std::vector<std::unique_ptr<Second>> timeline_;
  size_t printed_ = 0;
  Counters total_;
  LatencyHistogram hist_;          // from the intended (scheduled) send time
  LatencyHistogram service_hist_;  // from the actual send time
  EventPtr tick_, end_;
};

// ---------------------------------------------------------------------------------------------- connections

void Loadgen::Connect(Conn& c) {
  c.last_connect_ns = NowNs();
  c.fd = socket(target_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) {
    std::perror("memha-loadgen: socket");
    std::exit(1);
  }
  int one = 1;
  if (target_.ss_family != AF_UNIX) setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int rc = connect(c.fd, reinterpret_cast<sockaddr*>(&target_), target_len_);
  if (rc < 0 && errno != EINPROGRESS) {
    Fail(c, false);
    return;
  }
  c.rev.reset(event_new(base_.get(), c.fd, EV_READ | EV_PERSIST, ReadCb, &c));
  c.wev.reset(event_new(base_.get(), c.fd, EV_WRITE | EV_PERSIST, WriteCb, &c));
  event_add(c.wev.get(), nullptr);
  c.write_armed = true;
}

void Loadgen::Fail(Conn& c, bool timeout) {
  uint64_t now = NowNs();
  if (!c.connected) {
    Count(now, [](Counters& k) { ++k.conn_errors; ++k.errors; });
  }
  for (const Pending& p : c.pending) {
    if (p.kind == OpKind::kSet || p.kind == OpKind::kDelete || p.kind == OpKind::kFill || p.kind == OpKind::kPrefill)
      verifier_.EndWrite(p.keys[0], p.seq, false);
    if (p.kind == OpKind::kPrefill) {
      --prefill_outstanding_;
      ++prefill_errors_;
      continue;
    }
    Count(now, [&](Counters& k) {
      ++k.errors;
      if (timeout) ++k.timeouts;
    });
  }
  c.pending.clear();
  c.rev.reset();
  c.wev.reset();
  c.write_armed = false;
  if (c.fd >= 0) close(c.fd);
  c.fd = -1;
  if (c.connected) --connected_;
  c.connected = false;
  c.out.clear();
  c.out_off = 0;
  c.in_len = c.in_off = 0;
  if (phase_ == Phase::kDone) return;
  // Reconnect at once after a drop, at most every 100 ms after a failed connect (the tick retries).
  if (now - c.last_connect_ns > 100000000ull) Connect(c);
  if (phase_ == Phase::kPrefill) MaybeStart();
}

void Loadgen::OnConnected(Conn& c) {
  c.connected = true;
  ++connected_;
  event_add(c.rev.get(), nullptr);
  event_del(c.wev.get());
  c.write_armed = false;
  if (phase_ == Phase::kConnecting) {
    if (connected_ == static_cast<int>(conns_.size())) MaybeStart();
    return;
  }
  if (phase_ == Phase::kPrefill) {
    MaybeStart();
  } else if (phase_ == Phase::kMain && !o_.idle) {
    if (o_.rate > 0) IssueDue(c);
    else Refill(c);
  }
  Flush(c);
}

void Loadgen::ReadCb(evutil_socket_t, short, void* arg) {
  auto* c = static_cast<Conn*>(arg);
  c->owner->OnReadable(*c);
}
void Loadgen::WriteCb(evutil_socket_t, short, void* arg) {
  auto* c = static_cast<Conn*>(arg);
  c->owner->OnWritable(*c);
}

void Loadgen::OnWritable(Conn& c) {
  if (!c.connected) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      Fail(c, false);
      return;
    }
    OnConnected(c);
    return;
  }
  Flush(c);
}

void Loadgen::Flush(Conn& c) {
  if (!c.connected) return;
  while (c.out_off < c.out.size()) {
    ssize_t n = send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!c.write_armed) {
        event_add(c.wev.get(), nullptr);
        c.write_armed = true;
      }
      return;
    }
    if (n < 0 && errno == EINTR) continue;
    Fail(c, false);
    return;
  }
  c.out.clear();
  c.out_off = 0;
  if (c.write_armed) {
    event_del(c.wev.get());
    c.write_armed = false;
  }
}

void Loadgen::OnReadable(Conn& c) {
  for (;;) {
    if (c.in.size() - c.in_len < kReadChunk) c.in.resize(c.in_len + kReadChunk);
    ssize_t n = recv(c.fd, c.in.data() + c.in_len, c.in.size() - c.in_len, 0);
    if (n > 0) {
      c.in_len += static_cast<size_t>(n);
      if (static_cast<size_t>(n) < kReadChunk) break;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    Fail(c, false);  // closed or reset
    return;
  }
  while (c.in_off < c.in_len) {
    if (c.pending.empty()) {
      Fail(c, false);  // bytes nobody asked for
      return;
    }
    const Pending& front = c.pending.front();
    ReplyKind kind = front.kind == OpKind::kGet      ? ReplyKind::kRetrieval
                     : front.kind == OpKind::kDelete ? ReplyKind::kDelete
                                                     : ReplyKind::kStorage;
    ParsedReply r = ParseReply(c.in.data() + c.in_off, c.in_len - c.in_off, kind, &values_);
    if (r.status == ParseStatus::kNeedMore) break;
    if (r.status == ParseStatus::kError) {
      std::fprintf(stderr, "memha-loadgen: connection %d: not a memcached reply\n", c.id);
      Fail(c, false);
      return;
    }
    Pending p = front;
    c.pending.pop_front();
    HandleReply(c, p, r);
    c.in_off += r.consumed;
  }
  if (c.in_off == c.in_len) {
    c.in_off = c.in_len = 0;
  } else if (c.in_off > c.in.size() / 2) {
    std::memmove(c.in.data(), c.in.data() + c.in_off, c.in_len - c.in_off);
    c.in_len -= c.in_off;
    c.in_off = 0;
  }
  if (phase_ == Phase::kPrefill) MaybeStart();
  else if (phase_ == Phase::kMain) {
    if (o_.rate > 0) IssueDue(c);
    else Refill(c);
  }
  Flush(c);
}

// ---------------------------------------------------------------------------------------------- requests

void Loadgen::AppendKey(std::string& out, uint32_t key) {
  out += o_.key_prefix;
  char buf[16];
  auto r = std::to_chars(buf, buf + sizeof buf, key);
  out.append(buf, r.ptr);
}

bool Loadgen::KeyIndexOf(std::string_view key, uint32_t* idx) const {
  if (key.substr(0, o_.key_prefix.size()) != o_.key_prefix) return false;
  key.remove_prefix(o_.key_prefix.size());
  auto r = std::from_chars(key.data(), key.data() + key.size(), *idx);
  return r.ec == std::errc() && r.ptr == key.data() + key.size() && *idx < o_.keys;
}

void Loadgen::IssueGet(Conn& c, uint64_t intended) {
  Pending p;
  p.kind = OpKind::kGet;
  p.nkeys = static_cast<uint8_t>(o_.multiget);
  p.intended_ns = intended;
  p.seq = 0;
  c.out += "get";
  for (int i = 0; i < o_.multiget; ++i) {
    uint32_t k = static_cast<uint32_t>(Rand() % o_.keys);
    p.keys[i] = k;
    if (o_.verify) p.snaps[i] = verifier_.Snapshot(k);
    c.out += ' ';
    AppendKey(c.out, k);
  }
  c.out += "\r\n";
  p.sent_ns = NowNs();
  c.pending.push_back(p);
}

void Loadgen::IssueWrite(Conn& c, OpKind kind, uint32_t key, uint64_t intended) {
  Pending p;
  p.kind = kind;
  p.nkeys = 1;
  p.keys[0] = key;
  p.intended_ns = intended;
  p.seq = verifier_.BeginWrite(key, kind == OpKind::kDelete);
  if (kind == OpKind::kDelete) {
    c.out += "delete ";
    AppendKey(c.out, key);
    c.out += "\r\n";
  } else {
    char prefix[48];
    size_t plen = memha::bench::EncodeValuePrefix(prefix, sizeof prefix, key, p.seq);
    size_t len = std::max(plen, o_.value_size);
    c.out += "set ";
    AppendKey(c.out, key);
    c.out += " 0 0 ";
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, len);
    c.out.append(buf, r.ptr);
    c.out += "\r\n";
    c.out.append(prefix, plen);
    c.out.append(value_fill_.data(), len - plen);
    c.out += "\r\n";
  }
  p.sent_ns = NowNs();
  c.pending.push_back(p);
}

void Loadgen::IssueOne(Conn& c, uint64_t intended) {
  double r = RandUnit();
  if (r < o_.get_ratio) {
    IssueGet(c, intended);
  } else if (r < o_.get_ratio + o_.delete_ratio) {
    IssueWrite(c, OpKind::kDelete, static_cast<uint32_t>(Rand() % o_.keys), intended);
  } else {
    IssueWrite(c, OpKind::kSet, static_cast<uint32_t>(Rand() % o_.keys), intended);
  }
}

void Loadgen::Refill(Conn& c) {
  if (!c.connected) return;
  while (c.pending.size() < static_cast<size_t>(o_.pipeline)) IssueOne(c, NowNs());
}

void Loadgen::IssueDue(Conn& c) {
  uint64_t now = NowNs();
  uint64_t interval = static_cast<uint64_t>(1e9 * o_.connections / o_.rate);
  uint64_t timeout = static_cast<uint64_t>(o_.timeout_ms) * 1000000ull;
  while (c.next_ns <= now && c.next_ns < end_ns_) {
    if (!c.connected || c.pending.size() >= static_cast<size_t>(o_.max_outstanding)) {
      // Could not be sent in time: a client with this timeout would have given up on it.
      if (now - c.next_ns <= timeout) break;
      Count(now, [](Counters& k) { ++k.dropped; ++k.errors; });
      c.next_ns += interval;
      continue;
    }
    IssueOne(c, c.next_ns);
    c.next_ns += interval;
  }
}

void Loadgen::ArmTimer(Conn& c) {
  uint64_t now = NowNs();
  uint64_t delay = c.next_ns > now ? c.next_ns - now : 1000000ull;  // backlogged: look again in 1 ms
  timeval tv = ToTimeval(delay);
  evtimer_add(c.timer.get(), &tv);
}

void Loadgen::TimerCb(evutil_socket_t, short, void* arg) {
  auto* c = static_cast<Conn*>(arg);
  Loadgen* g = c->owner;
  if (g->phase_ != Phase::kMain) return;
  g->IssueDue(*c);
  g->Flush(*c);
  if (g->phase_ == Phase::kMain && c->next_ns < g->end_ns_) g->ArmTimer(*c);
}

void Loadgen::HandleReply(Conn& c, const Pending& p, const ParsedReply& r) {
  uint64_t now = NowNs();
  bool failed = memha::bench::IsFailure(r.outcome);
  if (p.kind == OpKind::kPrefill) {
    --prefill_outstanding_;
    verifier_.EndWrite(p.keys[0], p.seq, r.outcome == ReplyOutcome::kStored);
    if (r.outcome != ReplyOutcome::kStored) ++prefill_errors_;
    return;
  }
  if (p.kind != OpKind::kGet) {
    bool ok = p.kind == OpKind::kDelete
                  ? (r.outcome == ReplyOutcome::kDeleted || r.outcome == ReplyOutcome::kNotFound)
                  : r.outcome == ReplyOutcome::kStored;
    verifier_.EndWrite(p.keys[0], p.seq, ok);
  }
  if (phase_ != Phase::kMain || now < start_ns_) return;
  if (failed && o_.progress && total_.errors < 5)
    std::fprintf(stderr, "memha-loadgen: error reply: %.*s\n", static_cast<int>(r.error_line.size()),
                 r.error_line.data());
  uint64_t lat = now > p.intended_ns ? now - p.intended_ns : 0;
  Second& s = SecondAt(now);
  bool summary = InSummary(now);
  s.h.Record(lat);
  if (summary) {
    hist_.Record(lat);
    service_hist_.Record(now > p.sent_ns ? now - p.sent_ns : 0);
  }
  uint64_t hits = 0, misses = 0, stale = 0, resurrected = 0, corrupt = 0, indeterminate = 0;
  bool single_miss = false;
  if (p.kind == OpKind::kGet && !failed) {
    hits = values_.size();
    misses = p.nkeys > hits ? p.nkeys - hits : 0;
    single_miss = p.nkeys == 1 && hits == 0;
    if (o_.verify) {
      for (const ValueView& v : values_) {
        uint32_t idx = 0;
        int j = -1;
        if (KeyIndexOf(v.key, &idx)) {
          for (int i = 0; i < p.nkeys; ++i)
            if (p.keys[i] == idx) { j = i; break; }
        }
        if (j < 0) { ++corrupt; continue; }
        switch (verifier_.Check(idx, p.snaps[j], v.data)) {
          case ReadVerdict::kFresh: break;
          case ReadVerdict::kStale: ++stale; break;
          case ReadVerdict::kResurrected: ++resurrected; break;
          case ReadVerdict::kCorrupt: ++corrupt; break;
          case ReadVerdict::kIndeterminate: ++indeterminate; break;
        }
      }
    }
  }
  auto add = [&](Counters& k) {
    ++k.ops;
    switch (p.kind) {
      case OpKind::kGet: ++k.gets; k.keys += p.nkeys; break;
      case OpKind::kSet: ++k.sets; break;
      case OpKind::kDelete: ++k.deletes; break;
      case OpKind::kFill: ++k.fills; break;
      case OpKind::kPrefill: break;
    }
    if (failed) ++k.errors;
    k.hits += hits;
    k.misses += misses;
    k.stale += stale;
    k.resurrected += resurrected;
    k.corrupt += corrupt;
    k.indeterminate += indeterminate;
  };
  add(s.c);
  if (summary) add(total_);
  if (single_miss && o_.read_through && now < end_ns_) IssueWrite(c, OpKind::kFill, p.keys[0], now);
}

// ---------------------------------------------------------------------------------------------- phases

void Loadgen::MaybeStart() {
  if (phase_ == Phase::kConnecting) {
    if (o_.idle) {
      StartMain();
      return;
    }
    phase_ = o_.prefill ? Phase::kPrefill : Phase::kMain;
    if (phase_ == Phase::kMain) {
      StartMain();
      return;
    }
    prefill_ns_ = NowNs();
  }
  if (phase_ != Phase::kPrefill) return;
  for (auto& cp : conns_) {
    Conn& c = *cp;
    if (!c.connected) continue;
    while (prefill_cursor_ < o_.keys && c.pending.size() < 32) {
      uint32_t key = prefill_cursor_++;
      IssueWrite(c, OpKind::kPrefill, key, NowNs());
      ++prefill_outstanding_;
    }
    Flush(c);
  }
  if (prefill_cursor_ >= o_.keys && prefill_outstanding_ == 0) {
    prefill_ns_ = NowNs() - prefill_ns_;
    if (o_.prefill_only) {
      phase_ = Phase::kDone;
      event_base_loopbreak(base_.get());
      return;
    }
    StartMain();
  }
}

void Loadgen::StartMain() {
  phase_ = Phase::kMain;
  start_ns_ = NowNs();
  start_unix_ms_ = UnixMs();
  cpu_start_ = CpuSeconds();
  end_ns_ = start_ns_ + static_cast<uint64_t>(o_.duration_s * 1e9);
  timeval tv = ToTimeval(end_ns_ - start_ns_);
  end_.reset(evtimer_new(base_.get(), EndCb, this));
  evtimer_add(end_.get(), &tv);
  if (o_.idle) return;
  if (o_.progress) std::fprintf(stderr, "memha-loadgen: MAIN_START unix_ms=%llu\n",
                                static_cast<unsigned long long>(start_unix_ms_));
  for (auto& cp : conns_) {
    Conn& c = *cp;
    if (o_.rate > 0) {
      uint64_t interval = static_cast<uint64_t>(1e9 * o_.connections / o_.rate);
      c.next_ns = start_ns_ + interval * static_cast<uint64_t>(c.id) / static_cast<uint64_t>(o_.connections);
      c.timer.reset(evtimer_new(base_.get(), TimerCb, &c));
      ArmTimer(c);
    } else {
      Refill(c);
      Flush(c);
    }
  }
}

void Loadgen::EndCb(evutil_socket_t, short, void* arg) {
  auto* g = static_cast<Loadgen*>(arg);
  g->phase_ = Phase::kDone;
  event_base_loopbreak(g->base_.get());
}

void Loadgen::TickCb(evutil_socket_t, short, void* arg) {
  auto* g = static_cast<Loadgen*>(arg);
  uint64_t now = NowNs();
  uint64_t timeout = static_cast<uint64_t>(g->o_.timeout_ms) * 1000000ull;
  for (auto& cp : g->conns_) {
    Conn& c = *cp;
    if (c.fd < 0) {
      if (now - c.last_connect_ns > 100000000ull) g->Connect(c);
      continue;
    }
    if (!c.connected && now - c.last_connect_ns > timeout) {
      g->Fail(c, true);
    } else if (!c.pending.empty() && now - c.pending.front().sent_ns > timeout) {
      // Read what is there first: if this process was the one descheduled, the replies are waiting.
      g->OnReadable(c);
      if (c.fd >= 0 && !c.pending.empty() && NowNs() - c.pending.front().sent_ns > timeout) g->Fail(c, true);
    }
  }
  if (g->phase_ == Phase::kMain && g->o_.progress && now > g->start_ns_) {
    size_t done = static_cast<size_t>((now - g->start_ns_) / 1000000000ull);
    while (g->printed_ < done && g->printed_ < g->timeline_.size()) g->PrintProgress(g->printed_++);
  }
}

Second& Loadgen::SecondAt(uint64_t now) {
  size_t i = static_cast<size_t>((now - start_ns_) / 1000000000ull);
  while (timeline_.size() <= i) timeline_.push_back(std::make_unique<Second>());
  return *timeline_[i];
}

void Loadgen::PrintProgress(size_t i) {
  const Second& s = *timeline_[i];
  double hr = s.c.hits + s.c.misses ? 100.0 * static_cast<double>(s.c.hits) / static_cast<double>(s.c.hits + s.c.misses) : 0;
  std::fprintf(stderr,
               "t=%zu ops=%llu errors=%llu hit=%.1f%% p99_us=%.0f stale=%llu resurrected=%llu indeterminate=%llu\n", i,
               static_cast<unsigned long long>(s.c.ops), static_cast<unsigned long long>(s.c.errors), hr,
               static_cast<double>(s.h.Percentile(99)) / 1000.0, static_cast<unsigned long long>(s.c.stale),
               static_cast<unsigned long long>(s.c.resurrected), static_cast<unsigned long long>(s.c.indeterminate));
}

// ---------------------------------------------------------------------------------------------- output

void AppendCounters(std::string& j, const Counters& c) {
  char buf[640];
  std::snprintf(buf, sizeof buf,
                "\"ops\":%llu,\"gets\":%llu,\"sets\":%llu,\"deletes\":%llu,\"fills\":%llu,\"keys\":%llu,"
                "\"hits\":%llu,\"misses\":%llu,\"errors\":%llu,\"timeouts\":%llu,\"conn_errors\":%llu,"
                "\"dropped\":%llu,\"stale\":%llu,\"resurrected\":%llu,\"corrupt\":%llu,\"indeterminate\":%llu",
                (unsigned long long)c.ops, (unsigned long long)c.gets, (unsigned long long)c.sets,
                (unsigned long long)c.deletes, (unsigned long long)c.fills, (unsigned long long)c.keys,
                (unsigned long long)c.hits, (unsigned long long)c.misses, (unsigned long long)c.errors,
                (unsigned long long)c.timeouts, (unsigned long long)c.conn_errors, (unsigned long long)c.dropped,
                (unsigned long long)c.stale, (unsigned long long)c.resurrected, (unsigned long long)c.corrupt,
                (unsigned long long)c.indeterminate);
  j += buf;
}

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (static_cast<unsigned char>(ch) < 0x20) continue;
    out += ch;
  }
  return out + "\"";
}

std::string Loadgen::Json() const {
  std::string j = "{";
  char buf[1024];
  double secs = std::max(1e-9, o_.duration_s - o_.warmup_s);
  std::snprintf(buf, sizeof buf,
                "\"label\":%s,\"server\":%s,\"options\":{\"connections\":%d,\"pipeline\":%d,\"rate\":%.0f,"
                "\"duration_s\":%.3f,\"warmup_s\":%.3f,\"get_ratio\":%.3f,\"delete_ratio\":%.3f,\"value_size\":%zu,"
                "\"keys\":%u,\"multiget\":%d,\"verify\":%s,\"read_through\":%s,\"timeout_ms\":%d,\"idle\":%s},",
                JsonString(o_.label).c_str(), JsonString(o_.host + ":" + o_.port).c_str(), o_.connections,
                o_.pipeline, o_.rate, o_.duration_s, o_.warmup_s, o_.get_ratio, o_.delete_ratio, o_.value_size,
                o_.keys, o_.multiget, o_.verify ? "true" : "false", o_.read_through ? "true" : "false",
                o_.timeout_ms, o_.idle ? "true" : "false");
  j += buf;
  std::snprintf(buf, sizeof buf,
                "\"start_unix_ms\":%llu,\"client_cpu_s\":%.3f,\"connected\":%d,\"prefill\":{\"keys\":%u,\"errors\":%llu,\"seconds\":%.3f},",
                (unsigned long long)start_unix_ms_, cpu_main_, connected_, o_.prefill ? o_.keys : 0,
                (unsigned long long)prefill_errors_, o_.prefill ? static_cast<double>(prefill_ns_) / 1e9 : 0.0);
  j += buf;
  j += "\"summary\":{";
  AppendCounters(j, total_);
  double hr = total_.hits + total_.misses
                  ? static_cast<double>(total_.hits) / static_cast<double>(total_.hits + total_.misses)
                  : 0.0;
  auto us = [](uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
  std::snprintf(buf, sizeof buf,
                ",\"seconds\":%.3f,\"ops_per_s\":%.1f,\"keys_per_s\":%.1f,\"hit_ratio\":%.5f,"
                "\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f},"
                "\"service_us\":{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f}}",
                secs, static_cast<double>(total_.ops) / secs,
                static_cast<double>(total_.keys) / secs, hr, us(hist_.Percentile(50)), us(hist_.Percentile(90)),
                us(hist_.Percentile(99)), us(hist_.Percentile(99.9)), us(hist_.Max()), hist_.Mean() / 1000.0,
                us(service_hist_.Percentile(50)), us(service_hist_.Percentile(99)),
                us(service_hist_.Percentile(99.9)));
  j += buf;
  j += ",\"timeline\":[";
  size_t n = std::min(timeline_.size(), static_cast<size_t>(std::ceil(o_.duration_s)));
  for (size_t i = 0; i < n; ++i) {
    const Second& s = *timeline_[i];
    if (i) j += ',';
    std::snprintf(buf, sizeof buf, "{\"t\":%zu,", i);
    j += buf;
    AppendCounters(j, s.c);
    double shr = s.c.hits + s.c.misses
                     ? static_cast<double>(s.c.hits) / static_cast<double>(s.c.hits + s.c.misses)
                     : 0.0;
    std::snprintf(buf, sizeof buf, ",\"hit_ratio\":%.5f,\"p50_us\":%.1f,\"p99_us\":%.1f}", shr,
                  us(s.h.Percentile(50)), us(s.h.Percentile(99)));
    j += buf;
  }
  j += "]}\n";
  return j;
}

int Loadgen::Run() {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  if (!o_.unix_path.empty()) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    if (o_.unix_path.size() >= sizeof(un.sun_path)) {
      std::fprintf(stderr, "memha-loadgen: %s: path too long\n", o_.unix_path.c_str());
      return 1;
    }
    std::memcpy(un.sun_path, o_.unix_path.data(), o_.unix_path.size());
    std::memcpy(&target_, &un, sizeof un);
    target_len_ = sizeof un;
  } else {
    int rc = getaddrinfo(o_.host.c_str(), o_.port.c_str(), &hints, &addr_);
    if (rc != 0) {
      std::fprintf(stderr, "memha-loadgen: %s:%s: %s\n", o_.host.c_str(), o_.port.c_str(), gai_strerror(rc));
      return 1;
    }
    std::memcpy(&target_, addr_->ai_addr, addr_->ai_addrlen);
    target_len_ = addr_->ai_addrlen;
  }
  event_config* cfg = event_config_new();
  event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
  base_.reset(event_base_new_with_config(cfg));
  event_config_free(cfg);
  value_fill_.assign(std::max<size_t>(o_.value_size, 1), 'v');
  values_.reserve(kMaxMulti);
  for (int i = 0; i < o_.connections; ++i) {
    auto c = std::make_unique<Conn>();
    c->owner = this;
    c->id = i;
    conns_.push_back(std::move(c));
  }
  for (auto& c : conns_) Connect(*c);
  tick_.reset(event_new(base_.get(), -1, EV_PERSIST, TickCb, this));
  timeval tick = {0, 20000};
  event_add(tick_.get(), &tick);
  // Give up waiting for every connection after the timeout: start with those that are up.
  EventPtr start_anyway(evtimer_new(
      base_.get(),
      [](evutil_socket_t, short, void* arg) {
        auto* g = static_cast<Loadgen*>(arg);
        if (g->phase_ == Phase::kConnecting) g->MaybeStart();
      },
      this));
  timeval st = ToTimeval(static_cast<uint64_t>(std::max(o_.timeout_ms, 2000)) * 1000000ull);
  evtimer_add(start_anyway.get(), &st);
  event_base_dispatch(base_.get());
  if (start_ns_ != 0) cpu_main_ = CpuSeconds() - cpu_start_;
  phase_ = Phase::kDone;
  if (o_.progress)
    while (printed_ < timeline_.size() && printed_ < static_cast<size_t>(std::ceil(o_.duration_s)))
      PrintProgress(printed_++);
  std::string json = Json();
  if (o_.json_path == "-") {
    std::fputs(json.c_str(), stdout);
  } else {
    FILE* f = std::fopen(o_.json_path.c_str(), "w");
    if (f == nullptr) {
      std::perror(o_.json_path.c_str());
      return 1;
    }
    std::fputs(json.c_str(), f);
    std::fclose(f);
  }
  double secs = std::max(1e-9, o_.duration_s - o_.warmup_s);
  std::fprintf(stderr, "memha-loadgen %s: ops/s=%.0f errors=%llu hit=%.3f p50_us=%.1f p99_us=%.1f stale=%llu resurrected=%llu\n",
               o_.label.c_str(), static_cast<double>(total_.ops) / secs, (unsigned long long)total_.errors,
               total_.hits + total_.misses ? static_cast<double>(total_.hits) / static_cast<double>(total_.hits + total_.misses) : 0.0,
               static_cast<double>(hist_.Percentile(50)) / 1000.0, static_cast<double>(hist_.Percentile(99)) / 1000.0,
               (unsigned long long)total_.stale, (unsigned long long)total_.resurrected);
  for (auto& c : conns_) {
    c->rev.reset();
    c->wev.reset();
    c->timer.reset();
    if (c->fd >= 0) close(c->fd);
  }
  tick_.reset();
  end_.reset();
  start_anyway.reset();
  if (addr_ != nullptr) freeaddrinfo(addr_);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!ParseOptions(argc, argv, &o)) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  Loadgen g(std::move(o));
  return g.Run();
}
