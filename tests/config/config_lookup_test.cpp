// Where the config comes from: explicit path, ./ai-orchestrator.yaml, the
// XDG config directory, else the built-in default. Each test runs in a fresh
// temporary directory with HOME and XDG_CONFIG_HOME pointed into it; the
// fixture restores the working directory and environment afterwards.

#include "config/config.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

using namespace orch;
namespace fs = std::filesystem;

namespace {

constexpr const char* minimal_config = R"(agents:
  codex: {}
workflows:
  only: [{agent: codex, task: implement}]
)";

std::optional<std::string> get_env(const char* name) {
  if (const char* x = std::getenv(name))
    return std::string{x};
  return std::nullopt;
}

void restore_env(const char* name, const std::optional<std::string>& value) {
  if (value)
    setenv(name, value->c_str(), 1);
  else
    unsetenv(name);
}

class config_lookup : public testing::Test {
protected:
  void SetUp() override {
    old_cwd_ = fs::current_path();
    old_home_ = get_env("HOME");
    old_xdg_ = get_env("XDG_CONFIG_HOME");
    std::string pattern
      = (fs::temp_directory_path() / "orch-config-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    fs::create_directories(root_ / "work");
    fs::create_directories(root_ / "home");
    fs::current_path(root_ / "work");
    setenv("HOME", (root_ / "home").c_str(), 1);
    unsetenv("XDG_CONFIG_HOME");
  }

  void TearDown() override {
    fs::current_path(old_cwd_);
    restore_env("HOME", old_home_);
    restore_env("XDG_CONFIG_HOME", old_xdg_);
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  /// Writes a config naming its workflow `name`, so tests can tell which
  /// file was loaded.
  void write_config(const fs::path& path, const std::string& name) {
    fs::create_directories(path.parent_path());
    std::ofstream out{path};
    std::string text = minimal_config;
    text.replace(text.find("only"), 4, name);
    out << text;
  }

  std::string loaded_workflow(const std::string& explicit_path) {
    auto res = load_config(explicit_path);
    if (!res.value || res.value->workflows.empty())
      return "(none)";
    return res.value->workflows[0].name;
  }

  fs::path root_;

private:
  fs::path old_cwd_;
  std::optional<std::string> old_home_;
  std::optional<std::string> old_xdg_;
};

} // namespace

TEST_F(config_lookup, without_any_file_the_built_in_config_is_used) {
  EXPECT_EQ(find_config_path(""), "");
  auto res = load_config("");
  ASSERT_TRUE(res.value);
  EXPECT_TRUE(res.errors.empty());
  EXPECT_EQ(res.value->source, "built-in");
  EXPECT_NE(res.value->find_workflow("thorough"), nullptr);
}

TEST_F(config_lookup, the_file_in_the_working_directory_is_found) {
  write_config(root_ / "work" / "ai-orchestrator.yaml", "local");
  EXPECT_EQ(find_config_path(""), "./ai-orchestrator.yaml");
  EXPECT_EQ(loaded_workflow(""), "local");
}

TEST_F(config_lookup, an_explicit_path_wins_over_every_other_place) {
  write_config(root_ / "work" / "ai-orchestrator.yaml", "local");
  write_config(root_ / "home" / ".config" / "ai-orchestrator" / "config.yaml",
               "user");
  auto explicit_path = (root_ / "custom.yaml").string();
  write_config(explicit_path, "explicit");
  EXPECT_EQ(find_config_path(explicit_path), explicit_path);
  EXPECT_EQ(loaded_workflow(explicit_path), "explicit");
}

TEST_F(config_lookup, a_missing_explicit_path_is_an_error_not_a_fallback) {
  write_config(root_ / "work" / "ai-orchestrator.yaml", "local");
  auto missing = (root_ / "missing.yaml").string();
  auto res = load_config(missing);
  EXPECT_FALSE(res.value);
  ASSERT_EQ(res.errors.size(), 1u);
  EXPECT_EQ(res.errors[0].file, missing);
  EXPECT_NE(res.errors[0].message.find("not found"), std::string::npos);
}

TEST_F(config_lookup, the_working_directory_wins_over_the_user_config) {
  write_config(root_ / "work" / "ai-orchestrator.yaml", "local");
  setenv("XDG_CONFIG_HOME", (root_ / "xdg").c_str(), 1);
  write_config(root_ / "xdg" / "ai-orchestrator" / "config.yaml", "user");
  EXPECT_EQ(loaded_workflow(""), "local");
}

TEST_F(config_lookup, xdg_config_home_is_used_when_set) {
  setenv("XDG_CONFIG_HOME", (root_ / "xdg").c_str(), 1);
  auto path = root_ / "xdg" / "ai-orchestrator" / "config.yaml";
  write_config(path, "xdg");
  write_config(root_ / "home" / ".config" / "ai-orchestrator" / "config.yaml",
               "home");
  EXPECT_EQ(find_config_path(""), path.string());
  EXPECT_EQ(loaded_workflow(""), "xdg");
}

TEST_F(config_lookup, home_dot_config_is_used_when_xdg_config_home_is_unset) {
  auto path = root_ / "home" / ".config" / "ai-orchestrator" / "config.yaml";
  write_config(path, "home");
  EXPECT_EQ(find_config_path(""), path.string());
  EXPECT_EQ(loaded_workflow(""), "home");
}

TEST_F(config_lookup, an_empty_or_relative_xdg_config_home_counts_as_unset) {
  write_config(root_ / "home" / ".config" / "ai-orchestrator" / "config.yaml",
               "home");
  write_config(root_ / "work" / "rel" / "ai-orchestrator" / "config.yaml",
               "relative");
  setenv("XDG_CONFIG_HOME", "", 1);
  EXPECT_EQ(loaded_workflow(""), "home");
  setenv("XDG_CONFIG_HOME", "rel", 1);
  EXPECT_EQ(loaded_workflow(""), "home");
}

TEST_F(config_lookup, a_set_xdg_config_home_replaces_home_dot_config) {
  setenv("XDG_CONFIG_HOME", (root_ / "xdg").c_str(), 1);
  write_config(root_ / "home" / ".config" / "ai-orchestrator" / "config.yaml",
               "home");
  EXPECT_EQ(find_config_path(""), "");
  EXPECT_EQ(load_config("").value->source, "built-in");
}

TEST_F(config_lookup, commands_in_the_local_file_resolve_against_its_dir) {
  {
    std::ofstream out{root_ / "work" / "ai-orchestrator.yaml"};
    out << "agents:\n  codex: {command: demo-agents/demo-codex}\n"
           "workflows:\n  default: [{agent: codex, task: implement}]\n";
  }
  auto res = load_config("");
  ASSERT_TRUE(res.value);
  auto expected = (fs::current_path() / "demo-agents" / "demo-codex")
                    .lexically_normal()
                    .string();
  EXPECT_EQ(res.value->agents[0].command, expected);
}

TEST_F(config_lookup, a_tilde_command_expands_to_home) {
  auto res = parse_config("agents:\n  codex: {command: ~/bin/codex}\n",
                          (root_ / "c.yaml").string());
  ASSERT_TRUE(res.value);
  EXPECT_EQ(res.value->agents[0].command,
            (root_ / "home" / "bin" / "codex").string());
}
