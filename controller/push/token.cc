#include "controller/push/token.h"

#include <fstream>
#include <sstream>

#include "common/constant_time.h"
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

TokenFile::TokenFile(std::string path, std::string fixed, std::chrono::seconds refresh, std::chrono::seconds grace)
    : path_(std::move(path)), refresh_(refresh), grace_(grace), token_(std::move(fixed)) {}

Status TokenFile::Load() {
  if (path_.empty()) return Status::Ok();
  auto t = ReadToken(path_);
  if (!t.ok()) return t.status();
  std::lock_guard lock(mu_);
  token_ = std::move(t).value();
  read_at_ = std::chrono::steady_clock::now();
  return Status::Ok();
}

void TokenFile::Replace(std::string token) {
  if (token == token_) return;
  previous_ = std::move(token_);
  token_ = std::move(token);
  changed_at_ = std::chrono::steady_clock::now();
}

void TokenFile::Refresh() {
  auto now = std::chrono::steady_clock::now();
  if (path_.empty() || now - read_at_ < refresh_) return;
  read_at_ = now;
  auto t = ReadToken(path_);
  if (t.ok()) {
    Replace(std::move(t).value());
  } else {
    MEMHA_LOG(kWarn, "token", t.status().message() << "; keeping the last token");
  }
}

std::string TokenFile::Get() {
  std::lock_guard lock(mu_);
  Refresh();
  return token_;
}

void TokenFile::Set(std::string token) {
  if (!path_.empty() || token.find_first_not_of(" \t\r\n") == std::string::npos) return;
  std::lock_guard lock(mu_);
  Replace(std::move(token));
}

bool TokenFile::Accepts(std::string_view presented) {
  std::lock_guard lock(mu_);
  Refresh();
  if (token_.empty()) return false;
  bool ok = ConstantTimeEquals(presented, token_);
  bool in_grace = !previous_.empty() && std::chrono::steady_clock::now() - changed_at_ < grace_;
  ok |= in_grace && ConstantTimeEquals(presented, previous_);
  return ok;
}

}  // namespace memha::push
