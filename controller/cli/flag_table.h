#pragma once
// A command-line flag table: "--name" -> (help, apply). memha-controller's own flags (controller/app/flags.*)
// and the webhook's (controller/webhook/flags.*) are two tables of this one kind, so values are checked and
// errors worded the same way. Header-only: the two libraries that use it need nothing else linked.
#include <charconv>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "common/status.h"

namespace memha::cli {

// `value` as an integer in [lo, hi]; the error is one line naming the flag.
inline Result<long long> ParseInteger(std::string_view flag, std::string_view value, long long lo, long long hi) {
  long long n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size() || n < lo || n > hi) {
    return Status::InvalidArgument(std::string(flag) + ": expected an integer in [" + std::to_string(lo) + ", " +
                                   std::to_string(hi) + "], got \"" + std::string(value) + "\"");
  }
  return n;
}

template <typename Settings>
struct Flag {
  const char* help;  // "VALUE  what it does (default ...)"
  std::function<Status(std::string_view name, std::string_view value, Settings* settings)> apply;
};

template <typename Settings>
using FlagTable = std::map<std::string, Flag<Settings>, std::less<>>;

// Stores the value as given at `field(settings)`.
template <typename Settings>
Flag<Settings> StringFlag(const char* help, std::function<std::string*(Settings*)> field) {
  return {help, [field = std::move(field)](std::string_view, std::string_view v, Settings* s) {
            *field(s) = std::string(v);
            return Status::Ok();
          }};
}

// An integer in [lo, hi], handed to `set`.
template <typename Settings>
Flag<Settings> IntegerFlag(const char* help, long long lo, long long hi,
                           std::function<void(Settings*, long long)> set) {
  return {help, [lo, hi, set = std::move(set)](std::string_view name, std::string_view v, Settings* s) {
            auto n = ParseInteger(name, v, lo, hi);
            if (n.ok()) set(s, n.value());
            return n.status();
          }};
}

// Ok(true): applied; Ok(false): not in this table; an error: a bad value.
template <typename Settings>
Result<bool> ApplyFlag(const FlagTable<Settings>& table, std::string_view name, std::string_view value,
                       Settings* settings) {
  auto it = table.find(name);
  if (it == table.end()) return false;
  if (Status s = it->second.apply(name, value, settings); !s.ok()) return s;
  return true;
}

// One "  --name help" line per flag, sorted by name.
template <typename Settings>
std::string FlagTableHelp(const FlagTable<Settings>& table) {
  std::string out;
  for (const auto& [name, flag] : table) out += "  " + name + " " + flag.help + "\n";
  return out;
}

}  // namespace memha::cli
