// Snapshots that reuse an earlier snapshot's hashes for files whose key
// (size, mtime, ctime, inode) did not change, and the cache that hands the
// last snapshot of a root to the next one.

#include "runtime/snapshot_watch.hpp"
#include "runtime/workspace.hpp"

#include <gtest/gtest.h>

#include "support/temp_tree.hpp"

#include <cstdint>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

namespace fs = std::filesystem;

namespace orch {
namespace {

using test::write_text;

constexpr std::int64_t hour_ns = std::int64_t{3600} * 1'000'000'000;

std::int64_t ns_of(const struct timespec& ts) {
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t wall_now_ns() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return ns_of(ts);
}

struct stat stat_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st;
}

// Returns once the coarse clock that file timestamps come from has ticked,
// so that the next write gets a later ctime than the last one. It spins on
// the clock (at most one tick, a few ms); nothing else is waited for.
void next_timestamp_tick() {
  struct timespec a {};
  struct timespec b {};
  ::clock_gettime(CLOCK_REALTIME_COARSE, &a);
  do {
    ::clock_gettime(CLOCK_REALTIME_COARSE, &b);
  } while (ns_of(a) == ns_of(b));
}

class snapshot_test : public test::temp_tree {
protected:
  // A snapshot taken "an hour from now": every file the test wrote is
  // settled, so its entry may be reused.
  file_snapshot settled(const file_snapshot* previous = nullptr) {
    snapshot_options options;
    options.previous = previous;
    options.now_ns = wall_now_ns() + hour_ns;
    options.stats = &stats_;
    return snapshot_files(root_, options);
  }

  snapshot_stats stats_;
};

TEST_F(snapshot_test, unchanged_files_are_not_read_again) {
  write_text(root_ / "a.py", "a");
  fs::create_directories(root_ / "pkg");
  write_text(root_ / "pkg" / "b.py", "bb");
  write_text(root_ / "c\xFF", "ccc");
  file_snapshot before = settled();
  EXPECT_EQ(stats_.hashed, 3u);
  EXPECT_EQ(stats_.bytes_hashed, 6u);
  for (const auto& kvp : before)
    EXPECT_TRUE(kvp.second.reusable) << kvp.first;

  file_snapshot after = settled(&before);
  EXPECT_EQ(stats_.files, 3u);
  EXPECT_EQ(stats_.hashed, 0u);
  EXPECT_EQ(stats_.reused, 3u);
  EXPECT_EQ(stats_.bytes_hashed, 0u);
  EXPECT_TRUE(changed_files(before, after).empty());
  EXPECT_TRUE(removed_files(before, after).empty());
  EXPECT_EQ(after.at("pkg/b.py").hash, "2:" + sha256_hex("bb"));
}

TEST_F(snapshot_test, changed_added_and_removed_files_are_found) {
  write_text(root_ / "same.py", "same");
  write_text(root_ / "edit.py", "abc");
  write_text(root_ / "gone.py", "g");
  file_snapshot before = settled();

  write_text(root_ / "edit.py", "a longer content");
  write_text(root_ / "new.py", "n");
  fs::remove(root_ / "gone.py");
  file_snapshot after = settled(&before);

  EXPECT_EQ(changed_files(before, after),
            (std::vector<std::string>{"edit.py", "new.py"}));
  EXPECT_EQ(removed_files(before, after),
            (std::vector<std::string>{"gone.py"}));
  EXPECT_EQ(stats_.hashed, 2u);
  EXPECT_EQ(stats_.reused, 1u);
  EXPECT_EQ(after.at("edit.py").hash, "16:" + sha256_hex("a longer content"));
}

TEST_F(snapshot_test, a_same_size_rewrite_with_its_mtime_put_back_is_found) {
  // What `touch -d` after an edit does: size and mtime as before, so only
  // the change time (set by the kernel, never by a user) tells.
  fs::path f = root_ / "f.py";
  write_text(f, "abc");
  file_snapshot before = settled();
  struct stat old = stat_of(f);

  next_timestamp_tick();
  write_text(f, "abd");
  struct timespec times[2] = {old.st_atim, old.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, f.c_str(), times, 0), 0);
  struct stat now = stat_of(f);
  ASSERT_EQ(now.st_size, old.st_size);
  ASSERT_EQ(now.st_ino, old.st_ino);
  ASSERT_EQ(ns_of(now.st_mtim), ns_of(old.st_mtim));
  ASSERT_NE(ns_of(now.st_ctim), ns_of(old.st_ctim));

  file_snapshot after = settled(&before);
  EXPECT_EQ(stats_.hashed, 1u);
  EXPECT_EQ(changed_files(before, after), (std::vector<std::string>{"f.py"}));
  EXPECT_EQ(after.at("f.py").hash, "3:" + sha256_hex("abd"));
}

TEST_F(snapshot_test, a_file_replaced_by_a_rename_is_read_again) {
  // Same size and timestamps copied over, but another inode.
  write_text(root_ / "f.py", "abc");
  file_snapshot before = settled();
  struct stat old = stat_of(root_ / "f.py");
  write_text(root_ / "g.tmp", "xyz");
  struct timespec times[2] = {old.st_atim, old.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, (root_ / "g.tmp").c_str(), times, 0), 0);
  fs::rename(root_ / "g.tmp", root_ / "f.py");

  file_snapshot after = settled(&before);
  EXPECT_EQ(stats_.hashed, 1u);
  EXPECT_EQ(changed_files(before, after), (std::vector<std::string>{"f.py"}));
}

TEST_F(snapshot_test, a_file_written_just_before_a_snapshot_is_read_again) {
  // Racy: a write in the same timestamp tick, after the read, would keep
  // the key, so such an entry cannot vouch for its content.
  fs::path f = root_ / "f.py";
  write_text(f, "abc");
  struct stat st = stat_of(f);
  std::int64_t newest = std::max(ns_of(st.st_mtim), ns_of(st.st_ctim));

  snapshot_options options;
  options.stats = &stats_;
  options.now_ns = newest + snapshot_racy_margin_ns;
  file_snapshot racy = snapshot_files(root_, options);
  EXPECT_FALSE(racy.at("f.py").reusable);
  options.previous = &racy;
  options.now_ns = newest + snapshot_racy_margin_ns + 1;
  file_snapshot settled_now = snapshot_files(root_, options);
  EXPECT_EQ(stats_.hashed, 1u); // the racy entry was not trusted
  EXPECT_TRUE(settled_now.at("f.py").reusable);
  options.previous = &settled_now;
  snapshot_files(root_, options);
  EXPECT_EQ(stats_.hashed, 0u);
  EXPECT_EQ(stats_.reused, 1u);

  // With the real clock, a file just written is racy.
  EXPECT_FALSE(snapshot_files(root_).at("f.py").reusable);
}

TEST_F(snapshot_test, a_file_with_a_future_mtime_is_always_read) {
  fs::path f = root_ / "f.py";
  write_text(f, "abc");
  struct timespec times[2] = {{0, UTIME_OMIT}, {0, 0}};
  times[1].tv_sec
    = static_cast<time_t>((wall_now_ns() + 2 * hour_ns) / 1'000'000'000);
  ASSERT_EQ(::utimensat(AT_FDCWD, f.c_str(), times, 0), 0);
  file_snapshot before = settled();
  EXPECT_FALSE(before.at("f.py").reusable);
  settled(&before);
  EXPECT_EQ(stats_.hashed, 1u);
}

TEST_F(snapshot_test, the_cache_hands_the_last_snapshot_of_a_root_to_the_next) {
  write_text(root_ / "a.py", "a");
  write_text(root_ / "b.py", "b");
  snapshot_cache cache{2};
  snapshot_options options;
  options.now_ns = wall_now_ns() + hour_ns;
  options.stats = &stats_;
  file_snapshot first = cache.take(root_, options);
  EXPECT_EQ(stats_.hashed, 2u);

  write_text(root_ / "b.py", "changed");
  file_snapshot second = cache.take(root_, options);
  EXPECT_EQ(stats_.hashed, 1u);
  EXPECT_EQ(stats_.reused, 1u);
  EXPECT_EQ(changed_files(first, second), (std::vector<std::string>{"b.py"}));

  // Two other roots push this one out: it is read whole again.
  fs::create_directories(outside_ / "x");
  cache.take(outside_, options);
  cache.take(outside_ / "x", options);
  file_snapshot third = cache.take(root_, options);
  EXPECT_EQ(stats_.hashed, 2u);
  EXPECT_TRUE(changed_files(second, third).empty());
}

// -- reuse_unchanged: the cached snapshot without a walk --------------------

class unchanged_test : public snapshot_test {
protected:
  void SetUp() override {
    snapshot_test::SetUp();
    fs::create_directories(root_ / "sub" / "deep");
    write_text(root_ / "a.py", "a");
    write_text(root_ / "sub" / "b.py", "b");
    write_text(root_ / "sub" / "deep" / "c.py", "c");
    first_ = walk();
    ASSERT_FALSE(cache_.last_from_watch());
    ASSERT_EQ(first_.size(), 3u);
  }

  file_snapshot walk() {
    return *cache_.take(root_, false, &stats_);
  }
  file_snapshot reuse() {
    return *cache_.take(root_, true, &stats_);
  }

  watched_snapshot_cache cache_{2};
  file_snapshot first_;
};

TEST_F(unchanged_test, an_untouched_tree_is_not_walked_again) {
  auto again = reuse();
  EXPECT_TRUE(cache_.last_from_watch());
  EXPECT_EQ(stats_.files, 3u);
  EXPECT_EQ(stats_.hashed, 0u);
  EXPECT_TRUE(changed_files(first_, again).empty());
  EXPECT_TRUE(removed_files(first_, again).empty());
  // Still quiet: the next one too.
  reuse();
  EXPECT_TRUE(cache_.last_from_watch());
  // Without the option it always walks.
  walk();
  EXPECT_FALSE(cache_.last_from_watch());
}

TEST_F(unchanged_test, a_same_size_rewrite_with_its_times_put_back_is_seen) {
  // The racy case a key cannot see: same size, mtime restored, in the same
  // tick as the read. The watch saw the write.
  auto path = root_ / "sub" / "deep" / "c.py";
  auto st = stat_of(path);
  write_text(path, "C");
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  auto again = reuse();
  EXPECT_FALSE(cache_.last_from_watch());
  EXPECT_EQ(changed_files(first_, again),
            (std::vector<std::string>{"sub/deep/c.py"}));
}

TEST_F(unchanged_test, added_removed_renamed_and_chmodded_entries_are_seen) {
  auto check = [&](const char* what, auto change) {
    walk();
    change();
    auto after = reuse();
    EXPECT_FALSE(cache_.last_from_watch()) << what;
    auto again = walk();
    EXPECT_EQ(changed_files(after, again), std::vector<std::string>{}) << what;
    EXPECT_EQ(removed_files(after, again), std::vector<std::string>{}) << what;
  };
  check("add", [&] {
    write_text(root_ / "sub" / "deep" / "new.py", "n");
  });
  check("remove", [&] {
    fs::remove(root_ / "a.py");
  });
  check("rename", [&] {
    fs::rename(root_ / "sub" / "b.py", root_ / "sub" / "b2.py");
  });
  check("chmod", [&] {
    ::chmod((root_ / "sub" / "deep" / "c.py").c_str(), 0600);
  });
  check("new folder", [&] {
    fs::create_directories(root_ / "sub" / "deep" / "x");
  });
}

TEST_F(unchanged_test, a_new_tree_at_the_same_path_is_walked) {
  // A rename of the root leaves the old tree's watches silent.
  fs::rename(root_, base_ / "old");
  fs::create_directories(root_);
  write_text(root_ / "z.py", "z");
  auto again = reuse();
  EXPECT_FALSE(cache_.last_from_watch());
  EXPECT_EQ(again.size(), 1u);
  EXPECT_EQ(again.count("z.py"), 1u);
}

TEST_F(unchanged_test, our_meta_dir_does_not_count_but_anything_else_does) {
  fs::create_directories(root_ / workspace_meta_dir);
  write_text(root_ / workspace_meta_dir / "manifest.json", "{}");
  reuse();
  EXPECT_TRUE(cache_.last_from_watch());
  fs::create_directories(root_ / ".git");
  reuse();
  EXPECT_FALSE(cache_.last_from_watch()); // conservative
}

TEST_F(unchanged_test, a_walk_again_drops_old_events_and_sees_new_ones) {
  // Each walk takes over the last walk's inotify instance (closing one is
  // slow): what it saw before this walk must not count after it, what
  // happens after it must.
  write_text(root_ / "a.py", "a2");
  fs::create_directories(root_ / "gone");
  fs::remove(root_ / "gone");
  walk();
  reuse();
  EXPECT_TRUE(cache_.last_from_watch());
  write_text(root_ / "sub" / "deep" / "c.py", "c2");
  auto after = reuse();
  EXPECT_FALSE(cache_.last_from_watch());
  EXPECT_EQ(after.count("sub/deep/c.py"), 1u);
  // One instance per root, however many walks: no descriptor left behind.
  auto fds = [] {
    std::size_t n = 0;
    for ([[maybe_unused]] auto& e : fs::directory_iterator{"/proc/self/fd"})
      ++n;
    return n;
  };
  auto before = fds();
  for (int i = 0; i < 50; ++i)
    walk();
  EXPECT_EQ(fds(), before);
}

TEST(snapshot_cache, of_a_missing_root_is_empty) {
  snapshot_cache cache;
  EXPECT_TRUE(cache.take("/nonexistent/orch/ws").empty());
  EXPECT_TRUE(cache.take("/nonexistent/orch/ws").empty());
}

} // namespace
} // namespace orch
