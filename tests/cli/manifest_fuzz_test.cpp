// The manifest and `run --json` writer on a run result full of random
// bytes: to_json + dump_json never throw and give valid UTF-8 JSON that
// parses back, and write_manifest writes a file that parses (issue 10,
// defect 3: an agent's `\xff` killed the workflow actor).

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "actors/run_report.hpp"
#include "runtime/text.hpp"

namespace orch {
namespace {

namespace fs = std::filesystem;

std::string random_bytes(std::mt19937& rng, std::size_t n) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::string out;
  for (std::size_t i = 0; i < n; ++i)
    out += static_cast<char>(byte(rng));
  return out;
}

run_result random_run(std::mt19937& rng, const std::string& workspace) {
  auto s = [&] {
    return random_bytes(rng,
                        std::uniform_int_distribution<std::size_t>(0, 60)(rng));
  };
  run_result r;
  r.run_id = s();
  r.task = s();
  r.workflow = s();
  r.workspace = workspace;
  r.status = run_status::failed;
  r.message = s();
  r.preserve_error = s();
  r.files = {s(), "caf\xe9.txt", s()};
  r.findings = {{s(), s(), 3, s()}};
  iteration_record it;
  step_result st;
  st.agent = s();
  st.task_kind = s();
  st.outcome.message = s() + "\xe2\x82";
  st.outcome.final_text = s();
  st.outcome.session_id = s();
  st.outcome.reported_files = {s()};
  st.findings = {{s(), s(), 1, s()}};
  st.files = {s()};
  st.refused = {{s(), s()}};
  st.deleted = {s()};
  st.backups = {s()};
  st.conflicts = {s()};
  st.output_file = s();
  it.steps.push_back(st);
  r.iterations.push_back(it);
  return r;
}

TEST(manifest_fuzz, random_bytes_everywhere_dump_to_valid_json) {
  std::mt19937 rng{20261201};
  for (int n = 0; n < 300; ++n) {
    auto r = random_run(rng, "/tmp/x");
    std::string text;
    ASSERT_NO_THROW(text = dump_json(to_json(r)));
    EXPECT_TRUE(text::is_valid_utf8(text));
    auto back = nlohmann::json::parse(text, nullptr, false);
    ASSERT_FALSE(back.is_discarded()) << n;
    EXPECT_EQ(back["iterations"][0]["steps"][0]["files"].size(), 1u);
  }
}

TEST(manifest_fuzz, write_manifest_writes_parseable_json) {
  auto dir = fs::temp_directory_path()
             / ("orch-manifest-fuzz-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::mt19937 rng{42};
  for (int n = 0; n < 20; ++n) {
    auto r = random_run(rng, dir.string());
    std::string error;
    bool written = false;
    ASSERT_NO_THROW(written = write_manifest(r, error));
    ASSERT_TRUE(written) << error;
    std::ifstream in{dir / ".orchestrator" / "manifest.json"};
    std::stringstream buf;
    buf << in.rdbuf();
    auto back = nlohmann::json::parse(buf.str(), nullptr, false);
    ASSERT_FALSE(back.is_discarded()) << n;
    EXPECT_EQ(back["files"][1], "caf\xef\xbf\xbd.txt");
  }
  fs::remove_all(dir);
}

} // namespace
} // namespace orch
