// Golden-file tests of the pure webhook function (testdata/<case>.json -> testdata/<case>.injected.json), in the
// manner of Istio's inject testdata. Regenerate after an intended change:
//   MEMHA_UPDATE_GOLDEN=1 build-hook/tests/controller/webhook/controller_webhook_admission
// and review the diff.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <set>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "controller/webhook/admission.h"
#include "controller/webhook/base64.h"

namespace memha::webhook {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const fs::path kTestdata = fs::path(MEMHA_WEBHOOK_TESTDATA);

InjectConfig TestConfig() {
  InjectConfig c;
  c.image = "registry.example/memha:test";
  c.controller_url = "http://memha-controller.memha-system.svc:8080";
  return c;
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The response with its patch decoded, plus the pod after the patch: what a reviewer wants to read.
json Readable(const json& input, const AdmissionResult& r) {
  json out = {{"http_status", r.http_status}, {"decision", DecisionName(r.decision)}};
  json body = json::parse(r.body);
  if (body.contains("response") && body["response"].contains("patch")) {
    auto decoded = Base64Decode(body["response"]["patch"].get<std::string>());
    EXPECT_TRUE(decoded.has_value());
    json patch = json::parse(decoded.value_or("[]"));
    body["response"]["patch"] = patch;
    out["patched_object"] = input["request"]["object"].patch(patch);
  }
  out["review"] = body;
  return out;
}

std::vector<std::string> Cases() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(kTestdata)) {
    const std::string f = e.path().filename().string();
    if (f.size() > 5 && f.ends_with(".json") && !f.ends_with(".injected.json")) names.push_back(f.substr(0, f.size() - 5));
  }
  std::sort(names.begin(), names.end());
  return names;
}

class Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(Golden, MatchesInjectedFile) {
  const fs::path in = kTestdata / (GetParam() + ".json");
  const fs::path want_path = kTestdata / (GetParam() + ".injected.json");
  const std::string body = ReadFile(in);
  const json input = json::parse(body);
  const AdmissionResult r = ReviewPod(body, TestConfig());
  const json got = Readable(input, r);
  if (std::getenv("MEMHA_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(want_path) << got.dump(2) << "\n";
  }
  ASSERT_TRUE(fs::exists(want_path)) << "missing " << want_path << " (MEMHA_UPDATE_GOLDEN=1 writes it)";
  const json want = json::parse(ReadFile(want_path));
  EXPECT_EQ(got, want) << "diff (got vs " << want_path.filename() << "): " << json::diff(want, got).dump(2);
  // Whatever the case, the answer is an AdmissionReview for the same uid and the pod is allowed.
  ASSERT_EQ(r.http_status, 200);
  const json review = json::parse(r.body);
  EXPECT_EQ(review["kind"], "AdmissionReview");
  EXPECT_EQ(review["apiVersion"], "admission.k8s.io/v1");
  EXPECT_EQ(review["response"]["uid"], input["request"]["uid"]);
  EXPECT_EQ(review["response"]["allowed"], true);
}

// Reviewing the outcome again changes nothing: an injected pod comes back unchanged, an unchanged one gets the
// same answer.
TEST_P(Golden, ReviewingTheOutcomeAgainChangesNothing) {
  json review = json::parse(ReadFile(kTestdata / (GetParam() + ".json")));
  const AdmissionResult first = ReviewPod(review.dump(), TestConfig());
  if (!first.patched()) {
    EXPECT_EQ(ReviewPod(review.dump(), TestConfig()).body, first.body);
    return;
  }
  const json patch = json::parse(*Base64Decode(json::parse(first.body)["response"]["patch"].get<std::string>()));
  review["request"]["object"] = review["request"]["object"].patch(patch);
  const AdmissionResult again = ReviewPod(review.dump(), TestConfig());
  EXPECT_EQ(again.decision, Decision::kAlreadyInjected);
  const json response = json::parse(again.body)["response"];
  EXPECT_FALSE(response.contains("patch"));
  EXPECT_FALSE(response.contains("warnings"));
}

INSTANTIATE_TEST_SUITE_P(Testdata, Golden, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

TEST(Admission, GoldenCasesExist) { EXPECT_GE(Cases().size(), 15u); }

TEST(Admission, InjectedSidecarIsANativeSidecarWithProbesAndHardening) {
  const AdmissionResult r = ReviewPod(ReadFile(kTestdata / "inject_label_true.json"), TestConfig());
  ASSERT_TRUE(r.patched());
  const json input = json::parse(ReadFile(kTestdata / "inject_label_true.json"));
  const json patch = json::parse(*Base64Decode(json::parse(r.body)["response"]["patch"].get<std::string>()));
  const json pod = input["request"]["object"].patch(patch);
  const json& c = pod["spec"]["initContainers"][0];
  EXPECT_EQ(c["name"], "memha-sidecar");
  EXPECT_EQ(c["restartPolicy"], "Always");
  EXPECT_EQ(c["image"], "registry.example/memha:test");
  // Probes on the health port, not the admin port: pushes and admin-port connections can never fail a probe.
  EXPECT_EQ(c["startupProbe"]["httpGet"]["path"], "/readyz");
  EXPECT_EQ(c["startupProbe"]["httpGet"]["port"], 11298);
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"], "/readyz");
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["port"], 11298);
  EXPECT_EQ(c["livenessProbe"]["httpGet"]["path"], "/healthz");
  EXPECT_EQ(c["livenessProbe"]["httpGet"]["port"], 11298);
  EXPECT_EQ(c["ports"][1]["name"], "memha-health");
  EXPECT_EQ(c["ports"][1]["containerPort"], 11298);
  EXPECT_EQ(c["securityContext"]["runAsNonRoot"], true);
  EXPECT_EQ(c["securityContext"]["readOnlyRootFilesystem"], true);
  EXPECT_EQ(c["securityContext"]["allowPrivilegeEscalation"], false);
  EXPECT_EQ(c["securityContext"]["capabilities"]["drop"], json::array({"ALL"}));
  const json args = c["args"];
  for (const char* want : {"--admin-address=0.0.0.0", "--admin-port=11299", "--health-port=11298",
                           "--controller-token-file=/var/run/memha/token/token",
                           "--state-file=/var/run/memha/state/topology.json",
                           "--controller-url=http://memha-controller.memha-system.svc:8080",
                           "--pod=$(MEMHA_POD_NAMESPACE)/$(MEMHA_POD_NAME)"}) {
    EXPECT_NE(std::find(args.begin(), args.end(), want), args.end()) << want;
  }
  EXPECT_EQ(pod["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]["audience"], "memha");
  EXPECT_FALSE(pod["spec"]["volumes"][0].contains("secret"));
  EXPECT_TRUE(pod["spec"]["volumes"][1].contains("emptyDir"));
  EXPECT_EQ(pod["metadata"]["labels"]["memha.io/sidecar"], "injected");
  EXPECT_EQ(r.pod_namespace, "shop");
  EXPECT_EQ(r.pod_name, "web-0");
}

TEST(Admission, SidecarGoesBeforeExistingInitContainers) {
  const std::string body = ReadFile(kTestdata / "namespace_selected_two_pools.json");
  const AdmissionResult r = ReviewPod(body, TestConfig());
  ASSERT_TRUE(r.patched());
  const json patch = json::parse(*Base64Decode(json::parse(r.body)["response"]["patch"].get<std::string>()));
  const json pod = json::parse(body)["request"]["object"].patch(patch);
  ASSERT_EQ(pod["spec"]["initContainers"].size(), 2u);
  EXPECT_EQ(pod["spec"]["initContainers"][0]["name"], "memha-sidecar");
  EXPECT_EQ(pod["spec"]["initContainers"][1]["name"], "migrate");
  EXPECT_EQ(pod["spec"]["volumes"].size(), 3u);
}

TEST(Admission, TheProjectedTokenIsThePodsOwnServiceAccount) {
  // Without a ServiceAccount named (ServiceAccount admission off), "default", as that plugin would set; a pod's own
  // ServiceAccount is kept: the token the sidecar presents is always the pod's identity, never memha's.
  for (const char* sa : {"", "shop-web"}) {
    json review = json::parse(ReadFile(kTestdata / "inject_label_true.json"));
    if (*sa != '\0') review["request"]["object"]["spec"]["serviceAccountName"] = sa;
    const AdmissionResult r = ReviewPod(review.dump(), TestConfig());
    ASSERT_TRUE(r.patched()) << sa;
    const json patch = json::parse(*Base64Decode(json::parse(r.body)["response"]["patch"].get<std::string>()));
    const json pod = review["request"]["object"].patch(patch);
    EXPECT_EQ(pod["spec"]["serviceAccountName"], *sa != '\0' ? sa : "default");
    EXPECT_EQ(pod["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]["audience"], "memha");
  }
}

TEST(Admission, ThePodsControllerIsNamedForTheEvent) {
  json review = json::parse(ReadFile(kTestdata / "port_collision.json"));
  review["request"]["object"]["metadata"]["ownerReferences"] = {
      {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", "not-the-controller"}},
      {{"apiVersion", "apps/v1"}, {"kind", "ReplicaSet"}, {"name", "web-5d9c"}, {"controller", true}}};
  const AdmissionResult r = ReviewPod(review.dump(), TestConfig());
  EXPECT_EQ(r.decision, Decision::kUnsupportedPod);
  EXPECT_TRUE(r.WorthAnEvent());
  EXPECT_EQ(r.owner_kind, "ReplicaSet");
  EXPECT_EQ(r.owner_name, "web-5d9c");
  EXPECT_EQ(r.owner_api_version, "apps/v1");
  EXPECT_FALSE(ReviewPod(ReadFile(kTestdata / "opt_out.json"), TestConfig()).WorthAnEvent());
  EXPECT_FALSE(ReviewPod(ReadFile(kTestdata / "inject_label_true.json"), TestConfig()).WorthAnEvent());
}

TEST(Admission, DryRunIsAnsweredTheSameAndFlagged) {
  const AdmissionResult r = ReviewPod(ReadFile(kTestdata / "dry_run.json"), TestConfig());
  EXPECT_TRUE(r.patched());
  EXPECT_TRUE(r.dry_run);
  const AdmissionResult real = ReviewPod(ReadFile(kTestdata / "inject_label_true.json"), TestConfig());
  EXPECT_FALSE(real.dry_run);
  EXPECT_EQ(json::parse(r.body)["response"]["patch"], json::parse(real.body)["response"]["patch"]);
}

TEST(Admission, ConfigShowsInThePatch) {
  InjectConfig c = TestConfig();
  c.image = "other/memha:2";
  c.admin_port = 12000;
  c.health_port = 12001;
  c.resources.cpu_limit = "500m";
  c.resources.memory_request = "";
  const AdmissionResult r = ReviewPod(ReadFile(kTestdata / "inject_label_true.json"), c);
  ASSERT_TRUE(r.patched());
  const json patch = json::parse(*Base64Decode(json::parse(r.body)["response"]["patch"].get<std::string>()));
  const json& container = patch[0]["value"][0];
  EXPECT_EQ(container["image"], "other/memha:2");
  EXPECT_EQ(container["ports"][0]["containerPort"], 12000);
  EXPECT_EQ(container["ports"][1]["containerPort"], 12001);
  EXPECT_EQ(container["startupProbe"]["httpGet"]["port"], 12001);
  EXPECT_EQ(container["livenessProbe"]["httpGet"]["port"], 12001);
  EXPECT_EQ(container["resources"]["limits"]["cpu"], "500m");
  EXPECT_FALSE(container["resources"]["requests"].contains("memory"));
}

TEST(Admission, HealthPortMustDifferFromTheAdminPort) {
  InjectConfig c = TestConfig();
  EXPECT_TRUE(c.Validate().ok());
  c.health_port = c.admin_port;
  EXPECT_FALSE(c.Validate().ok());
  c.health_port = 0;
  EXPECT_FALSE(c.Validate().ok());
}

struct BadInput {
  const char* name;
  std::string body;
  const char* error_contains;
};

TEST(Admission, BadRequestsGetAClear400) {
  const std::vector<BadInput> inputs = {
      {"empty", "", "invalid JSON"},
      {"garbage", "{not json", "invalid JSON"},
      {"array", "[1,2]", "not a JSON object"},
      {"wrong kind", R"({"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{"uid":"u"}})", "AdmissionReview"},
      {"v1beta1", R"({"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}})",
       "v1beta1"},
      {"no request", R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"})", "no request"},
      {"request not object", R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":7})",
       "no request"},
      {"no uid", R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"kind":{"kind":"Pod"}}})",
       "no uid"},
      {"uid not string", R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":5}})",
       "no uid"},
  };
  for (const auto& in : inputs) {
    const AdmissionResult r = ReviewPod(in.body, TestConfig());
    EXPECT_EQ(r.http_status, 400) << in.name;
    EXPECT_EQ(r.decision, Decision::kBadRequest) << in.name;
    const json body = json::parse(r.body);
    EXPECT_NE(body.value("error", "").find(in.error_contains), std::string::npos) << in.name << ": " << r.body;
  }
}

TEST(Admission, OddlyTypedFieldsNeverCrash) {
  // Every field of a valid review replaced by values of the wrong type, one at a time.
  const json base = json::parse(ReadFile(kTestdata / "namespace_selected_two_pools.json"));
  const std::vector<json> odd = {nullptr, 1, "x", json::array(), json::object(), true};
  std::vector<std::string> paths;
  std::function<void(const json&, const std::string&)> walk = [&](const json& j, const std::string& p) {
    if (!p.empty()) paths.push_back(p);
    if (j.is_object()) {
      for (auto it = j.begin(); it != j.end(); ++it) {
        std::string key = it.key();
        std::string escaped;
        for (char ch : key) escaped += ch == '/' ? std::string("~1") : ch == '~' ? std::string("~0") : std::string(1, ch);
        walk(it.value(), p + "/" + escaped);
      }
    } else if (j.is_array()) {
      for (size_t i = 0; i < j.size(); ++i) walk(j[i], p + "/" + std::to_string(i));
    }
  };
  walk(base, "");
  ASSERT_GT(paths.size(), 40u);
  size_t answered = 0;
  for (const auto& p : paths) {
    for (const json& v : odd) {
      json mutated = base;
      mutated[json::json_pointer(p)] = v;
      const AdmissionResult r = ReviewPod(mutated.dump(), TestConfig());
      ASSERT_TRUE(r.http_status == 200 || r.http_status == 400) << p;
      ASSERT_TRUE(json::accept(r.body)) << p;
      if (r.patched()) {  // a patch must still apply to the object it was computed for
        const json patch = json::parse(*Base64Decode(json::parse(r.body)["response"]["patch"].get<std::string>()));
        EXPECT_NO_THROW((void)mutated["request"]["object"].patch(patch)) << p << " = " << v.dump();
      }
      ++answered;
    }
  }
  EXPECT_EQ(answered, paths.size() * odd.size());
}

TEST(Admission, TruncatedReviewsNeverCrash) {
  const std::string body = ReadFile(kTestdata / "inject_label_true.json");
  for (size_t n = 0; n < body.find_last_of('}'); ++n) {  // every proper prefix of the object
    const AdmissionResult r = ReviewPod(std::string_view(body).substr(0, n), TestConfig());
    ASSERT_EQ(r.http_status, 400) << n;
  }
}

TEST(Admission, DecisionNamesAreDistinct) {
  std::set<std::string_view> names;
  for (int d = 0; d <= static_cast<int>(Decision::kBadRequest); ++d) names.insert(DecisionName(static_cast<Decision>(d)));
  EXPECT_EQ(names.size(), static_cast<size_t>(Decision::kBadRequest) + 1);
}

}  // namespace
}  // namespace memha::webhook

namespace memha::webhook {
namespace {

TEST(Admission, PushPublicKeysAreInjectedWithThePodUid) {
  InjectConfig config = TestConfig();
  config.push_public_keys = {"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", "PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw="};
  const AdmissionResult r = ReviewPod(ReadFile(kTestdata / "inject_label_true.json"), config);
  ASSERT_TRUE(r.patched());
  const json input = json::parse(ReadFile(kTestdata / "inject_label_true.json"));
  const json patch = json::parse(*Base64Decode(json::parse(r.body)["response"]["patch"].get<std::string>()));
  const json c = input["request"]["object"].patch(patch)["spec"]["initContainers"][0];
  const json args = c["args"];
  for (const char* want : {"--push-public-key=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=,"
                           "PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=",
                           "--pod-uid=$(MEMHA_POD_UID)"}) {
    EXPECT_NE(std::find(args.begin(), args.end(), want), args.end()) << want;
  }
  bool uid_env = false;
  for (const json& e : c["env"]) {
    uid_env |= e["name"] == "MEMHA_POD_UID" && e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.uid";
  }
  EXPECT_TRUE(uid_env);
}

}  // namespace
}  // namespace memha::webhook

namespace memha::webhook {
namespace {

TEST(Admission, ContainerPortsTheSidecarListensOnAreNotInjected) {
  json review = json::parse(ReadFile(kTestdata / "inject_label_true.json"));
  for (int port : {11299, 11298, 11211}) {
    review["request"]["object"]["spec"]["containers"][0]["ports"] = json::array({{{"containerPort", port}}});
    const AdmissionResult r = ReviewPod(review.dump(), TestConfig());
    EXPECT_FALSE(r.patched()) << port;
    EXPECT_EQ(r.decision, Decision::kUnsupportedPod) << port;
    EXPECT_NE(r.reason.find("uses port " + std::to_string(port)), std::string::npos) << r.reason;
    EXPECT_NE(json::parse(r.body)["response"]["warnings"][0].get<std::string>().find("sidecar not injected"),
              std::string::npos);
  }
  review["request"]["object"]["spec"]["containers"][0]["ports"] = json::array({{{"containerPort", 8080}}});
  EXPECT_TRUE(ReviewPod(review.dump(), TestConfig()).patched());
}

}  // namespace
}  // namespace memha::webhook
