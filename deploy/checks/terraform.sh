#!/usr/bin/env bash
# Static checks of terraform/, none of which needs AWS, providers or the registry:
#   1. every .tf file parses (python-hcl2), a failure names the file;
#   2. every call of a local module passes only variables the module declares and all
#      those it requires, and every module.<name>.<output> read exists;
#   3. `terraform fmt -check`, when a terraform binary is on PATH;
#   4. checkov's Terraform policies pass; a skipped check is skipped in place with a
#      `#checkov:skip=CKV_…:reason` comment.
# The tools live in virtualenvs under ${XDG_CACHE_HOME:-$HOME/.cache}/anno-ci, made on
# the first run and reused afterwards. python-hcl2 and checkov (which ships its own fork
# of the same `hcl2` module) each get their own.
set -euo pipefail

cd "$(dirname "$0")/../.."

HCL2_REQUIREMENT="python-hcl2==8.1.4"
CHECKOV_REQUIREMENT="checkov==3.3.30"

cache="${XDG_CACHE_HOME:-$HOME/.cache}/anno-ci"
python="${PYTHON:-python3}"

step() {
    printf '\n==> %s\n' "$*"
}

# venv DIR REQUIREMENT: a virtualenv at DIR holding REQUIREMENT, made or remade only
# when the requirement it was made for differs.
venv() {
    local dir="$1" requirement="$2"
    if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.requirement" 2>/dev/null)" = "$requirement" ]; then
        return
    fi
    echo "installing $requirement into $dir"
    rm -rf "$dir"
    if ! "$python" -m venv "$dir"; then
        echo "error: '$python -m venv' failed; install Python's venv module (Debian: apt-get install python3-venv)" >&2
        exit 1
    fi
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$requirement"
    echo "$requirement" >"$dir/.requirement"
}

step "tools"
venv "$cache/venv-hcl2" "$HCL2_REQUIREMENT"
venv "$cache/venv-checkov" "$CHECKOV_REQUIREMENT"

step "parse every .tf file and check module calls (python-hcl2)"
"$cache/venv-hcl2/bin/python" - terraform <<'PY'
import pathlib
import re
import sys

import hcl2

root = pathlib.Path(sys.argv[1])
files = sorted(p for p in root.rglob("*.tf") if ".terraform" not in p.parts)
directory_of = {p: p.parent.resolve() for p in files}
if not files:
    sys.exit(f"no .tf files under {root}")

parsed, failures = {}, []
for path in files:
    try:
        with path.open() as f:
            parsed[path] = hcl2.load(f)
    except Exception as e:  # the parser raises several lark and hcl2 error types
        failures.append(f"{path}: {type(e).__name__}: {e}")
if failures:
    sys.exit("parse errors:\n  " + "\n  ".join(failures))
print(f"{len(files)} files parse")


def unquote(value):
    return value[1:-1] if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"' else value


def blocks(kind, directory):
    """(name, body) of every `kind "name" { … }` block of a directory's files."""
    for path, doc in parsed.items():
        if directory_of[path] == directory:
            for entry in doc.get(kind, []):
                for name, body in entry.items():
                    yield unquote(name), body, path


def module_interface(directory):
    variables = {name: "default" in body for name, body, _ in blocks("variable", directory)}
    outputs = {name for name, _, _ in blocks("output", directory)}
    return variables, outputs


problems = []
for directory in sorted(set(directory_of.values())):
    calls = {}
    for name, body, path in blocks("module", directory):
        source = unquote(body.get("source", ""))
        if not source.startswith("."):
            continue
        target = (directory / source).resolve()
        if not target.is_dir():
            problems.append(f"{path}: module {name}: source {source} is not a directory")
            continue
        variables, outputs = module_interface(target)
        calls[name] = outputs
        meta = {"source", "version", "providers", "count", "for_each", "depends_on"}
        # python-hcl2 adds bookkeeping keys such as __is_block__.
        arguments = {unquote(k) for k in body if not k.startswith("__")} - meta
        for argument in sorted(arguments - variables.keys()):
            problems.append(f"{path}: module {name}: {source} declares no variable {argument}")
        for required in sorted(v for v, has_default in variables.items() if not has_default):
            if required not in arguments:
                problems.append(f"{path}: module {name}: required variable {required} is not set")
    for path in sorted(p for p in files if directory_of[p] == directory):
        text = path.read_text()
        for module, output in re.findall(r"\bmodule\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)", text):
            if module not in calls:
                problems.append(f"{path}: module.{module} is not a module called here")
            elif output not in calls[module]:
                problems.append(f"{path}: module {module} has no output {output}")
if problems:
    sys.exit("module interface errors:\n  " + "\n  ".join(problems))
print("module calls match their modules' variables and outputs")
PY

step "terraform fmt -check"
if command -v terraform >/dev/null 2>&1; then
    terraform fmt -check -recursive -diff terraform
    echo "formatted"
else
    echo "skipped: no terraform binary on PATH (the checks above and below do not need one)"
fi

step "checkov"
# --skip-download: no Prisma Cloud guideline or policy download (offline, and not needed).
BC_SKIP_MAPPING=TRUE "$cache/venv-checkov/bin/checkov" -d terraform --framework terraform --quiet --compact --skip-download

step "terraform checks passed"
