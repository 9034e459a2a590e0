# Sourced by scripts/run-tests and scripts/run-demo: installs what is missing
# (Debian 12 packages only) and builds. Not meant to be run directly.

ORCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian packages the build needs.
ORCH_PACKAGES=(
  g++ cmake make ninja-build pkg-config ccache
  libcaf-dev nlohmann-json3-dev libyaml-cpp-dev libspdlog-dev
  prometheus-cpp-dev libsqlitecpp-dev libcli11-dev libedit-dev libssl-dev git
  libcivetweb-dev
)
# What only the tests need (scripts/run-tests): GoogleTest, the linters, and
# python3 for the shell tests' JSON checks; prometheus for promtool and the
# Prometheus server the /metrics test scrapes with (tests/server).
ORCH_TEST_PACKAGES=(libgtest-dev libgmock-dev clang-format clang-tidy python3 tmux
  prometheus openssl)

# orch_install_deps [extra packages...]
orch_install_deps() {
  local missing=()
  local p
  for p in "${ORCH_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  echo "Installing missing packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    else
      echo "error: run as root, or install: apt-get install ${missing[*]}" >&2
      return 1
    fi
  else
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
}

# orch_build BUILD_DIR BUILD_TYPE [extra cmake args...]
orch_build() {
  local dir=$1 type=$2
  shift 2
  cmake -S "$ORCH_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE="$type" "$@" >/dev/null
  cmake --build "$dir" -j "${ORCH_JOBS:-2}"
}

# orch_build_demo BUILD_DIR: the binary of scripts/run-demo. Build type None
# (no optimisation, no debug info: the demo agents are scripts, so the
# binary's speed does not show) and a unity build: each CMake unity chunk
# compiles up to 8 of our files at once, so CAF's headers are parsed and its
# templates instantiated once per chunk instead of once per file, which
# makes a clean build about twice as fast. Ninja, because it compiles the
# chunks of every library at once where make waits for each library in
# turn. scripts/run-tests builds it too, so a name two files both define at
# file scope fails CI, not the demo.
orch_build_demo() {
  local dir=$1
  # A build folder from an older run-demo was made with make: start over.
  if [ -f "$dir/CMakeCache.txt" ] \
    && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$dir/CMakeCache.txt"; then
    rm -rf "$dir/CMakeCache.txt" "$dir/CMakeFiles"
  fi
  orch_build "$dir" None -G Ninja -DORCH_ENABLE_TESTS=OFF \
    -DORCH_ENABLE_BENCH=OFF -DCMAKE_UNITY_BUILD=ON
}

# -- h15: the web UI (web/). Its end-to-end test drives Debian's Chromium
#    headless; Node and npm build the UI and run its tests (scripts/run-tests
#    only: run-demo needs neither, the binary then serves a page saying the UI
#    was not built).
ORCH_TEST_PACKAGES+=(chromium)

# orch_install_node: Node and npm from Debian when there is no npm (a Node
# from elsewhere that brings its own npm is kept).
orch_install_node() {
  if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    return 0
  fi
  orch_install_deps nodejs npm
}

# orch_web_deps: the UI's npm packages, exactly as web/package-lock.json says
# (skipped when web/node_modules already matches the lockfile).
orch_web_deps() {
  local web=$ORCH_ROOT/web
  if [ -f "$web/node_modules/.package-lock.json" ] \
    && [ "$web/node_modules/.package-lock.json" -nt "$web/package-lock.json" ]; then
    return 0
  fi
  (cd "$web" && npm ci --no-audit --no-fund)
}
