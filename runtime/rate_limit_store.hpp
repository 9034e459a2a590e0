#pragma once

// Where the rate limiter keeps its token buckets: in memory (one process,
// e.g. a server), or in the state directory (`<state>/limits/buckets.json`),
// shared by every process of the user, since each one-shot `run` starts
// fresh. The shared file is changed read-modify-write under an flock on
// `<state>/limits/lock`, replaced atomically (never written through a link);
// a corrupt file is reset with a log line.

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "runtime/fd_util.hpp"
#include "runtime/token_bucket.hpp"

namespace orch {

/// Keeps buckets by key (a user name, or "*" for one shared bucket).
class rate_limit_store {
public:
  virtual ~rate_limit_store() = default;

  /// Takes one token from the bucket `key` (a new bucket starts full).
  /// Never throws; when the shared state cannot be used the request is
  /// admitted and the reason logged (a broken state folder must not stop
  /// all work).
  virtual bucket_decision
  take(const std::string& key, const bucket_params& p, int64_t now_ms)
    = 0;
};

/// Buckets in this process only.
class memory_rate_limit_store : public rate_limit_store {
public:
  bucket_decision take(const std::string& key, const bucket_params& p,
                       int64_t now_ms) override;

private:
  std::map<std::string, bucket_state> buckets_;
};

/// Buckets in `buckets.json` of a folder (see open_limits_dir).
class file_rate_limit_store : public rate_limit_store {
public:
  /// `dir`: the folder, opened (e.g. by open_state_subdir "limits").
  explicit file_rate_limit_store(detail::unique_fd dir);

  bucket_decision take(const std::string& key, const bucket_params& p,
                       int64_t now_ms) override;

  /// The last problem met (a corrupt file that was reset, an I/O error);
  /// empty when none.
  const std::string& last_problem() const {
    return problem_;
  }

private:
  detail::unique_fd dir_;
  std::string problem_;
};

/// The file name of the shared buckets.
inline constexpr const char* buckets_file_name = "buckets.json";

/// Opens `<state dir>/limits` (0700, no links) and returns a store on it, or
/// null with `error` set.
std::shared_ptr<file_rate_limit_store>
open_file_rate_limit_store(int state_fd, std::string& error);

/// Parses the content of `buckets.json` into `out`; false when it is not
/// what we write (then the file is reset).
bool parse_buckets(const std::string& text,
                   std::map<std::string, bucket_state>& out);

/// The content of `buckets.json` for `buckets`.
std::string format_buckets(const std::map<std::string, bucket_state>& buckets);

} // namespace orch
