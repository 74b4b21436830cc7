"""The deploy files under deploy/ (as far as this machine can check them: no
Kubernetes cluster here).

Every *.yaml / *.yml file under deploy/, whoever adds it, must parse with a
YAML parser (Debian's python3-yaml) and may name only options and
STATUSGATE_* variables that the real binary lists in `statusgate serve
--help` (or the --help of the sub-command a container runs). For the
Kubernetes manifests it also checks what an operator relies on: the kinds,
the probes on /readyz and /healthz, the preStop drain and the grace period
above it, memory sized from the measured per-connection cost, the non-root
uid of the image, and that every name one object uses (ConfigMap, Secret,
Service, claim, port, labels) is defined by another.
"""
import glob
import os
import re
import shlex
import subprocess

import yaml

from harness import BIN, SOURCE_DIR, Runner

t = Runner()

DEPLOY = os.path.join(SOURCE_DIR, "deploy")
K8S = os.path.join(DEPLOY, "kubernetes")
STORE_DIR = "/var/lib/statusgate"
# measured memory (docs/BENCHMARKS.md; deployment.yaml has the arithmetic)
BASE_BYTES = 32 * 2**20
IDLE_CONN_BYTES = 6000
BUSY_CONN_BYTES = 17000
# the gateway's own drain after SIGTERM: at most 2 s for close handshakes,
# then the last commit; the grace period must leave this much after preStop
DRAIN_SECONDS = 10

_help = {}


def help_of(command="serve"):
    """(options, variables) that `statusgate COMMAND --help` lists."""
    if command not in _help:
        p = subprocess.run([BIN, command, "--help"], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, "statusgate %s --help: exit %d\n%s" % (command, p.returncode,
                                                                         p.stderr)
        text = p.stdout
        opts = set(re.findall(r"^\s*(?:-\w, )?(--[a-z][a-z0-9-]*)", text, re.M))
        envs = set(re.findall(r"\b(STATUSGATE_[A-Z0-9_]+)\b", text))
        assert opts, "no options found in statusgate %s --help:\n%s" % (command, text)
        _help[command] = (opts, envs)
    return _help[command]


def yaml_files():
    files = sorted(f for pat in ("**/*.yaml", "**/*.yml")
                   for f in glob.glob(os.path.join(DEPLOY, pat), recursive=True))
    assert files, "no YAML files under " + DEPLOY
    return files


def load(path):
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    assert docs, path + " holds no YAML document"
    for d in docs:
        assert isinstance(d, dict), "%s: a document is a %s, not a mapping" % (path, type(d).__name__)
    return docs


def k8s_objects():
    objs = []
    for path in yaml_files():
        if path.startswith(K8S + os.sep):
            for d in load(path):
                objs.append((os.path.relpath(path, SOURCE_DIR), d))
    return objs


def by_kind(objs, kind):
    return [(p, o) for p, o in objs if o.get("kind") == kind]


def workloads(objs):
    return [(p, o) for p, o in objs if o.get("kind") in ("Deployment", "StatefulSet")]


def is_gateway(image):
    return "statusgate" in str(image or "")


def builds_gateway(compose_path, build):
    """A compose service's build: this repository's Dockerfile."""
    if not build:
        return False
    ctx, dockerfile = (build, "Dockerfile") if isinstance(build, str) else \
        (build.get("context", "."), build.get("dockerfile", "Dockerfile"))
    ctx = os.path.realpath(os.path.join(os.path.dirname(compose_path), ctx))
    return ctx == os.path.realpath(SOURCE_DIR) and os.path.basename(dockerfile) == "Dockerfile"


def gateway_container(path, wl):
    cs = [c for c in wl["spec"]["template"]["spec"]["containers"] if is_gateway(c.get("image"))]
    assert len(cs) == 1, "%s %s: %d statusgate containers" % (path, wl["metadata"]["name"], len(cs))
    return cs[0]


def image_user():
    """The numeric uid:gid of the Dockerfile's USER."""
    with open(os.path.join(SOURCE_DIR, "Dockerfile")) as f:
        users = re.findall(r"^USER\s+(\S+)", f.read(), re.M)
    assert users, "no USER in the Dockerfile"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and gid.isdigit(), "the Dockerfile's USER is not numeric: " + users[-1]
    return int(uid), int(gid)


def quantity(q):
    """Kubernetes memory quantity in bytes."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?", str(q))
    assert m, "not a memory quantity: %r" % (q,)
    mult = {None: 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
            "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}[m.group(2)]
    return float(m.group(1)) * mult


def env_sources(objs, container):
    """{variable: value or None (from elsewhere)} a container gets from
    envFrom'd ConfigMaps and Secrets and its own env."""
    maps = {(o["kind"], o["metadata"]["name"]): o for _, o in objs
            if o.get("kind") in ("ConfigMap", "Secret")}
    env = {}
    for src in container.get("envFrom") or []:
        kind, ref = ("ConfigMap", src["configMapRef"]) if "configMapRef" in src \
            else ("Secret", src["secretRef"])
        obj = maps.get((kind, ref["name"]))
        assert obj, "envFrom names %s %s, which deploy/kubernetes/ does not define" % (kind, ref["name"])
        env.update((obj.get("data") or {}))
        env.update((obj.get("stringData") or {}))
    for e in container.get("env") or []:
        env[e["name"]] = e.get("value")
    return env


@t.test
def every_yaml_file_parses():
    files = yaml_files()
    for path in files:
        for d in load(path):
            if path.startswith(K8S + os.sep):
                for key in ("apiVersion", "kind", "metadata"):
                    assert key in d, "%s: a document without %s" % (path, key)
                assert d["metadata"].get("name"), "%s: a %s without a name" % (path, d["kind"])
    names = [os.path.relpath(f, DEPLOY) for f in files]
    print("parsed: " + ", ".join(names))


@t.test
def kubernetes_has_every_kind_an_operator_needs():
    kinds = {o["kind"] for _, o in k8s_objects()}
    for kind in ("Deployment", "StatefulSet", "Service", "PodDisruptionBudget",
                 "ConfigMap", "Secret"):
        assert kind in kinds, "deploy/kubernetes/ has no %s (has %s)" % (kind, sorted(kinds))


@t.test
def options_and_variables_are_the_binarys():
    """Every STATUSGATE_* name written anywhere in a deploy file, every key
    of a ConfigMap or Secret a statusgate container takes whole (envFrom),
    and every --option on a statusgate command line (Kubernetes command/args,
    compose command/entrypoint) is one that --help lists."""
    serve_opts, serve_envs = help_of("serve")
    assert "--listen" in serve_opts and "STATUSGATE_DB" in serve_envs, (serve_opts, serve_envs)
    seen_envs, seen_opts, bad = set(), set(), []

    def check_command(where, tokens):
        tokens = [str(x) for x in tokens]
        sub = next((x for x in tokens if x in ("serve", "publish", "demo")), "serve")
        opts, _ = help_of(sub)
        for tok in tokens:
            if tok.startswith("--"):
                name = tok.split("=", 1)[0]
                seen_opts.add(name)
                if name not in opts:
                    bad.append("%s: %s is not an option of statusgate %s" % (where, name, sub))

    def words(v):
        return shlex.split(v) if isinstance(v, str) else list(v or [])

    for path in yaml_files():
        rel = os.path.relpath(path, SOURCE_DIR)
        with open(path) as f:
            for name in re.findall(r"\b(STATUSGATE_[A-Z0-9_]+)", f.read()):
                seen_envs.add(name)
                if name not in serve_envs:
                    bad.append("%s: %s is not a variable statusgate serve reads" % (rel, name))
        for d in load(path):
            # compose: services running the statusgate image (or built here)
            for sname, svc in (d.get("services") or {}).items() if isinstance(d.get("services"), dict) else []:
                if not (is_gateway(svc.get("image")) or builds_gateway(path, svc.get("build"))):
                    continue
                for key in ("entrypoint", "command"):
                    if key in svc:
                        check_command("%s services.%s.%s" % (rel, sname, key), words(svc[key]))
                envs = svc.get("environment") or {}
                pairs = envs.items() if isinstance(envs, dict) else \
                    (e.partition("=")[::2] for e in envs)
                for k, v in pairs:
                    if k.startswith("STATUSGATE_") and v in ("", None):
                        bad.append("%s services.%s: %s is empty (an empty value is not unset)"
                                   % (rel, sname, k))
            # Kubernetes: statusgate containers of any pod template
            spec = (d.get("spec") or {}).get("template", {}).get("spec") if d.get("kind") else None
            for c in (spec or {}).get("containers", []) + (spec or {}).get("initContainers", []):
                if not is_gateway(c.get("image")):
                    continue
                where = "%s %s/%s" % (rel, d["metadata"]["name"], c["name"])
                check_command(where, words(c.get("command")) + words(c.get("args")))
                for k, v in env_sources(k8s_objects(), c).items():
                    if not k.startswith("STATUSGATE_"):
                        bad.append("%s: %s would be ignored: statusgate reads STATUSGATE_* only"
                                   % (where, k))
                    elif v == "":
                        bad.append("%s: %s is empty (an empty value is not unset)" % (where, k))
                    seen_envs.add(k)
    assert not bad, "\n".join(bad)
    assert len(seen_envs) >= 5, seen_envs
    print("checked against --help: %s" % ", ".join(sorted(seen_envs | seen_opts)))


@t.test
def probes_ask_readyz_and_healthz_on_the_gateway_port():
    objs = k8s_objects()
    assert workloads(objs)
    for path, wl in workloads(objs):
        c = gateway_container(path, wl)
        env = env_sources(objs, c)
        listen = env.get("STATUSGATE_LISTEN") or "0.0.0.0:8080"   # the image's ENV
        port = int(listen.rsplit(":", 1)[1])
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        assert port in ports.values(), "%s: no containerPort %d: %s" % (path, port, ports)
        for probe, want in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            get = (c.get(probe) or {}).get("httpGet")
            assert get, "%s: %s is not an httpGet" % (path, probe)
            assert get["path"] == want, "%s: %s asks %s" % (path, probe, get["path"])
            p = get["port"]
            assert ports.get(p, p) == port, "%s: %s port %r is not %d" % (path, probe, p, port)


@t.test
def stopping_drains_with_sigterm_within_the_grace_period():
    for path, wl in workloads(k8s_objects()):
        pod = wl["spec"]["template"]["spec"]
        c = gateway_container(path, wl)
        cmd = c["lifecycle"]["preStop"]["exec"]["command"]
        script = " ".join(cmd)
        assert re.search(r"\bkill -(TERM|15) 1\b", script), \
            "%s: preStop does not send SIGTERM to the gateway (PID 1): %r" % (path, cmd)
        assert cmd[0] in ("bash", "/bin/bash", "sh", "/bin/sh"), cmd
        sleep = sum(float(s) for s in re.findall(r"\bsleep (\d+(?:\.\d+)?)", script))
        grace = pod.get("terminationGracePeriodSeconds", 30)
        assert grace >= sleep + DRAIN_SECONDS, \
            "%s: terminationGracePeriodSeconds %s is not above preStop %ss + drain %ss" % (
                path, grace, sleep, DRAIN_SECONDS)


@t.test
def memory_is_sized_for_the_connection_cap():
    objs = k8s_objects()
    _, envs = help_of("serve")
    for path, wl in workloads(objs):
        c = gateway_container(path, wl)
        cap = int(env_sources(objs, c).get("STATUSGATE_MAX_CONNECTIONS") or 10000)
        res = c.get("resources") or {}
        req = quantity(res["requests"]["memory"])
        lim = quantity(res["limits"]["memory"])
        assert req <= lim, (path, res)
        assert req >= BASE_BYTES + cap * IDLE_CONN_BYTES, \
            "%s: memory request %s < 32 MiB + %d idle connections x 6 kB" % (path, res, cap)
        assert lim >= BASE_BYTES + cap * BUSY_CONN_BYTES, \
            "%s: memory limit %s < 32 MiB + %d busy connections x 17 kB" % (path, res, cap)
        assert res["requests"].get("cpu"), (path, res)


@t.test
def pods_run_as_the_images_user_with_the_store_on_a_volume():
    uid, gid = image_user()
    objs = k8s_objects()
    claims = {o["metadata"]["name"] for _, o in by_kind(objs, "PersistentVolumeClaim")}
    for path, wl in workloads(objs):
        pod = wl["spec"]["template"]["spec"]
        sc = pod.get("securityContext") or {}
        assert sc.get("runAsNonRoot") is True, (path, sc)
        assert (sc.get("runAsUser"), sc.get("fsGroup")) == (uid, gid), \
            "%s: runAsUser/fsGroup %s/%s, the image's USER is %d:%d" % (
                path, sc.get("runAsUser"), sc.get("fsGroup"), uid, gid)
        assert pod.get("enableServiceLinks") is False, \
            "%s: enableServiceLinks would add STATUSGATE_* variables for the Service" % path
        c = gateway_container(path, wl)
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        assert STORE_DIR in mounts, "%s: nothing mounted on %s" % (path, STORE_DIR)
        vol = mounts[STORE_DIR]
        if wl["kind"] == "StatefulSet":
            tmpl = {t["metadata"]["name"] for t in wl["spec"].get("volumeClaimTemplates", [])}
            assert vol in tmpl, "%s: the store is not on a volumeClaimTemplate" % path
        else:
            v = {v["name"]: v for v in pod.get("volumes", [])}[vol]
            claim = v.get("persistentVolumeClaim", {}).get("claimName")
            assert claim in claims, "%s: the store's volume is not a claim defined here: %r" % (path, v)
            # one SQLite writer: never two pods on one store, not even in a rollout
            assert wl["spec"].get("replicas", 1) == 1, path
            assert wl["spec"].get("strategy", {}).get("type") == "Recreate", path


@t.test
def statefulset_names_each_instance_after_its_pod():
    objs = k8s_objects()
    headless = {o["metadata"]["name"] for _, o in by_kind(objs, "Service")
                if o["spec"].get("clusterIP") == "None"}
    secrets = {o["metadata"]["name"]: o for _, o in by_kind(objs, "Secret")}
    sets = by_kind(objs, "StatefulSet")
    assert sets
    for path, ss in sets:
        assert ss["spec"]["serviceName"] in headless, \
            "%s: serviceName %s is not a headless Service here" % (path, ss["spec"]["serviceName"])
        c = gateway_container(path, ss)
        env = {e["name"]: e for e in c.get("env", [])}
        inst = env.get("STATUSGATE_INSTANCE", {}).get("valueFrom", {}).get("fieldRef", {})
        assert inst.get("fieldPath") == "metadata.name", \
            "%s: STATUSGATE_INSTANCE is not the pod's name: %r" % (path, env.get("STATUSGATE_INSTANCE"))
        amqp = env.get("STATUSGATE_AMQP")
        assert amqp, "%s: several instances need the broker (STATUSGATE_AMQP)" % path
        ref = amqp.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            sec = secrets.get(ref["name"])
            assert sec, "%s: Secret %s is not defined" % (path, ref["name"])
            keys = set(sec.get("data") or {}) | set(sec.get("stringData") or {})
            assert ref["key"] in keys, "%s: Secret %s has no key %s" % (path, ref["name"], ref["key"])
            url = (sec.get("stringData") or {}).get(ref["key"], "amqp://")
            assert url.startswith("amqp://"), url


@t.test
def services_and_budget_select_the_gateway_pods():
    objs = k8s_objects()
    pods = []
    for path, wl in workloads(objs):
        labels = wl["spec"]["template"]["metadata"]["labels"]
        sel = wl["spec"]["selector"]["matchLabels"]
        assert sel.items() <= labels.items(), "%s: selector %s misses the pod labels %s" % (
            path, sel, labels)
        pods.append((path, labels, gateway_container(path, wl)))
    services = by_kind(objs, "Service")
    budgets = by_kind(objs, "PodDisruptionBudget")
    for path, svc in services:
        sel = svc["spec"]["selector"]
        for wpath, labels, c in pods:
            assert sel.items() <= labels.items(), "%s: does not select %s's pods" % (path, wpath)
            names = {p.get("name") for p in c["ports"]} | {p["containerPort"] for p in c["ports"]}
            for p in svc["spec"]["ports"]:
                assert p.get("targetPort", p["port"]) in names, \
                    "%s: targetPort %r is not a port of %s" % (path, p.get("targetPort"), wpath)
    for path, pdb in budgets:
        sel = pdb["spec"]["selector"]["matchLabels"]
        assert "maxUnavailable" in pdb["spec"] or "minAvailable" in pdb["spec"], path
        for wpath, labels, _ in pods:
            assert sel.items() <= labels.items(), "%s: does not cover %s's pods" % (path, wpath)


t.run()
