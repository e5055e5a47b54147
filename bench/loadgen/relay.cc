// memha-bench-relay: the floor of a proxy hop. A single-threaded libevent TCP relay that copies bytes between each
// client connection and its own upstream connection without parsing them. Benchmarked as the target "relay", it
// shows what the extra loopback hop itself costs on the machine (system calls, wake-ups, a second process on the
// server core), so the part of memha's overhead that is its own logic can be told apart.
//   memha-bench-relay LISTEN_PORT UPSTREAM_HOST:PORT
#include <arpa/inet.h>
#include <event2/event.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

struct EventDeleter {
  void operator()(event* e) const { event_free(e); }
};
using EventPtr = std::unique_ptr<event, EventDeleter>;

event_base* g_base = nullptr;
addrinfo* g_upstream = nullptr;

struct Pair;

// One direction: bytes read from `from` are written to `to`; what the peer cannot take yet waits in `pending`
// and reading from `from` pauses until it drained.
struct Side {
  Pair* pair = nullptr;
  int fd = -1;
  EventPtr rev, wev;
  std::string pending;  // bytes read from the other side, not yet written to this one
  bool write_armed = false;
};

struct Pair {
  Side client, upstream;
  bool closed = false;
};

void Close(Pair* p) {
  if (p->closed) return;
  p->closed = true;
  for (Side* s : {&p->client, &p->upstream}) {
    s->rev.reset();
    s->wev.reset();
    if (s->fd >= 0) close(s->fd);
  }
  delete p;
}

Side& Other(Side& s) { return &s == &s.pair->client ? s.pair->upstream : s.pair->client; }

// Writes `to.pending`; returns false when the pair was closed.
bool Drain(Side& to) {
  while (!to.pending.empty()) {
    ssize_t n = send(to.fd, to.pending.data(), to.pending.size(), MSG_NOSIGNAL);
    if (n > 0) {
      to.pending.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!to.write_armed) {
        event_add(to.wev.get(), nullptr);
        to.write_armed = true;
        event_del(Other(to).rev.get());  // backpressure: stop reading the source
      }
      return true;
    }
    if (n < 0 && errno == EINTR) continue;
    Close(to.pair);
    return false;
  }
  if (to.write_armed) {
    event_del(to.wev.get());
    to.write_armed = false;
    event_add(Other(to).rev.get(), nullptr);
  }
  return true;
}

void OnRead(evutil_socket_t, short, void* arg) {
  Side& from = *static_cast<Side*>(arg);
  Side& to = Other(from);
  char buf[65536];
  for (;;) {
    ssize_t n = recv(from.fd, buf, sizeof buf, 0);
    if (n > 0) {
      to.pending.append(buf, static_cast<size_t>(n));
      if (static_cast<size_t>(n) < sizeof buf) break;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    Close(from.pair);
    return;
  }
  Drain(to);
}

void OnWrite(evutil_socket_t, short, void* arg) { Drain(*static_cast<Side*>(arg)); }

void Arm(Side& s) {
  s.rev.reset(event_new(g_base, s.fd, EV_READ | EV_PERSIST, OnRead, &s));
  s.wev.reset(event_new(g_base, s.fd, EV_WRITE | EV_PERSIST, OnWrite, &s));
  event_add(s.rev.get(), nullptr);
}

void OnAccept(evutil_socket_t lfd, short, void*) {
  for (;;) {
    int cfd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) return;
    int ufd = socket(g_upstream->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    // A blocking connect on loopback is immediate; it keeps the relay trivial.
    if (ufd < 0 || connect(ufd, g_upstream->ai_addr, g_upstream->ai_addrlen) != 0) {
      if (ufd >= 0) close(ufd);
      close(cfd);
      continue;
    }
    int one = 1;
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    evutil_make_socket_nonblocking(ufd);
    auto* p = new Pair;
    p->client.pair = p->upstream.pair = p;
    p->client.fd = cfd;
    p->upstream.fd = ufd;
    Arm(p->client);
    Arm(p->upstream);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: memha-bench-relay LISTEN_PORT UPSTREAM_HOST:PORT\n");
    return 2;
  }
  std::string up = argv[2];
  size_t colon = up.rfind(':');
  if (colon == std::string::npos) return 2;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(up.substr(0, colon).c_str(), up.substr(colon + 1).c_str(), &hints, &g_upstream) != 0) return 1;
  std::signal(SIGPIPE, SIG_IGN);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[1])));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(lfd, 4096) != 0) {
    std::perror("memha-bench-relay: listen");
    return 1;
  }
  g_base = event_base_new();
  EventPtr accept_ev(event_new(g_base, lfd, EV_READ | EV_PERSIST, OnAccept, nullptr));
  event_add(accept_ev.get(), nullptr);
  event_base_dispatch(g_base);
  return 0;
}
