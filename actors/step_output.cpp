#include "actors/step_output.hpp"

#include <algorithm>

#include "runtime/safe_file.hpp"
#include "runtime/text.hpp"
#include "runtime/workspace.hpp"

namespace orch {

std::string output_excerpt(std::string_view text, std::size_t head,
                           std::size_t tail, std::string_view note) {
  return text::head_and_tail(text, head, tail, [&](std::size_t n) {
    return "\n…[" + std::to_string(n) + " bytes omitted; " + std::string{note}
           + "]…\n";
  });
}

std::string output_file_name(const std::string& run_id, int32_t iteration,
                             int32_t step, std::size_t item,
                             const std::string& agent) {
  return std::string{workspace_meta_dir} + "/outputs/" + plain_name(run_id)
         + "/i" + std::to_string(iteration) + "-s" + std::to_string(step) + "-"
         + std::to_string(item) + "-" + plain_name(agent) + ".txt";
}

bool offload_output(step_result& res, const std::filesystem::path& workspace,
                    const std::string& run_id, std::size_t item,
                    std::string& error, std::size_t max_inline) {
  if (!output_too_long(res, max_inline))
    return true;
  auto& text = res.outcome.final_text;
  auto head = std::min(output_excerpt_head, max_inline / 2);
  auto tail = std::min(output_excerpt_tail, max_inline - head);
  auto rel = output_file_name(run_id, res.iteration, res.step_index + 1,
                              item + 1, res.agent);
  bool ok = write_file_atomic(workspace, rel, text, error);
  std::string note;
  if (ok) {
    res.output_file = rel;
    note = "whole output in " + rel;
  } else {
    note = "the whole output could not be saved: " + error;
  }
  text = output_excerpt(text, head, tail, note);
  return ok;
}

} // namespace orch
