#pragma once
// A blocking memcached connection for the refill thread: every call takes a deadline, so a frozen member costs
// at most the timeout and never a stuck thread. Requests are pipelined by the caller (one Send for a batch,
// then replies parsed from buffer() as they arrive).
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace memha::refill {

using SteadyClock = std::chrono::steady_clock;

class MemberConnection {
 public:
  // `address` is "host:port" or "[v6]:port".
  static Result<std::unique_ptr<MemberConnection>> Connect(const std::string& address,
                                                           std::chrono::milliseconds timeout);
  ~MemberConnection();
  MemberConnection(const MemberConnection&) = delete;
  MemberConnection& operator=(const MemberConnection&) = delete;

  Status Send(std::string_view bytes, SteadyClock::time_point deadline);
  // Appends what the socket has (waiting until at least one byte or the deadline). Unavailable on EOF/timeout.
  Status ReadMore(SteadyClock::time_point deadline);
  std::string_view buffer() const { return std::string_view(buffer_).substr(start_); }
  void Consume(size_t bytes);
  const std::string& address() const { return address_; }

 private:
  MemberConnection(int fd, std::string address) : fd_(fd), address_(std::move(address)) {}
  int fd_;
  std::string address_;
  std::string buffer_;
  size_t start_ = 0;
};

}  // namespace memha::refill
