// The input and output files of `batch`: the JSON-lines reader (line
// numbers, limits, hostile bytes), the task parser and source (every kind of
// bad line, duplicates, --resume skips) and the result appender (whole
// lines only, no link followed, torn last line cut off on resume, group
// fsync).

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/batch_task.hpp"
#include "runtime/jsonl_appender.hpp"
#include "runtime/jsonl_reader.hpp"
#include "support/temp_tree.hpp"

namespace orch {
namespace {

using test::read_text;
using test::write_text;

class batch_io_test : public test::temp_tree {
protected:
  detail::unique_fd open_file(const std::string& content) {
    auto path = base_ / "in.jsonl";
    write_text(path, content);
    return detail::unique_fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  }

  std::vector<jsonl_line> read_all(const std::string& content,
                                   std::size_t limit) {
    auto fd = open_file(content);
    jsonl_reader reader{fd.get(), limit};
    std::vector<jsonl_line> out;
    jsonl_line line;
    while (reader.next(line))
      out.push_back(line);
    EXPECT_EQ(reader.error(), "");
    return out;
  }
};

// -- the reader ---------------------------------------------------------------

TEST_F(batch_io_test, reader_numbers_lines_and_strips_crlf) {
  auto lines = read_all("a\r\n\nbc\nlast", 100);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0].number, 1u);
  EXPECT_EQ(lines[0].text, "a");
  EXPECT_EQ(lines[1].text, "");
  EXPECT_EQ(lines[2].number, 3u);
  EXPECT_EQ(lines[2].text, "bc");
  EXPECT_EQ(lines[2].offset, 4u);
  EXPECT_FALSE(lines[2].unterminated);
  EXPECT_EQ(lines[3].text, "last");
  EXPECT_TRUE(lines[3].unterminated);
  EXPECT_EQ(lines[3].offset, 7u);
}

TEST_F(batch_io_test, reader_skips_a_line_over_the_limit_without_keeping_it) {
  // Longer than a read block too, so the cut spans several reads.
  std::string huge(300000, 'x');
  auto lines = read_all("ok\n" + huge + "\nafter\n", 1000);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_TRUE(lines[1].too_long);
  EXPECT_EQ(lines[1].text, "");
  EXPECT_EQ(lines[1].size, 300000u);
  EXPECT_EQ(lines[1].number, 2u);
  EXPECT_EQ(lines[2].text, "after");
  EXPECT_EQ(lines[2].number, 3u);
}

TEST_F(batch_io_test, reader_passes_hostile_bytes_through_untouched) {
  std::string nasty{"\0\xff\x1b[2J\xc3", 6};
  auto lines = read_all(nasty + "\n\n\n", 100);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].text, nasty);
  EXPECT_EQ(lines[2].number, 3u);
}

TEST_F(batch_io_test, reader_of_an_empty_file_has_no_line) {
  EXPECT_TRUE(read_all("", 10).empty());
}

// -- the task parser ----------------------------------------------------------

std::string parse_error(std::string_view line) {
  batch_task t;
  std::string error;
  batch_task_limits limits;
  limits.max_task_bytes = 100;
  EXPECT_FALSE(parse_batch_task(line, limits, t, error)) << line;
  return error;
}

TEST(batch_task_parser, reads_every_field) {
  batch_task t;
  std::string error;
  ASSERT_TRUE(parse_batch_task(
    R"({"id":"a1","task":"build it","workflow":"quick","max_iterations":3,)"
    R"("agents":["codex","gemini"]})",
    batch_task_limits{}, t, error))
    << error;
  EXPECT_EQ(t.id, "a1");
  EXPECT_EQ(t.task, "build it");
  EXPECT_EQ(t.workflow, "quick");
  EXPECT_EQ(t.max_iterations, 3);
  EXPECT_EQ(t.agents, "codex,gemini");
  ASSERT_TRUE(parse_batch_task(R"({"id":"b","task":"x","agents":"claude"})",
                               batch_task_limits{}, t, error));
  EXPECT_EQ(t.agents, "claude");
  EXPECT_EQ(t.workflow, "");
  EXPECT_EQ(t.max_iterations, 0);
}

TEST(batch_task_parser, names_what_is_wrong) {
  EXPECT_EQ(parse_error("nope"), "invalid JSON (expected one object per line)");
  EXPECT_EQ(parse_error(R"({"id":"a","task":"x")"),
            "invalid JSON (expected one object per line)");
  EXPECT_EQ(parse_error("[1,2]"), "expected a JSON object, got array");
  EXPECT_EQ(parse_error(R"({"task":"x"})"), "missing field \"id\"");
  EXPECT_EQ(parse_error(R"({"id":"a"})"), "missing field \"task\"");
  EXPECT_EQ(parse_error(R"({"id":1,"task":"x"})"),
            "field \"id\" must be a string, not number");
  EXPECT_EQ(parse_error(R"({"id":"","task":"x"})"), "field \"id\" is empty");
  EXPECT_EQ(parse_error(R"({"id":"a","task":" \n "})"),
            "field \"task\" is empty");
  EXPECT_EQ(parse_error(R"({"id":"a","task":null})"),
            "field \"task\" must be a string, not null");
  EXPECT_EQ(parse_error(R"({"id":"a","task":"x\u0000y"})"),
            "field \"task\" contains a NUL character");
  EXPECT_EQ(parse_error(R"({"id":"a","task":"x","max_iterations":0})"),
            "field \"max_iterations\" must be an integer from 1 to 1000");
  EXPECT_EQ(parse_error(R"({"id":"a","task":"x","max_iterations":2.5})"),
            "field \"max_iterations\" must be an integer from 1 to 1000");
  EXPECT_EQ(parse_error(R"({"id":"a","task":"x","agents":[1]})"),
            "field \"agents\" must be a comma list or an array of agent "
            "names");
  EXPECT_EQ(parse_error(R"({"id":"a","task":"x","agents":{}})"),
            "field \"agents\" must be a string or an array, not object");
  EXPECT_EQ(parse_error(R"({"id":"a","task":"x","workflow":3})"),
            "field \"workflow\" must be a string, not number");
  EXPECT_EQ(parse_error(R"({"id":"a","task":"x","workfow":"y"})"),
            "unknown field \"workfow\" (known: id, task, workflow, "
            "max_iterations, agents)");
  EXPECT_EQ(
    parse_error(R"({"id":"a","task":")" + std::string(101, 'x') + "\"}"),
    "field \"task\" has 101 bytes; the limit is 100 "
    "(settings.max_task_chars)");
  EXPECT_EQ(
    parse_error(R"({"id":")" + std::string(257, 'i') + R"(","task":"x"})"),
    "field \"id\" has 257 bytes; the limit is 256");
}

TEST(batch_task_parser, refuses_hostile_bytes_and_deep_nesting_without_crash) {
  EXPECT_EQ(parse_error("{\"id\":\"a\",\"task\":\"\xff\"}"),
            "invalid UTF-8 at byte 19");
  EXPECT_EQ(parse_error("{\"id\":\"a\xed\xa0\x80\",\"task\":\"x\"}"),
            "invalid UTF-8 at byte 9");
  // 60,000 brackets (within the line limit): refused before parsing (and
  // before a recursive destruction could overflow the stack).
  std::string deep(60000, '[');
  EXPECT_EQ(parse_error(deep), "invalid JSON: nested deeper than 4 levels");
  EXPECT_EQ(parse_error(std::string{"{\"id\":\"a\"\0}", 11}),
            "invalid JSON (expected one object per line)");
  // Brackets inside strings do not count as nesting.
  batch_task t;
  std::string error;
  EXPECT_TRUE(parse_batch_task(R"({"id":"a","task":"[[[[[[[[\"{{{{{{"})",
                               batch_task_limits{}, t, error))
    << error;
}

// -- the task source ----------------------------------------------------------

TEST_F(batch_io_test, source_reports_bad_lines_with_numbers_and_skips_ids) {
  batch_task_limits limits;
  limits.max_task_bytes = 10;
  std::string content = R"({"id":"a","task":"one"})"
                        "\n\n   \n"
                        R"({"id":"b","task":"two"})"
                        "\n"
                        "garbage\n"
                        R"({"id":"a","task":"again"})"
                        "\n"
                        + std::string(200000, 'z') + "\n"
                        + R"({"id":"c","task":"three"})";
  batch_task_source source{open_file(content), limits, {"b"}};
  std::vector<bad_line> bad;
  batch_task t;
  ASSERT_TRUE(source.next(t, bad));
  EXPECT_EQ(t.id, "a");
  EXPECT_EQ(t.line, 1u);
  ASSERT_TRUE(source.next(t, bad));
  EXPECT_EQ(t.id, "c");
  EXPECT_EQ(t.line, 8u);
  EXPECT_FALSE(source.next(t, bad));
  EXPECT_EQ(source.skipped(), 1u);
  ASSERT_EQ(bad.size(), 3u);
  EXPECT_EQ(bad[0].line, 5u);
  EXPECT_EQ(bad[1].line, 6u);
  EXPECT_EQ(bad[1].error, "duplicate id \"a\" (first seen on an earlier line)");
  EXPECT_EQ(bad[2].line, 7u);
  EXPECT_EQ(bad[2].error, "the line has 200000 bytes; the limit is "
                            + std::to_string(limits.max_line_bytes()));
  auto ids = source.take_ids();
  EXPECT_EQ(ids.size(), 3u);
}

// -- the appender -------------------------------------------------------------

TEST_F(batch_io_test, appender_writes_whole_lines_and_syncs_by_policy) {
  auto path = (base_ / "out.jsonl").string();
  resume_scan scan;
  std::string error;
  sync_policy policy;
  policy.every_lines = 2;
  policy.interval = std::chrono::hours{1};
  auto out = jsonl_appender::open(path, false, policy, scan, error);
  ASSERT_TRUE(out) << error;
  ASSERT_TRUE(out->append(R"({"id":"a"})", error));
  EXPECT_FALSE(out->sync_due());
  ASSERT_TRUE(out->append(R"({"id":"b"})", error));
  EXPECT_TRUE(out->sync_due());
  ASSERT_TRUE(out->sync(error));
  EXPECT_EQ(out->unsynced(), 0u);
  EXPECT_FALSE(out->sync_due());
  EXPECT_EQ(read_text(path), "{\"id\":\"a\"}\n{\"id\":\"b\"}\n");
  EXPECT_EQ(out->appended(), 2u);
}

TEST_F(batch_io_test, appender_syncs_after_the_interval) {
  resume_scan scan;
  std::string error;
  sync_policy policy;
  policy.every_lines = 0;
  policy.interval = std::chrono::milliseconds{0};
  auto out = jsonl_appender::open((base_ / "o.jsonl").string(), false, policy,
                                  scan, error);
  ASSERT_TRUE(out) << error;
  EXPECT_FALSE(out->sync_due());
  ASSERT_TRUE(out->append("{}", error));
  EXPECT_TRUE(out->sync_due());
}

TEST_F(batch_io_test, appender_refuses_a_used_file_a_link_and_a_folder) {
  auto used = base_ / "used.jsonl";
  write_text(used, "{\"id\":\"x\"}\n");
  resume_scan scan;
  std::string error;
  EXPECT_FALSE(jsonl_appender::open(used.string(), false, {}, scan, error));
  EXPECT_NE(error.find("pass --resume"), std::string::npos) << error;
  EXPECT_EQ(read_text(used), "{\"id\":\"x\"}\n");
  auto target = outside_ / "target.jsonl";
  std::filesystem::create_symlink(target, base_ / "link.jsonl");
  EXPECT_FALSE(jsonl_appender::open((base_ / "link.jsonl").string(), true, {},
                                    scan, error));
  EXPECT_NE(error.find("symlink"), std::string::npos) << error;
  EXPECT_FALSE(std::filesystem::exists(target));
  EXPECT_FALSE(jsonl_appender::open(outside_.string(), true, {}, scan, error));
}

TEST_F(batch_io_test, resume_reads_the_ids_and_cuts_a_torn_last_line_off) {
  auto path = base_ / "out.jsonl";
  write_text(path, "{\"id\":\"a\",\"status\":\"completed\"}\n"
                   "not a result\n"
                   "{\"id\":\"b\"}\n"
                   "{\"id\":\"c\",\"sta");
  resume_scan scan;
  std::string error;
  auto out = jsonl_appender::open(path.string(), true, {}, scan, error);
  ASSERT_TRUE(out) << error;
  EXPECT_EQ(scan.ids, (std::unordered_set<std::string>{"a", "b"}));
  EXPECT_EQ(scan.lines, 3u);
  EXPECT_EQ(scan.truncated_bytes, 14u);
  EXPECT_EQ(scan.unreadable, std::vector<uint64_t>{2});
  ASSERT_TRUE(out->append("{\"id\":\"c\"}", error));
  EXPECT_EQ(read_text(path), "{\"id\":\"a\",\"status\":\"completed\"}\n"
                             "not a result\n"
                             "{\"id\":\"b\"}\n"
                             "{\"id\":\"c\"}\n");
}

TEST_F(batch_io_test, resume_of_a_missing_file_creates_it) {
  resume_scan scan;
  std::string error;
  auto path = base_ / "new.jsonl";
  auto out = jsonl_appender::open(path.string(), true, {}, scan, error);
  ASSERT_TRUE(out) << error;
  EXPECT_TRUE(scan.ids.empty());
  EXPECT_TRUE(std::filesystem::is_regular_file(path));
}

} // namespace
} // namespace orch
