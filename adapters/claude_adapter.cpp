// The Claude Code adapter: `claude -p --output-format stream-json
// --verbose`, NDJSON events on stdout.
//
// Checked against the installed CLI (npm @anthropic-ai/claude-code 2.1.330,
// `2.1.330 (Claude Code)`), `claude --help`:
//   Usage: claude [options] [command] [prompt]
//   -p, --print               Print response and exit (useful for pipes).
//   --output-format <format>  Output format (only works with --print):
//                             "text" (default), "json" (single result), or
//                             "stream-json" (realtime streaming)
//   --verbose                 Override the verbose setting
//   --permission-mode <mode>  (choices: "acceptEdits", "auto",
//                             "bypassPermissions", "manual", "dontAsk",
//                             "plan")
//   --model <model>           Model for the current session.
// stream-json without --verbose exits 1; bypassPermissions and
// --dangerously-skip-permissions exit 1 as root, so acceptEdits it is
// (writes in the working directory, fixtures claude/write-allowed). Run
// against a local HTTP stand-in, `printf -- '-dash …' | claude -p
// --output-format stream-json --verbose --permission-mode acceptEdits`
// sent "-dash …" as the user message and init said permissionMode
// "acceptEdits": the prompt goes on stdin (no 128 KiB argv limit, a prompt
// starting with '-' is never a flag).

#include <cstdlib>
#include <map>

#include "adapters/detail.hpp"

namespace orch::detail {

namespace {

const cli_info claude_cli{
  "claude", "run `claude` once and /login, or set ANTHROPIC_API_KEY",
  "npm install -g @anthropic-ai/claude-code"};

/// The tools whose input names a file they write.
bool is_claude_write_tool(const std::string& name) {
  return name == "Write" || name == "Edit" || name == "MultiEdit"
         || name == "NotebookEdit";
}

/// Maps the `error` field of an API-error assistant line to a kind.
failure_kind kind_for_claude_error(const std::string& error) {
  if (error == "authentication_failed")
    return failure_kind::not_authenticated;
  if (error == "rate_limit")
    return failure_kind::rate_limited;
  if (error == "server_error" || error == "overloaded")
    return failure_kind::transient;
  return kind_for_error_text(error);
}

std::string tool_summary(const json& input) {
  for (const char* key : {"file_path", "notebook_path", "command", "pattern",
                          "url", "path", "description"}) {
    auto value = get_string(input, key);
    if (!value.empty())
      return value;
  }
  return {};
}

class claude_parser final : public json_lines_parser {
public:
  claude_parser() : json_lines_parser(claude_cli) {}

protected:
  void on_json(const json& j, std::vector<agent_event>& out) override {
    // Every line carries the session id; init is only the first.
    set_session(get_string(j, "session_id"), out);
    auto type = get_string(j, "type");
    if (type == "system") {
      on_system(j, out);
    } else if (type == "assistant") {
      on_assistant(j, out);
    } else if (type == "user") {
      on_user(j, out);
    } else if (type == "rate_limit_event") {
      on_rate_limit(j, out);
    } else if (type == "result") {
      on_result(j, out);
    }
    // stream_event (partial deltas) repeats what assistant lines say;
    // other types are newer additions we need not read.
  }

private:
  void on_system(const json& j, std::vector<agent_event>& out) {
    if (get_string(j, "subtype") != "permission_denied")
      return;
    // The write was refused: its tool_use must not count as a change.
    pending_.erase(get_string(j, "tool_use_id"));
    auto message = get_string(j, "message");
    add_error(message.empty()
                ? "permission denied: " + get_string(j, "tool_name")
                : message,
              out);
  }

  void on_assistant(const json& j, std::vector<agent_event>& out) {
    auto message = get_object(j, "message");
    if (!message)
      return;
    std::string text;
    if (auto content = get_array(*message, "content"))
      for (const auto& part : *content) {
        auto type = get_string(part, "type");
        if (type == "text") {
          agent_event ev;
          ev.kind = event_kind::text;
          ev.text = get_string(part, "text");
          text += ev.text;
          out.push_back(std::move(ev));
        } else if (type == "tool_use") {
          auto name = get_string(part, "name");
          std::string summary;
          if (auto input = get_object(part, "input")) {
            summary = tool_summary(*input);
            if (is_claude_write_tool(name))
              pending_[get_string(part, "id")] = {summary, name};
          }
          agent_event ev;
          ev.kind = event_kind::tool_call;
          ev.detail = name;
          ev.text = summary;
          out.push_back(std::move(ev));
        }
      }
    // A synthetic assistant line reports API errors before the result.
    auto error = get_string(j, "error");
    if (!error.empty() || get_bool(j, "is_api_error_message")) {
      int status = static_cast<int>(get_int(j, "api_error_status"));
      note_failure(kind_for_claude_error(error), status,
                   text.empty() ? error : text);
      add_error(text.empty() ? error : text, out);
    } else if (!text.empty()) {
      // The result line repeats the last answer; until it arrives (or if
      // it never does) the last assistant text stands in.
      final_text_ = text;
    }
  }

  void on_user(const json& j, std::vector<agent_event>& out) {
    auto message = get_object(j, "message");
    if (!message)
      return;
    auto content = get_array(*message, "content");
    if (!content)
      return;
    for (const auto& part : *content) {
      if (get_string(part, "type") != "tool_result")
        continue;
      auto it = pending_.find(get_string(part, "tool_use_id"));
      if (it == pending_.end())
        continue;
      // Only a write that came back without error changed the file.
      if (!get_bool(part, "is_error"))
        add_file(it->second.path, out, it->second.tool);
      pending_.erase(it);
    }
  }

  void on_rate_limit(const json& j, std::vector<agent_event>& out) {
    auto info = get_object(j, "rate_limit_info");
    if (!info)
      return;
    auto status = get_string(*info, "status");
    if (status.empty() || status == "allowed")
      return;
    if (status == "rejected") {
      rate_rejected_ = true;
      // Seen in seconds and in milliseconds since the epoch.
      auto reset = info->find("resetsAt");
      if (reset != info->end()) {
        double value = 0;
        if (reset->is_number())
          value = reset->get<double>();
        else if (reset->is_string())
          value = std::atof(reset->get<std::string>().c_str());
        if (auto ms = epoch_to_ms(value))
          retry_at_ms_ = ms;
      }
    }
    agent_event ev;
    ev.kind = event_kind::rate_limit;
    ev.text = status;
    auto type = get_string(*info, "rateLimitType");
    if (!type.empty())
      ev.text += " (" + type + ")";
    ev.detail = type;
    out.push_back(std::move(ev));
  }

  void on_result(const json& j, std::vector<agent_event>& out) {
    final_seen_ = true;
    // A failed run still says subtype "success"; is_error is what counts.
    auto subtype = get_string(j, "subtype");
    bool is_error = get_bool(j, "is_error", subtype != "success");
    final_ok_ = !is_error;
    auto text = get_string(j, "result");
    if (final_ok_) {
      final_text_ = text;
    } else {
      std::string message = text;
      if (auto errors = get_array(j, "errors"))
        for (const auto& e : *errors)
          if (e.is_string())
            message += (message.empty() ? "" : "\n") + e.get<std::string>();
      if (message.empty())
        message = subtype;
      int status = static_cast<int>(get_int(j, "api_error_status"));
      note_failure(failure_kind::none, status, message);
    }
    orch::usage tokens;
    if (auto u = get_object(j, "usage")) {
      tokens.cached_tokens = get_int(*u, "cache_read_input_tokens");
      tokens.input_tokens = get_int(*u, "input_tokens")
                            + get_int(*u, "cache_creation_input_tokens")
                            + tokens.cached_tokens;
      tokens.output_tokens = get_int(*u, "output_tokens");
    }
    auto cost = j.find("total_cost_usd");
    if (cost != j.end() && cost->is_number()) {
      tokens.cost_usd = cost->get<double>();
      tokens.has_cost = true;
    }
    add_usage(tokens, out);
    add_result(text, final_ok_ ? "success" : "error", out);
  }

  struct pending_write {
    std::string path;
    std::string tool;
  };
  /// Write/Edit tool calls by tool_use id, waiting for their result.
  std::map<std::string, pending_write> pending_;
};

class claude_adapter final : public adapter {
public:
  adapter_kind kind() const noexcept override {
    return adapter_kind::claude;
  }

  process_spec build(const agent_config& agent, const step_input& in,
                     const std::vector<std::string>& base_env) const override {
    auto spec = base_spec(agent, in, credential_vars(), base_env);
    // No prompt argument: `claude -p` reads it from stdin.
    spec.argv = {command_or(agent, "claude"),
                 "-p",
                 "--output-format",
                 "stream-json",
                 "--verbose",
                 "--permission-mode",
                 "acceptEdits"};
    if (!agent.model.empty()) {
      spec.argv.push_back("--model");
      spec.argv.push_back(agent.model);
    }
    spec.argv.insert(spec.argv.end(), agent.args.begin(), agent.args.end());
    return spec;
  }

  std::unique_ptr<output_parser> make_parser() const override {
    return std::make_unique<claude_parser>();
  }

  std::vector<std::string> credential_vars() const override {
    return {"ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL",
            "CLAUDE_CODE_OAUTH_TOKEN", "CLAUDE_CONFIG_DIR"};
  }

  auth_state probe_auth(const std::vector<std::string>& env,
                        const std::string& home) const override {
    if (env_has(env, "ANTHROPIC_API_KEY")
        || env_has(env, "ANTHROPIC_AUTH_TOKEN")
        || env_has(env, "CLAUDE_CODE_OAUTH_TOKEN"))
      return auth_state::present;
    auto dir = env_get(env, "CLAUDE_CONFIG_DIR").value_or("");
    if (dir.empty()) {
      if (home.empty())
        return auth_state::unknown;
      dir = home + "/.claude";
    }
    if (file_exists(dir + "/.credentials.json"))
      return auth_state::present;
    // macOS keeps the OAuth token in the keychain; ~/.claude.json then
    // still names the logged-in account.
    if (!home.empty())
      if (auto text = read_small_file(home + "/.claude.json")) {
        auto j = parse_json_text(*text);
        if (!j)
          return auth_state::unknown;
        if (get_object(*j, "oauthAccount"))
          return auth_state::present;
      }
    return auth_state::missing;
  }
};

} // namespace

std::unique_ptr<adapter> make_claude_adapter() {
  return std::make_unique<claude_adapter>();
}

} // namespace orch::detail
