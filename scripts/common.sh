# Sourced by scripts/run-tests and scripts/run-demo: installs what is missing
# (Debian 12 packages only) and builds. Not meant to be run directly.

ORCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian packages the build needs.
ORCH_PACKAGES=(
  g++ cmake make pkg-config ccache
  libcaf-dev nlohmann-json3-dev libyaml-cpp-dev libspdlog-dev
  prometheus-cpp-dev libsqlitecpp-dev libcli11-dev libedit-dev libssl-dev git
)
# What only the tests need (scripts/run-tests): GoogleTest, the linters, and
# python3 for the shell tests' JSON checks.
ORCH_TEST_PACKAGES=(libgtest-dev libgmock-dev clang-format clang-tidy python3 tmux openssl)

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
