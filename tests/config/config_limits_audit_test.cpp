// The `rate_limiting` section and `settings.audit`: defaults, values, and
// errors that name file, line and key.

#include "config/config.hpp"
#include "config/config_test_support.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

using namespace orch;

namespace {

constexpr const char* file_name = "/configs/limits.yaml";

load_result parse(std::string_view text) {
  return test::parse_as(text, file_name);
}

using test::dump;

testing::AssertionResult has_error(const load_result& res, int32_t line,
                                   std::string_view key,
                                   std::string_view text) {
  if (res.value)
    return testing::AssertionFailure() << "config loaded despite errors:\n"
                                       << dump(res);
  for (const auto& x : res.errors)
    if (x.line == line && x.key == key
        && x.message.find(text) != std::string::npos && x.file == file_name)
      return testing::AssertionSuccess();
  return testing::AssertionFailure()
         << "no error at line " << line << " for " << key << " containing '"
         << text << "'; got:\n"
         << dump(res);
}

} // namespace

TEST(config_limits_audit, defaults_without_the_sections) {
  auto res = parse("agents: {codex: {}}\n"
                   "workflows: {quick: [{agent: codex, task: implement}]}\n");
  ASSERT_TRUE(res.value) << dump(res);
  const auto& cfg = *res.value;
  EXPECT_FALSE(cfg.rate_limiting.enabled);
  EXPECT_EQ(cfg.rate_limiting.requests_per_minute, 10);
  EXPECT_EQ(cfg.rate_limiting.burst_size, 20);
  EXPECT_TRUE(cfg.rate_limiting.per_user);
  EXPECT_TRUE(cfg.settings.audit.enabled);
  EXPECT_FALSE(cfg.settings.audit.include_task);
  EXPECT_EQ(cfg.settings.audit.max_bytes, std::size_t{10} * 1024 * 1024);
}

TEST(config_limits_audit, the_seeds_rate_limiting_section_is_parsed) {
  auto res = parse(R"(
agents: {codex: {}}
workflows: {quick: [{agent: codex, task: implement}]}
rate_limiting:
  enabled: true
  requests_per_minute: 7
  burst_size: 3
  per_user: false
)");
  ASSERT_TRUE(res.value) << dump(res);
  EXPECT_TRUE(res.warnings.empty()) << dump(res);
  const auto& r = res.value->rate_limiting;
  EXPECT_TRUE(r.enabled);
  EXPECT_EQ(r.requests_per_minute, 7);
  EXPECT_EQ(r.burst_size, 3);
  EXPECT_FALSE(r.per_user);
}

TEST(config_limits_audit, settings_audit_is_parsed) {
  auto res = parse(R"(
agents: {codex: {}}
workflows: {quick: [{agent: codex, task: implement}]}
settings:
  audit: {enabled: false, include_task: true, max_bytes: 65536}
)");
  ASSERT_TRUE(res.value) << dump(res);
  const auto& a = res.value->settings.audit;
  EXPECT_FALSE(a.enabled);
  EXPECT_TRUE(a.include_task);
  EXPECT_EQ(a.max_bytes, 65536u);
}

TEST(config_limits_audit, bad_rate_limiting_values_are_errors_with_positions) {
  auto res = parse(R"(
agents: {codex: {}}
rate_limiting:
  enabled: yes please
  requests_per_minute: 0
  burst_size: 2000000
  per_minute: 3
)");
  EXPECT_TRUE(has_error(res, 3, "rate_limiting.enabled", "a boolean"));
  EXPECT_TRUE(
    has_error(res, 4, "rate_limiting.requests_per_minute", "at least 1"));
  EXPECT_TRUE(has_error(res, 5, "rate_limiting.burst_size", "at most 1000000"));
  EXPECT_TRUE(
    has_error(res, 6, "rate_limiting.per_minute", "unknown key 'per_minute'"));
}

TEST(config_limits_audit, rate_limiting_must_be_a_mapping) {
  auto res = parse(R"(
agents: {codex: {}}
rate_limiting: 10
)");
  EXPECT_TRUE(has_error(res, 2, "rate_limiting", "a mapping"));
}

TEST(config_limits_audit, bad_audit_values_are_errors_with_positions) {
  auto res = parse(R"(
agents: {codex: {}}
settings:
  audit:
    include_task: 1
    max_bytes: 100
    rotate: true
)");
  EXPECT_TRUE(has_error(res, 4, "settings.audit.include_task", "a boolean"));
  EXPECT_TRUE(has_error(res, 5, "settings.audit.max_bytes", "at least 4096"));
  EXPECT_TRUE(
    has_error(res, 6, "settings.audit.rotate", "unknown key 'rotate'"));
}

TEST(config_limits_audit, limits_without_enabled_are_warned_about) {
  auto res = parse(R"(
agents: {codex: {}}
workflows: {quick: [{agent: codex, task: implement}]}
rate_limiting:
  requests_per_minute: 5
)");
  ASSERT_TRUE(res.value) << dump(res);
  EXPECT_FALSE(res.value->rate_limiting.enabled);
  EXPECT_EQ(res.value->rate_limiting.requests_per_minute, 5);
  ASSERT_EQ(res.warnings.size(), 1u) << dump(res);
  EXPECT_EQ(res.warnings[0].key, "rate_limiting");
  EXPECT_EQ(res.warnings[0].line, 3);
  EXPECT_NE(res.warnings[0].message.find("'enabled: true'"), std::string::npos);
}
