#include "controller/watch/line_splitter.h"

namespace memha::watch {
namespace {

bool Blank(std::string_view line) { return line.empty() || line == "\r"; }

}  // namespace

LineSplitter::Outcome LineSplitter::Feed(std::string_view chunk,
                                         const std::function<bool(std::string_view)>& on_line) {
  while (!chunk.empty()) {
    size_t nl = chunk.find('\n');
    if (nl == std::string_view::npos) {
      if (partial_.size() + chunk.size() > max_line_) {
        partial_.clear();
        return Outcome::kTooLong;
      }
      partial_.append(chunk);
      return Outcome::kOk;
    }
    std::string_view piece = chunk.substr(0, nl);
    chunk.remove_prefix(nl + 1);
    bool go_on = true;
    if (partial_.empty()) {
      if (!Blank(piece)) go_on = on_line(piece);
    } else {
      if (partial_.size() + piece.size() > max_line_) {
        partial_.clear();
        return Outcome::kTooLong;
      }
      partial_.append(piece);
      std::string line = std::move(partial_);
      partial_.clear();
      if (!Blank(line)) go_on = on_line(line);
    }
    if (!go_on) {
      partial_.clear();
      return Outcome::kStopped;
    }
  }
  return Outcome::kOk;
}

}  // namespace memha::watch
