#pragma once

// Who changed what in a parallel group. Every item of a group snapshots the
// workspace before and after its own process, but the items run at the same
// time, so each snapshot window also holds the other items' changes. What an
// item claims (files its CLI reported changing, files we wrote from its
// answer's code blocks) decides whose a change is.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "actors/vocabulary.hpp"

namespace orch {

/// Returns `reported` (a path a CLI said it changed: relative to the
/// workspace, or absolute under it) as a normalised workspace-relative path,
/// or nullopt when it lies outside the workspace, is not a valid workspace
/// path (see normalize_workspace_path) or names the workspace itself. Purely
/// lexical apart from resolving `root` itself (a CLI may print the real
/// path of a workspace reached through a link). Never throws.
std::optional<std::string> workspace_relative(const std::filesystem::path& root,
                                              std::string_view reported);

/// Fixes the files, deletions and conflicts of the items of one parallel
/// group (one step_result per item, in item order). A path an item saw change
/// in its snapshot window (in its `files` or `deleted`) is, for each path:
/// - claimed by exactly one item that saw it (in its `reported_files`):
///   that item's only; it is removed from the other items' `files` and
///   `deleted`;
/// - claimed by several items that saw it: kept by the claimants, removed
///   from the others, and listed in each claimant's `conflicts`;
/// - claimed by none and seen by one item: that item's;
/// - claimed by none and seen by several: nobody can tell who wrote it (the
///   windows overlap), so every item that saw it keeps it and lists it in
///   its `conflicts`. It may be a false alarm (for CLIs that report nothing)
///   but never hides two writers.
/// A claim counts only when the claimant's own window saw the path change.
/// Every list stays sorted and unique. A group of one item is left alone.
void attribute_group(std::vector<step_result>& group);

} // namespace orch
