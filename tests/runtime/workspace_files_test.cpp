// The file API's plain half: listing, reading and the editor's save, with
// traversal attempts, planted symlinks, hostile names, FIFOs, hard links and
// size limits.

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/safe_file.hpp"
#include "runtime/workspace_files.hpp"
#include "support/temp_tree.hpp"

namespace orch {
namespace {

namespace fs = std::filesystem;
using test::read_text;
using test::write_text;

constexpr std::uintmax_t k_limit = 1 << 20;

class workspace_files_test : public test::temp_tree {
protected:
  void SetUp() override {
    temp_tree::SetUp();
    fs::create_directories(root_ / "src" / "deep");
    write_text(root_ / "src" / "a.py", "print(1)\n");
    write_text(root_ / "src" / "deep" / "b.txt", "bee");
    write_text(root_ / "README.md", "# hi\n");
    write_text(outside_ / "secret", "top secret");
    fs::create_directories(outside_ / "dir");
    write_text(outside_ / "dir" / "x", "outside x");
  }

  std::vector<std::string> listed_paths(const list_limits& limits = {}) {
    auto l = list_workspace_files(root_, limits);
    EXPECT_EQ(l.error, file_error::none) << l.reason;
    std::vector<std::string> out;
    for (const auto& f : l.files)
      out.push_back(f.path);
    return out;
  }
};

// -- listing ------------------------------------------------------------------

TEST_F(workspace_files_test, lists_regular_files_recursively_and_sorted) {
  auto l = list_workspace_files(root_);
  ASSERT_EQ(l.error, file_error::none) << l.reason;
  ASSERT_EQ(l.files.size(), 3U);
  EXPECT_EQ(l.files[0].path, "README.md");
  EXPECT_EQ(l.files[1].path, "src/a.py");
  EXPECT_EQ(l.files[1].size, 9U);
  EXPECT_GT(l.files[1].mtime_ms, 1'600'000'000'000);
  EXPECT_EQ(l.files[2].path, "src/deep/b.txt");
  EXPECT_FALSE(l.truncated);
}

TEST_F(workspace_files_test, listing_follows_no_symlink_and_skips_our_files) {
  fs::create_directory_symlink(outside_ / "dir", root_ / "linkdir");
  fs::create_symlink(outside_ / "secret", root_ / "src" / "link.txt");
  ASSERT_EQ(::mkfifo((root_ / "fifo").c_str(), 0600), 0);
  fs::create_directories(root_ / ".orchestrator" / "backups" / "r1");
  write_text(root_ / ".orchestrator" / "backups" / "r1" / "a.py", "old");
  fs::create_directories(root_ / "sub" / ".git");
  write_text(root_ / "sub" / ".git" / "config", "[core]");
  write_text(root_ / ".orch-tmp-1-2-3", "half");
  EXPECT_EQ(listed_paths(), (std::vector<std::string>{"README.md", "src/a.py",
                                                      "src/deep/b.txt"}));
}

TEST_F(workspace_files_test, names_the_api_cannot_address_are_skipped) {
  write_text(root_ / "bad\xff.txt", "x");
  write_text(root_ / "tab\there", "x");
  write_text(root_ / "caf\xC3\xA9.md", "x");
  auto l = list_workspace_files(root_);
  ASSERT_EQ(l.error, file_error::none);
  std::vector<std::string> paths;
  for (const auto& f : l.files)
    paths.push_back(f.path);
  EXPECT_NE(std::find(paths.begin(), paths.end(), "caf\xC3\xA9.md"),
            paths.end());
  EXPECT_EQ(std::find(paths.begin(), paths.end(), "bad\xff.txt"), paths.end());
  ASSERT_EQ(l.skipped.size(), 2U);
  EXPECT_EQ(l.skipped[0], "bad\\xff.txt");
  EXPECT_EQ(l.skipped[1], "tab\\there");
}

TEST_F(workspace_files_test, listing_is_bounded_in_files_and_depth) {
  for (int i = 0; i < 50; ++i)
    write_text(root_ / ("f" + std::to_string(i)), "x");
  list_limits few;
  few.max_files = 10;
  auto l = list_workspace_files(root_, few);
  EXPECT_EQ(l.files.size(), 10U);
  EXPECT_TRUE(l.truncated);
  // 100 nested folders: the walk stops at the depth limit.
  auto p = root_;
  for (int i = 0; i < 100; ++i)
    p /= "d";
  fs::create_directories(p);
  write_text(p / "leaf", "x");
  list_limits shallow;
  shallow.max_depth = 8;
  l = list_workspace_files(root_, shallow);
  EXPECT_TRUE(l.truncated);
  for (const auto& f : l.files)
    EXPECT_NE(f.path.substr(f.path.size() - 4), "leaf");
}

TEST_F(workspace_files_test, a_missing_workspace_is_not_found) {
  auto l = list_workspace_files(base_ / "nope");
  EXPECT_EQ(l.error, file_error::not_found);
  EXPECT_EQ(l.reason.find(base_.string()), std::string::npos) << l.reason;
}

// -- reading ------------------------------------------------------------------

TEST_F(workspace_files_test, reads_a_file_by_its_relative_path) {
  auto r = read_workspace_file(root_, "src/./deep//b.txt", k_limit);
  ASSERT_EQ(r.error, file_error::none) << r.reason;
  EXPECT_EQ(r.path, "src/deep/b.txt");
  EXPECT_EQ(r.content, "bee");
}

TEST_F(workspace_files_test, traversal_and_absolute_paths_are_invalid) {
  for (const char* path :
       {"../outside/secret", "/etc/passwd", "src/../../outside/secret",
        "a/../../x", "~/x", "C:x", "", "src/", ".orchestrator/lock",
        ".git/config", "a\\b", "nul\x01"}) {
    auto r = read_workspace_file(root_, path, k_limit);
    EXPECT_EQ(r.error, file_error::invalid_path) << path << ": " << r.reason;
    EXPECT_TRUE(r.content.empty());
  }
  // `..` that stays inside is fine.
  EXPECT_EQ(read_workspace_file(root_, "src/../README.md", k_limit).content,
            "# hi\n");
}

TEST_F(workspace_files_test, symlinks_anywhere_are_forbidden) {
  fs::create_directory_symlink(outside_ / "dir", root_ / "linkdir");
  fs::create_symlink(outside_ / "secret", root_ / "src" / "link.txt");
  // A link that stays inside is refused too.
  fs::create_symlink("a.py", root_ / "src" / "inner.py");
  for (const char* path : {"linkdir/x", "src/link.txt", "src/inner.py"}) {
    auto r = read_workspace_file(root_, path, k_limit);
    EXPECT_EQ(r.error, file_error::forbidden) << path << ": " << r.reason;
    EXPECT_TRUE(r.content.empty());
    EXPECT_NE(r.reason.find("symlink"), std::string::npos) << r.reason;
  }
}

TEST_F(workspace_files_test, folders_fifos_and_hard_links_are_forbidden) {
  ASSERT_EQ(::mkfifo((root_ / "fifo").c_str(), 0600), 0);
  ASSERT_EQ(::link((outside_ / "secret").c_str(), (root_ / "hard").c_str()), 0);
  // A FIFO is never opened: the read does not block.
  EXPECT_EQ(read_workspace_file(root_, "fifo", k_limit).error,
            file_error::forbidden);
  EXPECT_EQ(read_workspace_file(root_, "src", k_limit).error,
            file_error::forbidden);
  auto r = read_workspace_file(root_, "hard", k_limit);
  EXPECT_EQ(r.error, file_error::forbidden);
  EXPECT_TRUE(r.content.empty());
  EXPECT_EQ(read_workspace_file(root_, "README.md/x", k_limit).error,
            file_error::forbidden);
}

TEST_F(workspace_files_test, missing_files_are_not_found) {
  EXPECT_EQ(read_workspace_file(root_, "nope.txt", k_limit).error,
            file_error::not_found);
  EXPECT_EQ(read_workspace_file(root_, "no/such/dir.txt", k_limit).error,
            file_error::not_found);
}

TEST_F(workspace_files_test, files_over_the_limit_are_too_large) {
  // Sparse: 5 GiB on paper, nothing on disk, and nothing is read.
  {
    int fd = ::open((root_ / "huge.bin").c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, off_t{5} << 30), 0);
    ::close(fd);
  }
  auto r = read_workspace_file(root_, "huge.bin", k_limit);
  EXPECT_EQ(r.error, file_error::too_large);
  EXPECT_TRUE(r.content.empty());
  write_text(root_ / "ten", "0123456789");
  EXPECT_EQ(read_workspace_file(root_, "ten", 9).error, file_error::too_large);
  EXPECT_EQ(read_workspace_file(root_, "ten", 10).content, "0123456789");
}

// -- the editor's save --------------------------------------------------------

TEST_F(workspace_files_test, a_save_replaces_the_file_and_backs_it_up) {
  auto s = write_workspace_file(root_, "src/a.py", "print(2)\n", "edit-1",
                                k_limit);
  ASSERT_EQ(s.error, file_error::none) << s.reason;
  EXPECT_TRUE(s.written);
  EXPECT_EQ(s.size, 9U);
  EXPECT_EQ(s.backup, ".orchestrator/backups/edit-1/src/a.py");
  EXPECT_EQ(read_text(root_ / "src" / "a.py"), "print(2)\n");
  EXPECT_EQ(read_text(root_ / s.backup), "print(1)\n");
  // The same content again: nothing written, no backup.
  s = write_workspace_file(root_, "src/a.py", "print(2)\n", "edit-1", k_limit);
  ASSERT_EQ(s.error, file_error::none) << s.reason;
  EXPECT_FALSE(s.written);
  EXPECT_TRUE(s.backup.empty());
  // A second change in the same backup folder never overwrites the first.
  s = write_workspace_file(root_, "src/a.py", "print(3)\n", "edit-1", k_limit);
  EXPECT_EQ(s.backup, ".orchestrator/backups/edit-1/src/a.py.~1~");
  EXPECT_EQ(read_text(root_ / s.backup), "print(2)\n");
}

TEST_F(workspace_files_test, a_save_creates_new_files_and_folders) {
  auto s = write_workspace_file(root_, "new/dir/c.txt", "sea", "e", k_limit);
  ASSERT_EQ(s.error, file_error::none) << s.reason;
  EXPECT_TRUE(s.backup.empty());
  EXPECT_EQ(read_text(root_ / "new" / "dir" / "c.txt"), "sea");
}

TEST_F(workspace_files_test, a_save_never_writes_outside_or_through_links) {
  fs::create_directory_symlink(outside_ / "dir", root_ / "linkdir");
  fs::create_symlink(outside_ / "secret", root_ / "link.txt");
  for (const char* path : {"../outside/secret", "/tmp/x", "a/../../x"}) {
    auto s = write_workspace_file(root_, path, "pwned", "e", k_limit);
    EXPECT_EQ(s.error, file_error::invalid_path) << path;
  }
  for (const char* path : {"linkdir/x", "linkdir/new", "link.txt"}) {
    auto s = write_workspace_file(root_, path, "pwned", "e", k_limit);
    EXPECT_EQ(s.error, file_error::forbidden) << path << ": " << s.reason;
  }
  EXPECT_EQ(read_text(outside_ / "secret"), "top secret");
  EXPECT_EQ(read_text(outside_ / "dir" / "x"), "outside x");
  EXPECT_FALSE(fs::exists(outside_ / "dir" / "new"));
  EXPECT_TRUE(fs::is_symlink(root_ / "link.txt"));
}

TEST_F(workspace_files_test, a_hard_linked_target_is_replaced_not_written) {
  ASSERT_EQ(::link((outside_ / "secret").c_str(), (root_ / "hard").c_str()), 0);
  auto s = write_workspace_file(root_, "hard", "new", "e", k_limit);
  ASSERT_EQ(s.error, file_error::none) << s.reason;
  EXPECT_EQ(read_text(root_ / "hard"), "new");
  EXPECT_EQ(read_text(outside_ / "secret"), "top secret");
}

TEST_F(workspace_files_test, a_save_is_refused_while_a_run_holds_the_lock) {
  std::string error;
  auto lock = workspace_lock::acquire(root_, "20261201-run", error);
  ASSERT_TRUE(lock) << error;
  auto s = write_workspace_file(root_, "src/a.py", "x", "e", k_limit);
  EXPECT_EQ(s.error, file_error::busy);
  EXPECT_NE(s.reason.find("20261201-run"), std::string::npos) << s.reason;
  EXPECT_EQ(read_text(root_ / "src" / "a.py"), "print(1)\n");
  lock.reset();
  s = write_workspace_file(root_, "src/a.py", "x", "e", k_limit);
  EXPECT_EQ(s.error, file_error::none) << s.reason;
}

TEST_F(workspace_files_test, oversized_saves_and_missing_workspaces_fail) {
  EXPECT_EQ(
    write_workspace_file(root_, "a", std::string(11, 'x'), "e", 10).error,
    file_error::too_large);
  EXPECT_FALSE(fs::exists(root_ / "a"));
  EXPECT_EQ(write_workspace_file(base_ / "nope", "a", "x", "e", 10).error,
            file_error::not_found);
  EXPECT_FALSE(fs::exists(base_ / "nope"));
}

TEST(workspace_content_type, active_content_is_served_as_text) {
  EXPECT_EQ(workspace_content_type("index.html"), "text/plain; charset=utf-8");
  EXPECT_EQ(workspace_content_type("a/logo.SVG"), "text/plain; charset=utf-8");
  EXPECT_EQ(workspace_content_type("app.js"), "text/plain; charset=utf-8");
  EXPECT_EQ(workspace_content_type("Makefile"), "text/plain; charset=utf-8");
  EXPECT_EQ(workspace_content_type("a/b.png"), "image/png");
  EXPECT_EQ(workspace_content_type("x.tar"), "application/octet-stream");
  EXPECT_EQ(workspace_content_type(".png"), "text/plain; charset=utf-8");
}

} // namespace
} // namespace orch
