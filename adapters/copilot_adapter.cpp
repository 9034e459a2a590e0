// The GitHub Copilot CLI adapter: `copilot --output-format json`, JSONL
// session events on stdout.
//
// Checked against the installed CLI (npm @github/copilot 1.0.102, `GitHub
// Copilot CLI 1.0.102.`), `copilot --help`:
//   -p, --prompt <text>        Execute a prompt in non-interactive mode
//       --model <model>        Set the AI model to use
//       --allow-all-tools      Allow all tools to run automatically without
//                              confirmation; required for non-interactive
//                              mode.
//       --output-format <format>  Output format: 'text' (default) or 'json'
//                              (JSONL, one JSON object per line)
//       --no-auto-update       Disable downloading CLI updates
//                              automatically.
//   --fleet ... combine with -i, -p, or piped stdin
// and `copilot help environment` (COPILOT_GITHUB_TOKEN, GH_TOKEN,
// GITHUB_TOKEN in order of precedence; COPILOT_HOME defaults to
// $HOME/.copilot). Run against a local HTTP stand-in (BYOK provider),
// `printf -- '-dash …' | copilot --no-auto-update --output-format json
// --allow-all-tools` ran non-interactively and sent "-dash …" as the
// user.message: the prompt goes on stdin (no 128 KiB argv limit, never a
// flag). Without --allow-all-tools a write is denied and the run still
// exits 0 (fixtures copilot/write-refused).

#include <map>

#include "adapters/detail.hpp"

namespace orch::detail {

namespace {

const cli_info copilot_cli{
  "copilot",
  "run `copilot` once and /login, or set COPILOT_GITHUB_TOKEN or GH_TOKEN",
  "npm install -g @github/copilot"};

bool is_edit_tool(const std::string& name) {
  return name == "edit" || name == "create" || name == "write"
         || name == "str_replace_editor" || name == "str_replace"
         || name == "write_file";
}

failure_kind kind_for_error_type(const std::string& type) {
  if (type == "authentication")
    return failure_kind::not_authenticated;
  if (type == "rate_limit")
    return failure_kind::rate_limited;
  return failure_kind::none;
}

class copilot_parser final : public json_lines_parser {
public:
  copilot_parser() : json_lines_parser(copilot_cli) {}

protected:
  void on_json(const json& j, std::vector<agent_event>& out) override {
    auto type = get_string(j, "type");
    static const json empty = json::object();
    const json* data = get_object(j, "data");
    if (!data)
      data = &empty;
    if (type == "assistant.message") {
      auto content = get_string(*data, "content");
      // Tool-request messages have empty content; the answer is the last
      // message with text.
      if (content.empty())
        return;
      final_text_ = content;
      agent_event ev;
      ev.kind = event_kind::text;
      ev.text = std::move(content);
      out.push_back(std::move(ev));
    } else if (type == "tool.execution_start") {
      on_tool_start(*data, out);
    } else if (type == "tool.execution_complete") {
      on_tool_complete(*data, out);
    } else if (type == "session.error") {
      auto message = get_string(*data, "message");
      add_error(message, out);
      note_failure(kind_for_error_type(get_string(*data, "errorType")),
                   static_cast<int>(get_int(*data, "statusCode")), message);
    } else if (type == "model.call_failure") {
      // Ephemeral, but the only place some statuses appear.
      note_failure(failure_kind::none,
                   static_cast<int>(get_int(*data, "statusCode")), {});
    } else if (type == "assistant.turn_retry") {
      if (get_string(*data, "reason") == "rate_limit") {
        agent_event ev;
        ev.kind = event_kind::rate_limit;
        ev.text = "rate limited; copilot retries";
        out.push_back(std::move(ev));
      }
    } else if (type == "result") {
      on_result(j, out);
    } else if (type == "session.start") {
      set_session(get_string(*data, "sessionId"), out);
    }
    // Deltas, background-task and telemetry events carry nothing final.
  }

  bool needs_final_text() const override {
    return true;
  }

private:
  void on_tool_start(const json& data, std::vector<agent_event>& out) {
    auto name = get_string(data, "toolName");
    std::string summary;
    std::vector<std::string> paths;
    if (auto args = get_object(data, "arguments")) {
      for (const char* key : {"path", "file_path", "command"}) {
        summary = get_string(*args, key);
        if (!summary.empty())
          break;
      }
      if (is_edit_tool(name)) {
        auto path = get_string(*args, "path");
        paths.push_back(path.empty() ? get_string(*args, "file_path") : path);
      }
    }
    // A shell command that redirects into files: copilot names them.
    if (auto shell = get_object(data, "shellToolInfo"))
      if (get_bool(*shell, "hasWriteFileRedirection"))
        if (auto possible = get_array(*shell, "possiblePaths"))
          for (const auto& p : *possible)
            if (p.is_string())
              paths.push_back(p.get<std::string>());
    if (!paths.empty())
      pending_[get_string(data, "toolCallId")] = {paths, name};
    agent_event ev;
    ev.kind = event_kind::tool_call;
    ev.detail = name;
    ev.text = summary;
    out.push_back(std::move(ev));
  }

  void on_tool_complete(const json& data, std::vector<agent_event>& out) {
    auto it = pending_.find(get_string(data, "toolCallId"));
    bool success = get_bool(data, "success");
    if (it != pending_.end()) {
      if (success)
        for (const auto& path : it->second.paths)
          add_file(path, out, it->second.tool);
      pending_.erase(it);
    }
    if (!success)
      if (auto err = get_object(data, "error"))
        if (get_string(*err, "code") == "denied")
          add_error(get_string(*err, "message"), out);
  }

  void on_result(const json& j, std::vector<agent_event>& out) {
    set_session(get_string(j, "sessionId"), out);
    final_seen_ = true;
    auto exit_code = get_int(j, "exitCode", -1);
    final_ok_ = exit_code == 0;
    if (!final_ok_ && failure_.message.empty() && errors_.empty())
      note_failure(failure_kind::none, 0,
                   "result exitCode " + std::to_string(exit_code));
    if (auto u = get_object(j, "usage"))
      if (auto changes = get_object(*u, "codeChanges"))
        if (auto files = get_array(*changes, "filesModified"))
          for (const auto& f : *files)
            if (f.is_string())
              add_file(f.get<std::string>(), out);
    add_result(final_text_, final_ok_ ? "success" : "error", out);
  }

  struct pending_write {
    std::vector<std::string> paths;
    std::string tool;
  };
  /// Edit/create/redirecting shell calls by toolCallId, until complete.
  std::map<std::string, pending_write> pending_;
};

class copilot_adapter final : public adapter {
public:
  adapter_kind kind() const noexcept override {
    return adapter_kind::copilot;
  }

  process_spec build(const agent_config& agent, const step_input& in,
                     const std::vector<std::string>& base_env) const override {
    auto spec = base_spec(agent, in, credential_vars(), base_env);
    // No -p: with stdin a pipe copilot runs the stdin text
    // non-interactively.
    spec.argv = {command_or(agent, "copilot"), "--output-format", "json",
                 "--allow-all-tools", "--no-auto-update"};
    if (!agent.model.empty()) {
      spec.argv.push_back("--model");
      spec.argv.push_back(agent.model);
    }
    spec.argv.insert(spec.argv.end(), agent.args.begin(), agent.args.end());
    return spec;
  }

  std::unique_ptr<output_parser> make_parser() const override {
    return std::make_unique<copilot_parser>();
  }

  std::vector<std::string> credential_vars() const override {
    return {"COPILOT_GITHUB_TOKEN", "GH_TOKEN",        "GITHUB_TOKEN",
            "COPILOT_HOME",         "COPILOT_GH_HOST", "GH_HOST"};
  }

  auth_state probe_auth(const std::vector<std::string>& env,
                        const std::string& home) const override {
    if (env_has(env, "COPILOT_GITHUB_TOKEN") || env_has(env, "GH_TOKEN")
        || env_has(env, "GITHUB_TOKEN"))
      return auth_state::present;
    // A custom model provider (BYOK) needs no GitHub account.
    if (env_has(env, "COPILOT_PROVIDER_BASE_URL"))
      return auth_state::present;
    auto dir = env_get(env, "COPILOT_HOME").value_or("");
    if (dir.empty() && !home.empty())
      dir = home + "/.copilot";
    if (dir.empty())
      return auth_state::unknown;
    if (auto text = read_small_file(dir + "/config.json")) {
      // The file starts with // comments.
      auto j = parse_json_text(*text);
      if (!j || !j->is_object())
        return auth_state::unknown;
      auto users = get_array(*j, "logged_in_users");
      if ((users && !users->empty()) || get_object(*j, "last_logged_in_user"))
        return auth_state::present;
    }
    // Copilot falls back to the GitHub CLI's login.
    std::string gh = env_get(env, "GH_CONFIG_DIR").value_or("");
    if (gh.empty()) {
      auto xdg = env_get(env, "XDG_CONFIG_HOME").value_or("");
      gh = !xdg.empty()   ? xdg + "/gh"
           : home.empty() ? ""
                          : home + "/.config/gh";
    }
    if (!gh.empty())
      if (auto hosts = read_small_file(gh + "/hosts.yml"))
        if (hosts->find("github.com") != std::string::npos
            || hosts->find("oauth_token") != std::string::npos)
          return auth_state::present;
    return auth_state::missing;
  }
};

} // namespace

std::unique_ptr<adapter> make_copilot_adapter() {
  return std::make_unique<copilot_adapter>();
}

} // namespace orch::detail
