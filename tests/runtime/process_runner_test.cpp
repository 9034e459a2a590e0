// Tests of the posix_spawn process runner against real child programs
// (/bin/sh scripts). Nothing here sleeps to synchronise: runs that should end
// by themselves carry k_max_test_wait as total deadline, and waits for a
// process to end are poll()s on a pidfd bounded by the same constant.

#include "runtime/agent_guards.hpp"
#include "runtime/process.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using orch::deadline_kind;
using orch::output_stream;
using orch::process_result;
using orch::process_spec;

/// The one bound on anything a test waits for.
constexpr std::chrono::milliseconds k_max_test_wait{10'000};
/// Runs that should end quickly must end well within this.
constexpr std::chrono::milliseconds k_fast{3'000};

const std::vector<std::string> k_env{"PATH=/usr/bin:/bin", "LC_ALL=C"};

/// A spec running `script` with /bin/sh, bounded by k_max_test_wait.
process_spec shell(std::string script) {
  process_spec spec;
  spec.argv = {"/bin/sh", "-c", std::move(script)};
  spec.env = k_env;
  spec.total_deadline = k_max_test_wait;
  spec.kill_grace = 2s;
  return spec;
}

/// Collects the lines delivered by the runner.
struct line_log {
  std::vector<std::string> out;
  std::vector<std::string> err;

  orch::line_callback callback() {
    return [this](output_stream stream, std::string_view line) {
      (stream == output_stream::out ? out : err).emplace_back(line);
    };
  }
};

/// A temporary directory, removed with its content.
class temp_dir {
public:
  temp_dir() {
    std::string pattern = "/tmp/orch-process-test-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr)
      throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const {
    return path_;
  }

  /// Writes `content` to `name` with `mode`; returns the full path.
  std::string write(const std::string& name, const std::string& content,
                    mode_t mode) const {
    std::string file = path_ + "/" + name;
    std::ofstream{file} << content;
    chmod(file.c_str(), mode);
    return file;
  }

private:
  std::string path_;
};

pid_t parent_of(pid_t pid);

/// Waits on a pidfd until `pid` has exited, at most k_max_test_wait.
void wait_exit(pid_t pid) {
  // syscall: glibc 2.36's <sys/pidfd.h> lacks extern "C".
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    poll(&p, 1, static_cast<int>(k_max_test_wait.count()));
    close(pidfd);
  }
}

/// True when process `pid` ends within k_max_test_wait and is then gone.
/// The test process is a child subreaper (see the fixture), so a killed
/// grandchild becomes our child; it is reaped here, after which kill(pid, 0)
/// must fail with ESRCH. A zombie whose parent is being killed too (an
/// agent guard) comes to us only once that parent is gone: waited for.
bool process_gone(pid_t pid) {
  wait_exit(pid);
  for (int round = 0; round < 4; ++round) {
    waitpid(pid, nullptr, WNOHANG);
    if (kill(pid, 0) == -1 && errno == ESRCH)
      return true;
    pid_t parent = parent_of(pid);
    if (parent == 0)
      continue; // gone meanwhile: looked at again
    if (parent == 1 || parent == getpid())
      return false; // alive, or a zombie nobody of ours will reap
    wait_exit(parent);
  }
  return false;
}

/// True when a child of ours has exited and is not reaped.
bool has_zombie_child() {
  siginfo_t info{};
  return waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0
         && info.si_pid != 0;
}

/// The pids whose parent is `parent` (from /proc/<pid>/stat).
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  for (auto& entry : std::filesystem::directory_iterator{"/proc"}) {
    auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    std::ifstream in{entry.path() / "stat"};
    std::string line;
    if (!std::getline(in, line) || line.rfind(')') == std::string::npos)
      continue;
    std::istringstream fields{line.substr(line.rfind(')') + 2)};
    char state = 0;
    pid_t ppid = 0;
    fields >> state >> ppid;
    if (ppid == parent)
      out.push_back(std::stoi(name));
  }
  return out;
}

/// The parent pid of `pid`, or 0.
pid_t parent_of(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string line;
  if (!std::getline(in, line) || line.rfind(')') == std::string::npos)
    return 0;
  std::istringstream fields{line.substr(line.rfind(')') + 2)};
  char state = 0;
  pid_t ppid = 0;
  fields >> state >> ppid;
  return ppid;
}

std::size_t open_descriptor_count() {
  std::size_t count = 0;
  for ([[maybe_unused]] auto& entry :
       std::filesystem::directory_iterator{"/proc/self/fd"})
    ++count;
  return count;
}

class posix_runner : public ::testing::Test {
protected:
  void SetUp() override {
    // Orphaned grandchildren are reparented to us instead of to PID 1 (which
    // may never reap them in a container), so process_gone can be exact.
    ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  }

  void TearDown() override {
    // Reap grandchildren the test killed, so tests do not see each other's.
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
  }

  process_result run(const process_spec& spec,
                     const orch::line_callback& on_line = {},
                     const orch::cancel_token* cancel = nullptr) {
    return runner_->run(spec, on_line, cancel);
  }

  std::shared_ptr<orch::process_runner> runner_
    = orch::make_posix_process_runner();
};

// -- output -------------------------------------------------------------------

TEST_F(posix_runner, streams_stdout_and_stderr_lines_in_order) {
  line_log lines;
  auto result = run(shell("printf 'one\\ntwo\\n'; printf 'e1\\ne2\\n' >&2; "
                          "printf 'three'"),
                    lines.callback());
  EXPECT_TRUE(result.clean_exit());
  EXPECT_EQ(lines.out, (std::vector<std::string>{"one", "two", "three"}));
  EXPECT_EQ(lines.err, (std::vector<std::string>{"e1", "e2"}));
  EXPECT_EQ(result.out, "one\ntwo\nthree");
  EXPECT_EQ(result.err, "e1\ne2\n");
}

TEST_F(posix_runner, delivers_a_line_while_the_child_still_runs) {
  orch::cancel_token cancel;
  line_log lines;
  auto on_line = [&](output_stream stream, std::string_view line) {
    lines.callback()(stream, line);
    cancel.cancel(); // only reachable if the line came before the exit
  };
  auto result = run(shell("echo first; exec sleep 30"), on_line, &cancel);
  EXPECT_TRUE(result.cancelled);
  EXPECT_EQ(lines.out, std::vector<std::string>{"first"});
  EXPECT_LT(result.elapsed, k_fast);
}

TEST_F(posix_runner, exit_status_is_reported) {
  auto failed = run(shell("echo out; exit 7"));
  EXPECT_TRUE(failed.started);
  EXPECT_EQ(failed.exit_code, 7);
  EXPECT_EQ(failed.term_signal, 0);
  EXPECT_FALSE(failed.clean_exit());
  EXPECT_TRUE(run(shell("exit 0")).clean_exit());
}

TEST_F(posix_runner, exit_by_signal_reports_the_signal) {
  auto result = run(shell("ulimit -c 0; kill -SEGV $$"));
  EXPECT_TRUE(result.started);
  EXPECT_EQ(result.term_signal, SIGSEGV);
  EXPECT_EQ(result.exit_code, -1);
  EXPECT_EQ(result.expired, deadline_kind::none);
  EXPECT_FALSE(result.clean_exit());
}

TEST_F(posix_runner, elapsed_time_is_measured) {
  auto result = run(shell("sleep 0.2"));
  EXPECT_TRUE(result.clean_exit());
  EXPECT_GE(result.elapsed, 200ms);
  EXPECT_LT(result.elapsed, k_fast);
}

// -- stdin --------------------------------------------------------------------

TEST_F(posix_runner, stdin_data_is_delivered_and_then_closed) {
  process_spec spec;
  spec.argv = {"cat"}; // ends only when its stdin is closed
  spec.env = k_env;
  spec.stdin_data = "alpha\nbeta\n";
  spec.total_deadline = k_max_test_wait;
  auto result = run(spec);
  EXPECT_TRUE(result.clean_exit());
  EXPECT_EQ(result.out, "alpha\nbeta\n");
}

TEST_F(posix_runner, empty_stdin_data_is_an_immediate_eof) {
  auto spec = shell("cat; echo done");
  spec.stdin_data = "";
  auto result = run(spec);
  EXPECT_TRUE(result.clean_exit());
  EXPECT_EQ(result.out, "done\n");
}

TEST_F(posix_runner, stdin_is_dev_null_when_no_data_is_given) {
  line_log lines;
  auto result = run(shell("readlink /proc/$$/fd/0; cat; echo done"),
                    lines.callback());
  EXPECT_TRUE(result.clean_exit());
  EXPECT_EQ(lines.out, (std::vector<std::string>{"/dev/null", "done"}));
}

TEST_F(posix_runner, child_that_stops_reading_a_large_stdin_does_not_deadlock) {
  // The child takes a bite of its stdin, then only fills its stdout pipe
  // while we still have most of 1 MiB for its stdin: with a blocking write
  // both sides would wait on each other forever.
  auto spec = shell("head -c 8192 >/dev/null; head -c 2097152 /dev/zero");
  spec.stdin_data = std::string(1 << 20, 'x');
  auto result = run(spec);
  EXPECT_TRUE(result.clean_exit());
  EXPECT_EQ(result.out.size(), 2097152u);
  EXPECT_LT(result.elapsed, k_fast);
}

TEST_F(posix_runner, stdin_left_unwritten_when_the_child_exits_is_harmless) {
  // Writing to a pipe without reader raises SIGPIPE, which must neither
  // kill this process nor be left pending.
  auto spec = shell("exit 0");
  spec.stdin_data = std::string(1 << 20, 'x');
  auto result = run(spec);
  EXPECT_TRUE(result.clean_exit());
  sigset_t pending;
  sigpending(&pending);
  EXPECT_EQ(sigismember(&pending, SIGPIPE), 0);
}

TEST_F(posix_runner, child_starts_with_default_signals_and_empty_mask) {
  // This thread blocks SIGUSR1 and the process ignores SIGPIPE and SIGINT;
  // the child must inherit neither.
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigset_t old_mask;
  pthread_sigmask(SIG_BLOCK, &usr1, &old_mask);
  auto old_pipe = signal(SIGPIPE, SIG_IGN);
  auto old_int = signal(SIGINT, SIG_IGN);
  line_log lines;
  auto result = run(shell("exec grep -E '^Sig(Blk|Ign)' /proc/self/status"),
                    lines.callback());
  signal(SIGINT, old_int);
  signal(SIGPIPE, old_pipe);
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  EXPECT_TRUE(result.clean_exit());
  ASSERT_EQ(lines.out.size(), 2u);
  EXPECT_EQ(lines.out[0], "SigBlk:\t0000000000000000");
  // Only the classic signals 1..31: glibc's posix_spawn leaves its own two
  // internal real-time signals (32, 33) ignored, and no API can reset them.
  ASSERT_EQ(lines.out[1].rfind("SigIgn:\t", 0), 0u);
  auto ignored = std::stoull(lines.out[1].substr(8), nullptr, 16);
  EXPECT_EQ(ignored & 0x7fffffffull, 0u) << lines.out[1];
}

TEST_F(posix_runner, child_inherits_no_descriptor_beyond_stdio) {
  // A descriptor without O_CLOEXEC, as a careless library would leave one.
  int leaky = open("/dev/null", O_RDONLY);
  ASSERT_GE(leaky, 0);
  ASSERT_EQ(dup2(leaky, 100), 100);
  close(leaky);
  auto spec = shell("exec ls /proc/self/fd");
  spec.stdin_data = "x";
  line_log lines;
  auto result = run(spec, lines.callback());
  close(100);
  EXPECT_TRUE(result.clean_exit());
  // ls lists 0, 1, 2 and the descriptor of the directory it reads.
  EXPECT_EQ(lines.out.size(), 4u);
  EXPECT_EQ(std::count(lines.out.begin(), lines.out.end(), "100"), 0);
}

TEST_F(posix_runner, child_leads_its_own_process_group) {
  // Field 5 of /proc/PID/stat, the third after "PID (comm) ", is the pgid.
  auto result = run(shell("stat=$(cat /proc/$$/stat); set -- ${stat#*) }; "
                          "echo $$ $3"));
  EXPECT_TRUE(result.clean_exit());
  std::string pid = result.out.substr(0, result.out.find(' '));
  EXPECT_EQ(result.out, pid + " " + pid + "\n"); // pgid == pid
  EXPECT_NE(std::to_string(getpgrp()), pid);
}

// -- environment, program lookup, working directory ---------------------------

TEST_F(posix_runner, environment_is_exactly_spec_env_plus_the_run_marker) {
  setenv("ORCH_PARENT_ONLY", "must-not-leak", 1);
  process_spec spec;
  spec.argv = {"env"};
  spec.env = {"PATH=/usr/bin:/bin", "ORCH_ONE=1", "ORCH_TWO=two words",
              "ORCH_RUN_MARKER=given"};
  spec.total_deadline = k_max_test_wait;
  line_log lines;
  auto result = run(spec, lines.callback());
  unsetenv("ORCH_PARENT_ONLY");
  EXPECT_TRUE(result.clean_exit());
  // One marker entry, ours: a given one is replaced.
  std::vector<std::string> got;
  std::vector<std::string> markers;
  for (const auto& line : lines.out)
    (line.rfind("ORCH_RUN_MARKER=", 0) == 0 ? markers : got).push_back(line);
  ASSERT_EQ(markers.size(), 1u);
  EXPECT_NE(markers[0], "ORCH_RUN_MARKER=given");
  EXPECT_GT(markers[0].size(), std::string{"ORCH_RUN_MARKER="}.size());
  std::vector<std::string> want{"PATH=/usr/bin:/bin", "ORCH_ONE=1",
                                "ORCH_TWO=two words"};
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);

  // Every run has its own marker.
  line_log again;
  run(spec, again.callback());
  EXPECT_EQ(std::count(again.out.begin(), again.out.end(), markers[0]), 0);
}

TEST_F(posix_runner, program_is_looked_up_on_the_path_of_spec_env) {
  temp_dir dir;
  dir.write("orch-fake-tool", "#!/bin/sh\necho tool ran\n", 0755);
  process_spec spec;
  spec.argv = {"orch-fake-tool"};
  spec.env = {"PATH=/nonexistent:" + dir.path() + ":/usr/bin:/bin"};
  spec.total_deadline = k_max_test_wait;
  auto result = run(spec);
  EXPECT_TRUE(result.clean_exit());
  EXPECT_EQ(result.out, "tool ran\n");

  // sh is on this process's PATH but not on the child's.
  process_spec hidden;
  hidden.argv = {"sh", "-c", "true"};
  hidden.env = {"PATH=/nonexistent"};
  auto missing = run(hidden);
  EXPECT_FALSE(missing.started);
  EXPECT_EQ(missing.spawn_errno, ENOENT);
}

TEST_F(posix_runner, working_directory_is_honoured) {
  temp_dir dir;
  dir.write("local-tool", "#!/bin/sh\npwd -P\n", 0755);
  auto spec = shell("pwd -P");
  spec.cwd = dir.path();
  auto result = run(spec);
  EXPECT_TRUE(result.clean_exit());
  std::string real = std::filesystem::canonical(dir.path()).string();
  EXPECT_EQ(result.out, real + "\n");

  // A relative program path is resolved in the working directory, as
  // posix_spawnp would.
  process_spec relative;
  relative.argv = {"./local-tool"};
  relative.env = k_env;
  relative.cwd = dir.path();
  relative.total_deadline = k_max_test_wait;
  auto local = run(relative);
  EXPECT_TRUE(local.clean_exit());
  EXPECT_EQ(local.out, real + "\n");
}

TEST_F(posix_runner, missing_working_directory_fails_the_start) {
  auto spec = shell("true");
  spec.cwd = "/nonexistent/orch-dir";
  auto result = run(spec);
  EXPECT_FALSE(result.started);
  EXPECT_EQ(result.spawn_errno, ENOENT);
}

TEST_F(posix_runner, missing_program_is_enoent_without_exception) {
  process_spec spec;
  spec.argv = {"orch-no-such-program"};
  spec.env = k_env;
  auto bare = run(spec);
  EXPECT_FALSE(bare.started);
  EXPECT_EQ(bare.spawn_errno, ENOENT);
  EXPECT_LT(bare.elapsed, k_fast);
  EXPECT_FALSE(bare.clean_exit());

  spec.argv = {"/nonexistent/orch-no-such-program"};
  auto absolute = run(spec);
  EXPECT_FALSE(absolute.started);
  EXPECT_EQ(absolute.spawn_errno, ENOENT);
}

TEST_F(posix_runner, non_executable_file_is_eacces) {
  temp_dir dir;
  std::string file = dir.write("plain", "#!/bin/sh\necho no\n", 0644);
  process_spec spec;
  spec.argv = {file};
  spec.env = k_env;
  auto absolute = run(spec);
  EXPECT_FALSE(absolute.started);
  EXPECT_EQ(absolute.spawn_errno, EACCES);

  spec.argv = {"plain"};
  spec.env = {"PATH=" + dir.path()};
  auto bare = run(spec);
  EXPECT_FALSE(bare.started);
  EXPECT_EQ(bare.spawn_errno, EACCES);
}

TEST_F(posix_runner, find_executable_searches_the_given_path) {
  EXPECT_EQ(orch::find_executable("sh", {"PATH=/nonexistent:/bin"}), "/bin/sh");
  EXPECT_EQ(orch::find_executable("sh", {"PATH=/nonexistent"}), "");
  EXPECT_EQ(orch::find_executable("orch-no-such-program", k_env), "");
  EXPECT_EQ(orch::find_executable(""), "");
}

TEST_F(posix_runner, find_executable_falls_back_to_this_process_path) {
  std::string found = orch::find_executable("sh", {"HOME=/"});
  ASSERT_FALSE(found.empty());
  EXPECT_EQ(std::filesystem::path(found).filename(), "sh");
}

TEST_F(posix_runner, empty_and_relative_path_elements_are_not_searched) {
  // An agent could write a program named like another agent into the
  // workspace, the next step's working directory.
  temp_dir dir;
  dir.write("orch-planted", "#!/bin/sh\necho planted ran\n", 0755);
  std::filesystem::create_directory(dir.path() + "/bin");
  dir.write("bin/orch-planted", "#!/bin/sh\necho planted ran\n", 0755);
  for (std::string path : {".:/usr/bin", ":/usr/bin", "/usr/bin:", "bin"}) {
    process_spec spec;
    spec.argv = {"orch-planted"};
    spec.env = {"PATH=" + path};
    spec.cwd = dir.path();
    spec.total_deadline = k_max_test_wait;
    auto result = run(spec);
    EXPECT_FALSE(result.started) << path;
    EXPECT_EQ(result.spawn_errno, ENOENT) << path;
    EXPECT_EQ(result.out, "") << path;
  }
  // find_executable, from this process's working directory.
  auto old_cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  EXPECT_EQ(orch::find_executable("orch-planted", {"PATH=.:/usr/bin"}), "");
  EXPECT_EQ(orch::find_executable("orch-planted", {"PATH=:/usr/bin"}), "");
  EXPECT_EQ(orch::find_executable("orch-planted", {"PATH=bin"}), "");
  EXPECT_EQ(orch::find_executable("orch-planted", {"PATH=" + dir.path()}),
            dir.path() + "/orch-planted");
  std::filesystem::current_path(old_cwd);
}

TEST_F(posix_runner, an_exec_failure_behind_the_guard_is_reported) {
  // Executable but not a program: execve fails with ENOEXEC in the guard's
  // child, and the runner must say so instead of reporting a run.
  temp_dir dir;
  std::string file = dir.write("garbage", "not a program\n", 0755);
  process_spec spec;
  spec.argv = {file};
  spec.env = k_env;
  spec.total_deadline = k_max_test_wait;
  auto result = run(spec);
  EXPECT_FALSE(result.started);
  EXPECT_EQ(result.spawn_errno, ENOEXEC);
  // No zombie is left; once the idle guards are let go, no child at all.
  EXPECT_FALSE(has_zombie_child());
  orch::stop_agent_guards(k_max_test_wait);
  EXPECT_EQ(waitpid(-1, nullptr, WNOHANG), -1);
}

TEST_F(posix_runner, find_executable_returns_an_executable_path_as_is) {
  temp_dir dir;
  std::string plain = dir.write("plain", "data", 0644);
  EXPECT_EQ(orch::find_executable("/bin/sh"), "/bin/sh");
  EXPECT_EQ(orch::find_executable(plain), "");
  EXPECT_EQ(orch::find_executable(dir.path()), ""); // a directory
}

// -- deadlines ----------------------------------------------------------------

TEST_F(posix_runner, first_output_deadline_fires_when_the_child_is_silent) {
  auto spec = shell("exec sleep 30");
  spec.first_output_deadline = 200ms;
  spec.idle_deadline = 100ms; // applies only after the first byte
  auto result = run(spec);
  EXPECT_TRUE(result.started);
  EXPECT_EQ(result.expired, deadline_kind::first_output);
  EXPECT_EQ(result.term_signal, SIGTERM);
  EXPECT_EQ(result.exit_code, -1);
  EXPECT_FALSE(result.clean_exit());
  EXPECT_GE(result.elapsed, 200ms);
  EXPECT_LT(result.elapsed, k_fast);
}

TEST_F(posix_runner, idle_deadline_fires_when_output_stops) {
  auto spec = shell("echo hello; exec sleep 30");
  spec.first_output_deadline = 5s;
  spec.idle_deadline = 200ms;
  line_log lines;
  auto result = run(spec, lines.callback());
  EXPECT_EQ(result.expired, deadline_kind::idle);
  EXPECT_EQ(result.term_signal, SIGTERM);
  EXPECT_EQ(lines.out, std::vector<std::string>{"hello"});
  EXPECT_LT(result.elapsed, k_fast);
}

TEST_F(posix_runner, idle_deadline_counts_from_the_start_without_first_output) {
  auto spec = shell("exec sleep 30");
  spec.idle_deadline = 200ms;
  auto result = run(spec);
  EXPECT_EQ(result.expired, deadline_kind::idle);
  EXPECT_LT(result.elapsed, k_fast);
}

TEST_F(posix_runner, idle_deadline_is_renewed_by_every_byte) {
  auto spec = shell("for i in 1 2 3 4 5 6; do echo $i; sleep 0.1; done");
  spec.idle_deadline = 500ms;
  line_log lines;
  auto result = run(spec, lines.callback());
  EXPECT_TRUE(result.clean_exit());
  EXPECT_EQ(lines.out.size(), 6u);
}

TEST_F(posix_runner, total_deadline_fires_while_the_child_keeps_printing) {
  auto spec = shell("while :; do echo tick; sleep 0.05; done");
  spec.idle_deadline = 2s;
  spec.total_deadline = 400ms;
  line_log lines;
  auto result = run(spec, lines.callback());
  EXPECT_EQ(result.expired, deadline_kind::total);
  EXPECT_FALSE(lines.out.empty());
  EXPECT_EQ(lines.out.front(), "tick");
  EXPECT_GE(result.elapsed, 400ms);
  EXPECT_LT(result.elapsed, k_fast);
}

TEST_F(posix_runner, total_deadline_holds_after_the_child_closes_its_output) {
  auto spec = shell("exec sleep 30 >&- 2>&-");
  spec.total_deadline = 300ms;
  auto result = run(spec);
  EXPECT_EQ(result.expired, deadline_kind::total);
  EXPECT_EQ(result.term_signal, SIGTERM);
  EXPECT_LT(result.elapsed, k_fast);
}

TEST_F(posix_runner, sigkill_follows_the_grace_period_if_sigterm_is_ignored) {
  auto spec = shell("trap '' TERM; exec sleep 30");
  spec.first_output_deadline = 200ms;
  spec.kill_grace = 300ms;
  auto result = run(spec);
  EXPECT_EQ(result.expired, deadline_kind::first_output);
  EXPECT_EQ(result.term_signal, SIGKILL);
  EXPECT_GE(result.elapsed, 500ms);
  EXPECT_LT(result.elapsed, k_fast);
}

TEST_F(posix_runner, deadline_kills_the_whole_group_with_its_grandchildren) {
  // One grandchild ignores SIGTERM, one runs in the background; the leader
  // dies on SIGTERM, upon which the rest of the group gets SIGKILL at once,
  // long before the grace period is over.
  auto spec = shell(R"(sh -c 'trap "" TERM; exec sleep 30' & echo $!
sleep 30 & echo $!
exec sleep 30)");
  spec.idle_deadline = 300ms;
  spec.kill_grace = 5s;
  line_log lines;
  auto result = run(spec, lines.callback());
  EXPECT_EQ(result.expired, deadline_kind::idle);
  EXPECT_EQ(result.term_signal, SIGTERM);
  EXPECT_LT(result.elapsed, k_fast);
  ASSERT_EQ(lines.out.size(), 2u);
  for (const auto& pid : lines.out)
    EXPECT_TRUE(process_gone(std::stoi(pid))) << "grandchild " << pid;
}

TEST_F(posix_runner, background_grandchild_is_killed_when_the_leader_exits) {
  // The first grandchild holds our stdout pipe open; the second does not.
  auto spec = shell(R"(sleep 30 & echo $!
sleep 30 >/dev/null 2>&1 & echo $!
echo leader done)");
  line_log lines;
  auto result = run(spec, lines.callback());
  EXPECT_TRUE(result.clean_exit());
  EXPECT_LT(result.elapsed, k_fast);
  ASSERT_EQ(lines.out.size(), 3u);
  EXPECT_EQ(lines.out[2], "leader done");
  EXPECT_TRUE(process_gone(std::stoi(lines.out[0])));
  EXPECT_TRUE(process_gone(std::stoi(lines.out[1])));
}

TEST_F(posix_runner, a_process_that_left_the_group_is_killed_with_the_leader) {
  // setsid moves the grandchild out of reach of the group kill (as Node's
  // `detached: true` does), and it holds our stdout; the run still ends
  // shortly after the leader, and the grandchild is gone. The fifo makes
  // the leader wait until the grandchild has left the group, else the group
  // kill could catch it before setsid() ran.
  temp_dir dir;
  auto spec = shell(R"(mkfifo escaped
setsid sh -c 'echo $$ > escaped; exec sleep 30' &
read pid < escaped; echo $pid)");
  spec.cwd = dir.path();
  spec.kill_grace = 200ms;
  line_log lines;
  auto result = run(spec, lines.callback());
  EXPECT_TRUE(result.clean_exit());
  EXPECT_LT(result.elapsed, k_fast);
  ASSERT_EQ(lines.out.size(), 1u);
  pid_t escaped = std::stoi(lines.out[0]);
  EXPECT_TRUE(process_gone(escaped));
}

/// A script whose leader starts a grandchild that leaves the group (setsid),
/// scrubs its environment (env -i: no marker) and ignores SIGTERM, waits
/// until it runs, prints "<leader pid> <grandchild pid>" and then runs
/// `rest`. Uses the fifo `escaped` in the working directory.
std::string escaping_grandchild(const std::string& rest) {
  return "mkfifo escaped\n"
         "setsid env -i /bin/sh -c 'trap \"\" TERM; echo $$ > escaped; "
         "exec sleep 30' &\n"
         "read pid < escaped; echo $$ $pid\n"
         + rest;
}

/// Parses "<leader> <grandchild>".
std::pair<pid_t, pid_t> two_pids(const std::string& line) {
  auto space = line.find(' ');
  return {std::stoi(line.substr(0, space)), std::stoi(line.substr(space + 1))};
}

TEST_F(posix_runner, an_escaped_grandchild_without_marker_dies_on_cancel) {
  temp_dir dir;
  orch::cancel_token cancel;
  std::string pids;
  auto on_line = [&](output_stream, std::string_view line) {
    pids = std::string{line};
    cancel.cancel();
  };
  auto spec = shell(escaping_grandchild("exec sleep 30"));
  spec.cwd = dir.path();
  spec.kill_grace = 5s;
  auto result = run(spec, on_line, &cancel);
  EXPECT_TRUE(result.cancelled);
  EXPECT_EQ(result.term_signal, SIGTERM);
  EXPECT_LT(result.elapsed, k_fast); // no wait for the grace period
  ASSERT_FALSE(pids.empty());
  auto [leader, escaped] = two_pids(pids);
  EXPECT_EQ(kill(leader, 0), -1);
  EXPECT_EQ(kill(escaped, 0), -1); // killed and reaped before run returned
  EXPECT_TRUE(process_gone(escaped));
}

TEST_F(posix_runner,
       an_escaped_grandchild_dies_when_sigkill_follows_the_grace) {
  // Leader and grandchild ignore SIGTERM: the SIGKILL step must reach both.
  temp_dir dir;
  line_log lines;
  auto spec = shell(escaping_grandchild("trap '' TERM; exec sleep 30"));
  spec.cwd = dir.path();
  spec.first_output_deadline = 0ms;
  spec.idle_deadline = 300ms;
  spec.kill_grace = 200ms;
  auto result = run(spec, lines.callback());
  EXPECT_EQ(result.expired, deadline_kind::idle);
  EXPECT_EQ(result.term_signal, SIGKILL);
  EXPECT_LT(result.elapsed, k_fast);
  ASSERT_EQ(lines.out.size(), 1u);
  auto [leader, escaped] = two_pids(lines.out[0]);
  EXPECT_EQ(kill(leader, 0), -1);
  EXPECT_TRUE(process_gone(escaped));
}

TEST_F(posix_runner, an_escaped_grandchild_dies_on_cancel) {
  temp_dir dir;
  orch::cancel_token cancel;
  std::string pids;
  auto on_line = [&](output_stream, std::string_view line) {
    pids = std::string{line};
    cancel.cancel();
  };
  auto spec = shell(escaping_grandchild("exec sleep 30"));
  spec.cwd = dir.path();
  auto result = run(spec, on_line, &cancel);
  EXPECT_TRUE(result.cancelled);
  ASSERT_FALSE(pids.empty());
  auto [leader, escaped] = two_pids(pids);
  EXPECT_EQ(kill(leader, 0), -1);
  EXPECT_TRUE(process_gone(escaped));
}

TEST_F(posix_runner, agents_die_with_the_runner_process_even_on_sigkill) {
  // A forked copy of this test plays the orchestrator; it is killed with
  // SIGKILL while its agent and the agent's escaped grandchild run.
  temp_dir dir;
  std::string report = dir.path() + "/report";
  ASSERT_EQ(mkfifo(report.c_str(), 0600), 0);
  int report_fd = open(report.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(report_fd, 0);
  auto spec = shell(escaping_grandchild("echo $$ $pid > report\n"
                                        "exec sleep 30"));
  spec.cwd = dir.path();
  pid_t orchestrator = fork();
  ASSERT_GE(orchestrator, 0);
  if (orchestrator == 0) {
    orch::make_posix_process_runner()->run(spec, {}, nullptr);
    _exit(0);
  }
  std::string pids;
  pollfd p{report_fd, POLLIN, 0};
  while (pids.find('\n') == std::string::npos
         && poll(&p, 1, static_cast<int>(k_max_test_wait.count())) > 0) {
    char buf[64];
    ssize_t got = read(report_fd, buf, sizeof buf);
    if (got <= 0)
      break;
    pids.append(buf, static_cast<std::size_t>(got));
  }
  close(report_fd);
  ASSERT_FALSE(pids.empty());
  auto [leader, escaped] = two_pids(pids);
  // The agent's parent is the guard; after the orchestrator's death it
  // comes to us (subreaper), and process_gone reaps it.
  std::ifstream stat{"/proc/" + std::to_string(leader) + "/stat"};
  std::string stat_line;
  std::getline(stat, stat_line);
  std::istringstream fields{stat_line.substr(stat_line.rfind(')') + 2)};
  char state = 0;
  pid_t guard = 0;
  fields >> state >> guard;

  ASSERT_EQ(kill(orchestrator, SIGKILL), 0);
  ASSERT_EQ(waitpid(orchestrator, nullptr, 0), orchestrator);
  EXPECT_NE(guard, orchestrator); // the agent was started through a guard
  EXPECT_TRUE(process_gone(guard));
  EXPECT_TRUE(process_gone(leader));
  EXPECT_TRUE(process_gone(escaped));
}

TEST_F(posix_runner, one_serving_guard_runs_call_after_call) {
  // The guard that started the first agent starts the second: no process
  // of its own per call.
  auto first = run(shell("echo $PPID"));
  auto second = run(shell("echo $PPID"));
  ASSERT_TRUE(first.clean_exit());
  ASSERT_TRUE(second.clean_exit());
  EXPECT_EQ(first.out, second.out);
  pid_t guard = std::stoi(first.out);
  EXPECT_NE(guard, getpid());
  auto idle = orch::idle_agent_guards();
  EXPECT_NE(std::find(idle.begin(), idle.end(), guard), idle.end());
  // It is not in the agent's group, nor in ours: neither a Ctrl-C for us
  // nor the agent's own group signals reach it.
  EXPECT_NE(getpgid(guard), getpgrp());
}

TEST_F(posix_runner, a_killed_serving_guard_ends_the_step_and_its_agent) {
  // The guard dies (SIGKILL) while its agent hangs with a helper that left
  // the group but kept the marker: the step ends at once, the agent's group
  // and the marked helper are killed, and the next call gets a new guard.
  temp_dir dir;
  std::string line;
  auto on_line = [&](output_stream, std::string_view l) {
    line = std::string{l};
    auto [leader, helper] = two_pids(line);
    (void)helper;
    ASSERT_EQ(kill(parent_of(leader), SIGKILL), 0);
  };
  auto spec = shell(R"(mkfifo escaped
setsid sh -c 'echo $$ > escaped; exec sleep 30' &
read pid < escaped; echo $$ $pid
exec sleep 30)");
  spec.cwd = dir.path();
  auto result = run(spec, on_line);
  EXPECT_FALSE(result.clean_exit());
  EXPECT_EQ(result.term_signal, SIGKILL);
  EXPECT_LT(result.elapsed, k_fast);
  ASSERT_FALSE(line.empty());
  auto [leader, helper] = two_pids(line);
  EXPECT_TRUE(process_gone(leader));
  EXPECT_TRUE(process_gone(helper));
  auto next = run(shell("echo $PPID"));
  ASSERT_TRUE(next.clean_exit());
  EXPECT_NE(next.out, std::to_string(parent_of(leader)) + "\n");
}

TEST_F(posix_runner, a_stopped_serving_guard_does_not_hang_the_step) {
  // SIGSTOP to the guard while the agent hangs, then a cancel: the stop
  // asks the guard, gets no answer, and kills the group and the guard
  // itself after the backstop.
  orch::cancel_token cancel;
  pid_t leader = 0;
  auto on_line = [&](output_stream, std::string_view l) {
    leader = std::stoi(std::string{l});
    ASSERT_EQ(kill(parent_of(leader), SIGSTOP), 0);
    cancel.cancel();
  };
  auto spec = shell("trap '' TERM; echo $$; exec sleep 30");
  spec.kill_grace = 100ms;
  auto result = run(spec, on_line, &cancel);
  EXPECT_TRUE(result.cancelled);
  EXPECT_EQ(result.term_signal, SIGKILL);
  EXPECT_LT(result.elapsed, std::chrono::milliseconds{6'000});
  ASSERT_GT(leader, 0);
  EXPECT_TRUE(process_gone(leader));
  EXPECT_TRUE(run(shell("true")).clean_exit());
}

TEST_F(posix_runner, without_the_guard_marked_processes_are_still_swept) {
  // The fallback (no guard found): the marker finds a grandchild that left
  // the group but kept its environment.
  setenv("ORCH_AGENT_GUARD", "none", 1);
  temp_dir dir;
  auto spec = shell(R"(mkfifo escaped
setsid sh -c 'echo $$ > escaped; exec sleep 30' &
read pid < escaped; echo $$ $pid)");
  spec.cwd = dir.path();
  line_log lines;
  auto result = run(spec, lines.callback());
  unsetenv("ORCH_AGENT_GUARD");
  EXPECT_TRUE(result.clean_exit());
  ASSERT_EQ(lines.out.size(), 1u);
  auto [leader, escaped] = two_pids(lines.out[0]);
  // No guard: the shell is our child and its own parent is this process.
  EXPECT_EQ(waitpid(leader, nullptr, WNOHANG), -1);
  EXPECT_TRUE(process_gone(escaped));
}

TEST_F(posix_runner, no_zombie_or_stray_child_is_left_after_a_run) {
  auto result = run(shell("echo $$; sleep 30 & echo $!"), {});
  ASSERT_TRUE(result.clean_exit());
  auto newline = result.out.find('\n');
  pid_t leader = std::stoi(result.out.substr(0, newline));
  pid_t grandchild = std::stoi(result.out.substr(newline + 1));
  // The runner reaped the leader: it is not our child any more.
  EXPECT_EQ(waitpid(leader, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
  EXPECT_EQ(kill(leader, 0), -1);
  // The killed grandchild came to us (subreaper) and is reaped here.
  EXPECT_TRUE(process_gone(grandchild));
  // Nothing else of ours is left, neither running nor as a zombie, but
  // the idle agent guards; once they are let go, nothing at all.
  EXPECT_FALSE(has_zombie_child());
  auto idle = orch::idle_agent_guards();
  for (pid_t child : children_of(getpid()))
    EXPECT_NE(std::find(idle.begin(), idle.end(), child), idle.end())
      << "stray child " << child;
  orch::stop_agent_guards(k_max_test_wait);
  EXPECT_EQ(waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

TEST_F(posix_runner, a_throwing_callback_leaves_no_process_behind) {
  pid_t leader = 0;
  auto on_line = [&](output_stream, std::string_view line) {
    leader = std::stoi(std::string{line});
    throw std::runtime_error("callback failed");
  };
  EXPECT_THROW(run(shell("echo $$; exec sleep 30"), on_line),
               std::runtime_error);
  ASSERT_GT(leader, 0);
  EXPECT_EQ(kill(leader, 0), -1); // killed and reaped before the throw left
  EXPECT_EQ(errno, ESRCH);
}

// -- output cap ---------------------------------------------------------------

TEST_F(posix_runner, output_cap_drops_the_excess_and_finishes_fast) {
  constexpr std::size_t cap = 65535; // odd: the last kept line is cut
  constexpr std::size_t out_size = 50u << 20;
  constexpr std::size_t err_size = 1u << 20;
  auto spec = shell("yes | head -c 52428800; yes e | head -c 1048576 >&2");
  spec.output_cap = cap;
  line_log lines;
  auto result = run(spec, lines.callback());
  EXPECT_TRUE(result.clean_exit());
  EXPECT_TRUE(result.truncated);
  EXPECT_EQ(result.dropped_bytes, (out_size - cap) + (err_size - cap));
  EXPECT_EQ(result.out.size(), cap);
  EXPECT_EQ(result.err.size(), cap);
  // Only lines complete within the cap are delivered.
  EXPECT_EQ(lines.out.size(), cap / 2);
  EXPECT_EQ(lines.err.size(), cap / 2);
  EXPECT_EQ(lines.out.back(), "y");
  EXPECT_LT(result.elapsed, k_fast);
}

TEST_F(posix_runner, output_within_the_cap_is_not_truncated) {
  auto spec = shell("printf 'abc\\n'");
  spec.output_cap = 4;
  auto result = run(spec);
  EXPECT_FALSE(result.truncated);
  EXPECT_EQ(result.dropped_bytes, 0u);
  EXPECT_EQ(result.out, "abc\n");
}

// -- cancellation
// ---------------------------------------------------------------

TEST_F(posix_runner, cancel_token_from_another_thread_stops_a_hanging_child) {
  orch::cancel_token cancel;
  std::promise<void> ready;
  std::thread canceller{[&cancel, started = ready.get_future()] {
    if (started.wait_for(k_max_test_wait) == std::future_status::ready)
      cancel.cancel();
  }};
  bool signalled = false;
  auto on_line = [&](output_stream, std::string_view line) {
    if (line == "ready" && !signalled) {
      signalled = true;
      ready.set_value();
    }
  };
  auto result = run(shell("echo ready; exec sleep 30"), on_line, &cancel);
  canceller.join();
  EXPECT_TRUE(result.started);
  EXPECT_TRUE(result.cancelled);
  EXPECT_TRUE(cancel.cancelled());
  EXPECT_EQ(result.expired, deadline_kind::none);
  EXPECT_EQ(result.term_signal, SIGTERM);
  EXPECT_FALSE(result.clean_exit());
  EXPECT_LT(result.elapsed, k_fast);
}

TEST_F(posix_runner, cancelled_token_starts_nothing) {
  orch::cancel_token cancel;
  cancel.cancel();
  cancel.cancel(); // idempotent
  auto result = run(shell("echo should not run"), {}, &cancel);
  EXPECT_FALSE(result.started);
  EXPECT_TRUE(result.cancelled);
  EXPECT_EQ(result.spawn_errno, ECANCELED);
  EXPECT_TRUE(result.out.empty());
}

TEST_F(posix_runner, cancel_token_fd_becomes_readable_once_cancelled) {
  orch::cancel_token cancel;
  pollfd p{cancel.fd(), POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 0);
  EXPECT_FALSE(cancel.cancelled());
  cancel.cancel();
  EXPECT_EQ(poll(&p, 1, 0), 1);
  EXPECT_TRUE(cancel.cancelled());
}

// -- resources and concurrency ------------------------------------------------

TEST_F(posix_runner, leaks_no_descriptor) {
  // The first call starts a serving agent guard that stays, idle, with its
  // socket to us: count from there, then once the guards are stopped.
  orch::stop_agent_guards(k_max_test_wait);
  std::size_t cold = open_descriptor_count();
  EXPECT_TRUE(run(shell("true")).clean_exit());
  std::size_t before = open_descriptor_count();
  auto spec = shell("cat; echo err >&2");
  spec.stdin_data = "in\n";
  EXPECT_TRUE(run(spec).clean_exit());
  process_spec missing;
  missing.argv = {"/nonexistent/program"};
  EXPECT_FALSE(run(missing).started);
  auto expired = shell("exec sleep 30");
  expired.total_deadline = 100ms;
  EXPECT_EQ(run(expired).expired, deadline_kind::total);
  EXPECT_EQ(open_descriptor_count(), before);
  orch::stop_agent_guards(k_max_test_wait);
  EXPECT_EQ(open_descriptor_count(), cold);
}

TEST_F(posix_runner, runs_from_several_threads_at_once) {
  constexpr int n = 8;
  std::vector<process_result> results(n);
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i)
    threads.emplace_back([this, i, &results] {
      auto spec = shell("cat; echo \"$0\"");
      spec.argv.push_back("thread-" + std::to_string(i));
      spec.stdin_data = "in-" + std::to_string(i) + "\n";
      results[i] = run(spec);
    });
  for (auto& thread : threads)
    thread.join();
  for (int i = 0; i < n; ++i) {
    EXPECT_TRUE(results[i].clean_exit()) << i;
    EXPECT_EQ(results[i].out, "in-" + std::to_string(i) + "\nthread-"
                                + std::to_string(i) + "\n");
  }
}

TEST(deadline_kind, to_string_names_every_kind) {
  EXPECT_EQ(orch::to_string(deadline_kind::none), "none");
  EXPECT_EQ(orch::to_string(deadline_kind::first_output), "first_output");
  EXPECT_EQ(orch::to_string(deadline_kind::idle), "idle");
  EXPECT_EQ(orch::to_string(deadline_kind::total), "total");
}

} // namespace
