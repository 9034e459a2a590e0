// The metrics registry: the seed's family names, labels, values after
// recording, the process counters exposed through it, hostile label values,
// and `promtool check metrics` on the rendered text.

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include <stdlib.h>
#include <sys/wait.h>

#include "runtime/counters.hpp"
#include "runtime/metrics.hpp"

namespace orch {
namespace {

namespace fs = std::filesystem;

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

class metrics_test : public ::testing::Test {
protected:
  void SetUp() override {
    counters().reset();
  }
  void TearDown() override {
    counters().reset();
  }
};

TEST_F(metrics_test, every_seed_family_is_rendered_before_anything_happened) {
  metrics_registry m;
  auto text = m.render();
  for (const char* name :
       {"orchestrator_tasks_total", "orchestrator_task_duration_seconds",
        "orchestrator_task_failures_total", "orchestrator_task_success_rate",
        "orchestrator_agent_calls_total", "orchestrator_agent_errors_total",
        "orchestrator_agent_response_time_seconds",
        "orchestrator_agent_availability", "orchestrator_cache_hits_total",
        "orchestrator_cache_misses_total", "orchestrator_active_sessions",
        "orchestrator_memory_usage_bytes", "orchestrator_agent_tokens_total",
        "orchestrator_agent_cost_usd_total", "orchestrator_retries_total",
        "orchestrator_breaker_transitions_total",
        "orchestrator_rate_limiter_decisions_total"})
    EXPECT_TRUE(contains(text, std::string{"# TYPE "} + name + " "))
      << name << " missing in:\n"
      << text;
  EXPECT_TRUE(contains(text, "orchestrator_active_sessions 0\n")) << text;
  EXPECT_TRUE(contains(text, "orchestrator_cache_corrupt_total 0\n")) << text;
}

TEST_F(metrics_test, tasks_are_counted_by_workflow_status_and_failure_kind) {
  metrics_registry m;
  m.record_task({"default", "converged", true, 12.5, ""});
  m.record_task({"default", "failed", false, 3, "timeout_idle"});
  m.record_task({"default", "cancelled", false, 1, "cancelled"});
  m.record_task({"quick", "completed", true, 0.2, ""});
  auto text = m.render();
  EXPECT_TRUE(contains(
    text, "orchestrator_tasks_total{status=\"converged\",workflow=\"default\"} "
          "1\n"))
    << text;
  EXPECT_TRUE(contains(
    text, "orchestrator_task_failures_total{kind=\"timeout_idle\",workflow="
          "\"default\"} 1\n"))
    << text;
  EXPECT_TRUE(contains(text, "orchestrator_task_failures_total{kind="
                             "\"cancelled\",workflow=\"default\"} 1\n"))
    << text;
  EXPECT_FALSE(contains(text, "orchestrator_task_failures_total{kind="
                              "\"run_error\""))
    << text;
  // 1 of 3 runs of default went well; quick's only run did.
  EXPECT_TRUE(contains(text, "orchestrator_task_success_rate{workflow="
                             "\"default\"} 0.333"))
    << text;
  EXPECT_TRUE(
    contains(text, "orchestrator_task_success_rate{workflow=\"quick\"} 1\n"))
    << text;
  EXPECT_TRUE(contains(text, "orchestrator_task_duration_seconds_count{"
                             "workflow=\"default\"} 3\n"))
    << text;
  EXPECT_TRUE(contains(text, "orchestrator_task_duration_seconds_sum{"
                             "workflow=\"default\"} 16.5\n"))
    << text;
}

TEST_F(metrics_test, agent_calls_carry_errors_times_tokens_and_cost) {
  metrics_registry m;
  agent_call_sample ok;
  ok.agent = "claude";
  ok.ok = true;
  ok.seconds = 4;
  ok.input_tokens = 1000;
  ok.output_tokens = 200;
  ok.cached_tokens = 600;
  ok.cost_usd = 0.25;
  m.record_agent_call(ok);
  agent_call_sample bad;
  bad.agent = "claude";
  bad.failure = "rate_limited";
  bad.seconds = 0.5;
  m.record_agent_call(bad);
  m.set_agent_available("claude", true);
  m.set_agent_available("gemini", false);
  auto text = m.render();
  EXPECT_TRUE(
    contains(text, "orchestrator_agent_calls_total{agent=\"claude\"} 2\n"))
    << text;
  EXPECT_TRUE(contains(text, "orchestrator_agent_errors_total{agent=\"claude\""
                             ",kind=\"rate_limited\"} 1\n"))
    << text;
  EXPECT_TRUE(contains(text, "orchestrator_agent_tokens_total{agent=\"claude\""
                             ",type=\"input\"} 1000\n"))
    << text;
  EXPECT_TRUE(contains(text, "orchestrator_agent_tokens_total{agent=\"claude\""
                             ",type=\"cached\"} 600\n"))
    << text;
  EXPECT_TRUE(contains(
    text, "orchestrator_agent_cost_usd_total{agent=\"claude\"} 0.25\n"))
    << text;
  EXPECT_TRUE(contains(text, "orchestrator_agent_response_time_seconds_count{"
                             "agent=\"claude\"} 2\n"))
    << text;
  EXPECT_TRUE(contains(text, "orchestrator_agent_response_time_seconds_bucket{"
                             "agent=\"claude\",le=\"1\"} 1\n"))
    << text;
  EXPECT_TRUE(
    contains(text, "orchestrator_agent_availability{agent=\"gemini\"} 0\n"))
    << text;
  EXPECT_TRUE(
    contains(text, "orchestrator_agent_availability{agent=\"claude\"} 1\n"))
    << text;
}

TEST_F(metrics_test, process_counters_become_labelled_families) {
  counters().add(counter::cache_hits, "codex", 3);
  counters().add(counter::cache_misses, "codex");
  counters().add(counter::retries, "claude", 2);
  counters().add(counter::breaker_opened, "claude");
  counters().add(counter::breaker_closed, "claude");
  counters().add(counter::limiter_refused, "alice");
  counters().add(counter::session_messages, "followup");
  counters().add("brand_new-thing", "x");
  metrics_registry m;
  auto text = m.render();
  EXPECT_TRUE(
    contains(text, "orchestrator_cache_hits_total{agent=\"codex\"} 3\n"))
    << text;
  EXPECT_TRUE(
    contains(text, "orchestrator_cache_misses_total{agent=\"codex\"} 1\n"))
    << text;
  EXPECT_TRUE(
    contains(text, "orchestrator_retries_total{agent=\"claude\"} 2\n"))
    << text;
  EXPECT_TRUE(contains(text, "orchestrator_breaker_transitions_total{agent="
                             "\"claude\",state=\"open\"} 1\n"))
    << text;
  EXPECT_TRUE(contains(text, "orchestrator_breaker_transitions_total{agent="
                             "\"claude\",state=\"closed\"} 1\n"))
    << text;
  EXPECT_TRUE(contains(text, "orchestrator_rate_limiter_decisions_total{"
                             "decision=\"refused\",user=\"alice\"} 1\n"))
    << text;
  EXPECT_TRUE(contains(
    text, "orchestrator_session_messages_total{kind=\"followup\"} 1\n"))
    << text;
  EXPECT_TRUE(
    contains(text, "orchestrator_brand_new_thing_total{label=\"x\"} 1\n"))
    << text;
  // One HELP/TYPE per family, even when several counters share it.
  auto first = text.find("# TYPE orchestrator_breaker_transitions_total");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(
    text.find("# TYPE orchestrator_breaker_transitions_total", first + 1),
    std::string::npos);
}

TEST_F(metrics_test, running_and_sessions_gauges_never_go_negative) {
  metrics_registry m;
  m.add_running(1);
  m.add_running(1);
  m.add_running(-1);
  m.set_active_sessions(3);
  auto text = m.render();
  EXPECT_TRUE(contains(text, "orchestrator_tasks_running 1\n")) << text;
  EXPECT_TRUE(contains(text, "orchestrator_active_sessions 3\n")) << text;
  m.add_running(-5);
  m.set_active_sessions(-2);
  text = m.render();
  EXPECT_TRUE(contains(text, "orchestrator_tasks_running 0\n")) << text;
  EXPECT_TRUE(contains(text, "orchestrator_active_sessions 0\n")) << text;
}

TEST_F(metrics_test, memory_gauge_reads_the_resident_set) {
  auto rss = resident_memory_bytes();
  EXPECT_GT(rss, 1024 * 1024);
  metrics_registry m;
  auto text = m.render();
  auto at = text.find("\norchestrator_memory_usage_bytes ");
  ASSERT_NE(at, std::string::npos) << text;
  EXPECT_GT(std::stod(text.substr(at + 33)), 1024.0 * 1024.0);
}

TEST_F(metrics_test, label_values_are_valid_utf8_and_bounded) {
  EXPECT_EQ(metric_label("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(metric_label("a\xFF"
                         "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(metric_label("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(metric_label(std::string(500, 'x')), std::string(128, 'x'));
  // A cut never splits a character.
  std::string euros;
  for (int i = 0; i < 60; ++i)
    euros += "\xE2\x82\xAC";
  EXPECT_EQ(metric_label(euros).size(), 126U);
}

/// Runs `promtool check metrics` on `text`; returns its exit status and
/// sets `output` to what it printed.
int promtool_check(const std::string& text, std::string& output) {
  auto file = fs::temp_directory_path()
              / ("orch-metrics-" + std::to_string(::getpid()) + ".txt");
  {
    std::ofstream out{file, std::ios::binary};
    out << text;
  }
  auto cmd = "promtool check metrics < '" + file.string() + "' 2>&1";
  auto* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr)
    return -1;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0)
    output.append(buf.data(), n);
  auto status = ::pclose(p);
  fs::remove(file);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(metrics_test, promtool_accepts_the_exposition_with_hostile_labels) {
  counters().add(counter::cache_hits, "a\"b\\c\nd");
  counters().add(counter::limiter_admitted, "us\xFF"
                                            "er");
  metrics_registry m;
  m.record_task({"wf \"quoted\"\n", "failed", false, 2, "crashed"});
  agent_call_sample call;
  call.agent = "codex";
  call.seconds = 1;
  call.failure = "transient";
  m.record_agent_call(call);
  m.set_agent_available("codex", true);
  std::string output;
  auto rc = promtool_check(m.render(), output);
  // 127: promtool is not installed (scripts/common.sh installs `prometheus`).
  ASSERT_NE(rc, 127) << "promtool not found: " << output;
  EXPECT_EQ(rc, 0) << output << "\n--- exposition:\n" << m.render();
}

} // namespace
} // namespace orch
