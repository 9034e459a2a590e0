#include "server/api_token.hpp"

#include <cerrno>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "runtime/fd_util.hpp"

namespace orch::server {

namespace {

bool is_token(const std::string& s) {
  if (s.size() != 64)
    return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  return true;
}

/// Reads the token file; 1 found, 0 missing, -1 error.
int read_token(int state_fd, std::string& out, std::string& error) {
  detail::unique_fd fd{
    ::openat(state_fd, api_token_file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)};
  if (!fd) {
    if (errno == ENOENT)
      return 0;
    error = std::string{"cannot open the API token file "} + api_token_file
            + ": "
            + (errno == ELOOP ? std::string{"it is a symbolic link"}
                              : detail::errno_text(errno));
    return -1;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    error = std::string{"the API token file "} + api_token_file
            + " is not a regular file";
    return -1;
  }
  if (st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
    error = std::string{"the API token file "} + api_token_file
            + " is not ours alone (owner or mode other than 0600); remove "
              "it and start again for a new token";
    return -1;
  }
  char buf[128];
  auto n = ::read(fd.get(), buf, sizeof(buf));
  if (n < 0) {
    error = "cannot read the API token file: " + detail::errno_text(errno);
    return -1;
  }
  std::string text{buf, static_cast<size_t>(n)};
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
    text.pop_back();
  if (!is_token(text)) {
    error = std::string{"the API token file "} + api_token_file
            + " does not hold a token (64 hex digits); remove it and start "
              "again for a new one";
    return -1;
  }
  out = std::move(text);
  return 1;
}

} // namespace

std::string random_hex(size_t n) {
  std::vector<unsigned char> bytes(n);
  if (RAND_bytes(bytes.data(), static_cast<int>(n)) != 1)
    return {};
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (auto b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 0x0f];
  }
  return out;
}

std::string load_or_create_token(int state_fd, bool& created,
                                 std::string& error) {
  created = false;
  std::string token;
  auto found = read_token(state_fd, token, error);
  if (found != 0)
    return found > 0 ? token : std::string{};
  token = random_hex(32);
  if (token.empty()) {
    error = "the random generator (OpenSSL RAND_bytes) failed";
    return {};
  }
  std::string chosen;
  auto content = token + "\n";
  auto ok = detail::create_file_noreplace(
    state_fd,
    [](int i) {
      return i == 0 ? std::string{api_token_file} : std::string{};
    },
    0600,
    [&](int fd) {
      return ::fchmod(fd, 0600) == 0 && detail::write_all(fd, content);
    },
    chosen, error);
  if (!ok) {
    // Another server made it at the same moment: use that one.
    std::string again;
    error.clear();
    if (read_token(state_fd, again, error) > 0)
      return again;
    if (error.empty())
      error = "cannot create the API token file";
    return {};
  }
  created = true;
  return token;
}

} // namespace orch::server
