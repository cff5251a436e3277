#!/usr/bin/env bash
# Prepare a fresh machine for running and testing fasterdb-ops: a virtualenv with the project and
# its test dependencies in .venv, and PostgreSQL server binaries (apt-get) when they are missing.
# Idempotent: re-running only reinstalls when pyproject.toml changed.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
venv="${FASTERDB_VENV:-$root/.venv}"
python="${PYTHON:-python3}"
# Which extras: "test" (make test: the whole test toolchain), "" (make run: the runtime only),
# "test,kube" (make e2e).
extras="${FASTERDB_EXTRAS-test}"

# Python 3.11 or newer, with its venv module (Debian ships it apart: python3-venv).
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "bootstrap: fasterdb-ops needs Python 3.11 or newer; $python is $("$python" --version 2>&1 || echo missing)" \
    "(set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ] && ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "bootstrap: $python has no venv module: install python3-venv (Debian, Ubuntu) or use another Python" >&2
  exit 1
fi

have_pg_binaries() {
  [ -n "${FASTERDB_PG_BINDIR:-}" ] && [ -x "$FASTERDB_PG_BINDIR/initdb" ] && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && return 0
  command -v initdb >/dev/null 2>&1
}

# Root, or sudo without a password (GitHub's runners): how packages get installed when missing.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo -n "$@"
  else return 1
  fi
}

if ! have_pg_binaries; then
  if ! command -v apt-get >/dev/null 2>&1 || ! as_root true; then
    echo "bootstrap: PostgreSQL server binaries not found and cannot apt-get them (not root, no sudo):" \
      "install PostgreSQL or set FASTERDB_PG_BINDIR" >&2
    exit 1
  fi
  echo "bootstrap: installing PostgreSQL server binaries with apt-get" >&2
  # Binaries only: no default cluster on port 5432 is created or started.
  if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    as_root mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" | as_root tee /etc/postgresql-common/createcluster.conf >/dev/null
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql postgresql-contrib
fi

# The test tools, none of which needs root: shellcheck (lints deploy/ and .ci/ scripts) and
# actionlint (lints .github/workflows) are wheels of the test extra, in the venv; checkov (the
# rendered chart's security) pins many libraries of its own, so it has a virtualenv of its own in
# $tools/checkov, installed once per version; promtool (metrics, alert rules, dashboard queries)
# comes from deploy/scripts/install-promtool.sh. checkov and promtool are linked into the venv's
# bin, which the tests put first on their PATH.
checkov_version=3.3.30
tools="${FASTERDB_TOOLS:-$root/.tools}"
wants_tests() { [ "$extras" != "${extras#*test}" ]; }
if wants_tests && [ "$("$tools/checkov/bin/checkov" --version 2>/dev/null)" != "$checkov_version" ]; then
  echo "bootstrap: installing checkov $checkov_version into $tools/checkov" >&2
  rm -rf "$tools/checkov"
  "$python" -m venv "$tools/checkov"
  "$tools/checkov/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$tools/checkov/bin/python" -m pip install -q "checkov==$checkov_version"
fi

stamp="$venv/.fasterdb-installed"
want="$(cat "$root/pyproject.toml" "$root/kit/pyproject.toml" | sha256sum | cut -d' ' -f1) $extras"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  # A venv that has the test extras already serves make run too: never downgrade it.
  if [ -z "$extras" ] && [ -f "$stamp" ] && grep -q "test" "$stamp" \
    && [ "$(cut -d' ' -f1 "$stamp")" = "$(cut -d' ' -f1 <<<"$want")" ]; then
    exit 0
  fi
  # pip's notices and the build backend's warning boxes (setuptools' "Editable installation")
  # give nothing to act on: they go to a log that is shown, whole, only when pip fails.
  pip_log=$(mktemp)
  quietly() {  # command...: run it; its output is shown only when it fails
    "$@" >"$pip_log" 2>&1 || {
      cat "$pip_log" >&2
      rm -f "$pip_log"
      echo "bootstrap: this failed (its output is above): ${*#"$venv/bin/"}" >&2
      exit 1
    }
  }
  echo "bootstrap: installing fasterdb-ops into $venv${extras:+ (with $extras)}" >&2
  quietly "$venv/bin/python" -m pip install -q --upgrade pip
  # Two distributions from this checkout: the application kit (kit/, imports as fasterdb) and
  # fasterdb-ops (the sidecar and the CLI), which requires it. Editable, so the tests run the source.
  if [ -n "$extras" ]; then
    quietly "$venv/bin/python" -m pip install -q -e "$root/kit" -e "${root}[${extras}]"
  else
    quietly "$venv/bin/python" -m pip install -q -e "$root/kit" -e "${root}"
  fi
  rm -f "$pip_log"
  echo "$want" > "$stamp"
fi

if wants_tests; then
  ln -sfn "$tools/checkov/bin/checkov" "$venv/bin/checkov"
  "$root/deploy/scripts/install-promtool.sh" "$tools" "$venv/bin"
  # The shellcheck wheel exists for x86_64 only; elsewhere Debian's package, as root or through sudo.
  if [ ! -x "$venv/bin/shellcheck" ] && ! command -v shellcheck >/dev/null 2>&1; then
    { as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends shellcheck \
      || { as_root apt-get update -q && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends shellcheck; }; } >/dev/null 2>&1 \
      || echo "bootstrap: shellcheck not found and cannot apt-get it (tests that need it will fail)" >&2
  fi
  # The browser tests drive Debian's Chromium through Playwright (never a browser download).
  if ! command -v chromium >/dev/null 2>&1; then
    { as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium \
      || { as_root apt-get update -q && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends chromium; }; } >/dev/null 2>&1 \
      || echo "bootstrap: chromium not found and cannot apt-get it (the browser tests will fail): install chromium" >&2
  fi
fi
