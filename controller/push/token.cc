#include "controller/push/token.h"

#include <fstream>
#include <sstream>

#include "common/log.h"

namespace memha::push {
namespace {

Result<std::string> ReadToken(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot read token file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string t = ss.str();
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  if (t.empty()) return Status::InvalidArgument("token file " + path + " is empty");
  return t;
}

}  // namespace

TokenFile::TokenFile(std::string path, std::string fixed, std::chrono::seconds refresh)
    : path_(std::move(path)), refresh_(refresh), token_(std::move(fixed)) {}

Status TokenFile::Load() {
  if (path_.empty()) return Status::Ok();
  auto t = ReadToken(path_);
  if (!t.ok()) return t.status();
  std::lock_guard lock(mu_);
  token_ = std::move(t).value();
  read_at_ = std::chrono::steady_clock::now();
  return Status::Ok();
}

std::string TokenFile::Get() {
  std::lock_guard lock(mu_);
  auto now = std::chrono::steady_clock::now();
  if (!path_.empty() && now - read_at_ >= refresh_) {
    read_at_ = now;
    auto t = ReadToken(path_);
    if (t.ok()) {
      token_ = std::move(t).value();
    } else {
      MEMHA_LOG(kWarn, "token", t.status().message() << "; keeping the last token");
    }
  }
  return token_;
}

void TokenFile::Set(std::string token) {
  if (!path_.empty() || token.find_first_not_of(" \t\r\n") == std::string::npos) return;
  std::lock_guard lock(mu_);
  token_ = std::move(token);
}

}  // namespace memha::push
