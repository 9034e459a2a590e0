#pragma once

// Blocking work (files, copies, listings) off the scheduler's threads: a
// job runs on a worker of its own and its end comes back to the actor that
// asked as a message, so no actor ever waits on the disk.

#include <functional>
#include <string>

#include <caf/spawn_options.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/vocabulary.hpp"

namespace orch {

/// A one-shot worker that runs one blocking job and answers "" or an error
/// text (an exception's what()).
using blocking_worker
  = caf::typed_actor<caf::replies_to<atom::run_task>::with<std::string>>;

/// Returns the behaviour of a blocking_worker running `work` once.
blocking_worker::behavior_type
blocking_worker_impl(blocking_worker::pointer self, std::function<void()> work);

/// Runs `work` on a one-shot detached actor (its own thread; in-line on the
/// caller's scheduler when `detached` is false, for deterministic tests) and
/// calls `then` with "" once it is done, or with the reason when it failed
/// or its worker died. `work` hands results back through what it captures
/// (shared pointers): `then` runs after it returned. Never waits forever:
/// the worker's death answers the request with an error.
template<class Self>
void run_blocking(Self self, bool detached, std::function<void()> work,
                  std::function<void(const std::string&)> then) {
  blocking_worker worker;
  if (detached)
    worker = self->template spawn<caf::detached>(blocking_worker_impl,
                                                 std::move(work));
  else
    worker = self->spawn(blocking_worker_impl, std::move(work));
  self->request(worker, caf::infinite, atom::run_task_v)
    .then(
      [then](std::string& err) {
        then(err);
      },
      [self, then](caf::error& err) {
        then("worker failed: " + self->system().render(err));
      });
}

} // namespace orch
