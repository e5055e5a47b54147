#include "sidecar/admin/http_server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/log.h"
#include "sidecar/core/libevent.h"

namespace memha::http {
namespace {

constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kMaxLingerDiscard = 1024 * 1024;  // bytes read and dropped after a reply before giving up

ServerObserver& NoObserver() {
  static ServerObserver none;
  return none;
}

std::string Serialize(const Response& r) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + ReasonPhrase(r.status) + "\r\n";
  out += "Content-Type: " + r.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  out += "Connection: close\r\n";
  for (const auto& [name, value] : r.headers) out += name + ": " + value + "\r\n";
  out += "\r\n";
  out += r.body;
  return out;
}

// Best effort, never blocks: for a connection about to be closed (refusal, eviction, timeout).
void SendAndForget(int fd, const std::string& bytes) {
  ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)n;
}

}  // namespace

Response Response::Text(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  if (r.body.empty() || r.body.back() != '\n') r.body += '\n';
  return r;
}

Response Response::Json(int status, const nlohmann::json& body) {
  Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = body.dump() + "\n";
  return r;
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

struct Server::Impl {
  enum class Phase { kHead, kBody, kHandling, kWriting, kLinger };

  struct Conn {
    Impl* impl = nullptr;
    uint64_t id = 0;
    int fd = -1;
    Phase phase = Phase::kHead;
    std::string in;  // the head, then the body
    RequestHead head;
    Route route;
    uint64_t body_length = 0;
    std::string out;
    size_t out_sent = 0;
    size_t discarded = 0;
    EventPtr read_event, write_event, timer_event;
    std::list<Conn*>::iterator age;  // position in `by_age`
    bool from_loopback = false;
  };

  struct Job {
    uint64_t conn = 0;
    std::function<Response(const Request&)> handler;
    Request request;
  };

  Impl(std::string server_name, ServerLimits server_limits, Router route, ServerObserver* counters)
      : name(std::move(server_name)), limits(server_limits), router(std::move(route)),
        observer(counters ? *counters : NoObserver()) {}

  // --- server thread ---
  static void AcceptCb(evconnlistener*, evutil_socket_t fd, sockaddr* peer, int, void* arg) {
    static_cast<Impl*>(arg)->Accept(fd, IsLoopback(peer));
  }
  static bool IsLoopback(const sockaddr* peer) {
    if (peer == nullptr) return false;
    if (peer->sa_family == AF_INET) {
      return (ntohl(reinterpret_cast<const sockaddr_in*>(peer)->sin_addr.s_addr) >> 24) == 127;
    }
    if (peer->sa_family == AF_INET6) {
      const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(peer)->sin6_addr;
      return IN6_IS_ADDR_LOOPBACK(&a) || (IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127);
    }
    return false;
  }
  static void ReadCb(evutil_socket_t, short, void* arg) {
    auto* c = static_cast<Conn*>(arg);
    c->impl->OnReadable(c);
  }
  static void WriteCb(evutil_socket_t, short, void* arg) {
    auto* c = static_cast<Conn*>(arg);
    c->impl->Flush(c);
  }
  static void TimerCb(evutil_socket_t, short, void* arg) {
    auto* c = static_cast<Conn*>(arg);
    c->impl->OnTimer(c);
  }
  static void WakeCb(evutil_socket_t fd, short, void* arg) {
    uint64_t n;
    ssize_t r = ::read(fd, &n, sizeof n);
    (void)r;
    static_cast<Impl*>(arg)->OnWake();
  }
  static void ReapCb(evutil_socket_t, short, void* arg) { static_cast<Impl*>(arg)->graveyard.clear(); }
  // accept() failed (EMFILE, ENOBUFS...): the pending connection stays queued and the listener would spin, so it
  // pauses for a moment.
  static void AcceptErrorCb(evconnlistener* l, void* arg) {
    auto* s = static_cast<Impl*>(arg);
    int err = EVUTIL_SOCKET_ERROR();
    MEMHA_LOG(kWarn, s->name, "accept: " << evutil_socket_error_to_string(err) << "; pausing accepts for 100 ms");
    evconnlistener_disable(l);
    timeval tv = ToTimeval(std::chrono::milliseconds(100));
    event_add(s->resume_event.get(), &tv);
  }
  static void ResumeCb(evutil_socket_t, short, void* arg) {
    evconnlistener_enable(static_cast<Impl*>(arg)->listener.get());
  }

  void Accept(int fd, bool from_loopback) {
    if (conns.size() >= limits.max_connections && !EvictOne()) {
      static const std::string kBusy = Serialize(Response::Text(503, "too many admin connections, retry"));
      observer.OnRefused();
      SendAndForget(fd, kBusy);
      ::close(fd);
      return;
    }
    auto conn = std::make_unique<Conn>();
    Conn* c = conn.get();
    c->impl = this;
    c->id = next_id++;
    c->fd = fd;
    c->from_loopback = from_loopback;
    c->read_event.reset(event_new(base.get(), fd, EV_READ | EV_PERSIST, &ReadCb, c));
    c->write_event.reset(event_new(base.get(), fd, EV_WRITE | EV_PERSIST, &WriteCb, c));
    c->timer_event.reset(evtimer_new(base.get(), &TimerCb, c));
    c->age = by_age.insert(by_age.end(), c);
    conns.emplace(c->id, std::move(conn));
    event_add(c->read_event.get(), nullptr);
    ArmTimer(c, limits.request_timeout);
    observer.OnOpen();
  }

  // The oldest connection that is done (lingering), else the oldest still sending its request.
  bool EvictOne() {
    for (Phase wanted : {Phase::kLinger, Phase::kHead}) {
      for (Conn* c : by_age) {
        bool match = wanted == Phase::kLinger ? c->phase == Phase::kLinger
                                              : (c->phase == Phase::kHead || c->phase == Phase::kBody);
        if (!match) continue;
        if (c->phase != Phase::kLinger) {
          static const std::string kEvicted = Serialize(Response::Text(503, "evicted: request too slow, retry"));
          SendAndForget(c->fd, kEvicted);
        }
        observer.OnEvicted();
        Close(c);
        return true;
      }
    }
    return false;
  }

  void ArmTimer(Conn* c, std::chrono::milliseconds d) {
    timeval tv = ToTimeval(d);
    event_add(c->timer_event.get(), &tv);
  }

  void OnReadable(Conn* c) {
    if (c->phase == Phase::kLinger) return Discard(c);
    char buf[kReadChunk];
    size_t want = sizeof buf;
    if (c->phase == Phase::kHead) {
      // Never more than the head limit buffered before the route has decided (the token check).
      want = std::min(want, limits.max_head_bytes + 1 - std::min(c->in.size(), limits.max_head_bytes));
    } else {
      want = static_cast<size_t>(std::min<uint64_t>(want, c->body_length - c->in.size()));
    }
    ssize_t n = ::recv(c->fd, buf, want, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) return Close(c);  // the client went away before its request was complete
    c->in.append(buf, static_cast<size_t>(n));
    if (c->phase == Phase::kHead) return ParseHead(c);
    if (c->in.size() == c->body_length) Dispatch(c);
  }

  void ParseHead(Conn* c) {
    HeadParse p = ParseRequestHead(c->in, limits.max_head_bytes);
    if (p.state == HeadParse::State::kNeedMore) return;
    if (p.state == HeadParse::State::kError) return Respond(c, Response::Text(p.status, p.reason));
    c->head = std::move(p.head);
    c->head.from_loopback = c->from_loopback;
    try {
      c->route = router(c->head);
    } catch (const std::exception& e) {
      MEMHA_LOG(kError, name, "route " << c->head.method << " " << c->head.path << ": " << e.what());
      return Respond(c, Response::Json(500, {{"error", "internal error"}}));
    }
    if (c->route.reply) return Respond(c, std::move(*c->route.reply));
    c->body_length = c->head.content_length.value_or(0);
    if (c->body_length > c->route.max_body) {
      return Respond(c, Response::Json(413, {{"error", "request body of " + std::to_string(c->body_length) +
                                                           " bytes is over the limit of " +
                                                           std::to_string(c->route.max_body)}}));
    }
    if (c->body_length > 0 && c->head.expect_continue) SendAndForget(c->fd, "HTTP/1.1 100 Continue\r\n\r\n");
    c->in.erase(0, c->head.size);
    c->phase = Phase::kBody;
    c->in.reserve(static_cast<size_t>(c->body_length));
    if (c->in.size() >= c->body_length) {
      c->in.resize(static_cast<size_t>(c->body_length));  // bytes after the body: one request per connection
      Dispatch(c);
    }
  }

  void Dispatch(Conn* c) {
    Request request{std::move(c->head), std::move(c->in)};
    c->in.clear();
    if (!c->route.blocking) return Respond(c, Run(c->route.handler, request));
    c->phase = Phase::kHandling;
    event_del(c->read_event.get());
    event_del(c->timer_event.get());  // the handler bounds its own wait
    {
      std::lock_guard lock(mu);
      jobs.push_back(Job{c->id, std::move(c->route.handler), std::move(request)});
      if (!worker.joinable()) worker = std::thread([this] { WorkerLoop(); });
    }
    cv.notify_one();
  }

  Response Run(const std::function<Response(const Request&)>& handler, const Request& request) {
    try {
      return handler(request);
    } catch (const std::exception& e) {
      MEMHA_LOG(kError, name, request.head.method << " " << request.head.path << ": " << e.what());
      return Response::Json(500, {{"error", "internal error"}});
    }
  }

  void Respond(Conn* c, Response r) {
    observer.OnResponse(r.status);
    c->out = Serialize(r);
    c->out_sent = 0;
    c->phase = Phase::kWriting;
    event_del(c->read_event.get());
    ArmTimer(c, limits.write_timeout);
    Flush(c);
  }

  void Flush(Conn* c) {
    while (c->out_sent < c->out.size()) {
      ssize_t n = ::send(c->fd, c->out.data() + c->out_sent, c->out.size() - c->out_sent, MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        event_add(c->write_event.get(), nullptr);
        return;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Close(c);
      c->out_sent += static_cast<size_t>(n);
    }
    event_del(c->write_event.get());
    c->out.clear();
    c->out.shrink_to_fit();
    // Half-close, then wait for the client to close first: closing with its unread bytes queued would send a
    // reset that can destroy the reply before the client reads it.
    ::shutdown(c->fd, SHUT_WR);
    c->phase = Phase::kLinger;
    event_add(c->read_event.get(), nullptr);
    ArmTimer(c, limits.linger);
  }

  void Discard(Conn* c) {
    char buf[kReadChunk];
    ssize_t n = ::recv(c->fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) return Close(c);
    c->discarded += static_cast<size_t>(n);
    if (c->discarded > kMaxLingerDiscard) Close(c);
  }

  void OnTimer(Conn* c) {
    switch (c->phase) {
      case Phase::kHead:
      case Phase::kBody: {
        static const std::string kTimeout = Serialize(Response::Text(408, "request not received in time"));
        SendAndForget(c->fd, kTimeout);
        observer.OnTimeout();
        break;
      }
      case Phase::kWriting:
        observer.OnTimeout();
        break;
      case Phase::kHandling:
      case Phase::kLinger:
        break;
    }
    Close(c);
  }

  void Close(Conn* c) {
    auto it = conns.find(c->id);
    if (it == conns.end()) return;
    c->read_event.reset();
    c->write_event.reset();
    c->timer_event.reset();
    ::close(c->fd);
    c->fd = -1;
    by_age.erase(c->age);
    // Freed after this callback returns: the caller may still be inside one of the connection's callbacks.
    graveyard.push_back(std::move(it->second));
    conns.erase(it);
    event_active(reap_event.get(), EV_TIMEOUT, 0);
    observer.OnClose();
  }

  void OnWake() {
    std::vector<std::pair<uint64_t, Response>> ready;
    bool stop;
    {
      std::lock_guard lock(mu);
      ready.swap(done);
      stop = stop_requested;
    }
    if (stop) {
      event_base_loopbreak(base.get());
      return;
    }
    for (auto& [id, response] : ready) {
      auto it = conns.find(id);
      if (it != conns.end()) Respond(it->second.get(), std::move(response));
    }
  }

  // --- worker thread ---
  void WorkerLoop() {
    for (;;) {
      Job job;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [this] { return !jobs.empty() || worker_stop; });
        if (worker_stop) return;  // queued requests are dropped with their connections
        job = std::move(jobs.front());
        jobs.pop_front();
      }
      Response r = Run(job.handler, job.request);
      {
        std::lock_guard lock(mu);
        done.emplace_back(job.conn, std::move(r));
      }
      Wake();
    }
  }

  void Wake() {
    uint64_t one = 1;
    ssize_t n = ::write(wake_fd, &one, sizeof one);
    (void)n;  // EAGAIN: already signalled
  }

  std::string name;
  ServerLimits limits;
  Router router;
  ServerObserver& observer;

  EventBasePtr base;
  ListenerPtr listener;
  int wake_fd = -1;
  EventPtr wake_event, reap_event, resume_event;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns;
  std::list<Conn*> by_age;  // accept order
  std::vector<std::unique_ptr<Conn>> graveyard;
  uint64_t next_id = 1;
  std::thread thread;

  std::mutex mu;
  std::condition_variable cv;
  std::deque<Job> jobs;                             // guarded by mu
  std::vector<std::pair<uint64_t, Response>> done;  // guarded by mu
  bool stop_requested = false;                      // guarded by mu
  bool worker_stop = false;                         // guarded by mu
  std::thread worker;                               // started (under mu) by the first blocking request
};

Server::Server(std::string name, ServerLimits limits, Router router, ServerObserver* observer)
    : name_(name), impl_(std::make_unique<Impl>(std::move(name), limits, std::move(router), observer)) {}

Server::~Server() { Stop(); }

Status Server::Start(const std::string& address, uint16_t port) {
  Impl& s = *impl_;
  s.base.reset(event_base_new());
  if (!s.base) return Status::Internal(name_ + ": event_base_new failed");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string where = address + ":" + std::to_string(port);
  if (int rc = getaddrinfo(address.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0) {
    return Status::InvalidArgument(name_ + ": cannot listen on " + where + ": " + gai_strerror(rc));
  }
  s.listener.reset(evconnlistener_new_bind(s.base.get(), &Impl::AcceptCb, &s,
                                           LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 128,
                                           res->ai_addr, static_cast<int>(res->ai_addrlen)));
  int err = errno;
  freeaddrinfo(res);
  if (!s.listener) return Status::Unavailable(name_ + ": cannot listen on " + where + ": " + std::strerror(err));
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  getsockname(evconnlistener_get_fd(s.listener.get()), reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  s.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  s.wake_event.reset(event_new(s.base.get(), s.wake_fd, EV_READ | EV_PERSIST, &Impl::WakeCb, &s));
  event_add(s.wake_event.get(), nullptr);
  s.reap_event.reset(event_new(s.base.get(), -1, 0, &Impl::ReapCb, &s));
  s.resume_event.reset(evtimer_new(s.base.get(), &Impl::ResumeCb, &s));
  evconnlistener_set_error_cb(s.listener.get(), &Impl::AcceptErrorCb);
  s.thread = std::thread([&s] { event_base_loop(s.base.get(), 0); });
  MEMHA_LOG(kInfo, name_, "listening on " << address << ":" << port_);
  return Status::Ok();
}

void Server::Stop() {
  Impl& s = *impl_;
  if (s.thread.joinable()) {
    {
      std::lock_guard lock(s.mu);
      s.stop_requested = true;
    }
    s.Wake();
    s.thread.join();
  }
  {
    std::lock_guard lock(s.mu);
    s.worker_stop = true;
  }
  s.cv.notify_all();
  if (s.worker.joinable()) s.worker.join();
  // The loop has stopped: everything below runs on this thread alone.
  for (auto& [id, c] : s.conns) {
    c->read_event.reset();
    c->write_event.reset();
    c->timer_event.reset();
    ::close(c->fd);
  }
  s.conns.clear();
  s.by_age.clear();
  s.graveyard.clear();
  s.listener.reset();
  s.wake_event.reset();
  s.reap_event.reset();
  s.resume_event.reset();
  if (s.wake_fd >= 0) ::close(s.wake_fd);
  s.wake_fd = -1;
  s.base.reset();
}

}  // namespace memha::http
