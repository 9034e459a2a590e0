#pragma once

// The rate limiter actor: a token bucket per user (runtime/token_bucket.hpp),
// asked by the coordinator before it accepts a run. Over the limit it answers
// a refusal with the wait time; the coordinator turns it into
// errc::rate_limited. Decisions are counted (counter::limiter_admitted and
// limiter_refused, labelled with the user) and refusals audited
// (audit_kind::rate_limited). With a file store the buckets are shared by
// every process of the user, so its handler blocks on an flock: spawn it
// detached outside tests.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <caf/fwd.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/vocabulary.hpp"
#include "config/config.hpp"
#include "runtime/rate_limit_store.hpp"

namespace orch {

/// What a rate limiter needs besides its settings.
struct rate_limiter_deps {
  /// Where the buckets live; null: in memory (this process only).
  std::shared_ptr<rate_limit_store> store;
  /// The wall clock in ms since the epoch; null: the system clock. Tests
  /// pass a clock they move by hand.
  std::function<int64_t()> now_ms;
  /// It decides on API requests (the server's limiter), not on runs: its
  /// decisions are counted apart (counter::api_limiter_*).
  bool api = false;
};

struct rate_limiter_state {
  static inline const char* name = "orch.rate_limiter";
  rate_limit_settings settings;
  rate_limiter_deps deps;
};

/// The bucket key for `user`: the user, or "*" when not per_user.
std::string rate_limit_key(const rate_limit_settings& s,
                           const std::string& user);

/// The refusal text, e.g. "rate limit: 20 runs per minute for user alice;
/// next run allowed in 2.4s" (the wait rounded up to a tenth of a second).
std::string rate_limit_message(const rate_limit_settings& s,
                               const std::string& user, int64_t wait_ms,
                               bool api = false);

/// Returns the behaviour of a rate limiter: `admit(user)` takes one token
/// from the user's bucket and answers an admission.
rate_limiter_actor::behavior_type
rate_limiter_impl(rate_limiter_actor::stateful_pointer<rate_limiter_state> self,
                  rate_limit_settings settings, rate_limiter_deps deps);

} // namespace orch
