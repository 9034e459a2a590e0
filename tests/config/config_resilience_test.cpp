// The resilience keys (issue 12, parts 1-4): settings.retry,
// settings.circuit_breaker, settings.max_quota_wait, and per agent retry,
// circuit_breaker and fallback; defaults, inheritance and clear errors.

#include <chrono>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "config/config.hpp"
#include "config/config_test_support.hpp"

using namespace orch;
using namespace std::chrono_literals;

namespace {

constexpr const char* file_name = "/configs/resilience.yaml";

load_result parse(std::string_view text) {
  return test::parse_as(text, file_name);
}

testing::AssertionResult has_error(const load_result& res, int32_t line,
                                   std::string_view key,
                                   std::string_view text) {
  if (res.value)
    return testing::AssertionFailure() << "config loaded despite errors:\n"
                                       << test::dump(res);
  for (const auto& x : res.errors)
    if (x.line == line && x.key == key
        && x.message.find(text) != std::string::npos)
      return testing::AssertionSuccess();
  return testing::AssertionFailure()
         << "no error at line " << line << " for " << key << " containing '"
         << text << "'; got:\n"
         << test::dump(res);
}

TEST(config_resilience, the_defaults_are_documented_values) {
  auto res = parse("agents: {codex: {}}\n");
  ASSERT_TRUE(res.value) << test::dump(res);
  const auto& s = res.value->settings;
  EXPECT_EQ(s.retry.attempts, 3);
  EXPECT_EQ(s.retry.base, 2s);
  EXPECT_EQ(s.retry.cap, 30s);
  EXPECT_EQ(s.circuit_breaker.failures, 5);
  EXPECT_EQ(s.circuit_breaker.window, 10min);
  EXPECT_EQ(s.circuit_breaker.cool_down, 5min);
  EXPECT_EQ(s.max_quota_wait, 5min);
  const auto& a = res.value->agents.front();
  EXPECT_EQ(a.retry.attempts, 3);
  EXPECT_EQ(a.circuit_breaker.failures, 5);
  EXPECT_TRUE(a.fallback.empty());
}

TEST(config_resilience, agents_inherit_the_settings_and_override_key_by_key) {
  // Settings after agents in the file: still the agents' defaults.
  auto res = parse(R"(
agents:
  claude:
    retry: {attempts: 5}
    circuit_breaker: {cool_down: 90}
    fallback: [codex, gemini]
  codex:
    fallback: gemini
  gemini: {}
settings:
  retry: {attempts: 2, base: 0.5, cap: 8}
  circuit_breaker: {failures: 3, window: 120, cool_down: 30}
  max_quota_wait: 600
)");
  ASSERT_TRUE(res.value) << test::dump(res);
  const auto& cfg = *res.value;
  EXPECT_EQ(cfg.settings.max_quota_wait, 10min);
  auto claude = cfg.find_agent("claude");
  ASSERT_NE(claude, nullptr);
  EXPECT_EQ(claude->retry.attempts, 5);
  EXPECT_EQ(claude->retry.base, 500ms);
  EXPECT_EQ(claude->retry.cap, 8s);
  EXPECT_EQ(claude->circuit_breaker.failures, 3);
  EXPECT_EQ(claude->circuit_breaker.window, 120s);
  EXPECT_EQ(claude->circuit_breaker.cool_down, 90s);
  EXPECT_EQ(claude->fallback, (std::vector<std::string>{"codex", "gemini"}));
  auto codex = cfg.find_agent("codex");
  ASSERT_NE(codex, nullptr);
  EXPECT_EQ(codex->retry.attempts, 2);
  EXPECT_EQ(codex->fallback, (std::vector<std::string>{"gemini"}));
}

TEST(config_resilience, an_unknown_fallback_is_an_error_naming_the_known) {
  auto res = parse(R"(
agents:
  claude:
    fallback: [codx]
  codex: {}
)");
  EXPECT_TRUE(has_error(res, 3, "agents.claude.fallback[0]",
                        "unknown agent 'codx' (known: claude, codex)"));
}

TEST(config_resilience, an_agent_cannot_fall_back_to_itself_or_twice) {
  auto res = parse(R"(
agents:
  claude:
    fallback: [codex, claude, codex]
  codex: {}
)");
  EXPECT_TRUE(has_error(res, 3, "agents.claude.fallback[1]",
                        "an agent cannot be its own fallback"));
  EXPECT_TRUE(has_error(res, 3, "agents.claude.fallback[2]",
                        "agent 'codex' is listed twice"));
}

TEST(config_resilience, retry_values_out_of_range_are_errors) {
  auto res = parse(R"(
agents:
  codex:
    retry: {attempts: 21, base: 10, cap: 5}
settings:
  retry: {attempts: 0, base: 7200}
)");
  EXPECT_TRUE(has_error(res, 3, "agents.codex.retry.attempts",
                        "must be at most 20, got 21"));
  EXPECT_TRUE(has_error(res, 3, "agents.codex.retry.cap",
                        "must be at least base (10 s)"));
  EXPECT_TRUE(
    has_error(res, 5, "settings.retry.attempts", "must be at least 1, got 0"));
  EXPECT_TRUE(has_error(res, 5, "settings.retry.base", "7200"));
}

TEST(config_resilience, breaker_values_out_of_range_are_errors) {
  auto res = parse(R"(
agents:
  codex:
    circuit_breaker: {failures: 0, window: 0}
settings:
  max_quota_wait: -1
  circuit_breaker: {colour: red}
)");
  EXPECT_TRUE(has_error(res, 3, "agents.codex.circuit_breaker.failures",
                        "must be at least 1, got 0"));
  EXPECT_TRUE(has_error(res, 3, "agents.codex.circuit_breaker.window",
                        "must be at least"));
  EXPECT_TRUE(has_error(res, 5, "settings.max_quota_wait", "negative"));
  EXPECT_TRUE(has_error(res, 6, "settings.circuit_breaker.colour",
                        "allowed keys: failures, window, cool_down"));
}

TEST(config_resilience, the_built_in_config_validates_with_the_defaults) {
  auto cfg = builtin_config();
  EXPECT_TRUE(validate_config(cfg).empty());
  for (const auto& a : cfg.agents) {
    EXPECT_EQ(a.retry.attempts, cfg.settings.retry.attempts);
    EXPECT_TRUE(a.fallback.empty());
  }
}

} // namespace
