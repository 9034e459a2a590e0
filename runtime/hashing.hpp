#pragma once

// SHA-256 through OpenSSL's EVP interface, over memory or streamed from a
// file in fixed-size blocks (memory stays bounded whatever the file size).

#include <cstdint>
#include <string>
#include <string_view>

namespace orch {

/// Returns the SHA-256 of `data` as 64 lower-case hex digits (empty only if
/// OpenSSL fails, which it does not for SHA-256).
std::string sha256_hex(std::string_view data);

/// Incremental SHA-256: update() any number of times, then hex_digest().
class sha256_stream {
public:
  sha256_stream();
  sha256_stream(const sha256_stream&) = delete;
  sha256_stream& operator=(const sha256_stream&) = delete;
  ~sha256_stream();

  /// Adds `data` to the hash.
  void update(std::string_view data);

  /// Returns the digest as 64 lower-case hex digits (empty on failure).
  /// Ends the stream: further calls return the empty string.
  std::string hex_digest();

private:
  void* ctx_ = nullptr; // EVP_MD_CTX, kept out of this header
  bool ok_ = false;
};

/// Hashes the whole content of the file `fd` (from offset 0, with pread) in
/// blocks of 64 KiB. Sets `hex` and `size`; returns false (errno set) when
/// the file cannot be read.
bool sha256_file(int fd, std::string& hex, std::uintmax_t& size);

} // namespace orch
