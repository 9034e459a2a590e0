// settings.cache: defaults, parsing, and errors naming file:line:key.

#include <chrono>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "config/config.hpp"
#include "config_test_support.hpp"

namespace orch {
namespace {

load_result parse(std::string_view text) {
  return test::parse_as(text, "cache.yaml");
}

/// Succeeds when `res` failed with an error at `line` for `key` whose
/// message contains `text`.
testing::AssertionResult has_error(const load_result& res, int32_t line,
                                   std::string_view key,
                                   std::string_view text) {
  if (res.value)
    return testing::AssertionFailure() << "config loaded despite errors:\n"
                                       << test::dump(res);
  for (const auto& x : res.errors)
    if (x.line == line && x.key == key
        && x.message.find(text) != std::string::npos
        && x.to_string().find("cache.yaml:" + std::to_string(line))
             != std::string::npos)
      return testing::AssertionSuccess();
  return testing::AssertionFailure() << "no such error; got:\n"
                                     << test::dump(res);
}

TEST(config_cache, defaults_when_not_given) {
  auto res = parse("agents: {codex: {}}\n");
  ASSERT_TRUE(res.value) << test::dump(res);
  const auto& c = res.value->settings.cache;
  EXPECT_TRUE(c.enabled);
  EXPECT_EQ(c.ttl, std::chrono::hours{24 * 7});
  EXPECT_EQ(c.max_entries, 1000u);
  EXPECT_EQ(c.max_memory_bytes, std::size_t{64} << 20);
  EXPECT_EQ(c.max_disk_bytes, std::size_t{512} << 20);
  EXPECT_TRUE(validate_config(builtin_config()).empty());
  EXPECT_TRUE(builtin_config().settings.cache.enabled);
}

TEST(config_cache, every_key_is_read) {
  auto res = parse(R"(
agents: {codex: {}}
settings:
  cache:
    enabled: false
    ttl: 3600.5
    max_entries: 10
    max_memory_bytes: 1048576
    max_disk_bytes: 2097152
)");
  ASSERT_TRUE(res.value) << test::dump(res);
  const auto& c = res.value->settings.cache;
  EXPECT_FALSE(c.enabled);
  EXPECT_EQ(c.ttl, std::chrono::milliseconds{3600500});
  EXPECT_EQ(c.max_entries, 10u);
  EXPECT_EQ(c.max_memory_bytes, 1048576u);
  EXPECT_EQ(c.max_disk_bytes, 2097152u);
  for (const auto& w : res.warnings)
    EXPECT_EQ(w.key.find("cache"), std::string::npos) << w.to_string();
}

TEST(config_cache, bad_values_are_errors_naming_the_key) {
  EXPECT_TRUE(has_error(parse(R"(
agents: {codex: {}}
settings:
  cache: {ttl: 0}
)"),
                        3, "settings.cache.ttl", "must be more than 0 s"));
  EXPECT_TRUE(has_error(parse(R"(
agents: {codex: {}}
settings:
  cache:
    ttl: 31536001
)"),
                        4, "settings.cache.ttl", "must be at most 31536000 s"));
  EXPECT_TRUE(has_error(parse(R"(
agents: {codex: {}}
settings:
  cache:
    max_entries: 0
)"),
                        4, "settings.cache.max_entries", "at least 1"));
  EXPECT_TRUE(has_error(parse(R"(
agents: {codex: {}}
settings:
  cache:
    max_entries: 1000001
)"),
                        4, "settings.cache.max_entries", "at most 1000000"));
  EXPECT_TRUE(has_error(parse(R"(
agents: {codex: {}}
settings:
  cache:
    max_disk_bytes: 1099511627777
)"),
                        4, "settings.cache.max_disk_bytes", "at most"));
  EXPECT_TRUE(has_error(parse(R"(
agents: {codex: {}}
settings:
  cache:
    enabled: maybe
)"),
                        4, "settings.cache.enabled", "a boolean"));
  EXPECT_TRUE(has_error(parse(R"(
agents: {codex: {}}
settings:
  cache:
    max_memory: 5
)"),
                        4, "settings.cache.max_memory",
                        "unknown key 'max_memory'"));
  EXPECT_TRUE(has_error(parse(R"(
agents: {codex: {}}
settings:
  cache: [1]
)"),
                        3, "settings.cache", "a mapping"));
}

} // namespace
} // namespace orch
