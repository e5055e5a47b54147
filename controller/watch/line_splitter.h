#pragma once
// Frames a watch body (newline-delimited JSON) into whole lines, whatever the chunking: an event may be cut
// anywhere, several may share a chunk. Lines are handed out without copying when they lie inside one chunk.
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace memha::watch {

class LineSplitter {
 public:
  enum class Outcome { kOk, kStopped, kTooLong };
  explicit LineSplitter(size_t max_line = 16 * 1024 * 1024) : max_line_(max_line) {}

  // Calls `on_line` (without the '\n', blank lines skipped) for every line completed by `chunk`.
  // kStopped when on_line returned false (the rest is dropped); kTooLong when a line exceeds max_line.
  Outcome Feed(std::string_view chunk, const std::function<bool(std::string_view)>& on_line);
  bool HasPartial() const { return !partial_.empty(); }
  void Reset() { partial_.clear(); }

 private:
  const size_t max_line_;
  std::string partial_;
};

}  // namespace memha::watch
