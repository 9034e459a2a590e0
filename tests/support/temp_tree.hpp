#pragma once

// A temp folder holding a workspace `ws/` next to a sentinel `outside/` that
// no write through the workspace may touch; shared by the tests of our own
// writes (workspace, safe_file).

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include <stdlib.h>

namespace orch::test {

inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream in{p, std::ios::binary};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_text(const std::filesystem::path& p, const std::string& s) {
  std::ofstream out{p, std::ios::binary};
  out << s;
}

class temp_tree : public ::testing::Test {
protected:
  void SetUp() override {
    namespace fs = std::filesystem;
    std::string tmpl
      = (fs::temp_directory_path() / "orch-tree-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    base_ = tmpl;
    root_ = base_ / "ws";
    outside_ = base_ / "outside";
    fs::create_directories(root_);
    fs::create_directories(outside_);
  }

  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(base_, ec);
  }

  std::filesystem::path base_;
  std::filesystem::path root_;
  std::filesystem::path outside_;
};

} // namespace orch::test
