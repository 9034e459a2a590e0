// The built-in default configuration, used when no config file is found. It
// mirrors the original's config/agents.yaml (same agents, roles and
// workflows); examples/ai-orchestrator.yaml spells the same thing out as YAML.

#include "config/config.hpp"

#include <initializer_list>
#include <utility>

namespace orch {

namespace {

agent_config make_agent(adapter_kind kind, std::string role,
                        std::string description) {
  agent_config a;
  a.name = to_string(kind);
  a.kind = kind;
  // A bare name: the runtime looks it up on PATH.
  a.command = to_string(kind);
  a.role = std::move(role);
  a.description = std::move(description);
  // The header's defaults (first output 180 s, idle 300 s, total 1800 s):
  // a slow model may think for minutes before its first byte, and codex
  // never exits on its own when the network is down, so only the idle and
  // total deadlines end such a run.
  a.limits = deadlines{};
  return a;
}

step_config single(std::string agent, std::string task,
                   std::string description) {
  step_config s;
  s.items.push_back(
    step_item{std::move(agent), std::move(task), std::move(description)});
  return s;
}

workflow_config make_workflow(std::string name, std::string description,
                              int32_t max_iterations,
                              std::initializer_list<step_config> steps) {
  workflow_config w;
  w.name = std::move(name);
  w.description = std::move(description);
  w.max_iterations = max_iterations;
  w.min_suggestions_threshold = settings{}.min_suggestions_threshold;
  w.steps = steps;
  return w;
}

} // namespace

const std::vector<std::string>& builtin_task_kinds() {
  // `suggestions` is the original's copilot task; the rest are its prompts.
  static const std::vector<std::string> kinds{
    "implement", "review",          "refine",     "test",
    "document",  "security_review", "suggestions"};
  return kinds;
}

config builtin_config() {
  config cfg;
  cfg.source = "built-in";
  cfg.agents.push_back(make_agent(adapter_kind::codex, "implementation",
                                  "Writes the initial implementation"));
  cfg.agents.push_back(make_agent(adapter_kind::gemini, "review",
                                  "Reviews code for quality and bugs"));
  cfg.agents.push_back(make_agent(adapter_kind::claude, "refinement",
                                  "Refines code based on review feedback"));
  // The original ships copilot disabled, but its `thorough` workflow uses
  // it and silently skips the step. Here a step naming a disabled agent
  // loads with a warning and `run` refuses the workflow, so copilot is
  // enabled to keep `thorough` runnable.
  cfg.agents.push_back(make_agent(adapter_kind::copilot, "suggestions",
                                  "Suggests improvements and alternatives"));

  cfg.workflows.push_back(make_workflow(
    "default", "Implement, review and refine until the review is clean", 3,
    {single("codex", "implement", "Initial implementation"),
     single("gemini", "review", "Review the implementation"),
     single("claude", "refine", "Address the review findings")}));
  cfg.workflows.push_back(
    make_workflow("quick", "One implementation pass, no review", 1,
                  {single("codex", "implement", "Implementation")}));
  cfg.workflows.push_back(make_workflow(
    "thorough", "Implementation with suggestions and two reviews", 5,
    {single("codex", "implement", "Initial implementation"),
     single("copilot", "suggestions", "Suggest improvements"),
     single("gemini", "review", "Review the implementation"),
     single("claude", "refine", "Address the review findings"),
     single("gemini", "review", "Final review")}));
  cfg.workflows.push_back(
    make_workflow("review-only", "Review and refine existing code", 2,
                  {single("gemini", "review", "Review the existing code"),
                   single("claude", "refine", "Address the review findings")}));
  cfg.workflows.push_back(
    make_workflow("document", "Write documentation, then review it", 2,
                  {single("claude", "document", "Write the documentation"),
                   single("gemini", "review", "Review the documentation")}));
  return cfg;
}

} // namespace orch
