# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Connection options -> one ``Connection`` (server URL, auth headers, TLS settings, a label).

Every kubeconfig form the modules accept ends here: a path (``~`` expanded, ``KUBECONFIG``-style
lists merged, relative file references resolved against the file's directory), a mapping, or
the YAML text; or ``host`` + ``api_key``. Credentials: bearer token (inline or ``tokenFile``),
basic auth, client certificate (inline data or files), ``exec`` plugins (run here, the
client.authentication.k8s.io ExecCredential protocol) and, only for legacy ``auth-provider``
entries, the kubernetes library's loader. The CA goes to urllib3 as data; a client
certificate/key given inline is written to 0600 files in a private temp directory (the ssl
module loads key pairs from files only), removed by ``Connection.close()``.

Errors are KubeError(category="config") and never quote credential text.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os
import shutil
import subprocess
import tempfile

from ansible_collections.c5c3.gitops.plugins.module_utils.kube_errors import KubeError
from ansible_collections.c5c3.gitops.plugins.module_utils.kube_secrets import PEM_MARKER, looks_like_content

K8S_AUTH_ARGSPEC = dict(
    # Deliberately not no_log=True: for a mapping, Ansible would mask every leaf ("v1", names,
    # the server URL) as a substring of everything the module returns. KubeModule registers the
    # kubeconfig's credentials (or a kubeconfig text as a whole) as no_log values instead.
    kubeconfig=dict(type="raw", no_log=False),
    context=dict(type="str"),
    host=dict(type="str"),
    api_key=dict(type="str", no_log=True),
    validate_certs=dict(type="bool", aliases=["verify_ssl"]),
    ca_cert=dict(type="path", aliases=["ssl_ca_cert"]),
    client_cert=dict(type="path", aliases=["cert_file"]),
    # A path; inline PEM text is accepted too and then registered as a no_log value by KubeModule.
    client_key=dict(type="path", aliases=["key_file"], no_log=False),
    request_timeout=dict(type="int", default=30),
)

# Environment fallbacks, as kubernetes.core reads them (K8S_AUTH_*).
_ENV = {
    "kubeconfig": "K8S_AUTH_KUBECONFIG",
    "context": "K8S_AUTH_CONTEXT",
    "host": "K8S_AUTH_HOST",
    "api_key": "K8S_AUTH_API_KEY",
    "ca_cert": "K8S_AUTH_SSL_CA_CERT",
    "client_cert": "K8S_AUTH_CERT_FILE",
    "client_key": "K8S_AUTH_KEY_FILE",
}
EXEC_TIMEOUT = 60


def _config_error(message, hint=None):
    return KubeError(0, message, category="config", hint=hint)


def auth_params(params, use_env=True):
    """The auth options from module params, filled from K8S_AUTH_* variables; text kubeconfigs parsed."""
    out = {}
    for key in K8S_AUTH_ARGSPEC:
        value = (params or {}).get(key)
        if value is None and use_env and key in _ENV:
            value = os.environ.get(_ENV[key]) or None
        out[key] = value
    if out.get("validate_certs") is None and use_env:
        env = os.environ.get("K8S_AUTH_VERIFY_SSL")
        if env is not None:
            out["validate_certs"] = env.lower() in ("1", "true", "yes", "on")
    kubeconfig = out.get("kubeconfig")
    if isinstance(kubeconfig, bytes):
        kubeconfig = kubeconfig.decode("utf-8")
    if looks_like_content(kubeconfig):  # the kubeconfig's text itself, not a path
        out["kubeconfig"] = parse_text(kubeconfig, "the kubeconfig option's text")
    return out


def parse_text(text, where):
    import yaml
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)  # never quote the text: YAML errors would
        raise _config_error("%s is not valid YAML%s" % (where, " (line %d)" % (mark.line + 1) if mark else ""))
    if not isinstance(data, dict):
        raise _config_error("%s is not a kubeconfig (expected a mapping)" % where)
    return data


def request_timeout(params):
    """Per-request timeout in seconds (connect and read) for non-watch calls."""
    return (params or {}).get("request_timeout") or 30


class Connection(object):
    """Where and how to connect: ``server``, ``headers``, ``tls`` (urllib3 pool kwargs), ``label``."""

    def __init__(self, server, headers=None, tls=None, label=None, context=None, secrets=None, tmpdir=None):
        self.server = server.rstrip("/")
        self.headers = headers or {}
        self.tls = tls or {}
        self.label = label or self.server
        self.context = context
        self.secrets = set(secrets or ())  # credentials obtained here (exec plugins): for no_log
        self._tmpdir = tmpdir

    def close(self):
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __del__(self):
        self.close()


class _Material(object):
    """Client certificate/key files: existing paths as they are, inline data into 0600 files."""

    def __init__(self, base):
        self.base = base
        self.tmpdir = None

    def path(self, value, name):
        if not value:
            return None
        if PEM_MARKER in value:
            return self.write(name, value.encode("utf-8"))
        path = os.path.expanduser(value)
        return path if os.path.isabs(path) else os.path.join(self.base, path)

    def write(self, name, data):
        if self.tmpdir is None:
            self.tmpdir = tempfile.mkdtemp(prefix="c5c3-kube-")
        target = os.path.join(self.tmpdir, name)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return target

    def read(self, value):
        """CA as PEM text, from inline PEM or a path."""
        if PEM_MARKER in value:
            return value
        path = self.path(value, "ca.crt")
        try:
            with open(path) as handle:
                return handle.read()
        except (IOError, OSError) as exc:
            raise _config_error("cannot read the CA file %s: %s" % (path, exc.strerror))


def _b64(value, what):
    try:
        return base64.b64decode(value)
    except (TypeError, ValueError):
        raise _config_error("%s is not valid base64" % what)


def _named(items, key, where):
    if items is None:
        return {}
    if not isinstance(items, list):
        raise _config_error("%s: '%ss' must be a list" % (where, key))
    return dict((i.get("name"), i.get(key) or {}) for i in items if isinstance(i, dict))


def load_kubeconfig(value):
    """(kubeconfig mapping, base directory for relative paths, how to name it in errors)."""
    if isinstance(value, dict):
        return value, os.getcwd(), "the kubeconfig mapping"
    paths = [os.path.expanduser(p) for p in (value or "~/.kube/config").split(os.pathsep) if p]
    merged, base = {}, None
    for path in paths:
        try:
            with open(path) as handle:
                text = handle.read()
        except (IOError, OSError) as exc:
            if len(paths) > 1 and exc.errno == 2:
                continue  # kubectl skips missing files of a KUBECONFIG list
            raise _config_error("cannot read kubeconfig %s: %s" % (path, exc.strerror))
        data = parse_text(text, "kubeconfig %s" % path)
        base = base or os.path.dirname(os.path.abspath(path))
        for key in ("clusters", "contexts", "users"):  # first file wins per name, as kubectl merges
            have = set(i.get("name") for i in merged.get(key) or [])
            merged.setdefault(key, []).extend(i for i in data.get(key) or [] if isinstance(i, dict) and i.get("name") not in have)
        if not merged.get("current-context") and data.get("current-context"):
            merged["current-context"] = data["current-context"]
    if base is None:
        raise _config_error("none of the kubeconfig files %s exists" % os.pathsep.join(paths))
    return merged, base, "kubeconfig %s" % os.pathsep.join(paths)


def _run_exec(spec, where):
    """Run an exec credential plugin; returns its ExecCredential status."""
    command = spec.get("command")
    if not command:
        raise _config_error("%s: exec credentials without a command" % where)
    env = dict(os.environ)
    for item in spec.get("env") or []:
        if isinstance(item, dict) and item.get("name"):
            env[item["name"]] = str(item.get("value") or "")
    env["KUBERNETES_EXEC_INFO"] = json.dumps({
        "apiVersion": spec.get("apiVersion") or "client.authentication.k8s.io/v1",
        "kind": "ExecCredential", "spec": {"interactive": False}})
    try:
        proc = subprocess.run([command] + [str(a) for a in spec.get("args") or []], env=env, check=False,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=EXEC_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise _config_error("%s: exec credential plugin %s could not run: %s" % (where, command, exc))
    if proc.returncode != 0:
        raise _config_error("%s: exec credential plugin %s failed (exit %d)" % (where, command, proc.returncode),
                            hint="run it by hand to see why (login expired?)")
    try:
        return json.loads(proc.stdout.decode("utf-8")).get("status") or {}
    except (ValueError, AttributeError):
        raise _config_error("%s: exec credential plugin %s printed no ExecCredential JSON" % (where, command))


def _auth_provider_header(kubeconfig, context, where):
    """Legacy auth-provider entries: let the kubernetes library's loader produce the header."""
    try:
        from kubernetes import client, config
    except ImportError:
        raise _config_error("%s uses an auth-provider, which needs the Python 'kubernetes' library" % where)
    configuration = client.Configuration()
    try:
        config.load_kube_config_from_dict(kubeconfig, context=context, client_configuration=configuration)
    except Exception as exc:  # the library raises several unrelated types
        raise _config_error("%s: the auth-provider failed: %s" % (where, type(exc).__name__))
    return (configuration.api_key or {}).get("authorization")


def connection(params, cluster=None, use_env=True):
    """The Connection for module params (the shared auth options). ``cluster`` names it in errors."""
    p = auth_params(params, use_env=use_env)
    material = _Material(os.getcwd())
    headers, tls, secrets = {}, {}, set()
    ctx_name = None
    try:
        if p.get("host"):
            server = p["host"]
            label = server
        else:
            kubeconfig, base, where = load_kubeconfig(p.get("kubeconfig"))
            material.base = base
            contexts = _named(kubeconfig.get("contexts"), "context", where)
            ctx_name = p.get("context") or kubeconfig.get("current-context")
            if not ctx_name:
                raise _config_error("%s has no current-context and no context was given" % where)
            if ctx_name not in contexts:
                raise _config_error("%s has no context %r (contexts: %s)" % (where, ctx_name, ", ".join(sorted(c for c in contexts if c)) or "none"))
            ctx = contexts[ctx_name]
            cluster_entry = _named(kubeconfig.get("clusters"), "cluster", where).get(ctx.get("cluster"))
            user = _named(kubeconfig.get("users"), "user", where).get(ctx.get("user")) or {}
            if not cluster_entry or not cluster_entry.get("server"):
                raise _config_error("%s: context %r names cluster %r, which has no server URL" % (where, ctx_name, ctx.get("cluster")))
            server = cluster_entry["server"]
            label = '%s (context "%s")' % (server, ctx_name)
            where = "%s, context %r" % (where, ctx_name)
            _user_auth(user, material, headers, tls, secrets, where, kubeconfig, ctx_name)
            _cluster_tls(cluster_entry, material, tls)
        if p.get("api_key"):
            headers["Authorization"] = "Bearer %s" % p["api_key"]
        if p.get("ca_cert"):
            tls["ca_cert_data"] = material.read(p["ca_cert"])
        if p.get("client_cert") and p.get("client_key"):
            tls["cert_file"] = material.path(p["client_cert"], "client.crt")
            tls["key_file"] = material.path(p["client_key"], "client.key")
        verify = p.get("validate_certs")
        if verify is None:
            verify = not tls.pop("_insecure", False)
        tls.pop("_insecure", None)
        if server.startswith("https://"):
            if verify:
                tls["cert_reqs"] = "CERT_REQUIRED"
            else:
                tls.update(cert_reqs="CERT_NONE", assert_hostname=False)
                tls.pop("ca_cert_data", None)
        else:
            for key in list(tls):
                if key not in ("cert_file", "key_file"):
                    tls.pop(key)
    except Exception:
        if material.tmpdir:
            shutil.rmtree(material.tmpdir, ignore_errors=True)
        raise
    if cluster:
        label = "%s at %s" % (cluster, label)
    return Connection(server, headers, tls, label, ctx_name, secrets, material.tmpdir)


def _user_auth(user, material, headers, tls, secrets, where, kubeconfig, ctx_name):
    if user.get("exec"):
        status = _run_exec(user["exec"], where)
        if status.get("token"):
            secrets.add(status["token"])
            headers["Authorization"] = "Bearer %s" % status["token"]
        if status.get("clientCertificateData") and status.get("clientKeyData"):
            secrets.add(status["clientKeyData"])
            tls["cert_file"] = material.write("exec.crt", status["clientCertificateData"].encode("utf-8"))
            tls["key_file"] = material.write("exec.key", status["clientKeyData"].encode("utf-8"))
    elif user.get("auth-provider"):
        header = _auth_provider_header(kubeconfig, ctx_name, where)
        if header:
            secrets.add(header)
            headers["Authorization"] = header
    if user.get("token"):
        headers["Authorization"] = "Bearer %s" % user["token"]
    elif user.get("tokenFile"):
        path = material.path(user["tokenFile"], "token")
        try:
            with open(path) as handle:
                token = handle.read().strip()
        except (IOError, OSError) as exc:
            raise _config_error("%s: cannot read tokenFile %s: %s" % (where, path, exc.strerror))
        secrets.add(token)
        headers["Authorization"] = "Bearer %s" % token
    elif user.get("username") and user.get("password"):
        raw = ("%s:%s" % (user["username"], user["password"])).encode("utf-8")
        headers["Authorization"] = "Basic %s" % base64.b64encode(raw).decode("ascii")
    if user.get("client-certificate-data"):
        tls["cert_file"] = material.write("client.crt", _b64(user["client-certificate-data"], "%s: client-certificate-data" % where))
    elif user.get("client-certificate"):
        tls["cert_file"] = material.path(user["client-certificate"], "client.crt")
    if user.get("client-key-data"):
        tls["key_file"] = material.write("client.key", _b64(user["client-key-data"], "%s: client-key-data" % where))
    elif user.get("client-key"):
        tls["key_file"] = material.path(user["client-key"], "client.key")
    if bool(tls.get("cert_file")) != bool(tls.get("key_file")):
        raise _config_error("%s has only half of a client certificate (certificate and key are both needed)" % where)


def _cluster_tls(entry, material, tls):
    if entry.get("certificate-authority-data"):
        tls["ca_cert_data"] = _b64(entry["certificate-authority-data"], "certificate-authority-data").decode("utf-8", "replace")
    elif entry.get("certificate-authority"):
        tls["ca_cert_data"] = material.read(entry["certificate-authority"])
    if entry.get("tls-server-name"):
        tls["server_hostname"] = entry["tls-server-name"]
        tls["assert_hostname"] = entry["tls-server-name"]
    if entry.get("insecure-skip-tls-verify"):
        tls["_insecure"] = True
