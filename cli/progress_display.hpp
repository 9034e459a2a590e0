#pragma once

#include <cstdio>
#include <map>
#include <string>

#include <caf/typed_event_based_actor.hpp>

#include "actors/vocabulary.hpp"
#include "cli/terminal.hpp"

namespace orch::cli {

/// The live progress view of `run`: a progress_sink that prints one line per
/// step (plain lines when not a terminal) and, on a terminal, a status line
/// with the running steps and the elapsed time.
using display_actor
  = progress_sink::extend<caf::reacts_to<atom::tick>,
                          caf::replies_to<atom::flush>::with<bool>>;

struct display_state {
  static inline const char* name = "orch.cli.display";

  std::FILE* out = stdout;
  terminal term;
  bool verbose = false;
  bool ticking = false;
  bool finished = false;
  size_t frame = 0;
  struct running_step {
    std::string label;
    /// Run-relative start time (ms).
    int64_t start = 0;
  };
  /// Running steps by a key unique within the step.
  std::map<std::string, running_step> running;
  int32_t iteration = 0;
  int32_t step_count = 0;
  int64_t last_elapsed = 0;
  std::chrono::steady_clock::time_point last_event;
};

display_actor::behavior_type
display_impl(display_actor::stateful_pointer<display_state> self,
             std::FILE* out, bool verbose);

} // namespace orch::cli
