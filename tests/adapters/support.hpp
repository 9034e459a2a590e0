#pragma once

// Helpers of the adapter tests: reading the real CLI fixtures and replaying
// them through a parser.

#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "adapters/adapter.hpp"

namespace orch::test {

/// Returns `tests/fixtures/agent-output/<cli>/<name>`, or "" if missing.
inline std::string read_fixture(const std::string& cli,
                                const std::string& name) {
  std::ifstream in(std::string(ORCH_TEST_FIXTURES) + "/agent-output/" + cli
                     + "/" + name,
                   std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

/// The exit code a fixture's meta.json records.
inline int fixture_exit_code(const std::string& cli, const std::string& name) {
  auto meta = nlohmann::json::parse(read_fixture(cli, name + ".meta.json"),
                                    nullptr, false);
  if (!meta.is_object() || !meta.contains("exit_code"))
    return -1;
  return meta["exit_code"].get<int>();
}

/// Splits text into lines as the process runner delivers them: without
/// the newline, a last line without newline included.
inline std::vector<std::string> split_lines(std::string_view text) {
  std::vector<std::string> lines;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    if (nl == std::string_view::npos) {
      lines.emplace_back(text.substr(pos));
      break;
    }
    lines.emplace_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return lines;
}

/// What replaying one output through a parser gave.
struct replayed {
  std::vector<agent_event> events;
  step_outcome outcome;

  /// Events of one kind, in order.
  std::vector<agent_event> of(event_kind kind) const {
    std::vector<agent_event> out;
    for (const auto& ev : events)
      if (ev.kind == kind)
        out.push_back(ev);
    return out;
  }
};

/// A process result of a normal exit.
inline process_result exited(int code, std::string out = {},
                             std::string err = {}) {
  process_result r;
  r.started = true;
  r.exit_code = code;
  r.out = std::move(out);
  r.err = std::move(err);
  return r;
}

/// Feeds `r.out` line by line into a fresh parser of `kind`, then finishes.
inline replayed replay(adapter_kind kind, const process_result& r) {
  auto parser = make_adapter(kind)->make_parser();
  replayed res;
  for (const auto& line : split_lines(r.out))
    parser->feed(line, res.events);
  res.outcome = parser->finish(r);
  return res;
}

/// Replays the real fixture `<cli>/<name>` with its recorded exit code.
inline replayed replay_fixture(adapter_kind kind, const std::string& name) {
  auto cli = default_command(kind);
  auto r = exited(fixture_exit_code(cli, name),
                  read_fixture(cli, name + ".stdout"),
                  read_fixture(cli, name + ".stderr"));
  return replay(kind, r);
}

} // namespace orch::test
