#pragma once

// Reads a JSON-lines file one line at a time from a descriptor, in bounded
// memory whatever the file holds: a line longer than the limit is skipped
// to its end without being kept (only its size is reported), so a file of
// one endless line, or of NUL bytes, costs one block of memory.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace orch {

/// One line of a JSON-lines file.
struct jsonl_line {
  /// 1-based line number.
  uint64_t number = 0;
  /// The line without its '\n' (and without a '\r' before it); empty when
  /// `too_long`.
  std::string text;
  /// Bytes in the line (without the '\n'), also when too long.
  uint64_t size = 0;
  /// The line had more than the reader's limit of bytes: `text` is empty.
  bool too_long = false;
  /// The last line of the file had no '\n' (a torn write, or an editor's
  /// habit).
  bool unterminated = false;
  /// Offset of the line's first byte in the file.
  uint64_t offset = 0;
};

/// Reads lines from a descriptor (not owned) from its current offset.
class jsonl_reader {
public:
  /// `max_line_bytes`: longer lines are reported as too_long, not kept.
  jsonl_reader(int fd, std::size_t max_line_bytes);

  /// Reads the next line into `out`. Returns false at the end of the file
  /// or on a read error (then error() says why).
  bool next(jsonl_line& out);

  /// Why the last next() returned false: "" at the end of the file.
  const std::string& error() const noexcept {
    return error_;
  }

private:
  bool fill();

  int fd_;
  std::size_t max_;
  std::vector<char> buf_;
  std::size_t pos_ = 0;
  std::size_t end_ = 0;
  bool eof_ = false;
  uint64_t line_ = 0;
  uint64_t offset_ = 0;
  std::string error_;
};

} // namespace orch
