// The asset table when the web UI was not built (no Node at build time).
#include "web/assets.hpp"

namespace orch::web {

const asset* find_asset(std::string_view /*path*/) {
  return nullptr;
}

bool ui_built() {
  return false;
}

} // namespace orch::web
