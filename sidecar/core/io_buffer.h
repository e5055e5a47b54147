#pragma once
// A contiguous byte buffer for one socket direction: bytes are appended at the end and consumed from the front,
// so parsers see one string_view of everything unconsumed (no evbuffer_pullup). Memory is released when the
// buffer empties past a small size, so an idle connection holds nothing.
#include <sys/types.h>

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace memha {

class IoBuffer {
 public:
  static constexpr size_t kKeepCapacity = 16 * 1024;  // kept across empty periods; larger is freed

  IoBuffer() = default;
  explicit IoBuffer(size_t keep_capacity) : keep_(keep_capacity) {}

  size_t size() const { return end_ - begin_; }
  bool empty() const { return end_ == begin_; }
  std::string_view view() const { return std::string_view(data_.get() + begin_, end_ - begin_); }
  size_t capacity() const { return cap_; }
  // Free space after the live bytes: what Reserve's pointer may be written with (not capacity() - size(), which
  // also counts the consumed bytes in front that Reserve did not move).
  size_t tail_room() const { return cap_ - end_; }

  void Append(std::string_view bytes) {
    if (bytes.empty()) return;
    Reserve(bytes.size());
    std::memcpy(data_.get() + end_, bytes.data(), bytes.size());
    end_ += bytes.size();
  }
  void Consume(size_t n) {
    begin_ += n;
    if (begin_ >= end_) Clear();
  }
  // Drops everything; frees a large allocation.
  void Clear() {
    begin_ = end_ = 0;
    if (cap_ > keep_) Release();
  }
  void Release() {
    data_.reset();
    cap_ = begin_ = end_ = 0;
  }
  // Makes room for `n` more bytes at the end (moves unconsumed bytes to the front or grows).
  char* Reserve(size_t n) {
    if (cap_ - end_ >= n) return data_.get() + end_;
    size_t live = end_ - begin_;
    if (begin_ > 0 && cap_ - live >= n && live <= cap_ / 2) {
      std::memmove(data_.get(), data_.get() + begin_, live);
    } else {
      size_t want = cap_ ? cap_ : 4096;
      while (want < live + n) want *= 2;
      std::unique_ptr<char[]> next(new char[want]);
      if (live) std::memcpy(next.get(), data_.get() + begin_, live);
      data_ = std::move(next);
      cap_ = want;
    }
    begin_ = 0;
    end_ = live;
    return data_.get() + end_;
  }
  void Commit(size_t n) { end_ += n; }

 private:
  size_t keep_ = kKeepCapacity;
  std::unique_ptr<char[]> data_;
  size_t cap_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace memha
