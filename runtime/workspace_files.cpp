#include "runtime/workspace_files.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <functional>
#include <optional>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/fd_util.hpp"
#include "runtime/path_rules.hpp"
#include "runtime/safe_file.hpp"
#include "runtime/workspace.hpp"

namespace orch {

namespace {

using detail::unique_fd;

/// Names of refused entries kept in a listing.
constexpr std::size_t max_skipped_named = 100;

int64_t mtime_ms_of(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000
         + static_cast<int64_t>(st.st_mtim.tv_nsec) / 1'000'000;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size()
         && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
              return std::tolower(static_cast<unsigned char>(x))
                     == std::tolower(static_cast<unsigned char>(y));
            });
}

/// Opens the workspace root (the caller's: it may sit behind a link).
unique_fd open_root(const std::filesystem::path& root) {
  return unique_fd{::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
}

struct lister {
  const list_limits& limits;
  file_listing& out;
  std::size_t entries = 0;

  void skip(const std::string& rel) {
    if (out.skipped.size() < max_skipped_named)
      out.skipped.push_back(detail::printable(rel));
  }

  void walk(int dir, const std::string& prefix, std::size_t depth) {
    detail::list_dir(dir, [&](const std::string& name, const struct stat& st) {
      if (out.truncated)
        return;
      if (++entries > limits.max_entries) {
        out.truncated = true;
        return;
      }
      // Our own bookkeeping and version control are not the user's files.
      if ((depth == 0 && iequals(name, workspace_meta_dir))
          || iequals(name, ".git")
          || name.compare(0, detail::temp_prefix.size(), detail::temp_prefix)
               == 0)
        return;
      auto rel = prefix.empty() ? name : prefix + "/" + name;
      if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
        return; // symlinks, FIFOs, sockets, devices
      if (!detail::split_workspace_path(rel, false).ok) {
        skip(rel);
        return;
      }
      if (S_ISREG(st.st_mode)) {
        if (out.files.size() >= limits.max_files) {
          out.truncated = true;
          return;
        }
        out.files.push_back(
          {rel, static_cast<std::uintmax_t>(st.st_size), mtime_ms_of(st)});
        return;
      }
      if (depth + 1 > limits.max_depth) {
        out.truncated = true;
        return;
      }
      unique_fd sub{::openat(dir, name.c_str(),
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)};
      if (sub) // swapped for a link since it was listed, or unreadable
        walk(sub.get(), rel, depth + 1);
    });
  }
};

/// Maps a failed walk to the file API's terms.
void walk_failure(const detail::walk_result& w,
                  const std::vector<std::string>& parts, file_error& error,
                  std::string& reason) {
  auto shown = detail::printable(detail::join(parts, 0, w.failed_at + 1));
  switch (w.error) {
    case detail::walk_error::missing:
      error = file_error::not_found;
      reason = "no such file: " + detail::printable(detail::join(parts));
      return;
    case detail::walk_error::symlink:
    case detail::walk_error::not_a_folder:
      error = file_error::forbidden;
      reason = w.describe(shown);
      return;
    default:
      error = file_error::io;
      reason = w.describe(shown);
  }
}

} // namespace

std::string to_string(file_error x) {
  switch (x) {
    case file_error::none:
      return "none";
    case file_error::invalid_path:
      return "invalid_path";
    case file_error::forbidden:
      return "forbidden";
    case file_error::not_found:
      return "not_found";
    case file_error::busy:
      return "busy";
    case file_error::too_large:
      return "too_large";
    case file_error::io:
      return "io";
  }
  return "io";
}

file_listing list_workspace_files(const std::filesystem::path& root,
                                  const list_limits& limits) {
  file_listing out;
  auto fd = open_root(root);
  if (!fd) {
    out.error = errno == ENOENT ? file_error::not_found : file_error::io;
    out.reason = "cannot open the workspace: " + detail::errno_text(errno);
    return out;
  }
  lister l{limits, out};
  l.walk(fd.get(), {}, 0);
  std::sort(out.files.begin(), out.files.end(),
            [](const listed_file& a, const listed_file& b) {
              return a.path < b.path;
            });
  return out;
}

file_content read_workspace_file(const std::filesystem::path& root,
                                 std::string_view path,
                                 std::uintmax_t max_bytes) {
  file_content out;
  auto lex = detail::split_workspace_path(path, false);
  if (!lex.ok) {
    out.error = file_error::invalid_path;
    out.reason = lex.reason;
    return out;
  }
  const auto& parts = lex.parts;
  out.path = detail::join(parts);
  auto shown = detail::printable(out.path);
  auto root_fd = open_root(root);
  if (!root_fd) {
    out.error = errno == ENOENT ? file_error::not_found : file_error::io;
    out.reason = "cannot open the workspace: " + detail::errno_text(errno);
    return out;
  }
  auto dir = detail::open_dirs(root_fd.get(), parts, parts.size() - 1, false);
  if (!dir.ok()) {
    walk_failure(dir, parts, out.error, out.reason);
    return out;
  }
  // Looked at before it is opened: a FIFO or a device is never opened.
  struct stat before {};
  if (::fstatat(dir.fd.get(), parts.back().c_str(), &before,
                AT_SYMLINK_NOFOLLOW)
      != 0) {
    auto err = errno;
    out.error = err == ENOENT ? file_error::not_found : file_error::io;
    out.reason = err == ENOENT
                   ? "no such file: " + shown
                   : "cannot read " + shown + ": " + detail::errno_text(err);
    return out;
  }
  auto refuse = [&](const char* what) {
    out.error = file_error::forbidden;
    out.reason = shown + " " + what;
    return out;
  };
  if (S_ISLNK(before.st_mode))
    return refuse("is a symlink");
  if (S_ISDIR(before.st_mode))
    return refuse("is a folder");
  if (!S_ISREG(before.st_mode))
    return refuse("is not a regular file");
  unique_fd fd{
    ::openat(dir.fd.get(), parts.back().c_str(),
             O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)};
  if (!fd) {
    if (errno == ELOOP)
      return refuse("is a symlink");
    auto err = errno;
    out.error = err == ENOENT ? file_error::not_found : file_error::io;
    out.reason = "cannot read " + shown + ": " + detail::errno_text(err);
    return out;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    out.error = file_error::io;
    out.reason = "cannot read " + shown + ": " + detail::errno_text(errno);
    return out;
  }
  if (!S_ISREG(st.st_mode) || st.st_ino != before.st_ino
      || st.st_dev != before.st_dev)
    return refuse("changed while it was opened");
  if (st.st_nlink > 1)
    return refuse("has other hard links");
  if (static_cast<std::uintmax_t>(st.st_size) > max_bytes) {
    out.error = file_error::too_large;
    out.reason = shown + " is larger than " + std::to_string(max_bytes)
                 + " bytes";
    return out;
  }
  out.mtime_ms = mtime_ms_of(st);
  out.content.reserve(static_cast<std::size_t>(st.st_size));
  bool over = false;
  auto ok = detail::read_blocks(fd.get(), [&](std::string_view chunk) {
    if (out.content.size() + chunk.size() > max_bytes) {
      over = true;
      return false;
    }
    out.content.append(chunk);
    return true;
  });
  if (over) {
    out.content.clear();
    out.error = file_error::too_large;
    out.reason = shown + " is larger than " + std::to_string(max_bytes)
                 + " bytes";
    return out;
  }
  if (!ok) {
    out.content.clear();
    out.error = file_error::io;
    out.reason = "cannot read " + shown + ": " + detail::errno_text(errno);
  }
  return out;
}

file_saved write_workspace_file(const std::filesystem::path& root,
                                std::string_view path, std::string_view content,
                                const std::string& backup_id,
                                std::uintmax_t max_bytes) {
  file_saved out;
  auto lex = detail::split_workspace_path(path, false);
  if (!lex.ok) {
    out.error = file_error::invalid_path;
    out.reason = lex.reason;
    return out;
  }
  out.path = detail::join(lex.parts);
  if (content.size() > max_bytes) {
    out.error = file_error::too_large;
    out.reason = "the content is larger than " + std::to_string(max_bytes)
                 + " bytes";
    return out;
  }
  {
    auto root_fd = open_root(root);
    if (!root_fd) {
      out.error = errno == ENOENT ? file_error::not_found : file_error::io;
      out.reason = "cannot open the workspace: " + detail::errno_text(errno);
      return out;
    }
  }
  // The file-system half of the rules first, for a precise refusal; the
  // write checks again on the descriptors it writes through.
  auto check = check_workspace_path(root, out.path);
  if (!check.ok) {
    out.error = file_error::forbidden;
    out.reason = check.reason;
    return out;
  }
  std::string lock_error;
  auto lock = workspace_lock::acquire(root, "editor", lock_error);
  if (!lock) {
    out.error = lock_error.find(" is in use by ") != std::string::npos
                  ? file_error::busy
                  : file_error::forbidden;
    out.reason = lock_error;
    return out;
  }
  workspace ws{root, backup_id};
  auto w = ws.write(out.path, content);
  out.size = content.size();
  if (w.written || w.reason == "unchanged") {
    out.written = w.written;
    out.backup = w.backup;
    return out;
  }
  check = check_workspace_path(root, out.path);
  out.error = check.ok ? file_error::io : file_error::forbidden;
  out.reason = w.reason;
  return out;
}

std::string workspace_content_type(std::string_view path) {
  auto slash = path.rfind('/');
  auto name = path.substr(slash == std::string_view::npos ? 0 : slash + 1);
  auto dot = name.rfind('.');
  std::string ext;
  if (dot != std::string_view::npos && dot > 0)
    for (char c : name.substr(dot + 1))
      ext += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const char* const images[][2] = {{"png", "image/png"},
                                          {"jpg", "image/jpeg"},
                                          {"jpeg", "image/jpeg"},
                                          {"gif", "image/gif"},
                                          {"webp", "image/webp"}};
  for (const auto& kvp : images)
    if (ext == kvp[0])
      return kvp[1];
  static const char* const binary[]
    = {"zip",   "gz",   "tgz",   "bz2",  "xz",  "7z",     "tar",
       "pdf",   "so",   "o",     "a",    "exe", "dll",    "bin",
       "class", "jar",  "pyc",   "wasm", "ico", "bmp",    "mp3",
       "mp4",   "woff", "woff2", "ttf",  "otf", "sqlite", "db"};
  for (const auto* b : binary)
    if (ext == b)
      return "application/octet-stream";
  // Everything else is read as text, never as a type a browser runs.
  return "text/plain; charset=utf-8";
}

} // namespace orch
