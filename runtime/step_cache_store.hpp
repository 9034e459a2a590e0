#pragma once

// The step cache without actors: the key of a step, the entry (a successful
// step's outcome, findings and the contents of the files it produced), the
// entry's file format with its checksum, the in-memory LRU and the store on
// disk under `<state dir>/cache/`. actors/cache_actor.* puts the memory in
// front of the disk; actors/cached_step.* asks it before running a step.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <list>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/events.hpp"
#include "runtime/fd_util.hpp"
#include "runtime/review.hpp"
#include "runtime/workspace.hpp"

namespace orch {

/// Version of the key and of the entry format: a change makes every older
/// entry a miss (its key differs) or corrupt (its header differs).
inline constexpr int step_cache_format = 1;

/// Name of the cache folder in the state directory.
inline constexpr std::string_view step_cache_dir_name = "cache";

// -- the key ------------------------------------------------------------------

/// What a step's work depends on, the run left out.
struct step_cache_key_parts {
  std::string agent;
  std::string model;
  /// The adapter kind's spelling ("codex", "command", ...).
  std::string adapter;
  std::string task_kind;
  /// The prompt with its run-specific parts replaced (normalize_prompt).
  std::string prompt;
  /// Other inputs of the agent's process, in a fixed order: its command and
  /// arguments, the values of the variables it is given (`env_set`, and
  /// those of `env_allow` that are set), whether it reviews.
  std::vector<std::string> setup;
  /// The workspace as the step sees it: each file's path and content hash.
  const file_snapshot* files = nullptr;
};

/// Returns the prompt without what changes from run to run: every
/// occurrence of `workspace` (the absolute path, which holds the run id)
/// becomes `{workspace}`, of `run_id` becomes `{run_id}`, and a last line
/// `This is iteration <iteration>.` (the built-in prompts end so) reads
/// `This is iteration {iteration}.`. A custom template that puts
/// `{iteration}` elsewhere keeps the number: each iteration is keyed apart
/// (a miss, never a wrong hit).
std::string normalize_prompt(std::string_view prompt,
                             std::string_view workspace,
                             std::string_view run_id, int32_t iteration);

/// Returns the key: 64 hex digits, the SHA-256 of every part (each
/// length-prefixed, so no two different part lists give the same bytes) and
/// of the sorted `path`/`hash` pairs of `files`.
std::string step_cache_key(const step_cache_key_parts& parts);

// -- the entry ----------------------------------------------------------------

/// One file a step produced, with its whole content.
struct cached_file {
  /// Workspace-relative.
  std::string path;
  std::string content;
};

/// A path named by the step that was not written, and why.
struct cached_refusal {
  std::string path;
  std::string reason;
};

/// What a hit replays.
struct step_cache_entry {
  std::string key;
  /// Wall clock, ms since the epoch, when the step ran.
  int64_t created_ms = 0;
  /// The agent and task, for the log.
  std::string agent;
  std::string task_kind;
  step_outcome outcome;
  std::vector<finding> findings;
  /// Files written or changed by the step, with their contents.
  std::vector<cached_file> files;
  /// Files the step deleted.
  std::vector<std::string> deleted;
  /// Files the step claims (step_result::reported_files).
  std::vector<std::string> reported_files;
  std::vector<cached_refusal> refused;
  /// Duration of the real step.
  int64_t duration_ms = 0;
};

/// Returns roughly the bytes `e` holds (its strings), for the memory bound.
std::size_t entry_bytes(const step_cache_entry& e);

/// Returns the entry as the bytes of its file: a header line with the
/// format, a line with the SHA-256 of the body, then the body (every field
/// length-prefixed, so any bytes survive).
std::string encode_entry(const step_cache_entry& e);

/// Parses encode_entry's bytes. Returns nothing and sets `error` when the
/// header, the checksum or the body is wrong (a truncated or altered file).
std::optional<step_cache_entry> decode_entry(std::string_view bytes,
                                             std::string& error);

// -- memory -------------------------------------------------------------------

/// Least recently used entries in memory, bounded by count and by bytes
/// (entry_bytes). Not thread-safe: one owner (the cache actor).
class step_cache_memory {
public:
  step_cache_memory(std::size_t max_entries, std::size_t max_bytes);

  /// Returns the entry and makes it the most recently used, or null.
  const step_cache_entry* get(const std::string& key);

  /// Adds or replaces the entry, then drops the least recently used until
  /// both bounds hold. An entry larger than max_bytes is not kept.
  void put(step_cache_entry e);

  /// Drops the entry if present.
  void erase(const std::string& key);

  std::size_t size() const noexcept {
    return index_.size();
  }
  std::size_t bytes() const noexcept {
    return bytes_;
  }

private:
  struct slot {
    step_cache_entry entry;
    std::size_t bytes = 0;
  };
  std::size_t max_entries_;
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  /// Most recently used first.
  std::list<slot> order_;
  std::unordered_map<std::string, std::list<slot>::iterator> index_;
};

// -- disk ---------------------------------------------------------------------

/// What a lookup on disk found.
struct step_cache_disk_lookup {
  std::optional<step_cache_entry> entry;
  /// True when an entry was there but unusable (then removed): corrupt,
  /// truncated, or another key's.
  bool corrupt = false;
  /// True when an entry was there but older than the ttl (then removed).
  bool expired = false;
  /// Why it was corrupt.
  std::string reason;
};

/// The entries under `<state dir>/cache/`, one file `<key>.entry` each
/// (key: 64 hex digits), written with write_file_atomic (never through a
/// link, readers see a whole file or none), bounded by bytes: after a put
/// the oldest files go (by modification time) until the folder is within
/// the bound. Expired entries are removed when met. Several processes may
/// share the folder. Not thread-safe: one owner (the cache actor).
class step_cache_disk {
public:
  /// Opens (creating 0700) the state directory `state_dir` and `cache/` in
  /// it; a link at either is refused. On failure `ok()` is false and
  /// `error()` says why; every call then does nothing.
  step_cache_disk(std::filesystem::path state_dir, std::size_t max_bytes);

  bool ok() const noexcept {
    return static_cast<bool>(dir_);
  }
  const std::string& error() const noexcept {
    return error_;
  }

  /// Reads the entry of `key`. One older than `ttl_ms` at `now_ms` is
  /// removed and reported as expired; one that is corrupt is removed and
  /// reported as corrupt, and logged and counted (counter::cache_corrupt)
  /// the first time this store meets it.
  step_cache_disk_lookup get(const std::string& key, int64_t now_ms,
                             int64_t ttl_ms);

  /// Writes the entry (replacing one of the same key), then evicts the
  /// oldest files beyond the byte bound and expired ones. An entry larger
  /// than the bound is not written. Returns false with `error` set when the
  /// write fails.
  bool put(const step_cache_entry& e, int64_t now_ms, int64_t ttl_ms,
           std::string& error);

  /// Removes the entry of `key`, if any.
  void erase(const std::string& key);

  /// Returns the bytes and the number of entry files in the folder.
  std::pair<std::uintmax_t, std::size_t> usage() const;

  /// Returns the path of the file of `key` (tests).
  std::filesystem::path file_of(const std::string& key) const;

private:
  void evict(int64_t now_ms, int64_t ttl_ms);

  std::filesystem::path state_dir_;
  std::size_t max_bytes_;
  detail::unique_fd dir_;
  std::string error_;
  /// Keys whose corruption was reported already.
  std::set<std::string> reported_;
};

/// Returns true when `key` looks like a key (64 lower-case hex digits): the
/// only names the store reads or writes.
bool valid_step_cache_key(std::string_view key);

// -- the workspace side -------------------------------------------------------

/// Reads the files `paths` (workspace-relative) under `root` into cached
/// files, never through a link (each folder is walked with O_NOFOLLOW, the
/// file opened with O_NOFOLLOW and must be a regular file). Returns nothing
/// when one cannot be read or the contents add up to more than `max_bytes`:
/// an incomplete entry would replay an incomplete step.
std::optional<std::vector<cached_file>>
read_step_files(const std::filesystem::path& root,
                const std::vector<std::string>& paths, std::size_t max_bytes);

/// Deletes the workspace file `path` under `root` as an agent's deletion
/// is replayed: the path must pass normalize_workspace_path, no folder on
/// the way may be a link, and only a regular file or a link at the leaf is
/// removed (a link itself, never its target). A file already gone counts
/// as deleted. Returns false with `error` set otherwise.
bool delete_workspace_file(const std::filesystem::path& root,
                           std::string_view path, std::string& error);

} // namespace orch
