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

} // namespace orch
