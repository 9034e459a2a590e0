#include "runtime/breaker.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "runtime/safe_file.hpp"
#include "runtime/text.hpp"

namespace orch {

namespace {

/// Snapshots bigger than this are not ours.
constexpr size_t max_snapshot_bytes = 1 << 20;

} // namespace

std::string to_string(breaker_state x) {
  switch (x) {
    case breaker_state::closed:
      return "closed";
    case breaker_state::open:
      return "open";
    case breaker_state::half_open:
      return "half_open";
  }
  return "unknown";
}

circuit_breaker::circuit_breaker(breaker_policy policy, breaker_snapshot state)
  : policy_{policy}, state_{std::move(state)} {
  // nop
}

bool circuit_breaker::allow(int64_t now, breaker_transition* changed) {
  if (changed != nullptr)
    *changed = breaker_transition::none;
  switch (state_.state) {
    case breaker_state::closed:
      return true;
    case breaker_state::open:
      if (now < state_.open_until_ms)
        return false;
      state_.state = breaker_state::half_open;
      state_.changed_ms = now;
      trial_running_ = true;
      if (changed != nullptr)
        *changed = breaker_transition::half_opened;
      return true;
    case breaker_state::half_open:
      if (trial_running_)
        return false;
      trial_running_ = true;
      return true;
  }
  return false;
}

breaker_transition circuit_breaker::on_success(int64_t now) {
  trial_running_ = false;
  if (state_.state == breaker_state::closed)
    return breaker_transition::none;
  state_.state = breaker_state::closed;
  state_.open_until_ms = 0;
  state_.reason.clear();
  state_.failures.clear();
  state_.changed_ms = now;
  return breaker_transition::closed;
}

breaker_transition
circuit_breaker::on_failure(failure_kind kind, const std::string& why,
                            int64_t now, int64_t open_until) {
  bool was_trial = state_.state == breaker_state::half_open;
  trial_running_ = false;
  if (!counts_for_breaker(kind))
    return breaker_transition::none;
  auto text = to_string(kind) + ": " + text::first_line(why, 200);
  auto horizon = now - policy_.window.count();
  auto& fs = state_.failures;
  fs.erase(std::remove_if(fs.begin(), fs.end(),
                          [&](int64_t t) {
                            return t <= horizon;
                          }),
           fs.end());
  fs.push_back(now);
  // Bounded: only the last `failures` matter.
  if (fs.size() > static_cast<size_t>(policy_.failures))
    fs.erase(fs.begin(), fs.end() - policy_.failures);
  if (open_until > now)
    return open(std::max(open_until, state_.open_until_ms), text, now);
  if (was_trial)
    return open(now + policy_.cool_down.count(),
                "the trial step failed: " + text, now);
  if (state_.state == breaker_state::open) {
    // An attempt that started before the breaker opened.
    return breaker_transition::none;
  }
  if (fs.size() >= static_cast<size_t>(policy_.failures))
    return open(now + policy_.cool_down.count(),
                std::to_string(fs.size()) + " failure(s) within "
                  + format_wait(policy_.window.count()) + " (last: " + text
                  + ")",
                now);
  return breaker_transition::none;
}

breaker_transition circuit_breaker::open(int64_t until, std::string why,
                                         int64_t now) {
  bool was_open = state_.state == breaker_state::open;
  state_.state = breaker_state::open;
  state_.open_until_ms = until;
  state_.reason = std::move(why);
  state_.changed_ms = now;
  return was_open ? breaker_transition::none : breaker_transition::opened;
}

std::string circuit_breaker::refusal(int64_t now) const {
  if (state_.state == breaker_state::half_open)
    return "circuit half-open: a trial step is running (" + state_.reason + ")";
  return "circuit open: " + state_.reason + "; may close at "
         + format_wall_time(state_.open_until_ms, now) + " (in "
         + format_wait(state_.open_until_ms - now) + ")";
}

std::string format_wall_time(int64_t ms, int64_t now_ms) {
  auto secs = static_cast<std::time_t>(ms / 1000);
  auto now_secs = static_cast<std::time_t>(now_ms / 1000);
  std::tm tm{};
  std::tm now_tm{};
  localtime_r(&secs, &tm);
  localtime_r(&now_secs, &now_tm);
  char out[32];
  bool same_day = tm.tm_year == now_tm.tm_year && tm.tm_yday == now_tm.tm_yday;
  std::strftime(out, sizeof(out), same_day ? "%H:%M:%S" : "%Y-%m-%d %H:%M:%S",
                &tm);
  return out;
}

std::string format_wait(int64_t ms) {
  if (ms < 0)
    ms = 0;
  auto s = (ms + 999) / 1000;
  if (s < 60)
    return std::to_string(s) + "s";
  if (s < 3600)
    return std::to_string(s / 60) + "m"
           + (s % 60 ? " " + std::to_string(s % 60) + "s" : "");
  return std::to_string(s / 3600) + "h"
         + ((s % 3600) / 60 ? " " + std::to_string((s % 3600) / 60) + "m" : "");
}

std::string breaker_file(const std::string& agent) {
  return "breakers/" + plain_name(agent) + ".json";
}

bool save_breaker(const std::filesystem::path& state_dir,
                  const std::string& agent, const breaker_snapshot& snap,
                  std::string& error) {
  nlohmann::ordered_json j;
  j["agent"] = agent;
  j["state"] = to_string(snap.state);
  j["open_until_ms"] = snap.open_until_ms;
  j["reason"] = snap.reason;
  j["failures_ms"] = snap.failures;
  j["changed_ms"] = snap.changed_ms;
  std::string text;
  try {
    text = j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
           + "\n";
  } catch (const std::exception& e) {
    error = e.what();
    return false;
  }
  return write_file_atomic(state_dir, breaker_file(agent), text, error);
}

std::optional<breaker_snapshot>
load_breaker(const std::filesystem::path& state_dir, const std::string& agent,
             std::string& error) {
  auto path = state_dir / breaker_file(agent);
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT)
      error = path.string() + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::string text;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)
      || static_cast<size_t>(st.st_size) > max_snapshot_bytes) {
    ::close(fd);
    error = path.string() + ": not a breaker state file";
    return std::nullopt;
  }
  char buf[4096];
  for (;;) {
    auto n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > max_snapshot_bytes)
      break;
  }
  ::close(fd);
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    error = path.string() + ": not valid JSON";
    return std::nullopt;
  }
  breaker_snapshot snap;
  try {
    auto state = j.value("state", std::string{"closed"});
    if (state == "open")
      snap.state = breaker_state::open;
    else if (state == "half_open")
      snap.state = breaker_state::half_open;
    else if (state == "closed")
      snap.state = breaker_state::closed;
    else {
      error = path.string() + ": unknown state '" + state + "'";
      return std::nullopt;
    }
    snap.open_until_ms = j.value("open_until_ms", int64_t{0});
    snap.reason = j.value("reason", std::string{});
    snap.changed_ms = j.value("changed_ms", int64_t{0});
    if (auto it = j.find("failures_ms"); it != j.end() && it->is_array())
      for (const auto& x : *it)
        if (x.is_number_integer())
          snap.failures.push_back(x.get<int64_t>());
  } catch (const std::exception& e) {
    error = path.string() + ": " + e.what();
    return std::nullopt;
  }
  return snap;
}

} // namespace orch
