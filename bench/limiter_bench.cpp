// Rate limiter decisions per second (issue 12, part 5), with Google
// Benchmark:
//  - the token bucket's arithmetic alone;
//  - the in-memory store (one user, and 1000 users);
//  - the shared file in a state directory (flock, read, parse, decide,
//    atomic replace: what each `run` process pays once);
//  - the limiter actor answering `admit` requests (memory store), request
//    and reply through CAF included.
// Usage: limiter_bench [--benchmark_filter=...] (see --help)

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>
#include <unistd.h>

#include "actors/rate_limiter.hpp"
#include "actors/system_config.hpp"
#include "runtime/rate_limit_store.hpp"
#include "runtime/state_dir.hpp"
#include "runtime/token_bucket.hpp"

namespace {

namespace fs = std::filesystem;
using namespace orch;

// Generous limits: every decision is an admission that refills and takes.
constexpr bucket_params params{1'000'000, 1'000'000};

void bm_token_bucket(benchmark::State& state) {
  int64_t now = 1'700'000'000'000;
  auto b = full_bucket(params, now);
  for (auto _ : state) {
    auto d = take_token(b, params, ++now);
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_token_bucket);

void bm_memory_store(benchmark::State& state) {
  memory_rate_limit_store store;
  std::vector<std::string> users;
  for (int64_t i = 0; i < state.range(0); ++i)
    users.push_back("user-" + std::to_string(i));
  int64_t now = 1'700'000'000'000;
  size_t k = 0;
  for (auto _ : state) {
    auto d = store.take(users[k++ % users.size()], params, ++now);
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_memory_store)->Arg(1)->Arg(1000);

void bm_file_store(benchmark::State& state) {
  auto root = fs::temp_directory_path()
              / ("orch-limiter-bench-" + std::to_string(::getpid()));
  fs::remove_all(root);
  std::string error;
  auto fd = open_state_dir(root / "state", error);
  auto store = fd ? open_file_rate_limit_store(fd.get(), error) : nullptr;
  if (!store) {
    state.SkipWithError(error.c_str());
    return;
  }
  std::vector<std::string> users;
  for (int64_t i = 0; i < state.range(0); ++i)
    users.push_back("user-" + std::to_string(i));
  int64_t now = 1'700'000'000'000;
  size_t k = 0;
  for (auto _ : state) {
    // Slow refill here, so that the other users' buckets stay in the file.
    auto d = store->take(users[k++ % users.size()], bucket_params{1, 1000},
                         ++now);
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations());
  store.reset();
  fs::remove_all(root);
}
BENCHMARK(bm_file_store)->Arg(1)->Arg(100)->UseRealTime();

void bm_limiter_actor(benchmark::State& state) {
  system_config cfg{false, false, 2};
  caf::actor_system sys{cfg};
  rate_limit_settings s;
  s.enabled = true;
  s.requests_per_minute = 1'000'000;
  s.burst_size = 1'000'000;
  auto limiter = sys.spawn(rate_limiter_impl, s, rate_limiter_deps{});
  {
    caf::scoped_actor self{sys};
    const std::string user = "alice";
    for (auto _ : state) {
      self->request(limiter, caf::infinite, atom::admit_v, user)
        .receive(
          [](admission& a) {
            benchmark::DoNotOptimize(a);
          },
          [&](caf::error& e) {
            state.SkipWithError(sys.render(e).c_str());
          });
    }
  }
  state.SetItemsProcessed(state.iterations());
  caf::anon_send_exit(limiter, caf::exit_reason::user_shutdown);
}
BENCHMARK(bm_limiter_actor)->UseRealTime();

} // namespace

BENCHMARK_MAIN();
