#pragma once

// Saved sessions: `<state dir>/sessions/<name>.json`, in the seed's format
//
//   {"session_id": "...", "created_at": "2024-01-15T10:00:00Z",
//    "workflow": "default",
//    "conversation_history": [{"role": "user", "content": "...",
//                              "files": [], "timestamp": "..."}, ...],
//    "workspace": "...", "metadata": {...}}
//
// with our own keys under "metadata" (agent override, the previous task's
// context) and an optional "run_id" per message. Files are written
// atomically and durably (temp file, fsync, rename, fsync of the folder), mode
// 0600, never through a link; a file that cannot be read or parsed is never
// overwritten unless forced.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace orch {

/// One message of a saved conversation.
struct stored_message {
  /// "user" or "assistant".
  std::string role;
  std::string content;
  std::vector<std::string> files;
  std::string timestamp;
  std::string run_id;
};

/// The context of the previous task (metadata.context).
struct stored_context {
  bool has_previous = false;
  std::string previous_task;
  std::string summary;
  std::vector<std::string> files;
  std::string workspace;
  std::string workflow;
  std::string timestamp;
  std::string run_id;
  /// run_status as text (converged, completed, ...).
  std::string status;
};

struct stored_session {
  std::string session_id;
  std::string created_at;
  std::string workflow;
  std::vector<stored_message> conversation_history;
  std::string workspace;
  /// metadata.agent: the `/switch` override; empty = none.
  std::string agent;
  stored_context context;
};

/// Longest session name accepted.
inline constexpr std::size_t max_session_name = 100;
/// Largest session file read (bytes).
inline constexpr std::uintmax_t max_session_file_bytes = std::uintmax_t{64}
                                                         << 20;

/// Returns "" when `name` can name a saved session, else the rule it breaks:
/// 1 to 100 characters of [A-Za-z0-9._-], not starting with '.' or '-' (so
/// no path separator, no "..", no hidden file).
std::string check_session_name(std::string_view name);

/// The session as the seed's JSON, pretty-printed, ending with a newline.
std::string session_to_json(const stored_session& s);

/// Parses a session file's text; on failure returns nullopt and sets
/// `error` to what is wrong and where ("conversation_history[1].role:
/// expected a string").
std::optional<stored_session> session_from_json(std::string_view text,
                                                std::string& error);

/// A listed session file.
struct session_listing {
  /// The file name without ".json".
  std::string name;
  std::filesystem::path path;
  /// Set when it could be read and parsed.
  std::optional<stored_session> session;
  /// Why not, naming the path.
  std::string error;
};

/// The sessions folder of a state directory.
class session_store {
public:
  explicit session_store(std::filesystem::path state_dir);

  /// `<state dir>/sessions`.
  std::filesystem::path dir() const;

  /// `<state dir>/sessions/<name>.json` (the name is not checked).
  std::filesystem::path path_of(std::string_view name) const;

  /// Writes the session under `name` (checked). An existing file that cannot
  /// be read as a session is refused (error naming its path) unless
  /// `force`. Returns false with `error` set on failure.
  bool save(std::string_view name, const stored_session& s, bool force,
            std::string& error) const;

  /// Reads the session `name`; nullopt with `error` naming the path when it
  /// is missing, unreadable, a link, too big or not a valid session.
  std::optional<stored_session> load(std::string_view name,
                                     std::string& error) const;

  /// Every `*.json` file of the folder, sorted by name; an empty list when
  /// the folder does not exist. Sets `error` when it cannot be listed.
  std::vector<session_listing> list(std::string& error) const;

private:
  std::filesystem::path state_dir_;
};

} // namespace orch
