#include "actors/attribution.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <system_error>

#include "runtime/workspace.hpp"

namespace orch {

namespace {

namespace fs = std::filesystem;

/// Returns `p` lexically normal, without a trailing separator.
fs::path without_trailing_slash(const fs::path& p) {
  auto out = p.lexically_normal();
  if (!out.has_filename() && out.has_parent_path() && out != out.root_path())
    out = out.parent_path();
  return out;
}

/// Returns `p` relative to `base` when it lies under it, else nullopt.
std::optional<std::string> relative_under(const fs::path& p,
                                          const fs::path& base) {
  if (base.empty() || !base.is_absolute())
    return std::nullopt;
  auto rel = p.lexically_relative(base);
  if (rel.empty() || rel == "." || *rel.begin() == "..")
    return std::nullopt;
  return rel.generic_string();
}

bool contains(const std::vector<std::string>& xs, const std::string& x) {
  return std::find(xs.begin(), xs.end(), x) != xs.end();
}

void erase(std::vector<std::string>& xs, const std::string& x) {
  xs.erase(std::remove(xs.begin(), xs.end(), x), xs.end());
}

void sort_unique(std::vector<std::string>& xs) {
  std::sort(xs.begin(), xs.end());
  xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
}

} // namespace

std::optional<std::string> workspace_relative(const fs::path& root,
                                              std::string_view reported) {
  if (reported.empty() || reported.find('\0') != std::string_view::npos)
    return std::nullopt;
  std::string rel{reported};
  if (reported.front() == '/') {
    auto p = fs::path{rel}.lexically_normal();
    auto found = relative_under(p, without_trailing_slash(root));
    if (!found) {
      std::error_code ec;
      auto real = fs::weakly_canonical(root, ec);
      if (!ec)
        found = relative_under(p, without_trailing_slash(real));
    }
    if (!found)
      return std::nullopt;
    rel = std::move(*found);
  }
  auto check = normalize_workspace_path(rel);
  if (!check.ok)
    return std::nullopt;
  return check.normalized;
}

void attribute_group(std::vector<step_result>& group) {
  if (group.size() < 2)
    return;
  // path -> indices of the items that saw it / claim it (and saw it).
  std::map<std::string, std::vector<size_t>> seen;
  std::map<std::string, std::vector<size_t>> claimed;
  for (size_t i = 0; i < group.size(); ++i) {
    auto& res = group[i];
    std::set<std::string> mine{res.files.begin(), res.files.end()};
    mine.insert(res.deleted.begin(), res.deleted.end());
    for (const auto& path : mine) {
      seen[path].push_back(i);
      if (contains(res.reported_files, path))
        claimed[path].push_back(i);
    }
  }
  for (const auto& [path, seers] : seen) {
    auto it = claimed.find(path);
    const auto& owners = it != claimed.end() ? it->second : seers;
    for (auto i : seers) {
      if (std::find(owners.begin(), owners.end(), i) != owners.end())
        continue;
      erase(group[i].files, path);
      erase(group[i].deleted, path);
    }
    if (owners.size() > 1)
      for (auto i : owners)
        group[i].conflicts.push_back(path);
  }
  for (auto& res : group) {
    sort_unique(res.files);
    sort_unique(res.deleted);
    sort_unique(res.conflicts);
  }
}

} // namespace orch
