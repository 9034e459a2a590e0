// Worker nodes in one process: the node pool against fake nodes (spreading
// by free slots, a node dying mid-task, a late answer dropped, exactly one
// result per task), the run files collected and written back safely, and
// the version handshake over the middleman on loopback. Across processes
// with TLS: tests/nodes/worker_nodes.sh.

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/after.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actors/coordinator.hpp"
#include "actors/node.hpp"
#include "actors/node_pool.hpp"
#include "actors/system_config.hpp"
#include "actors/tls_error_queue.hpp"
#include "runtime/safe_file.hpp"

namespace orch {
namespace {

namespace fs = std::filesystem;

constexpr auto k_max_test_wait = std::chrono::seconds{30};

struct fake_node_state {
  std::string name;
  bool hold = false;
  std::vector<std::pair<caf::typed_response_promise<node_outcome>, node_task>>
    held;
};

node_outcome answer_for(const std::string& name, const node_task& task,
                        run_status status) {
  node_outcome out;
  out.task_id = task.task_id;
  out.attempt = task.attempt;
  out.node = name;
  out.result.run_id = "local-id";
  out.result.task = task.spec.task;
  out.result.status = status;
  out.result.workspace = "/ws/" + task.task_id;
  return out;
}

/// A node that answers every task at once (status completed), or holds
/// them until cancel("finish") (answers them completed) or
/// cancel("release") (answers them converged, so a late answer that got
/// recorded would show).
node_actor::behavior_type
fake_node(node_actor::stateful_pointer<fake_node_state> self, std::string name,
          bool hold) {
  self->state.name = std::move(name);
  self->state.hold = hold;
  auto status = [=] {
    node_status s;
    s.version = node_version();
    s.vocabulary = vocabulary_fingerprint();
    s.slots = 2;
    return s;
  };
  return {
    [=](atom::node_hello, const std::string&, const std::string&) {
      return status();
    },
    [=](atom::node_info) {
      return status();
    },
    [=](atom::node_run, node_task& task) -> caf::result<node_outcome> {
      if (!self->state.hold)
        return answer_for(self->state.name, task, run_status::completed);
      auto rp = self->make_response_promise<node_outcome>();
      self->state.held.emplace_back(rp, task);
      return rp;
    },
    [=](atom::cancel, const std::string& id) {
      if (id != "release" && id != "finish")
        return false;
      auto status = id == "finish" ? run_status::completed
                                   : run_status::converged;
      for (auto& [rp, task] : self->state.held)
        rp.deliver(answer_for(self->state.name, task, status));
      self->state.held.clear();
      return true;
    },
  };
}

node_link link_to(const std::string& address, node_actor actor) {
  node_link l;
  l.address = address;
  l.actor = std::move(actor);
  l.status.slots = 2;
  l.status.version = node_version();
  return l;
}

struct fixture : ::testing::Test {
  system_config cfg{false, true};
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};

  /// Submits `spec`; the run id ("" after a failure).
  std::string submit_spec(const coordinator_actor& pool, const run_spec& spec) {
    std::string id;
    self->request(pool, k_max_test_wait, atom::submit_v, spec)
      .receive(
        [&](std::string& x) {
          id = x;
        },
        [&](caf::error& e) {
          ADD_FAILURE() << sys.render(e);
        });
    return id;
  }

  /// A follow-up run of the default workflow in `workspace`.
  static run_spec followup_in(const fs::path& workspace) {
    run_spec spec;
    spec.task = "follow-up";
    spec.workflow = "default";
    spec.workspace = workspace.string();
    return spec;
  }

  std::vector<std::string> submit(const coordinator_actor& pool, int n) {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
      run_spec spec;
      spec.task = "task " + std::to_string(i);
      spec.workflow = "default";
      ids.push_back(submit_spec(pool, spec));
    }
    return ids;
  }

  run_result result(const coordinator_actor& pool, const std::string& id) {
    run_result out;
    self->request(pool, k_max_test_wait, atom::result_v, id)
      .receive(
        [&](run_result& r) {
          out = std::move(r);
        },
        [&](caf::error& e) {
          ADD_FAILURE() << sys.render(e);
        });
    return out;
  }

  /// Results by the node that ran them ("a", "b"), all ids answered once.
  std::map<std::string, int> by_node(const coordinator_actor& pool,
                                     const std::vector<std::string>& ids) {
    std::map<std::string, int> out;
    for (auto& id : ids) {
      auto r = result(pool, id);
      EXPECT_EQ(r.run_id, id);
      EXPECT_EQ(r.status, run_status::completed) << r.message;
      ++out[r.workspace.substr(0, r.workspace.find(':'))];
    }
    return out;
  }
};

TEST_F(fixture, a_pool_spreads_tasks_over_its_nodes_by_free_slots) {
  auto a = sys.spawn(fake_node, std::string{"a"}, true);
  auto b = sys.spawn(fake_node, std::string{"b"}, true);
  auto pool = sys.spawn(
    node_pool_impl, std::vector<node_link>{link_to("a", a), link_to("b", b)},
    node_pool_deps{});
  // Two slots each: the first four alternate (most free slots first), the
  // fifth waits for a free slot.
  auto ids = submit(pool, 5);
  ASSERT_EQ(ids.size(), 5u);
  for (auto& node : {a, b})
    self->request(node, k_max_test_wait, atom::cancel_v, std::string{"finish"})
      .receive([](bool) {},
               [&](caf::error& e) {
                 ADD_FAILURE() << sys.render(e);
               });
  // The fifth went to whichever freed a slot first; finish it too.
  auto fifth = ids.back();
  ids.pop_back();
  auto counts = by_node(pool, ids);
  EXPECT_EQ(counts["a"], 2);
  EXPECT_EQ(counts["b"], 2);
  // Its node_run may still be on its way to the node: finish until it ends.
  self->send(pool, atom::result_v, fifth);
  bool got = false;
  auto deadline = std::chrono::steady_clock::now() + k_max_test_wait;
  while (!got && std::chrono::steady_clock::now() < deadline) {
    for (auto& node : {a, b})
      caf::anon_send(node, atom::cancel_v, std::string{"finish"});
    self->receive(
      [&](run_result& r) {
        EXPECT_EQ(r.run_id, fifth);
        got = true;
      },
      caf::after(std::chrono::milliseconds{50}) >> [] {});
  }
  EXPECT_TRUE(got) << "no result for the fifth task";
  self->send_exit(pool, caf::exit_reason::user_shutdown);
  self->send_exit(a, caf::exit_reason::user_shutdown);
  self->send_exit(b, caf::exit_reason::user_shutdown);
}

TEST_F(fixture, node_info_reports_each_node_and_what_it_can_run) {
  // What `serve --workers` answers GET /api/agents from.
  auto a = sys.spawn(fake_node, std::string{"a"}, true);
  auto b = sys.spawn(fake_node, std::string{"b"}, true);
  auto la = link_to("a", a);
  la.status.agents = {"codex"};
  auto lb = link_to("b", b);
  lb.status.unavailable = {"codex: not installed"};
  auto pool = sys.spawn(node_pool_impl, std::vector<node_link>{la, lb},
                        node_pool_deps{});
  std::vector<node_report> nodes;
  self->request(pool, k_max_test_wait, atom::node_info_v)
    .receive(
      [&](std::vector<node_report>& x) {
        nodes = std::move(x);
      },
      [&](caf::error& e) {
        ADD_FAILURE() << sys.render(e);
      });
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0].address, "a");
  EXPECT_TRUE(nodes[0].alive);
  EXPECT_EQ(nodes[0].status.agents, std::vector<std::string>{"codex"});
  EXPECT_EQ(nodes[1].address, "b");
  EXPECT_EQ(nodes[1].status.unavailable,
            std::vector<std::string>{"codex: not installed"});
  // A local coordinator has no nodes: its agents run where it runs.
  auto cfg = std::make_shared<const config>();
  auto local = spawn_coordinator(sys, cfg, coordinator_deps{});
  self->request(local, k_max_test_wait, atom::node_info_v)
    .receive(
      [&](std::vector<node_report>& x) {
        EXPECT_TRUE(x.empty());
      },
      [&](caf::error& e) {
        ADD_FAILURE() << sys.render(e);
      });
  for (const auto& h :
       {caf::actor_cast<caf::actor>(pool), caf::actor_cast<caf::actor>(local),
        caf::actor_cast<caf::actor>(a), caf::actor_cast<caf::actor>(b)})
    self->send_exit(h, caf::exit_reason::user_shutdown);
}

TEST_F(fixture, a_task_folder_under_out_dir_is_named_after_its_label) {
  auto a = sys.spawn(fake_node, std::string{"a"}, false);
  node_pool_deps deps;
  deps.out_dir = "/out";
  auto pool = sys.spawn(node_pool_impl, std::vector<node_link>{link_to("a", a)},
                        deps);
  auto submit_labelled = [&](const std::string& label) {
    run_spec spec;
    spec.task = "task";
    spec.workflow = "default";
    spec.label = label;
    return submit_spec(pool, spec);
  };
  auto first = submit_labelled("t 1");
  auto second = submit_labelled("t_1"); // the same plain name
  auto unlabelled = submit_labelled("");
  auto hostile = submit_labelled("../../etc");
  EXPECT_EQ(result(pool, first).workspace, "/out/t_1");
  EXPECT_EQ(result(pool, second).workspace, "/out/t_1-" + second);
  EXPECT_EQ(result(pool, unlabelled).workspace, "/out/" + unlabelled);
  EXPECT_EQ(result(pool, hostile).workspace, "/out/.._.._etc");
  self->send_exit(pool, caf::exit_reason::user_shutdown);
  self->send_exit(a, caf::exit_reason::user_shutdown);
}

TEST_F(fixture, the_tasks_of_a_node_that_dies_run_on_another_once) {
  auto a = sys.spawn(fake_node, std::string{"a"}, true);
  auto b = sys.spawn(fake_node, std::string{"b"}, false);
  auto pool = sys.spawn(
    node_pool_impl, std::vector<node_link>{link_to("a", a), link_to("b", b)},
    node_pool_deps{});
  auto ids = submit(pool, 6);
  // a holds its two; the other four went through b. Then a dies.
  self->send_exit(a, caf::exit_reason::kill);
  auto counts = by_node(pool, ids);
  EXPECT_EQ(counts["b"], 6);
  EXPECT_EQ(counts.count("a"), 0u);
  self->send_exit(pool, caf::exit_reason::user_shutdown);
  self->send_exit(b, caf::exit_reason::user_shutdown);
}

TEST_F(fixture, a_late_answer_from_a_node_thought_dead_is_dropped) {
  auto a = sys.spawn(fake_node, std::string{"a"}, true);
  auto b = sys.spawn(fake_node, std::string{"b"}, false);
  auto pool = sys.spawn(
    node_pool_impl, std::vector<node_link>{link_to("a", a), link_to("b", b)},
    node_pool_deps{});
  auto ids = submit(pool, 6);
  // The pool hears that a went down (as when its connection drops), while
  // a still lives and holds two tasks.
  caf::anon_send(
    caf::actor_cast<caf::actor>(pool),
    caf::down_msg{a.address(), caf::exit_reason::remote_link_unreachable});
  auto counts = by_node(pool, ids);
  EXPECT_EQ(counts["b"], 6);
  // Now a answers them (converged): too late, the results stay b's.
  self->request(a, k_max_test_wait, atom::cancel_v, std::string{"release"})
    .receive(
      [](bool released) {
        EXPECT_TRUE(released);
      },
      [&](caf::error& e) {
        ADD_FAILURE() << sys.render(e);
      });
  counts = by_node(pool, ids);
  EXPECT_EQ(counts["b"], 6);
  self->send_exit(pool, caf::exit_reason::user_shutdown);
  self->send_exit(a, caf::exit_reason::user_shutdown);
  self->send_exit(b, caf::exit_reason::user_shutdown);
}

TEST_F(fixture, with_no_node_left_the_queued_tasks_fail_and_submit_refuses) {
  auto a = sys.spawn(fake_node, std::string{"a"}, true);
  auto pool = sys.spawn(node_pool_impl, std::vector<node_link>{link_to("a", a)},
                        node_pool_deps{});
  auto ids = submit(pool, 3);
  self->send_exit(a, caf::exit_reason::kill);
  for (auto& id : ids) {
    auto r = result(pool, id);
    EXPECT_EQ(r.status, run_status::failed);
    EXPECT_NE(r.message.find("no worker node left"), std::string::npos)
      << r.message;
  }
  run_spec spec;
  spec.task = "one more";
  self->request(pool, k_max_test_wait, atom::submit_v, spec)
    .receive(
      [](std::string&) {
        ADD_FAILURE() << "accepted";
      },
      [&](caf::error& e) {
        EXPECT_EQ(e.code(), static_cast<uint8_t>(errc::node_unavailable));
      });
  self->send_exit(pool, caf::exit_reason::user_shutdown);
}

// -- h16: a lost node is connected to again ---------------------------------

/// A connect function for node_pool_deps::connect: fails the first
/// `failures` calls, then answers a new fake node named "a" that runs tasks
/// at once. Counts its calls; keeps the nodes it made to stop them.
struct reconnector {
  std::mutex mtx;
  int calls = 0;
  int failures = 0;
  std::vector<node_actor> made;

  node_link connect(caf::actor_system& sys, const std::string& address) {
    std::lock_guard<std::mutex> guard{mtx};
    ++calls;
    if (calls <= failures) {
      node_link l;
      l.address = address;
      l.error = "cannot reach the node at " + address + ": refused";
      return l;
    }
    auto n = sys.spawn(fake_node, std::string{"a"}, false);
    made.push_back(n);
    return link_to(address, n);
  }

  void stop() {
    std::lock_guard<std::mutex> guard{mtx};
    for (auto& n : made)
      caf::anon_send_exit(n, caf::exit_reason::user_shutdown);
  }
};

node_pool_deps
reconnecting_deps(std::shared_ptr<reconnector> r,
                  caf::timespan reconnect_for = std::chrono::seconds{30}) {
  node_pool_deps deps;
  deps.connect = [r](caf::actor_system& sys, const std::string& address) {
    return r->connect(sys, address);
  };
  deps.reconnect_min = std::chrono::milliseconds{10};
  deps.reconnect_max = std::chrono::milliseconds{40};
  deps.reconnect_for = reconnect_for;
  return deps;
}

TEST_F(fixture, a_lost_node_is_connected_again_and_its_tasks_wait_for_it) {
  auto r = std::make_shared<reconnector>();
  r->failures = 2;
  auto a = sys.spawn(fake_node, std::string{"a"}, true);
  auto pool = sys.spawn(node_pool_impl, std::vector<node_link>{link_to("a", a)},
                        reconnecting_deps(r));
  auto ids = submit(pool, 3);
  ASSERT_EQ(ids.size(), 3u);
  // The only node dies holding two tasks (the third is queued): nothing
  // fails while it is tried again, and a submit is still taken.
  self->send_exit(a, caf::exit_reason::kill);
  auto more = submit(pool, 2);
  ASSERT_EQ(more.size(), 2u);
  ids.insert(ids.end(), more.begin(), more.end());
  // Two tries fail, the third brings the node back: all five end there,
  // once each.
  auto counts = by_node(pool, ids);
  EXPECT_EQ(counts["a"], 5);
  {
    std::lock_guard<std::mutex> guard{r->mtx};
    EXPECT_EQ(r->calls, 3);
    EXPECT_EQ(r->made.size(), 1u);
  }
  self->send_exit(pool, caf::exit_reason::user_shutdown);
  r->stop();
}

TEST_F(fixture, a_node_that_stays_unreachable_is_given_up_and_its_tasks_fail) {
  auto r = std::make_shared<reconnector>();
  r->failures = 1000000;
  auto a = sys.spawn(fake_node, std::string{"a"}, true);
  auto pool = sys.spawn(node_pool_impl, std::vector<node_link>{link_to("a", a)},
                        reconnecting_deps(r, std::chrono::milliseconds{300}));
  auto ids = submit(pool, 3);
  self->send_exit(a, caf::exit_reason::kill);
  for (auto& id : ids) {
    auto res = result(pool, id);
    EXPECT_EQ(res.status, run_status::failed);
    EXPECT_NE(res.message.find("no worker node left"), std::string::npos)
      << res.message;
    EXPECT_NE(res.message.find("given up after trying to connect again"),
              std::string::npos)
      << res.message;
    EXPECT_NE(res.message.find("refused"), std::string::npos) << res.message;
  }
  {
    std::lock_guard<std::mutex> guard{r->mtx};
    EXPECT_GE(r->calls, 2);
  }
  self->send_exit(pool, caf::exit_reason::user_shutdown);
}

TEST(tls_guard, openssl_calls_of_this_binary_go_through_the_guard) {
  // CAF's OpenSSL module (and this test) bind SSL_read & co. to the
  // definitions in actors/tls_error_queue.cpp, which empty the thread's
  // OpenSSL error queue first; the stale-error run of
  // tests/nodes/worker_nodes.sh shows what that prevents.
  EXPECT_TRUE(tls_error_queue_guard_active());
}

struct temp_dir {
  fs::path path;
  temp_dir() {
    path = fs::temp_directory_path()
           / ("orch-node-test-" + std::to_string(::getpid()) + "-"
              + std::to_string(std::rand()));
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

TEST(node_files, collected_within_the_bound_without_following_links) {
  temp_dir ws;
  fs::create_directories(ws.path / "sub");
  std::ofstream{ws.path / "a.txt"} << "0123456789";
  std::ofstream{ws.path / "sub" / "b.txt"} << "b";
  std::ofstream{ws.path / "big.bin"} << std::string(200, 'x');
  std::ofstream{"/tmp/orch-node-test-secret"} << "secret";
  fs::create_symlink("/tmp/orch-node-test-secret", ws.path / "link.txt");
  run_result res;
  res.workspace = ws.path.string();
  res.files = {"a.txt", "big.bin", "link.txt", "sub/b.txt", "../x"};
  std::vector<run_file> files;
  std::vector<std::string> omitted;
  collect_run_files(res, 100, files, omitted);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].path, "a.txt");
  EXPECT_EQ(files[0].content, "0123456789");
  EXPECT_EQ(files[1].path, "sub/b.txt");
  ASSERT_EQ(omitted.size(), 3u);
  EXPECT_NE(omitted[0].find("big.bin: left out, over the limit of 100"),
            std::string::npos)
    << omitted[0];
  EXPECT_NE(omitted[1].find("link.txt: a symlink"), std::string::npos)
    << omitted[1];
  EXPECT_NE(omitted[2].find("../x: not a plain relative path"),
            std::string::npos);
  fs::remove("/tmp/orch-node-test-secret");
}

TEST(node_files, written_under_out_dir_id_never_outside) {
  temp_dir out;
  temp_dir elsewhere;
  fs::create_directories(out.path / "run-1");
  // A planted link in place of a folder is not followed.
  fs::create_directory_symlink(elsewhere.path, out.path / "run-1" / "sub");
  std::vector<run_file> files{{"a.txt", "A"},
                              {"../escape.txt", "no"},
                              {"/abs.txt", "no"},
                              {"sub/b.txt", "no"}};
  auto failed = write_run_files(out.path.string(), "run-1", files);
  EXPECT_EQ(failed.size(), 3u);
  std::ifstream in{out.path / "run-1" / "a.txt"};
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, "A");
  EXPECT_FALSE(fs::exists(out.path / "escape.txt"));
  EXPECT_FALSE(fs::exists(elsewhere.path / "b.txt"));
}

TEST(node_handshake, versions_are_exchanged_and_a_mismatch_is_refused) {
  system_config server_cfg{false, true};
  caf::actor_system server{server_cfg};
  // The node believes it runs 9.9.9.
  node_deps odd_deps;
  odd_deps.version = "9.9.9";
  auto odd = server.spawn(node_impl, coordinator_actor{}, odd_deps);
  auto same = server.spawn(node_impl, coordinator_actor{}, node_deps{});
  auto odd_port = publish_node(odd, host_port{"127.0.0.1", 0}, false);
  auto same_port = publish_node(same, host_port{"127.0.0.1", 0}, false);
  ASSERT_TRUE(odd_port) << server.render(odd_port.error());
  ASSERT_TRUE(same_port) << server.render(same_port.error());
  {
    system_config client_cfg{false, true};
    caf::actor_system client{client_cfg};
    auto ok = connect_node(client, "127.0.0.1:" + std::to_string(*same_port),
                           false);
    EXPECT_EQ(ok.error, "");
    EXPECT_EQ(ok.status.version, ORCH_VERSION);
    EXPECT_EQ(ok.status.vocabulary, vocabulary_fingerprint());
    auto bad = connect_node(client, "127.0.0.1:" + std::to_string(*odd_port),
                            false);
    EXPECT_FALSE(bad.actor);
    EXPECT_NE(bad.error.find("version mismatch"), std::string::npos)
      << bad.error;
    EXPECT_NE(bad.error.find("9.9.9"), std::string::npos) << bad.error;
    EXPECT_NE(bad.error.find(ORCH_VERSION), std::string::npos) << bad.error;
  }
  caf::anon_send_exit(odd, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(same, caf::exit_reason::user_shutdown);
}

TEST(node_handshake, addresses_and_loopback) {
  std::string error;
  auto a = parse_host_port("127.0.0.1:4000", error);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 4000);
  auto b = parse_host_port("[::1]:0", error);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "::1");
  EXPECT_FALSE(parse_host_port("host", error));
  EXPECT_FALSE(parse_host_port("host:70000", error));
  EXPECT_TRUE(is_loopback("127.0.0.1"));
  EXPECT_TRUE(is_loopback("localhost"));
  EXPECT_FALSE(is_loopback("0.0.0.0"));
  EXPECT_FALSE(is_loopback("10.0.0.1"));
  EXPECT_EQ(split_addresses(" a:1, b:2 ,"),
            (std::vector<std::string>{"a:1", "b:2"}));
}

std::string read_text(const fs::path& p) {
  std::ifstream in{p};
  return std::string{std::istreambuf_iterator<char>{in}, {}};
}

TEST(node_files, a_workspace_is_sent_without_links_and_changes_come_back) {
  temp_dir ws;
  temp_dir outside;
  std::ofstream{outside.path / "secret"} << "secret";
  fs::create_directories(ws.path / "src");
  fs::create_directories(ws.path / ".orchestrator");
  std::ofstream{ws.path / "a.txt"} << "A";
  std::ofstream{ws.path / "src" / "b.txt"} << "B";
  std::ofstream{ws.path / ".orchestrator" / "manifest.json"} << "{}";
  std::ofstream{ws.path / "big.bin"} << std::string(100, 'x');
  fs::create_symlink(outside.path / "secret", ws.path / "link.txt");
  fs::create_directory_symlink(outside.path, ws.path / "linked");
  // A FIFO (a read would block) and a name that is not UTF-8.
  ASSERT_EQ(::mkfifo((ws.path / "pipe").c_str(), 0600), 0);
  std::ofstream{ws.path / std::string{"bad\xff.txt"}} << "x";
  // -- what goes to the node
  std::vector<run_file> seed;
  std::vector<std::string> omitted;
  collect_workspace_files(ws.path.string(), 50, seed, omitted);
  ASSERT_EQ(seed.size(), 2u);
  EXPECT_EQ(seed[0].path, "a.txt");
  EXPECT_EQ(seed[1].path, "src/b.txt");
  EXPECT_EQ(seed[1].content, "B");
  ASSERT_EQ(omitted.size(), 2u) << ::testing::PrintToString(omitted);
  EXPECT_NE(omitted[0].find("big.bin: left out"), std::string::npos);
  EXPECT_NE(omitted[1].find("a name the file rules refuse"), std::string::npos)
    << omitted[1];
  std::vector<run_file> none;
  collect_workspace_files((ws.path / "missing").string(), 50, none, omitted);
  EXPECT_TRUE(none.empty());
  // -- the node's copy
  temp_dir root;
  std::string error;
  auto made = make_seeded_workspace(root.path.string(), "task/1", seed, error);
  ASSERT_FALSE(made.empty()) << error;
  EXPECT_EQ(fs::path{made}.parent_path(), root.path);
  EXPECT_EQ(fs::path{made}.filename().string().rfind("node-task_1-", 0), 0u);
  EXPECT_EQ(read_text(fs::path{made} / "src" / "b.txt"), "B");
  auto bad = make_seeded_workspace(root.path.string(), "t",
                                   {{"../escape.txt", "x"}}, error);
  EXPECT_TRUE(bad.empty());
  EXPECT_NE(error.find("../escape.txt"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(root.path / "escape.txt"));
  // -- the run's changes back into the workspace
  auto failed = apply_run_changes(
    ws.path.string(),
    {{"a.txt", "A2"}, {"new/c.txt", "C"}, {"linked/d.txt", "no"}},
    {"src/b.txt", "gone-already.txt", "link.txt", "linked/secret", "../x"});
  EXPECT_EQ(read_text(ws.path / "a.txt"), "A2");
  EXPECT_EQ(read_text(ws.path / "new" / "c.txt"), "C");
  EXPECT_FALSE(fs::exists(ws.path / "src" / "b.txt"));
  // A deleted link is removed itself; its target stays.
  EXPECT_FALSE(fs::is_symlink(ws.path / "link.txt"));
  EXPECT_EQ(read_text(outside.path / "secret"), "secret");
  // Nothing reached through the linked folder.
  EXPECT_FALSE(fs::exists(outside.path / "d.txt"));
  ASSERT_EQ(failed.size(), 3u) << ::testing::PrintToString(failed);
  EXPECT_EQ(failed[0].rfind("linked/d.txt: ", 0), 0u) << failed[0];
  EXPECT_EQ(failed[1].rfind("linked/secret: ", 0), 0u) << failed[1];
  EXPECT_EQ(failed[2].rfind("../x: ", 0), 0u) << failed[2];
}

struct seen_seeds {
  std::mutex mtx;
  std::vector<std::vector<run_file>> seeds;
};

/// A node that records each task's seed and answers with `new.txt` written
/// and `old.txt` deleted.
node_actor::behavior_type changing_node(node_actor::pointer,
                                        std::shared_ptr<seen_seeds> seen) {
  return {
    [=](atom::node_hello, const std::string&, const std::string&) {
      return node_status{};
    },
    [=](atom::node_info) {
      return node_status{};
    },
    [=](atom::node_run, node_task& task) {
      {
        std::lock_guard<std::mutex> guard{seen->mtx};
        seen->seeds.push_back(task.seed);
      }
      auto out = answer_for("c", task, run_status::completed);
      out.result.files = {"new.txt"};
      out.files = {{"new.txt", "new from the node"}};
      step_result step;
      step.deleted = {"old.txt"};
      iteration_record it;
      it.steps.push_back(step);
      out.result.iterations.push_back(it);
      return out;
    },
    [=](atom::cancel, const std::string&) {
      return false;
    },
  };
}

TEST_F(fixture, a_spec_workspace_goes_to_the_node_and_its_changes_come_back) {
  temp_dir ws;
  std::ofstream{ws.path / "old.txt"} << "old";
  std::ofstream{ws.path / "keep.txt"} << "keep";
  auto seen = std::make_shared<seen_seeds>();
  auto c = sys.spawn(changing_node, seen);
  node_pool_deps deps;
  deps.out_dir = "/out-not-used";
  auto pool = sys.spawn(node_pool_impl, std::vector<node_link>{link_to("c", c)},
                        deps);
  auto spec = followup_in(ws.path);
  auto id = submit_spec(pool, spec);
  ASSERT_FALSE(id.empty());
  auto res = result(pool, id);
  EXPECT_EQ(res.status, run_status::completed) << res.message;
  EXPECT_EQ(res.workspace, ws.path.string());
  {
    std::lock_guard<std::mutex> guard{seen->mtx};
    ASSERT_EQ(seen->seeds.size(), 1u);
    ASSERT_EQ(seen->seeds[0].size(), 2u);
    EXPECT_EQ(seen->seeds[0][0].path, "keep.txt");
    EXPECT_EQ(seen->seeds[0][1].path, "old.txt");
    EXPECT_EQ(seen->seeds[0][1].content, "old");
  }
  EXPECT_EQ(read_text(ws.path / "new.txt"), "new from the node");
  EXPECT_FALSE(fs::exists(ws.path / "old.txt"));
  EXPECT_EQ(read_text(ws.path / "keep.txt"), "keep");
  EXPECT_FALSE(fs::exists("/out-not-used"));
  self->send_exit(pool, caf::exit_reason::user_shutdown);
  self->send_exit(c, caf::exit_reason::user_shutdown);
}

TEST_F(fixture, a_spec_workspace_is_locked_while_its_run_is_on_a_node) {
  temp_dir ws;
  std::ofstream{ws.path / "notes.md"} << "mine";
  auto a = sys.spawn(fake_node, std::string{"a"}, true); // holds the task
  auto pool = sys.spawn(node_pool_impl, std::vector<node_link>{link_to("a", a)},
                        node_pool_deps{});
  auto spec = followup_in(ws.path);
  auto id = submit_spec(pool, spec);
  ASSERT_FALSE(id.empty());
  // Locked once its files were read and it went to the node ("running").
  // (Probing with acquire() until it fails would race the pool for the
  // lock: a probe that wins makes the run fail as "in use".)
  auto until = std::chrono::steady_clock::now() + k_max_test_wait;
  std::string state;
  while (state != "running" && std::chrono::steady_clock::now() < until)
    self->request(pool, k_max_test_wait, atom::status_v, id)
      .receive(
        [&](run_info& info) {
          state = info.state;
        },
        [&](caf::error& e) {
          ADD_FAILURE() << sys.render(e);
          until = std::chrono::steady_clock::now();
        });
  ASSERT_EQ(state, "running");
  std::string why;
  bool held = !workspace_lock::acquire(ws.path, "probe", why);
  ASSERT_TRUE(held) << "not locked while on the node";
  // (The holder's run id is named once it wrote it into the lock file.)
  EXPECT_NE(why.find("is in use by"), std::string::npos) << why;
  // A second run of the same workspace meanwhile fails: it is in use.
  auto second = submit_spec(pool, spec);
  auto refused = result(pool, second);
  EXPECT_EQ(refused.status, run_status::failed);
  EXPECT_NE(refused.message.find("is in use by"), std::string::npos)
    << refused.message;
  // Answered: the lock is given back.
  self->send(a, atom::cancel_v, std::string{"finish"});
  EXPECT_EQ(result(pool, id).status, run_status::completed);
  bool free = false;
  until = std::chrono::steady_clock::now() + k_max_test_wait;
  while (!free && std::chrono::steady_clock::now() < until) {
    free = static_cast<bool>(workspace_lock::acquire(ws.path, "probe", why));
    if (!free)
      std::this_thread::yield();
  }
  EXPECT_TRUE(free) << why;
  self->send_exit(pool, caf::exit_reason::user_shutdown);
  self->send_exit(a, caf::exit_reason::user_shutdown);
}

TEST_F(fixture, beyond_retained_runs_the_oldest_finished_tasks_are_forgotten) {
  auto a = sys.spawn(fake_node, std::string{"a"}, false);
  node_pool_deps deps;
  deps.retained_runs = 2;
  auto pool = sys.spawn(node_pool_impl, std::vector<node_link>{link_to("a", a)},
                        deps);
  auto ids = submit(pool, 4);
  // The node answers in order: the last result comes after the others.
  EXPECT_EQ(result(pool, ids[3]).status, run_status::completed);
  auto known = [&](const std::string& id) {
    bool found = false;
    self->request(pool, k_max_test_wait, atom::status_v, id)
      .receive(
        [&](run_info&) {
          found = true;
        },
        [&](caf::error&) {});
    return found;
  };
  EXPECT_FALSE(known(ids[0]));
  EXPECT_FALSE(known(ids[1]));
  EXPECT_TRUE(known(ids[2]));
  EXPECT_TRUE(known(ids[3]));
  std::vector<run_info> listed;
  self->request(pool, k_max_test_wait, atom::list_v)
    .receive(
      [&](std::vector<run_info>& xs) {
        listed = xs;
      },
      [&](caf::error& e) {
        ADD_FAILURE() << sys.render(e);
      });
  EXPECT_EQ(listed.size(), 2u);
  self->send_exit(pool, caf::exit_reason::user_shutdown);
  self->send_exit(a, caf::exit_reason::user_shutdown);
}

} // namespace
} // namespace orch
