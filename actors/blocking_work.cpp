#include "actors/blocking_work.hpp"

#include <exception>

namespace orch {

blocking_worker::behavior_type
blocking_worker_impl(blocking_worker::pointer self,
                     std::function<void()> work) {
  return {
    [=](atom::run_task) -> std::string {
      self->quit();
      try {
        work();
      } catch (const std::exception& e) {
        return e.what();
      }
      return {};
    },
  };
}

blocking_lane::behavior_type blocking_lane_impl(blocking_lane::pointer) {
  return {
    [](atom::run_task, blocking_job& job) -> std::string {
      try {
        job.work();
      } catch (const std::exception& e) {
        return e.what();
      }
      return {};
    },
  };
}

void post_on_lane(const blocking_lane& lane, std::function<void()> work) {
  caf::anon_send(lane, atom::run_task_v, blocking_job{std::move(work)});
}

} // namespace orch
