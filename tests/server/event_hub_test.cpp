#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "server/event_hub.hpp"

using namespace orch::server;
using kind = orch::progress_event::kind_t;
using std::chrono::steady_clock;

namespace {

stored_event ev(const std::string& run, uint64_t seq,
                kind k = kind::step_started) {
  stored_event e;
  e.run_id = run;
  e.seq = seq;
  e.kind = k;
  e.json = "{\"seq\":" + std::to_string(seq) + "}";
  return e;
}

std::vector<uint64_t> seqs(const event_hub::batch& b) {
  std::vector<uint64_t> out;
  for (auto& e : b.events)
    out.push_back(e->seq);
  return out;
}

TEST(event_hub_test, resume_after_n_has_no_gap_and_no_duplicate) {
  event_hub hub;
  for (uint64_t i = 1; i <= 5; ++i)
    hub.push(ev("a", i));
  EXPECT_EQ(seqs(hub.events_of("a", 0)),
            (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(seqs(hub.events_of("a", 3)), (std::vector<uint64_t>{4, 5}));
  // A repeated or older seq is ignored.
  hub.push(ev("a", 5));
  hub.push(ev("a", 2));
  EXPECT_EQ(seqs(hub.events_of("a", 0)).size(), 5u);
  EXPECT_TRUE(hub.events_of("b", 0).events.empty());
}

TEST(event_hub_test, nothing_after_run_finished) {
  event_hub hub;
  hub.push(ev("a", 1));
  hub.push(ev("a", 2, kind::run_finished));
  hub.push(ev("a", 3));
  auto b = hub.events_of("a", 0);
  EXPECT_EQ(seqs(b), (std::vector<uint64_t>{1, 2}));
  EXPECT_TRUE(b.finished);
  EXPECT_NE(hub.finished_ms("a"), 0);
  EXPECT_TRUE(hub.wait_finished({"a"}, steady_clock::now()));
  EXPECT_FALSE(hub.wait_finished({"a", "b"}, steady_clock::now()));
}

TEST(event_hub_test, a_waiting_stream_wakes_on_the_next_event) {
  event_hub hub;
  hub.push(ev("a", 1));
  std::thread producer{[&hub] {
    hub.push(ev("a", 2));
  }};
  auto b = hub.wait_run("a", 1, steady_clock::now() + std::chrono::seconds{30});
  producer.join();
  EXPECT_EQ(seqs(b), (std::vector<uint64_t>{2}));
}

TEST(event_hub_test, close_wakes_every_waiter) {
  event_hub hub;
  std::thread closer{[&hub] {
    hub.close();
  }};
  auto b = hub.wait_run("a", 0, steady_clock::now() + std::chrono::seconds{30});
  closer.join();
  EXPECT_TRUE(b.closed);
  EXPECT_TRUE(
    hub.wait_all(0, steady_clock::now() + std::chrono::seconds{30}).closed);
}

TEST(event_hub_test, the_all_runs_order_and_resume) {
  event_hub hub;
  hub.push(ev("a", 1));
  hub.push(ev("b", 1));
  hub.push(ev("a", 2));
  auto all = hub.wait_all(0, steady_clock::now());
  ASSERT_EQ(all.events.size(), 3u);
  EXPECT_EQ(all.events[1]->run_id, "b");
  auto pos = hub.global_of("b", 1);
  ASSERT_TRUE(pos);
  auto rest = hub.wait_all(*pos, steady_clock::now());
  ASSERT_EQ(rest.events.size(), 1u);
  EXPECT_EQ(rest.events[0]->run_id, "a");
  EXPECT_EQ(rest.events[0]->seq, 2u);
  EXPECT_EQ(hub.last_global(), 3u);
}

TEST(event_hub_test, bounds_keep_running_runs_before_finished_ones) {
  event_hub hub{3, 2, 100};
  hub.push(ev("old", 1, kind::run_finished));
  hub.push(ev("run1", 1));
  hub.push(ev("run2", 1));
  // Two runs at most: the finished one went first.
  EXPECT_TRUE(hub.events_of("old", 0).events.empty());
  EXPECT_EQ(hub.events_of("run1", 0).events.size(), 1u);
  for (uint64_t i = 2; i <= 6; ++i)
    hub.push(ev("run2", i));
  // Three events per run at most: the newest.
  EXPECT_EQ(seqs(hub.events_of("run2", 0)), (std::vector<uint64_t>{4, 5, 6}));
}

} // namespace
