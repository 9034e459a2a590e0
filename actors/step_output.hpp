#pragma once

// Bounds what a run keeps of each step's final output: a long output is
// saved whole to a file in the workspace's meta dir and the step result (and
// so the run result, the manifest and the next prompt) keeps an excerpt.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "actors/vocabulary.hpp"

namespace orch {

/// Longest final output kept whole in a step result; beyond it the result
/// keeps `output_excerpt_head` + `output_excerpt_tail` bytes.
inline constexpr std::size_t max_inline_output = std::size_t{64} * 1024;
inline constexpr std::size_t output_excerpt_head = std::size_t{32} * 1024;
inline constexpr std::size_t output_excerpt_tail = std::size_t{32} * 1024;

/// Returns the first `head` and last `tail` bytes of `text` joined by a line
/// `…[N bytes omitted; <note>]…`, each part cut on a UTF-8 character
/// boundary (so at most 3 bytes fewer each). Returns `text` unchanged when
/// it is not longer than `head + tail`.
std::string output_excerpt(std::string_view text, std::size_t head,
                           std::size_t tail, std::string_view note);

/// Returns the workspace-relative name of the file holding the whole output
/// of one item of one step:
/// `.orchestrator/outputs/<run_id>/i<iteration>-s<step>-<item>-<agent>.txt`
/// with `step` and `item` 1-based. Characters of the run id and the agent
/// name outside [A-Za-z0-9._-] become `_` (and `.`/`..`/empty become `_`),
/// so the name has no `/` and no dot-only component.
std::string output_file_name(const std::string& run_id, int32_t iteration,
                             int32_t step, std::size_t item,
                             const std::string& agent);

/// True when `res.outcome.final_text` is longer than `max_inline`: what
/// offload_output cuts (and writes to a file).
inline bool output_too_long(const step_result& res,
                            std::size_t max_inline = max_inline_output) {
  return res.outcome.final_text.size() > max_inline;
}

/// When output_too_long(res, max_inline), writes `res.outcome.final_text` whole
/// to `output_file_name(...)` under `workspace` (atomically, never through a
/// link below the workspace), sets `res.output_file` and cuts `final_text` to
/// an excerpt naming that file. When the write fails the text is cut all the
/// same (memory stays bounded), the excerpt says why it was not saved, and
/// the function returns false with `error` set. Blocking file I/O: one small
/// write per long output.
bool offload_output(step_result& res, const std::filesystem::path& workspace,
                    const std::string& run_id, std::size_t item,
                    std::string& error,
                    std::size_t max_inline = max_inline_output);

} // namespace orch
