#pragma once

// Review findings and prompt templates: how a review is read back, and how
// each task kind asks an agent for its work.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace orch {

/// One point a reviewer raised.
struct finding {
  /// critical, high, medium, low or info (lower-case); "info" when unknown.
  std::string severity;
  std::string file;
  int32_t line = 0;
  std::string text;

  friend bool operator==(const finding& a, const finding& b) {
    return a.severity == b.severity && a.file == b.file && a.line == b.line
           && a.text == b.text;
  }
};

/// Reads findings from review text: the last fenced (or bare) JSON object
/// with a `findings` array wins; otherwise numbered (`1.`/`1)`) and bulleted
/// (`-`, `*`, `•`) lines, with a leading `critical:/high:/...` or
/// `[high]` taken as the severity. "No issues"/"LGTM"-only text gives none.
std::vector<finding> parse_findings(std::string_view text);

/// Returns true when `kind` is a review kind (review, security_review, or a
/// custom task with `review: true`).
bool is_review_task(const config& cfg, std::string_view kind);

/// What a prompt is rendered from.
struct prompt_context {
  std::string task;
  std::string task_kind;
  /// Open findings of the previous review, to be addressed.
  std::vector<finding> findings;
  /// Files in the workspace so far (relative paths).
  std::vector<std::string> files;
  /// The previous step's final text (e.g. the implementation summary).
  std::string previous_output;
  std::string workspace;
  /// 1-based iteration number.
  int32_t iteration = 1;
};

/// Renders the prompt for `ctx.task_kind`: a custom template from the config
/// wins over the built-in one. Review prompts ask for a ```json block
/// `{"findings": [{"severity","file","line","text"}]}`.
std::string render_prompt(const config& cfg, const prompt_context& ctx);

} // namespace orch
