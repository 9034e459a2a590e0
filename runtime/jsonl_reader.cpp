#include "runtime/jsonl_reader.hpp"

#include <cerrno>
#include <cstring>

#include <unistd.h>

#include "runtime/fd_util.hpp"

namespace orch {

jsonl_reader::jsonl_reader(int fd, std::size_t max_line_bytes)
  : fd_{fd}, max_{max_line_bytes}, buf_(detail::io_block_size) {
  // nop
}

bool jsonl_reader::fill() {
  pos_ = 0;
  end_ = 0;
  if (eof_)
    return false;
  for (;;) {
    auto n = ::read(fd_, buf_.data(), buf_.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      error_ = detail::errno_text(errno);
      eof_ = true;
      return false;
    }
    if (n == 0) {
      eof_ = true;
      return false;
    }
    end_ = static_cast<std::size_t>(n);
    return true;
  }
}

bool jsonl_reader::next(jsonl_line& out) {
  out = jsonl_line{};
  out.number = ++line_;
  out.offset = offset_;
  bool any = false;
  for (;;) {
    if (pos_ == end_ && !fill()) {
      if (!error_.empty() || !any) {
        --line_;
        return false;
      }
      // The last line has no '\n'.
      out.unterminated = true;
      break;
    }
    any = true;
    auto* begin = buf_.data() + pos_;
    auto avail = end_ - pos_;
    auto* nl = static_cast<char*>(std::memchr(begin, '\n', avail));
    auto take = nl != nullptr ? static_cast<std::size_t>(nl - begin) : avail;
    out.size += take;
    if (!out.too_long) {
      if (out.text.size() + take > max_) {
        // Keep nothing more of it: only its size is counted from here on.
        out.too_long = true;
        out.text = std::string{};
      } else {
        out.text.append(begin, take);
      }
    }
    pos_ += take;
    offset_ += take;
    if (nl != nullptr) {
      ++pos_;
      ++offset_;
      break;
    }
  }
  if (!out.text.empty() && out.text.back() == '\r')
    out.text.pop_back();
  return true;
}

} // namespace orch
