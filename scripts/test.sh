#!/usr/bin/env bash
# The project's one test command (CI runs it through .ci/run):
#   Python tools → SAM template check → rustfmt → clippy → moto server → cargo test.
# Extra arguments are passed to `cargo test`, e.g. `scripts/test.sh -- inbox`.
# Needs only python3 (>= 3.11), a Rust toolchain with rustfmt and clippy, and PyPI.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV=.venv
PY="$VENV/bin/python"
MOTO_START_TIMEOUT=30
MOTO_LOG=.tmp/moto.log

section() { printf '\n==> [%4ss] %s\n' "$SECONDS" "$*"; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

moto_pid=""
stop_moto() {
  if [[ -n $moto_pid ]] && kill -0 "$moto_pid" 2>/dev/null; then
    kill -TERM "$moto_pid" 2>/dev/null || true
    wait "$moto_pid" 2>/dev/null || true
  fi
  moto_pid=""
}
on_exit() {
  local status=$?
  stop_moto
  if ((status != 0)) && [[ -s $MOTO_LOG ]]; then
    printf '\n==> moto server log (last 40 lines of %s)\n' "$MOTO_LOG" >&2
    tail -n 40 "$MOTO_LOG" >&2
  fi
  ((status == 0)) || printf '\ntest.sh: FAILED (exit %s)\n' "$status" >&2
  exit "$status"
}
trap on_exit EXIT
# Turn signals into a normal exit so the EXIT trap still stops moto.
trap 'exit 130' INT
trap 'exit 143' TERM
rm -f "$MOTO_LOG" # only this run's log is worth showing

section "Python test tools ($VENV)"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "python3 >= 3.11 is required (found $(python3 --version 2>&1))"
# Recreate the venv if it is missing or its interpreter no longer runs.
if ! "$PY" -c '' 2>/dev/null; then
  python3 -m venv --clear "$VENV"
fi
PIP_DISABLE_PIP_VERSION_CHECK=1 "$PY" -m pip install -q -r scripts/requirements-test.txt

section "SAM template (samtranslator + cfn-lint)"
"$PY" scripts/validate_template.py

section "cargo fmt --check"
cargo fmt --all -- --check

section "cargo clippy"
cargo clippy --all-targets --all-features -- -D warnings

section "moto server"
mkdir -p "$(dirname "$MOTO_LOG")"
# A coprocess: its stdin is a pipe held by this shell, so moto also stops if this
# script is killed outright, and its MOTO_PORT line can be read with a deadline.
coproc MOTO { exec "$PY" scripts/moto_server.py 2>"$MOTO_LOG"; }
# shellcheck disable=SC2153 # MOTO_PID is set by coproc
moto_pid=$MOTO_PID
moto_line=""
IFS= read -r -t "$MOTO_START_TIMEOUT" -u "${MOTO[0]}" moto_line \
  || die "moto server exited or did not report its port within ${MOTO_START_TIMEOUT}s"
[[ $moto_line =~ ^MOTO_PORT=([0-9]+)$ ]] || die "unexpected line from moto server: $moto_line"
MOTO_PORT=${BASH_REMATCH[1]}
echo "moto server on 127.0.0.1:$MOTO_PORT (pid $moto_pid, log $MOTO_LOG)"

export NEXUS_TEST_AWS_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
export NEXUS_REQUIRE_AWS_TESTS=1
# The venv's python, with the provider SDKs tests/api/oracle.rs signs requests with.
export NEXUS_TEST_PYTHON="$PWD/$PY"
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
# Never mix the fake keys with a real session or profile from the environment.
unset AWS_SESSION_TOKEN AWS_PROFILE
# Tests talk only to loopback: keep any configured HTTP proxy out of the way.
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"

section "cargo test"
cargo test --workspace --all-features "$@"

section "done: all checks passed"
