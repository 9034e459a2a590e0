#pragma once

// Blocking work (files, copies, listings) off the scheduler's threads: a
// job runs on a worker of its own (run_blocking) or on a lane, a worker that
// lives as long as the actor that owns it and runs that actor's jobs one
// after the other (one thread for a whole workflow run instead of one per
// job). Its end comes back to the actor that asked as a message, so no actor
// ever waits on the disk.

#include <functional>
#include <string>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/send.hpp>
#include <caf/spawn_options.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/vocabulary.hpp"

namespace orch {

/// One job for a lane (a local message only: never serialized).
struct blocking_job {
  std::function<void()> work;
};

} // namespace orch

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(orch::blocking_job)

namespace orch {

/// A one-shot worker that runs one blocking job and answers "" or an error
/// text (an exception's what()).
using blocking_worker
  = caf::typed_actor<caf::replies_to<atom::run_task>::with<std::string>>;

/// Returns the behaviour of a blocking_worker running `work` once.
blocking_worker::behavior_type
blocking_worker_impl(blocking_worker::pointer self, std::function<void()> work);

/// Calls `then` with a job's answer ("" or why it failed), or with why its
/// worker died.
template<class Self, class Handle>
void await_job(Self self, Handle&& pending,
               std::function<void(const std::string&)> then) {
  pending.then(
    [then](std::string& err) {
      then(err);
    },
    [self, then](caf::error& err) {
      then("worker failed: " + self->system().render(err));
    });
}

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
  await_job(self, self->request(worker, caf::infinite, atom::run_task_v),
            std::move(then));
}

/// A long-lived worker that runs the jobs sent to it one after the other,
/// in the order they were sent (its mailbox), each answered with "" or an
/// error text (an exception's what()).
using blocking_lane = caf::typed_actor<
  caf::replies_to<atom::run_task, blocking_job>::with<std::string>>;

/// Returns the behaviour of a blocking_lane.
blocking_lane::behavior_type blocking_lane_impl(blocking_lane::pointer self);

/// Spawns a lane linked to `self`, so that it ends with it (after the job it
/// runs, if any): on a thread of its own for its whole life, or on the
/// caller's scheduler when `detached` is false (deterministic tests).
template<class Self>
blocking_lane spawn_lane(Self self, bool detached) {
  if (detached)
    return self->template spawn<caf::detached + caf::linked>(
      blocking_lane_impl);
  return self->template spawn<caf::linked>(blocking_lane_impl);
}

/// Runs `work` on `lane` once the jobs sent to it before are done, and calls
/// `then` as run_blocking does.
template<class Self>
void run_on_lane(Self self, const blocking_lane& lane,
                 std::function<void()> work,
                 std::function<void(const std::string&)> then) {
  await_job(self,
            self->request(lane, caf::infinite, atom::run_task_v,
                          blocking_job{std::move(work)}),
            std::move(then));
}

/// Queues `work` on `lane` without waiting for it (a later job on the same
/// lane runs after it).
void post_on_lane(const blocking_lane& lane, std::function<void()> work);

} // namespace orch
