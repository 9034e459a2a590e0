#include "runtime/workspace.hpp"
#include "runtime/text.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <system_error>
#include <unordered_map>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace orch {

namespace {

// -- small string helpers -----------------------------------------------------

constexpr std::size_t max_path_bytes = 4096;
constexpr std::size_t max_component_bytes = 255;
constexpr std::string_view temp_prefix = ".orch-tmp-";

using text::ascii_lower;
using text::ends_with;
using text::iequals;
using text::is_space;
using text::parse_fence;
using text::split_lines;
using text::starts_with_ci;
using text::trim;

std::string hex_code_point(uint32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(cp));
  return buf;
}

// -- unicode rule -------------------------------------------------------------

struct cp_range {
  uint32_t first;
  uint32_t last;
  const char* what;
};

// Code points refused in paths. Letters, digits and ordinary punctuation of
// other scripts stay allowed; these either imitate path syntax or are
// invisible / reorder text, so a path could show one thing and mean another.
constexpr const char* lookalike = "a look-alike of path punctuation";
constexpr const char* invisible = "an invisible or text-direction character";
constexpr const char* space_like = "a non-ASCII space or line separator";

constexpr std::array<cp_range, 44> refused_code_points{{
  {0x0080, 0x009F, "a C1 control character"},
  {0x00A0, 0x00A0, space_like},
  {0x00AD, 0x00AD, invisible}, // soft hyphen
  {0x02DC, 0x02DC, lookalike}, // small tilde
  {0x0337, 0x0338, lookalike}, // combining solidus overlays
  {0x034F, 0x034F, invisible}, // combining grapheme joiner
  {0x061C, 0x061C, invisible}, // arabic letter mark
  {0x0701, 0x0702, lookalike}, // syriac full stops
  {0x1680, 0x1680, space_like},
  {0x1735, 0x1735, lookalike}, // philippine single punctuation
  {0x180E, 0x180E, invisible}, // mongolian vowel separator
  {0x2000, 0x200A, space_like},
  {0x200B, 0x200F, invisible}, // zero width, LRM, RLM
  {0x2024, 0x2026, lookalike}, // one/two dot leader, ellipsis
  {0x2028, 0x2029, space_like},
  {0x202A, 0x202E, invisible}, // bidi embeddings and overrides
  {0x202F, 0x202F, space_like},
  {0x2044, 0x2044, lookalike}, // fraction slash
  {0x2053, 0x2053, lookalike}, // swung dash
  {0x205F, 0x205F, space_like},
  {0x2060, 0x206F, invisible}, // word joiner, bidi isolates, ...
  {0x2215, 0x2216, lookalike}, // division slash, set minus
  {0x2236, 0x2236, lookalike}, // ratio
  {0x223C, 0x223C, lookalike}, // tilde operator
  {0x2571, 0x2572, lookalike}, // box drawing diagonals
  {0x27CB, 0x27CB, lookalike}, // rising diagonal
  {0x27CD, 0x27CD, lookalike}, // falling diagonal
  {0x29F5, 0x29F5, lookalike}, // reverse solidus operator
  {0x29F8, 0x29F9, lookalike}, // big solidus, big reverse solidus
  {0x2F03, 0x2F03, lookalike}, // kangxi radical slash
  {0x3000, 0x3000, space_like},
  {0x3002, 0x3002, lookalike}, // ideographic full stop
  {0x3033, 0x3033, lookalike}, // vertical kana repeat mark upper half
  {0xA789, 0xA789, lookalike}, // modifier letter colon
  {0xFDD0, 0xFDEF, "a noncharacter"},
  {0xFE00, 0xFE0F, invisible}, // variation selectors
  {0xFE10, 0xFE19, lookalike}, // vertical forms
  {0xFE50, 0xFE6B, lookalike}, // small form variants
  {0xFEFF, 0xFEFF, invisible}, // byte order mark
  {0xFF01, 0xFF0F, lookalike}, // fullwidth ! .. /
  {0xFF1A, 0xFF20, lookalike}, // fullwidth : .. @
  {0xFF3B, 0xFF40, lookalike}, // fullwidth [ \ ] ^ _ `
  {0xFF5B, 0xFF65, lookalike}, // fullwidth { | } ~, halfwidth stops
  {0xFFF9, 0xFFFD, invisible}, // annotations, object, replacement
}};

const char* refused_reason(uint32_t cp) {
  for (const auto& r : refused_code_points)
    if (cp >= r.first && cp <= r.last)
      return r.what;
  if ((cp & 0xFFFE) == 0xFFFE)
    return "a noncharacter";
  if (cp >= 0xE0000 && cp <= 0xE0FFF)
    return invisible; // tags, variation selectors supplement
  return nullptr;
}

// Decodes one UTF-8 sequence at `i`; returns false when it is malformed
// (overlong, surrogate, beyond U+10FFFF, truncated).
bool decode_utf8(std::string_view s, std::size_t& i, uint32_t& cp) {
  auto b0 = static_cast<unsigned char>(s[i]);
  std::size_t n = 0;
  uint32_t min = 0;
  if (b0 < 0x80) {
    cp = b0;
    ++i;
    return true;
  } else if ((b0 & 0xE0) == 0xC0) {
    n = 1;
    cp = b0 & 0x1F;
    min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 2;
    cp = b0 & 0x0F;
    min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 3;
    cp = b0 & 0x07;
    min = 0x10000;
  } else {
    return false;
  }
  if (i + n >= s.size())
    return false; // truncated
  for (std::size_t k = 1; k <= n; ++k) {
    auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80)
      return false;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return false;
  i += n + 1;
  return true;
}

// -- lexical normalisation ----------------------------------------------------

struct lexical_result {
  bool ok = false;
  std::vector<std::string> parts;
  std::string reason;
};

lexical_result refuse(std::string reason) {
  lexical_result r;
  r.reason = std::move(reason);
  return r;
}

// Splits and normalises without looking at the file system. With
// `allow_meta`, paths into the meta dir pass (restore reads backups there).
lexical_result split_relative(std::string_view path, bool allow_meta) {
  if (path.empty())
    return refuse("empty path");
  if (path.size() > max_path_bytes)
    return refuse("path longer than 4096 bytes");
  for (char c : path) {
    auto u = static_cast<unsigned char>(c);
    if (u == 0)
      return refuse("path contains a NUL byte");
    if (u < 0x20 || u == 0x7F)
      return refuse("path contains a control character");
    if (c == '\\')
      return refuse("path contains a backslash");
  }
  for (std::size_t i = 0; i < path.size();) {
    uint32_t cp = 0;
    if (!decode_utf8(path, i, cp))
      return refuse("path is not valid UTF-8");
    if (const char* what = refused_reason(cp))
      return refuse("path contains " + hex_code_point(cp) + ", " + what);
  }
  if (path.front() == '/')
    return refuse("absolute path");
  if (path.front() == '~')
    return refuse("path starts with '~' (a home directory)");
  if (path.size() >= 2 && path[1] == ':'
      && ((path[0] >= 'A' && path[0] <= 'Z')
          || (path[0] >= 'a' && path[0] <= 'z')))
    return refuse("path starts with a Windows drive");
  if (path.back() == '/')
    return refuse("path ends with '/' (a directory)");

  lexical_result r;
  std::string_view last;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos)
      end = path.size();
    std::string_view comp = path.substr(start, end - start);
    start = end + 1;
    last = comp;
    if (comp.size() > max_component_bytes)
      return refuse("a path component is longer than 255 bytes");
    if (comp.empty() || comp == ".")
      continue;
    if (comp == "..") {
      if (r.parts.empty())
        return refuse("path escapes the workspace ('..')");
      r.parts.pop_back();
      continue;
    }
    r.parts.emplace_back(comp);
  }
  if (last == "." || last == "..")
    return refuse("path ends in '.' or '..' (a directory)");
  if (r.parts.empty())
    return refuse("path names no file");
  if (!allow_meta && iequals(r.parts.front(), workspace_meta_dir))
    return refuse("path is inside the .orchestrator meta folder");
  for (const auto& p : r.parts)
    if (iequals(p, ".git"))
      return refuse("path is inside a .git folder");
  r.ok = true;
  return r;
}

std::string join(const std::vector<std::string>& parts, std::size_t from = 0,
                 std::size_t to = std::string::npos) {
  std::string out;
  to = std::min(to, parts.size());
  for (std::size_t i = from; i < to; ++i) {
    if (!out.empty())
      out += '/';
    out += parts[i];
  }
  return out;
}

// -- file system helpers (std::filesystem, for check_workspace_path) ----------

bool is_within(const fs::path& root, const fs::path& p) {
  auto r = root.begin();
  auto q = p.begin();
  for (; r != root.end(); ++r, ++q) {
    // A trailing empty element (root ending in '/') matches anything.
    if (r->empty())
      continue;
    if (q == p.end() || *r != *q)
      return false;
  }
  return true;
}

fs::path canonical_root(const fs::path& root) {
  std::error_code ec;
  fs::path c = fs::canonical(root, ec);
  if (!ec)
    return c;
  c = fs::weakly_canonical(root, ec);
  if (!ec)
    return c;
  c = fs::absolute(root, ec);
  return ec ? root : c.lexically_normal();
}

// -- POSIX descriptor helpers (race-safe writes) ------------------------------

#ifdef O_PATH
constexpr int path_flag = O_PATH;
#else
constexpr int path_flag = O_RDONLY;
#endif

class unique_fd {
public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_{fd} {}
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  unique_fd(unique_fd&& other) noexcept : fd_{std::exchange(other.fd_, -1)} {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~unique_fd() {
    reset();
  }
  int get() const noexcept {
    return fd_;
  }
  explicit operator bool() const noexcept {
    return fd_ >= 0;
  }
  void reset() noexcept {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
  }

private:
  int fd_ = -1;
};

std::string errno_text(int err) {
  return std::error_code{err, std::generic_category()}.message();
}

struct dev_ino {
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const dev_ino& o) const {
    return dev == o.dev && ino == o.ino;
  }
};

std::optional<dev_ino> identity(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return std::nullopt;
  return dev_ino{st.st_dev, st.st_ino};
}

// True when the folder open as `fd` is `root` or lies below it. Walks `..`
// from the opened folder itself, so it judges what was opened, not a name
// that could be swapped afterwards.
bool fd_within(int fd, const dev_ino& root) {
  unique_fd cur{::fcntl(fd, F_DUPFD_CLOEXEC, 0)};
  if (!cur)
    return false;
  for (int depth = 0; depth < 4096; ++depth) {
    auto id = identity(cur.get());
    if (!id)
      return false;
    if (*id == root)
      return true;
    unique_fd parent{
      ::openat(cur.get(), "..", path_flag | O_DIRECTORY | O_CLOEXEC)};
    if (!parent)
      return false;
    auto pid = identity(parent.get());
    if (!pid || *pid == *id)
      return false; // reached "/"
    cur = std::move(parent);
  }
  return false;
}

struct walk_result {
  unique_fd fd;
  std::string reason;
  /// errno of the failure, when one caused it.
  int error = 0;
};

// Opens the folder `parts[0..n)` below `dir`, one component at a time.
// Missing folders are created when `create`. Symlinked folders are followed
// only when `follow_inside` and then must resolve under `root`.
walk_result open_dirs(int dir, const std::vector<std::string>& parts,
                      std::size_t n, bool create, bool follow_inside,
                      const dev_ino& root) {
  walk_result out;
  unique_fd cur{::fcntl(dir, F_DUPFD_CLOEXEC, 0)};
  if (!cur) {
    out.reason = "cannot open the workspace: " + errno_text(errno);
    return out;
  }
  for (std::size_t i = 0; i < n; ++i) {
    const char* name = parts[i].c_str();
    std::string shown = join(parts, 0, i + 1);
    struct stat st {};
    if (::fstatat(cur.get(), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT || !create) {
        out.error = errno;
        out.reason = "cannot reach " + shown + ": " + errno_text(errno);
        return out;
      }
      if (::mkdirat(cur.get(), name, 0777) != 0 && errno != EEXIST) {
        out.reason = "cannot create " + shown + ": " + errno_text(errno);
        return out;
      }
      // Re-check what is there now: it may not be what we created.
      if (::fstatat(cur.get(), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        out.reason = "cannot reach " + shown + ": " + errno_text(errno);
        return out;
      }
    }
    unique_fd next;
    if (S_ISLNK(st.st_mode)) {
      if (!follow_inside) {
        out.reason = shown + " is a symlink";
        return out;
      }
      next = unique_fd{
        ::openat(cur.get(), name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
      if (!next) {
        out.reason = shown + " is a symlink that does not lead to a folder";
        return out;
      }
      if (!fd_within(next.get(), root)) {
        out.reason = shown + " is a symlink leading outside the workspace";
        return out;
      }
    } else if (S_ISDIR(st.st_mode)) {
      next = unique_fd{::openat(
        cur.get(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)};
      if (!next) {
        out.reason = "cannot open " + shown + ": " + errno_text(errno);
        return out;
      }
    } else {
      out.reason = shown + " exists and is not a folder";
      return out;
    }
    cur = std::move(next);
  }
  out.fd = std::move(cur);
  return out;
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool read_all(int fd, std::string& out) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    if (n == 0)
      return true;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

// What is at `name` inside `dir`, without following a symlink.
enum class leaf_kind { missing, regular, other, error };

struct leaf_info {
  leaf_kind kind = leaf_kind::missing;
  mode_t mode = 0;
  std::string content;
  std::string reason;
};

leaf_info read_leaf(int dir, const std::string& name,
                    const std::string& shown) {
  leaf_info info;
  unique_fd fd{::openat(dir, name.c_str(),
                        O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)};
  if (!fd) {
    int err = errno;
    if (err == ENOENT) {
      info.kind = leaf_kind::missing;
      return info;
    }
    struct stat st {};
    if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      info.kind = leaf_kind::other;
      info.reason = S_ISLNK(st.st_mode)   ? shown + " is a symlink"
                    : S_ISDIR(st.st_mode) ? shown + " is a folder"
                                          : shown + " is not a regular file";
      return info;
    }
    info.kind = leaf_kind::error;
    info.reason = "cannot open " + shown + ": " + errno_text(err);
    return info;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    info.kind = leaf_kind::error;
    info.reason = "cannot stat " + shown + ": " + errno_text(errno);
    return info;
  }
  if (!S_ISREG(st.st_mode)) {
    info.kind = leaf_kind::other;
    info.reason = S_ISDIR(st.st_mode) ? shown + " is a folder"
                                      : shown + " is not a regular file";
    return info;
  }
  info.mode = st.st_mode & 0777; // no setuid/setgid on agent content
  if (!read_all(fd.get(), info.content)) {
    info.kind = leaf_kind::error;
    info.reason = "cannot read " + shown + ": " + errno_text(errno);
    return info;
  }
  info.kind = leaf_kind::regular;
  return info;
}

std::atomic<uint64_t> temp_counter{0};

// Writes `content` to a fresh temp file in `dir` and renames it to `name`.
bool atomic_replace(int dir, const std::string& name, std::string_view content,
                    std::optional<mode_t> mode, std::string& error) {
  std::string tmp;
  unique_fd fd;
  for (int attempt = 0; attempt < 100 && !fd; ++attempt) {
    tmp = std::string{temp_prefix} + std::to_string(::getpid()) + "-"
          + std::to_string(temp_counter.fetch_add(1));
    fd = unique_fd{::openat(
      dir, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
      mode ? *mode : 0666)};
    if (!fd && errno != EEXIST) {
      error = "cannot create a temp file: " + errno_text(errno);
      return false;
    }
  }
  if (!fd) {
    error = "cannot create a temp file";
    return false;
  }
  bool ok = true;
  if (mode && ::fchmod(fd.get(), *mode) != 0)
    ok = false;
  if (ok && !write_all(fd.get(), content))
    ok = false;
  if (ok && ::fsync(fd.get()) != 0)
    ok = false;
  int err = errno;
  fd.reset();
  if (ok && ::renameat(dir, tmp.c_str(), dir, name.c_str()) != 0) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    ::unlinkat(dir, tmp.c_str(), 0);
    error = "cannot write " + name + ": " + errno_text(err);
    return false;
  }
  ::fsync(dir); // durability of the rename; failure here is not fatal
  return true;
}

std::string sanitize_backup_id(std::string id) {
  for (char& c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok)
      c = '_';
  }
  if (id.size() > 200)
    id.resize(200);
  if (id.empty() || id == "." || id == "..")
    id = "_";
  return id;
}

// True when `name` ends in `.~N~` (our numbered-backup suffix).
bool has_backup_suffix(std::string_view name) {
  if (name.size() < 4 || name.back() != '~')
    return false;
  std::size_t i = name.size() - 1;
  std::size_t digits = 0;
  while (i > 0 && name[i - 1] >= '0' && name[i - 1] <= '9') {
    --i;
    ++digits;
  }
  return digits > 0 && i >= 2 && name[i - 1] == '~' && name[i - 2] == '.';
}

std::string strip_backup_suffix(const std::string& name) {
  if (!has_backup_suffix(name))
    return name;
  return name.substr(0, name.rfind(".~"));
}

} // namespace

// -- paths --------------------------------------------------------------------

path_check normalize_workspace_path(std::string_view path) {
  path_check out;
  auto lex = split_relative(path, false);
  if (!lex.ok) {
    out.reason = std::move(lex.reason);
    return out;
  }
  out.ok = true;
  out.normalized = join(lex.parts);
  return out;
}

path_check check_workspace_path(const fs::path& root, std::string_view path) {
  path_check out = normalize_workspace_path(path);
  if (!out.ok)
    return out;
  auto lex = split_relative(path, false);
  const fs::path croot = canonical_root(root);
  fs::path cur = root;
  for (std::size_t i = 0; i < lex.parts.size(); ++i) {
    cur /= lex.parts[i];
    std::string shown = join(lex.parts, 0, i + 1);
    std::error_code ec;
    fs::file_status st = fs::symlink_status(cur, ec);
    if (ec || !fs::exists(st))
      break; // the rest will be created by write
    bool last = i + 1 == lex.parts.size();
    if (fs::is_symlink(st)) {
      if (last) {
        out = {false, {}, shown + " is a symlink"};
        return out;
      }
      fs::path target = fs::canonical(cur, ec);
      if (ec || !is_within(croot, target)) {
        out
          = {false, {}, shown + " is a symlink leading outside the workspace"};
        return out;
      }
      if (!fs::is_directory(target, ec)) {
        out = {false, {}, shown + " exists and is not a folder"};
        return out;
      }
      continue;
    }
    if (!last && !fs::is_directory(st)) {
      out = {false, {}, shown + " exists and is not a folder"};
      return out;
    }
    if (last && fs::is_directory(st)) {
      out = {false, {}, shown + " is a folder"};
      return out;
    }
    if (last && !fs::is_regular_file(st)) {
      out = {false, {}, shown + " is not a regular file"};
      return out;
    }
  }
  return out;
}

// -- hashing ------------------------------------------------------------------

std::string sha256_hex(std::string_view data) {
  static constexpr uint32_t k[64]
    = {0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
       0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
       0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
       0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
       0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
       0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
       0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
       0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
       0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
       0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
       0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  auto rotr = [](uint32_t x, int n) {
    return (x >> n) | (x << (32 - n));
  };
  auto block = [&](const unsigned char* p) {
    uint32_t w[64];
    for (std::size_t i = 0; i < 16; ++i)
      w[i] = (uint32_t{p[4 * i]} << 24) | (uint32_t{p[4 * i + 1]} << 16)
             | (uint32_t{p[4 * i + 2]} << 8) | uint32_t{p[4 * i + 3]};
    for (int i = 16; i < 64; ++i) {
      uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5],
             g = h[6], hh = h[7];
    for (int i = 0; i < 64; ++i) {
      uint32_t s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
      uint32_t ch = (e & f) ^ (~e & g);
      uint32_t t1 = hh + s1 + ch + k[i] + w[i];
      uint32_t s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
      uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
      uint32_t t2 = s0 + maj;
      hh = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
  };
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t n = data.size();
  std::size_t full = n / 64;
  for (std::size_t i = 0; i < full; ++i)
    block(p + 64 * i);
  unsigned char tail[128] = {};
  std::size_t rest = n % 64;
  if (rest > 0)
    std::memcpy(tail, p + 64 * full, rest);
  tail[rest] = 0x80;
  std::size_t tail_len = rest + 1 + 8 <= 64 ? 64 : 128;
  uint64_t bits = static_cast<uint64_t>(n) * 8;
  for (int i = 0; i < 8; ++i)
    tail[tail_len - 1 - i] = static_cast<unsigned char>(bits >> (8 * i));
  block(tail);
  if (tail_len == 128)
    block(tail + 64);
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (uint32_t v : h)
    for (int i = 7; i >= 0; --i)
      out += digits[(v >> (4 * i)) & 0xF];
  return out;
}

// -- snapshots ----------------------------------------------------------------

namespace {

void snapshot_dir(const fs::path& dir, const std::string& rel, int depth,
                  file_snapshot& out) {
  if (depth > 256)
    return; // pathological nesting; nothing sensible lives that deep
  std::error_code ec;
  fs::directory_iterator it{dir, ec};
  if (ec)
    return;
  for (fs::directory_iterator end; it != end; it.increment(ec)) {
    if (ec)
      return;
    const fs::path& p = it->path();
    std::string name = p.filename().string();
    std::string key = rel.empty() ? name : rel + "/" + name;
    std::error_code sec;
    fs::file_status st = it->symlink_status(sec);
    if (sec)
      continue;
    if (fs::is_directory(st)) {
      if ((rel.empty() && name == workspace_meta_dir) || name == ".git")
        continue;
      snapshot_dir(p, key, depth + 1, out);
      continue;
    }
    if (!fs::is_regular_file(st) || name.rfind(temp_prefix, 0) == 0)
      continue;
    // O_NOFOLLOW|O_NONBLOCK: a file swapped for a symlink or a FIFO since
    // the listing is skipped instead of followed out of the root or waited on.
    unique_fd fd{
      ::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)};
    if (!fd)
      continue;
    struct stat fst {};
    if (::fstat(fd.get(), &fst) != 0 || !S_ISREG(fst.st_mode))
      continue;
    std::string content;
    if (!read_all(fd.get(), content))
      continue;
    out[key] = std::to_string(content.size()) + ":" + sha256_hex(content);
  }
}

} // namespace

file_snapshot snapshot_files(const fs::path& root) {
  file_snapshot out;
  snapshot_dir(root, "", 0, out);
  return out;
}

std::vector<std::string> changed_files(const file_snapshot& before,
                                       const file_snapshot& after) {
  std::vector<std::string> out;
  for (const auto& [path, hash] : after) {
    auto it = before.find(path);
    if (it == before.end() || it->second != hash)
      out.push_back(path);
  }
  return out;
}

std::vector<std::string> removed_files(const file_snapshot& before,
                                       const file_snapshot& after) {
  std::vector<std::string> out;
  for (const auto& entry : before)
    if (after.find(entry.first) == after.end())
      out.push_back(entry.first);
  return out;
}

// -- code blocks --------------------------------------------------------------

namespace {

const std::array<std::string_view, 14> bare_file_names{
  "Makefile", "makefile", "GNUmakefile",    "Dockerfile",  "Containerfile",
  "Procfile", "Gemfile",  "Rakefile",       "Vagrantfile", "Jenkinsfile",
  "LICENSE",  "README",   "CMakeLists.txt", "Justfile"};

bool is_ext_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
         || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '+';
}

std::string_view strip_wrapper(std::string_view s, std::string_view w) {
  if (s.size() >= 2 * w.size() + 1 && s.substr(0, w.size()) == w
      && ends_with(s, w))
    return trim(s.substr(w.size(), s.size() - 2 * w.size()));
  return s;
}

std::string_view strip_label_prefix(std::string_view s) {
  for (std::string_view p : {"file name:", "filename:", "file:", "path:"})
    if (starts_with_ci(s, p))
      return trim(s.substr(p.size()));
  return s;
}

// Strips markdown decoration around a label: bold/italic, backticks,
// a trailing colon, a `File:` prefix. Loops because they nest.
std::string unwrap_label(std::string_view s) {
  auto tmp = text::strip_bold(s);
  std::string_view v = trim(tmp);
  for (int round = 0; round < 6; ++round) {
    std::string_view before = v;
    if (!v.empty() && v.back() == ':')
      v = trim(v.substr(0, v.size() - 1));
    v = strip_label_prefix(v);
    v = strip_wrapper(v, "`");
    v = strip_wrapper(v, "*");
    if (v.size() > 4 && v.substr(0, 2) == "__" && ends_with(v, "__")
        && !looks_like_path(v))
      v = strip_wrapper(v, "__");
    if (v == before)
      break;
  }
  return std::string{v};
}

std::string_view strip_list_marker(std::string_view s) {
  if (s.size() >= 2 && (s[0] == '-' || s[0] == '*' || s[0] == '+')
      && s[1] == ' ')
    return trim(s.substr(2));
  std::size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9')
    ++i;
  if (i > 0 && i + 1 < s.size() && (s[i] == '.' || s[i] == ')')
      && s[i + 1] == ' ')
    return trim(s.substr(i + 2));
  return s;
}

// The path named by the line just above a block, or "".
std::string path_from_label_line(std::string_view raw) {
  std::string_view line = trim(raw);
  if (line.empty())
    return {};
  if (line.front() == '#') {
    while (!line.empty() && line.front() == '#')
      line.remove_prefix(1);
    line = trim(line);
  }
  line = strip_list_marker(line);
  std::string label = unwrap_label(line);
  if (looks_like_path(label))
    return label;
  // "Create `api/models.py`:" - one backticked path in a line ending in ':'.
  if (!line.empty() && line.back() == ':') {
    std::vector<std::string_view> spans;
    std::size_t pos = 0;
    while (true) {
      std::size_t a = line.find('`', pos);
      if (a == std::string_view::npos)
        break;
      std::size_t b = line.find('`', a + 1);
      if (b == std::string_view::npos)
        break;
      spans.push_back(line.substr(a + 1, b - a - 1));
      pos = b + 1;
    }
    std::vector<std::string_view> paths;
    for (auto sp : spans)
      if (looks_like_path(trim(sp)))
        paths.push_back(trim(sp));
    if (paths.size() == 1)
      return std::string{paths.front()};
  }
  return {};
}

// The path in a first content line like `# File: a.py`, `// File: a.py`,
// `<!-- File: a.py -->`, `/* File: a.py */`, `-- File: a.sql`, or "".
std::string path_from_marker_line(std::string_view raw) {
  std::string_view line = trim(raw);
  std::string_view body;
  if (line.substr(0, 4) == "<!--") {
    body = line.substr(4);
    if (ends_with(body, "-->"))
      body.remove_suffix(3);
  } else if (line.substr(0, 2) == "/*") {
    body = line.substr(2);
    if (ends_with(body, "*/"))
      body.remove_suffix(2);
  } else if (line.substr(0, 2) == "//" || line.substr(0, 2) == "--") {
    body = line.substr(2);
  } else if (line.substr(0, 2) == "#!") {
    return {};
  } else if (!line.empty()
             && (line[0] == '#' || line[0] == ';' || line[0] == '%')) {
    body = line.substr(1);
  } else {
    return {};
  }
  body = trim(body);
  std::string_view rest = strip_label_prefix(body);
  if (rest.size() == body.size())
    return {}; // no File:/Path: keyword: an ordinary comment
  std::string p = unwrap_label(rest);
  if (p.empty())
    return {};
  for (char c : p)
    if (is_space(c))
      return {};
  return p;
}

// Splits an info string into tokens; quotes group, braces separate.
std::vector<std::string> info_tokens(std::string_view info) {
  std::vector<std::string> out;
  std::string cur;
  char quote = 0;
  bool have = false;
  for (char c : info) {
    if (quote) {
      if (c == quote)
        quote = 0;
      else
        cur += c;
      continue;
    }
    if (c == '"' || c == '\'') {
      quote = c;
      have = true;
      continue;
    }
    if (is_space(c) || c == '{' || c == '}' || c == ',') {
      if (have || !cur.empty())
        out.push_back(cur);
      cur.clear();
      have = false;
      continue;
    }
    cur += c;
  }
  if (have || !cur.empty())
    out.push_back(cur);
  return out;
}

struct info_name {
  std::string lang;
  std::string path;
};

info_name parse_info(std::string_view info) {
  info_name out;
  auto tokens = info_tokens(info);
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const std::string& t = tokens[i];
    std::size_t eq = t.find('=');
    if (eq != std::string::npos) {
      std::string key = t.substr(0, eq);
      std::transform(key.begin(), key.end(), key.begin(), ascii_lower);
      if (out.path.empty()
          && (key == "title" || key == "file" || key == "path"
              || key == "filename"))
        out.path = std::string{trim(t.substr(eq + 1))};
      continue;
    }
    if (i != 0)
      continue;
    std::size_t colon = t.find(':');
    if (colon != std::string::npos && colon > 0
        && looks_like_path(t.substr(colon + 1))) {
      out.lang = t.substr(0, colon); // ```python:api/models.py
      out.path = t.substr(colon + 1);
    } else if (looks_like_path(t)) {
      out.path = t; // ```api/models.py
    } else {
      out.lang = t;
    }
  }
  std::transform(out.lang.begin(), out.lang.end(), out.lang.begin(),
                 ascii_lower);
  return out;
}

std::string_view dedent(std::string_view line, std::size_t n) {
  std::size_t i = 0;
  while (i < n && i < line.size() && (line[i] == ' ' || line[i] == '\t'))
    ++i;
  return line.substr(i);
}

} // namespace

bool looks_like_path(std::string_view s) {
  if (s.empty() || s.size() > max_path_bytes || s.back() == '/')
    return false;
  if (s.find("://") != std::string_view::npos)
    return false;
  for (char c : s)
    if (is_space(c) || c == '`' || c == '*' || c == '<' || c == '>' || c == '|'
        || c == '"' || c == '\'' || c == '(' || c == ')' || c == '[' || c == ']'
        || c == '{' || c == '}' || c == ',')
      return false;
  std::string_view name
    = s.substr(s.rfind('/') == std::string_view::npos ? 0 : s.rfind('/') + 1);
  for (auto bare : bare_file_names)
    if (name == bare)
      return true;
  std::size_t dot = name.rfind('.');
  if (dot == std::string_view::npos)
    return false;
  if (dot == 0)
    return name.size() > 1 && is_ext_char(name[1]); // .gitignore, .env
  std::string_view ext = name.substr(dot + 1);
  if (ext.empty() || ext.size() > 12)
    return false;
  bool letter = false;
  for (char c : ext) {
    if (!is_ext_char(c))
      return false;
    letter = letter || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  }
  return letter;
}

std::vector<code_block_file> extract_code_blocks(std::string_view text) {
  std::vector<code_block_file> out;
  std::unordered_map<std::string, std::size_t> index;
  auto lines = split_lines(text);

  // The last non-blank line outside blocks and how many blank lines follow.
  std::optional<std::string_view> label;
  int blanks = 0;

  for (std::size_t i = 0; i < lines.size(); ++i) {
    auto open = parse_fence(lines[i]);
    if (!open) {
      if (trim(lines[i]).empty()) {
        ++blanks;
      } else {
        label = lines[i];
        blanks = 0;
      }
      continue;
    }
    // A label line is never blank, so empty means "none" (a plain view also
    // avoids GCC 12's false -Wmaybe-uninitialized on optional<string_view>).
    std::string_view above = blanks <= 2 && label ? *label : std::string_view{};
    // Find the closing fence, counting nested opening fences.
    std::size_t depth = 0;
    std::size_t close = lines.size();
    for (std::size_t j = i + 1; j < lines.size(); ++j) {
      auto f = parse_fence(lines[j]);
      if (!f || f->ch != open->ch || f->len < open->len)
        continue;
      if (!f->info.empty()) {
        ++depth;
      } else if (depth > 0) {
        --depth;
      } else {
        close = j;
        break;
      }
    }
    label.reset();
    blanks = 0;
    if (close == lines.size())
      break; // unterminated: ignored, and so is everything after it

    std::size_t first = i + 1;
    info_name info = parse_info(open->info);
    std::string path = info.path;
    if (first < close) {
      std::string marked = path_from_marker_line(lines[first]);
      if (!marked.empty()) {
        if (path.empty())
          path = marked;
        ++first;
      }
    }
    if (path.empty() && !above.empty())
      path = path_from_label_line(above);
    bool is_diff = info.lang == "diff" || info.lang == "patch"
                   || info.lang == "udiff";
    if (is_diff && !ends_with(path, ".diff") && !ends_with(path, ".patch"))
      path.clear(); // a diff is not the file's content
    if (!path.empty()) {
      std::string content;
      for (std::size_t j = first; j < close; ++j) {
        content += dedent(lines[j], open->indent);
        content += '\n';
      }
      std::string key = path.rfind("./", 0) == 0 ? path.substr(2) : path;
      auto it = index.find(key);
      if (it != index.end()) {
        out[it->second].content = std::move(content);
      } else {
        index.emplace(key, out.size());
        out.push_back({std::move(path), std::move(content)});
      }
    }
    i = close;
  }
  return out;
}

// -- workspace ----------------------------------------------------------------

workspace::workspace(fs::path root, std::string backup_id)
  : root_{std::move(root)}, backup_id_{
                              sanitize_backup_id(std::move(backup_id))} {}

bool workspace::ensure(std::string& error) const {
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) {
    error = "cannot create " + root_.string() + ": " + ec.message();
    return false;
  }
  if (!fs::is_directory(root_, ec)) {
    error = root_.string() + " is not a folder";
    return false;
  }
  fs::path meta = root_ / workspace_meta_dir;
  fs::file_status st = fs::symlink_status(meta, ec);
  if (!ec && fs::exists(st)) {
    if (fs::is_symlink(st) || !fs::is_directory(st)) {
      error = meta.string() + " exists and is not a plain folder";
      return false;
    }
    return true;
  }
  ec.clear();
  fs::create_directory(meta, ec);
  if (ec) {
    error = "cannot create " + meta.string() + ": " + ec.message();
    return false;
  }
  return true;
}

namespace {

struct write_request {
  std::vector<std::string> parts;
  std::string_view content;
  /// Mode for a file that does not exist yet (restore keeps the backup's).
  std::optional<mode_t> new_mode;
};

// Copies `content` into a new backup file; never replaces an existing one.
bool make_backup(int root_fd, const dev_ino& root_id,
                 const std::string& backup_id,
                 const std::vector<std::string>& parts,
                 std::string_view content, mode_t mode, std::string& rel,
                 std::string& error) {
  std::vector<std::string> dirs{workspace_meta_dir, "backups", backup_id};
  dirs.insert(dirs.end(), parts.begin(), parts.end() - 1);
  auto dir = open_dirs(root_fd, dirs, dirs.size(), true, false, root_id);
  if (!dir.fd) {
    error = "cannot back up: " + dir.reason;
    return false;
  }
  const std::string& leaf = parts.back();
  bool force_suffix = has_backup_suffix(leaf);
  for (int n = 0; n < 10000; ++n) {
    if (n == 0 && force_suffix)
      continue;
    std::string name = n == 0 ? leaf : leaf + ".~" + std::to_string(n) + "~";
    unique_fd fd{::openat(dir.fd.get(), name.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                          mode & 0777)};
    if (!fd) {
      if (errno == EEXIST)
        continue;
      error = "cannot back up: " + errno_text(errno);
      return false;
    }
    if (!write_all(fd.get(), content) || ::fsync(fd.get()) != 0) {
      error = "cannot back up: " + errno_text(errno);
      fd.reset();
      ::unlinkat(dir.fd.get(), name.c_str(), 0);
      return false;
    }
    dirs.push_back(name);
    rel = join(dirs);
    return true;
  }
  error = "cannot back up: too many backups of " + leaf;
  return false;
}

write_outcome do_write(const fs::path& root, const std::string& backup_id,
                       const write_request& req) {
  write_outcome out;
  out.path = join(req.parts);
  std::error_code ec;
  fs::create_directories(root, ec);
  unique_fd root_fd{::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (!root_fd) {
    out.reason = "cannot open the workspace: " + errno_text(errno);
    return out;
  }
  auto root_id = identity(root_fd.get());
  if (!root_id) {
    out.reason = "cannot stat the workspace: " + errno_text(errno);
    return out;
  }
  auto dir = open_dirs(root_fd.get(), req.parts, req.parts.size() - 1, true,
                       true, *root_id);
  if (!dir.fd) {
    out.reason = dir.reason;
    return out;
  }
  const std::string& leaf = req.parts.back();
  leaf_info existing = read_leaf(dir.fd.get(), leaf, out.path);
  if (existing.kind == leaf_kind::other || existing.kind == leaf_kind::error) {
    out.reason = existing.reason;
    return out;
  }
  std::optional<mode_t> mode = req.new_mode;
  if (existing.kind == leaf_kind::regular) {
    if (existing.content == req.content) {
      out.reason = "unchanged";
      return out;
    }
    std::string error;
    if (!make_backup(root_fd.get(), *root_id, backup_id, req.parts,
                     existing.content, existing.mode, out.backup, error)) {
      out.reason = error;
      return out;
    }
    mode = existing.mode;
  }
  std::string error;
  if (!atomic_replace(dir.fd.get(), leaf, req.content, mode, error)) {
    out.reason = error;
    return out;
  }
  out.written = true;
  return out;
}

} // namespace

workspace::preserve_report
workspace::preserve_existing(std::uintmax_t max_bytes) const {
  preserve_report rep;
  auto files = snapshot_files(root_);
  for (const auto& entry : files)
    rep.bytes += std::stoull(entry.second.substr(0, entry.second.find(':')));
  if (rep.bytes > max_bytes) {
    rep.error = "the existing files take " + std::to_string(rep.bytes)
                + " bytes, more than the " + std::to_string(max_bytes)
                + " this run copies before it starts; nothing was saved";
    rep.bytes = 0;
    return rep;
  }
  rep.bytes = 0;
  unique_fd root_fd{::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  auto root_id = root_fd ? identity(root_fd.get()) : std::nullopt;
  if (!root_fd || !root_id) {
    rep.error = "cannot open the workspace: " + errno_text(errno);
    return rep;
  }
  for (const auto& entry : files) {
    auto lex = split_relative(entry.first, false);
    if (!lex.ok)
      continue;
    auto dir = open_dirs(root_fd.get(), lex.parts, lex.parts.size() - 1, false,
                         true, *root_id);
    if (!dir.fd)
      continue;
    leaf_info leaf = read_leaf(dir.fd.get(), lex.parts.back(), entry.first);
    if (leaf.kind != leaf_kind::regular)
      continue;
    std::string rel;
    std::string error;
    if (!make_backup(root_fd.get(), *root_id, backup_id_, lex.parts,
                     leaf.content, leaf.mode, rel, error)) {
      rep.error = entry.first + ": " + error;
      return rep;
    }
    ++rep.files;
    rep.bytes += leaf.content.size();
  }
  return rep;
}

write_outcome workspace::write(std::string_view path,
                               std::string_view content) const {
  auto lex = split_relative(path, false);
  if (!lex.ok) {
    write_outcome out;
    out.path = std::string{path};
    out.reason = std::move(lex.reason);
    return out;
  }
  return do_write(root_, backup_id_, {std::move(lex.parts), content, {}});
}

bool workspace::restore(std::string_view backup_path,
                        std::string& error) const {
  auto lex = split_relative(backup_path, true);
  if (!lex.ok) {
    error = lex.reason;
    return false;
  }
  const auto& parts = lex.parts;
  if (parts.size() < 4 || parts[0] != workspace_meta_dir
      || parts[1] != "backups") {
    error = "not a backup path: " + std::string{backup_path};
    return false;
  }
  std::vector<std::string> original(parts.begin() + 3, parts.end());
  original.back() = strip_backup_suffix(original.back());
  auto target = split_relative(join(original), false);
  if (!target.ok) {
    error = "backup of a refused path: " + target.reason;
    return false;
  }

  unique_fd root_fd{::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (!root_fd) {
    error = "cannot open the workspace: " + errno_text(errno);
    return false;
  }
  auto root_id = identity(root_fd.get());
  if (!root_id) {
    error = "cannot stat the workspace: " + errno_text(errno);
    return false;
  }
  auto dir = open_dirs(root_fd.get(), parts, parts.size() - 1, false, false,
                       *root_id);
  if (!dir.fd) {
    error = dir.error == ENOENT ? "no such backup: " + join(parts)
                                : "cannot read the backup: " + dir.reason;
    return false;
  }
  leaf_info backup = read_leaf(dir.fd.get(), parts.back(), join(parts));
  if (backup.kind != leaf_kind::regular) {
    error = backup.kind == leaf_kind::missing
              ? "no such backup: " + join(parts)
              : "cannot read the backup: " + backup.reason;
    return false;
  }
  write_outcome w = do_write(
    root_, backup_id_, {std::move(target.parts), backup.content, backup.mode});
  if (!w.written && w.reason != "unchanged") {
    error = w.reason;
    return false;
  }
  return true;
}

} // namespace orch
