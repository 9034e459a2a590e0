// The audit log: one valid JSON object per line with the documented fields,
// safe from many threads, rotated by size, never written through a link.

#include "runtime/audit_log.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/counters.hpp"
#include "runtime/state_dir.hpp"

using namespace orch;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in{p};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<nlohmann::json> json_lines(const fs::path& p) {
  std::vector<nlohmann::json> out;
  std::istringstream in{slurp(p)};
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << line;
    EXPECT_TRUE(j.is_object()) << line;
    out.push_back(j);
  }
  return out;
}

class audit_log_test : public ::testing::Test {
protected:
  audit_log_test() {
    root_
      = fs::temp_directory_path()
        / ("orch-audit-test-" + std::to_string(::getpid()) + "-"
           + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    std::string error;
    state_ = open_state_dir(root_ / "state", error);
    EXPECT_TRUE(state_) << error;
    counters().reset();
  }
  ~audit_log_test() override {
    audit_close();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  bool open(audit_options opts, std::string& error) {
    return audit_open(state_.get(), opts, error);
  }

  fs::path file(const std::string& suffix = "") const {
    return root_ / "state" / "audit" / (std::string{audit_file_name} + suffix);
  }

  fs::path root_;
  detail::unique_fd state_;
};

} // namespace

TEST_F(audit_log_test,
       each_event_is_one_json_object_with_the_documented_fields) {
  std::string error;
  ASSERT_TRUE(open({}, error)) << error;
  audit_event ev;
  ev.kind = audit_kind::file_written;
  ev.run_id = "run-1";
  ev.agent = "codex";
  ev.path = "src/a \"quoted\"\nname.py";
  ev.detail = "iteration 1 step 1";
  ev.extra["argv_sha256"] = "abc";
  audit(ev);
  audit_event bare;
  bare.kind = audit_kind::run_finished;
  bare.run_id = "run-1";
  audit(bare);
  audit_sync();
  auto lines = json_lines(file());
  ASSERT_EQ(lines.size(), 2u);
  const auto& j = lines[0];
  EXPECT_EQ(j["kind"], "file_written");
  EXPECT_EQ(j["run_id"], "run-1");
  EXPECT_EQ(j["agent"], "codex");
  EXPECT_EQ(j["path"], "src/a \"quoted\"\nname.py");
  EXPECT_EQ(j["detail"], "iteration 1 step 1");
  EXPECT_EQ(j["argv_sha256"], "abc");
  EXPECT_EQ(j["user"], os_user_name());
  // UTC, ISO 8601 with milliseconds.
  auto time = j["time"].get<std::string>();
  ASSERT_EQ(time.size(), 24u) << time;
  EXPECT_EQ(time[10], 'T');
  EXPECT_EQ(time[19], '.');
  EXPECT_EQ(time.back(), 'Z');
  // Empty fields are left out.
  EXPECT_FALSE(lines[1].contains("agent"));
  EXPECT_FALSE(lines[1].contains("path"));
  // Private: 0600 in a 0700 folder.
  struct stat st {};
  ASSERT_EQ(::lstat(file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::lstat(file().parent_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(audit_log_test, lines_from_many_threads_stay_whole) {
  std::string error;
  ASSERT_TRUE(open({}, error)) << error;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([t] {
      for (int i = 0; i < 250; ++i) {
        audit_event ev;
        ev.kind = audit_kind::agent_invoked;
        ev.run_id = "run-" + std::to_string(t);
        ev.detail = std::string(200, static_cast<char>('a' + t));
        audit(ev);
      }
    });
  for (auto& th : threads)
    th.join();
  audit_sync();
  auto lines = json_lines(file());
  EXPECT_EQ(lines.size(), 1000u);
  EXPECT_EQ(counters().total(counter::audit_errors), 0u);
}

TEST_F(audit_log_test, the_file_is_rotated_by_size) {
  std::string error;
  audit_options opts;
  opts.max_bytes = 4096;
  ASSERT_TRUE(open(opts, error)) << error;
  for (int i = 0; i < 200; ++i) {
    audit_event ev;
    ev.kind = audit_kind::file_written;
    ev.run_id = "run-1";
    ev.path = "file-" + std::to_string(i) + ".txt";
    audit(ev);
  }
  audit_sync();
  ASSERT_TRUE(fs::exists(file(".1")));
  ASSERT_TRUE(fs::exists(file(".2")));
  ASSERT_TRUE(fs::exists(file(".3")));
  EXPECT_FALSE(fs::exists(file(".4")));
  for (auto suffix : {"", ".1", ".2", ".3"}) {
    EXPECT_LE(fs::file_size(file(suffix)), 4096u) << suffix;
    EXPECT_FALSE(json_lines(file(suffix)).empty()) << suffix;
  }
  // The newest event is in the current file, the one before it in .1 or
  // here: nothing in between is lost.
  auto current = json_lines(file());
  EXPECT_EQ(current.back()["path"], "file-199.txt");
  auto older = json_lines(file(".1"));
  auto last_older = older.back()["path"].get<std::string>();
  auto first_current = current.front()["path"].get<std::string>();
  EXPECT_EQ(std::stoi(last_older.substr(5)) + 1,
            std::stoi(first_current.substr(5)));
}

TEST_F(audit_log_test, a_link_at_the_audit_file_is_never_followed) {
  auto target = root_ / "victim.txt";
  {
    std::ofstream out{target};
    out << "precious\n";
  }
  fs::create_directories(file().parent_path());
  fs::permissions(file().parent_path(), fs::perms::owner_all);
  fs::create_symlink(target, file());
  std::string error;
  EXPECT_FALSE(open({}, error));
  EXPECT_NE(error.find("symlink"), std::string::npos) << error;
  audit_event ev;
  ev.kind = audit_kind::run_submitted;
  ev.run_id = "run-1";
  audit(ev);
  audit_sync();
  EXPECT_EQ(slurp(target), "precious\n");
  EXPECT_FALSE(audit_includes_task());
}

TEST_F(audit_log_test, a_hard_link_at_the_audit_file_is_refused) {
  auto target = root_ / "victim.txt";
  {
    std::ofstream out{target};
    out << "precious\n";
  }
  fs::create_directories(file().parent_path());
  fs::create_hard_link(target, file());
  std::string error;
  EXPECT_FALSE(open({}, error));
  EXPECT_NE(error.find("single name"), std::string::npos) << error;
  EXPECT_EQ(slurp(target), "precious\n");
}

TEST_F(audit_log_test, disabled_or_closed_it_writes_nothing) {
  std::string error;
  audit_options opts;
  opts.enabled = false;
  ASSERT_TRUE(open(opts, error)) << error;
  audit_event ev;
  ev.kind = audit_kind::run_submitted;
  audit(ev);
  EXPECT_FALSE(fs::exists(file()));
  opts.enabled = true;
  opts.include_task = true;
  ASSERT_TRUE(open(opts, error)) << error;
  EXPECT_TRUE(audit_includes_task());
  audit_close();
  EXPECT_FALSE(audit_includes_task());
  audit(ev);
  EXPECT_EQ(fs::file_size(file()), 0u);
}

TEST(audit_log, argv_hash_separates_the_elements) {
  EXPECT_EQ(argv_sha256({"ab", "c"}).size(), 64u);
  EXPECT_NE(argv_sha256({"ab", "c"}), argv_sha256({"a", "bc"}));
  EXPECT_EQ(argv_sha256({"ab", "c"}), argv_sha256({"ab", "c"}));
}
