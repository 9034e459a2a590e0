// The state directory: where it is, created private, never a link, ours.

#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "runtime/state_dir.hpp"
#include "support/temp_tree.hpp"

namespace orch {
namespace {

namespace fs = std::filesystem;

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

TEST(resolve_state_dir, follows_xdg_then_home) {
  EXPECT_EQ(resolve_state_dir("", "/x/state", "/home/u"),
            fs::path{"/x/state/ai-orchestrator"});
  EXPECT_EQ(resolve_state_dir("", nullptr, "/home/u"),
            fs::path{"/home/u/.local/state/ai-orchestrator"});
  // The XDG spec ignores a relative or empty value.
  EXPECT_EQ(resolve_state_dir("", "rel/state", "/home/u"),
            fs::path{"/home/u/.local/state/ai-orchestrator"});
  EXPECT_EQ(resolve_state_dir("", "", "/home/u"),
            fs::path{"/home/u/.local/state/ai-orchestrator"});
  EXPECT_EQ(resolve_state_dir("", nullptr, nullptr), fs::path{});
}

TEST(resolve_state_dir, a_configured_path_wins_and_expands_the_home) {
  EXPECT_EQ(resolve_state_dir("/srv/orch/", "/x/state", "/home/u"),
            fs::path{"/srv/orch/"});
  EXPECT_EQ(resolve_state_dir("~/orch", "/x/state", "/home/u"),
            fs::path{"/home/u/orch"});
  EXPECT_EQ(resolve_state_dir("~/orch", nullptr, nullptr), fs::path{});
}

using state_dir_test = test::temp_tree;

TEST_F(state_dir_test, creates_the_folder_and_missing_parents_0700) {
  auto dir = base_ / "a" / "b" / "ai-orchestrator";
  std::string error;
  auto fd = open_state_dir(dir, error);
  ASSERT_TRUE(fd) << error;
  EXPECT_TRUE(fs::is_directory(dir));
  EXPECT_EQ(mode_of(dir), 0700u);
  EXPECT_EQ(mode_of(base_ / "a") & 077, 0u);
  // Opening again is fine.
  EXPECT_TRUE(open_state_dir(dir, error)) << error;
}

TEST_F(state_dir_test, narrows_an_existing_open_folder_to_0700) {
  auto dir = base_ / "state";
  fs::create_directories(dir);
  ::chmod(dir.c_str(), 0755);
  std::string error;
  ASSERT_TRUE(open_state_dir(dir, error)) << error;
  EXPECT_EQ(mode_of(dir), 0700u);
}

TEST_F(state_dir_test, refuses_a_symlink_as_the_folder) {
  auto dir = base_ / "state";
  fs::create_directory_symlink(outside_, dir);
  std::string error;
  EXPECT_FALSE(open_state_dir(dir, error));
  EXPECT_NE(error.find("is a symlink"), std::string::npos) << error;
  // The link's target was left alone.
  EXPECT_NE(mode_of(outside_), 0700u);
}

TEST_F(state_dir_test, follows_links_among_the_parents) {
  fs::create_directory_symlink(outside_, base_ / "home");
  std::string error;
  ASSERT_TRUE(open_state_dir(base_ / "home" / "state", error)) << error;
  EXPECT_TRUE(fs::is_directory(outside_ / "state"));
}

TEST_F(state_dir_test, refuses_a_relative_path_and_a_file) {
  std::string error;
  EXPECT_FALSE(open_state_dir("rel/state", error));
  test::write_text(base_ / "file", "x");
  EXPECT_FALSE(open_state_dir(base_ / "file", error));
}

TEST_F(state_dir_test, a_subfolder_is_created_0700_and_never_a_link) {
  std::string error;
  auto fd = open_state_dir(base_ / "state", error);
  ASSERT_TRUE(fd) << error;
  EXPECT_TRUE(open_state_subdir(fd.get(), "logs", error)) << error;
  EXPECT_EQ(mode_of(base_ / "state" / "logs"), 0700u);
  fs::create_directory_symlink(outside_, base_ / "state" / "cache");
  EXPECT_FALSE(open_state_subdir(fd.get(), "cache", error));
  EXPECT_NE(error.find("symlink"), std::string::npos) << error;
}

} // namespace
} // namespace orch
