#include "runtime/session_store.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "runtime/fd_util.hpp"
#include "runtime/state_dir.hpp"

namespace orch {

namespace {

using json = nlohmann::json;

constexpr std::string_view subdir = "sessions";
constexpr std::string_view suffix = ".json";

// -- JSON reading with errors naming the key ----------------------------------

bool get_string(const json& obj, const std::string& key, const std::string& at,
                bool required, std::string& out, std::string& error) {
  auto i = obj.find(key);
  if (i == obj.end() || i->is_null()) {
    if (required)
      error = at + key + ": missing";
    return !required;
  }
  if (!i->is_string()) {
    error = at + key + ": expected a string";
    return false;
  }
  out = i->get<std::string>();
  return true;
}

bool get_strings(const json& obj, const std::string& key, const std::string& at,
                 std::vector<std::string>& out, std::string& error) {
  auto i = obj.find(key);
  if (i == obj.end() || i->is_null())
    return true;
  if (!i->is_array()) {
    error = at + key + ": expected a list of strings";
    return false;
  }
  for (std::size_t n = 0; n < i->size(); ++n) {
    auto& x = (*i)[n];
    if (!x.is_string()) {
      error = at + key + "[" + std::to_string(n) + "]: expected a string";
      return false;
    }
    out.push_back(x.get<std::string>());
  }
  return true;
}

json context_to_json(const stored_context& c) {
  return json{{"has_previous", c.has_previous},
              {"previous_task", c.previous_task},
              {"summary", c.summary},
              {"files", c.files},
              {"workspace", c.workspace},
              {"workflow", c.workflow},
              {"timestamp", c.timestamp},
              {"run_id", c.run_id},
              {"status", c.status}};
}

bool context_from_json(const json& j, stored_context& c, std::string& error) {
  const std::string at = "metadata.context.";
  if (!j.is_object()) {
    error = "metadata.context: expected an object";
    return false;
  }
  if (auto i = j.find("has_previous"); i != j.end() && !i->is_null()) {
    if (!i->is_boolean()) {
      error = at + "has_previous: expected true or false";
      return false;
    }
    c.has_previous = i->get<bool>();
  }
  return get_string(j, "previous_task", at, false, c.previous_task, error)
         && get_string(j, "summary", at, false, c.summary, error)
         && get_strings(j, "files", at, c.files, error)
         && get_string(j, "workspace", at, false, c.workspace, error)
         && get_string(j, "workflow", at, false, c.workflow, error)
         && get_string(j, "timestamp", at, false, c.timestamp, error)
         && get_string(j, "run_id", at, false, c.run_id, error)
         && get_string(j, "status", at, false, c.status, error);
}

/// Opens `<state dir>/sessions`, creating it (and the state dir) when
/// `create`; an invalid fd with `error` set otherwise. `missing` is set when
/// it does not exist and `create` is false.
detail::unique_fd open_sessions(const std::filesystem::path& state_dir,
                                bool create, bool& missing,
                                std::string& error) {
  missing = false;
  if (state_dir.empty()) {
    error = "no state directory (set settings.state_dir, $XDG_STATE_HOME or "
            "$HOME)";
    return {};
  }
  if (!create) {
    std::error_code ec;
    if (!std::filesystem::exists(state_dir / subdir, ec)) {
      missing = true;
      return {};
    }
  }
  auto top = open_state_dir(state_dir, error);
  if (!top)
    return {};
  return open_state_subdir(top.get(), std::string{subdir}, error);
}

/// Reads `<dir fd>/<file>` (no link, a regular file, bounded).
bool read_session_file(int dir, const std::string& file,
                       const std::filesystem::path& shown, std::string& text,
                       std::string& error, bool& missing) {
  missing = false;
  detail::unique_fd fd{
    ::openat(dir, file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC)};
  if (!fd) {
    auto err = errno;
    missing = err == ENOENT;
    if (err == ELOOP)
      error = shown.string() + ": is a symbolic link, not read";
    else
      error = shown.string() + ": cannot open: " + detail::errno_text(err);
    return false;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    error = shown.string() + ": cannot stat: " + detail::errno_text(errno);
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    error = shown.string() + ": not a regular file";
    return false;
  }
  if (static_cast<std::uintmax_t>(st.st_size) > max_session_file_bytes) {
    error = shown.string() + ": larger than "
            + std::to_string(max_session_file_bytes >> 20) + " MiB";
    return false;
  }
  text.clear();
  if (!detail::read_blocks(fd.get(), [&](std::string_view chunk) {
        text.append(chunk);
        return text.size() <= max_session_file_bytes;
      })) {
    error = shown.string() + ": cannot read: " + detail::errno_text(errno);
    return false;
  }
  return true;
}

} // namespace

std::string check_session_name(std::string_view name) {
  if (name.empty())
    return "a session name must not be empty";
  if (name.size() > max_session_name)
    return "a session name has at most " + std::to_string(max_session_name)
           + " characters";
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok)
      return "a session name may only hold letters, digits, '.', '_' and '-' "
             "(no '/', spaces or other characters)";
  }
  if (name.front() == '.' || name.front() == '-')
    return "a session name must not start with '.' or '-'";
  return {};
}

std::string session_to_json(const stored_session& s) {
  json history = json::array();
  for (auto& m : s.conversation_history) {
    json e{{"role", m.role},
           {"content", m.content},
           {"files", m.files},
           {"timestamp", m.timestamp}};
    if (!m.run_id.empty())
      e["run_id"] = m.run_id;
    history.push_back(std::move(e));
  }
  json j{{"session_id", s.session_id},
         {"created_at", s.created_at},
         {"workflow", s.workflow},
         {"conversation_history", std::move(history)},
         {"workspace", s.workspace},
         {"metadata",
          {{"agent", s.agent}, {"context", context_to_json(s.context)}}}};
  // Invalid UTF-8 (an agent's raw bytes) is replaced, never a throw.
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::optional<stored_session> session_from_json(std::string_view text,
                                                std::string& error) {
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    std::string what = e.what();
    if (auto p = what.find("] "); p != std::string::npos)
      what = what.substr(p + 2);
    error = "not valid JSON: " + what;
    return std::nullopt;
  }
  if (!j.is_object()) {
    error = "expected a JSON object at the top";
    return std::nullopt;
  }
  stored_session s;
  if (!get_string(j, "session_id", "", true, s.session_id, error)
      || !get_string(j, "created_at", "", true, s.created_at, error)
      || !get_string(j, "workflow", "", true, s.workflow, error)
      || !get_string(j, "workspace", "", true, s.workspace, error))
    return std::nullopt;
  if (s.session_id.empty()) {
    error = "session_id: must not be empty";
    return std::nullopt;
  }
  auto h = j.find("conversation_history");
  if (h == j.end()) {
    error = "conversation_history: missing";
    return std::nullopt;
  }
  if (!h->is_array()) {
    error = "conversation_history: expected a list";
    return std::nullopt;
  }
  for (std::size_t n = 0; n < h->size(); ++n) {
    auto& e = (*h)[n];
    auto at = "conversation_history[" + std::to_string(n) + "].";
    if (!e.is_object()) {
      error = "conversation_history[" + std::to_string(n)
              + "]: expected an object";
      return std::nullopt;
    }
    stored_message m;
    if (!get_string(e, "role", at, true, m.role, error)
        || !get_string(e, "content", at, true, m.content, error)
        || !get_strings(e, "files", at, m.files, error)
        || !get_string(e, "timestamp", at, false, m.timestamp, error)
        || !get_string(e, "run_id", at, false, m.run_id, error))
      return std::nullopt;
    if (m.role != "user" && m.role != "assistant") {
      error = at + "role: expected \"user\" or \"assistant\", not \"" + m.role
              + "\"";
      return std::nullopt;
    }
    s.conversation_history.push_back(std::move(m));
  }
  if (auto md = j.find("metadata"); md != j.end() && !md->is_null()) {
    if (!md->is_object()) {
      error = "metadata: expected an object";
      return std::nullopt;
    }
    if (!get_string(*md, "agent", "metadata.", false, s.agent, error))
      return std::nullopt;
    if (auto c = md->find("context"); c != md->end() && !c->is_null())
      if (!context_from_json(*c, s.context, error))
        return std::nullopt;
  }
  return s;
}

session_store::session_store(std::filesystem::path state_dir)
  : state_dir_(std::move(state_dir)) {
  // nop
}

std::filesystem::path session_store::dir() const {
  return state_dir_ / subdir;
}

std::filesystem::path session_store::path_of(std::string_view name) const {
  return dir() / (std::string{name} + std::string{suffix});
}

bool session_store::save(std::string_view name, const stored_session& s,
                         bool force, std::string& error) const {
  if (auto rule = check_session_name(name); !rule.empty()) {
    error = "invalid session name \"" + std::string{name} + "\": " + rule;
    return false;
  }
  bool missing = false;
  auto dir_fd = open_sessions(state_dir_, true, missing, error);
  if (!dir_fd)
    return false;
  auto file = std::string{name} + std::string{suffix};
  auto shown = path_of(name);
  if (!force) {
    std::string text;
    std::string why;
    bool absent = false;
    if (read_session_file(dir_fd.get(), file, shown, text, why, absent)) {
      if (!session_from_json(text, why)) {
        error = shown.string() + " exists and is not a valid session (" + why
                + "): not overwritten; save under another name, or force";
        return false;
      }
    } else if (!absent) {
      error = why + ": not overwritten; save under another name, or force";
      return false;
    }
  }
  auto content = session_to_json(s);
  std::string why;
  if (!detail::replace_file(
        dir_fd.get(), file, 0600, true,
        [&](int fd) {
          return detail::write_all(fd, content);
        },
        why, detail::sync_mode::durable)) {
    error = shown.string() + ": cannot write: " + why;
    return false;
  }
  return true;
}

std::optional<stored_session> session_store::load(std::string_view name,
                                                  std::string& error) const {
  if (auto rule = check_session_name(name); !rule.empty()) {
    error = "invalid session name \"" + std::string{name} + "\": " + rule;
    return std::nullopt;
  }
  auto shown = path_of(name);
  bool missing = false;
  auto dir_fd = open_sessions(state_dir_, false, missing, error);
  if (missing) {
    error = "no saved session \"" + std::string{name} + "\" (" + shown.string()
            + " does not exist)";
    return std::nullopt;
  }
  if (!dir_fd)
    return std::nullopt;
  std::string text;
  if (!read_session_file(dir_fd.get(), std::string{name} + std::string{suffix},
                         shown, text, error, missing)) {
    if (missing)
      error = "no saved session \"" + std::string{name} + "\" ("
              + shown.string() + " does not exist)";
    return std::nullopt;
  }
  std::string why;
  auto s = session_from_json(text, why);
  if (!s)
    error = shown.string() + ": not a valid session: " + why;
  return s;
}

std::vector<session_listing> session_store::list(std::string& error) const {
  std::vector<session_listing> out;
  bool missing = false;
  auto dir_fd = open_sessions(state_dir_, false, missing, error);
  if (missing || !dir_fd)
    return out;
  std::vector<std::string> names;
  if (!detail::list_dir(dir_fd.get(), [&](const std::string& file,
                                          const struct stat& st) {
        if (file.size() <= suffix.size()
            || file.compare(file.size() - suffix.size(), suffix.size(), suffix)
                 != 0)
          return;
        if (file.rfind(".orch-tmp-", 0) == 0)
          return;
        if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
          return;
        names.push_back(file.substr(0, file.size() - suffix.size()));
      })) {
    error = dir().string() + ": cannot list: " + detail::errno_text(errno);
    return out;
  }
  std::sort(names.begin(), names.end());
  for (auto& name : names) {
    session_listing l;
    l.name = name;
    l.path = path_of(name);
    std::string text;
    bool absent = false;
    if (read_session_file(dir_fd.get(), name + std::string{suffix}, l.path,
                          text, l.error, absent)) {
      std::string why;
      l.session = session_from_json(text, why);
      if (!l.session)
        l.error = l.path.string() + ": not a valid session: " + why;
    }
    out.push_back(std::move(l));
  }
  return out;
}

} // namespace orch
