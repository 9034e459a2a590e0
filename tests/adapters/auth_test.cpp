// probe_auth: telling from the environment and files under HOME whether a
// CLI has credentials, without running it.

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "adapters/adapter.hpp"

using namespace orch;
namespace fs = std::filesystem;

namespace {

/// A fresh, empty HOME that is removed afterwards.
class AuthProbe : public ::testing::Test {
protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "orch-auth-XXXXXX");
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    home_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(home_, ec);
  }
  void write(const std::string& rel, const std::string& text) {
    auto path = fs::path(home_) / rel;
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }
  auth_state probe(adapter_kind kind,
                   const std::vector<std::string>& env = {}) {
    return make_adapter(kind)->probe_auth(env, home_);
  }
  std::string home_;
};

TEST_F(AuthProbe, AnEmptyHomeWithoutKeysIsMissingForEveryCli) {
  for (auto kind : {adapter_kind::codex, adapter_kind::claude,
                    adapter_kind::gemini, adapter_kind::copilot})
    EXPECT_EQ(probe(kind, {"PATH=/bin", "XDG_CONFIG_HOME=" + home_ + "/x"}),
              auth_state::missing)
      << default_command(kind);
}

TEST_F(AuthProbe, AnApiKeyInTheEnvironmentIsPresent) {
  EXPECT_EQ(probe(adapter_kind::codex, {"OPENAI_API_KEY=sk"}),
            auth_state::present);
  EXPECT_EQ(probe(adapter_kind::codex, {"CODEX_API_KEY=sk"}),
            auth_state::present);
  EXPECT_EQ(probe(adapter_kind::claude, {"ANTHROPIC_API_KEY=sk"}),
            auth_state::present);
  EXPECT_EQ(probe(adapter_kind::gemini, {"GEMINI_API_KEY=k"}),
            auth_state::present);
  EXPECT_EQ(probe(adapter_kind::copilot, {"GH_TOKEN=t"}), auth_state::present);
  // An empty value is no key.
  EXPECT_EQ(probe(adapter_kind::claude, {"ANTHROPIC_API_KEY="}),
            auth_state::missing);
}

TEST_F(AuthProbe, CodexReadsAuthJson) {
  write(".codex/auth.json", R"({"OPENAI_API_KEY": null, "tokens": {}})");
  EXPECT_EQ(probe(adapter_kind::codex), auth_state::present);
  write(".codex/auth.json", R"({"OPENAI_API_KEY": null})");
  EXPECT_EQ(probe(adapter_kind::codex), auth_state::missing);
  write(".codex/auth.json", "{garbage");
  EXPECT_EQ(probe(adapter_kind::codex), auth_state::unknown);
}

TEST_F(AuthProbe, CodexHomeMovesTheAuthFile) {
  write("elsewhere/auth.json", R"({"OPENAI_API_KEY": "sk"})");
  EXPECT_EQ(probe(adapter_kind::codex, {"CODEX_HOME=" + home_ + "/elsewhere"}),
            auth_state::present);
}

TEST_F(AuthProbe, ClaudeReadsCredentialsOrTheOauthAccount) {
  write(".claude.json", R"({"numStartups": 3})");
  EXPECT_EQ(probe(adapter_kind::claude), auth_state::missing);
  write(".claude.json", R"({"oauthAccount": {"emailAddress": "a@b"}})");
  EXPECT_EQ(probe(adapter_kind::claude), auth_state::present);
  fs::remove(fs::path(home_) / ".claude.json");
  write(".claude/.credentials.json", "{}");
  EXPECT_EQ(probe(adapter_kind::claude), auth_state::present);
}

TEST_F(AuthProbe, GeminiFollowsTheSelectedAuthType) {
  write(".gemini/settings.json",
        "// comment\n{\"security\": {\"auth\": {\"selectedType\": "
        "\"gemini-api-key\"}}}");
  EXPECT_EQ(probe(adapter_kind::gemini), auth_state::missing);
  EXPECT_EQ(probe(adapter_kind::gemini, {"GEMINI_API_KEY=k"}),
            auth_state::present);
  write(".gemini/.env", "GEMINI_API_KEY=k\n");
  EXPECT_EQ(probe(adapter_kind::gemini), auth_state::present);
  write(".gemini/settings.json",
        R"({"security": {"auth": {"selectedType": "oauth-personal"}}})");
  EXPECT_EQ(probe(adapter_kind::gemini), auth_state::missing);
  write(".gemini/oauth_creds.json", "{}");
  EXPECT_EQ(probe(adapter_kind::gemini), auth_state::present);
  write(".gemini/settings.json",
        R"({"security": {"auth": {"selectedType": "vertex-ai"}}})");
  EXPECT_EQ(probe(adapter_kind::gemini), auth_state::unknown);
}

TEST_F(AuthProbe, CopilotReadsItsConfigOrTheGhLogin) {
  write(".copilot/config.json",
        "// User settings belong in settings.json.\n{\"firstLaunchAt\": "
        "\"2026-11-24\"}");
  EXPECT_EQ(probe(adapter_kind::copilot), auth_state::missing);
  write(".copilot/config.json",
        "// managed\n{\"logged_in_users\": [{\"host\": "
        "\"https://github.com\", \"login\": \"octo\"}]}");
  EXPECT_EQ(probe(adapter_kind::copilot), auth_state::present);
  fs::remove(fs::path(home_) / ".copilot/config.json");
  write(".config/gh/hosts.yml", "github.com:\n    user: octo\n");
  EXPECT_EQ(probe(adapter_kind::copilot), auth_state::present);
}

TEST_F(AuthProbe, CopilotWithACustomProviderNeedsNoGithubLogin) {
  EXPECT_EQ(probe(adapter_kind::copilot,
                  {"COPILOT_PROVIDER_BASE_URL=http://127.0.0.1:8080/v1"}),
            auth_state::present);
}

TEST_F(AuthProbe, NoHomeAndNoKeysIsUnknown) {
  for (auto kind : {adapter_kind::codex, adapter_kind::claude,
                    adapter_kind::gemini, adapter_kind::copilot})
    EXPECT_EQ(make_adapter(kind)->probe_auth({}, ""), auth_state::unknown)
      << default_command(kind);
}

TEST(AuthState, HasReadableNames) {
  EXPECT_EQ(to_string(auth_state::present), "present");
  EXPECT_EQ(to_string(auth_state::missing), "missing");
  EXPECT_EQ(to_string(auth_state::unknown), "unknown");
}

} // namespace
