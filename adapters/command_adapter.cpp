// The `command` adapter: runs any executable. The prompt goes on stdin
// (prompt_mode::stdin_text) or replaces every "{prompt}" inside `args`
// (prompt_mode::argument). stdout is the answer; exit 0 within the
// deadlines is success.
//
// Argument mode is bounded by Linux's MAX_ARG_STRLEN: one argument may hold
// at most 128 KiB (32 pages), and argv + environ together at most ARG_MAX
// (a quarter of the stack limit, usually 2 MiB). A longer prompt makes the
// start fail with E2BIG, which is reported as an agent_error that says to
// use stdin. No shell is involved, so a prompt is never re-parsed: a
// prompt starting with '-' is still one argument, but the program's own
// option parser may read it as a flag unless its args put it after `--`
// or in `--opt={prompt}` form.

#include "adapters/detail.hpp"

namespace orch::detail {

namespace {

const cli_info command_cli{"command", "check the program's own credentials",
                           "check `command:` in the agent's config"};

/// Replaces every "{prompt}" in `arg`.
std::string substitute(const std::string& arg, const std::string& prompt) {
  static constexpr std::string_view placeholder = "{prompt}";
  std::string out;
  std::size_t pos = 0;
  for (;;) {
    auto hit = arg.find(placeholder, pos);
    if (hit == std::string::npos)
      break;
    out.append(arg, pos, hit - pos);
    out += prompt;
    pos = hit + placeholder.size();
  }
  out.append(arg, pos, std::string::npos);
  return out;
}

class command_parser final : public output_parser {
public:
  void feed(std::string_view line, std::vector<agent_event>& out) override {
    if (lines_ > 0)
      text_ += '\n';
    text_ += line;
    ++lines_;
    agent_event ev;
    ev.kind = event_kind::text;
    ev.text = std::string(line);
    out.push_back(std::move(ev));
  }

  step_outcome finish(const process_result& r) override {
    step_outcome o;
    o.exit_code = r.exit_code;
    o.truncated = r.truncated;
    // The captured stream is the whole answer; fed lines are the fallback
    // when a caller only fed lines.
    o.final_text = trim(r.out.empty() ? text_ : r.out);
    if (judge_process(r, command_cli, o))
      return o;
    if (r.exit_code == 0) {
      o.ok = true;
      return o;
    }
    // A program's exit status is its way to say it failed; nothing more
    // specific can be read from free text.
    std::string why = "exited with status " + std::to_string(r.exit_code);
    auto err = stderr_summary(r.err);
    if (!err.empty())
      why += "\nstderr: " + err;
    set_failure(o, command_cli, failure_kind::agent_error, 0, why);
    return o;
  }

private:
  std::string text_;
  std::size_t lines_ = 0;
};

class command_adapter final : public adapter {
public:
  adapter_kind kind() const noexcept override {
    return adapter_kind::command;
  }

  process_spec build(const agent_config& agent, const step_input& in,
                     const std::vector<std::string>& base_env) const override {
    auto spec = base_spec(agent, in, credential_vars(), base_env);
    spec.argv = {agent.command};
    if (agent.prompt == prompt_mode::stdin_text) {
      spec.argv.insert(spec.argv.end(), agent.args.begin(), agent.args.end());
      return spec;
    }
    bool placed = false;
    for (const auto& arg : agent.args) {
      placed = placed || arg.find("{prompt}") != std::string::npos;
      spec.argv.push_back(substitute(arg, in.prompt));
    }
    // Without a placeholder the prompt would be lost; it goes last.
    if (!placed)
      spec.argv.push_back(in.prompt);
    spec.stdin_data.reset();
    return spec;
  }

  std::unique_ptr<output_parser> make_parser() const override {
    return std::make_unique<command_parser>();
  }

  std::vector<std::string> credential_vars() const override {
    return {};
  }

  auth_state probe_auth(const std::vector<std::string>&,
                        const std::string&) const override {
    return auth_state::unknown;
  }
};

} // namespace

std::unique_ptr<adapter> make_command_adapter() {
  return std::make_unique<command_adapter>();
}

} // namespace orch::detail
