#pragma once

// The token bucket of the rate limiter, as plain arithmetic on integers: no
// clock of its own (the caller passes the time), so tests drive it with any
// times they like.
//
// A bucket holds up to `burst` tokens and gains `per_minute` tokens a minute;
// each admitted request takes one. Amounts are kept in 1/60000 of a token
// (one unit per token per minute per millisecond), so refills are exact: a
// bucket of 20 per minute gains one token every 3000 ms, never 2999.

#include <cstdint>

namespace orch {

/// The limits of one bucket.
struct bucket_params {
  /// Tokens gained per minute (> 0).
  int64_t per_minute = 10;
  /// Capacity: requests admitted back to back (> 0).
  int64_t burst = 20;
};

/// Units of one token.
inline constexpr int64_t bucket_units_per_token = 60000;

/// The state of one bucket.
struct bucket_state {
  /// Tokens in units of 1/60000 (0 .. burst * 60000).
  int64_t units = 0;
  /// Wall clock of the last update, ms since the epoch.
  int64_t updated_ms = 0;
};

/// The answer to one request.
struct bucket_decision {
  bool admitted = false;
  /// When refused: ms until one token is there (> 0). When admitted: 0.
  int64_t wait_ms = 0;
  /// Whole tokens left after this decision.
  int64_t tokens_left = 0;
};

/// A full bucket, as of `now_ms`.
bucket_state full_bucket(const bucket_params& p, int64_t now_ms);

/// Refills `b` up to `now_ms` (a clock that went back refills nothing and
/// moves the bucket's time back to `now_ms`, so the next step counts from
/// there), and clamps it to the capacity (the limits may have changed).
void refill(bucket_state& b, const bucket_params& p, int64_t now_ms);

/// Refills `b`, then takes one token if there is one.
bucket_decision take_token(bucket_state& b, const bucket_params& p,
                           int64_t now_ms);

/// True when `b` would be full at `now_ms` (so it may be forgotten).
bool bucket_is_full(const bucket_state& b, const bucket_params& p,
                    int64_t now_ms);

} // namespace orch
