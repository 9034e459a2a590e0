#include "runtime/counters.hpp"

#include <map>
#include <mutex>
#include <utility>

namespace orch {

namespace {

struct registry_data {
  std::mutex mutex;
  std::map<std::pair<std::string, std::string>, uint64_t> values;
};

registry_data& data() {
  static registry_data instance;
  return instance;
}

} // namespace

void counter_registry::add(std::string_view name, std::string_view label,
                           uint64_t n) {
  auto& d = data();
  std::lock_guard<std::mutex> guard{d.mutex};
  d.values[{std::string{name}, std::string{label}}] += n;
}

uint64_t counter_registry::get(std::string_view name,
                               std::string_view label) const {
  auto& d = data();
  std::lock_guard<std::mutex> guard{d.mutex};
  auto i = d.values.find({std::string{name}, std::string{label}});
  return i == d.values.end() ? 0 : i->second;
}

uint64_t counter_registry::total(std::string_view name) const {
  auto& d = data();
  std::lock_guard<std::mutex> guard{d.mutex};
  uint64_t sum = 0;
  for (const auto& kvp : d.values)
    if (kvp.first.first == name)
      sum += kvp.second;
  return sum;
}

std::vector<counter_sample> counter_registry::samples() const {
  auto& d = data();
  std::lock_guard<std::mutex> guard{d.mutex};
  std::vector<counter_sample> out;
  out.reserve(d.values.size());
  for (const auto& kvp : d.values)
    out.push_back({kvp.first.first, kvp.first.second, kvp.second});
  return out;
}

void counter_registry::reset() {
  auto& d = data();
  std::lock_guard<std::mutex> guard{d.mutex};
  d.values.clear();
}

counter_registry& counters() {
  static counter_registry instance;
  return instance;
}

} // namespace orch
