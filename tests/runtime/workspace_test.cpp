// Workspace paths, snapshots, code blocks in agent text, and backed-up
// atomic writes.

#include "runtime/workspace.hpp"

#include <gtest/gtest.h>

#include "support/temp_tree.hpp"

#include <cstdlib>
#include <fstream>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace orch {
namespace {

using test::read_text;
using test::write_text;

// A temp folder holding the workspace `ws/` next to a sentinel `outside/`
// that every refused write must leave empty.
class workspace_fixture : public test::temp_tree {
protected:
  // Names directly in the temp folder: only ws and outside may be there.
  std::set<std::string> base_entries() const {
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator{base_})
      out.insert(e.path().filename().string());
    return out;
  }

  void expect_nothing_outside() const {
    EXPECT_TRUE(fs::is_empty(outside_)) << "something was written outside";
    EXPECT_EQ(base_entries(), (std::set<std::string>{"outside", "ws"}));
  }
};

// -- path corpus --------------------------------------------------------------

// Printable form of a path for test names: bytes outside ASCII graphics
// are escaped, so NULs and control characters never reach ctest names.
std::string escaped(const std::string& s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s.substr(0, 48)) {
    auto u = static_cast<unsigned char>(c);
    if (u > 0x20 && u < 0x7F && c != '\\') {
      out += c;
    } else {
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 0xF];
    }
  }
  return s.size() > 48 ? out + "..." : out;
}

struct bad_path {
  std::string path;
  std::string reason_part;

  friend void PrintTo(const bad_path& b, std::ostream* os) {
    *os << escaped(b.path);
  }
};

class refused_path_test : public workspace_fixture,
                          public ::testing::WithParamInterface<bad_path> {};

TEST_P(refused_path_test, is_refused_with_a_reason_and_nothing_is_written) {
  const bad_path& bad = GetParam();
  path_check check = check_workspace_path(root_, bad.path);
  EXPECT_FALSE(check.ok);
  EXPECT_TRUE(check.normalized.empty());
  EXPECT_NE(check.reason.find(bad.reason_part), std::string::npos)
    << "reason was: " << check.reason;

  workspace ws{root_, "run1"};
  write_outcome w = ws.write(bad.path, "payload\n");
  EXPECT_FALSE(w.written);
  EXPECT_FALSE(w.reason.empty());
  EXPECT_TRUE(snapshot_files(root_).empty());
  expect_nothing_outside();
}

std::string repeat(char c, std::size_t n) {
  return std::string(n, c);
}

std::string long_path() {
  std::string p;
  while (p.size() <= 4200)
    p += repeat('d', 200) + "/";
  return p + "x.py";
}

INSTANTIATE_TEST_SUITE_P(
  corpus, refused_path_test,
  ::testing::Values(
    bad_path{"../x", "escapes"}, bad_path{"..", "'..'"},
    bad_path{"a/../../x", "escapes"}, bad_path{"/etc/x", "absolute"},
    bad_path{"~", "'~'"}, bad_path{"~/x", "'~'"},
    bad_path{"~root/.bashrc", "'~'"}, bad_path{"a\\b.py", "backslash"},
    bad_path{"..\\x", "backslash"}, bad_path{std::string("a\0b.py", 6), "NUL"},
    bad_path{"a\nb.py", "control"}, bad_path{"a\tb.py", "control"},
    bad_path{"a\x7f.py", "control"}, bad_path{"\x1b[31mx.py", "control"},
    bad_path{repeat('n', 256) + ".py", "255"}, bad_path{long_path(), "4096"},
    bad_path{".orchestrator/x", ".orchestrator"},
    bad_path{".orchestrator/backups/run1/a.py", ".orchestrator"},
    bad_path{".ORCHESTRATOR/x", ".orchestrator"},
    bad_path{".git/hooks/pre-commit", ".git"},
    bad_path{"sub/.Git/config", ".git"}, bad_path{"C:/x", "drive"},
    bad_path{"c:x.py", "drive"}, bad_path{"", "empty"}, bad_path{".", "'.'"},
    bad_path{"./", "'/'"}, bad_path{"a/", "'/'"}, bad_path{"a/..", "'..'"},
    bad_path{"a/.", "'.'"},
    // Unicode look-alikes of '/', '\', '.', ':' and invisible characters.
    bad_path{"a\xE2\x88\x95"
             "b.py",
             "U+2215"},
    bad_path{"a\xE2\x81\x84"
             "b.py",
             "U+2044"},
    bad_path{"..\xEF\xBC\x8F"
             "x.py",
             "U+FF0F"},
    bad_path{"a\xE2\xA7\xB8"
             "b.py",
             "U+29F8"},
    bad_path{"\xEF\xBC\x8E\xEF\xBC\x8E/x.py", "U+FF0E"},
    bad_path{"\xE2\x80\xA4\xE2\x80\xA4/x.py", "U+2024"},
    bad_path{"a\xEF\xB9\x92py", "U+FE52"},
    bad_path{"a\xE3\x80\x82py", "U+3002"},
    bad_path{"a\xE2\x88\x96"
             "b.py",
             "U+2216"},
    bad_path{"a\xEF\xBC\x9A"
             "b.py",
             "U+FF1A"},
    bad_path{"\xE2\x80\xAEyp.exe", "U+202E"},
    bad_path{"a\xE2\x81\xA6"
             "b.py",
             "U+2066"},
    bad_path{"a\xE2\x80\x8B"
             "b.py",
             "U+200B"},
    bad_path{"a\xEF\xBB\xBF"
             "b.py",
             "U+FEFF"},
    bad_path{"a\xC2\xA0"
             "b.py",
             "U+00A0"},
    bad_path{"a\xC2\x85"
             "b.py",
             "U+0085"},
    bad_path{"\xC0\xAF"
             "x.py",
             "UTF-8"},
    bad_path{"a\xFF.py", "UTF-8"}, bad_path{"a\xE2\x88", "UTF-8"},
    bad_path{"a\xED\xA0\x80.py", "UTF-8"},
    bad_path{"a\xF4\x90\x80\x80.py", "UTF-8"},
    // Dots and colons of other scripts (issue 10, 9c).
    bad_path{"\xD9\xA0\xD9\xA0/x.py", "U+0660"},
    bad_path{"a\xDB\xB0py", "U+06F0"},
    bad_path{"\xEA\x93\xB8\xEA\x93\xB8/x.py", "U+A4F8"},
    bad_path{"a\xEA\x93\xB9py", "U+A4F9"},
    bad_path{"a\xEA\x93\xBApy", "U+A4FA"},
    bad_path{"a\xEA\x93\xBDpy", "U+A4FD"}, bad_path{"C\xD6\x89x", "U+0589"},
    bad_path{"C\xD7\x83x", "U+05C3"}, bad_path{"a\xDC\x81py", "U+0701"},
    bad_path{"a\xDC\x83py", "U+0703"},
    bad_path{"\xE2\x80\xA7\xE2\x80\xA7/x.py", "U+2027"},
    bad_path{"a\xEA\x98\x8Epy", "U+A60E"},
    bad_path{"a\xE1\x8D\xA2py", "U+1362"},
    bad_path{"a\xE1\x8D\xA1py", "U+1361"}, bad_path{"a\xDB\x94py", "U+06D4"},
    bad_path{"C\xE2\x88\xB6x", "U+2236"}, bad_path{"C\xEA\x9E\x89x", "U+A789"},
    bad_path{"a\xE1\x9B\xABpy", "U+16EB"}));

TEST_F(workspace_fixture, absolute_path_into_the_sentinel_is_refused) {
  std::string target = (outside_ / "x.py").string();
  workspace ws{root_, "run1"};
  write_outcome w = ws.write(target, "x");
  EXPECT_FALSE(w.written);
  EXPECT_NE(w.reason.find("absolute"), std::string::npos);
  EXPECT_FALSE(fs::exists(outside_ / "x.py"));
  expect_nothing_outside();
}

struct good_path {
  std::string path;
  std::string normalized;

  friend void PrintTo(const good_path& g, std::ostream* os) {
    *os << escaped(g.path);
  }
};

class accepted_path_test : public workspace_fixture,
                           public ::testing::WithParamInterface<good_path> {};

TEST_P(accepted_path_test, is_normalised_and_written_inside) {
  const good_path& good = GetParam();
  path_check check = check_workspace_path(root_, good.path);
  ASSERT_TRUE(check.ok) << check.reason;
  EXPECT_EQ(check.normalized, good.normalized);
  EXPECT_TRUE(check.reason.empty());

  workspace ws{root_, "run1"};
  write_outcome w = ws.write(good.path, "ok\n");
  EXPECT_TRUE(w.written) << w.reason;
  EXPECT_EQ(w.path, good.normalized);
  EXPECT_EQ(read_text(root_ / good.normalized), "ok\n");
  expect_nothing_outside();
}

INSTANTIATE_TEST_SUITE_P(
  corpus, accepted_path_test,
  ::testing::Values(
    good_path{"a/../b", "b"}, good_path{"a/./b", "a/b"},
    good_path{"./a.py", "a.py"}, good_path{"a//b.py", "a/b.py"},
    good_path{"api/models.py", "api/models.py"}, good_path{"a/~/b", "a/~/b"},
    good_path{"x..y", "x..y"}, good_path{"...", "..."},
    good_path{".env", ".env"}, good_path{".github/ci.yml", ".github/ci.yml"},
    good_path{"my file.txt", "my file.txt"},
    good_path{"docs/caf\xC3\xA9.md", "docs/caf\xC3\xA9.md"},
    good_path{"\xE6\x97\xA5\xE6\x9C\xAC/a.txt",
              "\xE6\x97\xA5\xE6\x9C\xAC/a.txt"},
    // The middle dot is part of words and stays allowed.
    good_path{"col\xC2\xB7lecci\xC3\xB3.md", "col\xC2\xB7lecci\xC3\xB3.md"},
    good_path{repeat('n', 252) + ".py", repeat('n', 252) + ".py"}));

TEST(normalize_workspace_path, gives_the_same_verdict_without_a_root) {
  EXPECT_EQ(normalize_workspace_path("a/./b/../c.py").normalized, "a/c.py");
  EXPECT_FALSE(normalize_workspace_path("../c.py").ok);
  EXPECT_FALSE(normalize_workspace_path(".orchestrator/m.json").ok);
}

// -- symlinks -----------------------------------------------------------------

TEST_F(workspace_fixture, symlinked_folder_pointing_outside_is_refused) {
  fs::create_directory_symlink(outside_, root_ / "link");
  workspace ws{root_, "run1"};

  path_check check = check_workspace_path(root_, "link/x.py");
  EXPECT_FALSE(check.ok);
  EXPECT_EQ(check.reason, "link is a symlink");

  write_outcome w = ws.write("link/x.py", "evil");
  EXPECT_FALSE(w.written);
  EXPECT_EQ(w.reason, "link is a symlink");
  write_outcome deep = ws.write("link/sub/dir/x.py", "evil");
  EXPECT_FALSE(deep.written);
  expect_nothing_outside();
}

TEST_F(workspace_fixture, relative_symlink_climbing_out_is_refused) {
  fs::create_directories(root_ / "a");
  fs::create_directory_symlink("../../outside", root_ / "a" / "up");
  workspace ws{root_, "run1"};
  EXPECT_FALSE(check_workspace_path(root_, "a/up/x.py").ok);
  EXPECT_FALSE(ws.write("a/up/x.py", "evil").written);
  expect_nothing_outside();
}

TEST_F(workspace_fixture, symlink_as_the_target_file_is_refused) {
  fs::create_symlink(outside_ / "target", root_ / "f.py");
  workspace ws{root_, "run1"};

  path_check check = check_workspace_path(root_, "f.py");
  EXPECT_FALSE(check.ok);
  EXPECT_NE(check.reason.find("symlink"), std::string::npos);

  write_outcome w = ws.write("f.py", "evil");
  EXPECT_FALSE(w.written);
  EXPECT_NE(w.reason.find("symlink"), std::string::npos) << w.reason;
  EXPECT_FALSE(fs::exists(outside_ / "target"));
  expect_nothing_outside();
}

TEST_F(workspace_fixture, symlink_to_an_existing_outside_file_is_left_alone) {
  fs::create_directories(base_ / "secret");
  write_text(base_ / "secret" / "key", "original");
  fs::create_symlink(base_ / "secret" / "key", root_ / "key");
  workspace ws{root_, "run1"};
  EXPECT_FALSE(ws.write("key", "evil").written);
  EXPECT_EQ(read_text(base_ / "secret" / "key"), "original");
  EXPECT_TRUE(fs::is_symlink(fs::symlink_status(root_ / "key")));
}

// A link that stays inside is refused too: following it would let the
// path text say one place and the write land in another.
TEST_F(workspace_fixture, symlinked_folder_inside_the_workspace_is_refused) {
  fs::create_directories(root_ / "real");
  fs::create_directory_symlink("real", root_ / "alias");
  workspace ws{root_, "run1"};
  EXPECT_EQ(check_workspace_path(root_, "alias/x.py").reason,
            "alias is a symlink");
  write_outcome w = ws.write("alias/x.py", "inside\n");
  EXPECT_FALSE(w.written);
  EXPECT_EQ(w.reason, "alias is a symlink");
  EXPECT_FALSE(fs::exists(root_ / "real" / "x.py"));
  expect_nothing_outside();
}

TEST_F(workspace_fixture, a_link_to_git_cannot_carry_a_write_into_it) {
  fs::create_directories(root_ / ".git");
  write_text(root_ / ".git" / "config", "[core]\n");
  fs::create_directory_symlink(".git", root_ / "g");
  fs::create_directories(root_ / "sub");
  fs::create_directory_symlink("../.git", root_ / "sub" / "up");
  workspace ws{root_, "run1"};

  EXPECT_FALSE(check_workspace_path(root_, "g/config").ok);
  write_outcome w = ws.write("g/config", "[core]\n\tfsmonitor = evil\n");
  EXPECT_FALSE(w.written);
  EXPECT_EQ(w.reason, "g is a symlink");
  write_outcome hook = ws.write("g/hooks/pre-commit", "evil");
  EXPECT_FALSE(hook.written);
  write_outcome deep = ws.write("sub/up/config", "evil");
  EXPECT_FALSE(deep.written);
  EXPECT_EQ(deep.reason, "sub/up is a symlink");

  EXPECT_EQ(read_text(root_ / ".git" / "config"), "[core]\n");
  EXPECT_FALSE(fs::exists(root_ / ".git" / "hooks"));
  EXPECT_FALSE(fs::exists(root_ / ".orchestrator" / "backups"));
}

TEST_F(workspace_fixture, restore_cannot_write_through_a_planted_link) {
  fs::create_directories(root_ / ".git");
  write_text(root_ / ".git" / "config", "[core]\n");
  workspace ws{root_, "run1"};
  // A backup of `g/config` exists (here made by hand, as an agent could).
  fs::create_directories(root_ / ".orchestrator/backups/run1/g");
  write_text(root_ / ".orchestrator/backups/run1/g/config", "evil");
  fs::create_directory_symlink(".git", root_ / "g");

  std::string error;
  EXPECT_FALSE(ws.restore(".orchestrator/backups/run1/g/config", error));
  EXPECT_EQ(error, "g is a symlink");
  EXPECT_EQ(read_text(root_ / ".git" / "config"), "[core]\n");

  // Nor through a link inside the backup folder.
  fs::create_directories(root_ / ".orchestrator/backups/run2");
  fs::create_directory_symlink(outside_,
                               root_ / ".orchestrator/backups/run2/d");
  write_text(outside_ / "x.py", "outside");
  error.clear();
  EXPECT_FALSE(ws.restore(".orchestrator/backups/run2/d/x.py", error));
  EXPECT_NE(error.find("is a symlink"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(root_ / "d"));
}

TEST_F(workspace_fixture, hard_linked_outside_file_is_replaced_not_changed) {
  write_text(outside_ / "secret", "original");
  std::error_code ec;
  fs::create_hard_link(outside_ / "secret", root_ / "h.txt", ec);
  ASSERT_FALSE(ec) << ec.message();
  workspace ws{root_, "run1"};
  write_outcome w = ws.write("h.txt", "new");
  EXPECT_TRUE(w.written) << w.reason;
  EXPECT_EQ(read_text(root_ / "h.txt"), "new");
  EXPECT_EQ(read_text(outside_ / "secret"), "original");
}

TEST_F(workspace_fixture, meta_folder_symlinked_outside_blocks_backups) {
  write_text(root_ / "a.py", "old");
  fs::create_directory_symlink(outside_, root_ / ".orchestrator");
  workspace ws{root_, "run1"};
  std::string error;
  EXPECT_FALSE(ws.ensure(error));
  EXPECT_FALSE(error.empty());

  write_outcome w = ws.write("a.py", "new");
  EXPECT_FALSE(w.written);
  EXPECT_NE(w.reason.find("back up"), std::string::npos) << w.reason;
  EXPECT_EQ(read_text(root_ / "a.py"), "old");
  EXPECT_TRUE(fs::is_empty(outside_));
}

TEST_F(workspace_fixture, folder_fifo_and_file_parent_targets_are_refused) {
  fs::create_directories(root_ / "dir.py");
  ASSERT_EQ(::mkfifo((root_ / "pipe.py").c_str(), 0600), 0);
  write_text(root_ / "file.txt", "x");
  workspace ws{root_, "run1"};

  EXPECT_FALSE(check_workspace_path(root_, "dir.py").ok);
  EXPECT_FALSE(ws.write("dir.py", "x").written);
  EXPECT_FALSE(check_workspace_path(root_, "pipe.py").ok);
  EXPECT_FALSE(ws.write("pipe.py", "x").written);
  EXPECT_FALSE(check_workspace_path(root_, "file.txt/x.py").ok);
  EXPECT_FALSE(ws.write("file.txt/x.py", "x").written);
  EXPECT_EQ(read_text(root_ / "file.txt"), "x");
}

// -- hashing and snapshots ----------------------------------------------------

TEST(sha256_hex, matches_the_standard_test_vectors) {
  EXPECT_EQ(sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(
    sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_F(workspace_fixture, snapshot_detects_added_and_changed_files) {
  write_text(root_ / "same.py", "unchanged");
  write_text(root_ / "edit.py", "abc");
  fs::create_directories(root_ / "pkg");
  write_text(root_ / "pkg" / "old.py", "x");
  file_snapshot before = snapshot_files(root_);
  EXPECT_EQ(before.size(), 3u);

  write_text(root_ / "edit.py", "abd"); // same size, other content
  write_text(root_ / "pkg" / "new.py", "n");
  fs::remove(root_ / "pkg" / "old.py");
  file_snapshot after = snapshot_files(root_);

  EXPECT_EQ(changed_files(before, after),
            (std::vector<std::string>{"edit.py", "pkg/new.py"}));
  EXPECT_EQ(removed_files(before, after),
            (std::vector<std::string>{"pkg/old.py"}));
  EXPECT_EQ(after.at("same.py").hash, before.at("same.py").hash);
  EXPECT_EQ(after.at("edit.py").hash.substr(0, 2), "3:");
}

TEST_F(workspace_fixture, snapshot_skips_meta_git_symlinks_and_temp_files) {
  workspace ws{root_, "run1"};
  std::string error;
  ASSERT_TRUE(ws.ensure(error)) << error;
  write_text(root_ / ".orchestrator" / "manifest.json", "{}");
  fs::create_directories(root_ / ".git");
  write_text(root_ / ".git" / "HEAD", "ref");
  write_text(outside_ / "o.txt", "outside");
  fs::create_directory_symlink(outside_, root_ / "link");
  fs::create_symlink(outside_ / "o.txt", root_ / "o.txt");
  write_text(root_ / ".orch-tmp-1-2", "partial");
  write_text(root_ / "real.py", "r");

  file_snapshot snap = snapshot_files(root_);
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap.begin()->first, "real.py");
}

TEST_F(workspace_fixture, snapshot_keeps_names_with_any_byte) {
  const std::vector<std::string> names{"\xFF\xFE.bin", "t\tab", "n\nl", "a\\b",
                                       "\xC0\xAF"};
  for (const auto& n : names)
    write_text(root_ / n, n);
  file_snapshot snap = snapshot_files(root_);
  ASSERT_EQ(snap.size(), names.size());
  for (const auto& n : names)
    EXPECT_EQ(snap.count(n), 1u) << escaped(n);
  EXPECT_EQ(snap.at("t\tab").hash,
            "4:" + sha256_hex("t\tab")); // size and hash of the content
}

TEST_F(workspace_fixture, a_listing_leaves_out_git_in_any_case_and_merges) {
  // A case-folding file system shows `.GIT/` as a folder the snapshot walks;
  // a worktree has a `.git` file.
  fs::create_directories(root_ / ".GIT" / "objects");
  write_text(root_ / ".GIT" / "objects" / "x", "blob");
  fs::create_directories(root_ / "sub");
  fs::create_directories(root_ / ".orchestrator");
  write_text(root_ / "sub" / ".git", "gitdir: elsewhere");
  write_text(root_ / "sub" / "a.py", "a");
  write_text(root_ / "z.py", "z");
  write_text(root_ / ".orchestrator" / "manifest.json", "{}");
  auto snap = snapshot_files(root_);
  // Files written since the snapshot come in sorted, once.
  EXPECT_EQ(workspace_listing(snap, {"new/b.py", "z.py", "m.py", "m.py"}),
            (std::vector<std::string>{"m.py", "new/b.py", "sub/a.py", "z.py"}));
  // At most `max`: the first ones in byte order.
  EXPECT_EQ(workspace_listing(snap, {"m.py"}, 2),
            (std::vector<std::string>{"m.py", "sub/a.py"}));
  EXPECT_TRUE(workspace_listing(file_snapshot{}).empty());
}

TEST(snapshot_files, of_a_missing_root_is_empty) {
  EXPECT_TRUE(snapshot_files("/nonexistent/orch/ws").empty());
}

// -- writes and backups -------------------------------------------------------

TEST_F(workspace_fixture, ensure_creates_root_and_meta_folder) {
  workspace ws{root_ / "deep" / "run", "run1"};
  std::string error;
  ASSERT_TRUE(ws.ensure(error)) << error;
  EXPECT_TRUE(fs::is_directory(root_ / "deep" / "run" / ".orchestrator"));
  EXPECT_TRUE(ws.ensure(error)) << error;
}

TEST_F(workspace_fixture, ensure_refuses_a_meta_dir_that_is_a_file_or_link) {
  write_text(root_ / ".orchestrator", "x");
  workspace ws{root_, "run1"};
  std::string error;
  EXPECT_FALSE(ws.ensure(error));
  EXPECT_NE(error.find("not a folder"), std::string::npos) << error;
  fs::remove(root_ / ".orchestrator");
  fs::create_directory_symlink(outside_, root_ / ".orchestrator");
  error.clear();
  EXPECT_FALSE(ws.ensure(error));
  EXPECT_NE(error.find("is a symlink"), std::string::npos) << error;
  EXPECT_TRUE(fs::is_empty(outside_));
}

TEST_F(workspace_fixture, write_creates_parents_and_leaves_no_temp_files) {
  workspace ws{root_, "run1"};
  write_outcome w = ws.write("a/b/c/d.py", "print(1)\n");
  EXPECT_TRUE(w.written) << w.reason;
  EXPECT_TRUE(w.backup.empty());
  EXPECT_EQ(read_text(root_ / "a/b/c/d.py"), "print(1)\n");
  std::vector<std::string> names;
  for (const auto& e : fs::recursive_directory_iterator{root_})
    names.push_back(e.path().filename().string());
  for (const auto& n : names)
    EXPECT_EQ(n.find(".orch-tmp-"), std::string::npos) << n;
}

TEST_F(workspace_fixture, identical_content_is_left_unchanged) {
  workspace ws{root_, "run1"};
  ASSERT_TRUE(ws.write("a.py", "same").written);
  write_outcome again = ws.write("a.py", "same");
  EXPECT_FALSE(again.written);
  EXPECT_EQ(again.reason, "unchanged");
  EXPECT_TRUE(again.backup.empty());
  EXPECT_FALSE(fs::exists(root_ / ".orchestrator" / "backups"));
}

TEST_F(workspace_fixture, overwrites_are_backed_up_without_losing_any) {
  workspace ws{root_, "run1"};
  ASSERT_TRUE(ws.write("pkg/a.py", "v1").written);
  write_outcome second = ws.write("pkg/a.py", "v2");
  ASSERT_TRUE(second.written) << second.reason;
  EXPECT_EQ(second.backup, ".orchestrator/backups/run1/pkg/a.py");
  write_outcome third = ws.write("pkg/a.py", "v3");
  ASSERT_TRUE(third.written) << third.reason;
  EXPECT_EQ(third.backup, ".orchestrator/backups/run1/pkg/a.py.~1~");

  EXPECT_EQ(read_text(root_ / second.backup), "v1");
  EXPECT_EQ(read_text(root_ / third.backup), "v2");
  EXPECT_EQ(read_text(root_ / "pkg/a.py"), "v3");
}

TEST_F(workspace_fixture, restore_puts_a_backup_back_and_keeps_the_current) {
  workspace ws{root_, "run1"};
  ASSERT_TRUE(ws.write("a.py", "original").written);
  write_outcome w = ws.write("a.py", "agent");
  ASSERT_TRUE(w.written);

  std::string error;
  ASSERT_TRUE(ws.restore(w.backup, error)) << error;
  EXPECT_EQ(read_text(root_ / "a.py"), "original");
  // The replaced content became a backup of its own.
  EXPECT_EQ(read_text(root_ / ".orchestrator/backups/run1/a.py.~1~"), "agent");
  // Restoring again is a no-op, not an error.
  EXPECT_TRUE(ws.restore(w.backup, error)) << error;
}

TEST_F(workspace_fixture, preserve_existing_saves_every_file_but_meta_and_git) {
  workspace ws{root_, "run1"};
  ASSERT_TRUE(ws.write("src/a.py", "a").written);
  ASSERT_TRUE(ws.write("b.txt", "bb").written);
  fs::create_directories(root_ / ".git");
  std::ofstream{root_ / ".git" / "HEAD"} << "ref";
  auto rep = ws.preserve_existing(1 << 20);
  EXPECT_TRUE(rep.error.empty()) << rep.error;
  EXPECT_EQ(rep.files, 2u);
  EXPECT_EQ(rep.bytes, 3u);
  EXPECT_EQ(read_text(root_ / ".orchestrator/backups/run1/src/a.py"), "a");
  EXPECT_EQ(read_text(root_ / ".orchestrator/backups/run1/b.txt"), "bb");
  EXPECT_FALSE(fs::exists(root_ / ".orchestrator/backups/run1/.git"));
  // The saved copy is what restore puts back after an in-place edit.
  std::ofstream{root_ / "b.txt"} << "edited by an agent";
  std::string error;
  ASSERT_TRUE(ws.restore(".orchestrator/backups/run1/b.txt", error)) << error;
  EXPECT_EQ(read_text(root_ / "b.txt"), "bb");
}

TEST_F(workspace_fixture, preserve_existing_over_the_limit_saves_nothing) {
  workspace ws{root_, "run1"};
  ASSERT_TRUE(ws.write("big.bin", std::string(100, 'x')).written);
  auto rep = ws.preserve_existing(99);
  EXPECT_EQ(rep.files, 0u);
  EXPECT_NE(rep.error.find("100 bytes"), std::string::npos) << rep.error;
  EXPECT_FALSE(fs::exists(root_ / ".orchestrator/backups/run1/big.bin"));
}

// The pre-run copy is of the user's files: names our agent-path rules would
// refuse and symlinks are saved as they are.
TEST_F(workspace_fixture, preserve_existing_saves_odd_names_and_links_exactly) {
  const std::vector<std::string> names{"a\\b.txt",
                                       "~x",
                                       "nb\xC2\xA0sp.txt",
                                       "t\tab.txt",
                                       "\xFF.bin",
                                       "sub\xE2\x80\xAE"
                                       "dir/n\nl.txt"};
  fs::create_directories(root_
                         / "sub\xE2\x80\xAE"
                           "dir");
  for (const auto& n : names)
    write_text(root_ / n, "content of " + n);
  ASSERT_EQ(::mkfifo((root_ / "fifo").c_str(), 0600), 0);
  fs::create_symlink("../outside/target", root_ / "ln");
  fs::create_directory_symlink(outside_, root_ / "dirln");
  write_text(outside_ / "inner.txt", "must not be copied");
  ASSERT_EQ(::chmod((root_ / "t\tab.txt").c_str(), 0750), 0);

  workspace ws{root_, "run1"};
  auto rep = ws.preserve_existing(1 << 20);
  EXPECT_TRUE(rep.error.empty()) << rep.error;
  EXPECT_EQ(rep.files, names.size() + 2);
  EXPECT_EQ(rep.skipped, (std::vector<std::string>{"fifo (a FIFO)"}));
  fs::path saved = root_ / ".orchestrator/backups/run1";
  for (const auto& n : names)
    EXPECT_EQ(read_text(saved / n), "content of " + n) << escaped(n);
  EXPECT_EQ(fs::status(saved / "t\tab.txt").permissions() & fs::perms::all,
            fs::perms(0750));
  // Links are saved as links with the same target, never followed.
  ASSERT_TRUE(fs::is_symlink(fs::symlink_status(saved / "ln")));
  EXPECT_EQ(fs::read_symlink(saved / "ln"), "../outside/target");
  ASSERT_TRUE(fs::is_symlink(fs::symlink_status(saved / "dirln")));
  EXPECT_EQ(fs::read_symlink(saved / "dirln"), outside_);
  EXPECT_FALSE(fs::exists(saved / "fifo"));
  EXPECT_EQ(base_entries(), (std::set<std::string>{"outside", "ws"}));
}

TEST_F(workspace_fixture, preserve_existing_names_what_it_could_not_save) {
  fs::create_directories(root_ / "d");
  write_text(root_ / "d" / "\xFF\tx", "data");
  write_text(root_ / "ok.txt", "ok");
  // A file where the backup needs the folder `d`: that backup must fail.
  fs::create_directories(root_ / ".orchestrator/backups/run1");
  write_text(root_ / ".orchestrator/backups/run1/d", "in the way");

  workspace ws{root_, "run1"};
  auto rep = ws.preserve_existing(1 << 20);
  EXPECT_EQ(rep.files, 1u);
  EXPECT_NE(rep.error.find("d/\\xff\\tx ("), std::string::npos) << rep.error;
  EXPECT_NE(rep.error.find("not a folder"), std::string::npos) << rep.error;
  EXPECT_EQ(rep.error.find('\t'), std::string::npos) << rep.error;
  EXPECT_EQ(read_text(root_ / ".orchestrator/backups/run1/ok.txt"), "ok");
}

TEST_F(workspace_fixture, preserve_existing_refuses_a_linked_meta_folder) {
  write_text(root_ / "a.txt", "a");
  fs::create_directory_symlink(outside_, root_ / ".orchestrator");
  workspace ws{root_, "run1"};
  auto rep = ws.preserve_existing(1 << 20);
  EXPECT_EQ(rep.files, 0u);
  EXPECT_NE(rep.error.find(".orchestrator is a symlink"), std::string::npos)
    << rep.error;
  EXPECT_TRUE(fs::is_empty(outside_));
}

TEST_F(workspace_fixture, preserve_existing_of_a_missing_workspace_is_empty) {
  workspace ws{root_ / "new", "run1"};
  auto rep = ws.preserve_existing(1 << 20);
  EXPECT_EQ(rep.files, 0u);
  EXPECT_TRUE(rep.error.empty()) << rep.error;
}

TEST_F(workspace_fixture, restore_recreates_a_deleted_file_with_its_mode) {
  workspace ws{root_, "run1"};
  ASSERT_TRUE(ws.write("run.sh", "#!/bin/sh\n").written);
  fs::permissions(root_ / "run.sh", fs::perms(0755));
  write_outcome w = ws.write("run.sh", "#!/bin/sh\necho\n");
  ASSERT_TRUE(w.written);
  EXPECT_EQ(fs::status(root_ / "run.sh").permissions() & fs::perms::all,
            fs::perms(0755));
  fs::remove(root_ / "run.sh");
  std::string error;
  ASSERT_TRUE(ws.restore(w.backup, error)) << error;
  EXPECT_EQ(read_text(root_ / "run.sh"), "#!/bin/sh\n");
  EXPECT_EQ(fs::status(root_ / "run.sh").permissions() & fs::perms::all,
            fs::perms(0755));
}

TEST_F(workspace_fixture, names_ending_like_a_numbered_backup_round_trip) {
  workspace ws{root_, "run1"};
  ASSERT_TRUE(ws.write("x.~1~", "v1").written);
  write_outcome w = ws.write("x.~1~", "v2");
  ASSERT_TRUE(w.written);
  EXPECT_EQ(w.backup, ".orchestrator/backups/run1/x.~1~.~1~");
  std::string error;
  ASSERT_TRUE(ws.restore(w.backup, error)) << error;
  EXPECT_EQ(read_text(root_ / "x.~1~"), "v1");
}

TEST_F(workspace_fixture, restore_refuses_paths_that_are_not_backups) {
  workspace ws{root_, "run1"};
  ASSERT_TRUE(ws.write("a.py", "a").written);
  std::string error;
  EXPECT_FALSE(ws.restore("a.py", error));
  EXPECT_FALSE(error.empty());
  error.clear();
  EXPECT_FALSE(ws.restore(".orchestrator/backups/run1/../../../x", error));
  EXPECT_FALSE(error.empty());
  error.clear();
  EXPECT_FALSE(ws.restore(".orchestrator/backups/run1/missing.py", error));
  EXPECT_NE(error.find("no such backup"), std::string::npos) << error;
  EXPECT_EQ(read_text(root_ / "a.py"), "a");
  expect_nothing_outside();
}

TEST_F(workspace_fixture, backup_id_cannot_leave_the_backups_folder) {
  workspace ws{root_, "../../../outside"};
  ASSERT_TRUE(ws.write("a.py", "1").written);
  write_outcome w = ws.write("a.py", "2");
  ASSERT_TRUE(w.written) << w.reason;
  EXPECT_EQ(w.backup.rfind(".orchestrator/backups/", 0), 0u) << w.backup;
  EXPECT_TRUE(fs::exists(root_ / w.backup));
  expect_nothing_outside();
}

// -- code blocks --------------------------------------------------------------

struct block_case {
  std::string name;
  std::string text;
  std::string path;
  std::string content;

  friend void PrintTo(const block_case& b, std::ostream* os) {
    *os << b.name;
  }
};

class code_block_style_test : public ::testing::TestWithParam<block_case> {};

TEST_P(code_block_style_test, names_its_file) {
  const block_case& c = GetParam();
  auto blocks = extract_code_blocks(c.text);
  ASSERT_EQ(blocks.size(), 1u) << c.text;
  EXPECT_EQ(blocks[0].path, c.path);
  EXPECT_EQ(blocks[0].content, c.content);
}

const std::string body = "x = 1\n";

INSTANTIATE_TEST_SUITE_P(
  styles, code_block_style_test,
  ::testing::Values(
    block_case{"title", "```python title=api/models.py\nx = 1\n```\n",
               "api/models.py", body},
    block_case{"title_double_quoted",
               "```python title=\"api/models.py\"\nx = 1\n```\n",
               "api/models.py", body},
    block_case{"title_single_quoted",
               "```python title='my dir/m.py'\nx = 1\n```\n", "my dir/m.py",
               body},
    block_case{"file", "```python file=api/models.py\nx = 1\n```",
               "api/models.py", body},
    block_case{"path", "```py path=api/models.py\nx = 1\n```", "api/models.py",
               body},
    block_case{"filename", "```python filename=\"a.py\"\nx = 1\n```", "a.py",
               body},
    block_case{"braces", "```python {title=\"a/b.py\"}\nx = 1\n```", "a/b.py",
               body},
    block_case{"bare_path", "```api/models.py\nx = 1\n```", "api/models.py",
               body},
    block_case{"lang_colon_path", "```python:api/models.py\nx = 1\n```",
               "api/models.py", body},
    block_case{"hash_file_line", "```python\n# File: api/models.py\nx = 1\n```",
               "api/models.py", body},
    block_case{"slash_file_line", "```js\n// File: src/app.js\nx = 1\n```",
               "src/app.js", body},
    block_case{"html_file_line",
               "```html\n<!-- File: web/index.html -->\nx = 1\n```",
               "web/index.html", body},
    block_case{"c_comment_file_line",
               "```c\n/* File: src/main.c */\nx = 1\n```", "src/main.c", body},
    block_case{"sql_file_line", "```sql\n-- File: db/init.sql\nx = 1\n```",
               "db/init.sql", body},
    block_case{"heading", "### api/models.py\n```python\nx = 1\n```",
               "api/models.py", body},
    block_case{"bold", "**api/models.py**\n```python\nx = 1\n```",
               "api/models.py", body},
    block_case{"backticks", "`api/models.py`\n```python\nx = 1\n```",
               "api/models.py", body},
    block_case{"file_label", "File: api/models.py\n```python\nx = 1\n```",
               "api/models.py", body},
    block_case{"bold_file_label",
               "**File:** `api/models.py`\n```python\nx = 1\n```",
               "api/models.py", body},
    block_case{"path_colon", "api/models.py:\n```python\nx = 1\n```",
               "api/models.py", body},
    block_case{"sentence_with_one_path",
               "Create `api/models.py`:\n\n```python\nx = 1\n```",
               "api/models.py", body},
    block_case{"numbered_heading",
               "1. **pkg/__init__.py**\n```python\nx = 1\n```",
               "pkg/__init__.py", body},
    block_case{"makefile_heading", "### Makefile\n```make\nx = 1\n```",
               "Makefile", body},
    block_case{"blank_line_between",
               "### api/models.py\n\n```python\nx = 1\n```", "api/models.py",
               body},
    block_case{"tilde_fence", "~~~python title=a.py\nx = 1\n~~~", "a.py", body},
    block_case{"crlf", "```python title=a.py\r\nx = 1\r\n```\r\n", "a.py",
               body},
    block_case{"indented_in_a_list",
               "1. Models:\n   ```python title=a.py\n   x = 1\n   ```\n",
               "a.py", body},
    block_case{"info_wins_over_heading",
               "### other.py\n```python title=a.py\n# File: b.py\nx = 1\n```",
               "a.py", body},
    block_case{"longer_fence_keeps_shorter_ones",
               "````markdown title=README.md\n```sh\nmake\n```\n````",
               "README.md", "```sh\nmake\n```\n"},
    block_case{"same_length_nested_fence",
               "```markdown title=README.md\n# Use\n```bash\nmake\n```\nend\n"
               "```",
               "README.md", "# Use\n```bash\nmake\n```\nend\n"},
    block_case{"empty_block", "```python title=pkg/__init__.py\n```",
               "pkg/__init__.py", ""}),
  [](const ::testing::TestParamInfo<block_case>& info) {
    return info.param.name;
  });

TEST(extract_code_blocks, ignores_blocks_that_name_no_file) {
  std::string text = "Here is the code:\n```python\nprint(1)\n```\n\n"
                     "Run it with:\n```bash\npython app.py\n```\n"
                     "### Setup\n```sh\nmake\n```\n"
                     "Inline ```python title=x.py``` is not a fence.\n";
  EXPECT_TRUE(extract_code_blocks(text).empty());
}

TEST(extract_code_blocks, ignores_a_heading_separated_by_prose) {
  std::string text = "### api/models.py\nSome words here.\n```python\nx\n```";
  EXPECT_TRUE(extract_code_blocks(text).empty());
}

TEST(extract_code_blocks, ignores_an_unterminated_block) {
  std::string text
    = "```python title=a.py\na = 1\n```\n\n```python title=b.py\nb = 2\n";
  auto blocks = extract_code_blocks(text);
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].path, "a.py");
  EXPECT_EQ(blocks[0].content, "a = 1\n");
}

TEST(extract_code_blocks, skips_diffs_that_would_corrupt_the_file) {
  std::string text = "### api/models.py\n```diff\n-a\n+b\n```\n"
                     "```diff title=fix.patch\n-a\n+b\n```\n";
  auto blocks = extract_code_blocks(text);
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].path, "fix.patch");
}

TEST(extract_code_blocks, keeps_order_and_the_last_content_of_a_repeated_path) {
  std::string text = "```python title=a.py\nv1\n```\n"
                     "```python title=b.py\nb\n```\n"
                     "```python title=./a.py\nv2\n```\n";
  auto blocks = extract_code_blocks(text);
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[0].path, "a.py");
  EXPECT_EQ(blocks[0].content, "v2\n");
  EXPECT_EQ(blocks[1].path, "b.py");
}

TEST(extract_code_blocks, returns_unsafe_names_for_the_writer_to_refuse) {
  auto blocks
    = extract_code_blocks("```sh title=../../.bashrc\nrm -rf ~\n```\n");
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].path, "../../.bashrc");
  EXPECT_FALSE(normalize_workspace_path(blocks[0].path).ok);
}

TEST(extract_code_blocks, reads_the_real_claude_text_reply) {
  std::string stdout_text = read_text(
    fs::path{ORCH_TEST_FIXTURES} / "agent-output/claude/implement-text.stdout");
  ASSERT_FALSE(stdout_text.empty());
  auto blocks = extract_code_blocks(stdout_text);
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[0].path, "blog_api/models.py");
  EXPECT_EQ(blocks[0].content.rfind("from dataclasses import", 0), 0u)
    << "the '# File:' line must be removed";
  EXPECT_EQ(blocks[1].path, "blog_api/routes.py");
  EXPECT_NE(blocks[1].content.find("def create_post"), std::string::npos);
}

TEST_F(workspace_fixture, extracted_blocks_write_only_safe_paths) {
  std::string text = "```python title=ok/a.py\na\n```\n"
                     "```python title=../escape.py\nb\n```\n"
                     "```python title=/tmp/abs.py\nc\n```\n";
  workspace ws{root_, "run1"};
  int written = 0;
  int refused = 0;
  for (const auto& b : extract_code_blocks(text)) {
    write_outcome w = ws.write(b.path, b.content);
    if (w.written) {
      ++written;
    } else {
      ++refused;
      EXPECT_FALSE(w.reason.empty());
    }
  }
  EXPECT_EQ(written, 1);
  EXPECT_EQ(refused, 2);
  EXPECT_EQ(read_text(root_ / "ok/a.py"), "a\n");
  expect_nothing_outside();
}

} // namespace
} // namespace orch
