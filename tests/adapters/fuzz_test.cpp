// Fuzz-style robustness of every adapter's parser: random bytes, bytes that
// are not UTF-8, NUL, mutated real output and a 20 MB line without a newline
// must give a classified outcome, never a throw, and everything a parser
// says must survive a JSON round trip (issue 10, defect 3). A fixed seed
// and a bounded number of cases keep it deterministic and fast.

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "adapters/support.hpp"
#include "runtime/text.hpp"

using namespace orch;
using orch::test::exited;
using orch::test::read_fixture;
using orch::test::split_lines;

namespace {

constexpr std::uint32_t seed = 20261201;
constexpr int cases_per_adapter = 150;

/// Returns `n` bytes drawn from the whole byte range, biased towards the
/// bytes that break text handling (NUL, ESC, newlines, lead and
/// continuation bytes, 0xFF).
std::string random_bytes(std::mt19937& rng, std::size_t n) {
  static constexpr unsigned char special[]
    = {0x00, 0x1B, '\n', '\r', 0x7F, 0x80, 0x9B, 0xBF, 0xC0, 0xC2, 0xE2, 0xED,
       0xF0, 0xF4, 0xF8, 0xFF, '{',  '}',  '"',  '\\', ':',  ',',  '[',  ']'};
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> pick(0, 3);
  std::uniform_int_distribution<std::size_t> sp(0, sizeof special - 1);
  std::string out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    out += static_cast<char>(pick(rng) == 0 ? special[sp(rng)] : byte(rng));
  return out;
}

/// Returns `text` with a few bytes replaced, inserted or removed.
std::string mutate(std::mt19937& rng, std::string text) {
  if (text.empty())
    return random_bytes(rng, 64);
  std::uniform_int_distribution<int> edits(1, 8);
  for (int k = edits(rng); k > 0; --k) {
    std::uniform_int_distribution<std::size_t> at(0, text.size() - 1);
    auto pos = at(rng);
    switch (std::uniform_int_distribution<int>(0, 2)(rng)) {
      case 0:
        text[pos] = random_bytes(rng, 1)[0];
        break;
      case 1:
        text.insert(pos, random_bytes(rng, 1 + pos % 7));
        break;
      default:
        text.erase(pos, 1 + pos % 5);
        break;
    }
    if (text.empty())
      text = "x";
  }
  return text;
}

/// JSON lines whose strings hold what a CLI might send: raw bytes that are
/// not UTF-8 (invalid JSON), lone surrogates, control and bidi escapes.
std::vector<std::string> hostile_json_lines(std::mt19937& rng) {
  return {
    "{\"type\":\"result\",\"result\":\"\xff\xfe\",\"is_error\":false}",
    "{\"type\":\"item.completed\",\"item\":{\"type\":\"agent_message\","
    "\"text\":\"\\udcff lone\"}}",
    "{\"type\":\"item.completed\",\"item\":{\"type\":\"command_execution\","
    "\"command\":\"\\u001b]0;x\\u0007\\u202e\\u0000\"}}",
    "{\"type\":\"error\",\"message\":\"" + random_bytes(rng, 40) + "\"}",
    "{\"type\":\"message\",\"role\":\"assistant\",\"content\":\"\xe2\x82\","
    "\"delta\":true}",
    "{\"a\":" + std::string(5000, '[') + std::string(5000, ']') + "}",
    std::string("{\"type\":\"x\"}\0{\"type\":\"y\"}", 25),
  };
}

process_result random_result(std::mt19937& rng, std::string out) {
  std::uniform_int_distribution<int> coin(0, 7);
  process_result r = exited(
    std::uniform_int_distribution<int>(-1, 255)(rng), std::move(out),
    random_bytes(rng,
                 std::uniform_int_distribution<std::size_t>(0, 3000)(rng)));
  r.started = coin(rng) != 0;
  if (!r.started)
    r.spawn_errno = std::uniform_int_distribution<int>(0, 140)(rng);
  if (coin(rng) == 0)
    r.term_signal = std::uniform_int_distribution<int>(1, 64)(rng);
  if (coin(rng) == 0)
    r.expired = static_cast<deadline_kind>(
      std::uniform_int_distribution<int>(1, 3)(rng));
  r.cancelled = coin(rng) == 0;
  r.truncated = coin(rng) == 0;
  r.dropped_bytes = r.truncated ? 12345 : 0;
  return r;
}

/// Checks that a string round-trips through the JSON dump the manifest
/// uses: dumping never throws and the text parses back.
void expect_dumps(std::string s) {
  // A debug build dumps and parses ~10 MB/s; the 1 MiB head of a huge text
  // holds the same bytes as the rest.
  if (s.size() > (1u << 20))
    s.resize(1u << 20);
  std::string text;
  ASSERT_NO_THROW(text = nlohmann::json(s).dump(
                    -1, ' ', false, nlohmann::json::error_handler_t::replace));
  EXPECT_TRUE(text::is_valid_utf8(text));
  auto back = nlohmann::json::parse(text, nullptr, false);
  ASSERT_FALSE(back.is_discarded());
  // Valid text comes back unchanged.
  if (text::is_valid_utf8(s)) {
    EXPECT_EQ(back.get<std::string>(), s);
  }
}

/// Feeds `lines`, finishes with `r` and checks the outcome.
void check_parser(adapter_kind kind, const std::vector<std::string>& lines,
                  const process_result& r) {
  auto parser = make_adapter(kind)->make_parser();
  std::vector<agent_event> events;
  step_outcome o;
  ASSERT_NO_THROW({
    for (const auto& line : lines)
      parser->feed(line, events);
    o = parser->finish(r);
  });
  // Classified: a success, or a failure with a kind and a message.
  if (!o.ok) {
    EXPECT_NE(o.failure, failure_kind::none) << o.message;
    EXPECT_FALSE(o.message.empty());
  }
  expect_dumps(o.message);
  expect_dumps(o.final_text);
  expect_dumps(o.session_id);
  for (const auto& f : o.reported_files)
    expect_dumps(f);
  for (const auto& ev : events) {
    expect_dumps(ev.text);
    expect_dumps(ev.detail);
  }
}

class EveryParser : public ::testing::TestWithParam<adapter_kind> {};

TEST_P(EveryParser, SurvivesRandomAndMutatedOutput) {
  auto kind = GetParam();
  std::mt19937 rng{seed + static_cast<std::uint32_t>(kind)};
  auto fixture = kind == adapter_kind::command
                   ? std::string{"plain answer\n"}
                   : read_fixture(default_command(kind),
                                  "write-allowed.stdout");
  auto hostile = hostile_json_lines(rng);
  for (int n = 0; n < cases_per_adapter; ++n) {
    std::vector<std::string> lines;
    switch (n % 3) {
      case 0: // random bytes, cut into lines as the runner does
        lines = split_lines(random_bytes(
          rng, std::uniform_int_distribution<std::size_t>(0, 4000)(rng)));
        break;
      case 1: // the real output, mutated
        lines = split_lines(mutate(rng, fixture));
        break;
      default: // the real output with hostile JSON lines mixed in
        lines = split_lines(fixture);
        for (const auto& h : hostile)
          lines.insert(lines.begin()
                         + static_cast<std::ptrdiff_t>(
                           std::uniform_int_distribution<std::size_t>(
                             0, lines.size())(rng)),
                       h);
        break;
    }
    std::string out;
    for (const auto& l : lines)
      out += l + "\n";
    SCOPED_TRACE("case " + std::to_string(n));
    check_parser(kind, lines, random_result(rng, out));
    if (HasFatalFailure())
      return;
  }
}

TEST_P(EveryParser, SurvivesAHugeLineWithoutNewline) {
  auto kind = GetParam();
  std::mt19937 rng{seed};
  // 20 MB: a JSON-looking start, so the parsers really try it, then bytes
  // that are not UTF-8 and NUL, and no newline at all.
  std::string huge = "{\"type\":\"result\",\"result\":\"";
  huge += random_bytes(rng, 1024);
  huge.append(20 * 1024 * 1024, '\xff');
  huge += std::string(1, '\0');
  check_parser(kind, {huge}, exited(0, huge, huge.substr(0, 1 << 20)));
  check_parser(kind, {huge}, exited(1, huge, huge.substr(0, 1 << 20)));
}

TEST_P(EveryParser, ClippedExcerptsOfValidTextStayValidUtf8) {
  // Long stderr and stdout lines of 2- and 3-byte characters: every excerpt
  // the message quotes is cut, and must be cut between characters.
  // Every offset of the 20-byte pattern against the cut.
  for (std::size_t k = 0; k < 20; ++k) {
    std::string line(k, 'x');
    while (line.size() < 5000)
      line += "é€ network error ";
    for (int code : {0, 1, 3}) {
      auto res = orch::test::replay(
        GetParam(),
        exited(code, line + "\n" + line + "\n", line + "\n" + line + "\n"));
      EXPECT_TRUE(text::is_valid_utf8(res.outcome.message))
        << testing::PrintToString(res.outcome.message);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Adapters, EveryParser,
                         ::testing::Values(adapter_kind::codex,
                                           adapter_kind::claude,
                                           adapter_kind::gemini,
                                           adapter_kind::copilot,
                                           adapter_kind::command),
                         [](const auto& info) {
                           return to_string(info.param);
                         });

} // namespace
