#include "actors/agent_probe.hpp"

#include <chrono>
#include <cstdlib>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/after.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/vocabulary.hpp"
#include "runtime/breaker.hpp"
#include "runtime/clock.hpp"
#include "runtime/text.hpp"

namespace orch {

namespace {

using probe_actor = caf::typed_actor<
  caf::replies_to<atom::run_step, int32_t>::with<int32_t, std::string>>;

/// Returns the first non-empty line of `--version` output, or "".
std::string probe_version(const agent_config& agent, const std::string& path,
                          process_runner& runner) {
  auto adapt = make_adapter(agent.kind);
  process_spec spec;
  spec.argv = {path, "--version"};
  spec.env = build_environment(agent, adapt->credential_vars(),
                               current_environment());
  spec.first_output_deadline = std::chrono::seconds{5};
  spec.total_deadline = std::chrono::seconds{5};
  spec.kill_grace = std::chrono::milliseconds{200};
  spec.output_cap = 64 * 1024;
  auto res = runner.run(spec, {}, nullptr);
  if (!res.clean_exit())
    return {};
  auto text = res.out.empty() ? res.err : res.out;
  size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    auto line = orch::text::trimmed(
      text.substr(pos, nl == std::string::npos ? nl : nl - pos));
    if (!line.empty())
      return text::clip(line, 80, "");
    if (nl == std::string::npos)
      break;
    pos = nl + 1;
  }
  return {};
}

probe_actor::behavior_type probe_impl(probe_actor::pointer self,
                                      agent_config agent, std::string path,
                                      std::shared_ptr<process_runner> runner) {
  return {
    [=](atom::run_step, int32_t idx) {
      auto version = probe_version(agent, path, *runner);
      self->quit();
      return std::make_tuple(idx, version);
    },
  };
}

} // namespace

std::string to_string(availability x) {
  switch (x) {
    case availability::available:
      return "available";
    case availability::not_installed:
      return "not installed";
    case availability::disabled:
      return "disabled";
    case availability::auth_required:
      return "auth required";
    case availability::error:
      return "error";
  }
  return "error";
}

std::string install_hint(adapter_kind kind) {
  switch (kind) {
    case adapter_kind::codex:
      return "npm install -g @openai/codex";
    case adapter_kind::claude:
      return "npm install -g @anthropic-ai/claude-code";
    case adapter_kind::gemini:
      return "npm install -g @google/gemini-cli";
    case adapter_kind::copilot:
      return "npm install -g @github/copilot";
    case adapter_kind::command:
      break;
  }
  return "check `command:` of the agent in the config";
}

agent_status check_agent(const agent_config& agent,
                         const std::vector<std::string>& env,
                         const std::string& home) {
  agent_status st;
  st.name = agent.name;
  st.kind = agent.kind;
  st.command = agent.command;
  st.enabled = agent.enabled;
  st.role = agent.role;
  st.path = find_executable(agent.command, env);
  st.installed = !st.path.empty();
  // Credential files and variables belong to the real CLI; a wrapper or a
  // stand-in under another name (the demo agents) has its own means.
  auto base = agent.command.substr(agent.command.find_last_of('/') + 1);
  if (base == default_command(agent.kind))
    st.auth = make_adapter(agent.kind)->probe_auth(env, home);
  if (!agent.enabled) {
    st.status = availability::disabled;
    st.detail = "enabled: false in the config";
  } else if (!st.installed) {
    st.status = availability::not_installed;
    st.detail = "`" + agent.command + "` not found on PATH; "
                + install_hint(agent.kind);
  } else if (st.auth == auth_state::missing) {
    st.status = availability::auth_required;
    st.detail = "no credentials found; log in with `" + agent.command
                + "` once or set one of its API key variables";
  } else {
    st.status = availability::available;
  }
  return st;
}

std::vector<agent_status> probe_agents(caf::actor_system& sys,
                                       const config& cfg,
                                       std::shared_ptr<process_runner> runner) {
  auto env = current_environment();
  const char* home_env = std::getenv("HOME");
  std::string home = home_env != nullptr ? home_env : "";
  std::vector<agent_status> out;
  for (auto& agent : cfg.agents)
    out.push_back(check_agent(agent, env, home));
  // One detached probe per installed agent: `--version` may block for its
  // whole deadline, and the probes should not wait for each other.
  caf::scoped_actor self{sys};
  std::vector<std::pair<size_t, probe_actor>> probes;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!out[i].installed || !out[i].enabled)
      continue;
    auto agent = cfg.agents[i];
    auto path = out[i].path;
    // Arguments rather than captures: CAF 0.17 trips UBSan when a function
    // actor is spawned without any (see tests/ubsan.supp).
    auto probe = sys.spawn<caf::detached>(probe_impl, agent, path, runner);
    probes.emplace_back(i, probe);
  }
  for (auto& [idx, probe] : probes)
    self->send(probe, atom::run_step_v, static_cast<int32_t>(idx));
  // Each probe answers within its process deadline; the bound only matters
  // when a probe dies without an answer.
  std::vector<bool> answered(out.size(), false);
  bool gave_up = false;
  for (size_t n = 0; n < probes.size() && !gave_up; ++n) {
    self->receive(
      [&](int32_t idx, std::string& version) {
        if (idx < 0 || static_cast<size_t>(idx) >= out.size())
          return;
        answered[static_cast<size_t>(idx)] = true;
        out[static_cast<size_t>(idx)].version = std::move(version);
      },
      caf::after(std::chrono::seconds{30}) >>
        [&] {
          gave_up = true;
        });
  }
  for (auto& [idx, probe] : probes) {
    auto& st = out[idx];
    if (!answered[idx])
      self->send_exit(probe, caf::exit_reason::kill);
    if (st.version.empty() && st.status == availability::available) {
      st.status = availability::error;
      st.detail = "`" + st.command + " --version` failed or timed out";
    }
  }
  return out;
}

breaker_view read_breaker(const std::filesystem::path& state_dir,
                          const std::string& agent) {
  breaker_view v;
  if (state_dir.empty())
    return v;
  std::string error;
  auto snap = load_breaker(state_dir, agent, error);
  if (!snap) {
    if (!error.empty()) {
      v.state = v.text = "unknown";
      v.reason = error;
    }
    return v;
  }
  auto now = wall_clock_ms();
  v.reason = snap->reason;
  v.open_until_ms = snap->open_until_ms;
  if (snap->state == breaker_state::open && snap->open_until_ms > now) {
    v.state = "open";
    v.text = "open until " + format_wall_time(snap->open_until_ms, now);
  } else if (snap->state != breaker_state::closed) {
    v.state = v.text = "half_open";
  } else {
    v.reason.clear();
  }
  return v;
}

nlohmann::ordered_json to_json(const agent_status& s, const breaker_view& b) {
  nlohmann::ordered_json j;
  j["name"] = s.name;
  j["adapter"] = to_string(s.kind);
  j["command"] = s.command;
  j["path"] = s.path;
  j["enabled"] = s.enabled;
  j["installed"] = s.installed;
  j["version"] = s.version;
  j["auth"] = s.auth == auth_state::present   ? "present"
              : s.auth == auth_state::missing ? "missing"
                                              : "unknown";
  j["status"] = to_string(s.status);
  j["detail"] = s.detail;
  j["role"] = s.role;
  nlohmann::ordered_json jb;
  jb["state"] = b.state;
  if (b.open_until_ms > 0 && b.state != "closed")
    jb["open_until_ms"] = b.open_until_ms;
  else
    jb["open_until_ms"] = nullptr;
  jb["reason"] = b.reason;
  j["breaker"] = std::move(jb);

  return j;
}

} // namespace orch
