// The log file: in <state>/logs, at the configured level, rotated by size,
// never opened through a link.

#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include "runtime/logging.hpp"
#include "runtime/state_dir.hpp"
#include "support/temp_tree.hpp"

namespace orch {
namespace {

namespace fs = std::filesystem;

class logging_test : public test::temp_tree {
protected:
  void SetUp() override {
    temp_tree::SetUp();
    std::string error;
    state_ = open_state_dir(base_ / "state", error);
    ASSERT_TRUE(state_) << error;
    log_ = base_ / "state" / "logs" / "ai-orchestrator.log";
  }

  void TearDown() override {
    shutdown_logging();
    temp_tree::TearDown();
  }

  detail::unique_fd state_;
  fs::path log_;
};

TEST_F(logging_test, writes_at_the_level_and_only_to_the_file) {
  log_options opts;
  opts.level = "WARNING";
  std::string error;
  ASSERT_TRUE(init_logging(state_.get(), opts, error)) << error;
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  log().info("info-line id={}", 1);
  log().warn("warn-line id={}", 2);
  spdlog::info("stray-default-line");
  spdlog::get("orch")->error("error-line");
  EXPECT_EQ(testing::internal::GetCapturedStdout(), "");
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  auto text = test::read_text(log_);
  EXPECT_EQ(text.find("info-line"), std::string::npos) << text;
  EXPECT_EQ(text.find("stray-default-line"), std::string::npos) << text;
  EXPECT_NE(text.find("warn-line id=2"), std::string::npos) << text;
  EXPECT_NE(text.find("error-line"), std::string::npos) << text;
  struct stat st {};
  ASSERT_EQ(::stat(log_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(logging_test, is_silent_before_init_and_after_shutdown) {
  log().error("before");
  std::string error;
  ASSERT_TRUE(init_logging(state_.get(), log_options{}, error)) << error;
  log().info("during");
  shutdown_logging();
  log().error("after");
  auto text = test::read_text(log_);
  EXPECT_EQ(text.find("before"), std::string::npos);
  EXPECT_NE(text.find("during"), std::string::npos);
  EXPECT_EQ(text.find("after"), std::string::npos);
}

TEST_F(logging_test, level_off_opens_nothing) {
  log_options opts;
  opts.level = "off";
  std::string error;
  ASSERT_TRUE(init_logging(state_.get(), opts, error)) << error;
  log().error("x");
  EXPECT_FALSE(fs::exists(log_));
}

TEST_F(logging_test, rotates_by_size_and_keeps_max_files) {
  log_options opts;
  opts.max_bytes = 1000;
  opts.max_files = 3;
  std::string error;
  ASSERT_TRUE(init_logging(state_.get(), opts, error)) << error;
  for (int i = 0; i < 200; ++i)
    log().info("line {} {}", i, std::string(50, 'x'));
  auto dir = log_.parent_path();
  EXPECT_TRUE(fs::exists(dir / "ai-orchestrator.1.log"));
  EXPECT_TRUE(fs::exists(dir / "ai-orchestrator.2.log"));
  EXPECT_FALSE(fs::exists(dir / "ai-orchestrator.3.log"));
  for (const auto& e : fs::directory_iterator{dir})
    EXPECT_LE(fs::file_size(e.path()), 1000u) << e.path();
  EXPECT_NE(test::read_text(log_).find("line 199 "), std::string::npos);
}

TEST_F(logging_test, never_writes_through_a_link_at_the_file) {
  fs::create_directory(log_.parent_path());
  auto target = outside_ / "victim";
  test::write_text(target, "keep\n");
  fs::create_symlink(target, log_);
  std::string error;
  EXPECT_FALSE(init_logging(state_.get(), log_options{}, error));
  EXPECT_NE(error.find("symlink"), std::string::npos) << error;
  log().error("must not land anywhere");
  EXPECT_EQ(test::read_text(target), "keep\n");
}

TEST_F(logging_test, never_writes_through_a_link_at_the_logs_folder) {
  fs::create_directory_symlink(outside_, log_.parent_path());
  std::string error;
  EXPECT_FALSE(init_logging(state_.get(), log_options{}, error));
  EXPECT_TRUE(fs::is_empty(outside_));
}

TEST(log_text, keeps_a_message_on_one_line) {
  EXPECT_EQ(log_text("a\nfake-line\tx\x1b[31m"), "a\\nfake-line\\tx\\x1b[31m");
  EXPECT_EQ(log_text("plain é"), "plain é");
  // Cut on a character boundary: "é" is two bytes.
  EXPECT_EQ(log_text("aé", 2), "a...");
}

} // namespace
} // namespace orch
