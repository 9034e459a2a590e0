#include "actors/rate_limiter.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include <caf/stateful_actor.hpp>

#include "runtime/audit_log.hpp"
#include "runtime/clock.hpp"
#include "runtime/counters.hpp"

namespace orch {

namespace {

std::string wait_text(int64_t wait_ms) {
  // Rounded up: "in 0.0s" would be a lie.
  auto tenths = (std::max<int64_t>(wait_ms, 1) + 99) / 100;
  char out[32];
  std::snprintf(out, sizeof(out), "%lld.%llds",
                static_cast<long long>(tenths / 10),
                static_cast<long long>(tenths % 10));
  return out;
}

} // namespace

std::string rate_limit_key(const rate_limit_settings& s,
                           const std::string& user) {
  return s.per_user ? user : std::string{"*"};
}

std::string rate_limit_message(const rate_limit_settings& s,
                               const std::string& user, int64_t wait_ms,
                               bool api) {
  std::string what = api ? "request" : "run";
  std::string who = s.per_user ? (api ? "client " : "user ") + user
                               : std::string{"all users"};
  return "rate limit: " + std::to_string(s.requests_per_minute) + " " + what
         + "s per minute for " + who + "; next " + what + " allowed in "
         + wait_text(wait_ms);
}

rate_limiter_actor::behavior_type
rate_limiter_impl(rate_limiter_actor::stateful_pointer<rate_limiter_state> self,
                  rate_limit_settings settings, rate_limiter_deps deps) {
  auto& st = self->state;
  st.settings = settings;
  st.deps = std::move(deps);
  if (!st.deps.store)
    st.deps.store = std::make_shared<memory_rate_limit_store>();
  if (!st.deps.now_ms)
    st.deps.now_ms = wall_clock_ms;
  return {
    [=](atom::admit, const std::string& user) {
      auto& st = self->state;
      auto key = rate_limit_key(st.settings, user);
      bucket_params params{st.settings.requests_per_minute,
                           st.settings.burst_size};
      auto decision = st.deps.store->take(key, params, st.deps.now_ms());
      admission out;
      out.user = key;
      out.admitted = decision.admitted;
      if (decision.admitted) {
        counters().add(st.deps.api ? counter::api_limiter_admitted
                                   : counter::limiter_admitted,
                       user);
        return out;
      }
      out.wait_ms = decision.wait_ms;
      out.message = rate_limit_message(st.settings, user, decision.wait_ms,
                                       st.deps.api);
      counters().add(st.deps.api ? counter::api_limiter_refused
                                 : counter::limiter_refused,
                     user);
      audit_event ev;
      ev.kind = audit_kind::rate_limited;
      ev.detail = out.message;
      ev.extra["limited_user"] = user;
      ev.extra["wait_ms"] = std::to_string(decision.wait_ms);
      audit(ev);
      return out;
    },
  };
}

} // namespace orch
