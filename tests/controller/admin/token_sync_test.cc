// TokenSync with scripted hooks: what is re-read, which namespaces are asked, and when.
#include "controller/app/token_sync.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <vector>

namespace memha::app {
namespace {

class TokenSyncTest : public ::testing::Test {
 protected:
  TokenSync Make(bool shared) {
    TokenSync::Hooks h;
    if (shared) {
      h.read_shared = [this]() -> Result<std::string> {
        if (!secret_ok_) return Status::Unavailable("GET secret: 503");
        return secret_;
      };
    }
    h.leading = [this] { return leading_; };
    h.namespaces = [this] { return namespaces_; };
    h.ensure = [this](const std::string& ns) {
      asked_.push_back(ns + "=" + token_.Get());
      return failing_.count(ns) > 0 ? Status::Conflict("Secret " + ns + "/memha-sidecar-token exists and is not "
                                                       "managed by memha")
                                    : Status::Ok();
    };
    return TokenSync(&token_, std::move(h));
  }
  std::vector<std::string> Asked() {
    auto a = asked_;
    asked_.clear();
    return a;
  }

  push::TokenFile token_{"", "t1"};
  std::string secret_ = "t1";
  bool secret_ok_ = true;
  bool leading_ = true;
  std::set<std::string> namespaces_ = {"shop", "blog"};
  std::set<std::string> failing_;
  std::vector<std::string> asked_;
};

TEST_F(TokenSyncTest, EveryNamespaceOnceThenOnlyAfterARotation) {
  TokenSync sync = Make(true);
  EXPECT_EQ(sync.Once(), 0u);
  EXPECT_EQ(Asked(), (std::vector<std::string>{"blog=t1", "shop=t1"}));
  sync.Once();
  EXPECT_TRUE(Asked().empty());  // steady state: no request per namespace

  secret_ = "t2";  // rotated in the shared Secret
  sync.Once();
  EXPECT_EQ(token_.Get(), "t2");  // pushes and GET /v1/topology use it from now on
  EXPECT_EQ(Asked(), (std::vector<std::string>{"blog=t2", "shop=t2"}));

  namespaces_.insert("news");  // a namespace with its first sidecar pod
  sync.Once();
  EXPECT_EQ(Asked(), (std::vector<std::string>{"news=t2"}));
}

TEST_F(TokenSyncTest, AFailedReadKeepsTheTokenAndAFailedCopyIsRetried) {
  TokenSync sync = Make(true);
  failing_ = {"shop"};
  EXPECT_EQ(sync.Once(), 1u);
  EXPECT_EQ(sync.Stale(), 1u);
  Asked();
  EXPECT_EQ(sync.Once(), 1u);
  EXPECT_EQ(Asked(), (std::vector<std::string>{"shop=t1"}));  // retried every round, the others not
  failing_.clear();
  EXPECT_EQ(sync.Once(), 0u);
  Asked();

  secret_ok_ = false;
  secret_ = "t3";
  sync.Once();
  EXPECT_EQ(token_.Get(), "t1");
  EXPECT_TRUE(Asked().empty());
  secret_ = "";  // an emptied Secret is not a token
  secret_ok_ = true;
  sync.Once();
  EXPECT_EQ(token_.Get(), "t1");
}

TEST_F(TokenSyncTest, OnlyTheLeaderWritesAndANewLeadershipChecksAgain) {
  TokenSync sync = Make(true);
  leading_ = false;
  secret_ = "t2";
  sync.Once();
  EXPECT_EQ(token_.Get(), "t2");  // a follower re-reads too: it answers GET /v1/topology with it
  EXPECT_TRUE(Asked().empty());
  leading_ = true;
  sync.Once();
  EXPECT_EQ(Asked().size(), 2u);
  leading_ = false;
  sync.Once();
  leading_ = true;
  sync.Once();
  EXPECT_EQ(Asked().size(), 2u);  // the other replica may have led meanwhile: checked again
}

TEST_F(TokenSyncTest, EveryCopyIsCheckedAgainNowAndThen) {
  TokenSync sync = Make(true);
  sync.Once();
  EXPECT_EQ(Asked().size(), 2u);
  for (uint64_t i = 2; i < TokenSync::kRecheckEvery; ++i) sync.Once();
  EXPECT_TRUE(Asked().empty());
  sync.Once();  // round kRecheckEvery
  EXPECT_EQ(Asked().size(), 2u);
}

TEST_F(TokenSyncTest, ARoundStopsWhenLeadershipIsLost) {
  TokenSync::Hooks h;
  int calls = 0;
  h.leading = [&] { return calls < 1; };  // deposed (or shutting down) after the first copy
  h.namespaces = [] { return std::set<std::string>{"a", "b", "c"}; };
  h.ensure = [&](const std::string&) {
    ++calls;
    return Status::Ok();
  };
  TokenSync sync(&token_, std::move(h));
  sync.Once();
  EXPECT_EQ(calls, 1);
}

TEST_F(TokenSyncTest, WithATokenFileTheFileIsTheSource) {
  std::string path = ::testing::TempDir() + "token_sync_test.token";
  auto write = [&](const char* t) { std::ofstream(path, std::ios::trunc) << t << "\n"; };
  write("f1");
  push::TokenFile file(path, "", std::chrono::seconds(0));  // re-read on every Get
  ASSERT_TRUE(file.Load().ok());
  TokenSync::Hooks h;  // no read_shared: --token-file mode
  h.leading = [] { return true; };
  h.namespaces = [this] { return namespaces_; };
  h.ensure = [&](const std::string& ns) {
    asked_.push_back(ns + "=" + file.Get());
    return Status::Ok();
  };
  TokenSync sync(&file, std::move(h));
  sync.Once();
  EXPECT_EQ(Asked(), (std::vector<std::string>{"blog=f1", "shop=f1"}));
  file.Set("ignored");  // the file is the source: Set does nothing
  sync.Once();
  EXPECT_TRUE(Asked().empty());
  write("f2");  // rotated in the file
  sync.Once();
  EXPECT_EQ(Asked(), (std::vector<std::string>{"blog=f2", "shop=f2"}));
  std::remove(path.c_str());
}

}  // namespace
}  // namespace memha::app
