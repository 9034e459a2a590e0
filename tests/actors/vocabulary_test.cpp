// Every field of every payload crosses the wire. Each type of the vocabulary's
// type-ID block gets a sample with every field set to a non-default value,
// goes through CAF's binary serializer and back, and must come out equal
// field by field. Three guards keep it complete:
// - `fields()` names every member with a structured binding, so a member
//   added to a payload breaks the build here until it is listed;
// - a listed field left at its default in the sample fails the test;
// - a type added to the type-ID block without a sample breaks the build.
// So a field added later without `inspect` fails this test.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <gtest/gtest.h>

#include "actors/system_config.hpp"
#include "actors/vocabulary.hpp"

namespace orch {
namespace {

// -- every member of every payload, by structured binding ---------------------

// The binding must name every member: a new one is a compile error here.
// clang-format off
auto fields(usage& x) {
  auto& [a, b, c, d, e] = x;
  return std::tie(a, b, c, d, e);
}
auto fields(finding& x) {
  auto& [a, b, c, d] = x;
  return std::tie(a, b, c, d);
}
auto fields(step_outcome& x) {
  auto& [a, b, c, d, e, f, g, h, i, j] = x;
  return std::tie(a, b, c, d, e, f, g, h, i, j);
}
auto fields(refused_path& x) {
  auto& [a, b] = x;
  return std::tie(a, b);
}
auto fields(step_request& x) {
  auto& [a, b, c, d, e, f, g, h, i, j, k] = x;
  return std::tie(a, b, c, d, e, f, g, h, i, j, k);
}
auto fields(attempt_record& x) {
  auto& [a, b, c, d, e, f] = x;
  return std::tie(a, b, c, d, e, f);
}
auto fields(step_result& x) {
  auto& [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v] = x;
  return std::tie(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t,
                  u, v);
}
auto fields(cached_file& x) {
  auto& [a, b] = x;
  return std::tie(a, b);
}
auto fields(cached_refusal& x) {
  auto& [a, b] = x;
  return std::tie(a, b);
}
auto fields(step_cache_entry& x) {
  auto& [a, b, c, d, e, f, g, h, i, j, k] = x;
  return std::tie(a, b, c, d, e, f, g, h, i, j, k);
}
auto fields(cache_lookup& x) {
  auto& [a, b] = x;
  return std::tie(a, b);
}
auto fields(step_item& x) {
  auto& [a, b, c] = x;
  return std::tie(a, b, c);
}
auto fields(step_config& x) {
  auto& [a] = x;
  return std::tie(a);
}
auto fields(workflow_config& x) {
  auto& [a, b, c, d, e] = x;
  return std::tie(a, b, c, d, e);
}
auto fields(run_request& x) {
  auto& [a, b, c, d, e, f, g, h, i] = x;
  return std::tie(a, b, c, d, e, f, g, h, i);
}
auto fields(run_spec& x) {
  auto& [a, b, c, d, e, f, g, h, i] = x;
  return std::tie(a, b, c, d, e, f, g, h, i);
}
auto fields(session_message& x) {
  auto& [a, b, c, d, e, f, g] = x;
  return std::tie(a, b, c, d, e, f, g);
}
auto fields(session_submitted& x) {
  auto& [a, b, c, d, e, f, g] = x;
  return std::tie(a, b, c, d, e, f, g);
}
auto fields(session_entry& x) {
  auto& [a, b, c, d, e] = x;
  return std::tie(a, b, c, d, e);
}
auto fields(session_context& x) {
  auto& [a, b, c, d, e, f, g, h, i] = x;
  return std::tie(a, b, c, d, e, f, g, h, i);
}
auto fields(session_info& x) {
  auto& [a, b, c, d, e, f, g, h, i, j] = x;
  return std::tie(a, b, c, d, e, f, g, h, i, j);
}
auto fields(admission& x) {
  auto& [a, b, c, d] = x;
  return std::tie(a, b, c, d);
}
auto fields(run_info& x) {
  auto& [a, b, c, d, e, f, g] = x;
  return std::tie(a, b, c, d, e, f, g);
}
auto fields(iteration_record& x) {
  auto& [a, b, c] = x;
  return std::tie(a, b, c);
}
auto fields(run_result& x) {
  auto& [a, b, c, d, e, f, g, h, i, j, k, l, m] = x;
  return std::tie(a, b, c, d, e, f, g, h, i, j, k, l, m);
}
auto fields(progress_event& x) {
  auto& [a, b, c, d, e, f, g, h, i, j, k] = x;
  return std::tie(a, b, c, d, e, f, g, h, i, j, k);
}
// -- h16a
auto fields(batch_stats& x) {
  auto& [a, b, c, d, e, f, g, h, i, j] = x;
  return std::tie(a, b, c, d, e, f, g, h, i, j);
}
// -- h16b
auto fields(node_status& x) {
  auto& [a, b, c, d, e, f, g] = x;
  return std::tie(a, b, c, d, e, f, g);
}
auto fields(run_file& x) {
  auto& [a, b] = x;
  return std::tie(a, b);
}
auto fields(node_task& x) {
  auto& [a, b, c, d] = x;
  return std::tie(a, b, c, d);
}
auto fields(node_outcome& x) {
  auto& [a, b, c, d, e, f] = x;
  return std::tie(a, b, c, d, e, f);
}
auto fields(node_report& x) {
  auto& [a, b, c, d] = x;
  return std::tie(a, b, c, d);
}
// clang-format on

// -- field-wise comparison ----------------------------------------------------

template<class T, class = void>
struct has_fields : std::false_type {};

template<class T>
struct has_fields<T, std::void_t<decltype(fields(std::declval<T&>()))>>
  : std::true_type {};

template<class T>
struct is_vector : std::false_type {};

template<class T>
struct is_vector<std::vector<T>> : std::true_type {};

template<class Tuple, class F, std::size_t... Is>
void for_each_index(Tuple& xs, Tuple& ys, F&& f, std::index_sequence<Is...>) {
  (f(Is, std::get<Is>(xs), std::get<Is>(ys)), ...);
}

/// Calls `f(index, field of x, field of y)` for every field.
template<class T, class F>
void for_each_field(const T& x, const T& y, F&& f) {
  auto xs = fields(const_cast<T&>(x));
  auto ys = fields(const_cast<T&>(y));
  constexpr auto n = std::tuple_size<decltype(xs)>::value;
  for_each_index(xs, ys, f, std::make_index_sequence<n>{});
}

/// Returns the path of the first field where `x` and `y` differ, if any.
template<class T>
std::optional<std::string>
difference(const T& x, const T& y, const std::string& path) {
  if constexpr (has_fields<T>::value) {
    std::optional<std::string> out;
    for_each_field(x, y, [&](std::size_t i, const auto& a, const auto& b) {
      if (!out)
        out = difference(a, b, path + ".#" + std::to_string(i));
    });
    return out;
  } else if constexpr (is_vector<T>::value) {
    if (x.size() != y.size())
      return path + " (size " + std::to_string(x.size()) + " vs "
             + std::to_string(y.size()) + ")";
    for (std::size_t i = 0; i < x.size(); ++i)
      if (auto d = difference(x[i], y[i], path + "[" + std::to_string(i) + "]"))
        return d;
    return std::nullopt;
  } else {
    if (x == y)
      return std::nullopt;
    return path;
  }
}

/// Fails for every field of `x` (and of its nested payloads) that equals the
/// field of a default-constructed value: the sample would not show whether
/// that field crosses the wire.
template<class T>
void expect_filled(const T& x, const std::string& path) {
  if constexpr (has_fields<T>::value) {
    T def{};
    for_each_field(x, def, [&](std::size_t i, const auto& a, const auto& b) {
      auto at = path + ".#" + std::to_string(i);
      EXPECT_TRUE(difference(a, b, at))
        << at << " (0-based, declaration order) is left at its default in "
        << "the sample: give it a non-default value in make()";
      expect_filled(a, at);
    });
  } else if constexpr (is_vector<T>::value) {
    for (std::size_t i = 0; i < x.size(); ++i)
      expect_filled(x[i], path + "[" + std::to_string(i) + "]");
  }
}

// -- samples: every field non-default -----------------------------------------

template<class T>
struct tag {};

progress_sink::behavior_type sink_impl(int32_t) {
  return {[](atom::progress, const progress_event&) {
    // nop
  }};
}

struct samples {
  caf::actor_system& sys;
  progress_sink sink;

  usage make(tag<usage>) {
    return usage{10, 20, 5, 0.25, true};
  }
  finding make(tag<finding>) {
    return finding{"high", "a.py", 3, "bug"};
  }
  step_outcome make(tag<step_outcome>) {
    step_outcome x;
    x.ok = true;
    x.failure = failure_kind::rate_limited;
    x.message = "429 — slow down";
    x.final_text = "text\nwith lines";
    x.session_id = "s-1";
    x.tokens = make(tag<usage>{});
    x.reported_files = {"/w/a.py"};
    x.exit_code = 1;
    x.truncated = true;
    x.retry_at_ms = 1764600000000;
    return x;
  }
  refused_path make(tag<refused_path>) {
    return refused_path{"../x", "escapes"};
  }
  step_request make(tag<step_request>) {
    step_request x;
    x.run_id = "run-1";
    x.iteration = 2;
    x.step_index = 3;
    x.agent = "codex";
    x.task_kind = "review";
    x.prompt = "do it";
    x.workspace = "/w";
    x.review = true;
    x.progress = sink;
    x.no_cache = true;
    x.fallback_of = "claude";
    return x;
  }
  attempt_record make(tag<attempt_record>) {
    attempt_record x;
    x.agent = "claude";
    x.failure = failure_kind::transient;
    x.message = "claude: temporary API or network failure";
    x.started_ms = 1764600000000;
    x.duration_ms = 1500;
    x.files = {"a.py"};
    return x;
  }
  step_result make(tag<step_result>) {
    step_result x;
    x.agent = "codex";
    x.task_kind = "review";
    x.iteration = 2;
    x.step_index = 1;
    x.outcome = make(tag<step_outcome>{});
    x.findings = {make(tag<finding>{})};
    x.files = {"a.py", "b/c.py"};
    x.refused = {make(tag<refused_path>{})};
    x.deleted = {"old.py"};
    x.backups = {".orchestrator/backups/r/a.py"};
    x.reported_files = {"a.py"};
    x.conflicts = {"b/c.py"};
    x.output_file = ".orchestrator/outputs/r/i2-s2-1-codex.txt";
    x.argv_sha256 = "ab12";
    x.started_ms = 123;
    x.duration_ms = 45;
    x.attempts = {make(tag<attempt_record>{})};
    x.ran_as = "gemini";
    x.fallback_reason = "rate_limited: out of quota";
    x.cached = true;
    x.workspace_files = {"a.py", "b/c.py", "notes.md"};
    x.listed = true;
    return x;
  }
  step_cache_entry make(tag<step_cache_entry>) {
    step_cache_entry x;
    x.key = std::string(64, 'a');
    x.created_ms = 1700000000000;
    x.agent = "codex";
    x.task_kind = "review";
    x.outcome = make(tag<step_outcome>{});
    x.findings = {make(tag<finding>{})};
    x.files = {cached_file{"a.py", std::string{"print(1)\0\xff", 10}}};
    x.deleted = {"old.py"};
    x.reported_files = {"a.py"};
    x.refused = {cached_refusal{"../x", "escapes"}};
    x.duration_ms = 77;
    return x;
  }
  cache_lookup make(tag<cache_lookup>) {
    return cache_lookup{true, make(tag<step_cache_entry>{})};
  }
  step_item make(tag<step_item>) {
    return step_item{"gemini", "review", "Review it"};
  }
  step_config make(tag<step_config>) {
    step_config x;
    x.items = {make(tag<step_item>{}), step_item{"claude", "refine", "Fix"}};
    return x;
  }
  workflow_config make(tag<workflow_config>) {
    workflow_config x;
    x.name = "wf";
    x.description = "a workflow";
    x.max_iterations = 7;
    x.min_suggestions_threshold = 2;
    x.steps = {make(tag<step_config>{})};
    return x;
  }
  run_request make(tag<run_request>) {
    run_request x;
    x.run_id = "run-1";
    x.task = "build it";
    x.workflow = "wf";
    x.workspace = "/w";
    x.max_iterations = 4;
    x.progress = sink;
    x.workflow_def = make(tag<workflow_config>{});
    x.no_cache = true;
    x.followup = true;
    return x;
  }
  run_spec make(tag<run_spec>) {
    run_spec x;
    x.task = "build it";
    x.workflow = "wf";
    x.agents = "codex,gemini";
    x.max_iterations = 4;
    x.workspace = "/w";
    x.no_cache = true;
    x.user = "alice";
    x.followup = true;
    x.label = "task-07";
    return x;
  }
  session_message make(tag<session_message>) {
    session_message x;
    x.text = "add tests";
    x.mode = followup_mode::new_task;
    x.progress = sink;
    x.workflow = "quick";
    x.max_iterations = 2;
    x.agents = "codex,gemini";
    x.no_cache = true;
    return x;
  }
  session_submitted make(tag<session_submitted>) {
    session_submitted x;
    x.kind = message_kind::ambiguous;
    x.run_id = "run-1";
    x.reason = "short message (2 words) with \"add\"";
    x.task = "add tests\n\nThis is a follow-up";
    x.workspace = "/w/session-1";
    x.workflow = "wf";
    x.agent = "codex";
    return x;
  }
  session_entry make(tag<session_entry>) {
    session_entry x;
    x.role = "assistant";
    x.content = "API created";
    x.files = {"api.py"};
    x.timestamp = "2024-01-15T10:01:30Z";
    x.run_id = "run-1";
    return x;
  }
  session_context make(tag<session_context>) {
    session_context x;
    x.has_previous = true;
    x.previous_task = "create a REST API";
    x.summary = "completed";
    x.files = {"api.py", "models.py"};
    x.workspace = "/w/session-1";
    x.workflow = "wf";
    x.timestamp = "2024-01-15T10:01:30Z";
    x.run_id = "run-1";
    x.status = run_status::converged;
    return x;
  }
  session_info make(tag<session_info>) {
    session_info x;
    x.session_id = "0123456789abcdef";
    x.name = "blog-api";
    x.created_at = "2024-01-15T10:00:00Z";
    x.workflow = "wf";
    x.agent = "codex";
    x.workspace = "/w/session-1";
    x.messages = 4;
    x.unsaved = 2;
    x.running = "run-2";
    x.path = "/s/sessions/blog-api.json";
    return x;
  }
  admission make(tag<admission>) {
    admission x;
    x.admitted = false;
    x.wait_ms = 2400;
    x.user = "alice";
    x.message = "rate limit: 20 runs per minute for user alice";
    return x;
  }
  run_info make(tag<run_info>) {
    run_info x;
    x.run_id = "run-1";
    x.workflow = "wf";
    x.task = "build it";
    x.workspace = "/w";
    x.state = "running";
    x.status = run_status::no_progress;
    x.started_ms = 1700000000000;
    return x;
  }
  iteration_record make(tag<iteration_record>) {
    return iteration_record{2, {make(tag<step_result>{})}, 1};
  }
  run_result make(tag<run_result>) {
    run_result x;
    x.run_id = "run-1";
    x.task = "build it";
    x.workflow = "wf";
    x.workspace = "/w";
    x.status = run_status::no_progress;
    x.message = "stopped";
    x.iterations = {make(tag<iteration_record>{})};
    x.findings = {make(tag<finding>{})};
    x.files = {"a.py"};
    x.preserved_files = 3;
    x.preserve_error = "disk full";
    x.tokens = make(tag<usage>{});
    x.duration_ms = 99;
    return x;
  }
  progress_event make(tag<progress_event>) {
    progress_event x;
    x.kind = progress_event::kind_t::run_finished;
    x.run_id = "run-1";
    x.iteration = 2;
    x.step_index = 1;
    x.step_count = 3;
    x.agent = "gemini";
    x.task_kind = "review";
    x.text = "done";
    x.ok = false;
    x.elapsed_ms = 7;
    x.seq = 42;
    return x;
  }
  progress_sink make(tag<progress_sink>) {
    return sink;
  }
  // -- h16a
  batch_stats make(tag<batch_stats>) {
    batch_stats x;
    x.total = 200;
    x.skipped = 3;
    x.bad_lines = 2;
    x.running = 16;
    x.succeeded = 100;
    x.failed = 9;
    x.refused = 1;
    x.elapsed_ms = 4200;
    x.stopped = true;
    x.error = "cannot write: disk full";
    return x;
  }
  // -- h16b
  node_status make(tag<node_status>) {
    node_status x;
    x.version = "0.1.0";
    x.vocabulary = "0123456789abcdef";
    x.slots = 8;
    x.running = 3;
    x.agents = {"codex", "claude"};
    x.unavailable = {"gemini: not installed"};
    x.finished = 12;
    return x;
  }
  run_file make(tag<run_file>) {
    return run_file{"src/a.py", std::string{"print(1)\0\xff", 10}};
  }
  node_task make(tag<node_task>) {
    node_task x;
    x.task_id = "run-1";
    x.attempt = 2;
    x.spec = make(tag<run_spec>{});
    x.seed = {make(tag<run_file>{})};
    return x;
  }
  node_outcome make(tag<node_outcome>) {
    node_outcome x;
    x.task_id = "run-1";
    x.attempt = 2;
    x.node = "10.0.0.2:4000";
    x.result = make(tag<run_result>{});
    x.files = {make(tag<run_file>{})};
    x.omitted = {"big.bin: left out, over the limit of 8388608 bytes per run"};
    return x;
  }
  // -- h17
  node_report make(tag<node_report>) {
    node_report x;
    x.address = "10.0.0.2:4000";
    x.alive = true;
    x.error = "connection refused";
    x.status = make(tag<node_status>{});
    return x;
  }
  template<class T>
  std::vector<T> make(tag<std::vector<T>>) {
    return {make(tag<T>{}), make(tag<T>{})};
  }
};

// -- the round trip -----------------------------------------------------------

template<class T>
T roundtrip(caf::actor_system& sys, const T& x) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  auto copy = x;
  EXPECT_FALSE(sink(copy));
  T y;
  caf::binary_deserializer source{sys, buf};
  EXPECT_FALSE(source(y));
  return y;
}

template<class T>
void check_type(samples& s) {
  const std::string name = caf::type_name<T>::value;
  SCOPED_TRACE(name);
  T x = s.make(tag<T>{});
  expect_filled(x, name);
  T y = roundtrip(s.sys, x);
  auto diff = difference(x, y, name);
  EXPECT_FALSE(diff) << *diff
                     << " differs after the round trip: is it in inspect()?";
}

template<caf::type_id_t... Is>
void check_block(samples& s, std::integer_sequence<caf::type_id_t, Is...>) {
  (check_type<typename caf::type_by_id<caf::id_block::orch::begin + Is>::type>(
     s),
   ...);
}

TEST(vocabulary, every_field_of_every_payload_survives_a_binary_round_trip) {
  system_config cfg;
  caf::actor_system sys{cfg};
  samples s{sys, sys.spawn(sink_impl, int32_t{0})};
  constexpr auto n = caf::id_block::orch::end - caf::id_block::orch::begin;
  check_block(s, std::make_integer_sequence<caf::type_id_t, n>{});
  caf::anon_send_exit(s.sink, caf::exit_reason::user_shutdown);
}

TEST(vocabulary, a_field_missing_from_inspect_is_found) {
  // The detector itself: a field the wire drops shows as a difference.
  system_config cfg;
  caf::actor_system sys{cfg};
  samples s{sys, sys.spawn(sink_impl, int32_t{0})};
  auto x = s.make(tag<step_result>{});
  auto y = x;
  y.backups.clear();
  auto diff = difference(x, y, "step_result");
  ASSERT_TRUE(diff);
  EXPECT_EQ(*diff, "step_result.#9 (size 1 vs 0)");
  step_result def;
  def.agent = "x";
  EXPECT_TRUE(difference(def, step_result{}, "r"));
  caf::anon_send_exit(s.sink, caf::exit_reason::user_shutdown);
}

} // namespace
} // namespace orch
