#include "actors/step_plan.hpp"

namespace orch {

planned_step
plan_step(const agent_config& agent, const adapter& adapt, const step_input& in,
          const std::vector<std::string>& base_env, const settings& settings) {
  planned_step out;
  out.prompt = in.prompt;
  out.spec = adapt.build(agent, in, base_env);
  out.spec.output_cap = settings.output_cap_bytes;
  out.spec.kill_grace = settings.kill_grace;
  return out;
}

planned_step plan_step(const config& cfg, const agent_config& agent,
                       const adapter& adapt, const prompt_context& ctx,
                       const std::vector<std::string>& base_env) {
  step_input in{ctx.task_kind, render_prompt(cfg, ctx), ctx.workspace};
  return plan_step(agent, adapt, in, base_env, cfg.settings);
}

} // namespace orch
