#include "actors/system_config.hpp"

#include <algorithm>

#include <caf/io/middleman.hpp>

#include "actors/vocabulary.hpp"

namespace orch {

std::string to_string(errc x) {
  switch (x) {
    case errc::unknown_name:
      return "unknown_name";
    case errc::invalid_request:
      return "invalid_request";
    case errc::agent_unavailable:
      return "agent_unavailable";
    case errc::workspace_failed:
      return "workspace_failed";
    case errc::workspace_locked:
      return "workspace_locked";
    case errc::unknown_run:
      return "unknown_run";
    case errc::rate_limited:
      return "rate_limited";
    case errc::session_busy:
      return "session_busy";
    case errc::session_store_failed:
      return "session_store_failed";
    case errc::version_mismatch:
      return "version_mismatch";
    case errc::node_unavailable:
      return "node_unavailable";
  }
  return "errc(" + std::to_string(static_cast<int>(x)) + ")";
}

system_config::system_config(bool deterministic, bool network,
                             std::size_t threads) {
  add_message_types<caf::id_block::orch>();
  add_error_category(caf::atom("orch"), [](uint8_t code, caf::atom_value,
                                           const caf::message& ctx) {
    auto text = to_string(static_cast<errc>(code));
    if (!ctx.empty())
      text += ": " + caf::deep_to_string(ctx);
    return text;
  });
  if (network)
    load<caf::io::middleman>();
  auto n = threads > 0 ? std::min<std::size_t>(threads, 64) : default_threads;
  set("scheduler.max-threads", static_cast<int>(n));
  // One shared queue with a condition variable: idle workers sleep instead
  // of polling (work stealing spins and naps every 50 us for a while after
  // each message, which on 2 cores takes CPU from the agents we wait for).
  set("scheduler.policy", caf::atom(deterministic ? "testing" : "sharing"));
}

} // namespace orch
