#include "runtime/step_cache_store.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/counters.hpp"
#include "runtime/hashing.hpp"
#include "runtime/logging.hpp"
#include "runtime/path_rules.hpp"
#include "runtime/safe_file.hpp"
#include "runtime/state_dir.hpp"

namespace orch {

using detail::errno_text;
using detail::printable;
using detail::unique_fd;

namespace {

constexpr std::string_view entry_suffix = ".entry";

/// Temp files of a writer that died are removed after this long.
constexpr int64_t stale_temp_ms = int64_t{60} * 60 * 1000;

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty())
    return;
  std::size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
}

void hash_part(sha256_stream& h, std::string_view part) {
  auto len = std::to_string(part.size());
  h.update(len);
  h.update(":");
  h.update(part);
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string_view::npos)
      end = path.size();
    parts.emplace_back(path.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

int64_t mtime_ms(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000
         + st.st_mtim.tv_nsec / 1000000;
}

// -- the body's fields --------------------------------------------------------

/// Appends `<name> <length>\n<bytes>\n`.
class body_writer {
public:
  void put(std::string_view name, std::string_view value) {
    out_.append(name);
    out_ += ' ';
    out_ += std::to_string(value.size());
    out_ += '\n';
    out_.append(value);
    out_ += '\n';
  }
  void put_int(std::string_view name, int64_t value) {
    put(name, std::to_string(value));
  }
  void put_list(std::string_view name, const std::vector<std::string>& xs) {
    put_int(name, static_cast<int64_t>(xs.size()));
    for (const auto& x : xs)
      put("item", x);
  }
  std::string& str() {
    return out_;
  }

private:
  std::string out_;
};

/// Reads body_writer's fields back, in the same order.
class body_reader {
public:
  explicit body_reader(std::string_view in) : in_{in} {}

  bool get(std::string_view name, std::string& out) {
    std::string_view v;
    if (!get_view(name, v))
      return false;
    out.assign(v);
    return true;
  }
  bool get_int(std::string_view name, int64_t& out) {
    std::string_view v;
    if (!get_view(name, v))
      return false;
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    return fail_unless(ec == std::errc{} && ptr == v.data() + v.size(), name);
  }
  template<class T>
  bool get_num(std::string_view name, T& out) {
    int64_t x = 0;
    if (!get_int(name, x))
      return false;
    out = static_cast<T>(x);
    return true;
  }
  bool get_double(std::string_view name, double& out) {
    std::string_view v;
    if (!get_view(name, v))
      return false;
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    return fail_unless(ec == std::errc{} && ptr == v.data() + v.size(), name);
  }
  bool get_count(std::string_view name, std::size_t& out) {
    int64_t x = 0;
    if (!get_int(name, x))
      return false;
    // Each item takes at least a few bytes: a count beyond what is left is
    // a lie, and must not make us allocate.
    if (x < 0 || static_cast<uint64_t>(x) > in_.size())
      return fail_unless(false, name);
    out = static_cast<std::size_t>(x);
    return true;
  }
  bool get_list(std::string_view name, std::vector<std::string>& out) {
    std::size_t n = 0;
    if (!get_count(name, n))
      return false;
    out.resize(n);
    for (auto& x : out)
      if (!get("item", x))
        return false;
    return true;
  }
  bool at_end() const noexcept {
    return in_.empty();
  }
  const std::string& error() const noexcept {
    return error_;
  }

private:
  bool fail_unless(bool ok, std::string_view name) {
    if (!ok && error_.empty())
      error_ = "bad field '" + std::string{name} + "'";
    return ok;
  }

  bool get_view(std::string_view name, std::string_view& out) {
    auto nl = in_.find('\n');
    if (nl == std::string_view::npos)
      return fail_unless(false, name);
    auto head = in_.substr(0, nl);
    auto sp = head.find(' ');
    if (sp == std::string_view::npos || head.substr(0, sp) != name)
      return fail_unless(false, name);
    auto len_text = head.substr(sp + 1);
    uint64_t len = 0;
    auto [ptr, ec] = std::from_chars(len_text.data(),
                                     len_text.data() + len_text.size(), len);
    if (ec != std::errc{} || ptr != len_text.data() + len_text.size())
      return fail_unless(false, name);
    auto rest = in_.substr(nl + 1);
    if (len >= rest.size() || rest[len] != '\n')
      return fail_unless(false, name);
    out = rest.substr(0, len);
    in_ = rest.substr(len + 1);
    return true;
  }

  std::string_view in_;
  std::string error_;
};

std::string header_line() {
  return "orch-step-cache " + std::to_string(step_cache_format) + "\n";
}

} // namespace

// -- the key ------------------------------------------------------------------

std::string normalize_prompt(std::string_view prompt,
                             std::string_view workspace,
                             std::string_view run_id, int32_t iteration) {
  std::string out{prompt};
  // Longest first: the workspace path usually holds the run id.
  replace_all(out, workspace, "{workspace}");
  // A short id (tests) could be any word: only real ones are replaced.
  if (run_id.size() >= 16)
    replace_all(out, run_id, "{run_id}");
  const std::string line = "This is iteration " + std::to_string(iteration)
                           + ".\n";
  if (out.size() >= line.size()
      && out.compare(out.size() - line.size(), line.size(), line) == 0
      && (out.size() == line.size()
          || out[out.size() - line.size() - 1] == '\n'))
    out.replace(out.size() - line.size(), line.size(),
                "This is iteration {iteration}.\n");
  return out;
}

std::string step_cache_key(const step_cache_key_parts& parts) {
  sha256_stream h;
  h.update("orch-step-cache-key " + std::to_string(step_cache_format) + "\n");
  for (auto* x : {&parts.agent, &parts.model, &parts.adapter, &parts.task_kind,
                  &parts.prompt})
    hash_part(h, *x);
  hash_part(h, std::to_string(parts.setup.size()));
  for (const auto& x : parts.setup)
    hash_part(h, x);
  auto n = parts.files ? parts.files->size() : 0;
  hash_part(h, std::to_string(n));
  if (parts.files)
    for (const auto& [path, entry] : *parts.files) {
      hash_part(h, path);
      hash_part(h, entry.hash);
    }
  return h.hex_digest();
}

bool valid_step_cache_key(std::string_view key) {
  return key.size() == 64 && std::all_of(key.begin(), key.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// -- the entry ----------------------------------------------------------------

std::size_t entry_bytes(const step_cache_entry& e) {
  std::size_t n = sizeof(step_cache_entry) + e.key.size() + e.agent.size()
                  + e.task_kind.size() + e.outcome.message.size()
                  + e.outcome.final_text.size() + e.outcome.session_id.size();
  for (const auto& x : e.outcome.reported_files)
    n += x.size() + sizeof(std::string);
  for (const auto& f : e.findings)
    n += sizeof(finding) + f.severity.size() + f.file.size() + f.text.size();
  for (const auto& f : e.files)
    n += sizeof(cached_file) + f.path.size() + f.content.size();
  for (const auto& x : e.deleted)
    n += x.size() + sizeof(std::string);
  for (const auto& x : e.reported_files)
    n += x.size() + sizeof(std::string);
  for (const auto& r : e.refused)
    n += sizeof(cached_refusal) + r.path.size() + r.reason.size();
  return n;
}

std::string encode_entry(const step_cache_entry& e) {
  body_writer w;
  w.put("key", e.key);
  w.put_int("created_ms", e.created_ms);
  w.put("agent", e.agent);
  w.put("task_kind", e.task_kind);
  w.put_int("duration_ms", e.duration_ms);
  const auto& o = e.outcome;
  w.put_int("ok", o.ok ? 1 : 0);
  w.put_int("failure", static_cast<int64_t>(o.failure));
  w.put("message", o.message);
  w.put("final_text", o.final_text);
  w.put("session_id", o.session_id);
  w.put_int("input_tokens", o.tokens.input_tokens);
  w.put_int("output_tokens", o.tokens.output_tokens);
  w.put_int("cached_tokens", o.tokens.cached_tokens);
  char cost[64];
  std::snprintf(cost, sizeof cost, "%.17g", o.tokens.cost_usd);
  w.put("cost_usd", cost);
  w.put_int("has_cost", o.tokens.has_cost ? 1 : 0);
  w.put_list("outcome_reported", o.reported_files);
  w.put_int("exit_code", o.exit_code);
  w.put_int("truncated", o.truncated ? 1 : 0);
  w.put_int("findings", static_cast<int64_t>(e.findings.size()));
  for (const auto& f : e.findings) {
    w.put("severity", f.severity);
    w.put("file", f.file);
    w.put_int("line", f.line);
    w.put("text", f.text);
  }
  w.put_int("files", static_cast<int64_t>(e.files.size()));
  for (const auto& f : e.files) {
    w.put("path", f.path);
    w.put("content", f.content);
  }
  w.put_list("deleted", e.deleted);
  w.put_list("reported", e.reported_files);
  w.put_int("refused", static_cast<int64_t>(e.refused.size()));
  for (const auto& r : e.refused) {
    w.put("path", r.path);
    w.put("reason", r.reason);
  }
  auto& body = w.str();
  std::string out = header_line();
  out += "sha256 " + sha256_hex(body) + "\n";
  out += body;
  return out;
}

std::optional<step_cache_entry> decode_entry(std::string_view bytes,
                                             std::string& error) {
  auto header = header_line();
  if (bytes.substr(0, header.size()) != header) {
    error = "not a step cache entry of format "
            + std::to_string(step_cache_format);
    return std::nullopt;
  }
  bytes.remove_prefix(header.size());
  constexpr std::string_view tag = "sha256 ";
  if (bytes.size() < tag.size() + 65 || bytes.substr(0, tag.size()) != tag
      || bytes[tag.size() + 64] != '\n') {
    error = "no checksum line";
    return std::nullopt;
  }
  auto sum = bytes.substr(tag.size(), 64);
  auto body = bytes.substr(tag.size() + 65);
  if (sha256_hex(body) != sum) {
    error = "checksum mismatch (truncated or altered)";
    return std::nullopt;
  }
  body_reader r{body};
  step_cache_entry e;
  auto& o = e.outcome;
  int64_t ok = 0;
  int64_t failure = 0;
  int64_t has_cost = 0;
  int64_t truncated = 0;
  std::size_t n = 0;
  bool good = r.get("key", e.key) && r.get_int("created_ms", e.created_ms)
              && r.get("agent", e.agent) && r.get("task_kind", e.task_kind)
              && r.get_int("duration_ms", e.duration_ms) && r.get_int("ok", ok)
              && r.get_int("failure", failure) && r.get("message", o.message)
              && r.get("final_text", o.final_text)
              && r.get("session_id", o.session_id)
              && r.get_int("input_tokens", o.tokens.input_tokens)
              && r.get_int("output_tokens", o.tokens.output_tokens)
              && r.get_int("cached_tokens", o.tokens.cached_tokens)
              && r.get_double("cost_usd", o.tokens.cost_usd)
              && r.get_int("has_cost", has_cost)
              && r.get_list("outcome_reported", o.reported_files)
              && r.get_num("exit_code", o.exit_code)
              && r.get_int("truncated", truncated)
              && r.get_count("findings", n);
  if (good) {
    e.findings.resize(n);
    for (auto& f : e.findings)
      good = good && r.get("severity", f.severity) && r.get("file", f.file)
             && r.get_num("line", f.line) && r.get("text", f.text);
  }
  good = good && r.get_count("files", n);
  if (good) {
    e.files.resize(n);
    for (auto& f : e.files)
      good = good && r.get("path", f.path) && r.get("content", f.content);
  }
  good = good && r.get_list("deleted", e.deleted)
         && r.get_list("reported", e.reported_files)
         && r.get_count("refused", n);
  if (good) {
    e.refused.resize(n);
    for (auto& x : e.refused)
      good = good && r.get("path", x.path) && r.get("reason", x.reason);
  }
  if (!good || !r.at_end()) {
    error = good ? std::string{"trailing bytes"} : r.error();
    return std::nullopt;
  }
  o.ok = ok != 0;
  o.failure = static_cast<failure_kind>(failure);
  o.tokens.has_cost = has_cost != 0;
  o.truncated = truncated != 0;
  return e;
}

// -- memory -------------------------------------------------------------------

step_cache_memory::step_cache_memory(std::size_t max_entries,
                                     std::size_t max_bytes)
  : max_entries_{max_entries}, max_bytes_{max_bytes} {
  // nop
}

const step_cache_entry* step_cache_memory::get(const std::string& key) {
  auto it = index_.find(key);
  if (it == index_.end())
    return nullptr;
  order_.splice(order_.begin(), order_, it->second);
  return &it->second->entry;
}

void step_cache_memory::put(step_cache_entry e) {
  erase(e.key);
  auto bytes = entry_bytes(e);
  if (bytes > max_bytes_ || max_entries_ == 0)
    return;
  auto key = e.key;
  order_.push_front(slot{std::move(e), bytes});
  index_[key] = order_.begin();
  bytes_ += bytes;
  while (index_.size() > max_entries_ || bytes_ > max_bytes_) {
    auto& last = order_.back();
    bytes_ -= last.bytes;
    index_.erase(last.entry.key);
    order_.pop_back();
  }
}

void step_cache_memory::erase(const std::string& key) {
  auto it = index_.find(key);
  if (it == index_.end())
    return;
  bytes_ -= it->second->bytes;
  order_.erase(it->second);
  index_.erase(it);
}

// -- disk ---------------------------------------------------------------------

step_cache_disk::step_cache_disk(std::filesystem::path state_dir,
                                 std::size_t max_bytes)
  : state_dir_{std::move(state_dir)}, max_bytes_{max_bytes} {
  std::string err;
  auto state = open_state_dir(state_dir_, err);
  if (state)
    dir_ = open_state_subdir(state.get(), std::string{step_cache_dir_name},
                             err);
  if (!dir_)
    error_ = "the step cache is off: " + err;
}

std::filesystem::path step_cache_disk::file_of(const std::string& key) const {
  return state_dir_ / std::string{step_cache_dir_name}
         / (key + std::string{entry_suffix});
}

step_cache_disk_lookup step_cache_disk::get(const std::string& key,
                                            int64_t now_ms, int64_t ttl_ms) {
  step_cache_disk_lookup out;
  if (!dir_ || !valid_step_cache_key(key))
    return out;
  auto name = key + std::string{entry_suffix};
  unique_fd fd{::openat(dir_.get(), name.c_str(),
                        O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)};
  std::string reason;
  std::string bytes;
  if (!fd) {
    if (errno == ENOENT)
      return out;
    reason = "cannot open: " + errno_text(errno);
  } else {
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
      reason = "cannot stat: " + errno_text(errno);
    else if (!S_ISREG(st.st_mode))
      reason = "not a regular file";
    else if (static_cast<uintmax_t>(st.st_size) > max_bytes_)
      reason = "larger than max_disk_bytes";
    else if (!detail::read_blocks(fd.get(), [&](std::string_view chunk) {
               bytes.append(chunk);
               return bytes.size() <= max_bytes_;
             }))
      reason = "cannot read: " + errno_text(errno);
  }
  std::optional<step_cache_entry> entry;
  if (reason.empty()) {
    entry = decode_entry(bytes, reason);
    if (entry && entry->key != key) {
      reason = "it holds the entry of another key";
      entry.reset();
    }
  }
  if (!entry) {
    out.corrupt = true;
    out.reason = reason;
    if (reported_.insert(key).second) {
      counters().add(counter::cache_corrupt);
      log().warn("cache-corrupt key={} file={} reason={} (ignored and "
                 "removed)",
                 key, log_text(file_of(key).string()), log_text(reason));
    }
    ::unlinkat(dir_.get(), name.c_str(), 0);
    return out;
  }
  if (now_ms - entry->created_ms > ttl_ms) {
    out.expired = true;
    ::unlinkat(dir_.get(), name.c_str(), 0);
    return out;
  }
  out.entry = std::move(entry);
  return out;
}

bool step_cache_disk::put(const step_cache_entry& e, int64_t now_ms,
                          int64_t ttl_ms, std::string& error) {
  if (!dir_) {
    error = error_;
    return false;
  }
  if (!valid_step_cache_key(e.key)) {
    error = "not a cache key: " + printable(e.key);
    return false;
  }
  auto bytes = encode_entry(e);
  if (bytes.size() > max_bytes_)
    return true;
  // Atomic (a reader sees the whole file or none) without waiting for the
  // disk: an entry lost or cut by a power loss fails its checksum, and a
  // step runs again.
  if (!write_file_atomic(state_dir_,
                         std::string{step_cache_dir_name} + "/" + e.key
                           + std::string{entry_suffix},
                         bytes, error, sync_mode::atomic_only))
    return false;
  reported_.erase(e.key);
  evict(now_ms, ttl_ms);
  return true;
}

void step_cache_disk::erase(const std::string& key) {
  if (!dir_ || !valid_step_cache_key(key))
    return;
  ::unlinkat(dir_.get(), (key + std::string{entry_suffix}).c_str(), 0);
}

void step_cache_disk::evict(int64_t now_ms, int64_t ttl_ms) {
  struct file {
    std::string name;
    uintmax_t size = 0;
    int64_t mtime = 0;
  };
  std::vector<file> files;
  uintmax_t total = 0;
  detail::list_dir(
    dir_.get(), [&](const std::string& name, const struct stat& st) {
      if (!S_ISREG(st.st_mode))
        return;
      auto mtime = mtime_ms(st);
      if (name.rfind(detail::temp_prefix, 0) == 0) {
        // A writer that died left it (ours are renamed within milliseconds).
        if (now_ms - mtime > stale_temp_ms)
          ::unlinkat(dir_.get(), name.c_str(), 0);
        return;
      }
      if (name.size() != 64 + entry_suffix.size()
          || name.compare(64, entry_suffix.size(), entry_suffix) != 0)
        return;
      if (now_ms - mtime > ttl_ms) {
        ::unlinkat(dir_.get(), name.c_str(), 0);
        return;
      }
      auto size = static_cast<uintmax_t>(st.st_size);
      total += size;
      files.push_back(file{name, size, mtime});
    });
  if (total <= max_bytes_)
    return;
  std::sort(files.begin(), files.end(), [](const file& a, const file& b) {
    return a.mtime != b.mtime ? a.mtime < b.mtime : a.name < b.name;
  });
  for (const auto& f : files) {
    if (total <= max_bytes_)
      break;
    if (::unlinkat(dir_.get(), f.name.c_str(), 0) == 0 || errno == ENOENT)
      total -= f.size;
  }
}

std::pair<std::uintmax_t, std::size_t> step_cache_disk::usage() const {
  std::uintmax_t bytes = 0;
  std::size_t n = 0;
  if (!dir_)
    return {0, 0};
  detail::list_dir(
    dir_.get(), [&](const std::string& name, const struct stat& st) {
      if (S_ISREG(st.st_mode) && name.size() > entry_suffix.size()
          && name.compare(name.size() - entry_suffix.size(),
                          entry_suffix.size(), entry_suffix)
               == 0) {
        bytes += static_cast<uintmax_t>(st.st_size);
        ++n;
      }
    });
  return {bytes, n};
}

// -- the workspace side -------------------------------------------------------

std::optional<std::vector<cached_file>>
read_step_files(const std::filesystem::path& root,
                const std::vector<std::string>& paths, std::size_t max_bytes) {
  unique_fd root_fd{::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (!root_fd)
    return std::nullopt;
  std::vector<cached_file> out;
  std::size_t total = 0;
  for (const auto& path : paths) {
    auto parts = split_path(path);
    auto dir = detail::open_dirs(root_fd.get(), parts, parts.size() - 1,
                                 /*create=*/false);
    if (!dir.ok())
      return std::nullopt;
    unique_fd fd{::openat(dir.fd.get(), parts.back().c_str(),
                          O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)};
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
      return std::nullopt;
    cached_file f;
    f.path = path;
    bool within = true;
    if (!detail::read_blocks(fd.get(), [&](std::string_view chunk) {
          total += chunk.size();
          within = total <= max_bytes;
          if (within)
            f.content.append(chunk);
          return within;
        }))
      return std::nullopt;
    out.push_back(std::move(f));
  }
  return out;
}

bool delete_workspace_file(const std::filesystem::path& root,
                           std::string_view path, std::string& error) {
  auto check = normalize_workspace_path(path);
  if (!check.ok) {
    error = check.reason;
    return false;
  }
  unique_fd root_fd{::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (!root_fd) {
    error = "cannot open the workspace: " + errno_text(errno);
    return false;
  }
  auto parts = split_path(check.normalized);
  auto dir = detail::open_dirs(root_fd.get(), parts, parts.size() - 1,
                               /*create=*/false);
  if (dir.error == detail::walk_error::missing)
    return true;
  if (!dir.ok()) {
    error = dir.describe(printable(detail::join(parts, 0, dir.failed_at + 1)));
    return false;
  }
  struct stat st {};
  if (::fstatat(dir.fd.get(), parts.back().c_str(), &st, AT_SYMLINK_NOFOLLOW)
      != 0)
    return errno == ENOENT ? true : (error = errno_text(errno), false);
  if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
    error = printable(check.normalized) + " is not a file";
    return false;
  }
  if (::unlinkat(dir.fd.get(), parts.back().c_str(), 0) != 0
      && errno != ENOENT) {
    error = "cannot delete " + printable(check.normalized) + ": "
            + errno_text(errno);
    return false;
  }
  return true;
}

} // namespace orch
