// The built `ai-orchestrator` binary end to end: `run --json` on the demo
// agents against its documented shape, `--dry-run`, exit codes for bad
// input, and Ctrl-C.

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "adapters/adapter.hpp"
#include "runtime/process.hpp"

extern char** environ;

namespace orch {
namespace {

namespace fs = std::filesystem;

/// The one bound on every wait in these tests.
constexpr auto k_max_test_wait = std::chrono::seconds{60};

class cli_test : public ::testing::Test {
protected:
  cli_test() {
    dir_
      = fs::temp_directory_path()
        / ("orch-cli-test-" + std::to_string(::getpid()) + "-"
           + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~cli_test() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  /// Runs the CLI with `args`, in `dir_`, and returns what came of it.
  process_result cli(std::vector<std::string> args) {
    process_spec spec;
    spec.argv = {ORCH_CLI_BINARY};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.env = current_environment();
    spec.env.push_back("NO_COLOR=1");
    // A state directory of the test's own: no log lines or cached steps of
    // the user's, and none left behind.
    spec.env.erase(std::remove_if(spec.env.begin(), spec.env.end(),
                                  [](const std::string& e) {
                                    return e.rfind("XDG_STATE_HOME=", 0) == 0;
                                  }),
                   spec.env.end());
    spec.env.push_back("XDG_STATE_HOME=" + (dir_ / "state").string());
    spec.cwd = dir_.string();
    spec.total_deadline = k_max_test_wait;
    return make_posix_process_runner()->run(spec, {}, nullptr);
  }

  std::string demo_config() const {
    return std::string{ORCH_SOURCE_DIR} + "/examples/demo.yaml";
  }

  /// Returns the processes whose environment holds the entry `entry`.
  static std::vector<pid_t> processes_with_env(const std::string& entry) {
    std::vector<pid_t> out;
    std::error_code ec;
    for (auto& dir : fs::directory_iterator{"/proc", ec}) {
      auto name = dir.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos)
        continue;
      std::ifstream in{dir.path() / "environ"};
      std::string item;
      while (std::getline(in, item, '\0'))
        if (item == entry) {
          out.push_back(std::atoi(name.c_str()));
          break;
        }
    }
    return out;
  }

  /// Starts a run whose agent hangs ignoring SIGTERM, sends `sig` to the
  /// CLI once the agent runs, and checks the CLI exits 130 within the
  /// agent's grace period (plus a margin far below the 10 s after which the
  /// CLI would give the run up), no process of the run is left and the
  /// manifest says cancelled.
  void interrupt_a_run(int sig) {
    auto fifo = dir_ / "pid.fifo";
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    auto cfg = dir_ / "hang.yaml";
    std::ofstream{cfg} << "agents:\n"
                          "  hang:\n"
                          "    adapter: command\n"
                          "    command: " ORCH_SOURCE_DIR
                          "/tests/fakes/hang-agent\n"
                          "    env_set: {HANG_FIFO: \""
                       << fifo.string()
                       << "\"}\n"
                          "workflows:\n"
                          "  wf: [{agent: hang, task: implement}]\n"
                          "settings: {kill_grace: 0.2}\n";
    auto ws = dir_ / "ws";
    std::vector<std::string> args
      = {ORCH_CLI_BINARY, "run", "wait",     "--config", cfg.string(),
         "--workflow",    "wf",  "--output", ws.string()};
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t cli_pid = 0;
    ASSERT_EQ(
      posix_spawn(&cli_pid, argv[0], &fa, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    // glibc 2.36's <sys/pidfd.h> lacks extern "C": call the kernel directly.
    int pidfd = static_cast<int>(syscall(SYS_pidfd_open, cli_pid, 0));
    ASSERT_GE(pidfd, 0);
    // Blocks until the agent announces itself: the run is under way.
    int fd = open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
    ASSERT_GE(fd, 0);
    pollfd pfd{fd, POLLIN, 0};
    ASSERT_EQ(poll(&pfd, 1,
                   static_cast<int>(
                     std::chrono::milliseconds{k_max_test_wait}.count())),
              1);
    char buf[32] = {};
    ASSERT_GT(read(fd, buf, sizeof(buf) - 1), 0);
    close(fd);
    pid_t agent_pid = std::atoi(buf);
    ASSERT_GT(agent_pid, 0);
    auto signalled_at = std::chrono::steady_clock::now();
    ASSERT_EQ(kill(cli_pid, sig), 0);
    pollfd exit_pfd{pidfd, POLLIN, 0};
    ASSERT_EQ(poll(&exit_pfd, 1,
                   static_cast<int>(
                     std::chrono::milliseconds{k_max_test_wait}.count())),
              1)
      << "the CLI did not exit after signal " << sig;
    auto took = std::chrono::steady_clock::now() - signalled_at;
    // kill_grace 0.2 s, then SIGKILL; the margin covers the guard's sweep
    // and a loaded machine.
    EXPECT_LT(took, std::chrono::seconds{5});
    close(pidfd);
    int status = 0;
    ASSERT_EQ(waitpid(cli_pid, &status, 0), cli_pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 130);
    // The agent ignored SIGTERM; it must be gone all the same.
    EXPECT_EQ(kill(agent_pid, 0), -1);
    EXPECT_EQ(errno, ESRCH);
    // Nor any process of the run (the agent's `sleep` included): they all
    // carry the test's HANG_FIFO in their environment.
    EXPECT_EQ(processes_with_env("HANG_FIFO=" + fifo.string()),
              std::vector<pid_t>{});
    std::ifstream in{ws / ".orchestrator" / "manifest.json"};
    auto manifest = nlohmann::json::parse(in, nullptr, false);
    ASSERT_FALSE(manifest.is_discarded());
    EXPECT_EQ(manifest["status"], "cancelled");
  }

  fs::path dir_;
};

TEST_F(cli_test, run_json_on_the_demo_agents_has_the_documented_shape) {
  auto ws = dir_ / "ws";
  auto res = cli({"run", "Create a REST API for blog posts", "--config",
                  demo_config(), "--output", ws.string(), "--json"});
  ASSERT_EQ(res.exit_code, 0) << res.err;
  auto doc = nlohmann::json::parse(res.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << res.out;
  for (auto key :
       {"run_id", "workflow", "task", "status", "message", "workspace",
        "duration_ms", "usage", "iterations", "findings", "files"})
    EXPECT_TRUE(doc.contains(key)) << key;
  EXPECT_EQ(doc["workflow"], "default");
  EXPECT_EQ(doc["status"], "converged");
  EXPECT_EQ(doc["workspace"], ws.string());
  EXPECT_TRUE(doc["findings"].empty());
  ASSERT_GE(doc["iterations"].size(), 2u);
  for (auto& it : doc["iterations"]) {
    EXPECT_TRUE(it["iteration"].is_number_integer());
    ASSERT_TRUE(it["steps"].is_array());
    for (auto& step : it["steps"]) {
      for (auto key :
           {"step", "agent", "task", "status", "cached", "failure", "message",
            "exit_code", "session_id", "duration_ms", "usage", "findings",
            "files", "refused", "output_truncated", "output"})
        EXPECT_TRUE(step.contains(key)) << key;
      EXPECT_EQ(step["status"], "ok");
      for (auto key :
           {"input_tokens", "output_tokens", "cached_tokens", "cost_usd"})
        EXPECT_TRUE(step["usage"].contains(key)) << key;
    }
  }
  // Findings shrink each round and the files really exist.
  auto first = doc["iterations"][0]["open_findings"].get<int>();
  auto last = doc["iterations"].back()["open_findings"].get<int>();
  EXPECT_GT(first, last);
  EXPECT_EQ(last, 0);
  ASSERT_FALSE(doc["files"].empty());
  for (auto& f : doc["files"])
    EXPECT_TRUE(fs::exists(ws / f.get<std::string>())) << f;
  // The process's non-zero counters (none in a plain run), in --json only.
  ASSERT_TRUE(doc.contains("counters"));
  EXPECT_TRUE(doc["counters"].is_object());
  doc.erase("counters");
  // The manifest holds the same document otherwise.
  std::ifstream in{ws / ".orchestrator" / "manifest.json"};
  auto manifest = nlohmann::json::parse(in, nullptr, false);
  ASSERT_FALSE(manifest.is_discarded());
  EXPECT_EQ(manifest, doc);
}

TEST_F(cli_test, dry_run_prints_each_step_and_writes_nothing) {
  auto ws = dir_ / "never";
  auto res = cli({"run", "Add error handling", "--config", demo_config(),
                  "--output", ws.string(), "--dry-run"});
  ASSERT_EQ(res.exit_code, 0) << res.err;
  EXPECT_NE(res.out.find("Step 1/3"), std::string::npos) << res.out;
  EXPECT_NE(res.out.find("demo-codex"), std::string::npos);
  EXPECT_NE(res.out.find("argv:"), std::string::npos);
  EXPECT_FALSE(fs::exists(ws));
  EXPECT_FALSE(fs::exists(dir_ / "workspace"));
}

TEST_F(cli_test, bad_input_gets_a_clear_error_and_exit_code_2) {
  auto empty = cli({"run", "   ", "--config", demo_config()});
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_NE(empty.err.find("empty"), std::string::npos) << empty.err;

  auto unknown
    = cli({"run", "x", "--workflow", "nope", "--config", demo_config()});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("unknown workflow 'nope'"), std::string::npos)
    << unknown.err;

  // Over the default limit of 100000 bytes, under Linux's 128 KiB per
  // argument.
  std::string huge(100001, 'x');
  auto big = cli({"run", huge, "--config", demo_config()});
  EXPECT_EQ(big.exit_code, 2);
  EXPECT_NE(big.err.find("max_task_chars"), std::string::npos) << big.err;

  auto bad_flag = cli({"run", "x", "--no-such-flag"});
  EXPECT_EQ(bad_flag.exit_code, 2);
  EXPECT_FALSE(fs::exists(dir_ / "workspace"));
}

TEST_F(cli_test, a_workflow_whose_agents_are_missing_exits_3_naming_them) {
  auto cfg = dir_ / "missing.yaml";
  std::ofstream{cfg} << "agents:\n"
                        "  codex: {command: no-such-codex-binary}\n"
                        "  gemini: {command: no-such-gemini-binary}\n"
                        "workflows:\n"
                        "  default:\n"
                        "    - {agent: codex, task: implement}\n"
                        "    - {agent: gemini, task: review}\n";
  auto res = cli({"run", "x", "--config", cfg.string()});
  EXPECT_EQ(res.exit_code, 3);
  EXPECT_NE(res.err.find("codex"), std::string::npos) << res.err;
  EXPECT_NE(res.err.find("gemini"), std::string::npos);
  EXPECT_NE(res.err.find("npm install -g @openai/codex"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_ / "workspace"));
}

TEST_F(cli_test, closed_standard_streams_do_not_leak_into_files) {
  auto ws = dir_ / "ws";
  std::vector<std::string> args = {ORCH_CLI_BINARY, "run",         "x",
                                   "--config",      demo_config(), "--workflow",
                                   "quick",         "--output",    ws.string()};
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addclose(&fa, 0);
  posix_spawn_file_actions_addclose(&fa, 1);
  posix_spawn_file_actions_addclose(&fa, 2);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  ASSERT_GE(pidfd, 0);
  pollfd pfd{pidfd, POLLIN, 0};
  ASSERT_EQ(
    poll(&pfd, 1,
         static_cast<int>(std::chrono::milliseconds{k_max_test_wait}.count())),
    1);
  close(pidfd);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  std::ifstream in{ws / ".orchestrator" / "manifest.json"};
  auto manifest = nlohmann::json::parse(in, nullptr, false);
  ASSERT_FALSE(manifest.is_discarded());
  EXPECT_EQ(manifest["status"], "completed");
}

TEST_F(cli_test, ctrl_c_kills_the_agents_writes_the_manifest_and_exits_130) {
  interrupt_a_run(SIGINT);
}

TEST_F(cli_test, a_closed_terminal_stops_the_agents_like_ctrl_c) {
  interrupt_a_run(SIGHUP);
}

TEST_F(cli_test, sigterm_stops_the_agents_like_ctrl_c) {
  interrupt_a_run(SIGTERM);
}

} // namespace
} // namespace orch
