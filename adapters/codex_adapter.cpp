// The OpenAI Codex CLI adapter: `codex exec --json`, JSONL events on stdout.
//
// Checked against the installed CLI (npm @openai/codex 0.169.0, `codex-cli
// 0.169.0`), `codex exec --help`:
//   Usage: codex exec [OPTIONS] [PROMPT]
//   [PROMPT] ... If not provided as an argument (or if `-` is used),
//            instructions are read from stdin.
//   -m, --model <MODEL>        Model the agent should use
//   -s, --sandbox <SANDBOX_MODE> [possible values: read-only,
//                              workspace-write, danger-full-access]
//   --skip-git-repo-check      Allow running Codex outside a Git repository
//   --json                     Print events to stdout as JSONL
// Also run against a local HTTP stand-in: `printf -- '-dash …' | codex exec
// --json -s workspace-write --skip-git-repo-check -` sent "-dash …" as the
// user message, so the prompt goes on stdin (no 128 KiB argv limit, and a
// prompt starting with '-' is never parsed as a flag). exec's default
// sandbox is read-only: without `-s workspace-write` it exits 0, writes
// nothing and says nothing (fixtures codex/write-refused).

#include <algorithm>

#include "adapters/detail.hpp"

namespace orch::detail {

namespace {

const cli_info codex_cli{
  "codex", "run `codex login`, or set OPENAI_API_KEY or CODEX_API_KEY",
  "npm install -g @openai/codex"};

bool is_reconnect(const std::string& message) {
  auto kind = kind_for_error_text(message);
  return kind == failure_kind::transient
         && (message.find("Reconnecting") != std::string::npos
             || message.find("stream disconnected") != std::string::npos
             || message.find("network") != std::string::npos);
}

class codex_parser final : public json_lines_parser {
public:
  codex_parser() : json_lines_parser(codex_cli) {}

protected:
  void on_json(const json& j, std::vector<agent_event>& out) override {
    auto type = get_string(j, "type");
    if (type == "thread.started") {
      set_session(get_string(j, "thread_id"), out);
    } else if (type == "item.completed") {
      if (auto item = get_object(j, "item"))
        on_item(*item, out);
    } else if (type == "turn.completed") {
      final_seen_ = true;
      final_ok_ = !turn_failed_;
      if (auto u = get_object(j, "usage")) {
        orch::usage tokens;
        tokens.input_tokens = get_int(*u, "input_tokens");
        tokens.cached_tokens = get_int(*u, "cached_input_tokens");
        tokens.output_tokens = get_int(*u, "output_tokens");
        add_usage(tokens, out);
      }
      add_result(final_text_, {}, out);
    } else if (type == "turn.failed") {
      turn_failed_ = true;
      final_seen_ = true;
      final_ok_ = false;
      std::string message;
      if (auto err = get_object(j, "error"))
        message = get_string(*err, "message");
      if (message.empty())
        message = "turn failed";
      note_failure(failure_kind::none, find_http_status(message), message);
      add_result(message, "failed", out);
    } else if (type == "error") {
      auto message = get_string(j, "message");
      add_error(message, out);
      if (message.find("429") != std::string::npos
          && kind_for_error_text(message) == failure_kind::rate_limited) {
        agent_event ev;
        ev.kind = event_kind::rate_limit;
        ev.text = message;
        out.push_back(std::move(ev));
      }
    }
    // turn.started, item.started/updated, item.plan.delta and types of
    // later versions carry nothing final.
  }

  bool explain_deadline(const process_result& r, step_outcome& o) override {
    // Without a network codex never exits: it prints "Reconnecting..."
    // forever, and only a deadline ends it. That is a network problem,
    // not a slow agent.
    if (errors_.empty() || !is_reconnect(errors_.back()))
      return false;
    std::string which = r.expired == deadline_kind::total  ? "total"
                        : r.expired == deadline_kind::idle ? "idle"
                                                           : "first-output";
    set_failure(o, cli_, failure_kind::transient, 0,
                errors_.back() + "\nkept reconnecting until the " + which
                  + " deadline stopped it");
    return true;
  }

private:
  void on_item(const json& item, std::vector<agent_event>& out) {
    auto type = get_string(item, "type");
    if (type == "agent_message") {
      auto text = get_string(item, "text");
      final_text_ = text;
      agent_event ev;
      ev.kind = event_kind::text;
      ev.text = std::move(text);
      out.push_back(std::move(ev));
    } else if (type == "file_change") {
      // "failed" or "declined" patches changed nothing.
      auto status = get_string(item, "status");
      if (!status.empty() && status != "completed")
        return;
      if (auto changes = get_array(item, "changes"))
        for (const auto& change : *changes)
          add_file(get_string(change, "path"), out, get_string(change, "kind"));
    } else if (type == "command_execution") {
      tool_call("shell", get_string(item, "command"), out);
    } else if (type == "mcp_tool_call") {
      tool_call(get_string(item, "server") + "." + get_string(item, "tool"),
                get_string(item, "status"), out);
    } else if (type == "web_search") {
      tool_call("web_search", get_string(item, "query"), out);
    } else if (type == "error") {
      // Item errors are warnings of the turn ("Falling back from
      // WebSockets to HTTPS"); only turn.failed fails it.
      add_error(get_string(item, "message"), out);
    }
  }

  static void tool_call(std::string name, std::string summary,
                        std::vector<agent_event>& out) {
    agent_event ev;
    ev.kind = event_kind::tool_call;
    ev.detail = std::move(name);
    ev.text = std::move(summary);
    out.push_back(std::move(ev));
  }

  bool turn_failed_ = false;
};

class codex_adapter final : public adapter {
public:
  adapter_kind kind() const noexcept override {
    return adapter_kind::codex;
  }

  process_spec build(const agent_config& agent, const step_input& in,
                     const std::vector<std::string>& base_env) const override {
    auto spec = base_spec(agent, in, credential_vars(), base_env);
    spec.argv
      = {command_or(agent, "codex"), "exec", "--json", "-s", "workspace-write",
         "--skip-git-repo-check"};
    if (!agent.model.empty()) {
      spec.argv.push_back("-m");
      spec.argv.push_back(agent.model);
    }
    spec.argv.insert(spec.argv.end(), agent.args.begin(), agent.args.end());
    // "-": read the prompt from stdin (written, then EOF).
    spec.argv.push_back("-");
    return spec;
  }

  std::unique_ptr<output_parser> make_parser() const override {
    return std::make_unique<codex_parser>();
  }

  std::vector<std::string> credential_vars() const override {
    return {"OPENAI_API_KEY", "CODEX_API_KEY", "OPENAI_BASE_URL", "CODEX_HOME"};
  }

  auth_state probe_auth(const std::vector<std::string>& env,
                        const std::string& home) const override {
    if (env_has(env, "OPENAI_API_KEY") || env_has(env, "CODEX_API_KEY"))
      return auth_state::present;
    auto dir = env_get(env, "CODEX_HOME").value_or("");
    if (dir.empty()) {
      if (home.empty())
        return auth_state::unknown;
      dir = home + "/.codex";
    }
    auto text = read_small_file(dir + "/auth.json");
    if (!text) {
      // `cli_auth_credentials_store = "keyring"` keeps them out of files.
      auto config = read_small_file(dir + "/config.toml");
      if (config && config->find("keyring") != std::string::npos)
        return auth_state::unknown;
      return auth_state::missing;
    }
    auto j = parse_json_text(*text);
    if (!j || !j->is_object())
      return auth_state::unknown;
    if (!get_string(*j, "OPENAI_API_KEY").empty() || get_object(*j, "tokens"))
      return auth_state::present;
    return auth_state::missing;
  }
};

} // namespace

std::unique_ptr<adapter> make_codex_adapter() {
  return std::make_unique<codex_adapter>();
}

} // namespace orch::detail
