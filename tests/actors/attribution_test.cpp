// Attribution of changes between the items of a parallel group, whose
// snapshot windows overlap: pure functions, no actors.

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <unistd.h>

#include "actors/attribution.hpp"

namespace orch {
namespace {

namespace fs = std::filesystem;
using strings = std::vector<std::string>;

step_result item(strings files, strings reported, strings deleted = {}) {
  step_result res;
  res.files = std::move(files);
  res.reported_files = std::move(reported);
  res.deleted = std::move(deleted);
  return res;
}

TEST(attribute_group, a_file_one_item_claims_is_that_items_only) {
  std::vector<step_result> group{item({"a.py", "b.py"}, {"a.py"}),
                                 item({"a.py", "b.py"}, {"b.py"})};
  attribute_group(group);
  EXPECT_EQ(group[0].files, strings{"a.py"});
  EXPECT_EQ(group[1].files, strings{"b.py"});
  EXPECT_TRUE(group[0].conflicts.empty());
  EXPECT_TRUE(group[1].conflicts.empty());
}

TEST(attribute_group, a_file_two_items_claim_is_a_conflict_of_both) {
  std::vector<step_result> group{item({"x.py"}, {"x.py"}),
                                 item({"x.py"}, {"x.py"}), item({"x.py"}, {})};
  attribute_group(group);
  EXPECT_EQ(group[0].files, strings{"x.py"});
  EXPECT_EQ(group[0].conflicts, strings{"x.py"});
  EXPECT_EQ(group[1].files, strings{"x.py"});
  EXPECT_EQ(group[1].conflicts, strings{"x.py"});
  // The third only saw it in its window.
  EXPECT_TRUE(group[2].files.empty());
  EXPECT_TRUE(group[2].conflicts.empty());
}

TEST(attribute_group, a_file_nobody_claims_but_several_saw_is_a_conflict) {
  std::vector<step_result> group{item({"u.txt"}, {}), item({"u.txt"}, {})};
  attribute_group(group);
  EXPECT_EQ(group[0].files, strings{"u.txt"});
  EXPECT_EQ(group[0].conflicts, strings{"u.txt"});
  EXPECT_EQ(group[1].files, strings{"u.txt"});
  EXPECT_EQ(group[1].conflicts, strings{"u.txt"});
}

TEST(attribute_group, a_file_only_one_item_saw_stays_its_own) {
  std::vector<step_result> group{item({"solo.py"}, {}), item({}, {})};
  attribute_group(group);
  EXPECT_EQ(group[0].files, strings{"solo.py"});
  EXPECT_TRUE(group[0].conflicts.empty());
  EXPECT_TRUE(group[1].files.empty());
}

TEST(attribute_group, deletions_follow_the_same_rules) {
  std::vector<step_result> group{item({}, {"gone.py"}, {"gone.py", "old.py"}),
                                 item({}, {}, {"gone.py", "old.py"})};
  attribute_group(group);
  EXPECT_EQ(group[0].deleted, (strings{"gone.py", "old.py"}));
  EXPECT_EQ(group[1].deleted, strings{"old.py"});
  EXPECT_EQ(group[0].conflicts, strings{"old.py"});
  EXPECT_EQ(group[1].conflicts, strings{"old.py"});
}

TEST(attribute_group, a_claim_counts_only_when_the_claimant_saw_the_change) {
  // The second item says it wrote x.py, but its window saw no change (same
  // content, or a path it never touched): the first item's change stays its.
  std::vector<step_result> group{item({"x.py"}, {}), item({}, {"x.py"})};
  attribute_group(group);
  EXPECT_EQ(group[0].files, strings{"x.py"});
  EXPECT_TRUE(group[0].conflicts.empty());
  EXPECT_TRUE(group[1].files.empty());
}

TEST(attribute_group, a_single_item_is_left_alone) {
  std::vector<step_result> group{item({"b.py", "a.py"}, {"zzz"})};
  attribute_group(group);
  EXPECT_EQ(group[0].files, (strings{"b.py", "a.py"}));
  EXPECT_TRUE(group[0].conflicts.empty());
}

TEST(workspace_relative, makes_absolute_paths_under_the_workspace_relative) {
  fs::path root{"/work/space"};
  EXPECT_EQ(workspace_relative(root, "/work/space/src/a.py"), "src/a.py");
  EXPECT_EQ(workspace_relative(fs::path{"/work/space/"}, "/work/space/a.py"),
            "a.py");
  EXPECT_EQ(workspace_relative(root, "/work/space/./src/../b.py"), "b.py");
  EXPECT_EQ(workspace_relative(root, "src//c.py"), "src/c.py");
}

TEST(workspace_relative, drops_what_lies_outside_or_is_not_a_file_path) {
  fs::path root{"/work/space"};
  EXPECT_FALSE(workspace_relative(root, "/work/spacey/a.py"));
  EXPECT_FALSE(workspace_relative(root, "/etc/passwd"));
  EXPECT_FALSE(workspace_relative(root, "/work/space"));
  EXPECT_FALSE(workspace_relative(root, "/work/space/../x.py"));
  EXPECT_FALSE(workspace_relative(root, "../x.py"));
  EXPECT_FALSE(workspace_relative(root, ""));
  EXPECT_FALSE(workspace_relative(root, "/work/space/.orchestrator/x"));
  EXPECT_FALSE(workspace_relative(root, std::string{"a\0b", 3}));
}

TEST(workspace_relative, accepts_the_real_path_of_a_linked_workspace) {
  auto base = fs::temp_directory_path()
              / ("orch-attr-" + std::to_string(::getpid()));
  fs::remove_all(base);
  fs::create_directories(base / "real");
  fs::create_directory_symlink(base / "real", base / "link");
  auto real = fs::canonical(base / "real");
  EXPECT_EQ(workspace_relative(base / "link", (real / "a.py").string()),
            "a.py");
  fs::remove_all(base);
}

} // namespace
} // namespace orch
