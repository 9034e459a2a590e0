#include "cli/terminal.hpp"

#include <cstdlib>
#include <cstring>

#include <unistd.h>

namespace orch::cli {

terminal terminal::for_stream(std::FILE* stream) {
  terminal t;
  t.tty = isatty(fileno(stream)) == 1;
  const char* no_color = std::getenv("NO_COLOR");
  const char* term = std::getenv("TERM");
  t.color = t.tty && (no_color == nullptr || *no_color == '\0')
            && !(term != nullptr && std::strcmp(term, "dumb") == 0);
  return t;
}

std::string format_duration(long long ms) {
  char buf[32];
  if (ms < 60000) {
    std::snprintf(buf, sizeof(buf), "%.1fs", static_cast<double>(ms) / 1000.0);
  } else {
    auto s = ms / 1000;
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", s / 60, s % 60);
  }
  return buf;
}

} // namespace orch::cli
