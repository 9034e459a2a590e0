#pragma once

// CAF 0.17.6's OpenSSL module (caf::openssl::session) calls SSL_read,
// SSL_write, SSL_connect and SSL_accept and then SSL_get_error without
// emptying the thread's OpenSSL error queue first, and (built with its
// logging compiled out, as Debian ships it) never empties it after a failure
// either. All TLS connections of a process share the middleman's one
// multiplexer thread, so the error one connection leaves behind (OpenSSL 3
// queues "unexpected eof while reading" when a peer dies with a FIN, and
// nothing when it dies with an RST) turns
// the next would-block read of any other, healthy connection into
// SSL_ERROR_SSL, and CAF drops that connection too. This binary therefore
// defines those four functions itself: each empties the calling thread's
// error queue (as OpenSSL's SSL_get_error documentation requires) and calls
// the real one from libssl (dlsym RTLD_NEXT). CAF's references bind to them
// because an executable's definitions come first in symbol lookup.

namespace orch {

/// True when the SSL_read seen by the dynamic linker (and so by CAF's
/// OpenSSL module) is this binary's guarded one.
bool tls_error_queue_guard_active();

} // namespace orch
