#include "controller/kube/yaml.h"

#include <gtest/gtest.h>

namespace memha::kube {
namespace {

using nlohmann::json;

struct YamlCase {
  const char* name;
  const char* yaml;
  const char* json;
};

TEST(Yaml, Table) {
  const YamlCase cases[] = {
      {"mapping", "a: 1\nb: x\n", R"({"a":1,"b":"x"})"},
      {"nested", "a:\n  b:\n    c: d\n  e: f\n", R"({"a":{"b":{"c":"d"},"e":"f"}})"},
      {"sequence at key indent", "l:\n- a\n- b\nm: 1\n", R"({"l":["a","b"],"m":1})"},
      {"sequence indented", "l:\n  - a\n  - b\n", R"({"l":["a","b"]})"},
      {"sequence of mappings", "l:\n- name: x\n  v: 1\n- name: y\n  sub:\n    k: v\n",
       R"({"l":[{"name":"x","v":1},{"name":"y","sub":{"k":"v"}}]})"},
      {"item on its own line", "l:\n-\n  a: 1\n", R"({"l":[{"a":1}]})"},
      {"nested sequences", "l:\n- - a\n  - b\n- - c\n", R"({"l":[["a","b"],["c"]]})"},
      {"quotes", "a: \"x: y # z\"\nb: 'it''s'\nc: \"\\t\\u00e9\"\n", R"({"a":"x: y # z","b":"it's","c":"\té"})"},
      {"comments and blanks", "# top\n\na: 1 # one\n  # indented comment\nb: 2\n", R"({"a":1,"b":2})"},
      {"document start", "---\na: 1\n", R"({"a":1})"},
      {"scalars", "t: true\nf: false\nn: null\nt2: ~\ni: -12\ns: 012\nv: 1.5\nu: https://x:6443\n",
       R"({"t":true,"f":false,"n":null,"t2":null,"i":-12,"s":"012","v":"1.5","u":"https://x:6443"})"},
      {"empty value", "a:\nb: 1\n", R"({"a":null,"b":1})"},
      {"flow", "p: {}\nq: []\nr: [a, \"b c\", 3]\ns: {k: v, n: 1}\n",
       R"({"p":{},"q":[],"r":["a","b c",3],"s":{"k":"v","n":1}})"},
      {"quoted key", "\"a b\": 1\n'c': 2\n", R"({"a b":1,"c":2})"},
      {"colon inside plain value", "a: b:c\nurl: http://h:1/p\n", R"({"a":"b:c","url":"http://h:1/p"})"},
      {"crlf", "a: 1\r\nb:\r\n  c: 2\r\n", R"({"a":1,"b":{"c":2}})"},
      {"top-level sequence", "- a\n- b: 1\n", R"(["a",{"b":1}])"},
      {"hash inside word", "a: b#c\n", R"({"a":"b#c"})"},
  };
  for (const auto& c : cases) {
    auto r = ParseYaml(c.yaml);
    ASSERT_TRUE(r.ok()) << c.name << ": " << r.status().message();
    EXPECT_EQ(r.value(), json::parse(c.json)) << c.name;
  }
}

// What real kubeconfigs contain and the hand-written subset parser refused (issue 12: "block scalars and anchors in
// real kubeconfigs are refused"): now read by yaml-cpp.
TEST(Yaml, ConstructsOfRealKubeconfigs) {
  const YamlCase cases[] = {
      {"literal block scalar", "a: |\n  line 1\n  line 2\nb: 1\n", R"({"a":"line 1\nline 2\n","b":1})"},
      {"folded block scalar", "a: >-\n  one\n  two\n", R"({"a":"one two"})"},
      {"anchor and alias", "base: &u\n  token: t\nusers:\n- name: x\n  user: *u\n",
       R"({"base":{"token":"t"},"users":[{"name":"x","user":{"token":"t"}}]})"},
      {"tag", "a: !!str 1\n", R"({"a":"1"})"},
      {"quoted stays a string", "a: \"true\"\nb: '12'\n", R"({"a":"true","b":"12"})"},
      {"nested flow", "a: [1, [2, {k: v}]]\n", R"({"a":[1,[2,{"k":"v"}]]})"},
      {"multi-line plain scalar", "a: x\n  continued\n", R"({"a":"x continued"})"},
      {"exec credential plugin", "users:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
       "      command: gke-gcloud-auth-plugin\n      args: null\n      provideClusterInfo: true\n",
       R"({"users":[{"name":"u","user":{"exec":{"apiVersion":"client.authentication.k8s.io/v1",)"
       R"("command":"gke-gcloud-auth-plugin","args":null,"provideClusterInfo":true}}}]})"},
  };
  for (const auto& c : cases) {
    auto r = ParseYaml(c.yaml);
    ASSERT_TRUE(r.ok()) << c.name << ": " << r.status().message();
    EXPECT_EQ(r.value(), json::parse(c.json)) << c.name;
  }
}

TEST(Yaml, ErrorsNameTheLine) {
  const std::pair<const char*, const char*> cases[] = {
      {"a: 1\n---\nb: 2\n", "several documents"},
      {"a: 1\na: 2\n", "duplicate key"},
      {"a: b: c\n", "line "},
      {"a: 1\n- b\n", "line "},
      {"a:\n  b: 1\n c: 2\n", "line "},
      {"a: [1, 2\n", "line "},
  };
  for (const auto& [yaml, expected] : cases) {
    auto r = ParseYaml(yaml);
    ASSERT_FALSE(r.ok()) << yaml;
    EXPECT_NE(r.status().message().find(expected), std::string::npos) << yaml << " -> " << r.status().message();
    EXPECT_NE(r.status().message().find("line "), std::string::npos) << r.status().message();
  }
}

}  // namespace
}  // namespace memha::kube
