// The token bucket's arithmetic, with times given by the test.

#include "runtime/token_bucket.hpp"

#include <gtest/gtest.h>

using namespace orch;

namespace {

constexpr int64_t t0 = 1'700'000'000'000;

} // namespace

TEST(token_bucket,
     refuses_the_21st_request_of_a_20_burst_and_admits_it_after_the_refill) {
  bucket_params p{20, 20};
  auto b = full_bucket(p, t0);
  for (int i = 0; i < 20; ++i) {
    auto d = take_token(b, p, t0);
    ASSERT_TRUE(d.admitted) << "request " << i + 1;
    EXPECT_EQ(d.tokens_left, 19 - i);
  }
  auto refused = take_token(b, p, t0);
  EXPECT_FALSE(refused.admitted);
  // 20 a minute: one token every 3 s.
  EXPECT_EQ(refused.wait_ms, 3000);
  // Not a millisecond early.
  auto early = take_token(b, p, t0 + 2999);
  EXPECT_FALSE(early.admitted);
  EXPECT_EQ(early.wait_ms, 1);
  auto later = take_token(b, p, t0 + 3000);
  EXPECT_TRUE(later.admitted);
  EXPECT_FALSE(take_token(b, p, t0 + 3000).admitted);
}

TEST(token_bucket, the_wait_is_rounded_up_to_whole_milliseconds) {
  bucket_params p{7, 1};
  auto b = full_bucket(p, t0);
  ASSERT_TRUE(take_token(b, p, t0).admitted);
  auto d = take_token(b, p, t0);
  ASSERT_FALSE(d.admitted);
  // 60000 / 7 = 8571.43 ms.
  EXPECT_EQ(d.wait_ms, 8572);
  EXPECT_FALSE(take_token(b, p, t0 + 8571).admitted);
  EXPECT_TRUE(take_token(b, p, t0 + 8572).admitted);
}

TEST(token_bucket, refills_never_exceed_the_burst) {
  bucket_params p{60, 3};
  auto b = full_bucket(p, t0);
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(take_token(b, p, t0).admitted);
  // A day later: full, i.e. 3, not thousands (and no overflow).
  auto later = t0 + int64_t{86'400'000} * 365 * 100;
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(take_token(b, p, later).admitted) << i;
  EXPECT_FALSE(take_token(b, p, later).admitted);
  EXPECT_TRUE(bucket_is_full(b, p, later + 3000));
  EXPECT_FALSE(bucket_is_full(b, p, later + 2999));
}

TEST(token_bucket, a_clock_that_goes_back_refills_nothing) {
  bucket_params p{60, 1};
  auto b = full_bucket(p, t0);
  ASSERT_TRUE(take_token(b, p, t0).admitted);
  auto d = take_token(b, p, t0 - 50'000);
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.wait_ms, 1000);
  // Counted from the earlier time now.
  EXPECT_TRUE(take_token(b, p, t0 - 49'000).admitted);
}

TEST(token_bucket, smaller_limits_clamp_a_stored_bucket) {
  bucket_params big{60, 100};
  bucket_params small{60, 2};
  auto b = full_bucket(big, t0);
  ASSERT_TRUE(take_token(b, small, t0).admitted);
  ASSERT_TRUE(take_token(b, small, t0).admitted);
  EXPECT_FALSE(take_token(b, small, t0).admitted);
}
