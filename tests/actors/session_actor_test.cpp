// The session actor: new tasks and follow-ups submitted to a real
// coordinator (fake process runner, CAF's deterministic test coordinator),
// the session's own workspace, no second backup of it for a follow-up, the
// agent override, busy and cancel, progress forwarding, save and load.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <gtest/gtest.h>

#include "actors/coordinator.hpp"
#include "actors/session_actor.hpp"
#include "actors/system_config.hpp"
#include "runtime/counters.hpp"
#include "support/agents.hpp"
#include "support/fake_process_runner.hpp"

namespace orch {
namespace {

namespace fs = std::filesystem;

using test::command_agent;

workflow_config make_workflow(std::string name,
                              std::vector<std::string> agents) {
  workflow_config wf;
  wf.name = std::move(name);
  wf.max_iterations = 1;
  for (auto& a : agents)
    wf.steps.push_back(step_config{{step_item{a, "implement", ""}}});
  return wf;
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (auto p = text.find(what); p != std::string::npos;
       p = text.find(what, p + 1))
    ++n;
  return n;
}

/// Records the progress events it receives.
struct recorded {
  std::mutex mx;
  std::vector<progress_event> events;
};

progress_sink::behavior_type recorder(std::shared_ptr<recorded> out) {
  return {[out](atom::progress, const progress_event& ev) {
    std::lock_guard<std::mutex> guard{out->mx};
    out->events.push_back(ev);
  }};
}

class session_test : public ::testing::Test {
protected:
  session_test()
    : runner_{std::make_shared<fake_process_runner>()}, cfg_{true}, sys_{cfg_},
      sched_{
        dynamic_cast<caf::scheduler::test_coordinator&>(sys_.scheduler())} {
    root_
      = fs::temp_directory_path()
        / ("orch-session-test-" + std::to_string(::getpid()) + "-"
           + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    config_.agents = {command_agent("a"), command_agent("b")};
    config_.workflows = {make_workflow("default", {"a"}),
                         make_workflow("ab", {"a", "b"})};
    config_.settings.workspace_dir = (root_ / "ws").string();
    fake_response ok;
    ok.out_lines = {"Authentication added."};
    runner_->set_fallback(ok);
    // Each agent call writes one file named after its call number.
    runner_->set_hook([this](const process_spec& spec) {
      auto n = ++calls_;
      std::ofstream out{fs::path{spec.cwd} / ("f" + std::to_string(n) + ".py")};
      out << "print(" << n << ")\n";
    });
  }

  ~session_test() override {
    for (auto& s : sessions_)
      caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
    if (coordinator_)
      caf::anon_send_exit(coordinator_, caf::exit_reason::user_shutdown);
    sched_.run();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  session_actor spawn(std::string id = "0123456789abcdef") {
    auto cfg = std::make_shared<const config>(config_);
    if (!coordinator_) {
      coordinator_deps d;
      d.runner = runner_;
      d.detached_workers = false;
      d.check_agent = [](const agent_config&) {
        return std::string{};
      };
      coordinator_ = sys_.spawn(coordinator_impl, cfg, d);
    }
    session_deps deps;
    deps.state_dir = root_ / "state";
    deps.session_id = std::move(id);
    deps.wall_clock = [] {
      return int64_t{1705312800000};
    };
    deps.summary_chars = 200;
    auto s = sys_.spawn(session_impl, cfg, coordinator_, deps);
    sessions_.push_back(s);
    sched_.run();
    return s;
  }

  template<class T, class... Ts>
  caf::expected<T> ask(const session_actor& s, Ts&&... xs) {
    caf::scoped_actor self{sys_};
    auto rh = self->request(s, caf::infinite, std::forward<Ts>(xs)...);
    sched_.run();
    caf::expected<T> out{caf::error{}};
    rh.receive(
      [&](T& x) {
        out = std::move(x);
      },
      [&](caf::error& e) {
        out = std::move(e);
      });
    return out;
  }

  session_submitted say(const session_actor& s, std::string text,
                        followup_mode mode = followup_mode::detect) {
    auto r = ask<session_submitted>(
      s, atom::say_v, session_message{std::move(text), mode, progress_sink{}});
    if (!r) {
      ADD_FAILURE() << sys_.render(r.error());
      return {};
    }
    return *r;
  }

  run_result result(const session_actor& s, const std::string& id) {
    auto r = ask<run_result>(s, atom::result_v, id);
    if (!r) {
      ADD_FAILURE() << sys_.render(r.error());
      return {};
    }
    return *r;
  }

  fs::path root_;
  config config_;
  std::shared_ptr<fake_process_runner> runner_;
  int calls_ = 0;
  system_config cfg_;
  caf::actor_system sys_;
  caf::scheduler::test_coordinator& sched_;
  coordinator_actor coordinator_;
  std::vector<session_actor> sessions_;
};

TEST_F(session_test, a_new_task_then_follow_ups_in_the_same_workspace) {
  auto s = spawn();
  auto ws = (root_ / "ws" / "session-0123456789abcdef").string();
  auto first = say(s, "create a REST API");
  EXPECT_EQ(first.kind, message_kind::new_task);
  EXPECT_EQ(first.reason, "no previous task");
  EXPECT_EQ(first.task, "create a REST API");
  EXPECT_EQ(first.workspace, ws);
  EXPECT_EQ(first.workflow, "default");
  ASSERT_FALSE(first.run_id.empty());
  auto r1 = result(s, first.run_id);
  EXPECT_EQ(r1.status, run_status::completed);
  EXPECT_EQ(r1.workspace, ws);
  EXPECT_EQ(r1.files, (std::vector<std::string>{"f1.py"}));
  ASSERT_EQ(runner_->call_count(), 1u);
  EXPECT_EQ(runner_->calls()[0].cwd, ws);
  auto ctx = ask<session_context>(s, atom::context_v);
  ASSERT_TRUE(ctx);
  EXPECT_TRUE(ctx->has_previous);
  EXPECT_EQ(ctx->previous_task, "create a REST API");
  EXPECT_EQ(ctx->files, (std::vector<std::string>{"f1.py"}));
  EXPECT_EQ(ctx->workspace, ws);
  EXPECT_EQ(ctx->run_id, first.run_id);
  EXPECT_EQ(ctx->status, run_status::completed);
  EXPECT_EQ(ctx->summary,
            "completed: all steps succeeded\nAuthentication added.");
  // "add authentication": short with "add", a follow-up.
  auto second = say(s, "add authentication");
  EXPECT_EQ(second.kind, message_kind::followup);
  EXPECT_EQ(second.reason, "short message (2 words) with \"add\"");
  EXPECT_EQ(second.workspace, ws);
  EXPECT_EQ(second.task.rfind("add authentication\n\nThis is a follow-up", 0),
            0u);
  EXPECT_NE(second.task.find("Previous request: create a REST API"),
            std::string::npos);
  EXPECT_NE(second.task.find("Files generated so far:\n- f1.py"),
            std::string::npos);
  auto r2 = result(s, second.run_id);
  EXPECT_EQ(r2.status, run_status::completed);
  // The workspace was not copied to backups again.
  EXPECT_EQ(r2.preserved_files, 0);
  EXPECT_FALSE(
    fs::exists(fs::path{ws} / ".orchestrator" / "backups" / second.run_id));
  ASSERT_EQ(runner_->call_count(), 2u);
  EXPECT_EQ(runner_->calls()[1].cwd, ws);
  ASSERT_TRUE(runner_->calls()[1].stdin_data);
  EXPECT_NE(runner_->calls()[1].stdin_data->find("add authentication"),
            std::string::npos);
  // A third: the previous request only, never a nest of earlier prompts.
  auto third = say(s, "also add rate limiting");
  EXPECT_EQ(third.kind, message_kind::followup);
  EXPECT_EQ(count_of(third.task, "This is a follow-up"), 1u);
  EXPECT_EQ(third.task.find("create a REST API"), std::string::npos);
  EXPECT_NE(third.task.find("Previous request: add authentication"),
            std::string::npos);
  EXPECT_NE(third.task.find("- f1.py\n- f2.py"), std::string::npos);
  result(s, third.run_id);
  auto hist = ask<std::vector<session_entry>>(s, atom::history_v);
  ASSERT_TRUE(hist);
  ASSERT_EQ(hist->size(), 6u);
  EXPECT_EQ((*hist)[0].role, "user");
  EXPECT_EQ((*hist)[0].content, "create a REST API");
  EXPECT_EQ((*hist)[0].timestamp, "2024-01-15T10:00:00Z");
  EXPECT_EQ((*hist)[1].role, "assistant");
  EXPECT_EQ((*hist)[1].files, (std::vector<std::string>{"f1.py"}));
  EXPECT_EQ((*hist)[2].content, "add authentication");
  EXPECT_EQ((*hist)[5].run_id, third.run_id);
  auto info = ask<session_info>(s, atom::info_v);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->messages, 6);
  EXPECT_EQ(info->unsaved, 6);
  EXPECT_EQ(info->running, "");
}

TEST_F(session_test, a_new_task_in_the_session_workspace_preserves_its_files) {
  // The contrast to the follow-up: the flag is what skips the backup.
  auto s = spawn();
  auto first = say(s, "create a REST API");
  result(s, first.run_id);
  auto again = say(s,
                   "write a completely different program for parsing "
                   "large CSV files quickly",
                   followup_mode::detect);
  EXPECT_EQ(again.kind, message_kind::new_task);
  EXPECT_EQ(again.task.find("follow-up"), std::string::npos);
  auto r = result(s, again.run_id);
  EXPECT_EQ(r.preserved_files, 1);
  auto ctx = ask<session_context>(s, atom::context_v);
  ASSERT_TRUE(ctx);
  // A new task's context holds its own files only.
  EXPECT_EQ(ctx->files, (std::vector<std::string>{"f2.py"}));
}

TEST_F(session_test, an_ambiguous_message_submits_nothing_until_forced) {
  auto s = spawn();
  result(s, say(s, "create a REST API").run_id);
  auto ambiguous = counters().get(counter::session_messages, "ambiguous");
  auto followups = counters().get(counter::session_messages, "followup");
  auto amb = say(s, "address validation");
  EXPECT_EQ(amb.kind, message_kind::ambiguous);
  EXPECT_EQ(amb.run_id, "");
  EXPECT_EQ(amb.reason, "short message (2 words) without a follow-up keyword");
  EXPECT_EQ(runner_->call_count(), 1u);
  auto hist = ask<std::vector<session_entry>>(s, atom::history_v);
  ASSERT_TRUE(hist);
  EXPECT_EQ(hist->size(), 2u);
  auto cont = say(s, "address validation", followup_mode::followup);
  EXPECT_EQ(cont.kind, message_kind::followup);
  EXPECT_EQ(cont.reason, "follow-up requested");
  result(s, cont.run_id);
  auto fresh = say(s, "address validation", followup_mode::new_task);
  EXPECT_EQ(fresh.kind, message_kind::new_task);
  EXPECT_EQ(fresh.task, "address validation");
  result(s, fresh.run_id);
  EXPECT_EQ(runner_->call_count(), 3u);
  EXPECT_EQ(counters().get(counter::session_messages, "ambiguous"),
            ambiguous + 1);
  EXPECT_EQ(counters().get(counter::session_messages, "followup"),
            followups + 1);
}

TEST_F(session_test, a_forced_follow_up_needs_a_previous_task) {
  auto s = spawn();
  auto r = ask<session_submitted>(
    s, atom::say_v,
    session_message{"add tests", followup_mode::followup, progress_sink{}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), caf::make_error(errc::invalid_request));
  EXPECT_EQ(error_text(r.error()),
            "no previous task to follow up in this session");
  auto empty = ask<session_submitted>(
    s, atom::say_v,
    session_message{" \n", followup_mode::detect, progress_sink{}});
  ASSERT_FALSE(empty);
  EXPECT_EQ(error_text(empty.error()), "the message is empty");
  EXPECT_EQ(runner_->call_count(), 0u);
}

TEST_F(session_test, switch_runs_every_step_with_that_agent_alone) {
  auto s = spawn();
  auto wf = ask<session_info>(s, atom::set_workflow_v, std::string{"ab"});
  ASSERT_TRUE(wf);
  EXPECT_EQ(wf->workflow, "ab");
  auto bad = ask<session_info>(s, atom::set_agent_v, std::string{"zed"});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), caf::make_error(errc::unknown_name));
  EXPECT_EQ(error_text(bad.error()), "unknown agent 'zed' (known: a, b)");
  auto badwf = ask<session_info>(s, atom::set_workflow_v, std::string{"x"});
  ASSERT_FALSE(badwf);
  EXPECT_EQ(error_text(badwf.error()),
            "unknown workflow 'x' (known: default, ab)");
  auto sw = ask<session_info>(s, atom::set_agent_v, std::string{"b"});
  ASSERT_TRUE(sw);
  EXPECT_EQ(sw->agent, "b");
  auto sub = say(s, "create a REST API");
  EXPECT_EQ(sub.agent, "b");
  auto r = result(s, sub.run_id);
  EXPECT_EQ(r.status, run_status::completed);
  ASSERT_EQ(runner_->call_count(), 2u);
  for (auto& call : runner_->calls())
    EXPECT_EQ(call.argv.at(0), "b");
  // Cleared: the workflow's own agents again.
  ASSERT_TRUE(ask<session_info>(s, atom::set_agent_v, std::string{}));
  result(s, say(s,
                "a second, unrelated and quite long task for the "
                "workflow's own agents",
                followup_mode::new_task)
              .run_id);
  ASSERT_EQ(runner_->call_count(), 4u);
  EXPECT_EQ(runner_->calls()[2].argv.at(0), "a");
  EXPECT_EQ(runner_->calls()[3].argv.at(0), "b");
}

TEST_F(session_test, a_second_message_while_a_task_runs_is_refused) {
  auto s = spawn();
  caf::scoped_actor self{sys_};
  auto r1
    = self->request(s, caf::infinite, atom::say_v,
                    session_message{"create a REST API", followup_mode::detect,
                                    progress_sink{}});
  auto r2 = self->request(
    s, caf::infinite, atom::say_v,
    session_message{"create a CLI", followup_mode::new_task, progress_sink{}});
  // Only the session's two messages: the first is being submitted.
  sched_.run_once();
  sched_.run_once();
  sched_.run();
  std::string id;
  r1.receive(
    [&](session_submitted& x) {
      id = x.run_id;
    },
    [&](caf::error& e) {
      FAIL() << sys_.render(e);
    });
  r2.receive(
    [&](session_submitted&) {
      FAIL() << "accepted";
    },
    [&](caf::error& e) {
      EXPECT_EQ(e, caf::make_error(errc::session_busy));
    });
  EXPECT_FALSE(id.empty());
  EXPECT_EQ(runner_->call_count(), 1u);
}

TEST_F(session_test,
       cancel_stops_the_running_task_only_and_the_session_goes_on) {
  using session_type
    = std::remove_pointer_t<session_actor::stateful_pointer<session_state>>;
  auto s = spawn();
  auto& st
    = dynamic_cast<session_type&>(*caf::actor_cast<caf::abstract_actor*>(s))
        .state;
  caf::scoped_actor self{sys_};
  auto said
    = self->request(s, caf::infinite, atom::say_v,
                    session_message{"create a REST API", followup_mode::detect,
                                    progress_sink{}});
  // Until the coordinator accepted the run, and no further.
  while (st.info.running.empty() || st.info.running == "(submitting)")
    ASSERT_TRUE(sched_.try_run_once());
  std::string id = st.info.running;
  auto cancelled = self->request(s, caf::infinite, atom::cancel_v);
  sched_.run();
  said.receive(
    [&](session_submitted& x) {
      EXPECT_EQ(x.run_id, id);
    },
    [&](caf::error& e) {
      FAIL() << sys_.render(e);
    });
  cancelled.receive(
    [&](bool found) {
      EXPECT_TRUE(found);
    },
    [&](caf::error& e) {
      FAIL() << sys_.render(e);
    });
  auto r = result(s, id);
  EXPECT_EQ(r.status, run_status::cancelled);
  auto info = ask<session_info>(s, atom::info_v);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->running, "");
  // The cancelled task is still the previous task; the next one runs.
  auto ctx = ask<session_context>(s, atom::context_v);
  ASSERT_TRUE(ctx);
  EXPECT_EQ(ctx->status, run_status::cancelled);
  auto next = say(s,
                  "create a command line tool for converting images "
                  "between many formats",
                  followup_mode::detect);
  EXPECT_EQ(next.kind, message_kind::new_task);
  EXPECT_EQ(result(s, next.run_id).status, run_status::completed);
}

TEST_F(session_test, a_cancel_during_the_submission_cancels_the_run) {
  auto s = spawn();
  caf::scoped_actor self{sys_};
  auto said
    = self->request(s, caf::infinite, atom::say_v,
                    session_message{"create a REST API", followup_mode::detect,
                                    progress_sink{}});
  // The session took the message and asked the coordinator; no answer yet.
  sched_.run_once();
  auto cancelled = self->request(s, caf::infinite, atom::cancel_v);
  sched_.run();
  std::string id;
  said.receive(
    [&](session_submitted& x) {
      id = x.run_id;
    },
    [&](caf::error& e) {
      FAIL() << sys_.render(e);
    });
  cancelled.receive(
    [&](bool found) {
      EXPECT_TRUE(found);
    },
    [&](caf::error& e) {
      FAIL() << sys_.render(e);
    });
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(result(s, id).status, run_status::cancelled);
}

TEST_F(session_test, cancel_with_nothing_running_answers_false) {
  auto s = spawn();
  auto c = ask<bool>(s, atom::cancel_v);
  ASSERT_TRUE(c);
  EXPECT_FALSE(*c);
  auto unknown = ask<run_result>(s, atom::result_v, std::string{"nope"});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error(), caf::make_error(errc::unknown_run));
}

TEST_F(session_test, progress_goes_to_the_sink_of_the_message) {
  auto s = spawn();
  auto rec = std::make_shared<recorded>();
  auto sink = sys_.spawn(recorder, rec);
  auto r = ask<session_submitted>(
    s, atom::say_v,
    session_message{"create a REST API", followup_mode::detect, sink});
  ASSERT_TRUE(r);
  result(s, r->run_id);
  sched_.run();
  {
    std::lock_guard<std::mutex> guard{rec->mx};
    ASSERT_FALSE(rec->events.empty());
    EXPECT_EQ(rec->events.front().kind, progress_event::kind_t::run_started);
    EXPECT_EQ(rec->events.back().kind, progress_event::kind_t::run_finished);
    for (auto& ev : rec->events)
      EXPECT_EQ(ev.run_id, r->run_id);
  }
  caf::anon_send_exit(sink, caf::exit_reason::user_shutdown);
}

TEST_F(session_test, save_load_and_follow_up_in_a_new_session) {
  auto s = spawn();
  result(s, say(s, "create a REST API").run_id);
  ASSERT_TRUE(ask<session_info>(s, atom::set_agent_v, std::string{"a"}));
  auto saves = counters().get(counter::session_saves);
  auto store_errors = counters().total(counter::session_store_errors);
  auto path = ask<std::string>(s, atom::save_v, std::string{"blog-api"}, false);
  ASSERT_TRUE(path) << sys_.render(path.error());
  EXPECT_EQ(*path, (root_ / "state" / "sessions" / "blog-api.json").string());
  auto info = ask<session_info>(s, atom::info_v);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->unsaved, 0);
  EXPECT_EQ(info->name, "blog-api");
  EXPECT_EQ(info->path, *path);
  // A second shell loads it and continues.
  auto t = spawn("fedcba9876543210");
  auto loaded = ask<session_info>(t, atom::load_v, std::string{"blog-api"});
  ASSERT_TRUE(loaded) << sys_.render(loaded.error());
  EXPECT_EQ(loaded->session_id, "0123456789abcdef");
  EXPECT_EQ(loaded->messages, 2);
  EXPECT_EQ(loaded->unsaved, 0);
  EXPECT_EQ(loaded->agent, "a");
  EXPECT_EQ(loaded->workspace,
            (root_ / "ws" / "session-0123456789abcdef").string());
  auto next = say(t, "add authentication");
  EXPECT_EQ(next.kind, message_kind::followup);
  EXPECT_EQ(next.workspace, loaded->workspace);
  EXPECT_NE(next.task.find("- f1.py"), std::string::npos);
  EXPECT_EQ(result(t, next.run_id).preserved_files, 0);
  // Saved again under the name it was loaded as.
  auto again = ask<std::string>(t, atom::save_v, std::string{}, false);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *path);
  // A bad name, a missing session: clear errors.
  auto bad = ask<std::string>(t, atom::save_v, std::string{"../x"}, false);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), caf::make_error(errc::session_store_failed));
  EXPECT_NE(error_text(bad.error()).find("invalid session name \"../x\""),
            std::string::npos);
  auto missing = ask<session_info>(t, atom::load_v, std::string{"nope"});
  ASSERT_FALSE(missing);
  EXPECT_NE(error_text(missing.error()).find("no saved session \"nope\""),
            std::string::npos);
  EXPECT_EQ(counters().get(counter::session_saves), saves + 2);
  EXPECT_EQ(counters().total(counter::session_store_errors), store_errors + 2);
}

TEST_F(session_test, reset_forgets_the_history_and_the_context) {
  auto s = spawn();
  result(s, say(s, "create a REST API").run_id);
  auto r = ask<session_info>(s, atom::reset_v);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->messages, 0);
  EXPECT_EQ(r->unsaved, 0);
  auto ctx = ask<session_context>(s, atom::context_v);
  ASSERT_TRUE(ctx);
  EXPECT_FALSE(ctx->has_previous);
  // No previous task: "add tests" is a new task now.
  auto next = say(s, "add tests");
  EXPECT_EQ(next.kind, message_kind::new_task);
  result(s, next.run_id);
}

// -- h14c: per-message overrides, against a fake coordinator that records
// the run_spec it receives and finishes each run at once.

struct spec_log {
  std::vector<run_spec> submitted;
};

struct spec_state {
  static inline const char* name = "test.spec_coordinator";
  std::shared_ptr<spec_log> log;
  int next = 0;
};

coordinator_actor::behavior_type
spec_coordinator(coordinator_actor::stateful_pointer<spec_state> self,
                 std::shared_ptr<spec_log> log) {
  self->state.log = std::move(log);
  return {
    [=](atom::submit, run_spec& spec) -> caf::result<std::string> {
      self->state.log->submitted.push_back(spec);
      return "run-" + std::to_string(self->state.next++);
    },
    [=](atom::result, const std::string& id) -> caf::result<run_result> {
      run_result res;
      res.run_id = id;
      res.status = run_status::completed;
      res.workflow = self->state.log->submitted.back().workflow;
      return res;
    },
    [=](atom::list) {
      return std::vector<run_info>{};
    },
    [=](atom::status, const std::string&) -> caf::result<run_info> {
      return caf::make_error(errc::unknown_run);
    },
    [=](atom::cancel, const std::string&) {
      return true;
    },
    [=](atom::subscribe, const std::string&, uint64_t, progress_sink) {
      // nop
    },
    [=](atom::unsubscribe, const std::string&, progress_sink) {
      // nop
    },
    [=](atom::progress, progress_event&) {
      // nop
    },
    [=](atom::node_info) {
      return std::vector<node_report>{};
    },
  };
}

TEST_F(session_test, a_message_s_overrides_reach_the_run_spec) {
  auto log = std::make_shared<spec_log>();
  auto coord = sys_.spawn(spec_coordinator, log);
  auto cfg = std::make_shared<const config>(config_);
  session_deps deps;
  deps.session_id = "00000000000000aa";
  auto s = sys_.spawn(session_impl, cfg, coord, deps);
  sessions_.push_back(s);
  sched_.run();
  ASSERT_TRUE(ask<session_info>(s, atom::set_agent_v, std::string{"a"}));
  // A new task with every override.
  session_message m;
  m.text = "create a REST API";
  m.mode = followup_mode::new_task;
  m.workflow = "ab";
  m.max_iterations = 3;
  m.agents = "b,a";
  m.no_cache = true;
  auto first = ask<session_submitted>(s, atom::say_v, m);
  ASSERT_TRUE(first) << sys_.render(first.error());
  EXPECT_EQ(first->workflow, "ab");
  EXPECT_EQ(first->agent, "b,a");
  ASSERT_EQ(log->submitted.size(), 1u);
  EXPECT_EQ(log->submitted[0].workflow, "ab");
  EXPECT_EQ(log->submitted[0].max_iterations, 3);
  EXPECT_EQ(log->submitted[0].agents, "b,a");
  EXPECT_TRUE(log->submitted[0].no_cache);
  EXPECT_FALSE(log->submitted[0].followup);
  ASSERT_TRUE(ask<run_result>(s, atom::result_v, first->run_id));
  // For that run only: the session's workflow and agent stay.
  auto info = ask<session_info>(s, atom::info_v);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->workflow, "default");
  EXPECT_EQ(info->agent, "a");
  // A follow-up carries them too.
  m.text = "add tests";
  m.mode = followup_mode::followup;
  m.workflow = "default";
  m.max_iterations = 2;
  m.agents = "b";
  m.no_cache = false;
  auto second = ask<session_submitted>(s, atom::say_v, m);
  ASSERT_TRUE(second) << sys_.render(second.error());
  EXPECT_EQ(second->kind, message_kind::followup);
  ASSERT_EQ(log->submitted.size(), 2u);
  EXPECT_TRUE(log->submitted[1].followup);
  EXPECT_EQ(log->submitted[1].workflow, "default");
  EXPECT_EQ(log->submitted[1].max_iterations, 2);
  EXPECT_EQ(log->submitted[1].agents, "b");
  EXPECT_FALSE(log->submitted[1].no_cache);
  ASSERT_TRUE(ask<run_result>(s, atom::result_v, second->run_id));
  // None given: the session's settings.
  auto third = ask<session_submitted>(
    s, atom::say_v,
    session_message{"create a CLI", followup_mode::new_task, progress_sink{}});
  ASSERT_TRUE(third) << sys_.render(third.error());
  ASSERT_EQ(log->submitted.size(), 3u);
  EXPECT_EQ(log->submitted[2].workflow, "default");
  EXPECT_EQ(log->submitted[2].max_iterations, 0);
  EXPECT_EQ(log->submitted[2].agents, "a");
  EXPECT_FALSE(log->submitted[2].no_cache);
  ASSERT_TRUE(ask<run_result>(s, atom::result_v, third->run_id));
  // An unknown workflow is refused before anything is submitted.
  m.text = "create a game";
  m.mode = followup_mode::new_task;
  m.workflow = "nope";
  auto bad = ask<session_submitted>(s, atom::say_v, m);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), caf::make_error(errc::unknown_name));
  EXPECT_EQ(error_text(bad.error()),
            "unknown workflow 'nope' (known: default, ab)");
  EXPECT_EQ(log->submitted.size(), 3u);
  caf::anon_send_exit(coord, caf::exit_reason::user_shutdown);
}

TEST(session_text, the_summary_is_bounded_on_a_character_boundary) {
  run_result res;
  res.status = run_status::converged;
  res.message = "converged";
  step_result step;
  step.outcome.ok = true;
  step.outcome.final_text = std::string(50, 'x') + "\xc3\xa9" + "tail";
  res.iterations = {iteration_record{1, {step}, 0}};
  auto whole = summarize_result(res, 1000);
  EXPECT_EQ(whole, "converged: converged\n" + step.outcome.final_text);
  auto cut = summarize_result(res, 75);
  EXPECT_LE(cut.size(), 75u);
  EXPECT_EQ(cut.substr(cut.size() - 3), "...");
  // The cut did not split the two bytes of "é".
  EXPECT_EQ(cut, "converged: converged\n" + std::string(50, 'x') + "...");
}

TEST(session_text, a_follow_up_lists_its_files_bounded) {
  session_context ctx;
  ctx.previous_task = "create it";
  ctx.summary = "completed";
  for (int i = 0; i < 205; ++i)
    ctx.files.push_back("f" + std::to_string(i));
  auto task = followup_task(ctx, "fix it");
  EXPECT_EQ(count_of(task, "\n- f"), 200u);
  EXPECT_NE(task.find("(and 5 more)"), std::string::npos);
  EXPECT_EQ(iso_utc(1705312800000), "2024-01-15T10:00:00Z");
  EXPECT_EQ(make_session_id().size(), 16u);
}

} // namespace
} // namespace orch
