#pragma once

// The state directory: where the log (and, later, sessions, cache, audit and
// history) is kept. One per user, never shared: created 0700, owned by us and
// never reached through a link at its last component.

#include <filesystem>
#include <string>
#include <string_view>

#include "runtime/fd_util.hpp"

namespace orch {

/// Name of the folder under the XDG state home.
inline constexpr std::string_view state_dir_name = "ai-orchestrator";

/// Returns the state directory for `configured` (settings.state_dir): that
/// path with a leading `~/` replaced by `home`; when empty,
/// `<xdg_state_home>/ai-orchestrator` if `xdg_state_home` is an absolute
/// path (the XDG spec ignores a relative one), else
/// `<home>/.local/state/ai-orchestrator`. Returns an empty path when `home`
/// is needed and null or not absolute.
std::filesystem::path resolve_state_dir(std::string_view configured,
                                        const char* xdg_state_home,
                                        const char* home);

/// Like the above with `$XDG_STATE_HOME` and `$HOME` of this process.
std::filesystem::path resolve_state_dir(std::string_view configured);

/// Opens the state directory `dir` (absolute), creating it 0700 if missing
/// (missing parents too, 0700 as XDG asks; links among the parents are
/// followed, as a user may keep ~/.local elsewhere). The folder itself is
/// opened with O_NOFOLLOW: a link there is refused, and so is a folder owned
/// by another user; one of ours open to group or others is narrowed to 0700.
/// Returns the folder's descriptor, or an invalid one with `error` set.
detail::unique_fd open_state_dir(const std::filesystem::path& dir,
                                 std::string& error);

/// Opens the folder `name` (one plain component, e.g. "logs") inside the
/// state directory `state_fd`, creating it 0700; a link there is refused.
detail::unique_fd open_state_subdir(int state_fd, const std::string& name,
                                    std::string& error);

} // namespace orch
