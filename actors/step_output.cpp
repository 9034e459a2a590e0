#include "actors/step_output.hpp"

#include <algorithm>

#include "runtime/safe_file.hpp"
#include "runtime/workspace.hpp"

namespace orch {

namespace {

bool is_continuation(char c) noexcept {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

/// Returns the largest n <= `max` that does not split a UTF-8 sequence.
std::size_t floor_boundary(std::string_view s, std::size_t max) noexcept {
  if (max >= s.size())
    return s.size();
  // A character is at most 4 bytes: step back over at most 3 continuation
  // bytes (more of them means the text is not UTF-8 there; cut anywhere).
  std::size_t n = max;
  for (int k = 0; k < 3 && n > 0 && is_continuation(s[n]); ++k)
    --n;
  return is_continuation(s[n]) ? max : n;
}

/// Returns the smallest n >= `min` that does not split a UTF-8 sequence.
std::size_t ceil_boundary(std::string_view s, std::size_t min) noexcept {
  std::size_t n = min;
  for (int k = 0; k < 3 && n < s.size() && is_continuation(s[n]); ++k)
    ++n;
  return n < s.size() && is_continuation(s[n]) ? min : n;
}

std::string file_component(const std::string& x) {
  std::string out;
  out.reserve(x.size());
  for (char c : x) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    out += ok ? c : '_';
  }
  if (out.empty() || out == "." || out == "..")
    out = "_";
  return out;
}

} // namespace

std::string output_excerpt(std::string_view text, std::size_t head,
                           std::size_t tail, std::string_view note) {
  if (text.size() <= head + tail)
    return std::string{text};
  auto head_end = floor_boundary(text, head);
  auto tail_start = ceil_boundary(text, text.size() - tail);
  std::string out{text.substr(0, head_end)};
  out += "\n…[";
  out += std::to_string(tail_start - head_end);
  out += " bytes omitted; ";
  out += note;
  out += "]…\n";
  out += text.substr(tail_start);
  return out;
}

std::string output_file_name(const std::string& run_id, int32_t iteration,
                             int32_t step, std::size_t item,
                             const std::string& agent) {
  return std::string{workspace_meta_dir} + "/outputs/" + file_component(run_id)
         + "/i" + std::to_string(iteration) + "-s" + std::to_string(step) + "-"
         + std::to_string(item) + "-" + file_component(agent) + ".txt";
}

bool offload_output(step_result& res, const std::filesystem::path& workspace,
                    const std::string& run_id, std::size_t item,
                    std::string& error, std::size_t max_inline) {
  auto& text = res.outcome.final_text;
  if (text.size() <= max_inline)
    return true;
  auto head = std::min(output_excerpt_head, max_inline / 2);
  auto tail = std::min(output_excerpt_tail, max_inline - head);
  auto rel = output_file_name(run_id, res.iteration, res.step_index + 1,
                              item + 1, res.agent);
  bool ok = write_file_atomic(workspace, rel, text, error);
  std::string note;
  if (ok) {
    res.output_file = rel;
    note = "whole output in " + rel;
  } else {
    note = "the whole output could not be saved: " + error;
  }
  text = output_excerpt(text, head, tail, note);
  return ok;
}

} // namespace orch
