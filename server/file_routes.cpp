// The files of a task's or a session's workspace: list, read, and the
// editor's save (runtime/workspace_files.hpp does the confined file work;
// this maps it to HTTP). A read is served as text or a harmless image type,
// never as a type the browser would run in the UI's origin.

#include <string>

#include "actors/coordinator.hpp"
#include "runtime/clock.hpp"
#include "runtime/logging.hpp"
#include "runtime/path_rules.hpp"
#include "runtime/safe_file.hpp"
#include "runtime/workspace_files.hpp"
#include "server/routes.hpp"

namespace orch::server {

namespace {

/// Largest file served (bytes).
constexpr std::uintmax_t max_read_bytes = std::uintmax_t{32} << 20;
/// Largest file saved (bytes): the PUT body limit.
constexpr std::size_t max_write_bytes = std::size_t{16} << 20;

/// Finds the workspace a file route is about; "" with `error` set when
/// there is none.
using workspace_finder
  = std::function<std::string(server_context&, request&, response& error)>;

std::string task_workspace(server_context& ctx, request& req, response& error) {
  auto info = ctx.ask<run_info>(ctx.coordinator, atom::status_v,
                                req.param("id"));
  if (!info) {
    error = error_response(info.error());
    return {};
  }
  return info->workspace;
}

std::string session_workspace(server_context& ctx, request& req,
                              response& error) {
  auto s = find_session(ctx, req.param("name"), error);
  if (!s)
    return {};
  auto info = ctx.ask<session_info>(s->actor, atom::info_v);
  if (!info) {
    error = error_response(info.error());
    return {};
  }
  return info->workspace;
}

response file_error_response(file_error e, const std::string& reason) {
  switch (e) {
    case file_error::invalid_path:
      return response::error(400, "invalid_path", "query 'path': " + reason);
    case file_error::forbidden:
      return response::error(403, "forbidden", reason);
    case file_error::not_found:
      return response::error(404, "not_found", reason);
    case file_error::busy:
      return response::error(409, "workspace_locked", reason);
    case file_error::too_large:
      return response::error(413, "too_large", reason);
    default:
      log().error("http-file-error {}", reason);
      return response::error(500, "io",
                             "the file could not be read or "
                             "written (see the server log)");
  }
}

/// The `path` query parameter, or the 400.
std::optional<std::string> path_param(const request& req, response& error) {
  auto p = req.query_param("path");
  if (!p || p->empty()) {
    error = response::error(400, "invalid_field",
                            "query 'path': a workspace-relative file path "
                            "is required");
    return std::nullopt;
  }
  return p;
}

/// A file name fit for a Content-Disposition header: the last component,
/// characters outside [A-Za-z0-9._-] as `_`.
std::string download_name(const std::string& path) {
  auto slash = path.rfind('/');
  return plain_name(slash == std::string::npos ? path : path.substr(slash + 1));
}

void add_for(router& r, server_context& ctx, const std::string& base,
             workspace_finder find) {
  r.get(base + "/files", [&ctx, find](request& req) {
    response error;
    auto ws = find(ctx, req, error);
    if (ws.empty())
      return error;
    auto l = list_workspace_files(ws);
    if (l.error == file_error::not_found)
      // A run that has not made its workspace yet has no files.
      return response::json(200,
                            {{"files", nlohmann::ordered_json::array()},
                             {"truncated", false},
                             {"skipped", nlohmann::ordered_json::array()}});
    if (l.error != file_error::none)
      return file_error_response(l.error, l.reason);
    auto arr = nlohmann::ordered_json::array();
    for (const auto& f : l.files)
      arr.push_back(
        {{"path", f.path}, {"size", f.size}, {"mtime_ms", f.mtime_ms}});
    nlohmann::ordered_json j;
    j["files"] = std::move(arr);
    j["truncated"] = l.truncated;
    j["skipped"] = l.skipped;
    return response::json(200, j);
  });

  r.get(base + "/files/content", [&ctx, find](request& req) {
    response error;
    auto path = path_param(req, error);
    if (!path)
      return error;
    auto ws = find(ctx, req, error);
    if (ws.empty())
      return error;
    auto f = read_workspace_file(ws, *path, max_read_bytes);
    if (f.error != file_error::none)
      return file_error_response(f.error, f.reason);
    response res;
    res.status = 200;
    res.content_type = workspace_content_type(f.path);
    res.body = std::move(f.content);
    res.headers.emplace_back("Content-Security-Policy",
                             "default-src 'none'; sandbox");
    auto download = req.query_param("download");
    if (download && *download != "0" && !download->empty())
      res.headers.emplace_back("Content-Disposition", "attachment; filename=\""
                                                        + download_name(f.path)
                                                        + "\"");
    return res;
  });

  route_options upload;
  upload.max_body = max_write_bytes;
  r.put(
    base + "/files/content",
    [&ctx, find](request& req) {
      response error;
      auto path = path_param(req, error);
      if (!path)
        return error;
      auto ws = find(ctx, req, error);
      if (ws.empty())
        return error;
      // One backup folder per save: `edit-<ms>`, never an agent run's.
      auto backup_id = "edit-" + std::to_string(wall_clock_ms());
      auto s = write_workspace_file(ws, *path, req.body, backup_id,
                                    max_write_bytes);
      if (s.error != file_error::none)
        return file_error_response(s.error, s.reason);
      log().info("http-file-save path={} size={} backup={}",
                 detail::printable(s.path), s.size,
                 s.backup.empty() ? "-" : s.backup);
      nlohmann::ordered_json j;
      j["path"] = s.path;
      j["size"] = s.size;
      j["backup"] = s.backup.empty() ? nlohmann::ordered_json()
                                     : nlohmann::ordered_json(s.backup);
      j["written"] = s.written;
      return response::json(200, j);
    },
    upload);
}

} // namespace

void add_file_routes(router& r, server_context& ctx) {
  add_for(r, ctx, "/api/tasks/{id}", task_workspace);
  add_for(r, ctx, "/api/sessions/{name}", session_workspace);
}

} // namespace orch::server
