#include "runtime/metrics.hpp"

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <utility>

#include <unistd.h>

#include <prometheus/client_metric.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "runtime/counters.hpp"
#include "runtime/path_rules.hpp"

namespace orch {

namespace {

namespace prom = prometheus;

/// Label values longer than this are cut.
constexpr std::size_t max_label_bytes = 128;

/// Run durations: a fake agent's run takes milliseconds, a real one minutes.
const prom::Histogram::BucketBoundaries task_buckets{
  0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600};

/// One agent invocation: from an instant fake to a long CLI turn.
const prom::Histogram::BucketBoundaries call_buckets{
  0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200};

/// How one process counter (runtime/counters.hpp) is exposed.
struct counter_view {
  std::string_view counter;
  const char* family;
  const char* help;
  /// Name of the label that carries the counter's label; nullptr: the
  /// counter has none (a sample with an empty label only).
  const char* label;
  /// A fixed label telling apart counters that share one family.
  const char* fixed_name;
  const char* fixed_value;
};

const counter_view counter_views[] = {
  {counter::cache_hits, "orchestrator_cache_hits_total",
   "Steps answered by the step cache.", "agent", nullptr, nullptr},
  {counter::cache_misses, "orchestrator_cache_misses_total",
   "Steps the step cache did not hold.", "agent", nullptr, nullptr},
  {counter::cache_corrupt, "orchestrator_cache_corrupt_total",
   "Step cache entries dropped as unreadable.", nullptr, nullptr, nullptr},
  {counter::retries, "orchestrator_retries_total",
   "Step attempts retried after a retryable failure.", "agent", nullptr,
   nullptr},
  {counter::quota_waits, "orchestrator_quota_waits_total",
   "Steps that waited for an agent's quota to reset.", "agent", nullptr,
   nullptr},
  {counter::fallbacks, "orchestrator_fallbacks_total",
   "Steps handed from an agent to one of its fallback agents.", "agent",
   nullptr, nullptr},
  {counter::breaker_opened, "orchestrator_breaker_transitions_total",
   "Circuit breaker transitions, by the state entered.", "agent", "state",
   "open"},
  {counter::breaker_half_opened, "orchestrator_breaker_transitions_total",
   "Circuit breaker transitions, by the state entered.", "agent", "state",
   "half_open"},
  {counter::breaker_closed, "orchestrator_breaker_transitions_total",
   "Circuit breaker transitions, by the state entered.", "agent", "state",
   "closed"},
  {counter::breaker_refusals, "orchestrator_breaker_refusals_total",
   "Steps refused without running because the agent's breaker was open.",
   "agent", nullptr, nullptr},
  {counter::limiter_admitted, "orchestrator_rate_limiter_decisions_total",
   "Run submissions the rate limiter decided on.", "user", "decision",
   "admitted"},
  {counter::limiter_refused, "orchestrator_rate_limiter_decisions_total",
   "Run submissions the rate limiter decided on.", "user", "decision",
   "refused"},
  {counter::api_limiter_admitted, "orchestrator_api_rate_limit_decisions_total",
   "API requests the server's rate limiter decided on, by client.", "client",
   "decision", "admitted"},
  {counter::api_limiter_refused, "orchestrator_api_rate_limit_decisions_total",
   "API requests the server's rate limiter decided on, by client.", "client",
   "decision", "refused"},
  {counter::audit_errors, "orchestrator_audit_errors_total",
   "Audit log lines that could not be written.", nullptr, nullptr, nullptr},
  {counter::session_messages, "orchestrator_session_messages_total",
   "Session messages, by how they were read.", "kind", nullptr, nullptr},
  {counter::session_saves, "orchestrator_session_saves_total",
   "Sessions saved.", nullptr, nullptr, nullptr},
  {counter::session_store_errors, "orchestrator_session_store_errors_total",
   "Session saves or loads that failed.", "op", nullptr, nullptr},
};

/// Returns `name` as a metric name part: [a-z0-9_], other bytes `_`.
std::string metric_name_part(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    out += std::isalnum(u) != 0 ? static_cast<char>(std::tolower(u)) : '_';
  }
  return out.empty() ? std::string{"unnamed"} : out;
}

/// Returns the process counters as metric families: every family of the
/// table (with a 0 sample when it has no label and was never added to), and
/// one more per counter the table does not know.
std::vector<prom::MetricFamily> counter_families() {
  std::map<std::string, prom::MetricFamily> families;
  for (const auto& view : counter_views) {
    auto& fam = families[view.family];
    fam.name = view.family;
    fam.help = view.help;
    fam.type = prom::MetricType::Counter;
  }
  std::map<std::string, bool> unlabelled_seen;
  for (const auto& sample : counters().samples()) {
    auto view = std::find_if(std::begin(counter_views), std::end(counter_views),
                             [&](const counter_view& v) {
                               return v.counter == sample.name;
                             });
    prom::ClientMetric m;
    m.counter.value = static_cast<double>(sample.value);
    if (view == std::end(counter_views)) {
      auto name = "orchestrator_" + metric_name_part(sample.name) + "_total";
      auto& fam = families[name];
      fam.name = name;
      fam.help = "Process counter " + metric_label(sample.name) + ".";
      fam.type = prom::MetricType::Counter;
      if (!sample.label.empty())
        m.label.push_back({"label", metric_label(sample.label)});
      fam.metric.push_back(std::move(m));
      continue;
    }
    if (view->label != nullptr)
      m.label.push_back({view->label, metric_label(sample.label)});
    else if (!sample.label.empty())
      m.label.push_back({"label", metric_label(sample.label)});
    if (view->fixed_name != nullptr)
      m.label.push_back({view->fixed_name, view->fixed_value});
    std::sort(m.label.begin(), m.label.end());
    if (view->label == nullptr && sample.label.empty())
      unlabelled_seen[view->family] = true;
    families[view->family].metric.push_back(std::move(m));
  }
  for (const auto& view : counter_views)
    if (view.label == nullptr && !unlabelled_seen[view.family])
      families[view.family].metric.emplace_back();
  std::vector<prom::MetricFamily> out;
  out.reserve(families.size());
  for (auto& kvp : families)
    out.push_back(std::move(kvp.second));
  return out;
}

} // namespace

struct metrics_registry::impl {
  prom::Registry registry;
  /// Name, help and type of every family of `registry`, without series.
  std::vector<prom::MetricFamily> empty_families;

  /// Registers a family and remembers its header.
  template<class T>
  prom::Family<T>& family(prom::detail::Builder<T> builder, const char* name,
                          const char* help, prom::MetricType type) {
    empty_families.push_back({name, help, type, {}});
    return builder.Name(name).Help(help).Register(registry);
  }

  prom::Family<prom::Counter>& tasks = family(
    prom::BuildCounter(), "orchestrator_tasks_total",
    "Runs finished, by workflow and run status.", prom::MetricType::Counter);
  prom::Family<prom::Histogram>& task_duration
    = family(prom::BuildHistogram(), "orchestrator_task_duration_seconds",
             "Run durations, by workflow.", prom::MetricType::Histogram);
  prom::Family<prom::Counter>& task_failures
    = family(prom::BuildCounter(), "orchestrator_task_failures_total",
             "Runs that failed or were cancelled, by workflow and the failure "
             "kind of the failing step.",
             prom::MetricType::Counter);
  prom::Family<prom::Gauge>& success_rate
    = family(prom::BuildGauge(), "orchestrator_task_success_rate",
             "Share of finished runs that were neither failed nor cancelled, "
             "by workflow, since start.",
             prom::MetricType::Gauge);
  prom::Gauge& running
    = family(prom::BuildGauge(), "orchestrator_tasks_running",
             "Runs started and not finished.", prom::MetricType::Gauge)
        .Add({});
  prom::Family<prom::Counter>& agent_calls
    = family(prom::BuildCounter(), "orchestrator_agent_calls_total",
             "Agent CLI invocations (each attempt of a step).",
             prom::MetricType::Counter);
  prom::Family<prom::Counter>& agent_errors = family(
    prom::BuildCounter(), "orchestrator_agent_errors_total",
    "Failed agent invocations, by failure kind.", prom::MetricType::Counter);
  prom::Family<prom::Histogram>& agent_response
    = family(prom::BuildHistogram(), "orchestrator_agent_response_time_seconds",
             "Duration of agent invocations.", prom::MetricType::Histogram);
  prom::Family<prom::Gauge>& availability
    = family(prom::BuildGauge(), "orchestrator_agent_availability",
             "1 when the agent can run (installed, enabled), else 0.",
             prom::MetricType::Gauge);
  prom::Family<prom::Counter>& tokens
    = family(prom::BuildCounter(), "orchestrator_agent_tokens_total",
             "Tokens the agents reported, by type (input includes cached).",
             prom::MetricType::Counter);
  prom::Family<prom::Counter>& cost = family(
    prom::BuildCounter(), "orchestrator_agent_cost_usd_total",
    "Cost in USD as reported by the agent CLIs.", prom::MetricType::Counter);
  prom::Gauge& active_sessions
    = family(prom::BuildGauge(), "orchestrator_active_sessions",
             "Live sessions.", prom::MetricType::Gauge)
        .Add({});
  prom::Gauge& memory
    = family(prom::BuildGauge(), "orchestrator_memory_usage_bytes",
             "Resident set size of the process.", prom::MetricType::Gauge)
        .Add({});

  std::mutex mutex;
  /// Signalled when `recorded` grows.
  std::condition_variable recorded_cv;
  /// record_task calls so far.
  uint64_t recorded = 0;
  /// Per workflow: runs finished, runs ok.
  std::map<std::string, std::pair<uint64_t, uint64_t>> outcomes;
  int64_t running_runs = 0;
};

metrics_registry::metrics_registry() : impl_{std::make_unique<impl>()} {
  // nop
}

metrics_registry::~metrics_registry() = default;

bool metrics_registry::wait_recorded(uint64_t n,
                                     std::chrono::milliseconds limit) const {
  auto& d = *impl_;
  std::unique_lock<std::mutex> guard{d.mutex};
  return d.recorded_cv.wait_for(guard, limit, [&] {
    return d.recorded >= n;
  });
}

void metrics_registry::record_task(const task_sample& x) {
  auto workflow = metric_label(x.workflow);
  auto& d = *impl_;
  d.tasks.Add({{"workflow", workflow}, {"status", metric_label(x.status)}})
    .Increment();
  d.task_duration.Add({{"workflow", workflow}}, task_buckets)
    .Observe(std::max(0.0, x.duration_seconds));
  if (!x.ok)
    d.task_failures
      .Add(
        {{"workflow", workflow},
         {"kind", metric_label(x.failure.empty() ? "run_error" : x.failure)}})
      .Increment();
  double rate = 0;
  {
    std::lock_guard<std::mutex> guard{d.mutex};
    auto& counts = d.outcomes[workflow];
    ++counts.first;
    if (x.ok)
      ++counts.second;
    rate = static_cast<double>(counts.second)
           / static_cast<double>(counts.first);
  }
  d.success_rate.Add({{"workflow", workflow}}).Set(rate);
  {
    std::lock_guard<std::mutex> guard{d.mutex};
    ++d.recorded;
  }
  d.recorded_cv.notify_all();
}

void metrics_registry::record_agent_call(const agent_call_sample& x) {
  auto agent = metric_label(x.agent);
  auto& d = *impl_;
  d.agent_calls.Add({{"agent", agent}}).Increment();
  if (!x.ok)
    d.agent_errors
      .Add({{"agent", agent},
            {"kind", metric_label(x.failure.empty() ? "unknown" : x.failure)}})
      .Increment();
  d.agent_response.Add({{"agent", agent}}, call_buckets)
    .Observe(std::max(0.0, x.seconds));
  auto add_tokens = [&](const char* type, int64_t n) {
    auto& c = d.tokens.Add({{"agent", agent}, {"type", type}});
    if (n > 0)
      c.Increment(static_cast<double>(n));
  };
  add_tokens("input", x.input_tokens);
  add_tokens("output", x.output_tokens);
  add_tokens("cached", x.cached_tokens);
  auto& c = d.cost.Add({{"agent", agent}});
  if (x.cost_usd > 0)
    c.Increment(x.cost_usd);
}

void metrics_registry::add_running(int delta) {
  auto& d = *impl_;
  std::lock_guard<std::mutex> guard{d.mutex};
  d.running_runs = std::max<int64_t>(0, d.running_runs + delta);
  d.running.Set(static_cast<double>(d.running_runs));
}

void metrics_registry::set_agent_available(std::string_view agent,
                                           bool available) {
  impl_->availability.Add({{"agent", metric_label(agent)}})
    .Set(available ? 1.0 : 0.0);
}

void metrics_registry::set_active_sessions(int64_t n) {
  impl_->active_sessions.Set(static_cast<double>(std::max<int64_t>(0, n)));
}

std::string metrics_registry::render() const {
  impl_->memory.Set(static_cast<double>(resident_memory_bytes()));
  auto collected = impl_->registry.Collect();
  // prometheus-cpp leaves out a family with no series yet; a scraper (and a
  // reader of the docs) still sees its HELP and TYPE from the start, and the
  // families keep the order they were made in.
  std::vector<prom::MetricFamily> families;
  for (const auto& fam : impl_->empty_families) {
    auto it = std::find_if(collected.begin(), collected.end(),
                           [&](const prom::MetricFamily& f) {
                             return f.name == fam.name;
                           });
    if (it != collected.end())
      families.push_back(std::move(*it));
    else
      families.push_back(fam);
  }
  auto more = counter_families();
  families.insert(families.end(), std::make_move_iterator(more.begin()),
                  std::make_move_iterator(more.end()));
  return prom::TextSerializer{}.Serialize(families);
}

int64_t resident_memory_bytes() {
  auto* f = std::fopen("/proc/self/statm", "re");
  if (f == nullptr)
    return 0;
  long long size = 0;
  long long resident = 0;
  auto n = std::fscanf(f, "%lld %lld", &size, &resident);
  std::fclose(f);
  auto page = ::sysconf(_SC_PAGESIZE);
  if (n != 2 || page <= 0 || resident < 0)
    return 0;
  return static_cast<int64_t>(resident) * static_cast<int64_t>(page);
}

std::string metric_label(std::string_view value) {
  std::string out;
  out.reserve(std::min(value.size(), max_label_bytes));
  std::size_t i = 0;
  while (i < value.size()) {
    auto start = i;
    uint32_t cp = 0;
    std::string_view piece;
    if (detail::decode_utf8(value, i, cp)) {
      piece = value.substr(start, i - start);
    } else {
      i = start + 1;
      piece = "\xEF\xBF\xBD";
    }
    if (out.size() + piece.size() > max_label_bytes)
      break;
    out.append(piece);
  }
  return out;
}

} // namespace orch
