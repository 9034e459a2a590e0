#pragma once

// `ai-orchestrator serve`: one run coordinator behind the HTTP API.
//
// Exit behaviour: SIGTERM, SIGINT or SIGHUP stops the server gracefully:
// new requests get 503, every running task is cancelled (its manifest is
// written with status "cancelled"; the agents' process groups are
// stopped), the event streams send the runs' last events (run_finished)
// and close, the listener stops, and the process exits 0. A server that
// cannot start (address in use, token file unusable) exits 1; a bad
// config or option exits 2.

#include <functional>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "server/context.hpp"

namespace orch::server {

/// Runs the server until a signal stops it; returns the exit code. Prints
/// "listening on http://HOST:PORT" on stdout once it accepts requests (the
/// port is the real one when 0 was asked), and the API token on stderr the
/// first time it is made.
int serve(const server_options& opts, std::shared_ptr<const config> cfg);

/// Parses "HOST:PORT" (or ":PORT", or "PORT"). Returns false with `error`.
bool parse_listen(const std::string& text, server_options& opts,
                  std::string& error);

} // namespace orch::server
