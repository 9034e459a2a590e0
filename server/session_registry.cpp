#include "server/session_registry.hpp"

#include <utility>

namespace orch::server {

bool session_registry::add(live_session s) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto name = s.name;
  return sessions_.emplace(std::move(name), std::move(s)).second;
}

std::optional<live_session>
session_registry::find(const std::string& name) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto it = sessions_.find(name);
  if (it == sessions_.end())
    return std::nullopt;
  return it->second;
}

std::optional<live_session> session_registry::remove(const std::string& name) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto it = sessions_.find(name);
  if (it == sessions_.end())
    return std::nullopt;
  auto out = std::move(it->second);
  sessions_.erase(it);
  return out;
}

bool session_registry::update(const std::string& name,
                              std::optional<bool> conversation,
                              int64_t now_ms) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto it = sessions_.find(name);
  if (it == sessions_.end())
    return false;
  if (conversation)
    it->second.conversation = *conversation;
  it->second.updated_ms = now_ms;
  return true;
}

std::vector<live_session> session_registry::all() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<live_session> out;
  out.reserve(sessions_.size());
  for (const auto& kvp : sessions_)
    out.push_back(kvp.second);
  return out;
}

std::vector<live_session> session_registry::take_all() {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<live_session> out;
  out.reserve(sessions_.size());
  for (auto& kvp : sessions_)
    out.push_back(std::move(kvp.second));
  sessions_.clear();
  return out;
}

std::size_t session_registry::size() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return sessions_.size();
}

} // namespace orch::server
