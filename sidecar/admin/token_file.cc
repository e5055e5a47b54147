#include "sidecar/admin/token_file.h"

#include <cctype>
#include <fstream>
#include <sstream>

#include "common/constant_time.h"

namespace memha {
namespace {

constexpr auto kRefresh = std::chrono::seconds(60);
constexpr auto kMissReload = std::chrono::seconds(1);

}  // namespace

bool ReadTokenFile(const std::string& path, std::string* token) {
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string t = ss.str();
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
  if (t.empty()) return false;
  *token = std::move(t);
  return true;
}

bool TokenFile::LoadLocked(Clock::time_point now) {
  loaded_at_ = now;
  std::string t;
  if (!ReadTokenFile(path_, &t)) return false;
  token_ = std::move(t);
  return true;
}

bool TokenFile::Load() {
  std::lock_guard lock(mu_);
  return LoadLocked(Clock::now());
}

std::string TokenFile::Current() {
  std::lock_guard lock(mu_);
  auto now = Clock::now();
  if (now - loaded_at_ >= kRefresh) LoadLocked(now);
  return token_;
}

bool TokenFile::Matches(const std::string& presented) {
  std::lock_guard lock(mu_);
  auto now = Clock::now();
  if (now - loaded_at_ >= kRefresh) LoadLocked(now);
  if (!token_.empty() && ConstantTimeEquals(presented, token_)) return true;
  if (now - last_miss_reload_ < kMissReload) return false;
  last_miss_reload_ = now;
  LoadLocked(now);
  return !token_.empty() && ConstantTimeEquals(presented, token_);
}

}  // namespace memha
