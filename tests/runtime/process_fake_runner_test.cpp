// Tests of tests/support/fake_process_runner.hpp, the scripted runner the
// higher layers test against.

#include "support/fake_process_runner.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

namespace {

using namespace std::chrono_literals;
using orch::deadline_kind;
using orch::fake_process_runner;
using orch::fake_response;
using orch::output_stream;
using orch::process_spec;

constexpr std::chrono::milliseconds k_max_test_wait{10'000};

process_spec spec_of(std::vector<std::string> argv) {
  process_spec spec;
  spec.argv = std::move(argv);
  spec.env = {"PATH=/usr/bin:/bin"};
  return spec;
}

TEST(fake_process_runner, answers_by_program_and_delivers_lines) {
  fake_process_runner runner;
  fake_response response;
  response.out_lines = {"{\"type\":\"start\"}", "{\"type\":\"end\"}"};
  response.err = "warn 1\nwarn 2";
  response.exit_code = 3;
  runner.on("claude", response);

  std::vector<std::pair<output_stream, std::string>> lines;
  auto result = runner.run(
    spec_of({"/usr/local/bin/claude", "-p"}),
    [&](output_stream stream, std::string_view line) {
      lines.emplace_back(stream, std::string{line});
    },
    nullptr);
  EXPECT_TRUE(result.started);
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_EQ(result.out, "{\"type\":\"start\"}\n{\"type\":\"end\"}\n");
  EXPECT_EQ(result.err, "warn 1\nwarn 2\n");
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0].first, output_stream::out);
  EXPECT_EQ(lines[1].second, "{\"type\":\"end\"}");
  EXPECT_EQ(lines[3],
            std::make_pair(output_stream::err, std::string{"warn 2"}));
}

TEST(fake_process_runner, program_responses_are_used_in_order_last_repeats) {
  fake_process_runner runner;
  fake_response first;
  first.exit_code = 1;
  fake_response second;
  second.exit_code = 2;
  runner.on("codex", first);
  runner.on("codex", second);
  EXPECT_EQ(runner.run(spec_of({"codex"}), {}, nullptr).exit_code, 1);
  EXPECT_EQ(runner.run(spec_of({"codex"}), {}, nullptr).exit_code, 2);
  EXPECT_EQ(runner.run(spec_of({"codex"}), {}, nullptr).exit_code, 2);
}

TEST(fake_process_runner, queue_then_fallback_then_missing_program) {
  fake_process_runner runner;
  fake_response queued;
  queued.out_lines = {"queued"};
  runner.enqueue(queued);
  EXPECT_EQ(runner.run(spec_of({"any"}), {}, nullptr).out, "queued\n");

  auto missing = runner.run(spec_of({"any"}), {}, nullptr);
  EXPECT_FALSE(missing.started);
  EXPECT_EQ(missing.spawn_errno, ENOENT);

  fake_response fallback;
  fallback.exit_code = 9;
  runner.set_fallback(fallback);
  EXPECT_EQ(runner.run(spec_of({"any"}), {}, nullptr).exit_code, 9);
}

TEST(fake_process_runner, records_every_spec) {
  fake_process_runner runner;
  runner.set_fallback({});
  auto spec = spec_of({"gemini", "--yolo"});
  spec.stdin_data = "prompt";
  spec.cwd = "/work/tree";
  runner.run(spec, {}, nullptr);
  runner.run(spec_of({"other"}), {}, nullptr);
  ASSERT_EQ(runner.call_count(), 2u);
  auto first = runner.calls().front();
  EXPECT_EQ(first.argv, (std::vector<std::string>{"gemini", "--yolo"}));
  EXPECT_EQ(first.env, std::vector<std::string>{"PATH=/usr/bin:/bin"});
  EXPECT_EQ(first.stdin_data, std::optional<std::string>{"prompt"});
  EXPECT_EQ(first.cwd, "/work/tree");
  EXPECT_EQ(runner.last_call().argv.front(), "other");
}

TEST(fake_process_runner, records_specs_from_several_threads) {
  fake_process_runner runner;
  runner.set_fallback({});
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&runner] {
      for (int j = 0; j < 50; ++j)
        runner.run(spec_of({"agent"}), {}, nullptr);
    });
  for (auto& thread : threads)
    thread.join();
  EXPECT_EQ(runner.call_count(), 400u);
}

TEST(fake_process_runner, hook_can_write_files_like_an_agent) {
  auto dir = std::filesystem::temp_directory_path() / "orch-fake-runner-hook";
  std::filesystem::create_directories(dir);
  fake_process_runner runner;
  runner.set_fallback({});
  runner.set_hook([](const process_spec& spec) {
    std::ofstream{spec.cwd + "/written.txt"} << "by the agent";
  });
  auto spec = spec_of({"claude"});
  spec.cwd = dir.string();
  EXPECT_TRUE(runner.run(spec, {}, nullptr).clean_exit());
  std::ifstream in{dir / "written.txt"};
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "by the agent");
  std::filesystem::remove_all(dir);
}

TEST(fake_process_runner, scripted_failures_are_reported) {
  fake_process_runner runner;
  fake_response expired;
  expired.expired = deadline_kind::idle;
  runner.on("slow", expired);
  fake_response cancelled;
  cancelled.cancelled = true;
  runner.on("stopped", cancelled);
  fake_response unstartable;
  unstartable.started = false;
  unstartable.spawn_errno = EACCES;
  runner.on("broken", unstartable);

  auto slow = runner.run(spec_of({"slow"}), {}, nullptr);
  EXPECT_EQ(slow.expired, deadline_kind::idle);
  EXPECT_EQ(slow.term_signal, SIGTERM);
  EXPECT_EQ(slow.exit_code, -1);
  EXPECT_FALSE(slow.clean_exit());
  auto stopped = runner.run(spec_of({"stopped"}), {}, nullptr);
  EXPECT_TRUE(stopped.cancelled);
  EXPECT_FALSE(stopped.clean_exit());
  auto broken = runner.run(spec_of({"broken"}), {}, nullptr);
  EXPECT_FALSE(broken.started);
  EXPECT_EQ(broken.spawn_errno, EACCES);
}

TEST(fake_process_runner, output_cap_applies_to_scripted_lines) {
  fake_process_runner runner;
  fake_response response;
  response.out_lines = {"12345", "67890"};
  runner.on("chatty", response);
  auto spec = spec_of({"chatty"});
  spec.output_cap = 8;
  std::vector<std::string> lines;
  auto result = runner.run(
    spec,
    [&](output_stream, std::string_view line) {
      lines.emplace_back(line);
    },
    nullptr);
  EXPECT_TRUE(result.truncated);
  EXPECT_EQ(result.out, "12345\n67");
  EXPECT_EQ(result.dropped_bytes, 4u);
  EXPECT_EQ(lines, std::vector<std::string>{"12345"});
}

TEST(fake_process_runner, hanging_response_ends_on_cancel) {
  fake_process_runner runner;
  fake_response hang;
  hang.hang = true;
  hang.out_lines = {"working"};
  runner.on("agent", hang);
  orch::cancel_token cancel;
  std::promise<void> started;
  std::thread canceller{[&cancel, ready = started.get_future()] {
    if (ready.wait_for(k_max_test_wait) == std::future_status::ready)
      cancel.cancel();
  }};
  auto result = runner.run(
    spec_of({"agent"}),
    [&](output_stream, std::string_view) {
      started.set_value();
    },
    &cancel);
  canceller.join();
  EXPECT_TRUE(result.cancelled);
  EXPECT_EQ(result.term_signal, SIGTERM);
}

TEST(fake_process_runner, hanging_response_ends_at_the_total_deadline) {
  fake_process_runner runner;
  fake_response hang;
  hang.hang = true;
  runner.on("agent", hang);
  auto spec = spec_of({"agent"});
  spec.total_deadline = 50ms;
  auto result = runner.run(spec, {}, nullptr);
  EXPECT_EQ(result.expired, deadline_kind::total);
  EXPECT_GE(result.elapsed, 50ms);
}

} // namespace
