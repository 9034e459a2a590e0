#pragma once

// The conversation between the process runner and a long-lived agent guard
// (agent_guard.cpp started with --serve): one guard serves one agent call at
// a time over a unix stream socket that only the two of them hold.
//
// Runner -> guard:
//   a request: the header 'R' + u32 body length, sent together with the
//   child's stdio as SCM_RIGHTS (stdin's read end when the call has input,
//   then stdout's and stderr's write ends), then the body: u32 flags,
//   program, working directory, u32 argc, argv..., u32 envc, envp... (each
//   string a u32 length and its bytes);
//   during the call, one byte: 't' (the stop began: pass SIGTERM on to the
//   agent's descendants outside its group), 'k' (kill everything now).
//   Closing the socket (or dying) means 'k', and the guard exits after it.
// Guard -> runner: 9-byte records, a tag and two i32:
//   'p' agent pid, 0; with a pidfd of the agent as SCM_RIGHTS;
//   'e' errno, 0: the agent could not be started, the guard is idle again;
//   'x' wait status, clean: the agent exited (or was killed) and the sweep
//       is over; clean = 1 when nothing of the call is left, and the guard
//       is then idle again; 0: the guard exits.
// Depends on libc and the standard library only (the guard links it).

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace orch::guard_protocol {

inline constexpr char request_tag = 'R';
inline constexpr char term_command = 't';
inline constexpr char kill_command = 'k';
inline constexpr char started_tag = 'p';
inline constexpr char error_tag = 'e';
inline constexpr char exited_tag = 'x';

inline constexpr std::uint32_t flag_stdin = 1;
/// Bounds a request body: argv and environment together.
inline constexpr std::uint32_t max_body = 64u << 20;
inline constexpr std::size_t record_size = 9;
inline constexpr std::size_t header_size = 5;

/// The first argument that starts a guard in serving mode.
inline constexpr const char* serve_flag = "--serve";

struct record {
  char tag = 0;
  std::int32_t a = 0;
  std::int32_t b = 0;
};

struct request {
  std::uint32_t flags = 0;
  std::string program;
  std::string cwd;
  std::vector<std::string> argv;
  std::vector<std::string> envp;
};

inline void put_u32(std::string& out, std::uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);
  out.append(b, 4);
}

inline void put_string(std::string& out, const std::string& s) {
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}

inline std::string encode_body(const request& req) {
  std::string out;
  put_u32(out, req.flags);
  put_string(out, req.program);
  put_string(out, req.cwd);
  put_u32(out, static_cast<std::uint32_t>(req.argv.size()));
  for (const auto& a : req.argv)
    put_string(out, a);
  put_u32(out, static_cast<std::uint32_t>(req.envp.size()));
  for (const auto& e : req.envp)
    put_string(out, e);
  return out;
}

/// Parses a body; false when it is malformed.
inline bool decode_body(const std::string& in, request& req) {
  std::size_t at = 0;
  auto get_u32 = [&](std::uint32_t& v) {
    if (in.size() - at < 4)
      return false;
    std::memcpy(&v, in.data() + at, 4);
    at += 4;
    return true;
  };
  auto get_string = [&](std::string& s) {
    std::uint32_t n = 0;
    if (!get_u32(n) || in.size() - at < n)
      return false;
    s.assign(in.data() + at, n);
    at += n;
    return true;
  };
  auto get_list = [&](std::vector<std::string>& list) {
    std::uint32_t n = 0;
    if (!get_u32(n) || n > in.size())
      return false;
    list.resize(n);
    for (auto& s : list)
      if (!get_string(s))
        return false;
    return true;
  };
  return get_u32(req.flags) && get_string(req.program) && get_string(req.cwd)
         && get_list(req.argv) && get_list(req.envp) && at == in.size();
}

/// Sends `size` bytes and, with the first of them, `fds` (may be empty).
/// Never raises SIGPIPE. Returns 0 or an errno.
inline int send_with_fds(int sock, const char* data, std::size_t size,
                         const int* fds, std::size_t nfds) {
  bool first = true;
  while (size > 0) {
    msghdr msg{};
    iovec iov{const_cast<char*>(data), size};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
    if (first && nfds > 0 && nfds <= 4) {
      std::memset(control, 0, sizeof control);
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
      std::memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    ssize_t rc = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (rc < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    first = false;
    data += rc;
    size -= static_cast<std::size_t>(rc);
  }
  return 0;
}

/// Receives exactly `size` bytes (waiting up to `timeout_ms` for each part,
/// -1: forever); descriptors that come along are stored in `fds` (at most
/// `max_fds`, close-on-exec; extra ones are closed) and counted in `nfds`.
/// Returns 0, ETIMEDOUT, ECONNRESET at EOF, or an errno.
inline int recv_with_fds(int sock, char* data, std::size_t size, int* fds,
                         std::size_t max_fds, std::size_t& nfds,
                         int timeout_ms) {
  nfds = 0;
  while (size > 0) {
    if (timeout_ms >= 0) {
      pollfd p{sock, POLLIN, 0};
      int rc = ::poll(&p, 1, timeout_ms);
      if (rc < 0 && errno == EINTR)
        continue;
      if (rc == 0)
        return ETIMEDOUT;
      if (rc < 0)
        return errno;
    }
    msghdr msg{};
    iovec iov{data, size};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t rc = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (rc < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr;
         c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
        continue;
      std::size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < n; ++i) {
        int fd = -1;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        if (nfds < max_fds)
          fds[nfds++] = fd;
        else
          ::close(fd);
      }
    }
    if (rc == 0)
      return ECONNRESET;
    data += rc;
    size -= static_cast<std::size_t>(rc);
  }
  return 0;
}

inline int send_record(int sock, const record& r, int fd = -1) {
  char buf[record_size];
  buf[0] = r.tag;
  std::memcpy(buf + 1, &r.a, 4);
  std::memcpy(buf + 5, &r.b, 4);
  return send_with_fds(sock, buf, sizeof buf, &fd, fd >= 0 ? 1 : 0);
}

/// Receives one record and the descriptor that may come with it (-1 if
/// none).
inline int recv_record(int sock, record& r, int& fd, int timeout_ms) {
  char buf[record_size];
  int fds[1] = {-1};
  std::size_t nfds = 0;
  int rc = recv_with_fds(sock, buf, sizeof buf, fds, 1, nfds, timeout_ms);
  fd = nfds > 0 ? fds[0] : -1;
  if (rc != 0)
    return rc;
  r.tag = buf[0];
  std::memcpy(&r.a, buf + 1, 4);
  std::memcpy(&r.b, buf + 5, 4);
  return 0;
}

} // namespace orch::guard_protocol
