#pragma once

// The input of `batch`: one task per line of a JSON-lines file, checked one
// line at a time (see parse_batch_task) and read as a stream (see
// batch_task_source), so that a file of 100,000 tasks costs the memory of
// its ids, not of its texts.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "runtime/fd_util.hpp"
#include "runtime/jsonl_reader.hpp"

namespace orch {

/// One task of a batch input line.
struct batch_task {
  /// Unique within the input; names the task in the output.
  std::string id;
  std::string task;
  /// Empty: the batch's default workflow.
  std::string workflow;
  /// 0: the workflow's.
  int32_t max_iterations = 0;
  /// `--agents` csv (an array in the input is joined with ','); empty: the
  /// workflow's agents.
  std::string agents;
  /// The input line it came from.
  uint64_t line = 0;
};

/// Limits of one input line.
struct batch_task_limits {
  /// Bytes in the `task` text (settings.max_task_chars).
  std::size_t max_task_bytes = 100000;
  /// Bytes in an id.
  std::size_t max_id_bytes = 256;
  /// Bytes in a whole line: the task may be escaped (`\u0000` is 6 bytes
  /// for 1).
  std::size_t max_line_bytes() const noexcept {
    return max_task_bytes * 6 + 65536;
  }
};

/// Parses one input line (without its '\n') into `out`. Returns false and
/// sets `error` to what is wrong ("invalid JSON: ...", "invalid UTF-8 at
/// byte 12", "missing field \"task\"", "field \"max_iterations\" must be an
/// integer from 1 to 1000", ...). Nesting deeper than a few levels is
/// refused before parsing; unknown fields are refused (a typo would
/// otherwise run the task with a default). Never throws.
bool parse_batch_task(std::string_view line, const batch_task_limits& limits,
                      batch_task& out, std::string& error);

/// A line of the input that was not a task, and why.
struct bad_line {
  uint64_t line = 0;
  std::string error;
};

/// The tasks of an input file in order: blank lines are ignored, bad ones
/// (including an id seen on an earlier line, and too long lines) are handed
/// to the caller with their line number, ids in `skip` (done by an earlier
/// run, `--resume`) are counted and passed over.
class batch_task_source {
public:
  /// Reads from `fd` (owned) from its current offset.
  batch_task_source(detail::unique_fd fd, batch_task_limits limits,
                    std::unordered_set<std::string> skip = {});

  /// Returns the next task in `out`, or false at the end of the input (or
  /// on a read error: see error()). Bad lines met on the way are appended
  /// to `bad`.
  bool next(batch_task& out, std::vector<bad_line>& bad);

  /// Tasks passed over because their id was in `skip`.
  std::size_t skipped() const noexcept {
    return skipped_;
  }

  /// Hands over the ids of every task met so far (skipped ones included);
  /// the source forgets them (a duplicate met later is then not found).
  std::unordered_set<std::string> take_ids() noexcept {
    return std::move(seen_);
  }

  /// Why reading stopped early: "" at the end of the input.
  const std::string& error() const noexcept {
    return reader_.error();
  }

private:
  detail::unique_fd fd_;
  jsonl_reader reader_;
  batch_task_limits limits_;
  std::unordered_set<std::string> skip_;
  std::unordered_set<std::string> seen_;
  std::size_t skipped_ = 0;
};

/// Opens `path` for reading (a regular file or a pipe; not a folder).
/// Returns an invalid descriptor and sets `error` when it cannot.
detail::unique_fd open_batch_input(const std::string& path, std::string& error);

} // namespace orch
