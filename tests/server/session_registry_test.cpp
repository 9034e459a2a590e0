// The server's registry of live sessions: names are unique, updates and
// removals are by name, and many threads may use it at once.

#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "server/session_registry.hpp"

using namespace orch::server;

namespace {

live_session named(std::string name, int64_t ms = 1) {
  live_session s;
  s.name = std::move(name);
  s.created_ms = s.updated_ms = ms;
  return s;
}

TEST(session_registry_test, a_name_is_taken_once) {
  session_registry reg;
  EXPECT_TRUE(reg.add(named("blog")));
  EXPECT_FALSE(reg.add(named("blog")));
  EXPECT_TRUE(reg.add(named("api")));
  EXPECT_EQ(reg.size(), 2U);
  auto all = reg.all();
  ASSERT_EQ(all.size(), 2U);
  EXPECT_EQ(all[0].name, "api");
  EXPECT_EQ(all[1].name, "blog");
}

TEST(session_registry_test, update_sets_conversation_and_time) {
  session_registry reg;
  reg.add(named("blog", 5));
  EXPECT_TRUE(reg.find("blog")->conversation);
  EXPECT_TRUE(reg.update("blog", false, 9));
  auto s = reg.find("blog");
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->conversation);
  EXPECT_EQ(s->updated_ms, 9);
  EXPECT_EQ(s->created_ms, 5);
  // Only the time: the mode stays.
  EXPECT_TRUE(reg.update("blog", std::nullopt, 12));
  EXPECT_FALSE(reg.find("blog")->conversation);
  EXPECT_FALSE(reg.update("nope", true, 1));
}

TEST(session_registry_test, remove_and_take_all_empty_it) {
  session_registry reg;
  reg.add(named("a"));
  reg.add(named("b"));
  auto a = reg.remove("a");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->name, "a");
  EXPECT_FALSE(reg.remove("a"));
  EXPECT_FALSE(reg.find("a"));
  auto rest = reg.take_all();
  ASSERT_EQ(rest.size(), 1U);
  EXPECT_EQ(rest[0].name, "b");
  EXPECT_EQ(reg.size(), 0U);
}

TEST(session_registry_test, concurrent_adds_of_one_name_let_one_win) {
  session_registry reg;
  std::vector<std::thread> threads;
  std::vector<int> won(8, 0);
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] {
      for (int n = 0; n < 200; ++n)
        if (reg.add(named("s" + std::to_string(n))))
          ++won[static_cast<size_t>(i)];
    });
  for (auto& t : threads)
    t.join();
  int total = 0;
  for (int w : won)
    total += w;
  EXPECT_EQ(total, 200);
  EXPECT_EQ(reg.size(), 200U);
}

} // namespace
