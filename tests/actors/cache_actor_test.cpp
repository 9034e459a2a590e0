// The step cache on CAF's deterministic test coordinator: the cache actor
// (hit, miss, LRU by entries and bytes, ttl on an injected clock, the disk
// across restarts, a corrupt file), the key of a real step request, and an
// agent actor with the cache: a hit spawns no process and writes the same
// files, `no_cache` runs the agent again.

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <gtest/gtest.h>

#include <stdlib.h>
#include <unistd.h>

#include "actors/agent_actor.hpp"
#include "actors/cache_actor.hpp"
#include "actors/cached_step.hpp"
#include "actors/system_config.hpp"
#include "runtime/counters.hpp"
#include "runtime/review.hpp"
#include "support/agents.hpp"
#include "support/fake_process_runner.hpp"
#include "support/temp_tree.hpp"

namespace orch {
namespace {

namespace fs = std::filesystem;
using test::read_text;
using test::write_text;

step_cache_entry entry_of(char c, int64_t created_ms,
                          std::string content = "print(1)\n") {
  step_cache_entry e;
  e.key = std::string(64, c);
  e.created_ms = created_ms;
  e.agent = "worker";
  e.task_kind = "implement";
  e.outcome.ok = true;
  e.outcome.final_text = "done";
  e.files = {cached_file{"a.py", std::move(content)}};
  return e;
}

class cache_actor_test : public ::testing::Test {
protected:
  cache_actor_test()
    : cfg_{true}, sys_{cfg_},
      sched_{dynamic_cast<caf::scheduler::test_coordinator&>(sys_.scheduler())},
      self_{sys_} {
    std::string tmpl
      = (fs::temp_directory_path() / "orch-cache-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr)
      ADD_FAILURE() << "mkdtemp failed";
    root_ = tmpl;
    counters().reset();
  }

  ~cache_actor_test() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
    counters().reset();
  }

  /// A cache on the test clock; `disk`: entries under root_/state/cache.
  cache_actor spawn_cache(bool disk, cache_settings settings = {}) {
    cache_deps deps;
    deps.settings = settings;
    if (disk)
      deps.state_dir = root_ / "state";
    auto now = now_;
    deps.clock = [now] {
      return *now;
    };
    return sys_.spawn(cache_impl, deps);
  }

  static cache_state& state_of(const cache_actor& hdl) {
    using impl = caf::stateful_actor<cache_state, cache_actor::base>;
    return dynamic_cast<impl&>(*caf::actor_cast<caf::abstract_actor*>(hdl))
      .state;
  }

  cache_lookup get(const cache_actor& cache, const std::string& key) {
    cache_lookup out;
    auto h = self_->request(cache, caf::infinite, atom::cache_get_v, key);
    sched_.run();
    h.receive(
      [&](cache_lookup& x) {
        out = std::move(x);
      },
      [&](caf::error& e) {
        ADD_FAILURE() << sys_.render(e);
      });
    return out;
  }

  /// Returns the answer: true when the entry reached the disk.
  bool put(const cache_actor& cache, step_cache_entry e) {
    bool out = false;
    auto h = self_->request(cache, caf::infinite, atom::cache_put_v,
                            std::move(e));
    sched_.run();
    h.receive(
      [&](bool stored) {
        out = stored;
      },
      [&](caf::error& err) {
        ADD_FAILURE() << sys_.render(err);
      });
    return out;
  }

  void stop(const caf::actor_addr& addr) {
    caf::anon_send_exit(addr, caf::exit_reason::user_shutdown);
    sched_.run();
  }

  system_config cfg_;
  caf::actor_system sys_;
  caf::scheduler::test_coordinator& sched_;
  caf::scoped_actor self_;
  fs::path root_;
  std::shared_ptr<int64_t> now_ = std::make_shared<int64_t>(1'000'000);
};

TEST_F(cache_actor_test, a_miss_then_a_hit_after_a_put) {
  auto cache = spawn_cache(false);
  EXPECT_FALSE(get(cache, std::string(64, 'a')).hit);
  EXPECT_FALSE(put(cache, entry_of('a', *now_))) << "memory only";
  auto found = get(cache, std::string(64, 'a'));
  ASSERT_TRUE(found.hit);
  EXPECT_EQ(found.entry.files.at(0).content, "print(1)\n");
  EXPECT_EQ(found.entry.outcome.final_text, "done");
  EXPECT_FALSE(get(cache, std::string(64, 'b')).hit);
  EXPECT_EQ(state_of(cache).memory_hits, 1u);
  EXPECT_EQ(state_of(cache).misses, 2u);
  stop(cache.address());
}

TEST_F(cache_actor_test, memory_evicts_the_least_recently_used_by_entries) {
  cache_settings s;
  s.max_entries = 2;
  auto cache = spawn_cache(false, s);
  put(cache, entry_of('a', *now_));
  put(cache, entry_of('b', *now_));
  EXPECT_TRUE(get(cache, std::string(64, 'a')).hit);
  put(cache, entry_of('c', *now_));
  EXPECT_TRUE(get(cache, std::string(64, 'a')).hit);
  EXPECT_FALSE(get(cache, std::string(64, 'b')).hit);
  EXPECT_TRUE(get(cache, std::string(64, 'c')).hit);
  EXPECT_EQ(state_of(cache).memory->size(), 2u);
  stop(cache.address());
}

TEST_F(cache_actor_test, memory_evicts_the_least_recently_used_by_bytes) {
  cache_settings s;
  auto one = entry_bytes(entry_of('a', 0, std::string(1000, 'x')));
  s.max_memory_bytes = one * 2 + 10;
  auto cache = spawn_cache(false, s);
  put(cache, entry_of('a', *now_, std::string(1000, 'x')));
  put(cache, entry_of('b', *now_, std::string(1000, 'y')));
  put(cache, entry_of('c', *now_, std::string(1000, 'z')));
  EXPECT_FALSE(get(cache, std::string(64, 'a')).hit);
  EXPECT_TRUE(get(cache, std::string(64, 'b')).hit);
  EXPECT_TRUE(get(cache, std::string(64, 'c')).hit);
  EXPECT_LE(state_of(cache).memory->bytes(), s.max_memory_bytes);
  stop(cache.address());
}

TEST_F(cache_actor_test,
       an_entry_older_than_the_ttl_is_a_miss_in_memory_and_on_disk) {
  cache_settings s;
  s.ttl = std::chrono::hours{1};
  auto cache = spawn_cache(true, s);
  put(cache, entry_of('a', *now_));
  *now_ += 3600 * 1000; // exactly the ttl: still fresh
  EXPECT_TRUE(get(cache, std::string(64, 'a')).hit);
  *now_ += 1;
  EXPECT_FALSE(get(cache, std::string(64, 'a')).hit);
  EXPECT_FALSE(
    fs::exists(root_ / "state/cache" / (std::string(64, 'a') + ".entry")));
  stop(cache.address());
}

TEST_F(cache_actor_test, entries_survive_a_restart_on_disk) {
  auto first = spawn_cache(true);
  EXPECT_TRUE(put(first, entry_of('a', *now_)));
  EXPECT_TRUE(fs::is_regular_file(root_ / "state/cache"
                                  / (std::string(64, 'a') + ".entry")));
  stop(first.address());
  auto second = spawn_cache(true);
  auto found = get(second, std::string(64, 'a'));
  ASSERT_TRUE(found.hit);
  EXPECT_EQ(found.entry.files.at(0).content, "print(1)\n");
  EXPECT_EQ(state_of(second).disk_hits, 1u);
  // Now in memory as well.
  EXPECT_TRUE(get(second, std::string(64, 'a')).hit);
  EXPECT_EQ(state_of(second).memory_hits, 1u);
  stop(second.address());
}

TEST_F(cache_actor_test, a_corrupt_file_on_disk_is_ignored_and_reported_once) {
  auto first = spawn_cache(true);
  put(first, entry_of('a', *now_));
  stop(first.address());
  auto file = root_ / "state/cache" / (std::string(64, 'a') + ".entry");
  auto bytes = read_text(file);
  bytes[bytes.size() - 3] ^= 0x20;
  write_text(file, bytes);
  auto second = spawn_cache(true);
  EXPECT_FALSE(get(second, std::string(64, 'a')).hit);
  EXPECT_FALSE(fs::exists(file));
  EXPECT_EQ(counters().total(counter::cache_corrupt), 1u);
  write_text(file, bytes);
  EXPECT_FALSE(get(second, std::string(64, 'a')).hit);
  EXPECT_EQ(counters().total(counter::cache_corrupt), 1u);
  // The cache still works.
  put(second, entry_of('a', *now_));
  EXPECT_TRUE(get(second, std::string(64, 'a')).hit);
  stop(second.address());
}

// -- the key of a real step ---------------------------------------------------

class step_key_test : public test::temp_tree {
protected:
  step_request request_in(const fs::path& ws, const std::string& run_id,
                          int32_t iteration,
                          const std::string& task = "Build "
                                                    "it") {
    prompt_context ctx;
    ctx.task = task;
    ctx.task_kind = "implement";
    ctx.workspace = ws.string();
    ctx.iteration = iteration;
    ctx.files = {"in.txt"};
    step_request req;
    req.run_id = run_id;
    req.iteration = iteration;
    req.agent = "worker";
    req.task_kind = "implement";
    req.prompt = render_prompt(builtin_config(), ctx);
    req.workspace = ws.string();
    return req;
  }

  agent_config agent() const {
    auto a = test::command_agent("worker");
    a.model = "m1";
    return a;
  }
};

TEST_F(step_key_test,
       ignores_workspace_path_and_iteration_not_task_model_or_files) {
  auto ws1 = root_ / "20261201-101010-123-abcdef";
  auto ws2 = base_ / "elsewhere" / "20261201-111111-000-000001";
  fs::create_directories(ws1);
  fs::create_directories(ws2);
  write_text(ws1 / "in.txt", "same");
  write_text(ws2 / "in.txt", "same");
  auto snap1 = snapshot_files(ws1);
  auto snap2 = snapshot_files(ws2);
  auto r1 = request_in(ws1, "20261201-101010-123-abcdef", 1);
  auto r2 = request_in(ws2, "20261201-111111-000-000001", 2);
  ASSERT_NE(r1.prompt, r2.prompt);
  auto k = step_key(agent(), r1, snap1);
  EXPECT_EQ(k, step_key(agent(), r2, snap2));
  // Another task text, another model, another task kind.
  EXPECT_NE(k,
            step_key(agent(), request_in(ws1, r1.run_id, 1, "Other"), snap1));
  auto other_model = agent();
  other_model.model = "m2";
  EXPECT_NE(k, step_key(other_model, r1, snap1));
  auto review = r1;
  review.task_kind = "review";
  EXPECT_NE(k, step_key(agent(), review, snap1));
  // Any workspace file: changed, added.
  write_text(ws2 / "in.txt", "Same");
  EXPECT_NE(k, step_key(agent(), r2, snapshot_files(ws2)));
  write_text(ws2 / "in.txt", "same");
  write_text(ws2 / "extra.txt", "");
  EXPECT_NE(k, step_key(agent(), r2, snapshot_files(ws2)));
  // The variables the agent is given.
  auto with_env = agent();
  with_env.env_set["MODE"] = "fast";
  EXPECT_NE(k, step_key(with_env, r1, snap1));
}

// -- an agent actor with the cache --------------------------------------------

class cached_agent_test : public cache_actor_test {
protected:
  cached_agent_test() : runner_{std::make_shared<fake_process_runner>()} {
    fake_response ok;
    ok.out_lines = {"done"};
    // The agent writes a file and deletes one, as a CLI does itself.
    ok.on_run = [](const process_spec& spec) {
      write_text(fs::path{spec.cwd} / "out.py", "print('made')\n");
      fs::remove(fs::path{spec.cwd} / "old.txt");
    };
    runner_->on("worker", ok);
  }

  agent_actor spawn_agent(const cache_actor& cache) {
    auto a = test::command_agent("worker");
    agent_deps deps;
    deps.runner = runner_;
    deps.detached_workers = false;
    deps.cache = cache;
    return sys_.spawn(agent_impl, a, deps);
  }

  fs::path fresh_workspace(const std::string& name) {
    auto ws = root_ / name;
    fs::create_directories(ws);
    write_text(ws / "in.txt", "input");
    write_text(ws / "old.txt", "old");
    return ws;
  }

  step_result run(const agent_actor& agent, const fs::path& ws,
                  const std::string& run_id, bool no_cache = false) {
    step_request req;
    req.run_id = run_id;
    req.agent = "worker";
    req.task_kind = "implement";
    req.prompt = "Task kind: implement\n\nWork in " + ws.string()
                 + "\n\nThis is iteration 1.\n";
    req.workspace = ws.string();
    req.no_cache = no_cache;
    step_result out;
    auto h = self_->request(agent, caf::infinite, atom::run_step_v, req);
    sched_.run();
    h.receive(
      [&](step_result& res) {
        out = std::move(res);
      },
      [&](caf::error& e) {
        ADD_FAILURE() << sys_.render(e);
      });
    return out;
  }

  std::shared_ptr<fake_process_runner> runner_;
};

TEST_F(cached_agent_test, a_hit_spawns_no_process_and_writes_the_same_files) {
  auto cache = spawn_cache(true);
  auto agent = spawn_agent(cache);
  auto ws1 = fresh_workspace("run-aaaaaaaaaaaaaaaaaaaa");
  auto first = run(agent, ws1, "run-aaaaaaaaaaaaaaaaaaaa");
  ASSERT_TRUE(first.outcome.ok) << first.outcome.message;
  EXPECT_FALSE(first.cached);
  EXPECT_EQ(runner_->call_count(), 1u);
  EXPECT_EQ(first.files, std::vector<std::string>{"out.py"});
  EXPECT_EQ(first.deleted, std::vector<std::string>{"old.txt"});
  EXPECT_EQ(counters().get(counter::cache_misses, "worker"), 1u);
  // Another run on a fresh workspace with the same content.
  auto ws2 = fresh_workspace("run-bbbbbbbbbbbbbbbbbbbb");
  auto second = run(agent, ws2, "run-bbbbbbbbbbbbbbbbbbbb");
  ASSERT_TRUE(second.outcome.ok) << second.outcome.message;
  EXPECT_TRUE(second.cached);
  EXPECT_EQ(runner_->call_count(), 1u) << "a hit must not run the agent";
  EXPECT_EQ(counters().get(counter::cache_hits, "worker"), 1u);
  EXPECT_EQ(read_text(ws2 / "out.py"), read_text(ws1 / "out.py"));
  EXPECT_FALSE(fs::exists(ws2 / "old.txt"));
  EXPECT_EQ(second.files, first.files);
  EXPECT_EQ(second.deleted, first.deleted);
  EXPECT_EQ(second.outcome.final_text, first.outcome.final_text);
  // A third fresh workspace with the same content: only no_cache stops the
  // hit.
  auto ws3 = fresh_workspace("run-cccccccccccccccccccc");
  auto third = run(agent, ws3, "run-cccccccccccccccccccc", true);
  EXPECT_FALSE(third.cached);
  EXPECT_EQ(runner_->call_count(), 2u);
  self_->send_exit(agent, caf::exit_reason::user_shutdown);
  stop(cache.address());
}

TEST_F(cached_agent_test,
       a_hit_backs_up_a_file_it_overwrites_and_a_failure_is_not_stored) {
  auto cache = spawn_cache(false);
  auto agent = spawn_agent(cache);
  auto ws1 = fresh_workspace("run-aaaaaaaaaaaaaaaaaaaa");
  run(agent, ws1, "run-aaaaaaaaaaaaaaaaaaaa");
  // A workspace that has out.py already is another key: it runs once, and
  // its replay then overwrites the old out.py of an identical workspace.
  auto ws2 = fresh_workspace("run-bbbbbbbbbbbbbbbbbbbb");
  write_text(ws2 / "out.py", "old version\n");
  auto real = run(agent, ws2, "run-bbbbbbbbbbbbbbbbbbbb");
  ASSERT_FALSE(real.cached);
  auto ws3 = fresh_workspace("run-cccccccccccccccccccc");
  write_text(ws3 / "out.py", "old version\n");
  auto replay = run(agent, ws3, "run-cccccccccccccccccccc");
  ASSERT_TRUE(replay.cached);
  EXPECT_EQ(read_text(ws3 / "out.py"), "print('made')\n");
  ASSERT_EQ(replay.backups.size(), 1u);
  EXPECT_EQ(read_text(ws3 / replay.backups[0]), "old version\n");
  EXPECT_EQ(runner_->call_count(), 2u);
  // A failing step is not stored: the next identical one runs.
  fake_response bad;
  bad.exit_code = 3;
  runner_->on("failing", bad);
  auto a = test::command_agent("failing");
  agent_deps deps;
  deps.runner = runner_;
  deps.detached_workers = false;
  deps.cache = cache;
  auto failing = sys_.spawn(agent_impl, a, deps);
  auto ws4 = fresh_workspace("run-dddddddddddddddddddd");
  EXPECT_FALSE(run(failing, ws4, "run-dddddddddddddddddddd").outcome.ok);
  EXPECT_FALSE(run(failing, ws4, "run-dddddddddddddddddddd").outcome.ok);
  EXPECT_EQ(runner_->call_count(), 4u);
  self_->send_exit(agent, caf::exit_reason::user_shutdown);
  self_->send_exit(failing, caf::exit_reason::user_shutdown);
  stop(cache.address());
}

TEST_F(cached_agent_test, a_review_step_replays_its_findings) {
  fake_response review;
  review.out_lines
    = {"Two problems:", "```json",
       R"({"findings": [{"severity": "high", "file": "a.py", "line": 3, )"
       R"("text": "off by one"}, {"severity": "low", "file": "b.py", )"
       R"("line": 1, "text": "naming"}]})",
       "```"};
  runner_->on("reviewer", review);
  auto a = test::command_agent("reviewer");
  agent_deps deps;
  deps.runner = runner_;
  deps.detached_workers = false;
  deps.cache = spawn_cache(false);
  auto agent = sys_.spawn(agent_impl, a, deps);
  auto ask = [&](const fs::path& ws, const std::string& run_id) {
    step_request req;
    req.run_id = run_id;
    req.agent = "reviewer";
    req.task_kind = "review";
    req.review = true;
    req.prompt = "Task kind: review\n\nReview " + ws.string() + "\n";
    req.workspace = ws.string();
    step_result out;
    auto h = self_->request(agent, caf::infinite, atom::run_step_v, req);
    sched_.run();
    h.receive(
      [&](step_result& res) {
        out = std::move(res);
      },
      [&](caf::error& e) {
        ADD_FAILURE() << sys_.render(e);
      });
    return out;
  };
  auto first = ask(fresh_workspace("run-aaaaaaaaaaaaaaaaaaaa"),
                   "run-aaaaaaaaaaaaaaaaaaaa");
  ASSERT_TRUE(first.outcome.ok) << first.outcome.message;
  ASSERT_EQ(first.findings.size(), 2u);
  auto second = ask(fresh_workspace("run-bbbbbbbbbbbbbbbbbbbb"),
                    "run-bbbbbbbbbbbbbbbbbbbb");
  EXPECT_TRUE(second.cached);
  EXPECT_EQ(runner_->call_count(), 1u);
  EXPECT_EQ(second.findings, first.findings);
  self_->send_exit(agent, caf::exit_reason::user_shutdown);
  stop(deps.cache.address());
}

} // namespace
} // namespace orch
