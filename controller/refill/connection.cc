#include "controller/refill/connection.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/address.h"

namespace memha::refill {
namespace {

int MillisLeft(SteadyClock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 60'000));
}

// Waits for `events` on fd; false on timeout or error.
bool Wait(int fd, short events, SteadyClock::time_point deadline) {
  while (true) {
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, MillisLeft(deadline));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return false;
  }
}

}  // namespace

Result<std::unique_ptr<MemberConnection>> MemberConnection::Connect(const std::string& address,
                                                                    std::chrono::milliseconds timeout) {
  auto hp = ParseHostPort(address);
  if (!hp.ok()) return hp.status();
  auto deadline = SteadyClock::now() + timeout;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = AF_UNSPEC;
  addrinfo* found = nullptr;
  std::string port = std::to_string(hp.value().port);
  int rc = ::getaddrinfo(hp.value().host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0 || found == nullptr) {
    return Status::Unavailable(address + ": cannot resolve: " + ::gai_strerror(rc));
  }
  std::string error = "no address";
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      error = std::strerror(errno);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
        (errno == EINPROGRESS && Wait(fd, POLLOUT, deadline))) {
      int so_error = 0;
      socklen_t len = sizeof(so_error);
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
      if (so_error == 0) {
        ::freeaddrinfo(found);
        return std::unique_ptr<MemberConnection>(new MemberConnection(fd, address));
      }
      error = std::strerror(so_error);
    } else {
      error = errno == EINPROGRESS ? "connect timed out" : std::strerror(errno);
    }
    ::close(fd);
  }
  ::freeaddrinfo(found);
  return Status::Unavailable(address + ": " + error);
}

MemberConnection::~MemberConnection() { ::close(fd_); }

Status MemberConnection::Send(std::string_view bytes, SteadyClock::time_point deadline) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // The member may be waiting for us to read its replies before it reads more: read while we wait.
      pollfd p{fd_, POLLOUT | POLLIN, 0};
      int rc = ::poll(&p, 1, MillisLeft(deadline));
      if (rc == 0) return Status::Unavailable(address_ + ": send timed out");
      if (rc < 0 && errno != EINTR) return Status::Unavailable(address_ + ": " + std::strerror(errno));
      if (rc > 0 && (p.revents & POLLIN)) {
        char chunk[65536];
        ssize_t r = ::recv(fd_, chunk, sizeof(chunk), 0);
        if (r == 0) return Status::Unavailable(address_ + ": connection closed");
        if (r > 0) buffer_.append(chunk, static_cast<size_t>(r));
      }
      continue;
    }
    return Status::Unavailable(address_ + ": send: " + std::strerror(errno));
  }
  return Status::Ok();
}

Status MemberConnection::ReadMore(SteadyClock::time_point deadline) {
  if (start_ > 0 && start_ * 2 > buffer_.size()) {
    buffer_.erase(0, start_);
    start_ = 0;
  }
  while (true) {
    char chunk[65536];
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
      return Status::Ok();
    }
    if (n == 0) return Status::Unavailable(address_ + ": connection closed");
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return Status::Unavailable(address_ + ": " + std::strerror(errno));
    if (!Wait(fd_, POLLIN, deadline)) return Status::Unavailable(address_ + ": read timed out");
  }
}

void MemberConnection::Consume(size_t bytes) {
  start_ += bytes;
  if (start_ >= buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  }
}

}  // namespace memha::refill
