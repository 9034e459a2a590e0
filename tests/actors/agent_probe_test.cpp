// Agent availability is an enum; its spellings are what `agents` shows and
// what `agents --json` has always printed.

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "actors/agent_probe.hpp"

namespace orch {
namespace {

TEST(availability, keeps_the_spellings_of_agents_json) {
  EXPECT_EQ(to_string(availability::available), "available");
  EXPECT_EQ(to_string(availability::not_installed), "not installed");
  EXPECT_EQ(to_string(availability::disabled), "disabled");
  EXPECT_EQ(to_string(availability::auth_required), "auth required");
  EXPECT_EQ(to_string(availability::error), "error");
}

TEST(check_agent, tells_disabled_from_not_installed_by_value) {
  agent_config a;
  a.name = "x";
  a.kind = adapter_kind::command;
  a.command = "surely-no-such-program-on-path";
  std::vector<std::string> env{"PATH=/nonexistent"};
  auto st = check_agent(a, env, "/nonexistent");
  EXPECT_EQ(st.status, availability::not_installed);
  EXPECT_FALSE(st.installed);
  EXPECT_NE(st.detail.find("not found on PATH"), std::string::npos);

  a.enabled = false;
  st = check_agent(a, env, "/nonexistent");
  EXPECT_EQ(st.status, availability::disabled);
}

TEST(check_agent, an_installed_agent_without_auth_check_is_available) {
  agent_config a;
  a.name = "sh";
  a.kind = adapter_kind::command;
  a.command = "/bin/sh";
  auto st = check_agent(a, {"PATH=/usr/bin:/bin"}, "/nonexistent");
  EXPECT_TRUE(st.installed);
  EXPECT_EQ(st.status, availability::available);
}

} // namespace
} // namespace orch
