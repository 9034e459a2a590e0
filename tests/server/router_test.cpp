#include <gtest/gtest.h>

#include "server/http.hpp"
#include "server/json_body.hpp"
#include "server/serve.hpp"

using namespace orch::server;

namespace {

handler answer(int status) {
  return [status](request&) {
    return response::json(status, {{"status", status}});
  };
}

TEST(router_test, matches_literal_and_param_segments) {
  router r;
  r.get("/api/tasks", answer(1));
  r.get("/api/tasks/{id}", answer(2));
  r.post("/api/tasks/{id}/cancel", answer(3));
  auto m = r.find("GET", "/api/tasks/20261201-abc");
  ASSERT_NE(m.found, nullptr);
  EXPECT_EQ(m.found->pattern, "/api/tasks/{id}");
  EXPECT_EQ(m.params.at("id"), "20261201-abc");
  m = r.find("POST", "/api/tasks/x/cancel");
  ASSERT_NE(m.found, nullptr);
  EXPECT_EQ(m.params.at("id"), "x");
  m = r.find("GET", "/api/tasks/");
  ASSERT_NE(m.found, nullptr);
  EXPECT_EQ(m.found->pattern, "/api/tasks");
}

TEST(router_test, literal_segments_beat_params) {
  router r;
  r.get("/api/tasks/{id}", answer(1));
  r.get("/api/tasks/active", answer(2));
  auto m = r.find("GET", "/api/tasks/active");
  ASSERT_NE(m.found, nullptr);
  EXPECT_EQ(m.found->pattern, "/api/tasks/active");
}

TEST(router_test, wrong_method_lists_the_allowed_ones) {
  router r;
  r.get("/api/tasks", answer(1));
  r.post("/api/tasks", answer(2));
  auto m = r.find("DELETE", "/api/tasks");
  EXPECT_EQ(m.found, nullptr);
  EXPECT_EQ(m.allowed, (std::vector<std::string>{"GET", "POST"}));
  m = r.find("GET", "/api/nothing");
  EXPECT_EQ(m.found, nullptr);
  EXPECT_TRUE(m.allowed.empty());
}

TEST(router_test, head_matches_get_and_segments_must_match_in_number) {
  router r;
  r.get("/api/tasks/{id}", answer(1));
  EXPECT_NE(r.find("HEAD", "/api/tasks/1").found, nullptr);
  EXPECT_EQ(r.find("GET", "/api/tasks/1/extra").found, nullptr);
  EXPECT_EQ(r.find("GET", "/api").found, nullptr);
}

TEST(router_test, a_later_route_replaces_the_same_pattern) {
  router r;
  r.get("/x", answer(1));
  r.get("/x", answer(2));
  ASSERT_EQ(r.routes().size(), 1u);
  request req;
  EXPECT_EQ(r.find("GET", "/x").found->fn(req).body, R"({"status":2})");
}

TEST(request_test, query_params_and_headers) {
  request req;
  req.query = "since=12&token=a%2Bb&x=1+2&flag";
  req.headers = {{"Last-Event-ID", "7"}};
  EXPECT_EQ(req.query_param("since").value_or(""), "12");
  EXPECT_EQ(req.query_param("token").value_or(""), "a+b");
  EXPECT_EQ(req.query_param("x").value_or(""), "1 2");
  EXPECT_EQ(req.query_param("flag").value_or("none"), "");
  EXPECT_FALSE(req.query_param("missing"));
  ASSERT_NE(req.header("last-event-id"), nullptr);
  EXPECT_EQ(*req.header("LAST-EVENT-ID"), "7");
  EXPECT_EQ(url_decode("%zz%4"), "%zz%4");
}

TEST(response_test, error_shape) {
  auto res = response::error(400, "invalid_field", "field 'task': required");
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(res.body, R"({"error":{"code":"invalid_field",)"
                      R"("message":"field 'task': required"}})");
}

std::string message_of(const json_body& in) {
  return nlohmann::json::parse(in.error().body)["error"]["message"];
}

TEST(json_body_test, reads_typed_fields) {
  json_body in{R"({"task":"t","max_iterations":3,"no_cache":true,)"
               R"("agents":["a","b"]})"};
  std::string task;
  int64_t n = 0;
  bool no_cache = false;
  std::vector<std::string> agents;
  EXPECT_TRUE(in.only({"task", "max_iterations", "no_cache", "agents"}));
  EXPECT_TRUE(in.get_string("task", task, true));
  EXPECT_TRUE(in.get_int("max_iterations", n, false, 1, 10));
  EXPECT_TRUE(in.get_bool("no_cache", no_cache, false));
  EXPECT_TRUE(in.get_string_list("agents", agents, false));
  EXPECT_EQ(task, "t");
  EXPECT_EQ(n, 3);
  EXPECT_TRUE(no_cache);
  EXPECT_EQ(agents, (std::vector<std::string>{"a", "b"}));
  std::string missing = "keep";
  EXPECT_TRUE(in.get_string("workflow", missing, false));
  EXPECT_EQ(missing, "keep");
}

TEST(json_body_test, not_json_or_not_an_object) {
  json_body bad{"{\"task\": "};
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().status, 400);
  EXPECT_NE(bad.error().body.find("invalid_json"), std::string::npos);
  json_body arr{"[1,2]"};
  EXPECT_FALSE(arr.ok());
  EXPECT_NE(message_of(arr).find("an array"), std::string::npos);
  json_body empty{""};
  EXPECT_FALSE(empty.ok());
}

TEST(json_body_test, errors_name_the_field) {
  std::string s;
  int64_t n = 0;
  json_body wrong{R"({"max_iterations":"3"})"};
  EXPECT_FALSE(wrong.get_int("max_iterations", n, false, 1, 10));
  EXPECT_NE(message_of(wrong).find("'max_iterations'"), std::string::npos);
  EXPECT_NE(message_of(wrong).find("a string \"3\""), std::string::npos);
  json_body range{R"({"max_iterations":11})"};
  EXPECT_FALSE(range.get_int("max_iterations", n, false, 1, 10));
  EXPECT_NE(message_of(range).find("from 1 to 10, got 11"), std::string::npos);
  json_body required{R"({})"};
  EXPECT_FALSE(required.get_string("task", s, true));
  EXPECT_EQ(message_of(required), "field 'task': required");
  json_body unknown{R"({"task":"x","bogus":1})"};
  EXPECT_FALSE(unknown.only({"task"}));
  EXPECT_NE(message_of(unknown).find("\"bogus\""), std::string::npos);
  json_body list{R"({"agents":["a",2]})"};
  std::vector<std::string> agents;
  EXPECT_FALSE(list.get_string_list("agents", agents, false));
  EXPECT_NE(message_of(list).find("'agents': item 1"), std::string::npos);
  json_body floaty{R"({"max_iterations":2.5})"};
  EXPECT_FALSE(floaty.get_int("max_iterations", n, false, 1, 10));
}

TEST(json_body_test, first_error_wins) {
  json_body in{R"({"task":1,"no_cache":"yes"})"};
  std::string task;
  bool no_cache = false;
  EXPECT_FALSE(in.get_string("task", task, true));
  EXPECT_FALSE(in.get_bool("no_cache", no_cache, false));
  EXPECT_NE(message_of(in).find("'task'"), std::string::npos);
}

} // namespace

namespace {

TEST(serve_test, parse_listen_accepts_host_port_forms) {
  server_options o;
  std::string error;
  EXPECT_TRUE(parse_listen("0.0.0.0:8080", o, error));
  EXPECT_EQ(o.host, "0.0.0.0");
  EXPECT_EQ(o.port, 8080);
  EXPECT_TRUE(parse_listen("localhost:0", o, error));
  EXPECT_EQ(o.host, "127.0.0.1");
  EXPECT_EQ(o.port, 0);
  server_options d;
  EXPECT_TRUE(parse_listen(":5002", d, error));
  EXPECT_EQ(d.host, "127.0.0.1");
  EXPECT_EQ(d.port, 5002);
  EXPECT_TRUE(is_loopback("127.0.0.1"));
  EXPECT_FALSE(is_loopback("127.0.0.2"));
  EXPECT_FALSE(is_loopback("0.0.0.0"));
}

TEST(serve_test, parse_listen_refuses_bad_ports_and_ipv6) {
  server_options o;
  std::string error;
  EXPECT_FALSE(parse_listen("127.0.0.1:65536", o, error));
  EXPECT_NE(error.find("--listen"), std::string::npos);
  EXPECT_FALSE(parse_listen("127.0.0.1:", o, error));
  EXPECT_FALSE(parse_listen("127.0.0.1:http", o, error));
  EXPECT_FALSE(parse_listen("[::1]:80", o, error));
}

} // namespace
