// Long step outputs: excerpts cut on UTF-8 boundaries, file names, and the
// whole text saved in the workspace's meta dir.

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>
#include <unistd.h>

#include "actors/step_output.hpp"

namespace orch {
namespace {

namespace fs = std::filesystem;

bool is_continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

TEST(output_excerpt, keeps_a_short_text_whole) {
  EXPECT_EQ(output_excerpt("hello", 3, 2, "x"), "hello");
  EXPECT_EQ(output_excerpt("hello", 2, 2, "x"),
            "he\n…[1 bytes omitted; x]…\nlo");
}

TEST(output_excerpt, never_splits_a_utf8_character) {
  // "é" is 2 bytes, "€" 3: any cut point lands inside some character.
  std::string text;
  for (int i = 0; i < 1000; ++i)
    text += i % 2 == 0 ? "é" : "€";
  for (size_t head = 1; head < 8; ++head) {
    for (size_t tail = 1; tail < 8; ++tail) {
      auto out = output_excerpt(text, head, tail, "note");
      auto mark = out.find("\n…[");
      ASSERT_NE(mark, std::string::npos);
      EXPECT_LE(mark, head);
      EXPECT_FALSE(is_continuation(text[mark])) << head << "/" << tail;
      auto end = out.find("]…\n");
      ASSERT_NE(end, std::string::npos);
      auto tail_start = end + std::string{"]…\n"}.size();
      EXPECT_LE(out.size() - tail_start, tail);
      if (tail_start < out.size()) {
        EXPECT_FALSE(is_continuation(out[tail_start])) << head << "/" << tail;
      }
      // Both halves are whole characters of the text.
      EXPECT_EQ(text.compare(0, mark, out, 0, mark), 0);
      EXPECT_EQ(text.compare(text.size() - (out.size() - tail_start),
                             std::string::npos, out, tail_start),
                0);
    }
  }
}

TEST(output_file_name, sanitises_the_run_id_and_the_agent) {
  EXPECT_EQ(output_file_name("run-1", 2, 3, 1, "codex"),
            ".orchestrator/outputs/run-1/i2-s3-1-codex.txt");
  EXPECT_EQ(output_file_name("..", 1, 1, 2, "../x/y z"),
            ".orchestrator/outputs/_/i1-s1-2-.._x_y_z.txt");
  EXPECT_EQ(output_file_name("", 1, 1, 1, ""),
            ".orchestrator/outputs/_/i1-s1-1-_.txt");
}

class offload_output_test : public ::testing::Test {
protected:
  offload_output_test() {
    root_
      = fs::temp_directory_path()
        / ("orch-offload-" + std::to_string(::getpid()) + "-"
           + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  ~offload_output_test() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  fs::path root_;
};

TEST_F(offload_output_test, a_long_output_goes_to_a_file_and_an_excerpt_stays) {
  step_result res;
  res.agent = "codex";
  res.iteration = 1;
  res.step_index = 0;
  std::string whole = "HEAD" + std::string(200 * 1024, 'x') + "TAIL";
  res.outcome.final_text = whole;
  std::string err;
  ASSERT_TRUE(offload_output(res, root_, "run-1", 0, err)) << err;
  EXPECT_EQ(res.output_file, ".orchestrator/outputs/run-1/i1-s1-1-codex.txt");
  EXPECT_LE(res.outcome.final_text.size(), max_inline_output + 200);
  EXPECT_EQ(res.outcome.final_text.rfind("HEAD", 0), 0u);
  EXPECT_EQ(res.outcome.final_text.substr(res.outcome.final_text.size() - 4),
            "TAIL");
  EXPECT_NE(res.outcome.final_text.find("whole output in " + res.output_file),
            std::string::npos);
  std::ifstream in{root_ / res.output_file, std::ios::binary};
  std::string saved{std::istreambuf_iterator<char>{in}, {}};
  EXPECT_EQ(saved, whole);
}

TEST_F(offload_output_test, a_short_output_is_left_alone) {
  step_result res;
  res.outcome.final_text = "short";
  std::string err;
  EXPECT_TRUE(offload_output(res, root_, "run-1", 0, err));
  EXPECT_EQ(res.outcome.final_text, "short");
  EXPECT_TRUE(res.output_file.empty());
  EXPECT_FALSE(fs::exists(root_ / ".orchestrator"));
}

TEST_F(offload_output_test, a_failed_write_still_cuts_the_text) {
  // The outputs folder cannot be created: a file is in the way.
  fs::create_directories(root_ / ".orchestrator");
  std::ofstream{root_ / ".orchestrator" / "outputs"} << "in the way";
  step_result res;
  res.agent = "a";
  res.outcome.final_text = std::string(100 * 1024, 'y');
  std::string err;
  EXPECT_FALSE(offload_output(res, root_, "run-1", 0, err));
  EXPECT_FALSE(err.empty());
  EXPECT_TRUE(res.output_file.empty());
  EXPECT_LE(res.outcome.final_text.size(), max_inline_output + 500);
  EXPECT_NE(res.outcome.final_text.find("could not be saved"),
            std::string::npos);
}

} // namespace
} // namespace orch
