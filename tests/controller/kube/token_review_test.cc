#include "controller/kube/token_review.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace memha::kube {
namespace {

// Answers every TokenReview with `answer` (the API server's status for the token), recording the requests.
class ScriptedReviews : public KubeApi {
 public:
  int status = 201;
  nlohmann::json answer;
  std::vector<nlohmann::json> requests;
  Result<ApiResponse> Request(std::string_view method, const std::string& path, const std::string& body,
                              std::string_view) override {
    EXPECT_EQ(method, "POST");
    EXPECT_EQ(path, "/apis/authentication.k8s.io/v1/tokenreviews");
    requests.push_back(nlohmann::json::parse(body));
    if (status == 0) return Status::Unavailable("connection refused");
    return ApiResponse{status, nlohmann::json{{"kind", "TokenReview"}, {"status", answer}}.dump(), {}};
  }
  Result<ApiResponse> Stream(const std::string&, const std::function<bool(std::string_view)>&) override {
    return Status::Internal("no streams");
  }
  void Cancel() override {}
};

nlohmann::json BoundToPod(const std::string& ns, const std::string& pod, const std::string& uid) {
  return {{"authenticated", true},
          {"audiences", {"memha"}},
          {"user",
           {{"username", "system:serviceaccount:" + ns + ":default"},
            {"groups", {"system:serviceaccounts", "system:serviceaccounts:" + ns}},
            {"extra",
             {{"authentication.kubernetes.io/pod-name", {pod}}, {"authentication.kubernetes.io/pod-uid", {uid}}}}}}};
}

class TokenReviewTest : public ::testing::Test {
 protected:
  PodTokenReviewer::Clock::time_point now_{};
  ScriptedReviews api_;
  PodTokenReviewer reviewer_{api_, {}, [this] { return now_; }};
  ReviewFailure failure_{};
};

TEST_F(TokenReviewTest, ABoundTokenNamesItsPod) {
  api_.answer = BoundToPod("shop", "web-1", "uid-1");
  auto id = reviewer_.Review("tok", &failure_);
  ASSERT_TRUE(id.ok()) << id.status().message();
  EXPECT_EQ(id.value().Pod(), "shop/web-1");
  EXPECT_EQ(id.value().uid, "uid-1");
  EXPECT_EQ(id.value().service_account, "default");
  // What was asked: this token, for our audience only.
  ASSERT_EQ(api_.requests.size(), 1u);
  EXPECT_EQ(api_.requests[0]["spec"]["token"], "tok");
  EXPECT_EQ(api_.requests[0]["spec"]["audiences"], nlohmann::json({"memha"}));
}

TEST_F(TokenReviewTest, AnswersAreKeptForTheTtlOnly) {
  api_.answer = BoundToPod("shop", "web-1", "uid-1");
  ASSERT_TRUE(reviewer_.Review("tok", &failure_).ok());
  ASSERT_TRUE(reviewer_.Review("tok", &failure_).ok());
  EXPECT_EQ(reviewer_.reviews(), 1u);
  now_ += std::chrono::seconds(31);
  api_.answer = {{"authenticated", false}, {"error", "token has expired"}};
  auto id = reviewer_.Review("tok", &failure_);
  EXPECT_FALSE(id.ok());
  EXPECT_EQ(failure_, ReviewFailure::kRefused);
  EXPECT_NE(id.status().message().find("expired"), std::string::npos);
  EXPECT_EQ(reviewer_.reviews(), 2u);
}

TEST_F(TokenReviewTest, RefusalsAreNotKept) {
  api_.answer = {{"authenticated", false}};
  EXPECT_FALSE(reviewer_.Review("tok", &failure_).ok());
  api_.answer = BoundToPod("shop", "web-1", "uid-1");
  EXPECT_TRUE(reviewer_.Review("tok", &failure_).ok());
}

TEST_F(TokenReviewTest, TokensNotBoundToAPodOrForAnotherAudienceAreRefused) {
  auto refused = [this](nlohmann::json answer, const char* why) {
    api_.answer = std::move(answer);
    auto id = reviewer_.Review("tok-" + std::to_string(api_.requests.size()), &failure_);
    EXPECT_FALSE(id.ok()) << why;
    EXPECT_EQ(failure_, ReviewFailure::kRefused) << why;
  };
  nlohmann::json a = BoundToPod("shop", "web-1", "uid-1");
  a["audiences"] = {"https://kubernetes.default.svc.cluster.local"};
  refused(a, "another audience");
  a = BoundToPod("shop", "web-1", "uid-1");
  a.erase("audiences");
  refused(a, "no audiences in the answer");
  a = BoundToPod("shop", "web-1", "uid-1");
  a["user"].erase("extra");
  refused(a, "a ServiceAccount token not bound to a pod (a Secret-based or TokenRequest token)");
  a = BoundToPod("shop", "web-1", "uid-1");
  a["user"]["extra"]["authentication.kubernetes.io/pod-name"] = {"web-1", "web-2"};
  refused(a, "two pod names");
  a = BoundToPod("shop", "web-1", "uid-1");
  a["user"]["username"] = "alice";
  refused(a, "a user, not a ServiceAccount");
  a = BoundToPod("shop", "web-1", "uid-1");
  a["user"]["username"] = "system:serviceaccount:shop";
  refused(a, "malformed ServiceAccount name");
  refused(nlohmann::json{{"authenticated", false}}, "not authenticated");
  EXPECT_FALSE(reviewer_.Review("", &failure_).ok());
}

TEST_F(TokenReviewTest, ApiTroubleIsUnavailableNotRefused) {
  api_.status = 403;  // the controller lacks create tokenreviews
  EXPECT_FALSE(reviewer_.Review("tok", &failure_).ok());
  EXPECT_EQ(failure_, ReviewFailure::kUnavailable);
  api_.status = 0;
  EXPECT_FALSE(reviewer_.Review("tok", &failure_).ok());
  EXPECT_EQ(failure_, ReviewFailure::kUnavailable);
}

}  // namespace
}  // namespace memha::kube
