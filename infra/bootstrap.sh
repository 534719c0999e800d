#!/usr/bin/env bash
# Idempotent set-up for `make run` and `make test`: prerequisites, .venv, locked deps, S3A jars.
# A second run with nothing changed takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION="0.13.8"
VENV=".venv"
STAMP="$VENV/.riskstream-setup"
export UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy

fail() { echo "setup: $*" >&2; exit 1; }

# ---- prerequisites -------------------------------------------------------------------------
PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && \
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      PYTHON="$candidate"; break
    fi
  done
fi
[ -n "$PYTHON" ] || fail "Python 3.11 or newer is required (found: $(python3 --version 2>&1 || echo none)). Install it, or set PYTHON=/path/to/python3.11."
"$PYTHON" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 14) else 1)' \
  || fail "$PYTHON is $("$PYTHON" --version 2>&1); riskstream needs Python 3.11, 3.12 or 3.13."

command -v java >/dev/null 2>&1 || fail "Java 17 is required for Spark and was not found on PATH. Install a JDK 17 (Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME and PATH."
JAVA_MAJOR="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
[ "$JAVA_MAJOR" = "17" ] || fail "Spark 3.5 needs Java 17; \`java -version\` reports major version '${JAVA_MAJOR:-unknown}'. Put a JDK 17 first on PATH (or set JAVA_HOME)."

# ---- a real browser for the dashboard test (make test only) --------------------------------
if [ "${1:-}" = "--test" ] && ! { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }; then
  echo "setup: installing Debian's chromium and chromium-driver (the dashboard test drives a real browser)"
  if [ "$(id -u)" = "0" ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo"; else
    fail "the dashboard test needs chromium and chromium-driver; install them with: sudo apt-get install -y chromium chromium-driver"
  fi
  $SUDO apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null \
    || fail "apt-get could not install chromium and chromium-driver; install them, then run make test again"
fi

# ---- virtual environment and locked dependencies ------------------------------------------
# ---- the Spark class archive (etl/class_archive.py): once per install -----------------------
# Local Spark drivers map the classes they load from it instead of reading them from the jars.
# Optional: when it cannot be written, setup says so once and Spark starts without it.
ARCHIVE_FAILED="$VENV/.riskstream-class-archive-failed"
class_archive() {
  "$VENV/bin/python" -m etl.class_archive --if-missing && return 0
  [ -f "$ARCHIVE_FAILED" ] && [ "$(cat "$ARCHIVE_FAILED")" = "$want" ] && return 0
  echo "setup: writing the Spark class archive (once per install: about half a minute)"
  if ! "$VENV/bin/python" -m etl.class_archive > "$VENV/class-archive.log" 2>&1; then
    echo "$want" > "$ARCHIVE_FAILED"
    echo "setup: no Spark class archive (see $VENV/class-archive.log); Spark starts without one"
  fi
}

# ---- the project's own modules, compiled -----------------------------------------------------
# Every process (the cloud, each service, each task) imports them; with PYTHONDONTWRITEBYTECODE
# set, Python would compile them again in each one. Only changed files are compiled again.
compile_sources() {
  "$VENV/bin/python" -m compileall -q -j 0 riskstream infra modelkinds ingestion etl training \
    serving pipeline dags tests benchmarks >/dev/null || echo "setup: could not compile every module (they run from source)"
}

want="$(cat uv.lock pyproject.toml infra/fetch_jars.py infra/bootstrap.sh | sha256sum | cut -d' ' -f1) $PYTHON $UV_VERSION"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/riskstream" ] \
   && [ -f .jars/hadoop-aws-3.3.1.jar ] && [ -f .jars/aws-java-sdk-bundle-1.11.901.jar ]; then
  compile_sources
  class_archive
  exit 0
fi

[ -x "$VENV/bin/python" ] || { echo "setup: creating $VENV with $PYTHON"; "$PYTHON" -m venv "$VENV"; }
if ! "$VENV/bin/uv" --version 2>/dev/null | grep -q "$UV_VERSION"; then
  echo "setup: installing uv $UV_VERSION into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
echo "setup: installing locked dependencies (uv sync --frozen)"
# compiled at install (as pip does): with PYTHONDONTWRITEBYTECODE set, nothing would be cached and
# every process would compile each library it imports again (a moto server's start: 1.0 -> 0.3
# CPU-seconds)
"$VENV/bin/uv" sync --frozen --quiet --python "$VENV/bin/python" --reinstall-package riskstream \
  --compile-bytecode
"$VENV/bin/python" infra/fetch_jars.py .jars
"$VENV/bin/python" -m etl.class_archive --remove  # written for the jars installed before
echo "$want" > "$STAMP"
compile_sources
class_archive
echo "setup: done"
