#pragma once

// Review findings and prompt templates: how a review is read back, and how
// each task kind asks an agent for its work.

#include <cstddef>
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

/// Maps a reviewer's severity word to critical, high, medium, low or info
/// (case-insensitive): error/major/blocker -> high/critical, warning ->
/// medium, minor/nit -> low; anything unknown -> info.
std::string normalize_severity(std::string_view word);

/// Reads findings from review text: the last fenced (or bare) JSON object
/// with a `findings` array wins; otherwise numbered (`1.`/`1)`) and bulleted
/// (`-`, `*`, `•`) lines, with a leading `critical:/high:/...` or
/// `[high]` taken as the severity. "No issues"/"LGTM"-only text gives none.
///
/// JSON items: severity (or level/priority), file (or path/filename), line
/// (number or digits in a string; `"a.py:12"` as file also works), text (or
/// message/description/issue/title). Fallback details: a path `a/b.py:12`
/// (optionally in backticks) after the severity is taken as file and line;
/// headings and label lines (`### High`, `**Medium:**`, `routes.py:`) set
/// the severity/file of the items below them; deeper-indented sub-items and
/// wrapped lines continue the item above; items under a "Strengths" /
/// "What's good" label are skipped; markdown tables with a header naming
/// severity/file/line/issue columns are read; lines inside code fences are
/// ignored.
std::vector<finding> parse_findings(std::string_view text);

/// How parse_review read a review.
enum class findings_source : uint8_t {
  /// A JSON object with a `findings` array.
  json,
  /// Numbered/bulleted lines or a table.
  text,
  /// Nothing that reads as a finding.
  none,
};

/// parse_findings plus how the text was read.
struct review_parse {
  std::vector<finding> findings;
  findings_source source = findings_source::none;
  /// A `"findings"` key appeared but no valid JSON object with a findings
  /// array was found (e.g. cut-off output). The text fallback was used; a
  /// caller may prefer to treat the review as failed rather than clean.
  bool malformed_json = false;
};

/// Same reading as parse_findings, with its provenance.
review_parse parse_review(std::string_view text);

/// Returns a numbered list, one line per finding:
/// `1. [high] api/models.py:12 - text` (file/line left out when unknown), or
/// "(none)" when empty. At most `max_items` lines, then "... and N more".
std::string format_findings(const std::vector<finding>& findings,
                            std::size_t max_items = 100);

/// Returns true when `kind` is a review kind (review, security_review, or a
/// custom task with `review: true`).
///
/// `suggestions` counts as a review kind too (it answers with findings). The
/// built-in review kinds stay review kinds even when a custom task of the
/// same name overrides their prompt.
bool is_review_task(const config& cfg, std::string_view kind);

/// Bytes of the previous step's output kept in a prompt: the first and last
/// half are kept, the middle is replaced by a marker saying how much was cut.
inline constexpr std::size_t prompt_output_cap = std::size_t{8} * 1024;

/// Workspace file names listed in a prompt; the rest is counted.
inline constexpr std::size_t prompt_file_cap = 200;

/// Returns `text` unchanged when it fits `cap` bytes, else its head and tail
/// (cut on UTF-8 boundaries) around `[... N bytes cut ...]`.
std::string cap_text(std::string_view text, std::size_t cap);

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
///
/// The first line is always `Task kind: <kind>` (newlines in the kind become
/// spaces). A custom template (cfg.tasks, matched by exact name) has its
/// placeholders (config's `prompt_placeholders`: {task} {findings} {files}
/// {previous_output} {workspace} {iteration} {task_kind}) replaced in one
/// pass (substituted text is not scanned again; unknown `{...}` stay as
/// written); a template that itself starts with that first line does not get
/// it twice.
std::string render_prompt(const config& cfg, const prompt_context& ctx);

} // namespace orch
