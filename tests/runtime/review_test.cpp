// Review findings read back from agent text, and rendered prompts.

#include "runtime/review.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace orch {

// Readable failure messages; static so no other test file can clash.
[[maybe_unused]] static void PrintTo(const finding& f, std::ostream* os) {
  *os << "{" << f.severity << ", \"" << f.file << "\", " << f.line << ", \""
      << f.text << "\"}";
}

namespace {

namespace fs = std::filesystem;

finding make(std::string severity, std::string file, int32_t line,
             std::string text) {
  finding f;
  f.severity = std::move(severity);
  f.file = std::move(file);
  f.line = line;
  f.text = std::move(text);
  return f;
}

// -- severities ---------------------------------------------------------------

TEST(normalize_severity, maps_reviewer_words_to_five_levels) {
  EXPECT_EQ(normalize_severity("HIGH"), "high");
  EXPECT_EQ(normalize_severity(" Critical "), "critical");
  EXPECT_EQ(normalize_severity("medium"), "medium");
  EXPECT_EQ(normalize_severity("low"), "low");
  EXPECT_EQ(normalize_severity("info"), "info");
  EXPECT_EQ(normalize_severity("warning"), "medium");
  EXPECT_EQ(normalize_severity("error"), "high");
  EXPECT_EQ(normalize_severity("major"), "high");
  EXPECT_EQ(normalize_severity("minor"), "low");
  EXPECT_EQ(normalize_severity("blocker"), "critical");
  EXPECT_EQ(normalize_severity("whatever"), "info");
  EXPECT_EQ(normalize_severity(""), "info");
}

// -- JSON findings ------------------------------------------------------------

TEST(parse_findings, reads_a_json_fence) {
  std::string text = "Review:\n\n```json\n{\"findings\": [\n"
                     "  {\"severity\": \"high\", \"file\": \"a.py\", "
                     "\"line\": 3, \"text\": \"bad\"},\n"
                     "  {\"severity\": \"Warning\", \"file\": \"b.py\", "
                     "\"line\": 7, \"text\": \"meh\"}\n]}\n```\nBye.\n";
  review_parse r = parse_review(text);
  EXPECT_EQ(r.source, findings_source::json);
  EXPECT_FALSE(r.malformed_json);
  EXPECT_EQ(r.findings,
            (std::vector<finding>{make("high", "a.py", 3, "bad"),
                                  make("medium", "b.py", 7, "meh")}));
}

TEST(parse_findings, reads_bare_json_and_a_plain_fence) {
  std::string bare = "Done. {\"findings\": [{\"severity\": \"low\", "
                     "\"file\": \"x.go\", \"line\": 1, \"text\": \"nit\"}]} "
                     "That is all.";
  EXPECT_EQ(parse_findings(bare),
            (std::vector<finding>{make("low", "x.go", 1, "nit")}));
  std::string fenced = "```\n{\"findings\": [{\"severity\": \"error\", "
                       "\"text\": \"boom\"}]}\n```";
  EXPECT_EQ(parse_findings(fenced),
            (std::vector<finding>{make("high", "", 0, "boom")}));
}

TEST(parse_findings, takes_the_last_findings_object) {
  std::string text
    = "First draft:\n```json\n{\"findings\": [{\"severity\": \"high\", "
      "\"text\": \"one\"}, {\"severity\": \"high\", \"text\": \"two\"}]}\n```\n"
      "On second thought:\n```json\n{\"summary\": \"a { brace\", "
      "\"findings\": [{\"severity\": \"minor\", \"text\": \"three\"}]}\n```\n";
  EXPECT_EQ(parse_findings(text),
            (std::vector<finding>{make("low", "", 0, "three")}));
}

TEST(parse_findings, empty_findings_array_means_none) {
  review_parse r = parse_review("All fixed.\n```json\n{\"findings\": []}\n```");
  EXPECT_TRUE(r.findings.empty());
  EXPECT_EQ(r.source, findings_source::json);
  EXPECT_FALSE(r.malformed_json);
}

TEST(parse_findings, accepts_alternative_keys_and_line_spellings) {
  std::string text = R"({"findings": [
    {"severity": "major", "path": "a.py", "line": "12", "message": "m"},
    {"level": "minor", "file": "b.py", "line": "5-9", "description": "d"},
    {"severity": "bogus", "file": "c.py:44", "text": "split"},
    {"severity": "HIGH", "file": "d.py", "line": 2.0, "issue": "float"},
    {"severity": "low", "file": "e.py", "line": -3, "text": "negative"},
    "just a string",
    42
  ]})";
  EXPECT_EQ(parse_findings(text),
            (std::vector<finding>{make("high", "a.py", 12, "m"),
                                  make("low", "b.py", 5, "d"),
                                  make("info", "c.py", 44, "split"),
                                  make("high", "d.py", 2, "float"),
                                  make("low", "e.py", 0, "negative"),
                                  make("info", "", 0, "just a string")}));
}

TEST(parse_findings, flags_cut_off_json_and_falls_back_to_text) {
  std::string text = "- [high] a.py:1 - real issue\n"
                     "```json\n{\"findings\": [{\"severity\": \"high\", "
                     "\"text\": \"cut";
  review_parse r = parse_review(text);
  EXPECT_TRUE(r.malformed_json);
  EXPECT_EQ(r.source, findings_source::text);
  EXPECT_EQ(r.findings,
            (std::vector<finding>{make("high", "a.py", 1, "real issue")}));
}

TEST(parse_findings, ignores_the_word_findings_outside_json) {
  review_parse r = parse_review("My findings: the \"findings\" are none.\n");
  EXPECT_TRUE(r.findings.empty());
  EXPECT_EQ(r.source, findings_source::none);
}

// -- text fallback ------------------------------------------------------------

TEST(parse_findings, reads_numbered_and_bulleted_lines) {
  std::string text = "Issues:\n"
                     "1. critical: SQL injection in the query builder\n"
                     "2) [high] `api/db.py:12` - unchecked input\n"
                     "- **Medium**: slow loop\n"
                     "* (low) naming\n"
                     "\xE2\x80\xA2 **High:** leak in cache.py\n"
                     "- Missing docstrings\n";
  EXPECT_EQ(parse_findings(text),
            (std::vector<finding>{
              make("critical", "", 0, "SQL injection in the query builder"),
              make("high", "api/db.py", 12, "unchecked input"),
              make("medium", "", 0, "slow loop"), make("low", "", 0, "naming"),
              make("high", "", 0, "leak in cache.py"),
              make("info", "", 0, "Missing docstrings")}));
}

TEST(parse_findings, takes_file_and_line_from_the_start_of_an_item) {
  std::string text = "- src/app.js:40:7 - unused variable\n"
                     "- **config.yaml**: missing key\n"
                     "- routes.py, line 8: no lock\n"
                     "- README.md is outdated\n"
                     "- warning: lib/x.rb:3 \xE2\x80\x94 eval on input\n";
  EXPECT_EQ(
    parse_findings(text),
    (std::vector<finding>{make("info", "src/app.js", 40, "unused variable"),
                          make("info", "config.yaml", 0, "missing key"),
                          make("info", "routes.py", 8, "no lock"),
                          make("info", "", 0, "README.md is outdated"),
                          make("medium", "lib/x.rb", 3, "eval on input")}));
}

TEST(parse_findings, ignores_headings_code_and_prose) {
  std::string text = "# Review\n\nThe code is mostly fine.\n"
                     "```python\n- [high] not a finding inside code\n"
                     "1. neither is this\n```\n"
                     "## Summary\nFix things soon.\n";
  EXPECT_TRUE(parse_findings(text).empty());
}

TEST(parse_findings, no_issue_replies_give_no_findings) {
  for (std::string text :
       {"LGTM", "LGTM!", "Looks good to me.", "- No issues found.",
        "1. No issues found", "No findings.", "- None", "Looks good",
        "**LGTM** \xF0\x9F\x9A\x80"}) {
    review_parse r = parse_review(text);
    EXPECT_TRUE(r.findings.empty()) << text;
    EXPECT_EQ(r.source, findings_source::none) << text;
  }
}

TEST(parse_findings, plain_lines_count_only_with_a_core_severity_label) {
  std::string text = "HIGH: secrets in config.py\n"
                     "Note: this is just prose.\n"
                     "[medium] retry without backoff\n";
  EXPECT_EQ(
    parse_findings(text),
    (std::vector<finding>{make("high", "", 0, "secrets in config.py"),
                          make("medium", "", 0, "retry without backoff")}));
}

TEST(parse_findings, section_labels_set_severity_and_file) {
  std::string text = "### High severity\n- token logged\n- no auth\n"
                     "**Low:**\n- long function\n"
                     "### Notes\n- plain remark\n"
                     "`api/models.py`:\n- utcnow deprecated\n";
  EXPECT_EQ(
    parse_findings(text),
    (std::vector<finding>{
      make("high", "", 0, "token logged"), make("high", "", 0, "no auth"),
      make("low", "", 0, "long function"), make("info", "", 0, "plain remark"),
      make("info", "api/models.py", 0, "utcnow deprecated")}));
}

TEST(parse_findings, sub_items_and_wrapped_lines_continue_their_item) {
  std::string text = "1. [high] a.py:3 - no validation on\n"
                     "   POST bodies\n"
                     "   - suggestion: use a schema\n"
                     "2. [low] b.py:1 - typo\n";
  EXPECT_EQ(parse_findings(text),
            (std::vector<finding>{
              make("high", "a.py", 3,
                   "no validation on POST bodies suggestion: use a schema"),
              make("low", "b.py", 1, "typo")}));
}

TEST(parse_findings, skips_the_strengths_section) {
  std::string text = "Strengths:\n- clean structure\n- good tests\n\n"
                     "Issues:\n- [medium] a.py:2 - global state\n";
  EXPECT_EQ(parse_findings(text),
            (std::vector<finding>{make("medium", "a.py", 2, "global state")}));
}

TEST(parse_findings, reads_a_findings_table) {
  std::string text = "| Severity | File | Line | Issue |\n"
                     "|---|---|---|---|\n"
                     "| **High** | `a.py` | 12 | no validation |\n"
                     "| minor | b.py | | style |\n"
                     "\n| Name | Value |\n|---|---|\n| x | 1 |\n";
  EXPECT_EQ(parse_findings(text),
            (std::vector<finding>{make("high", "a.py", 12, "no validation"),
                                  make("low", "b.py", 0, "style")}));
}

// -- real CLI output ----------------------------------------------------------

std::string read_text(const fs::path& p) {
  std::ifstream in{p, std::ios::binary};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The final assistant text of a fixture, read the way the README says.
std::string final_text(const std::string& cli, const std::string& name) {
  std::istringstream in{read_text(fs::path{ORCH_TEST_FIXTURES} / "agent-output"
                                  / cli / (name + ".stdout"))};
  std::string line;
  std::string text;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      continue;
    std::string type = j.value("type", "");
    if (cli == "claude" && type == "result")
      text = j.value("result", "");
    else if (cli == "codex" && type == "item.completed"
             && j["item"].value("type", "") == "agent_message")
      text = j["item"].value("text", "");
    else if (cli == "gemini" && type == "message"
             && j.value("role", "") == "assistant")
      text += j.value("content", "");
    else if (cli == "copilot" && type == "assistant.message"
             && !j["data"].value("content", "").empty())
      text = j["data"].value("content", "");
  }
  return text;
}

class fixture_review_test : public ::testing::TestWithParam<std::string> {};

TEST_P(fixture_review_test, numbered_review_gives_four_findings) {
  std::string text = final_text(GetParam(), "review");
  ASSERT_FALSE(text.empty());
  review_parse r = parse_review(text);
  EXPECT_EQ(r.source, findings_source::text);
  ASSERT_EQ(r.findings.size(), 4u) << text;
  EXPECT_EQ(r.findings[0].severity, "high");
  EXPECT_EQ(r.findings[0].file, "blog_api/routes.py");
  EXPECT_EQ(r.findings[0].line, 12);
  EXPECT_EQ(r.findings[0].text.rfind("no input validation on POST /posts", 0),
            0u)
    << r.findings[0].text;
  EXPECT_EQ(r.findings[1], make("medium", "blog_api/routes.py", 8,
                                "POSTS is a module-level dict shared across "
                                "threads without a lock."));
  EXPECT_EQ(r.findings[2].severity, "medium");
  EXPECT_EQ(r.findings[2].file, "blog_api/models.py");
  EXPECT_EQ(r.findings[2].line, 11);
  EXPECT_EQ(r.findings[3].severity, "low");
  EXPECT_EQ(r.findings[3].line, 14);
}

TEST_P(fixture_review_test, findings_block_gives_three_findings) {
  std::string text = final_text(GetParam(), "review-findings-block");
  ASSERT_FALSE(text.empty());
  review_parse r = parse_review(text);
  EXPECT_EQ(r.source, findings_source::json);
  EXPECT_EQ(r.findings,
            (std::vector<finding>{
              make("high", "blog_api/routes.py", 12,
                   "No input validation on POST /posts; a missing title "
                   "raises KeyError (HTTP 500)."),
              make("medium", "blog_api/routes.py", 8,
                   "POSTS is shared across threads without a lock."),
              make("low", "blog_api/models.py", 11,
                   "datetime.utcnow() is deprecated.")}));
}

INSTANTIATE_TEST_SUITE_P(clis, fixture_review_test,
                         ::testing::Values("claude", "codex", "gemini",
                                           "copilot"));

TEST(format_findings, numbers_each_finding_with_its_location) {
  std::vector<finding> f{make("high", "a.py", 3, "bad\nthing"),
                         make("low", "", 0, "style"),
                         make("medium", "b.py", 0, "x")};
  EXPECT_EQ(format_findings(f), "1. [high] a.py:3 - bad thing\n"
                                "2. [low] - style\n"
                                "3. [medium] b.py - x");
  EXPECT_EQ(format_findings({}), "(none)");
  EXPECT_EQ(format_findings(f, 1), "1. [high] a.py:3 - bad thing\n"
                                   "... and 2 more");
}

// -- prompts ------------------------------------------------------------------

prompt_context sample_context(std::string kind) {
  prompt_context ctx;
  ctx.task = "Build a blog API with Flask.";
  ctx.task_kind = std::move(kind);
  ctx.findings = {make("high", "api/models.py", 12, "no validation"),
                  make("low", "", 0, "naming")};
  ctx.files = {"api/models.py", "api/routes.py"};
  ctx.previous_output = "I wrote two files.";
  ctx.workspace = "/tmp/x/ws";
  ctx.iteration = 2;
  return ctx;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

class builtin_prompt_test : public ::testing::TestWithParam<std::string> {};

TEST_P(builtin_prompt_test, starts_with_the_kind_and_carries_the_context) {
  config cfg;
  std::string p = render_prompt(cfg, sample_context(GetParam()));
  EXPECT_EQ(p.rfind("Task kind: " + GetParam() + "\n", 0), 0u) << p;
  EXPECT_TRUE(contains(p, "Build a blog API with Flask."));
  EXPECT_LT(p.find("Build a blog API"), p.find("## What to do"));
  EXPECT_TRUE(contains(p, "1. [high] api/models.py:12 - no validation")) << p;
  EXPECT_TRUE(contains(p, "2. [low] - naming"));
  EXPECT_TRUE(contains(p, "- api/routes.py"));
  EXPECT_TRUE(contains(p, "/tmp/x/ws"));
  EXPECT_TRUE(contains(p, "I wrote two files."));
  EXPECT_TRUE(contains(p, "iteration 2"));
}

INSTANTIATE_TEST_SUITE_P(kinds, builtin_prompt_test,
                         ::testing::Values("implement", "review",
                                           "security_review", "refine", "test",
                                           "document", "suggestions",
                                           "unknown_kind"));

TEST(render_prompt, implement_asks_for_files_or_titled_blocks) {
  std::string p = render_prompt(config{}, sample_context("implement"));
  EXPECT_TRUE(contains(p, "current working directory"));
  EXPECT_TRUE(contains(p, "title=src/app.py"));
  EXPECT_TRUE(contains(p, "address them first"));
  EXPECT_FALSE(contains(p, "\"findings\": ["));
}

TEST(render_prompt, reviews_ask_for_a_json_findings_block) {
  for (std::string kind : {"review", "security_review", "suggestions"}) {
    std::string p = render_prompt(config{}, sample_context(kind));
    EXPECT_TRUE(contains(p, "```json\n{\"findings\": [{\"severity\": "
                            "\"high|medium|low\""))
      << p;
    EXPECT_TRUE(contains(p, "{\"findings\": []}"));
    EXPECT_TRUE(contains(p, "Do not modify any file"));
  }
  std::string sec = render_prompt(config{}, sample_context("security_review"));
  EXPECT_TRUE(contains(sec, "security problems"));
}

TEST(render_prompt, refine_fixes_findings_and_keeps_behaviour) {
  std::string p = render_prompt(config{}, sample_context("refine"));
  EXPECT_TRUE(contains(p, "Fix the findings"));
  EXPECT_TRUE(contains(p, "Keep the existing behaviour"));
  EXPECT_TRUE(contains(p, "title=src/app.py"));
}

TEST(render_prompt, without_findings_or_files_says_so) {
  prompt_context ctx;
  ctx.task = "t";
  ctx.task_kind = "implement";
  std::string p = render_prompt(config{}, ctx);
  EXPECT_FALSE(contains(p, "## Open findings"));
  EXPECT_FALSE(contains(p, "address them first"));
  EXPECT_TRUE(contains(p, "(none yet)"));
  EXPECT_TRUE(contains(p, "iteration 1"));
}

TEST(render_prompt, caps_the_previous_output_and_the_file_list) {
  prompt_context ctx = sample_context("review");
  ctx.previous_output = "HEAD-MARK" + std::string(20000, 'x') + "TAIL-MARK";
  ctx.files.clear();
  for (int i = 0; i < 250; ++i)
    ctx.files.push_back("f" + std::to_string(i) + ".py");
  std::string p = render_prompt(config{}, ctx);
  EXPECT_TRUE(contains(p, "HEAD-MARK"));
  EXPECT_TRUE(contains(p, "TAIL-MARK"));
  EXPECT_TRUE(contains(p, "bytes cut"));
  EXPECT_LT(p.size(), 8u * 1024 + 6000);
  EXPECT_TRUE(contains(p, "- f199.py\n"));
  EXPECT_FALSE(contains(p, "- f200.py\n"));
  EXPECT_TRUE(contains(p, "- ... and 50 more"));
}

TEST(render_prompt, kind_line_stays_one_line) {
  prompt_context ctx = sample_context("review\nTask kind: implement");
  std::string p = render_prompt(config{}, ctx);
  EXPECT_EQ(p.substr(0, p.find('\n')),
            "Task kind: review Task kind: implement");
}

TEST(render_prompt, custom_template_substitutes_every_placeholder) {
  config cfg;
  task_template t;
  t.name = "audit";
  t.prompt = "Audit {task} in {workspace} (round {iteration}, {task_kind}).\n"
             "Findings:\n{findings}\nFiles:\n{files}\nBefore:\n"
             "{previous_output}\nKeep {unknown} as is.";
  t.review = true;
  cfg.tasks.push_back(t);
  prompt_context ctx = sample_context("audit");
  ctx.task = "the {files} code";
  std::string p = render_prompt(cfg, ctx);
  EXPECT_EQ(p, "Task kind: audit\n\n"
               "Audit the {files} code in /tmp/x/ws (round 2, audit).\n"
               "Findings:\n1. [high] api/models.py:12 - no validation\n"
               "2. [low] - naming\n"
               "Files:\n- api/models.py\n- api/routes.py\nBefore:\n"
               "I wrote two files.\nKeep {unknown} as is.\n");
}

TEST(render_prompt, custom_template_wins_over_a_builtin_kind) {
  config cfg;
  cfg.tasks.push_back({"review", "Just look at {files}.", false});
  std::string p = render_prompt(cfg, sample_context("review"));
  EXPECT_EQ(p, "Task kind: review\n\nJust look at - api/models.py\n"
               "- api/routes.py.\n");
  EXPECT_TRUE(is_review_task(cfg, "review"));
}

TEST(render_prompt, custom_template_with_its_own_kind_line_is_not_doubled) {
  config cfg;
  cfg.tasks.push_back({"lint", "Task kind: {task_kind}\nLint {task}", false});
  prompt_context ctx = sample_context("lint");
  ctx.task = "it";
  EXPECT_EQ(render_prompt(cfg, ctx), "Task kind: lint\nLint it\n");
}

TEST(render_prompt, custom_template_caps_the_previous_output) {
  config cfg;
  cfg.tasks.push_back({"echo", "{previous_output}", false});
  prompt_context ctx = sample_context("echo");
  ctx.previous_output = std::string(50000, 'y');
  std::string p = render_prompt(cfg, ctx);
  EXPECT_TRUE(contains(p, "bytes cut"));
  EXPECT_LT(p.size(), prompt_output_cap + 200);
}

TEST(is_review_task, knows_builtin_and_custom_review_kinds) {
  config cfg;
  cfg.tasks.push_back({"audit", "x", true});
  cfg.tasks.push_back({"lint", "x", false});
  EXPECT_TRUE(is_review_task(cfg, "review"));
  EXPECT_TRUE(is_review_task(cfg, "security_review"));
  EXPECT_TRUE(is_review_task(cfg, "suggestions"));
  EXPECT_TRUE(is_review_task(cfg, "audit"));
  EXPECT_FALSE(is_review_task(cfg, "lint"));
  EXPECT_FALSE(is_review_task(cfg, "implement"));
  EXPECT_FALSE(is_review_task(cfg, "refine"));
  EXPECT_FALSE(is_review_task(cfg, "nonexistent"));
}

TEST(cap_text, keeps_short_text_and_cuts_long_text_on_utf8_boundaries) {
  EXPECT_EQ(cap_text("short", 100), "short");
  std::string euro = "\xE2\x82\xAC"; // 3 bytes
  std::string text;
  for (int i = 0; i < 100; ++i)
    text += euro;
  std::string capped = cap_text(text, 50);
  EXPECT_TRUE(contains(capped, "bytes cut"));
  std::string head = capped.substr(0, capped.find('\n'));
  std::string tail = capped.substr(capped.rfind('\n') + 1);
  EXPECT_EQ(head.size() % 3, 0u);
  EXPECT_EQ(tail.size() % 3, 0u);
  EXPECT_LE(head.size() + tail.size(), 50u);
  EXPECT_TRUE(
    contains(capped, "[... " + std::to_string(300 - head.size() - tail.size())
                       + " bytes cut ...]"));
}

} // namespace
} // namespace orch
