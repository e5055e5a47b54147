#include "controller/kube/token.h"

#include "common/log.h"
#include "controller/kube/config.h"

namespace memha::kube {

TokenSource::TokenSource(std::string static_token, std::string file, Clock& clock, Duration refresh)
    : static_token_(std::move(static_token)), file_(std::move(file)), clock_(clock), refresh_(refresh) {}

void TokenSource::ReadLocked() {
  auto text = ReadFile(file_);
  loaded_at_ = clock_.Now();
  loaded_ = true;
  if (!text.ok()) {
    // Keep the previous token: a rotation replaces the file atomically, a missing file is a transient state.
    MEMHA_LOG(kWarn, "kube", "token file unreadable: " << text.status().message());
    return;
  }
  std::string t = std::move(text).value();
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  token_ = std::move(t);
}

std::string TokenSource::Get() {
  if (file_.empty()) return static_token_;
  std::lock_guard lock(mu_);
  if (!loaded_ || clock_.Now() - loaded_at_ >= refresh_) ReadLocked();
  return token_;
}

bool TokenSource::Refresh() {
  if (file_.empty()) return false;
  std::lock_guard lock(mu_);
  ReadLocked();
  return true;
}

}  // namespace memha::kube
