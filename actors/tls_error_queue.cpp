#include "actors/tls_error_queue.hpp"

#include <cstdio>
#include <cstdlib>

#include <dlfcn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

namespace {

/// The next definition of `name` after this binary's (libssl's).
template<class Fn>
Fn real_function(const char* name) {
  auto* sym = ::dlsym(RTLD_NEXT, name);
  if (sym == nullptr) {
    std::fprintf(stderr, "fatal: cannot find OpenSSL's %s: %s\n", name,
                 ::dlerror());
    std::abort();
  }
  return reinterpret_cast<Fn>(sym);
}

} // namespace

// The definitions CAF's OpenSSL module binds to (see the header). Default
// visibility: the linker exports them because libcaf_openssl uses them.
extern "C" {

__attribute__((visibility("default"))) int SSL_read(SSL* ssl, void* buf,
                                                    int num) {
  static const auto real = real_function<int (*)(SSL*, void*, int)>("SSL_read");
  ERR_clear_error();
  return real(ssl, buf, num);
}

__attribute__((visibility("default"))) int SSL_write(SSL* ssl, const void* buf,
                                                     int num) {
  static const auto real
    = real_function<int (*)(SSL*, const void*, int)>("SSL_write");
  ERR_clear_error();
  return real(ssl, buf, num);
}

__attribute__((visibility("default"))) int SSL_connect(SSL* ssl) {
  static const auto real = real_function<int (*)(SSL*)>("SSL_connect");
  ERR_clear_error();
  return real(ssl);
}

__attribute__((visibility("default"))) int SSL_accept(SSL* ssl) {
  static const auto real = real_function<int (*)(SSL*)>("SSL_accept");
  ERR_clear_error();
  return real(ssl);
}

} // extern "C"

namespace orch {

bool tls_error_queue_guard_active() {
  auto* seen = ::dlsym(RTLD_DEFAULT, "SSL_read");
  return seen != nullptr && seen == reinterpret_cast<void*>(&SSL_read);
}

} // namespace orch
