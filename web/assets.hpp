#pragma once
// The built web UI (web/dist), compiled into the binary by web/CMakeLists.txt.
// When the UI was not built (no Node at build time), the table is empty and
// ui_built() is false.

#include <string_view>

namespace orch::web {

/// One built file: its URL path ("/index.html", "/assets/index-3f2a.js"),
/// its Content-Type and its bytes.
struct asset {
  std::string_view path, content_type, body;
};

/// The asset at `path` ("/" is "/index.html"); nullptr when there is none.
const asset* find_asset(std::string_view path);

/// Whether the UI was built into this binary.
bool ui_built();

} // namespace orch::web
