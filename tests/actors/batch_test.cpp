// The batch actor against a fake coordinator that speaks coordinator_actor
// (what a pool of worker nodes will be): bounded concurrency, one line per
// task in completion order, refusals and lost results as failed lines, and a
// cancel that stops submitting and writes no line for the cancelled runs.
// Deterministic: CAF's test coordinator, the fake answers when told.

#include <fcntl.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "actors/batch.hpp"
#include "actors/system_config.hpp"
#include "support/temp_tree.hpp"

namespace orch {
namespace {

/// What the fake coordinator saw and holds.
struct fake_log {
  std::vector<run_spec> submitted;
  std::vector<std::string> cancelled;
  /// Result requests not answered yet, oldest first.
  std::deque<std::pair<std::string, caf::typed_response_promise<run_result>>>
    waiting;
  size_t most_waiting = 0;
};

struct fake_state {
  static inline const char* name = "test.fake_coordinator";
  std::shared_ptr<fake_log> log;
  int next = 0;
};

/// Tasks whose text says "refuse" are refused at submit.
coordinator_actor::behavior_type
fake_coordinator(coordinator_actor::stateful_pointer<fake_state> self,
                 std::shared_ptr<fake_log> log) {
  self->state.log = std::move(log);
  return {
    [=](atom::submit, run_spec& spec) -> caf::result<std::string> {
      auto& st = self->state;
      st.log->submitted.push_back(spec);
      if (spec.task.find("refuse") != std::string::npos)
        return caf::make_error(errc::agent_unavailable, "agent x is missing");
      return "run-" + std::to_string(st.next++);
    },
    [=](atom::result, const std::string& id) -> caf::result<run_result> {
      auto& log = *self->state.log;
      auto rp = self->make_response_promise<run_result>();
      log.waiting.emplace_back(id, rp);
      log.most_waiting = std::max(log.most_waiting, log.waiting.size());
      return rp;
    },
    [=](atom::list) {
      return std::vector<run_info>{};
    },
    [=](atom::status, const std::string&) -> caf::result<run_info> {
      return caf::make_error(errc::unknown_run);
    },
    [=](atom::cancel, const std::string& id) {
      self->state.log->cancelled.push_back(id);
      return true;
    },
    [=](atom::subscribe, const std::string&, uint64_t, progress_sink) {
      // nop
    },
    [=](atom::unsubscribe, const std::string&, progress_sink) {
      // nop
    },
    // The test's "answer the oldest result request" (a promise is
    // delivered from inside the actor): `ok` says completed or failed,
    // `text` "cancelled" a cancelled run, `iteration` the failure kind.
    [=](atom::progress, progress_event& ev) {
      auto& log = *self->state.log;
      if (log.waiting.empty())
        return;
      auto [id, rp] = log.waiting.front();
      log.waiting.pop_front();
      auto kind = static_cast<failure_kind>(ev.iteration);
      auto status = ev.text == "cancelled" ? run_status::cancelled
                    : ev.ok                ? run_status::completed
                                           : run_status::failed;
      run_result res;
      res.run_id = id;
      res.status = status;
      iteration_record it;
      step_result step;
      step.outcome.ok = kind == failure_kind::none;
      step.outcome.failure = kind;
      it.steps.push_back(step);
      res.iterations.push_back(it);
      rp.deliver(std::move(res));
    },
    [=](atom::node_info) {
      return std::vector<node_report>{};
    },
  };
}

/// An answer for the fake: see its progress handler.
struct answer_spec {
  run_status status;
  failure_kind kind = failure_kind::none;
};

answer_spec result_of(const std::string&, run_status status,
                      failure_kind kind = failure_kind::none) {
  return {status, kind};
}

class batch_test : public test::temp_tree {
protected:
  batch_test()
    : cfg_{true}, sys_{cfg_}, sched_{
                                dynamic_cast<caf::scheduler::test_coordinator&>(
                                  sys_.scheduler())} {
    // nop
  }

  batch_actor start(const std::string& input, size_t concurrency) {
    test::write_text(base_ / "in.jsonl", input);
    log_ = std::make_shared<fake_log>();
    coord_ = sys_.spawn(fake_coordinator, log_);
    batch_deps deps;
    deps.coordinator = coord_;
    deps.concurrency = concurrency;
    std::string error;
    auto fd = open_batch_input((base_ / "in.jsonl").string(), error);
    deps.source = std::make_shared<batch_task_source>(std::move(fd),
                                                      batch_task_limits{});
    resume_scan scan;
    deps.out = jsonl_appender::open((base_ / "out.jsonl").string(), false, {},
                                    scan, error);
    EXPECT_TRUE(deps.out) << error;
    deps.default_workflow = "wf";
    // Spawned scheduled, not detached: the test coordinator runs it.
    auto batch = sys_.spawn(batch_impl, std::move(deps));
    done_ = std::make_shared<std::optional<batch_stats>>();
    auto done = done_;
    sys_.spawn([batch, done](caf::event_based_actor* self) {
      self->request(batch, caf::infinite, atom::run_task_v)
        .then([done](batch_stats& s) {
          *done = s;
        });
    });
    sched_.run();
    return batch;
  }

  /// Answers the oldest waiting result request.
  void answer(answer_spec a) {
    ASSERT_FALSE(log_->waiting.empty());
    progress_event ev;
    ev.ok = a.status == run_status::completed;
    ev.text = a.status == run_status::cancelled ? "cancelled" : "";
    ev.iteration = static_cast<int32_t>(a.kind);
    caf::anon_send(coord_, atom::progress_v, std::move(ev));
    sched_.run();
  }

  std::vector<nlohmann::json> lines() {
    std::vector<nlohmann::json> out;
    std::ifstream in{base_ / "out.jsonl"};
    std::string line;
    while (std::getline(in, line))
      out.push_back(nlohmann::json::parse(line));
    return out;
  }

  ~batch_test() override {
    caf::anon_send_exit(coord_, caf::exit_reason::user_shutdown);
    sched_.run();
  }

  system_config cfg_;
  caf::actor_system sys_;
  caf::scheduler::test_coordinator& sched_;
  std::shared_ptr<fake_log> log_;
  coordinator_actor coord_;
  std::shared_ptr<std::optional<batch_stats>> done_;
};

std::string tasks(int n) {
  std::string out;
  for (int i = 0; i < n; ++i)
    out += R"({"id":"t)" + std::to_string(i) + R"(","task":"task )"
           + std::to_string(i) + "\"}\n";
  return out;
}

TEST_F(batch_test, keeps_at_most_concurrency_runs_in_flight) {
  start(tasks(10), 3);
  EXPECT_EQ(log_->waiting.size(), 3u);
  int answered = 0;
  while (!log_->waiting.empty()) {
    answer(result_of(
      "", answered % 4 == 1 ? run_status::failed : run_status::completed,
      answered % 4 == 1 ? failure_kind::timeout_total : failure_kind::none));
    ++answered;
  }
  EXPECT_EQ(answered, 10);
  EXPECT_EQ(log_->most_waiting, 3u);
  ASSERT_EQ(log_->submitted.size(), 10u);
  EXPECT_EQ(log_->submitted[0].workflow, "wf");
  ASSERT_TRUE(*done_);
  EXPECT_EQ((*done_)->succeeded, 7u);
  EXPECT_EQ((*done_)->failed, 3u);
  EXPECT_FALSE((*done_)->stopped);
  auto out = lines();
  ASSERT_EQ(out.size(), 10u);
  // In completion order, which here is submission order.
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i]["id"], "t" + std::to_string(i));
    EXPECT_EQ(out[i]["run_id"], "run-" + std::to_string(i));
    EXPECT_EQ(out[i]["failure"], i % 4 == 1 ? "timeout_total" : "none");
  }
}

TEST_F(batch_test, a_refused_task_gets_a_failed_line_with_the_reason) {
  start(R"({"id":"a","task":"please refuse"})"
        "\n"
        R"({"id":"b","task":"fine","workflow":"other"})"
        "\n",
        4);
  ASSERT_EQ(log_->waiting.size(), 1u);
  EXPECT_EQ(log_->submitted[1].workflow, "other");
  answer(result_of("", run_status::completed));
  ASSERT_TRUE(*done_);
  EXPECT_EQ((*done_)->refused, 1u);
  auto out = lines();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0]["id"], "a");
  EXPECT_TRUE(out[0]["run_id"].is_null());
  EXPECT_EQ(out[0]["status"], "failed");
  EXPECT_EQ(out[0]["failure"], "agent_unavailable");
  EXPECT_EQ(out[0]["error"], "agent x is missing");
  EXPECT_EQ(out[1]["id"], "b");
}

TEST_F(batch_test, a_cancel_stops_submitting_and_drops_the_cancelled_runs) {
  auto batch = start(tasks(10), 3);
  answer(result_of("", run_status::completed));
  ASSERT_EQ(log_->waiting.size(), 3u);
  caf::anon_send(batch, atom::cancel_v);
  sched_.run();
  // Each run in flight was cancelled by id; nothing more was submitted.
  EXPECT_EQ(log_->cancelled,
            (std::vector<std::string>{"run-1", "run-2", "run-3"}));
  EXPECT_EQ(log_->submitted.size(), 4u);
  // One ended on its own meanwhile: its line is kept.
  answer(result_of("", run_status::completed));
  answer(result_of("", run_status::cancelled, failure_kind::cancelled));
  EXPECT_FALSE(*done_);
  answer(result_of("", run_status::cancelled, failure_kind::cancelled));
  ASSERT_TRUE(*done_);
  EXPECT_TRUE((*done_)->stopped);
  EXPECT_EQ((*done_)->succeeded, 2u);
  auto out = lines();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0]["id"], "t0");
  EXPECT_EQ(out[1]["id"], "t1");
  EXPECT_EQ(log_->submitted.size(), 4u);
}

} // namespace
} // namespace orch
