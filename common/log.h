#pragma once
// Minimal structured logging: one line per event, key=value pairs, to stderr.
#include <sstream>
#include <string>
#include <string_view>

namespace memha::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void SetLevel(Level level);
Level GetLevel();
bool ParseLevel(std::string_view text, Level* out);
void Write(Level level, std::string_view component, std::string_view message);
// Printable form of protocol bytes for a log line: \r, \n, \\ and bytes outside 0x20-0x7e escaped.
std::string Escape(std::string_view bytes);

}  // namespace memha::log

#define MEMHA_LOG(level, component, expr)                                      \
  do {                                                                         \
    if (::memha::log::Level::level >= ::memha::log::GetLevel()) {              \
      std::ostringstream memha_log_os_;                                        \
      memha_log_os_ << expr;                                                   \
      ::memha::log::Write(::memha::log::Level::level, component, memha_log_os_.str()); \
    }                                                                          \
  } while (0)
