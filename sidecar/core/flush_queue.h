#pragma once
// Output batching: connections append to their output buffer and register here; the loop writes every
// registered connection once per pass, after all ready events ran. Fifty clients' requests to one member then
// leave in one write() instead of fifty, and a connection with nothing queued costs no epoll_ctl.
#include <algorithm>
#include <vector>

namespace memha {

class Flushable {
 public:
  virtual ~Flushable() = default;
  virtual void FlushOutput() = 0;

 private:
  friend class FlushQueue;
  bool flush_queued_ = false;
};

class FlushQueue {
 public:
  void Add(Flushable* f) {
    if (f->flush_queued_) return;
    f->flush_queued_ = true;
    queued_.push_back(f);
  }
  // A connection that goes away while registered.
  void Remove(Flushable* f) {
    if (!f->flush_queued_) return;
    f->flush_queued_ = false;
    std::replace(queued_.begin(), queued_.end(), f, static_cast<Flushable*>(nullptr));
    std::replace(running_.begin(), running_.end(), f, static_cast<Flushable*>(nullptr));
  }
  // Flushing may queue more (a client unpaused by a write sends new requests); run until quiet.
  void Run() {
    while (!queued_.empty()) {
      running_.swap(queued_);
      for (size_t i = 0; i < running_.size(); ++i) {
        Flushable* f = running_[i];
        if (f == nullptr) continue;
        f->flush_queued_ = false;
        f->FlushOutput();
      }
      running_.clear();
    }
  }
  bool empty() const { return queued_.empty(); }

 private:
  std::vector<Flushable*> queued_;
  std::vector<Flushable*> running_;
};

}  // namespace memha
