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

For deploy/compose.yaml (no compose engine runs here) it checks what the file
promises: the services (broker, two or more gateways built from this
repository, the user's web application from a required variable, nginx),
each gateway with its own --instance and its own named volume, the broker's
URL and user, health checks on /readyz and on a path the nginx config serves,
and that compose.yaml and deploy/nginx/statusgate.conf (the file the
integration tests run) agree: the upstream names and ports resolve to the
gateways and the web service on a network nginx is on, nginx's fixed address
is the gateways' --trusted-proxies and lies outside --publish-networks, and
the config the nginx container reads is that very file, next to a main
nginx.conf that a real nginx (`nginx -t`) accepts with it.
"""
import glob
import ipaddress
import os
import re
import shlex
import shutil
import subprocess
import tempfile

import yaml

import nginx_proxy
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


# ---- deploy/compose.yaml ----

COMPOSE = os.path.join(DEPLOY, "compose.yaml")
NGINX_CONF = os.path.join(DEPLOY, "nginx", "statusgate.conf")
NGINX_MAIN = os.path.join(DEPLOY, "nginx", "nginx.conf")
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def compose():
    (doc,) = load(COMPOSE)
    return doc


def interpolate(value, env):
    """compose's interpolation of a value, with env as the operator's
    variables: ${X:-d} and ${X-d} default, ${X:?e} and ${X?e} fail unset"""
    def one(m):
        name, op, arg = m.group(1), m.group(2), m.group(3)
        v = env.get(name)
        if op in (":-", "-"):
            return v if (v if op == ":-" else v is not None) else arg
        if op in (":?", "?"):
            assert (v if op == ":?" else v is not None), "compose would stop: " + arg
        return v or ""
    return INTERPOLATION.sub(one, str(value)).replace("$$", "$")


# what an operator sets, per the header of compose.yaml
OPERATOR = {"WEB_IMAGE": "example/web:1", "RABBITMQ_PASSWORD": "s3cr3tpass",
            "PUBLISH_TOKEN": "t0ken"}


def compose_gateways(doc):
    """{service name: service} of the services that run statusgate"""
    return {n: s for n, s in doc["services"].items()
            if is_gateway(s.get("image")) or builds_gateway(COMPOSE, s.get("build"))}


def compose_env(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.partition("=")[::2] for e in env)
    return env


def serve_args(svc):
    """the statusgate options of a compose service's command, as {option: value}"""
    cmd = svc.get("command") or []
    words = shlex.split(cmd) if isinstance(cmd, str) else [str(w) for w in cmd]
    out = {}
    for i, w in enumerate(words):
        if w.startswith("--"):
            name, eq, val = w.partition("=")
            out[name] = val if eq else (words[i + 1] if i + 1 < len(words) else None)
    return out


def option(svc, opt):
    """an option's value: on the command line, else in environment:"""
    v = serve_args(svc).get(opt)
    return v if v is not None else compose_env(svc).get(
        "STATUSGATE_" + opt[2:].upper().replace("-", "_"))


def upstream_servers():
    """{upstream name: ["host:port", ...]} of the nginx config"""
    with open(NGINX_CONF) as f:
        text = f.read()
    ups = {}
    for name, body in re.findall(r"upstream\s+(\S+)\s*\{(.*?)\}", text, re.S):
        ups[name] = re.findall(r"^\s*server\s+(\S+?);", body, re.M)
    return ups, text


def networks_of(svc):
    nets = svc.get("networks") or {}
    return {n: {} for n in nets} if isinstance(nets, list) else \
        {n: (v or {}) for n, v in nets.items()}


def subnet(doc, net):
    cfg = ((doc.get("networks") or {}).get(net) or {}).get("ipam", {}).get("config") or []
    nets = [ipaddress.ip_network(c["subnet"]) for c in cfg if "subnet" in c]
    assert len(nets) == 1, "network %s: expected one fixed subnet, has %r" % (net, cfg)
    return nets[0]


def resolves_to(doc, host, via_networks):
    """the services that answer to a host name on the given networks: the
    service name itself or a network alias"""
    found = set()
    for name, svc in doc["services"].items():
        for net, cfg in networks_of(svc).items():
            if net in via_networks and (host == name or host in (cfg.get("aliases") or [])):
                found.add(name)
    return found


def health_request(svc, where):
    """(port, path) that a health check of the form the image uses asks"""
    test = (svc.get("healthcheck") or {}).get("test")
    assert test, "%s: no healthcheck" % where
    script = " ".join(str(x) for x in test) if isinstance(test, list) else str(test)
    port = re.search(r"/dev/tcp/127\.0\.0\.1/(\d+)", script)
    path = re.search(r"GET (/\S*) HTTP/1\.1", script)
    assert port and path, "%s: health check does not ask a path on a port: %r" % (where, test)
    assert "timeout" in script, "%s: health check without its own time limit: %r" % (where, test)
    return int(port.group(1)), path.group(1)


@t.test
def compose_file_interpolates_cleanly():
    """No engine here to render it: every $ is ${VAR...}, ${VAR:-default},
    ${VAR:?error} or an escaped $$, and the required variables are the ones
    the file's header tells the operator to set."""
    with open(COMPOSE) as f:
        text = f.read()
    stripped = "\n".join(line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""
                         for line in text.splitlines())
    rest = INTERPOLATION.sub("", stripped.replace("$$", ""))
    assert "$" not in rest, "compose.yaml: a $ that is neither ${VAR...} nor $$: %r" % (
        rest[rest.index("$") - 40:rest.index("$") + 40])
    required = {m.group(1) for m in INTERPOLATION.finditer(stripped) if m.group(2) in (":?", "?")}
    for m in INTERPOLATION.finditer(stripped):
        if m.group(2) in (":?", "?"):
            assert m.group(3).strip(), "${%s:?} without a message for the operator" % m.group(1)
    assert {"WEB_IMAGE", "RABBITMQ_PASSWORD", "PUBLISH_TOKEN"} <= required, required
    assert set(OPERATOR) == required, "OPERATOR here and the file disagree: %s" % required
    for var in required:      # unset, compose stops with the file's message
        try:
            interpolate(stripped, {k: v for k, v in OPERATOR.items() if k != var})
        except AssertionError as e:
            assert var in str(e), e
        else:
            raise AssertionError("compose.yaml renders without %s" % var)
    rendered = yaml.safe_load(interpolate(stripped, OPERATOR))
    assert rendered["services"]["web"]["image"] == OPERATOR["WEB_IMAGE"]
    header = text.split("\nname:", 1)[0]
    for var in required:
        assert re.search(r"^#\s+%s\s+required" % var, header, re.M), \
            "compose.yaml's header does not list the required variable %s" % var
    print("required: " + ", ".join(sorted(required)))


@t.test
def compose_has_broker_gateways_web_and_nginx():
    doc = compose()
    services = doc["services"]
    gws = compose_gateways(doc)
    assert len(gws) >= 2, "compose.yaml runs %d gateways: %s" % (len(gws), sorted(gws))
    for name, svc in gws.items():
        assert builds_gateway(COMPOSE, svc.get("build")), "%s is not built from the Dockerfile" % name
        assert svc.get("restart") in ("always", "unless-stopped"), (name, svc.get("restart"))
    for need in ("rabbitmq", "web", "nginx"):
        assert need in services, "compose.yaml has no %s service (has %s)" % (need, sorted(services))
    # the web application is the user's: an image they must name
    m = INTERPOLATION.fullmatch(str(services["web"].get("image", "")))
    assert m and m.group(2) == ":?", \
        "web's image must come from a required variable (${VAR:?message}): %r" % (
            services["web"].get("image"),)
    assert "build" not in services["web"], "web is the user's own image, not built here"


@t.test
def each_gateway_is_its_own_instance_with_its_own_volume():
    doc = compose()
    declared = set(doc.get("volumes") or {})
    instances, volumes = {}, {}
    for name, svc in compose_gateways(doc).items():
        inst = option(svc, "--instance")
        assert inst, "%s: no --instance (each gateway needs its own queue)" % name
        assert inst not in instances, "%s and %s share --instance %s" % (instances[inst], name, inst)
        instances[inst] = name
        mounts = {}
        for v in svc.get("volumes") or []:
            src, _, dst = str(v).partition(":")
            mounts[dst.split(":")[0]] = src
        src = mounts.get(STORE_DIR)
        assert src, "%s: nothing mounted on %s" % (name, STORE_DIR)
        assert src in declared, "%s: %s is not a named volume of the file" % (name, src)
        assert src not in volumes, "%s and %s share the volume %s (one SQLite writer each)" % (
            volumes[src], name, src)
        volumes[src] = name
        assert option(svc, "--db") in (None, STORE_DIR + "/statusgate.db"), \
            "%s: the store is not on its volume" % name
    print("instances: %s" % ", ".join("%s (%s)" % (v, k) for k, v in sorted(instances.items())))


@t.test
def gateways_reach_the_broker_with_its_own_user():
    doc = compose()
    broker = doc["services"]["rabbitmq"]
    benv = compose_env(broker)
    assert INTERPOLATION.fullmatch(str(benv.get("RABBITMQ_DEFAULT_PASS"))), \
        "a password written into the file: %r" % benv.get("RABBITMQ_DEFAULT_PASS")
    user = interpolate(benv.get("RABBITMQ_DEFAULT_USER"), OPERATOR)
    password = interpolate(benv.get("RABBITMQ_DEFAULT_PASS"), OPERATOR)
    assert user and password, "rabbitmq: RABBITMQ_DEFAULT_USER/PASS not set: %r" % benv
    assert "guest" not in (user, password), "guest logs in from localhost only"
    # and with another user name the two sides still agree
    other = dict(OPERATOR, RABBITMQ_USER="ops")
    assert interpolate(benv.get("RABBITMQ_DEFAULT_USER"), other) == "ops"
    assert (broker.get("healthcheck") or {}).get("test"), "rabbitmq has no health check"
    assert any(str(v).endswith(":/var/lib/rabbitmq") for v in broker.get("volumes") or []), \
        "rabbitmq keeps its messages on no volume"
    assert broker.get("hostname"), "rabbitmq without a fixed hostname loses its node's data dir"
    for name, svc in compose_gateways(doc).items():
        url = option(svc, "--amqp")
        assert url, "%s: no --amqp: several instances need the broker" % name
        for env in (OPERATOR, other):
            for one in interpolate(url, env).split(","):
                m = re.fullmatch(r"amqp://([^:@]+):([^@]+)@([^:/]+):(\d+)/", one)
                assert m, "%s: not an amqp://user:password@host:port/ URL: %r" % (name, one)
                assert (m.group(1), m.group(2)) == (interpolate(benv["RABBITMQ_DEFAULT_USER"], env),
                                                    interpolate(benv["RABBITMQ_DEFAULT_PASS"], env)), \
                    "%s: logs in as %s:%s, not as the broker's user" % (name, m.group(1), m.group(2))
                assert "rabbitmq" in resolves_to(doc, m.group(3), networks_of(svc)), \
                    "%s: %s is not the rabbitmq service on one of its networks" % (name, m.group(3))
                assert m.group(4) == "5672", one
        dep = (svc.get("depends_on") or {}).get("rabbitmq") or {}
        assert dep.get("condition") == "service_healthy", \
            "%s: does not wait for the broker to be healthy: %r" % (name, dep)
        token = compose_env(svc).get("STATUSGATE_PUBLISH_TOKEN")
        m = INTERPOLATION.fullmatch(str(token or ""))
        assert m and m.group(2) == ":?", "%s: the publish token must come from a required " \
            "variable, not be written here: %r" % (name, token)


@t.test
def health_checks_ask_readyz_and_nginx_serves_its_own():
    doc = compose()
    for name, svc in compose_gateways(doc).items():
        port, path = health_request(svc, name)
        listen = option(svc, "--listen") or "0.0.0.0:8080"     # the image's ENV
        assert port == int(listen.rsplit(":", 1)[1]), "%s: checks port %d, listens on %s" % (
            name, port, listen)
        assert path == "/readyz", "%s: health check asks %s, not /readyz" % (name, path)
    ng = doc["services"]["nginx"]
    port, path = health_request(ng, "nginx")
    _, conf = upstream_servers()
    assert re.search(r"^\s*listen %d;" % port, conf, re.M), "nginx's check asks port %d, " \
        "statusgate.conf listens elsewhere" % port
    loc = re.search(r"location\s+=\s+%s\s*\{\s*proxy_pass\s+http://(\w+)/(\S+);" % re.escape(path),
                    conf)
    assert loc, "statusgate.conf has no exact location for nginx's health path %s" % path
    assert loc.group(1) == "statusgate" and loc.group(2) in ("healthz", "readyz"), loc.groups()
    for gw in compose_gateways(doc):
        dep = (ng.get("depends_on") or {}).get(gw) or {}
        assert dep.get("condition") == "service_healthy", \
            "nginx resolves the gateways' name at start: it must wait for %s: %r" % (gw, dep)


@t.test
def nginx_upstreams_and_addresses_agree_with_compose():
    doc = compose()
    ng = doc["services"]["nginx"]
    ups, _ = upstream_servers()
    assert len(ups.get("statusgate", [])) == 1 and len(ups.get("webapp", [])) == 1, ups
    nets = networks_of(ng)
    gws = compose_gateways(doc)
    # statusgate:8080: every gateway, and nothing else, on nginx's networks
    host, port = ups["statusgate"][0].rsplit(":", 1)
    assert resolves_to(doc, host, nets) == set(gws), \
        "upstream %s resolves to %s, not to the gateways %s" % (
            host, sorted(resolves_to(doc, host, nets)), sorted(gws))
    for name, svc in gws.items():
        listen = option(svc, "--listen") or "0.0.0.0:8080"
        assert listen.rsplit(":", 1)[1] == port, "%s listens on %s, nginx sends to port %s" % (
            name, listen, port)
    # web:8000: the web service
    host, _ = ups["webapp"][0].rsplit(":", 1)
    assert resolves_to(doc, host, nets) == {"web"}, "upstream %s is not the web service" % host
    # the config nginx reads is the tested file
    mounts = {}
    for v in ng.get("volumes") or []:
        src, dst = str(v).split(":")[:2]
        mounts[dst] = os.path.realpath(os.path.join(DEPLOY, src))
    site = [dst for dst, src in mounts.items() if src == os.path.realpath(NGINX_CONF)]
    assert site and site[0].startswith("/etc/nginx/conf.d/") and site[0].endswith(".conf"), \
        "nginx does not read deploy/nginx/statusgate.conf as a site: %r" % mounts
    assert mounts.get("/etc/nginx/nginx.conf") == os.path.realpath(NGINX_MAIN), mounts
    # nginx's fixed address is the gateways' trusted proxy, outside the
    # networks trusted to publish; the gateways' own fixed addresses differ
    (front, cfg), = [(n, c) for n, c in nets.items() if c.get("ipv4_address")]
    addr = ipaddress.ip_address(cfg["ipv4_address"])
    assert addr in subnet(doc, front), "nginx's %s is outside %s" % (addr, subnet(doc, front))
    fixed = {addr}
    for name, svc in gws.items():
        proxies = [ipaddress.ip_network(p) for p in str(option(svc, "--trusted-proxies")).split(",")]
        assert any(addr in p for p in proxies), "%s: nginx (%s) is not in --trusted-proxies %s" % (
            name, addr, proxies)
        pubs = str(option(svc, "--publish-networks") or "")
        assert pubs and pubs != "loopback", "%s: --publish-networks is %r" % (name, pubs)
        for p in pubs.split(","):
            net = ipaddress.ip_network(p)
            assert addr not in net, "%s: nginx is inside --publish-networks %s" % (name, net)
            assert net in {subnet(doc, n) for n in networks_of(svc)}, \
                "%s: --publish-networks %s is not one of its networks" % (name, net)
        gaddr = networks_of(svc).get(front, {}).get("ipv4_address")
        assert gaddr, "%s: no fixed address on %s (nginx keeps the address it resolved)" % (
            name, front)
        assert ipaddress.ip_address(gaddr) in subnet(doc, front), (name, gaddr)
        assert ipaddress.ip_address(gaddr) not in fixed, "%s: address %s taken twice" % (name, gaddr)
        fixed.add(ipaddress.ip_address(gaddr))


@t.test
def nginx_accepts_the_main_config_with_the_site():
    """`nginx -t` on deploy/nginx/nginx.conf including statusgate.conf (as
    the integration tests render it: loopback upstreams, since "statusgate"
    and "web" resolve only inside compose), with its paths moved to a temp
    dir and its user line left out (no nginx user here)."""
    d = tempfile.mkdtemp(prefix="sg-nginx-t-")
    try:
        with open(os.path.join(d, "site.conf"), "w") as f:
            f.write(nginx_proxy.render("127.0.0.1:8080", "127.0.0.1:8000", nginx_proxy.free_port()))
        with open(NGINX_MAIN) as f:
            main = f.read()
        subs = ((r"^user nginx;\n", ""),
                (r"/var/run/nginx\.pid", os.path.join(d, "nginx.pid")),
                (r"/var/log/nginx/error\.log", os.path.join(d, "error.log")),
                (r"/var/log/nginx/access\.log", os.path.join(d, "access.log")),
                (r"include /etc/nginx/conf\.d/\*\.conf;", "include %s/site.conf;" % d))
        for pat, rep in subs:
            main, n = re.subn(pat, rep, main, flags=re.M)
            assert n == 1, "nginx.conf: expected one %r" % pat
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(main)
        p = subprocess.run([nginx_proxy.NGINX, "-t", "-p", d, "-c", os.path.join(d, "nginx.conf"),
                            "-e", os.path.join(d, "error.log")],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and "test is successful" in p.stderr, p.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


@t.test
def env_file_example_names_only_serve_options():
    _, envs = help_of("serve")
    doc = compose()
    for name, svc in compose_gateways(doc).items():
        files = svc.get("env_file") or []
        paths = [f if isinstance(f, str) else f["path"] for f in files]
        for f, p in zip(files, paths):
            assert isinstance(f, dict) and f.get("required") is False, \
                "%s: env_file %s must be optional (required: false)" % (name, p)
            assert os.path.exists(os.path.join(DEPLOY, p + ".example")), \
                "%s: %s has no %s.example next to it" % (name, p, p)
    with open(os.path.join(DEPLOY, "statusgate.env.example")) as f:
        names = re.findall(r"^#?(STATUSGATE_[A-Z0-9_]+)=", f.read(), re.M)
    assert names, "statusgate.env.example names no option"
    bad = [n for n in names if n not in envs]
    assert not bad, "statusgate.env.example: not variables of statusgate serve: %s" % bad


t.run()
