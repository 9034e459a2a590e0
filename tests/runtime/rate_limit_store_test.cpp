// The rate limiter's stores: the shared file in the state directory behaves
// as one bucket for every store opened on it (as for two `run` processes),
// survives a corrupt file, and never writes through a link.

#include "runtime/rate_limit_store.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

#include "runtime/state_dir.hpp"

using namespace orch;
namespace fs = std::filesystem;

namespace {

constexpr int64_t t0 = 1'700'000'000'000;

std::string slurp(const fs::path& p) {
  std::ifstream in{p};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

class rate_limit_store_test : public ::testing::Test {
protected:
  rate_limit_store_test() {
    root_
      = fs::temp_directory_path()
        / ("orch-limits-test-" + std::to_string(::getpid()) + "-"
           + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  ~rate_limit_store_test() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::shared_ptr<file_rate_limit_store> open() {
    std::string error;
    auto state = open_state_dir(root_ / "state", error);
    EXPECT_TRUE(state) << error;
    auto store = open_file_rate_limit_store(state.get(), error);
    EXPECT_TRUE(store) << error;
    return store;
  }

  fs::path buckets() const {
    return root_ / "state" / "limits" / buckets_file_name;
  }

  fs::path root_;
};

} // namespace

TEST(memory_rate_limit_store, keeps_one_bucket_per_key) {
  memory_rate_limit_store s;
  bucket_params p{60, 2};
  EXPECT_TRUE(s.take("alice", p, t0).admitted);
  EXPECT_TRUE(s.take("alice", p, t0).admitted);
  EXPECT_FALSE(s.take("alice", p, t0).admitted);
  EXPECT_TRUE(s.take("bob", p, t0).admitted);
}

TEST_F(rate_limit_store_test, two_stores_on_one_folder_share_the_buckets) {
  auto first = open();
  auto second = open();
  ASSERT_TRUE(first && second);
  bucket_params p{1, 2};
  EXPECT_TRUE(first->take("alice", p, t0).admitted);
  EXPECT_TRUE(second->take("alice", p, t0 + 10).admitted);
  auto third = first->take("alice", p, t0 + 20);
  EXPECT_FALSE(third.admitted);
  EXPECT_EQ(third.wait_ms, 60000 - 20);
  // Another user has a bucket of their own.
  EXPECT_TRUE(second->take("bob", p, t0 + 20).admitted);
  // The file: ours only, and what parse_buckets reads.
  struct stat st {};
  ASSERT_EQ(::lstat(buckets().c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::lstat((root_ / "state" / "limits").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  std::map<std::string, bucket_state> read;
  ASSERT_TRUE(parse_buckets(slurp(buckets()), read));
  EXPECT_EQ(read.count("alice"), 1u);
  EXPECT_EQ(read.count("bob"), 1u);
  EXPECT_TRUE(first->last_problem().empty()) << first->last_problem();
}

TEST_F(rate_limit_store_test, a_user_name_that_is_not_utf8_keeps_its_bucket) {
  auto store = open();
  ASSERT_TRUE(store);
  bucket_params p{1, 2};
  const std::string latin1 = "caf\xe9";
  EXPECT_TRUE(store->take(latin1, p, t0).admitted);
  EXPECT_TRUE(store->take(latin1, p, t0 + 10).admitted);
  EXPECT_FALSE(store->take(latin1, p, t0 + 20).admitted);
  EXPECT_TRUE(store->last_problem().empty()) << store->last_problem();
  std::map<std::string, bucket_state> read;
  ASSERT_TRUE(parse_buckets(slurp(buckets()), read));
  EXPECT_EQ(read.count("caf\xef\xbf\xbd"), 1u);
}

TEST_F(rate_limit_store_test, full_buckets_are_dropped_from_the_file) {
  auto store = open();
  bucket_params p{60, 1};
  ASSERT_TRUE(store->take("alice", p, t0).admitted);
  ASSERT_TRUE(store->take("bob", p, t0 + 2000).admitted);
  std::map<std::string, bucket_state> read;
  ASSERT_TRUE(parse_buckets(slurp(buckets()), read));
  EXPECT_EQ(read.count("alice"), 0u) << slurp(buckets());
  EXPECT_EQ(read.count("bob"), 1u);
}

TEST_F(rate_limit_store_test, a_corrupt_file_is_reset) {
  auto store = open();
  bucket_params p{1, 1};
  ASSERT_TRUE(store->take("alice", p, t0).admitted);
  ASSERT_FALSE(store->take("alice", p, t0).admitted);
  {
    std::ofstream out{buckets(), std::ios::trunc};
    out << "{\"version\": 1, \"buckets\": {\"alice\": {\"units\": \"x\"";
  }
  // Reset: alice starts with a full bucket again, and the reset is said.
  EXPECT_TRUE(store->take("alice", p, t0).admitted);
  EXPECT_NE(store->last_problem().find("not valid; reset"), std::string::npos)
    << store->last_problem();
  EXPECT_FALSE(store->take("alice", p, t0).admitted);
  std::map<std::string, bucket_state> read;
  EXPECT_TRUE(parse_buckets(slurp(buckets()), read));
}

TEST_F(rate_limit_store_test,
       a_link_at_the_buckets_file_is_never_written_through) {
  auto store = open();
  auto target = root_ / "victim.txt";
  {
    std::ofstream out{target};
    out << "precious\n";
  }
  fs::create_symlink(target, buckets());
  bucket_params p{1, 1};
  EXPECT_TRUE(store->take("alice", p, t0).admitted);
  EXPECT_EQ(slurp(target), "precious\n");
  // The link was replaced by a file of ours.
  struct stat st {};
  ASSERT_EQ(::lstat(buckets().c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_FALSE(store->take("alice", p, t0).admitted);
}

TEST(rate_limit_store, parse_buckets_refuses_what_we_do_not_write) {
  std::map<std::string, bucket_state> out;
  EXPECT_FALSE(parse_buckets("", out));
  EXPECT_FALSE(parse_buckets("[]", out));
  EXPECT_FALSE(parse_buckets("{\"version\":2,\"buckets\":{}}", out));
  EXPECT_FALSE(parse_buckets("{\"version\":1,\"buckets\":{\"a\":1}}", out));
  std::map<std::string, bucket_state> in{{"a", {5, 6}}};
  ASSERT_TRUE(parse_buckets(format_buckets(in), out));
  EXPECT_EQ(out.at("a").units, 5);
  EXPECT_EQ(out.at("a").updated_ms, 6);
}
