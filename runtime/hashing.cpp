#include "runtime/hashing.hpp"

#include "runtime/fd_util.hpp"

#include <openssl/evp.h>

namespace orch {

namespace {

/// SHA-256 fetched from the default provider once: EVP_sha256() makes
/// OpenSSL 3 look it up again at every init (a provider query under locks).
const EVP_MD* sha256_md() {
  static const EVP_MD* md = [] {
    const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return fetched != nullptr ? fetched : EVP_sha256();
  }();
  return md;
}

} // namespace

sha256_stream::sha256_stream() {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ctx_ = ctx;
  ok_ = ctx != nullptr && EVP_DigestInit_ex(ctx, sha256_md(), nullptr) == 1;
}

sha256_stream::~sha256_stream() {
  EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
}

void sha256_stream::update(std::string_view data) {
  if (ok_ && !data.empty())
    ok_ = EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(),
                           data.size())
          == 1;
}

std::string sha256_stream::hex_digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!ok_
      || EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &len) != 1) {
    ok_ = false;
    return {};
  }
  ok_ = false;
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(std::size_t{2} * len);
  for (unsigned int i = 0; i < len; ++i) {
    out += digits[md[i] >> 4];
    out += digits[md[i] & 0xF];
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  sha256_stream h;
  h.update(data);
  return h.hex_digest();
}

bool sha256_file(int fd, std::string& hex, std::uintmax_t& size) {
  sha256_stream h;
  size = 0;
  bool ok = detail::read_blocks(fd, [&](std::string_view block) {
    h.update(block);
    size += block.size();
    return true;
  });
  if (!ok)
    return false;
  hex = h.hex_digest();
  return !hex.empty();
}

} // namespace orch
