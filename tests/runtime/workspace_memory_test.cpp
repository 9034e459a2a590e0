// Memory stays bounded whatever the size of a file in the workspace:
// snapshots hash, the pre-run copy copies, and writes compare and back up in
// blocks. Each case runs in a child process, whose peak RSS starts at what
// it inherited, so earlier tests cannot hide (or fake) growth.

#include "runtime/hashing.hpp"
#include "runtime/workspace.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace orch {
namespace {

constexpr off_t big_file_bytes = 200L * 1024 * 1024;
constexpr long max_growth_kib = 64L * 1024;

// Runs `fn` in a forked child; returns how many KiB its peak RSS grew, or -1
// when `fn` failed.
long peak_rss_growth_kib(const std::function<bool()>& fn) {
  int fds[2];
  if (::pipe(fds) != 0)
    return -2;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    rusage before{};
    ::getrusage(RUSAGE_SELF, &before);
    bool ok = fn();
    rusage after{};
    ::getrusage(RUSAGE_SELF, &after);
    long growth = ok ? after.ru_maxrss - before.ru_maxrss : -1;
    bool sent = ::write(fds[1], &growth, sizeof growth) == sizeof growth;
    ::_exit(sent ? 0 : 1);
  }
  ::close(fds[1]);
  long growth = -2;
  if (pid < 0 || ::read(fds[0], &growth, sizeof growth) != sizeof growth)
    growth = -2;
  ::close(fds[0]);
  int status = 0;
  if (pid > 0)
    ::waitpid(pid, &status, 0);
  return growth;
}

class workspace_memory_test : public ::testing::Test {
protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "orch-mem-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    // Sparse: 200 MB that take no disk space, but read as 200 MB of zeros.
    int fd = ::open((root_ / "big.bin").c_str(), O_WRONLY | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, big_file_bytes), 0);
    ::close(fd);
  }

  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  fs::path root_;
};

TEST_F(workspace_memory_test, snapshot_of_a_big_file_hashes_in_blocks) {
  long growth = peak_rss_growth_kib([this] {
    file_snapshot snap = snapshot_files(root_);
    return snap.size() == 1
           && snap.at("big.bin").hash.rfind(
                std::to_string(big_file_bytes) + ":", 0)
                == 0;
  });
  EXPECT_GE(growth, 0);
  EXPECT_LT(growth, max_growth_kib);
}

TEST_F(workspace_memory_test, the_pre_run_copy_of_a_big_file_is_streamed) {
  long growth = peak_rss_growth_kib([this] {
    workspace ws{root_, "run1"};
    auto rep = ws.preserve_existing(1ULL << 30);
    return rep.error.empty() && rep.files == 1
           && fs::file_size(root_ / ".orchestrator/backups/run1/big.bin")
                == static_cast<std::uintmax_t>(big_file_bytes);
  });
  EXPECT_GE(growth, 0);
  EXPECT_LT(growth, max_growth_kib);
  // The copy keeps the holes: it takes far less disk than its size.
  struct stat st {};
  ASSERT_EQ(::stat((root_ / ".orchestrator/backups/run1/big.bin").c_str(), &st),
            0);
  EXPECT_LT(st.st_blocks * 512, big_file_bytes / 4);
}

TEST_F(workspace_memory_test, overwriting_a_big_file_backs_it_up_in_blocks) {
  long growth = peak_rss_growth_kib([this] {
    workspace ws{root_, "run1"};
    write_outcome w = ws.write("big.bin", "small now\n");
    return w.written
           && fs::file_size(root_ / w.backup)
                == static_cast<std::uintmax_t>(big_file_bytes);
  });
  EXPECT_GE(growth, 0);
  EXPECT_LT(growth, max_growth_kib);
}

TEST_F(workspace_memory_test, restoring_a_big_backup_streams_it_back) {
  workspace ws{root_, "run1"};
  write_outcome w = ws.write("big.bin", "small now\n");
  ASSERT_TRUE(w.written) << w.reason;
  long growth = peak_rss_growth_kib([&] {
    std::string error;
    return ws.restore(w.backup, error)
           && fs::file_size(root_ / "big.bin")
                == static_cast<std::uintmax_t>(big_file_bytes);
  });
  EXPECT_GE(growth, 0);
  EXPECT_LT(growth, max_growth_kib);
}

TEST(sha256_file, equals_the_hash_of_the_same_bytes_in_memory) {
  char path[] = "/tmp/orch-hash-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string data;
  for (int i = 0; i < 200000; ++i)
    data += static_cast<char>(i * 7 + i / 251);
  ASSERT_EQ(::write(fd, data.data(), data.size()),
            static_cast<ssize_t>(data.size()));
  std::string hex;
  std::uintmax_t size = 0;
  EXPECT_TRUE(sha256_file(fd, hex, size));
  EXPECT_EQ(size, data.size());
  EXPECT_EQ(hex, sha256_hex(data));
  sha256_stream pieces;
  pieces.update(std::string_view{data}.substr(0, 1000));
  pieces.update(std::string_view{data}.substr(1000));
  EXPECT_EQ(pieces.hex_digest(), hex);
  ::close(fd);
  ::unlink(path);
}

} // namespace
} // namespace orch
