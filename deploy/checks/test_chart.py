#!/usr/bin/env python3
"""Renders the Helm chart deploy/helm/anno and checks what it must guarantee.

    python3 deploy/checks/test_chart.py [--chart DIR] [--helm PATH] [--mutations]

Renders the default (embedded) values, examples/values-distributed.yaml and
examples/values-production.yaml with `helm template`, then asserts:

- core's HorizontalPodAutoscaler: min 3, max 100, CPU 70 %, memory 80 %, and the Pods
  metric requests_per_second with an AverageValue of 100;
- the NetworkPolicies: the gateway takes traffic only from the ingress controller's
  namespace (and Prometheus'); auth, tenant, config and core only from the release's
  service pods (and Prometheus'); core's egress never reaches the metadata address or
  the cluster's networks;
- every container runs as uid 10001, non-root, with a read-only root filesystem, no
  privilege escalation and every capability dropped;
- and the shape around them (embedded: one Recreate pod on a claim; distributed:
  probes, PDBs, the migration hook, the gateway's EndpointSlice RBAC, the Ingress, the
  monitoring objects, the off-peak CronJobs).

Each failure prints what was expected and what was found; the exit status is 1 when
any check fails. With --mutations it instead breaks a copy of the chart in ways a
careless edit could, and fails unless every such break is caught.

Needs Python 3 with PyYAML, and helm ($HELM, else on PATH).
"""

from __future__ import annotations

import argparse
import copy
import ipaddress
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "anno"
RELEASE = "anno"
NAMESPACE = "anno"

# What the chart promises whatever the values say.
CORE_HPA = {"min": 3, "max": 100, "cpu": 70, "memory": 80, "rps": 100}
REQUIRED_CLUSTER_CIDRS = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
METADATA_ADDRESS = "169.254.169.254"
SERVICES = ["gateway", "auth", "tenant", "config", "core"]
INTERNAL_SERVICES = ["auth", "tenant", "config", "core"]
UID = 10001
COMPONENT = "app.kubernetes.io/component"
INSTANCE = "app.kubernetes.io/instance"
NAME = "app.kubernetes.io/name"

RENDERS = {
    "embedded": [],
    "distributed": ["examples/values-distributed.yaml"],
    "production": ["examples/values-production.yaml"],
}


class Checks:
    """Collects results; each failure says what was expected and what was found."""

    def __init__(self, quiet: bool = False) -> None:
        self.passed = 0
        self.failed: list[str] = []
        self.quiet = quiet

    def check(self, ok: bool, where: str, what: str, expected: object, got: object = None) -> bool:
        if ok:
            self.passed += 1
            return True
        message = f"FAIL [{where}] {what}: expected {expected}"
        if got is not None:
            message += f"; got {got}"
        self.failed.append(message)
        if not self.quiet:
            print(message)
        return False


def merge(base: dict, override: dict) -> dict:
    """Helm's coalescing of a values file over the chart's values (maps merge, the rest replaces)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def values_for(chart: Path, files: list[str]) -> dict:
    values = yaml.safe_load((chart / "values.yaml").read_text()) or {}
    for name in files:
        values = merge(values, yaml.safe_load((chart / name).read_text()) or {})
    return values


def render(helm: str, chart: Path, files: list[str]) -> list[dict]:
    args = [helm, "template", RELEASE, str(chart), "--namespace", NAMESPACE]
    for name in files:
        args += ["--values", str(chart / name)]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"helm template {' '.join(files) or '(defaults)'} failed:\n{done.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def component_of(doc: dict) -> str | None:
    return (doc.get("metadata", {}).get("labels") or {}).get(COMPONENT)


def quantity(value: object) -> float:
    """A Kubernetes quantity as a number (enough for plain and milli values)."""
    text = str(value)
    if text.endswith("m"):
        return float(text[:-1]) / 1000
    return float(text)


# --- core's autoscaler --------------------------------------------------------------


def check_core_hpa(c: Checks, where: str, docs: list[dict]) -> None:
    hpas = [h for h in by_kind(docs, "HorizontalPodAutoscaler") if component_of(h) == "core"]
    if not c.check(len(hpas) == 1, where, "core HorizontalPodAutoscaler", "exactly one", len(hpas)):
        return
    hpa = hpas[0]
    c.check(hpa.get("apiVersion") == "autoscaling/v2", where, "core HPA apiVersion", "autoscaling/v2", hpa.get("apiVersion"))
    spec = hpa.get("spec", {})
    target = spec.get("scaleTargetRef", {})
    c.check(
        target.get("kind") == "Deployment" and target.get("name") == f"{RELEASE}-core",
        where, "core HPA scaleTargetRef", f"Deployment {RELEASE}-core", target,
    )
    c.check(spec.get("minReplicas") == CORE_HPA["min"], where, "core HPA minReplicas", CORE_HPA["min"], spec.get("minReplicas"))
    c.check(spec.get("maxReplicas") == CORE_HPA["max"], where, "core HPA maxReplicas", CORE_HPA["max"], spec.get("maxReplicas"))
    metrics = spec.get("metrics") or []

    def resource(name: str) -> dict | None:
        found = [m for m in metrics if m.get("type") == "Resource" and m.get("resource", {}).get("name") == name]
        return found[0]["resource"].get("target", {}) if found else None

    for name in ("cpu", "memory"):
        target = resource(name)
        c.check(
            target is not None and target.get("type") == "Utilization" and target.get("averageUtilization") == CORE_HPA[name],
            where, f"core HPA {name} metric", f"Resource {name} Utilization {CORE_HPA[name]} %", target,
        )
    pods = [m.get("pods", {}) for m in metrics if m.get("type") == "Pods"]
    rps = [p for p in pods if p.get("metric", {}).get("name") == "requests_per_second"]
    expected = f"Pods metric requests_per_second, AverageValue {CORE_HPA['rps']}"
    if c.check(len(rps) == 1, where, "core HPA requests_per_second metric", expected, pods or "no Pods metric"):
        target = rps[0].get("target", {})
        ok = target.get("type") == "AverageValue"
        try:
            ok = ok and quantity(target.get("averageValue")) == CORE_HPA["rps"]
        except (TypeError, ValueError):
            ok = False
        c.check(ok, where, "core HPA requests_per_second target", expected, target)


# --- NetworkPolicies ----------------------------------------------------------------


def policies_for(docs: list[dict], component: str) -> list[dict]:
    """The NetworkPolicies whose podSelector picks this release's pods of a component."""
    found = []
    for np in by_kind(docs, "NetworkPolicy"):
        labels = np.get("spec", {}).get("podSelector", {}).get("matchLabels") or {}
        if labels.get(COMPONENT) == component and labels.get(INSTANCE) == RELEASE:
            found.append(np)
    return found


def ingress_peers(policies: list[dict]) -> tuple[list[dict], list[str]]:
    """Every `from` peer of the policies, and the problems that make any source allowed."""
    peers, problems = [], []
    for np in policies:
        spec = np.get("spec", {})
        if "Ingress" not in (spec.get("policyTypes") or []):
            problems.append(f"{np['metadata']['name']} does not restrict ingress (policyTypes {spec.get('policyTypes')})")
        for rule in spec.get("ingress") or []:
            if not rule.get("from"):
                problems.append(f"{np['metadata']['name']} has an ingress rule without `from` (any source)")
            peers.extend(rule.get("from") or [])
    return peers, problems


def non_empty_selector(selector: object) -> bool:
    return isinstance(selector, dict) and bool(selector.get("matchLabels") or selector.get("matchExpressions"))


def is_release_service_peer(peer: dict) -> bool:
    """A peer of this release's pods in the policy's own namespace."""
    if "namespaceSelector" in peer or "ipBlock" in peer:
        return False
    selector = peer.get("podSelector") or {}
    labels = selector.get("matchLabels") or {}
    if labels.get(INSTANCE) != RELEASE or labels.get(NAME) != "anno":
        return False
    if labels.get(COMPONENT) in SERVICES:
        return True
    for expr in selector.get("matchExpressions") or []:
        if expr.get("key") == COMPONENT and expr.get("operator") == "In" and set(expr.get("values") or []) <= set(SERVICES):
            return True
    return False


def is_namespace_peer(peer: dict, selector: dict) -> bool:
    return "ipBlock" not in peer and peer.get("namespaceSelector") == selector


def check_network_policies(c: Checks, where: str, docs: list[dict], values: dict) -> None:
    np_values = values.get("networkPolicy", {})
    ingress_ns = np_values.get("ingressNamespaceSelector")
    monitoring_ns = np_values.get("monitoringNamespaceSelector")
    c.check(non_empty_selector(ingress_ns), where, "networkPolicy.ingressNamespaceSelector",
            "a selector naming the ingress controller's namespace (not every namespace)", ingress_ns)
    c.check(non_empty_selector(monitoring_ns), where, "networkPolicy.monitoringNamespaceSelector",
            "a selector naming Prometheus' namespace (not every namespace)", monitoring_ns)

    # The gateway: from the ingress controller's namespace (and Prometheus') only.
    gateway = policies_for(docs, "gateway")
    if c.check(bool(gateway), where, "gateway NetworkPolicy", "one selecting the gateway's pods", "none"):
        peers, problems = ingress_peers(gateway)
        c.check(not problems, where, "gateway NetworkPolicy ingress", "restricted ingress", problems)
        c.check(any(is_namespace_peer(p, ingress_ns) for p in peers), where, "gateway ingress",
                f"a rule admitting the ingress controller's namespace {ingress_ns}", peers)
        stray = [p for p in peers if not (is_namespace_peer(p, ingress_ns) or is_namespace_peer(p, monitoring_ns))]
        c.check(not stray, where, "gateway ingress sources",
                f"only the ingress namespace {ingress_ns} (and monitoring {monitoring_ns})", stray)

    # The other services: from this release's service pods (and Prometheus') only.
    for name in INTERNAL_SERVICES:
        policies = policies_for(docs, name)
        if not c.check(bool(policies), where, f"{name} NetworkPolicy", f"one selecting the {name} pods", "none"):
            continue
        peers, problems = ingress_peers(policies)
        c.check(not problems, where, f"{name} NetworkPolicy ingress", "restricted ingress", problems)
        c.check(any(is_release_service_peer(p) for p in peers), where, f"{name} ingress",
                "a rule admitting this release's service pods", peers)
        stray = [p for p in peers if not (is_release_service_peer(p) or is_namespace_peer(p, monitoring_ns))]
        c.check(not stray, where, f"{name} ingress sources",
                f"only this release's pods (and monitoring {monitoring_ns}); no ingress namespace, no ipBlock", stray)

    # Core's egress: the internet, never the metadata address nor the cluster's networks.
    core = policies_for(docs, "core")
    if core:
        check_core_egress(c, where, core, values)


def check_core_egress(c: Checks, where: str, policies: list[dict], values: dict) -> None:
    np_values = values.get("networkPolicy", {})
    cluster = [ipaddress.ip_network(n) for n in REQUIRED_CLUSTER_CIDRS + list(np_values.get("clusterCIDRs") or [])]
    metadata = ipaddress.ip_address(METADATA_ADDRESS)
    database = {ipaddress.ip_network(n) for n in np_values.get("databaseCIDRs") or []}
    database_ports = set(np_values.get("databasePorts") or [])
    rules = []
    for np in policies:
        spec = np.get("spec", {})
        c.check("Egress" in (spec.get("policyTypes") or []), where, f"{np['metadata']['name']} policyTypes",
                "Egress restricted", spec.get("policyTypes"))
        rules.extend(spec.get("egress") or [])
    open_rules = [r for r in rules if not r.get("to")]
    c.check(not open_rules, where, "core egress rules", "every rule names its destinations (`to`)", open_rules)

    internet_v4 = False
    for rule in rules:
        ports = {p.get("port") for p in rule.get("ports") or []}
        for peer in rule.get("to") or []:
            block = peer.get("ipBlock")
            if not block:
                continue
            cidr = ipaddress.ip_network(block["cidr"])
            excepted = [ipaddress.ip_network(e) for e in block.get("except") or []]

            def excluded(net: ipaddress._BaseNetwork) -> bool:
                return any(net.version == e.version and net.subnet_of(e) for e in excepted)

            if cidr.version == 4 and cidr.prefixlen == 0:
                internet_v4 = True
            if metadata in cidr:
                c.check(excluded(ipaddress.ip_network(f"{METADATA_ADDRESS}/32")), where,
                        f"core egress to {block['cidr']}", f"except covering {METADATA_ADDRESS}/32", block.get("except"))
            for net in cluster:
                if net.version != cidr.version or not net.overlaps(cidr) or excluded(net):
                    continue
                # Postgres/Redis in a private range: allowed on their ports alone.
                allowed = cidr in database and ports and ports <= database_ports
                c.check(bool(allowed), where, f"core egress to {block['cidr']}",
                        f"except covering the cluster network {net} (only networkPolicy.databaseCIDRs on "
                        f"{sorted(database_ports)} may overlap it)", {"except": block.get("except"), "ports": sorted(ports)})
            if cidr.prefixlen == 0:
                c.check(bool(ports) and ports <= {80, 443}, where, f"core egress to {block['cidr']} ports",
                        "the internet on 80 and 443 only", sorted(ports) or "every port")
    c.check(internet_v4, where, "core egress", "a rule reaching the internet (0.0.0.0/0 with exceptions)", "none")


# --- security contexts --------------------------------------------------------------


def pod_specs(docs: list[dict]) -> list[tuple[str, dict]]:
    found = []
    for d in docs:
        kind, name = d.get("kind"), d.get("metadata", {}).get("name")
        spec = d.get("spec") or {}
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
            found.append((f"{kind}/{name}", spec.get("template", {}).get("spec") or {}))
        elif kind == "CronJob":
            found.append((f"{kind}/{name}", spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec") or {}))
        elif kind == "Pod":
            found.append((f"{kind}/{name}", spec))
    return found


def check_security(c: Checks, where: str, docs: list[dict]) -> None:
    pods = pod_specs(docs)
    c.check(bool(pods), where, "workloads", "at least one pod template", "none")
    for owner, pod in pods:
        pod_sc = pod.get("securityContext") or {}
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            c.check(not pod.get(flag), where, f"{owner} {flag}", "unset or false", pod.get(flag))
        tmp = [v for v in pod.get("volumes") or [] if "emptyDir" in v]
        containers = [(kind, ct) for kind in ("initContainers", "containers", "ephemeralContainers") for ct in pod.get(kind) or []]
        c.check(bool(containers), where, f"{owner} containers", "at least one", "none")
        for kind, ct in containers:
            sc = ct.get("securityContext") or {}
            label = f"{owner} {kind[:-1]} {ct.get('name')}"

            def effective(key: str) -> object:
                return sc[key] if key in sc else pod_sc.get(key)

            c.check(effective("runAsNonRoot") is True, where, f"{label} runAsNonRoot", True, effective("runAsNonRoot"))
            c.check(effective("runAsUser") == UID, where, f"{label} runAsUser", UID, effective("runAsUser"))
            c.check(sc.get("readOnlyRootFilesystem") is True, where, f"{label} readOnlyRootFilesystem", True, sc.get("readOnlyRootFilesystem"))
            c.check(sc.get("allowPrivilegeEscalation") is False, where, f"{label} allowPrivilegeEscalation", False, sc.get("allowPrivilegeEscalation"))
            c.check(not sc.get("privileged"), where, f"{label} privileged", "unset or false", sc.get("privileged"))
            caps = sc.get("capabilities") or {}
            c.check("ALL" in (caps.get("drop") or []), where, f"{label} capabilities.drop", "contains ALL", caps.get("drop"))
            c.check(not caps.get("add"), where, f"{label} capabilities.add", "none", caps.get("add"))
            seccomp = (effective("seccompProfile") or {}).get("type")
            c.check(seccomp == "RuntimeDefault", where, f"{label} seccompProfile", "RuntimeDefault", seccomp)
            mounts = {m.get("mountPath"): m.get("name") for m in ct.get("volumeMounts") or []}
            c.check(mounts.get("/tmp") in {v["name"] for v in tmp}, where, f"{label} /tmp", "an emptyDir mounted at /tmp", mounts)


# --- the shape around them ----------------------------------------------------------


def env_of(container: dict) -> dict:
    return {e["name"]: e.get("value") for e in container.get("env") or [] if "name" in e}


def check_probes(c: Checks, where: str, deployment: dict) -> None:
    name = deployment["metadata"]["name"]
    for ct in deployment["spec"]["template"]["spec"].get("containers") or []:
        live = (ct.get("livenessProbe") or {}).get("httpGet") or {}
        ready = (ct.get("readinessProbe") or {}).get("httpGet") or {}
        c.check(live.get("path") == "/health", where, f"{name} livenessProbe", "httpGet /health", ct.get("livenessProbe"))
        c.check(ready.get("path") == "/ready", where, f"{name} readinessProbe", "httpGet /ready", ct.get("readinessProbe"))
        c.check(bool(ct.get("resources", {}).get("requests")) and bool(ct.get("resources", {}).get("limits")),
                where, f"{name} resources", "requests and limits", ct.get("resources"))


def check_embedded(c: Checks, where: str, docs: list[dict]) -> None:
    deployments = by_kind(docs, "Deployment")
    if not c.check(len(deployments) == 1, where, "Deployments", "exactly one (every service in one process)", len(deployments)):
        return
    d = deployments[0]
    spec = d["spec"]
    c.check(spec.get("replicas") == 1, where, "embedded replicas", 1, spec.get("replicas"))
    c.check(spec.get("strategy", {}).get("type") == "Recreate", where, "embedded strategy", "Recreate", spec.get("strategy"))
    pod = spec["template"]["spec"]
    ct = pod["containers"][0]
    env = env_of(ct)
    c.check(env.get("ANNO_DATA_DIR") == "/data", where, "ANNO_DATA_DIR", "/data", env.get("ANNO_DATA_DIR"))
    c.check(env.get("ANNO_LISTEN") == "0.0.0.0:5213", where, "ANNO_LISTEN", "0.0.0.0:5213", env.get("ANNO_LISTEN"))
    data = [m for m in ct.get("volumeMounts") or [] if m.get("mountPath") == "/data"]
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod.get("volumes") or [] if "persistentVolumeClaim" in v}
    pvcs = {p["metadata"]["name"] for p in by_kind(docs, "PersistentVolumeClaim")}
    ok = len(data) == 1 and claims.get(data[0]["name"]) in pvcs
    c.check(ok, where, "/data", "the chart's PersistentVolumeClaim mounted at /data", {"mounts": data, "claims": claims, "pvcs": sorted(pvcs)})
    check_probes(c, where, d)


# The secret values each service is given (as ANNO_<KEY>_FILE), and no more.
SECRETS_OF = {
    "gateway": {"REDIS_URL"},
    "auth": {"DATABASE_URL", "REDIS_URL", "KEY_PEPPER", "SERVICE_SECRET", "ADMIN_KEY"},
    "tenant": {"DATABASE_URL", "REDIS_URL", "SERVICE_SECRET"},
    "config": {"DATABASE_URL", "REDIS_URL"},
    "core": {"DATABASE_URL", "REDIS_URL"},
}


def check_distributed(c: Checks, where: str, docs: list[dict], values: dict) -> None:
    deployments = {component_of(d): d for d in by_kind(docs, "Deployment")}
    services = {component_of(s): s for s in by_kind(docs, "Service")}
    pdbs = {component_of(p) for p in by_kind(docs, "PodDisruptionBudget")}
    c.check(set(deployments) == set(SERVICES), where, "Deployments", sorted(SERVICES), sorted(map(str, deployments)))
    c.check(set(services) == set(SERVICES), where, "Services", sorted(SERVICES), sorted(map(str, services)))
    c.check(set(SERVICES) <= pdbs, where, "PodDisruptionBudgets", sorted(SERVICES), sorted(map(str, pdbs)))
    for name, d in deployments.items():
        if name not in SERVICES:
            continue
        check_probes(c, where, d)
        ct = d["spec"]["template"]["spec"]["containers"][0]
        env = env_of(ct)
        c.check(ct.get("args") == ["serve", "--service", name], where, f"{name} args", ["serve", "--service", name], ct.get("args"))
        c.check(env.get("ANNO_MIGRATE_ON_START") == "false", where, f"{name} ANNO_MIGRATE_ON_START", "false", env.get("ANNO_MIGRATE_ON_START"))
        secrets = {k[len("ANNO_"):-len("_FILE")] for k in env if k.startswith("ANNO_") and k.endswith("_FILE")}
        c.check(secrets == SECRETS_OF.get(name), where, f"{name} secrets", sorted(SECRETS_OF.get(name, ())), sorted(secrets))
        constraints = d["spec"]["template"]["spec"].get("topologySpreadConstraints") or []
        keys = {t.get("topologyKey") for t in constraints}
        c.check({"topology.kubernetes.io/zone", "kubernetes.io/hostname"} <= keys, where, f"{name} topologySpreadConstraints",
                "zone and hostname", sorted(keys))
        ports = (services.get(name) or {}).get("spec", {}).get("ports") or []
        c.check([p.get("name") for p in ports] == ["http"], where, f"{name} Service ports", "one port named http", ports)

    # The gateway follows core's EndpointSlices with its own ServiceAccount.
    gateway = deployments.get("gateway")
    if gateway:
        pod = gateway["spec"]["template"]["spec"]
        env = env_of(pod["containers"][0])
        c.check(env.get("ANNO_GATEWAY__CORE_DISCOVERY") == "kubernetes" and env.get("ANNO_GATEWAY__CORE_SERVICE") == f"{RELEASE}-core"
                and env.get("ANNO_GATEWAY__CORE_PORT_NAME") == "http" and env.get("ANNO_GATEWAY__CORE_NAMESPACE") == NAMESPACE,
                where, "gateway core discovery", f"kubernetes, {RELEASE}-core in {NAMESPACE}, port http", env)
        sa = pod.get("serviceAccountName")
        bindings = [b for b in by_kind(docs, "RoleBinding") if any(s.get("name") == sa for s in b.get("subjects") or [])]
        roles = {r["metadata"]["name"]: r for r in by_kind(docs, "Role")}
        verbs = set()
        for b in bindings:
            for rule in roles.get(b["roleRef"]["name"], {}).get("rules") or []:
                if "discovery.k8s.io" in rule.get("apiGroups", []) and "endpointslices" in rule.get("resources", []):
                    verbs |= set(rule.get("verbs") or [])
        c.check({"get", "list", "watch"} <= verbs, where, "gateway RBAC", "get, list, watch on endpointslices", sorted(verbs))

    jobs = [j for j in by_kind(docs, "Job") if component_of(j) == "migrate"]
    if c.check(len(jobs) == 1, where, "migration Job", "one", len(jobs)):
        hooks = set((jobs[0]["metadata"].get("annotations") or {}).get("helm.sh/hook", "").split(","))
        c.check({"pre-install", "pre-upgrade"} <= hooks, where, "migration Job hook", "pre-install,pre-upgrade", sorted(hooks))
        ct = jobs[0]["spec"]["template"]["spec"]["containers"][0]
        c.check(ct.get("args") == ["migrate"], where, "migration Job args", ["migrate"], ct.get("args"))


# Gateway paths the internet must not reach: per-tenant metrics, service-to-service calls.
PRIVATE_PATHS = ["/metrics", "/internal/v1/verify"]


def routes(path: dict, url: str) -> bool:
    """Whether an Ingress path sends `url` to its backend (Prefix matches whole elements)."""
    p, kind = path.get("path", ""), path.get("pathType")
    if kind == "Exact":
        return url == p
    if kind == "ImplementationSpecific":
        return url.startswith(p)  # the worst case: a plain string prefix
    prefix = p.rstrip("/")
    return prefix == "" or url == prefix or url.startswith(prefix + "/")


def check_production(c: Checks, where: str, docs: list[dict], values: dict) -> None:
    ingresses = by_kind(docs, "Ingress")
    if c.check(len(ingresses) == 1, where, "Ingress", "one", len(ingresses)):
        spec = ingresses[0]["spec"]
        backends = {p["backend"]["service"]["name"] for r in spec.get("rules") or [] for p in r["http"]["paths"]}
        c.check(backends == {f"{RELEASE}-gateway"}, where, "Ingress backends", f"the gateway alone ({RELEASE}-gateway)", sorted(backends))
        c.check(bool(spec.get("tls")) and all(t.get("secretName") for t in spec["tls"]), where, "Ingress TLS",
                "tls with a secretName", spec.get("tls"))
        hosts = {r.get("host") for r in spec.get("rules") or []}
        tls_hosts = {h for t in spec.get("tls") or [] for h in t.get("hosts") or []}
        c.check(hosts <= tls_hosts, where, "Ingress TLS hosts", f"every host under TLS {sorted(hosts)}", sorted(tls_hosts))
        paths = [p for r in spec.get("rules") or [] for p in r["http"]["paths"]]
        exposed = [p for p in paths for private in PRIVATE_PATHS if routes(p, private)]
        c.check(not exposed, where, "Ingress paths", f"none reaching {', '.join(PRIVATE_PATHS)}", exposed)
        c.check(any(routes(p, "/v1/content/fetch") for p in paths), where, "Ingress paths", "the API under /v1", paths)
    c.check(len(by_kind(docs, "ServiceMonitor")) == 1, where, "ServiceMonitor", "one", len(by_kind(docs, "ServiceMonitor")))
    alerts = {r.get("alert") for p in by_kind(docs, "PrometheusRule") for g in p["spec"]["groups"] for r in g["rules"]}
    wanted = {"HighErrorRate", "TenantRateLimitExceeded", "InstanceDown", "LatencySLOFastBurn", "LatencySLOSlowBurn"}
    c.check(wanted <= alerts, where, "PrometheusRule alerts", sorted(wanted), sorted(a for a in alerts if a))
    dashboards = [m for m in by_kind(docs, "ConfigMap") if (m["metadata"].get("labels") or {}).get("grafana_dashboard") == "1"]
    c.check(len(dashboards) == 1, where, "Grafana dashboard ConfigMap", 'one labelled grafana_dashboard: "1"', len(dashboards))

    crons = {c_["metadata"]["name"]: c_ for c_ in by_kind(docs, "CronJob")}
    off_peak = values["offPeak"]
    expected = {
        f"{RELEASE}-offpeak-start": ("0 2 * * *", str(off_peak["minReplicas"])),
        f"{RELEASE}-offpeak-end": ("0 6 * * *", str(values["core"]["autoscaling"]["minReplicas"])),
    }
    for name, (schedule, floor) in expected.items():
        cron = crons.get(name)
        if not c.check(cron is not None, where, f"CronJob {name}", "present", sorted(crons)):
            continue
        spec = cron["spec"]
        c.check(spec.get("schedule") == schedule and spec.get("timeZone") == "Etc/UTC", where, f"{name} schedule",
                f"{schedule} Etc/UTC", f"{spec.get('schedule')} {spec.get('timeZone')}")
        args = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0].get("args")
        c.check(args[:5] == ["scale", "--hpa", f"{RELEASE}-core", "--min-replicas", floor], where, f"{name} args",
                f"scale --hpa {RELEASE}-core --min-replicas {floor}", args)
    roles = [r for r in by_kind(docs, "Role") if component_of(r) == "offpeak"]
    rules = [rule for r in roles for rule in r.get("rules") or []]
    ok = bool(rules) and all(
        rule.get("resources") == ["horizontalpodautoscalers"] and rule.get("resourceNames") == [f"{RELEASE}-core"]
        and set(rule.get("verbs") or []) <= {"get", "patch"}
        for rule in rules
    )
    c.check(ok, where, "off-peak Role", f"get/patch on horizontalpodautoscalers {RELEASE}-core only", rules)


def run_checks(helm: str, chart: Path, quiet: bool = False) -> Checks:
    c = Checks(quiet=quiet)
    for where, files in RENDERS.items():
        try:
            docs = render(helm, chart, files)
        except RuntimeError as error:
            c.check(False, where, "helm template", "a successful render", str(error))
            continue
        values = values_for(chart, files)
        check_security(c, where, docs)
        if where == "embedded":
            check_embedded(c, where, docs)
            continue
        check_core_hpa(c, where, docs)
        check_network_policies(c, where, docs, values)
        check_distributed(c, where, docs, values)
        if where == "production":
            check_production(c, where, docs, values)
    return c


# --- mutations: the checks above must catch these -------------------------------------

# (what a careless edit does, file in the chart, text, replacement)
MUTATIONS = [
    ("core HPA floor lowered", "values.yaml", "    minReplicas: 3\n    maxReplicas: 100", "    minReplicas: 2\n    maxReplicas: 100"),
    ("core memory target dropped", "values.yaml", "targetMemoryUtilizationPercentage: 80", "targetMemoryUtilizationPercentage: null"),
    ("requests_per_second target changed", "templates/hpa.yaml", "averageValue: {{ . | quote }}", 'averageValue: "1k"'),
    ("metadata address no longer excepted", "templates/networkpolicy.yaml", "concat $np.clusterCIDRs $np.metadataCIDRs", "$np.clusterCIDRs"),
    ("a cluster range dropped", "values.yaml", 'clusterCIDRs: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]', 'clusterCIDRs: ["10.0.0.0/8"]'),
    ("core egress opened to every port", "templates/networkpolicy.yaml", "    {{- range $np.internetPorts }}", "    {{- range list }}"),
    ("gateway open to every namespace", "values.yaml",
     "  ingressNamespaceSelector:\n    matchLabels:\n      kubernetes.io/metadata.name: ingress-nginx", "  ingressNamespaceSelector: {}"),
    ("internal services open to the ingress controller", "templates/networkpolicy.yaml",
     '    {{- if eq $name "gateway" }}\n    {{- with include "anno.np.ingressControllerIngress"', '    {{- if true }}\n    {{- with include "anno.np.ingressControllerIngress"'),
    ("root filesystem writable", "templates/_helpers.tpl",
     "{{ toYaml .Values.securityContext }}", '{{ toYaml (omit .Values.securityContext "readOnlyRootFilesystem") }}'),
    ("privilege escalation allowed in the migration Job", "templates/migrate-job.yaml",
     '{{- include "anno.containerSecurityContext" . | nindent 12 }}',
     '{{- include "anno.containerSecurityContext" . | replace "allowPrivilegeEscalation: false" "allowPrivilegeEscalation: true" | nindent 12 }}'),
    ("capabilities kept by the services", "templates/distributed.yaml",
     '{{- include "anno.containerSecurityContext" $ | nindent 12 }}',
     '{{- include "anno.containerSecurityContext" $ | replace "- ALL" "- NET_RAW" | nindent 12 }}'),
    ("the off-peak Job runs as root", "templates/offpeak.yaml",
     '{{- include "anno.containerSecurityContext" $ | nindent 16 }}',
     '{{- include "anno.containerSecurityContext" $ | replace "runAsNonRoot: true" "runAsNonRoot: false" | replace "runAsUser: 10001" "runAsUser: 0" | nindent 16 }}'),
    ("the tenant service without the service secret", "templates/_helpers.tpl",
     '"tenant" }}databaseUrl redisUrl serviceSecret', '"tenant" }}databaseUrl redisUrl'),
    ("the gateway given the key pepper", "templates/_helpers.tpl", 'eq .component "gateway" }}redisUrl', 'eq .component "gateway" }}redisUrl keyPepper'),
    ("the Ingress routes every path", "values.yaml", "    - path: /v1\n      pathType: Prefix", "    - path: /\n      pathType: Prefix"),
    ("gateway policy ignores the ingress namespace value", "templates/networkpolicy.yaml",
     "- namespaceSelector:\n        {{- toYaml .root.Values.networkPolicy.ingressNamespaceSelector | nindent 8 }}",
     "- namespaceSelector: {}"),
]


def run_mutations(helm: str, chart: Path) -> int:
    escaped = []
    with tempfile.TemporaryDirectory(prefix="anno-chart-") as tmp:
        for what, name, old, new in MUTATIONS:
            copy_dir = Path(tmp) / "anno"
            if copy_dir.exists():
                shutil.rmtree(copy_dir)
            shutil.copytree(chart, copy_dir)
            path = copy_dir / name
            text = path.read_text()
            if text.count(old) != 1:
                print(f"FAIL mutation '{what}': expected the text to replace exactly once in {name}; found {text.count(old)} times")
                escaped.append(what)
                continue
            path.write_text(text.replace(old, new))
            result = run_checks(helm, copy_dir, quiet=True)
            if result.failed:
                print(f"ok   mutation '{what}' caught: {result.failed[0]}")
            else:
                print(f"FAIL mutation '{what}': expected a failing check; all {result.passed} passed")
                escaped.append(what)
    print(f"{len(MUTATIONS) - len(escaped)} passed, {len(escaped)} failed")
    return 1 if escaped else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chart", type=Path, default=CHART, help="the chart directory [deploy/helm/anno]")
    parser.add_argument("--helm", default=os.environ.get("HELM", "helm"), help="the helm binary [$HELM or helm]")
    parser.add_argument("--mutations", action="store_true", help="check that broken copies of the chart fail")
    args = parser.parse_args()
    if args.mutations:
        return run_mutations(args.helm, args.chart)
    result = run_checks(args.helm, args.chart)
    print(f"{result.passed} passed, {len(result.failed)} failed")
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
