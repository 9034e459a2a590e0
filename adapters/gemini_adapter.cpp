// The Gemini CLI adapter: `gemini -o stream-json`, JSONL events on stdout.
//
// Checked against the installed CLI (npm @google/gemini-cli 0.61.0,
// `gemini --version` 0.61.0), `gemini --help`:
//   -m, --model                Model  [string]
//   -p, --prompt               Run in non-interactive (headless) mode with
//                              the given prompt. Appended to input on stdin
//                              (if any).  [string]
//       --skip-trust           Trust the current workspace for this session.
//       --approval-mode        ... auto_edit (auto-approve edit tools) ...
//                              [choices: "default", "auto_edit", "yolo",
//                              "plan"]
//   -o, --output-format        [choices: "text", "json", "stream-json"]
// Run against a local HTTP stand-in: with stdin a pipe and no -p/query,
// `printf -- '-dash …' | gemini -o stream-json --approval-mode auto_edit
// --skip-trust` runs headless and echoes "-dash …" as the user message, so
// the prompt goes on stdin (no 128 KiB argv limit, never parsed as a flag).
// Without --skip-trust (or GEMINI_CLI_TRUST_WORKSPACE=true) it exits 55 in
// an untrusted directory and overrides auto_edit to "default"; in the
// default mode its write tools are not even offered (fixtures
// gemini/write-refused).

#include <map>

#include "adapters/detail.hpp"

namespace orch::detail {

namespace {

const cli_info gemini_cli{
  "gemini",
  "set GEMINI_API_KEY, or run `gemini` once and choose an auth method "
  "(~/.gemini/settings.json)",
  "npm install -g @google/gemini-cli"};

bool is_gemini_write_tool(const std::string& name) {
  return name == "write_file" || name == "replace" || name == "edit";
}

/// Gemini exits with the HTTP status of a failed API call mod 256.
int status_from_exit(int exit_code) {
  if (exit_code <= 0)
    return 0;
  for (int status : {400, 401, 403, 404, 408, 429, 500, 502, 503, 504})
    if (exit_code == status % 256)
      return status;
  return 0;
}

class gemini_parser final : public json_lines_parser {
public:
  gemini_parser() : json_lines_parser(gemini_cli) {}

protected:
  void on_json(const json& j, std::vector<agent_event>& out) override {
    auto type = get_string(j, "type");
    if (type == "init") {
      set_session(get_string(j, "session_id"), out);
    } else if (type == "message") {
      if (get_string(j, "role") != "assistant")
        return;
      agent_event ev;
      ev.kind = event_kind::text;
      ev.text = get_string(j, "content");
      // Deltas are pieces of one answer; a whole message replaces it.
      if (get_bool(j, "delta"))
        final_text_ += ev.text;
      else
        final_text_ = ev.text;
      out.push_back(std::move(ev));
    } else if (type == "tool_use") {
      auto name = get_string(j, "tool_name");
      std::string summary;
      if (auto params = get_object(j, "parameters")) {
        for (const char* key : {"file_path", "absolute_path", "command",
                                "pattern", "dir_path", "path"}) {
          summary = get_string(*params, key);
          if (!summary.empty())
            break;
        }
        if (is_gemini_write_tool(name))
          pending_[get_string(j, "tool_id")]
            = {get_string(*params, "file_path"), name};
      }
      agent_event ev;
      ev.kind = event_kind::tool_call;
      ev.detail = name;
      ev.text = summary;
      out.push_back(std::move(ev));
    } else if (type == "tool_result") {
      auto it = pending_.find(get_string(j, "tool_id"));
      if (it == pending_.end())
        return;
      if (get_string(j, "status") == "success")
        add_file(it->second.path, out, it->second.tool);
      pending_.erase(it);
    } else if (type == "error") {
      auto message = get_string(j, "message");
      add_error(message, out);
      if (get_string(j, "severity") != "warning")
        note_failure(failure_kind::none, find_http_status(message), message);
    } else if (type == "result") {
      on_result(j, out);
    }
  }

  void explain_exit(const process_result& r, failure_info& info) override {
    if (r.exit_code == 41) {
      // FatalAuthenticationError: nothing on stdout, the reason on stderr.
      info.kind = failure_kind::not_authenticated;
      if (info.message.empty())
        info.message = stderr_summary(r.err);
      return;
    }
    if (r.exit_code == 55 && info.message.empty()) {
      info.kind = failure_kind::agent_error;
      info.message = "the working directory is not trusted (exit 55); pass "
                     "--skip-trust or set GEMINI_CLI_TRUST_WORKSPACE=true";
      return;
    }
    if (info.http_status == 0)
      info.http_status = status_from_exit(r.exit_code);
  }

private:
  void on_result(const json& j, std::vector<agent_event>& out) {
    final_seen_ = true;
    final_ok_ = get_string(j, "status") == "success";
    if (!final_ok_) {
      std::string message;
      if (auto err = get_object(j, "error"))
        message = get_string(*err, "message");
      note_failure(failure_kind::none, find_http_status(message),
                   message.empty() ? "status " + get_string(j, "status")
                                   : message);
    }
    if (auto stats = get_object(j, "stats")) {
      orch::usage tokens;
      tokens.input_tokens = get_int(*stats, "input_tokens");
      tokens.output_tokens = get_int(*stats, "output_tokens");
      tokens.cached_tokens = get_int(*stats, "cached");
      add_usage(tokens, out);
    }
    add_result(final_ok_ ? final_text_ : failure_.message,
               get_string(j, "status"), out);
  }

  struct pending_write {
    std::string path;
    std::string tool;
  };
  /// write_file/replace calls by tool_id, waiting for their result.
  std::map<std::string, pending_write> pending_;
};

class gemini_adapter final : public adapter {
public:
  adapter_kind kind() const noexcept override {
    return adapter_kind::gemini;
  }

  process_spec build(const agent_config& agent, const step_input& in,
                     const std::vector<std::string>& base_env) const override {
    auto spec = base_spec(agent, in, credential_vars(), base_env);
    // No -p: with stdin a pipe gemini runs headless on the stdin text.
    spec.argv = {command_or(agent, "gemini"), "-o",        "stream-json",
                 "--approval-mode",           "auto_edit", "--skip-trust"};
    if (!agent.model.empty()) {
      spec.argv.push_back("-m");
      spec.argv.push_back(agent.model);
    }
    spec.argv.insert(spec.argv.end(), agent.args.begin(), agent.args.end());
    return spec;
  }

  std::unique_ptr<output_parser> make_parser() const override {
    return std::make_unique<gemini_parser>();
  }

  std::vector<std::string> credential_vars() const override {
    return {"GEMINI_API_KEY",
            "GOOGLE_API_KEY",
            "GOOGLE_GENAI_USE_VERTEXAI",
            "GOOGLE_CLOUD_PROJECT",
            "GOOGLE_CLOUD_LOCATION",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "GOOGLE_GEMINI_BASE_URL",
            "GEMINI_CLI_TRUST_WORKSPACE"};
  }

  auth_state probe_auth(const std::vector<std::string>& env,
                        const std::string& home) const override {
    if (env_has(env, "GEMINI_API_KEY") || env_has(env, "GOOGLE_API_KEY"))
      return auth_state::present;
    if (env_has(env, "GOOGLE_GENAI_USE_VERTEXAI")
        && env_has(env, "GOOGLE_CLOUD_PROJECT"))
      return auth_state::present;
    if (home.empty())
      return auth_state::unknown;
    bool oauth = file_exists(home + "/.gemini/oauth_creds.json");
    auto text = read_small_file(home + "/.gemini/settings.json");
    if (!text)
      return oauth ? auth_state::present : auth_state::missing;
    auto j = parse_json_text(*text);
    if (!j || !j->is_object())
      return auth_state::unknown;
    std::string selected;
    if (auto security = get_object(*j, "security"))
      if (auto auth = get_object(*security, "auth"))
        selected = get_string(*auth, "selectedType");
    if (selected.empty())
      selected = get_string(*j, "selectedAuthType"); // older layout
    if (selected.empty())
      return oauth ? auth_state::present : auth_state::missing;
    if (selected == "oauth-personal")
      return oauth ? auth_state::present : auth_state::missing;
    if (selected == "gemini-api-key") {
      // The key may also sit in ~/.gemini/.env.
      auto dotenv = read_small_file(home + "/.gemini/.env");
      if (dotenv && dotenv->find("GEMINI_API_KEY=") != std::string::npos)
        return auth_state::present;
      return auth_state::missing;
    }
    // vertex-ai, compute-default-credentials, cloud-shell: credentials
    // live outside what we can read cheaply.
    return auth_state::unknown;
  }
};

} // namespace

std::unique_ptr<adapter> make_gemini_adapter() {
  return std::make_unique<gemini_adapter>();
}

} // namespace orch::detail
