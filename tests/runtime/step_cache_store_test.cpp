// The step cache without actors: the key and the prompt normalisation, the
// entry format and its checksum, the memory LRU, the disk store (ttl,
// eviction by bytes, corrupt entries), and the workspace reads and deletes
// that never pass a link.

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/counters.hpp"
#include "runtime/step_cache_store.hpp"
#include "support/temp_tree.hpp"

namespace orch {
namespace {

namespace fs = std::filesystem;
using test::read_text;
using test::write_text;

step_cache_entry sample_entry(std::string key, int64_t created_ms = 1000) {
  step_cache_entry e;
  e.key = std::move(key);
  e.created_ms = created_ms;
  e.agent = "codex";
  e.task_kind = "implement";
  e.outcome.ok = true;
  e.outcome.message = "fine";
  e.outcome.final_text = "wrote it\n```py title=a.py\nx\n```";
  e.outcome.session_id = "s-1";
  e.outcome.tokens.input_tokens = 10;
  e.outcome.tokens.cost_usd = 0.125;
  e.outcome.tokens.has_cost = true;
  e.outcome.reported_files = {"/w/a.py"};
  e.outcome.exit_code = 0;
  e.findings = {finding{"high", "a.py", 3, "bug\nhere"}};
  // Any bytes: NUL, invalid UTF-8, newlines, a field-like line.
  e.files = {cached_file{"a.py", std::string{"x\0\xff\nkey 3\nabc\n", 15}},
             cached_file{"dir/b.txt", ""}};
  e.deleted = {"old.py"};
  e.reported_files = {"a.py"};
  e.refused = {cached_refusal{"../x", "escapes the workspace"}};
  e.duration_ms = 42;
  return e;
}

std::string key_of(char c) {
  return std::string(64, c);
}

// -- key ----------------------------------------------------------------------

TEST(step_cache_key,
     normalize_prompt_drops_the_workspace_run_id_and_iteration) {
  auto ws = std::string{"/home/u/workspace/20261201-101010-123-abcdef"};
  auto p = "Task kind: implement\n\n## Files in the workspace (" + ws
           + ")\n\nsee " + ws + "/a.py, backups of 20261201-101010-123-abcdef"
           + "\n\nThis is iteration 2.\n";
  auto n = normalize_prompt(p, ws, "20261201-101010-123-abcdef", 2);
  EXPECT_EQ(n, "Task kind: implement\n\n## Files in the workspace "
               "({workspace})\n\nsee {workspace}/a.py, backups of {run_id}"
               "\n\nThis is iteration {iteration}.\n");
  // Another run, another iteration: the same text.
  auto ws2 = std::string{"/tmp/other/20261201-111111-000-000001"};
  auto p2 = "Task kind: implement\n\n## Files in the workspace (" + ws2
            + ")\n\nsee " + ws2 + "/a.py, backups of 20261201-111111-000-000001"
            + "\n\nThis is iteration 3.\n";
  EXPECT_EQ(n, normalize_prompt(p2, ws2, "20261201-111111-000-000001", 3));
  // Only the last line, and only the step's own iteration.
  EXPECT_EQ(normalize_prompt("This is iteration 2.\nmore\n", "", "", 2),
            "This is iteration 2.\nmore\n");
  EXPECT_EQ(normalize_prompt("x\nThis is iteration 4.\n", "", "", 2),
            "x\nThis is iteration 4.\n");
  // A short run id (tests) is not replaced: it could be any word.
  EXPECT_EQ(normalize_prompt("a r b", "", "r", 1), "a r b");
}

TEST(step_cache_key, changes_with_every_part_and_every_file) {
  file_snapshot files;
  files["a.py"].hash = "3:abc";
  files["b/c.py"].hash = "4:def";
  step_cache_key_parts base;
  base.agent = "codex";
  base.model = "gpt-5";
  base.adapter = "codex";
  base.task_kind = "implement";
  base.prompt = "Task kind: implement\n";
  base.setup = {"command=codex"};
  base.files = &files;
  auto k = step_cache_key(base);
  EXPECT_TRUE(valid_step_cache_key(k)) << k;
  EXPECT_EQ(k, step_cache_key(base));
  auto differs = [&](auto change) {
    auto parts = base;
    auto copy = files;
    parts.files = &copy;
    change(parts, copy);
    return step_cache_key(parts) != k;
  };
  EXPECT_TRUE(differs([](auto& p, auto&) {
    p.agent = "codex2";
  }));
  EXPECT_TRUE(differs([](auto& p, auto&) {
    p.model = "gpt-4";
  }));
  EXPECT_TRUE(differs([](auto& p, auto&) {
    p.adapter = "claude";
  }));
  EXPECT_TRUE(differs([](auto& p, auto&) {
    p.task_kind = "review";
  }));
  EXPECT_TRUE(differs([](auto& p, auto&) {
    p.prompt += "x";
  }));
  EXPECT_TRUE(differs([](auto& p, auto&) {
    p.setup.push_back("arg=-v");
  }));
  EXPECT_TRUE(differs([](auto&, auto& f) {
    f["a.py"].hash = "3:abd";
  }));
  EXPECT_TRUE(differs([](auto&, auto& f) {
    f["new.txt"].hash = "0:e3b0";
  }));
  EXPECT_TRUE(differs([](auto&, auto& f) {
    f.erase("b/c.py");
  }));
  EXPECT_TRUE(differs([](auto&, auto& f) {
    auto e = f["a.py"];
    f.erase("a.py");
    f["a2.py"] = e;
  }));
  // Parts are length-prefixed: moving bytes between parts changes the key.
  EXPECT_TRUE(differs([](auto& p, auto&) {
    p.agent = "codexg";
    p.model = "pt-5";
  }));
  // A file's key (inode, times) is not its content: it does not count.
  EXPECT_FALSE(differs([](auto&, auto& f) {
    f["a.py"].key.ino = 99;
  }));
}

// -- entry --------------------------------------------------------------------

TEST(step_cache_entry_format, round_trips_any_bytes) {
  auto e = sample_entry(key_of('a'));
  std::string err;
  auto back = decode_entry(encode_entry(e), err);
  ASSERT_TRUE(back) << err;
  EXPECT_EQ(back->key, e.key);
  EXPECT_EQ(back->created_ms, e.created_ms);
  EXPECT_EQ(back->agent, e.agent);
  EXPECT_EQ(back->task_kind, e.task_kind);
  EXPECT_EQ(back->outcome.ok, true);
  EXPECT_EQ(back->outcome.final_text, e.outcome.final_text);
  EXPECT_EQ(back->outcome.session_id, "s-1");
  EXPECT_EQ(back->outcome.tokens.input_tokens, 10);
  EXPECT_EQ(back->outcome.tokens.cost_usd, 0.125);
  EXPECT_TRUE(back->outcome.tokens.has_cost);
  EXPECT_EQ(back->outcome.reported_files, e.outcome.reported_files);
  ASSERT_EQ(back->findings.size(), 1u);
  EXPECT_EQ(back->findings[0], e.findings[0]);
  ASSERT_EQ(back->files.size(), 2u);
  EXPECT_EQ(back->files[0].path, "a.py");
  EXPECT_EQ(back->files[0].content, e.files[0].content);
  EXPECT_EQ(back->files[1].path, "dir/b.txt");
  EXPECT_EQ(back->files[1].content, "");
  EXPECT_EQ(back->deleted, e.deleted);
  EXPECT_EQ(back->reported_files, e.reported_files);
  ASSERT_EQ(back->refused.size(), 1u);
  EXPECT_EQ(back->refused[0].reason, "escapes the workspace");
  EXPECT_EQ(back->duration_ms, 42);
}

TEST(step_cache_entry_format, a_truncated_or_altered_entry_is_refused) {
  auto bytes = encode_entry(sample_entry(key_of('a')));
  std::string err;
  // Cut anywhere: never accepted.
  for (size_t n = 0; n < bytes.size(); n += 7) {
    err.clear();
    EXPECT_FALSE(decode_entry(bytes.substr(0, n), err)) << n;
    EXPECT_FALSE(err.empty());
  }
  auto flipped = bytes;
  flipped[flipped.size() - 5] ^= 0x01;
  err.clear();
  EXPECT_FALSE(decode_entry(flipped, err));
  EXPECT_NE(err.find("checksum"), std::string::npos) << err;
  err.clear();
  EXPECT_FALSE(decode_entry("orch-step-cache 0\n" + bytes, err));
  EXPECT_FALSE(decode_entry(bytes + "x", err));
}

// -- memory -------------------------------------------------------------------

TEST(step_cache_memory, evicts_the_least_recently_used_beyond_max_entries) {
  step_cache_memory mem{2, 1u << 20};
  mem.put(sample_entry(key_of('a')));
  mem.put(sample_entry(key_of('b')));
  ASSERT_NE(mem.get(key_of('a')), nullptr); // a is now the most recent
  mem.put(sample_entry(key_of('c')));
  EXPECT_EQ(mem.size(), 2u);
  EXPECT_NE(mem.get(key_of('a')), nullptr);
  EXPECT_EQ(mem.get(key_of('b')), nullptr);
  EXPECT_NE(mem.get(key_of('c')), nullptr);
}

TEST(step_cache_memory, evicts_beyond_max_bytes_and_skips_an_entry_too_large) {
  auto one = entry_bytes(sample_entry(key_of('a')));
  step_cache_memory mem{100, one * 2 + one / 2};
  mem.put(sample_entry(key_of('a')));
  mem.put(sample_entry(key_of('b')));
  mem.put(sample_entry(key_of('c')));
  EXPECT_EQ(mem.size(), 2u);
  EXPECT_LE(mem.bytes(), one * 2 + one / 2);
  EXPECT_EQ(mem.get(key_of('a')), nullptr);
  auto big = sample_entry(key_of('d'));
  big.files[0].content.assign(one * 3, 'x');
  mem.put(big);
  EXPECT_EQ(mem.get(key_of('d')), nullptr);
  EXPECT_EQ(mem.size(), 2u);
  // Replacing an entry keeps the byte count right.
  mem.put(sample_entry(key_of('b')));
  EXPECT_EQ(mem.bytes(), 2 * one);
}

// -- disk ---------------------------------------------------------------------

class step_cache_disk_test : public test::temp_tree {
protected:
  fs::path state() const {
    return base_ / "state";
  }
};

TEST_F(step_cache_disk_test,
       stores_entries_in_a_private_folder_and_reads_them) {
  step_cache_disk disk{state(), 1u << 20};
  ASSERT_TRUE(disk.ok()) << disk.error();
  std::string err;
  ASSERT_TRUE(disk.put(sample_entry(key_of('a'), 1000), 1000, 60000, err))
    << err;
  struct stat st {};
  ASSERT_EQ(::stat((state() / "cache").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_TRUE(fs::is_regular_file(disk.file_of(key_of('a'))));
  auto got = disk.get(key_of('a'), 2000, 60000);
  ASSERT_TRUE(got.entry);
  EXPECT_EQ(got.entry->files[0].content, sample_entry("").files[0].content);
  EXPECT_FALSE(disk.get(key_of('b'), 2000, 60000).entry);
  // A second store on the same folder (another process) sees it too.
  step_cache_disk other{state(), 1u << 20};
  EXPECT_TRUE(other.get(key_of('a'), 2000, 60000).entry);
}

TEST_F(step_cache_disk_test, an_expired_entry_is_a_miss_and_removed) {
  step_cache_disk disk{state(), 1u << 20};
  std::string err;
  ASSERT_TRUE(disk.put(sample_entry(key_of('a'), 1000), 1000, 60000, err));
  auto got = disk.get(key_of('a'), 1000 + 60001, 60000);
  EXPECT_FALSE(got.entry);
  EXPECT_TRUE(got.expired);
  EXPECT_FALSE(fs::exists(disk.file_of(key_of('a'))));
}

TEST_F(step_cache_disk_test, evicts_the_oldest_files_beyond_max_disk_bytes) {
  auto size = encode_entry(sample_entry(key_of('a'))).size();
  step_cache_disk disk{state(), size * 2 + size / 2};
  std::string err;
  auto now = static_cast<int64_t>(::time(nullptr)) * 1000;
  int64_t age = 3;
  for (char c : {'a', 'b'}) {
    ASSERT_TRUE(disk.put(sample_entry(key_of(c), now), now, 86400000, err));
    // Older by whole seconds, a first: eviction goes by modification time.
    timespec times[2] = {{now / 1000 - age, 0}, {now / 1000 - age, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, disk.file_of(key_of(c)).c_str(), times, 0),
              0);
    --age;
  }
  ASSERT_TRUE(disk.put(sample_entry(key_of('c'), now), now, 86400000, err));
  EXPECT_FALSE(fs::exists(disk.file_of(key_of('a'))));
  EXPECT_TRUE(fs::exists(disk.file_of(key_of('b'))));
  EXPECT_TRUE(fs::exists(disk.file_of(key_of('c'))));
  EXPECT_LE(disk.usage().first, size * 2 + size / 2);
  EXPECT_EQ(disk.usage().second, 2u);
}

TEST_F(step_cache_disk_test,
       a_corrupt_entry_is_ignored_removed_and_counted_once) {
  counters().reset();
  step_cache_disk disk{state(), 1u << 20};
  std::string err;
  ASSERT_TRUE(disk.put(sample_entry(key_of('a')), 1000, 60000, err));
  auto file = disk.file_of(key_of('a'));
  auto bytes = read_text(file);
  write_text(file, bytes.substr(0, bytes.size() / 2));
  auto got = disk.get(key_of('a'), 1000, 60000);
  EXPECT_FALSE(got.entry);
  EXPECT_TRUE(got.corrupt);
  EXPECT_FALSE(got.reason.empty());
  EXPECT_FALSE(fs::exists(file));
  EXPECT_EQ(counters().total(counter::cache_corrupt), 1u);
  // The same garbage again (another writer): ignored, not counted twice.
  write_text(file, "garbage");
  EXPECT_TRUE(disk.get(key_of('a'), 1000, 60000).corrupt);
  EXPECT_EQ(counters().total(counter::cache_corrupt), 1u);
  // An entry filed under another key's name is corrupt too.
  ASSERT_TRUE(disk.put(sample_entry(key_of('b')), 1000, 60000, err));
  fs::rename(disk.file_of(key_of('b')), disk.file_of(key_of('c')));
  EXPECT_TRUE(disk.get(key_of('c'), 1000, 60000).corrupt);
  EXPECT_EQ(counters().total(counter::cache_corrupt), 2u);
  counters().reset();
}

TEST_F(step_cache_disk_test, a_link_is_never_read_or_written_through) {
  step_cache_disk disk{state(), 1u << 20};
  std::string err;
  write_text(outside_ / "victim", "precious");
  fs::create_symlink(outside_ / "victim", disk.file_of(key_of('a')));
  EXPECT_TRUE(disk.get(key_of('a'), 1000, 60000).corrupt);
  fs::create_symlink(outside_ / "victim", disk.file_of(key_of('a')));
  ASSERT_TRUE(disk.put(sample_entry(key_of('a')), 1000, 60000, err)) << err;
  EXPECT_EQ(read_text(outside_ / "victim"), "precious");
  EXPECT_FALSE(fs::is_symlink(disk.file_of(key_of('a'))));
  // A link at the cache folder itself: the store refuses to open it.
  fs::remove_all(state() / "cache");
  fs::create_directory_symlink(outside_, state() / "cache");
  step_cache_disk linked{state(), 1u << 20};
  EXPECT_FALSE(linked.ok());
  EXPECT_FALSE(linked.error().empty());
  EXPECT_FALSE(linked.put(sample_entry(key_of('a')), 1000, 60000, err));
}

// -- workspace side -----------------------------------------------------------

TEST_F(step_cache_disk_test, reads_step_files_whole_and_refuses_links) {
  fs::create_directories(root_ / "d");
  write_text(root_ / "a.py", std::string{"a\0b", 3});
  write_text(root_ / "d/b.py", "bb");
  auto files = read_step_files(root_, {"a.py", "d/b.py"}, 100);
  ASSERT_TRUE(files);
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].content, std::string("a\0b", 3));
  EXPECT_EQ((*files)[1].path, "d/b.py");
  EXPECT_FALSE(read_step_files(root_, {"a.py", "d/b.py"}, 4));
  EXPECT_FALSE(read_step_files(root_, {"gone.py"}, 100));
  write_text(outside_ / "secret", "s");
  fs::create_symlink(outside_ / "secret", root_ / "l.py");
  EXPECT_FALSE(read_step_files(root_, {"l.py"}, 100));
  fs::create_directory_symlink(outside_, root_ / "ld");
  EXPECT_FALSE(read_step_files(root_, {"ld/secret"}, 100));
}

TEST_F(step_cache_disk_test, deletes_workspace_files_without_passing_a_link) {
  fs::create_directories(root_ / "d");
  write_text(root_ / "d/x.py", "x");
  std::string err;
  EXPECT_TRUE(delete_workspace_file(root_, "d/x.py", err)) << err;
  EXPECT_FALSE(fs::exists(root_ / "d/x.py"));
  EXPECT_TRUE(delete_workspace_file(root_, "d/x.py", err)) << "already gone";
  EXPECT_TRUE(delete_workspace_file(root_, "nodir/x.py", err));
  write_text(outside_ / "keep", "k");
  fs::create_directory_symlink(outside_, root_ / "ld");
  EXPECT_FALSE(delete_workspace_file(root_, "ld/keep", err));
  EXPECT_TRUE(fs::exists(outside_ / "keep"));
  EXPECT_FALSE(delete_workspace_file(root_, "../outside/keep", err));
  EXPECT_FALSE(delete_workspace_file(root_, ".git/config", err));
  EXPECT_TRUE(fs::exists(outside_ / "keep"));
  // A link at the leaf goes, its target stays.
  fs::create_symlink(outside_ / "keep", root_ / "l");
  EXPECT_TRUE(delete_workspace_file(root_, "l", err)) << err;
  EXPECT_FALSE(fs::is_symlink(root_ / "l"));
  EXPECT_TRUE(fs::exists(outside_ / "keep"));
}

} // namespace
} // namespace orch
