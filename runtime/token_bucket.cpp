#include "runtime/token_bucket.hpp"

#include <algorithm>
#include <limits>

namespace orch {

namespace {

int64_t capacity(const bucket_params& p) {
  return std::max<int64_t>(1, p.burst) * bucket_units_per_token;
}

int64_t rate(const bucket_params& p) {
  // Units gained per ms: one per token per minute.
  return std::max<int64_t>(1, p.per_minute);
}

} // namespace

bucket_state full_bucket(const bucket_params& p, int64_t now_ms) {
  return bucket_state{capacity(p), now_ms};
}

void refill(bucket_state& b, const bucket_params& p, int64_t now_ms) {
  auto cap = capacity(p);
  if (now_ms > b.updated_ms) {
    auto elapsed = now_ms - b.updated_ms;
    // Past the time a whole refill takes, the bucket is full: no overflow.
    auto fill_ms = cap / rate(p) + 1;
    if (elapsed >= fill_ms)
      b.units = cap;
    else
      b.units += elapsed * rate(p);
  }
  b.updated_ms = now_ms;
  b.units = std::clamp<int64_t>(b.units, 0, cap);
}

bucket_decision take_token(bucket_state& b, const bucket_params& p,
                           int64_t now_ms) {
  refill(b, p, now_ms);
  bucket_decision out;
  if (b.units >= bucket_units_per_token) {
    b.units -= bucket_units_per_token;
    out.admitted = true;
  } else {
    auto missing = bucket_units_per_token - b.units;
    out.wait_ms = (missing + rate(p) - 1) / rate(p);
  }
  out.tokens_left = b.units / bucket_units_per_token;
  return out;
}

bool bucket_is_full(const bucket_state& b, const bucket_params& p,
                    int64_t now_ms) {
  auto copy = b;
  refill(copy, p, now_ms);
  return copy.units >= capacity(p);
}

} // namespace orch
