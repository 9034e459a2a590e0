#pragma once

// The API token of `serve`: 32 random bytes (OpenSSL RAND_bytes) as 64 hex
// digits, kept in `<state dir>/api-token`, mode 0600, created atomically and
// never through a link (an existing entry is never replaced), and read
// back only when it is a regular file of ours that nobody else can read.

#include <string>

namespace orch::server {

/// Name of the token file in the state directory.
inline constexpr const char* api_token_file = "api-token";

/// Returns the token kept in the state directory `state_fd`, creating it
/// when missing (`created` then true). Returns "" with `error` set when
/// the file cannot be made or is unsafe (a link, not ours, readable by
/// group or others, not a token).
std::string load_or_create_token(int state_fd, bool& created,
                                 std::string& error);

/// Returns `n` random bytes as hex (OpenSSL RAND_bytes); "" when the
/// generator fails.
std::string random_hex(size_t n);

} // namespace orch::server
