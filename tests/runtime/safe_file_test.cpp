// Our own files: atomic writes that never follow a link below their base,
// and the workspace lock.

#include "runtime/safe_file.hpp"

#include <gtest/gtest.h>

#include "support/temp_tree.hpp"

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <unistd.h>

namespace fs = std::filesystem;

namespace orch {
namespace {

using test::read_text;
using test::write_text;

// A workspace `ws/` next to `outside/`, which holds a file that nothing may
// change.
class safe_file_fixture : public test::temp_tree {
protected:
  void SetUp() override {
    test::temp_tree::SetUp();
    write_text(outside_ / "secret", "original");
  }

  void expect_outside_untouched() const {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator{outside_})
      names.insert(e.path().filename().string());
    EXPECT_EQ(names, std::set<std::string>{"secret"});
    EXPECT_EQ(read_text(outside_ / "secret"), "original");
  }
};

// -- write_file_atomic --------------------------------------------------------

TEST_F(safe_file_fixture, writes_creates_folders_and_leaves_no_temp_file) {
  std::string error;
  ASSERT_TRUE(write_file_atomic(root_, ".orchestrator/runs/r1/manifest.json",
                                "{}\n", error))
    << error;
  EXPECT_EQ(read_text(root_ / ".orchestrator/runs/r1/manifest.json"), "{}\n");
  EXPECT_EQ(fs::status(root_ / ".orchestrator/runs").permissions()
              & fs::perms::all,
            fs::perms::owner_all);
  ASSERT_TRUE(write_file_atomic(root_, ".orchestrator/runs/r1/manifest.json",
                                "{\"v\":2}\n", error))
    << error;
  EXPECT_EQ(read_text(root_ / ".orchestrator/runs/r1/manifest.json"),
            "{\"v\":2}\n");
  for (const auto& e : fs::directory_iterator{root_ / ".orchestrator/runs/r1"})
    EXPECT_EQ(e.path().filename(), "manifest.json");
}

TEST_F(safe_file_fixture, a_missing_base_is_created) {
  std::string error;
  ASSERT_TRUE(
    write_file_atomic(root_ / "state" / "cache", "x/y.json", "{}", error))
    << error;
  EXPECT_EQ(read_text(root_ / "state/cache/x/y.json"), "{}");
}

TEST_F(safe_file_fixture, a_linked_folder_below_the_base_is_refused) {
  fs::create_directory_symlink(outside_, root_ / ".orchestrator");
  std::string error;
  EXPECT_FALSE(
    write_file_atomic(root_, ".orchestrator/manifest.json", "{}", error));
  EXPECT_NE(error.find(".orchestrator is a symlink"), std::string::npos)
    << error;
  // Deeper: the link is refused before anything is created behind it.
  EXPECT_FALSE(
    write_file_atomic(root_, ".orchestrator/a/b/manifest.json", "{}", error));
  expect_outside_untouched();
}

TEST_F(safe_file_fixture, a_linked_leaf_is_replaced_not_followed) {
  fs::create_directories(root_ / ".orchestrator");
  fs::create_symlink(outside_ / "secret",
                     root_ / ".orchestrator/manifest.json");
  // A planted temp name of the old stub's kind must not matter either.
  fs::create_symlink(outside_ / "secret",
                     root_ / ".orchestrator/manifest.json.tmp");
  std::string error;
  ASSERT_TRUE(
    write_file_atomic(root_, ".orchestrator/manifest.json", "{}\n", error))
    << error;
  EXPECT_FALSE(
    fs::is_symlink(fs::symlink_status(root_ / ".orchestrator/manifest.json")));
  EXPECT_EQ(read_text(root_ / ".orchestrator/manifest.json"), "{}\n");
  expect_outside_untouched();
}

TEST_F(safe_file_fixture, a_hard_linked_leaf_is_replaced_not_changed) {
  fs::create_directories(root_ / ".orchestrator");
  fs::create_hard_link(outside_ / "secret", root_ / ".orchestrator/m.json");
  std::string error;
  ASSERT_TRUE(write_file_atomic(root_, ".orchestrator/m.json", "new", error))
    << error;
  EXPECT_EQ(read_text(root_ / ".orchestrator/m.json"), "new");
  expect_outside_untouched();
}

TEST_F(safe_file_fixture, both_sync_modes_replace_what_is_there_but_a_folder) {
  // atomic_only swaps the new file in (RENAME_EXCHANGE) and removes the old
  // one: the outcome must be a rename's.
  auto names = [this] {
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator{root_ / ".orchestrator"})
      out.insert(e.path().filename().string());
    return out;
  };
  for (auto mode :
       {detail::sync_mode::durable, detail::sync_mode::atomic_only}) {
    fs::remove_all(root_ / ".orchestrator");
    fs::create_directories(root_ / ".orchestrator/dir");
    write_text(root_ / ".orchestrator/dir/kept", "kept");
    write_text(root_ / ".orchestrator/plain", "old");
    fs::create_symlink(outside_ / "secret", root_ / ".orchestrator/link");
    fs::create_hard_link(outside_ / "secret", root_ / ".orchestrator/hard");
    std::string error;
    for (std::string name : {"plain", "link", "hard", "fresh"}) {
      ASSERT_TRUE(
        write_file_atomic(root_, ".orchestrator/" + name, "new", error, mode))
        << name << ": " << error;
      EXPECT_FALSE(
        fs::is_symlink(fs::symlink_status(root_ / ".orchestrator" / name)));
      EXPECT_EQ(read_text(root_ / ".orchestrator" / name), "new") << name;
    }
    EXPECT_FALSE(
      write_file_atomic(root_, ".orchestrator/dir", "new", error, mode));
    EXPECT_NE(error.find("directory"), std::string::npos) << error;
    EXPECT_TRUE(fs::is_directory(root_ / ".orchestrator/dir"));
    EXPECT_EQ(read_text(root_ / ".orchestrator/dir/kept"), "kept");
    // No temp file and no old entry left behind.
    EXPECT_EQ(names(),
              (std::set<std::string>{"dir", "fresh", "hard", "link", "plain"}));
    expect_outside_untouched();
  }
}

TEST_F(safe_file_fixture, names_that_could_leave_the_base_are_refused) {
  for (std::string rel : {"../outside/secret", "a/../../outside/secret",
                          "/etc/x", "a//b", "a/./b", "", "a/"}) {
    std::string error;
    EXPECT_FALSE(write_file_atomic(root_, rel, "x", error)) << rel;
    EXPECT_NE(error.find("not a plain relative path"), std::string::npos)
      << error;
  }
  expect_outside_untouched();
}

// -- workspace_lock -----------------------------------------------------------

TEST_F(safe_file_fixture, a_held_lock_names_its_holder) {
  std::string error;
  auto first = workspace_lock::acquire(root_, "20261201-a", error);
  ASSERT_TRUE(first) << error;
  EXPECT_EQ(read_text(root_ / ".orchestrator/lock"),
            "20261201-a " + std::to_string(::getpid()) + "\n");

  auto second = workspace_lock::acquire(root_, "20261201-b", error);
  EXPECT_FALSE(second);
  EXPECT_EQ(error, "the workspace " + root_.string()
                     + " is in use by run 20261201-a (pid "
                     + std::to_string(::getpid()) + ")");

  first.reset();
  error.clear();
  auto third = workspace_lock::acquire(root_, "20261201-c", error);
  EXPECT_TRUE(third) << error;
}

TEST_F(safe_file_fixture, the_lock_is_never_taken_through_a_link) {
  std::string error;
  fs::create_directory_symlink(outside_, root_ / ".orchestrator");
  EXPECT_FALSE(workspace_lock::acquire(root_, "r1", error));
  EXPECT_NE(error.find(".orchestrator is a symlink"), std::string::npos)
    << error;
  expect_outside_untouched();

  fs::remove(root_ / ".orchestrator");
  fs::create_directories(root_ / ".orchestrator");
  fs::create_symlink(outside_ / "secret", root_ / ".orchestrator/lock");
  error.clear();
  EXPECT_FALSE(workspace_lock::acquire(root_, "r1", error));
  EXPECT_NE(error.find("lock is a symlink"), std::string::npos) << error;
  expect_outside_untouched();

  fs::remove(root_ / ".orchestrator/lock");
  fs::create_hard_link(outside_ / "secret", root_ / ".orchestrator/lock");
  error.clear();
  EXPECT_FALSE(workspace_lock::acquire(root_, "r1", error));
  EXPECT_NE(error.find("hard links"), std::string::npos) << error;
  expect_outside_untouched();
}

TEST_F(safe_file_fixture, the_lock_creates_the_meta_folder) {
  std::string error;
  auto lock = workspace_lock::acquire(root_, "r1", error);
  ASSERT_TRUE(lock) << error;
  EXPECT_TRUE(fs::is_directory(root_ / ".orchestrator"));
}

} // namespace
} // namespace orch
