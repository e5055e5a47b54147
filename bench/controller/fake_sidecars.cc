// fake_sidecars: one process standing in for many memha-sidecar admin servers (bench/controller/propagation.sh).
//
// Listens on PORT of every address FIRST..FIRST+COUNT-1 (IPv4, e.g. 127.1.0.1 upwards: Linux routes all of
// 127/8 to lo), answers `PUT /v1/topology` with 200 when it is signed (an X-Memha-Signature header; the signature
// itself is not verified here: the sidecar's check is not what is measured), 401 otherwise, 404 for any
// other request, and writes one line per push to stdout, flushed after every event-loop round:
//
//   <CLOCK_MONOTONIC ns when the whole request had arrived> <local address> <epoch> <version> <member states>
//
// member states: `pool/member=state,...` over every pool's primary and backup members, in body order.
// A body that is not the expected JSON is answered 400 and logged with epoch/version -1.
//
// Single thread, epoll, non-blocking sockets, one request per connection (the controller sends
// `Connection: close`; keep-alive requests on one connection are served too). It does nothing but parse, so it
// stays far cheaper than the controller it measures. Build: g++ -O2 -std=c++20 fake_sidecars.cc -o fake_sidecars
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

struct Conn {
  int fd = -1;
  std::string local;  // the address the client connected to (the "pod IP")
  std::string buf;
};

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return std::string(s);
}

void Reply(int fd, int code, const char* reason, bool close) {
  char out[256];
  int n = snprintf(out, sizeof out, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: 2\r\n%s\r\n{}",
                   code, reason, close ? "Connection: close\r\n" : "");
  // Tiny reply into an empty socket buffer: one write suffices.
  ssize_t w = write(fd, out, n);
  (void)w;
}

std::string Summarize(const nlohmann::json& t, long long* epoch, long long* version) {
  *epoch = t.at("epoch").get<long long>();
  *version = t.at("version").get<long long>();
  std::string states;
  for (const auto& pool : t.at("pools")) {
    std::string pname = pool.value("name", "?");
    for (const char* field : {"primary", "backup"}) {
      if (!pool.contains(field)) continue;
      for (const auto& m : pool.at(field)) {
        if (!states.empty()) states += ',';
        states += pname + "/" + m.value("name", "?") + "=" + m.value("state", "?");
      }
    }
  }
  return states.empty() ? "-" : states;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s FIRST_IPV4 COUNT PORT\n", argv[0]);
    return 2;
  }
  in_addr first{};
  if (inet_pton(AF_INET, argv[1], &first) != 1) {
    fprintf(stderr, "bad address %s\n", argv[1]);
    return 2;
  }
  int count = atoi(argv[2]);
  int port = atoi(argv[3]);

  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);

  int ep = epoll_create1(EPOLL_CLOEXEC);
  std::unordered_map<int, std::string> listeners;  // fd -> local address
  uint32_t base = ntohl(first.s_addr);
  for (int i = 0; i < count; ++i) {
    in_addr a{htonl(base + static_cast<uint32_t>(i))};
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a, text, sizeof text);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr = a;
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(fd, 1024) != 0) {
      fprintf(stderr, "bind/listen %s:%d: %s\n", text, port, strerror(errno));
      return 1;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    listeners.emplace(fd, text);
  }
  fprintf(stderr, "fake_sidecars: listening on %d addresses from %s port %d\n", count, argv[1], port);
  printf("# ready %d\n", count);
  fflush(stdout);

  std::unordered_map<int, Conn> conns;
  std::vector<epoll_event> events(256);
  char chunk[65536];
  for (;;) {
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (auto l = listeners.find(fd); l != listeners.end()) {
        for (;;) {
          int c = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          int one = 1;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event ev{};
          ev.events = EPOLLIN | EPOLLRDHUP;
          ev.data.fd = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
          conns[c] = Conn{c, l->second, {}};
        }
        continue;
      }
      auto it = conns.find(fd);
      if (it == conns.end()) continue;
      Conn& conn = it->second;
      bool closed = false;
      for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r > 0) {
          conn.buf.append(chunk, static_cast<size_t>(r));
          continue;
        }
        if (r == 0) closed = true;
        else if (errno != EAGAIN && errno != EWOULDBLOCK) closed = true;
        break;
      }
      // Serve every complete request in the buffer.
      bool done = closed;
      while (!done) {
        size_t hend = conn.buf.find("\r\n\r\n");
        if (hend == std::string::npos) break;
        std::string_view head(conn.buf.data(), hend);
        size_t eol = head.find("\r\n");
        std::string_view request_line = head.substr(0, eol);
        size_t length = 0;
        bool keep_alive = true;
        bool is_signed = false;
        size_t pos = eol == std::string_view::npos ? head.size() : eol + 2;
        while (pos < head.size()) {
          size_t e = head.find("\r\n", pos);
          if (e == std::string_view::npos) e = head.size();
          std::string_view line = head.substr(pos, e - pos);
          size_t colon = line.find(':');
          if (colon != std::string_view::npos) {
            std::string_view key = line.substr(0, colon);
            std::string value = Trim(line.substr(colon + 1));
            if (IEquals(key, "content-length")) length = std::strtoull(value.c_str(), nullptr, 10);
            else if (IEquals(key, "connection") && IEquals(value, "close")) keep_alive = false;
            else if (IEquals(key, "x-memha-signature")) is_signed = !value.empty();
          }
          pos = e + 2;
        }
        if (conn.buf.size() < hend + 4 + length) break;  // body not complete yet
        int64_t t = NowNs();
        std::string body = conn.buf.substr(hend + 4, length);
        bool is_put = request_line.rfind("PUT /v1/topology", 0) == 0;
        if (!is_put) {
          Reply(fd, 404, "Not Found", !keep_alive);
        } else if (!is_signed) {
          Reply(fd, 401, "Unauthorized", !keep_alive);
          printf("%lld %s -2 -2 unauthorized\n", static_cast<long long>(t), conn.local.c_str());
        } else {
          long long epoch = -1, version = -1;
          std::string states = "-";
          bool ok = true;
          try {
            states = Summarize(nlohmann::json::parse(body), &epoch, &version);
          } catch (const std::exception&) {
            ok = false;
          }
          Reply(fd, ok ? 200 : 400, ok ? "OK" : "Bad Request", !keep_alive);
          printf("%lld %s %lld %lld %s\n", static_cast<long long>(t), conn.local.c_str(), epoch, version,
                 states.c_str());
        }
        conn.buf.erase(0, hend + 4 + length);
        if (!keep_alive) done = true;
      }
      if (done) {
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        close(fd);
        conns.erase(it);
      }
    }
    fflush(stdout);
  }
}
