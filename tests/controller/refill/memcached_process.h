#pragma once
// A real memcached (Debian's /usr/bin/memcached) on 127.0.0.1 and a free port, started by the test and stopped
// (SIGKILL) when the object goes away; plus a tiny synchronous meta client for the assertions.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "controller/refill/connection.h"
#include "controller/refill/meta_reply.h"

namespace memha::refill::testing {

inline uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// A synchronous client: one request, one reply.
class Client {
 public:
  explicit Client(const std::string& address) {
    auto c = MemberConnection::Connect(address, std::chrono::seconds(2));
    if (!c.ok()) throw std::runtime_error(c.status().message());
    conn_ = std::move(c).value();
  }
  // Sends `request` (with its \r\n) and returns the reply: first line, value (VA) and flags.
  struct Reply {
    ReplyCode code = ReplyCode::kError;
    std::string line;
    std::string value;
    int64_t NumberFlag(char c) const {
      MetaReply r;
      r.flags = line;  // tokens by their first character: "VA" and the length never look like a flag we ask for
      int64_t v = INT64_MIN;
      r.NumberFlag(c, &v);
      return v;
    }
  };
  Reply Call(const std::string& request) {
    auto deadline = SteadyClock::now() + std::chrono::seconds(5);
    if (!conn_->Send(request, deadline).ok()) throw std::runtime_error("send");
    while (true) {
      MetaReply r;
      ParsedReply p = ParseMetaReply(conn_->buffer(), &r);
      if (p.status == ReplyParse::kOk) {
        Reply out{r.code, std::string(r.line), std::string(r.value)};
        conn_->Consume(p.consumed);
        return out;
      }
      if (p.status == ReplyParse::kError) throw std::runtime_error("bad reply: " + std::string(conn_->buffer()));
      if (!conn_->ReadMore(deadline).ok()) throw std::runtime_error("read");
    }
  }
  // Raw line-oriented command (stats, flush_all): reads until `terminator` is seen.
  std::string Raw(const std::string& request, const std::string& terminator) {
    auto deadline = SteadyClock::now() + std::chrono::seconds(5);
    if (!conn_->Send(request, deadline).ok()) throw std::runtime_error("send");
    while (conn_->buffer().find(terminator) == std::string_view::npos) {
      if (!conn_->ReadMore(deadline).ok()) throw std::runtime_error("read");
    }
    size_t end = conn_->buffer().find(terminator) + terminator.size();
    std::string out(conn_->buffer().substr(0, end));
    conn_->Consume(end);
    return out;
  }
  bool Set(const std::string& key, const std::string& value, uint32_t flags = 0, int64_t ttl = 0) {
    return Call("ms " + key + " " + std::to_string(value.size()) + " F" + std::to_string(flags) + " T" +
                std::to_string(ttl) + "\r\n" + value + "\r\n")
               .code == ReplyCode::kHit;
  }
  bool Delete(const std::string& key) { return Call("md " + key + "\r\n").code == ReplyCode::kHit; }
  // mg <key> v f t: code kValue with value, or kMiss.
  Reply Get(const std::string& key) { return Call("mg " + key + " v f t\r\n"); }

 private:
  std::unique_ptr<MemberConnection> conn_;
};

class MemcachedProcess {
 public:
  explicit MemcachedProcess(std::vector<std::string> extra = {}) : port_(FreePort()) {
    std::vector<std::string> args = {"/usr/bin/memcached", "-l", "127.0.0.1", "-p", std::to_string(port_), "-U", "0",
                                     "-m", "256", "-t", "1"};
    if (::geteuid() == 0) args.insert(args.end(), {"-u", "nobody"});
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (MemberConnection::Connect(address(), std::chrono::milliseconds(200)).ok()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw std::runtime_error("memcached did not start on " + address());
  }
  ~MemcachedProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);  // a cache: nothing to save, and SIGTERM costs memcached a second
      ::waitpid(pid_, nullptr, 0);
    }
  }
  MemcachedProcess(const MemcachedProcess&) = delete;
  MemcachedProcess& operator=(const MemcachedProcess&) = delete;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  uint16_t port() const { return port_; }
  Client NewClient() const { return Client(address()); }

 private:
  uint16_t port_;
  pid_t pid_ = -1;
};

}  // namespace memha::refill::testing
