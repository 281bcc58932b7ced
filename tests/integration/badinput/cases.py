"""The bad inputs: one entry per case. A case changes a copy of the local inventory and names the
exact message the collection prints for it (placeholders: {inv} the inventory directory, {kc}
the directory of the case's swapped kubeconfigs, {dir} the case's directory, {port} a dead port,
{url[cluster]} a cluster's API server URL, {sources} the catalog's source names, {ts} an RFC 3339
timestamp).

Fields: id, playbook (site.yml, or render.yml: rendered into {dir}/out), host_vars
{cluster: vars}, group_vars {group: vars}, kubeconfigs {cluster: fn(fleet, ctx) -> kubeconfig},
files {path under {dir}: text}, hosts fn(children of all) editing hosts.yml, drop_files (paths
in the inventory to remove), args (extra ansible-playbook arguments), prerender (render.yml: a
tree rendered from the good inventory is there first and must stay as it is), secret (a string
that must not appear in the output), expect (the message, exactly).
"""
import pf_helpers as h

from bi_helpers import fleet_sources

SYNC = {"url": "ssh://git@github.com/c5c3/c5c3-gitops.git", "ref": "refs/heads/main", "path": "bootstrap/{hub}"}
OCI = {"name": "keystone-oci", "kind": "OCIRepository", "url": "oci://ghcr.io/c5c3/charts/keystone-operator",
       "ref": {"semver": ">=0.1.0 <1.0.0"}}
EXTRA = {"name": "my-operator", "chart": "my-operator", "version": ">=1.0.0", "source": "c5c3-charts", "namespace": "my-system"}
SECRET_TOKEN = "badinput-secret-token-5f0c9e1a7d"
LONG = "n" * 64
DNS_LABEL = ("is not a valid DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit, "
             "at most 63 characters)")
DNS_NAME = ("is not a valid DNS-1123 name (lowercase letters, digits, '-' and '.', starting and ending with a letter or "
            "digit, at most 253 characters)")


def cp(**overrides):
    """host_vars for the control-plane cluster: gitops_component_overrides."""
    return {"control-plane": {"gitops_component_overrides": overrides}}


def with_sources(*extra):
    return {"management": {"fleet_sources": fleet_sources() + list(extra)}}


def kc(cluster, change):
    """A kubeconfigs entry: the cluster's own kubeconfig, changed by change(kubeconfig, fleet, ctx)."""
    def build(fleet, ctx):
        return change(h.load_kubeconfig(fleet, cluster), fleet, ctx)
    return build


def _user(user):
    return lambda k, fleet, ctx: h.with_user(k, user(fleet) if callable(user) else user)


def _server(server):
    return lambda k, fleet, ctx: h.with_server(k, server.format(**ctx))


def _expired(fleet):
    return h.client_cert_user(fleet, "storage-admin", ["system:masters"], not_after_days=-1, not_before_days=-30)


def _ca_file(k, fleet, ctx):
    k["clusters"][0]["cluster"].pop("certificate-authority-data")
    k["clusters"][0]["cluster"]["certificate-authority"] = "/etc/kubernetes/pki/ca.crt"
    return k


def _move(host, src, dst):
    def edit(children):
        hv = children[src]["hosts"].pop(host)
        children.setdefault(dst, {"hosts": {}})["hosts"][host] = hv
    return edit


def _second_hub(children):
    hv = dict(children["storage"]["hosts"]["storage-1"], gitops_cluster_name="management-2")
    children["management"]["hosts"]["hub-2"] = hv


def _also_in(host, src, dst):
    def edit(children):
        children[dst]["hosts"][host] = dict(children[src]["hosts"][host])
    return edit


PREFLIGHT = "preflight failed for 1 cluster(s), nothing was written:\n  - "
UNAUTHORIZED = ("unauthorized: {url[%s]} rejected the credentials (401); the token or client certificate is wrong, "
                "expired or revoked")

CASES = [
    # ---- the inventory's shape
    dict(id="no-management-host", hosts=lambda ch: ch.pop("management"),
         expect="invalid fleet: group management must hold exactly one cluster (the hub running Flux), found 0. "
                "Inventory: {inv}. Nothing was written."),
    dict(id="two-hubs", hosts=_second_hub,
         expect="invalid fleet: group management must hold exactly one cluster (the hub running Flux), found 2: "
                "hub, hub-2. Inventory: {inv}. Nothing was written."),
    dict(id="two-hosts-one-cluster-name", host_vars={"storage": {"gitops_cluster_name": "hypervisor"}},
         expect="invalid fleet: hosts hypervisor-1 and storage-1 are both cluster 'hypervisor' (gitops_cluster_name); "
                "every cluster needs its own name"),
    dict(id="unknown-group", hosts=_move("storage-1", "storage", "edge"),
         expect="invalid fleet: cluster storage: unknown group edge; a cluster must be in one of management, "
                "control_plane, hypervisor, storage"),
    dict(id="cluster-in-two-groups", hosts=_also_in("storage-1", "storage", "hypervisor"),
         expect="invalid fleet: cluster storage is in groups hypervisor and storage; a cluster has exactly one role"),
    dict(id="hub-namespace-taken", host_vars={"storage": {"gitops_hub_namespace": "hypervisor"}},
         expect="invalid fleet: cluster storage: hub namespace 'hypervisor' is already used by cluster hypervisor; "
                "every cluster needs its own (set gitops_hub_namespace)"),
    # ---- components
    dict(id="unknown-component", host_vars=cp(**{"keystone-operatr": {"enabled": False}}),
         expect="invalid fleet: cluster control-plane: gitops_component_overrides names component 'keystone-operatr', "
                "which is not in the catalog of its group (add it with gitops_components_extra)"),
    dict(id="unknown-component-field", host_vars=cp(**{"keystone-operator": {"vesion": "1.0.0"}}),
         expect="invalid fleet: cluster control-plane component keystone-operator: unknown field vesion (known: {fields})"),
    dict(id="bad-version-range", host_vars=cp(**{"keystone-operator": {"version": ">=1.0 <<2"}}),
         expect="invalid fleet: cluster control-plane component keystone-operator version: invalid SemVer range: "
                "'>=1.0 <<2': cannot parse '<<2' (expected a comparison such as '>=1.0.0')"),
    dict(id="duplicate-component", host_vars={"control-plane": {"gitops_components_extra": [dict(EXTRA, name="keystone-operator")]}},
         expect="invalid fleet: cluster control-plane: gitops_components_extra adds component 'keystone-operator', "
                "which the catalog already has (use gitops_component_overrides to change it)"),
    dict(id="enabled-maybe", host_vars=cp(**{"keystone-operator": {"enabled": "maybe"}}),
         expect="invalid fleet: cluster control-plane component keystone-operator enabled: 'maybe' is not a boolean "
                "(use true or false)"),
    dict(id="invalid-component-name", host_vars={"control-plane": {"gitops_components_extra": [dict(EXTRA, name="My_Operator")]}},
         expect="invalid fleet: cluster control-plane component My_Operator: 'My_Operator' " + DNS_NAME),
    dict(id="component-namespace-too-long", host_vars=cp(**{"keystone-operator": {"namespace": LONG}}),
         expect="invalid fleet: cluster control-plane component keystone-operator namespace: '%s' %s" % (LONG, DNS_LABEL)),
    dict(id="depends-on-unknown", host_vars=cp(**{"keystone-operator": {"dependsOn": ["mariadb-operator", "mariadb-operater"]}}),
         expect="invalid fleet: HelmRelease control-plane/keystone-operator dependsOn HelmRelease "
                "control-plane/mariadb-operater, which does not exist"),
    dict(id="depends-on-disabled", host_vars=cp(**{"memcached-operator": {"enabled": False}}),
         expect=("invalid fleet: HelmRelease control-plane/c5c3-operator dependsOn HelmRelease "
                 "control-plane/memcached-operator, which is disabled (enabled: false on cluster control-plane)")),
    dict(id="depends-on-other-kind", host_vars=cp(**{"keystone-operator": {"dependsOn": ["control-plane-apps"]}}),
         expect="invalid fleet: HelmRelease control-plane/keystone-operator dependsOn control-plane/control-plane-apps, "
                "which is a Kustomization: Flux allows dependsOn only between objects of the same kind"),
    dict(id="dependency-cycle", host_vars=cp(**{"mariadb-operator": {"dependsOn": ["keystone-operator"]}}),
         expect=("invalid fleet: dependency cycle: HelmRelease control-plane/mariadb-operator -> HelmRelease "
                 "control-plane/keystone-operator -> HelmRelease control-plane/mariadb-operator")),
    dict(id="values-from-wrong-kind", host_vars=cp(**{"keystone-operator": {"valuesFrom": [{"kind": "Deployment", "name": "x"}]}}),
         expect="invalid fleet: cluster control-plane component keystone-operator valuesFrom[0]: kind 'Deployment' "
                "must be ConfigMap or Secret"),
    dict(id="values-from-without-name", host_vars=cp(**{"keystone-operator": {"valuesFrom": [{"kind": "Secret"}]}}),
         expect="invalid fleet: cluster control-plane component keystone-operator valuesFrom[0] name: a name is "
                "required (got None)"),
    dict(id="chart-and-chart-ref",
         host_vars=cp(**{"keystone-operator": {"spec": {"chartRef": {"kind": "OCIRepository", "name": "keystone-operator"}}}}),
         expect="invalid fleet: HelmRelease control-plane/keystone-operator: either chart or chartRef must be set "
                "(a CEL rule of the upstream CRD; API servers before 1.25 do not enforce it)"),
    dict(id="source-not-defined", host_vars=cp(**{"keystone-operator": {"source": "c5c3-chart"}}),
         expect="invalid fleet: cluster control-plane component keystone-operator: source 'c5c3-chart' is not defined "
                "(known sources: {sources})"),
    dict(id="chart-ref-source-not-defined",
         host_vars=cp(**{"keystone-operator": {"spec": {"chart": None, "chartRef": {
             "kind": "OCIRepository", "name": "keystone-oci", "namespace": "flux-system"}}}}),
         expect=("invalid fleet: HelmRelease control-plane/keystone-operator chartRef OCIRepository "
                 "flux-system/keystone-oci, which does not exist (define the source in fleet_sources)")),
    dict(id="chart-ref-component-with-version", group_vars=with_sources(OCI),
         host_vars=cp(**{"keystone-operator": {"source": "keystone-oci"}}),
         expect="invalid fleet: cluster control-plane component keystone-operator: source 'keystone-oci' is an "
                "OCIRepository (spec.chartRef): its ref selects the version, so the component must not set version "
                "'>=0.1.0 <1.0.0'"),
    # ---- sources
    dict(id="oci-ref-bad-digest", group_vars=with_sources(dict(OCI, ref={"tag": "1.0.0", "digest": "sha256:0123"})),
         expect="invalid fleet: source keystone-oci: ref.digest 'sha256:0123' must be sha256:<64 hex digits>"),
    dict(id="unknown-source-kind", group_vars=with_sources({"name": "my-bucket", "kind": "Bucket", "url": "s3://bucket"}),
         expect="invalid fleet: source my-bucket: kind 'Bucket' is not one of HelmRepository, GitRepository, OCIRepository"),
    dict(id="oci-source-https-url", group_vars=with_sources(dict(OCI, url="https://ghcr.io/c5c3/charts/keystone-operator")),
         expect=("invalid fleet: source keystone-oci: url 'https://ghcr.io/c5c3/charts/keystone-operator' must start "
                 "with oci:// (kind OCIRepository)")),
    dict(id="helm-source-ftp-url", group_vars=with_sources({"name": "my-charts", "kind": "HelmRepository", "url": "ftp://charts.example.com"}),
         expect=("invalid fleet: source my-charts: url 'ftp://charts.example.com' must start with http://, https:// "
                 "or oci:// (kind HelmRepository)")),
    # ---- FluxInstance and delivery
    dict(id="flux-instance-not-flux", group_vars={"management": {"gitops_flux_instance": {"name": "fluxy", "sync": SYNC}}},
         expect="invalid fleet: FluxInstance 'fluxy': the Flux Operator reconciles only a FluxInstance named 'flux' "
                "(set fleet_flux_instance.name to 'flux')"),
    dict(id="direct-delivery-syncs-the-tree",
         group_vars={"management": {"gitops_flux_instance": {"sync": dict(SYNC, path="clusters/{hub}")}}},
         expect=("invalid fleet: gitops_delivery: direct, but the FluxInstance syncs path clusters/management, which "
                 "holds objects the apply sink writes (clusters/management/hub/infrastructure/external-secrets.yaml, "
                 "clusters/management/hub/infrastructure/flux-operator.yaml, clusters/management/hub/infrastructure/"
                 "openbao.yaml and 3 more): they would have two writers. Remove the sync (gitops_flux_instance: "
                 "{sync: null}) or point sync.path outside the tree")),
    dict(id="git-delivery-without-sync-url",
         group_vars={"management": {"gitops_delivery": "git", "gitops_flux_instance": {"sync": dict(SYNC, url="")}}},
         expect="invalid fleet: FluxInstance flux: spec.sync.url is required (gitops_delivery: git publishes to it)"),
    dict(id="unknown-delivery-mode", group_vars={"management": {"gitops_delivery": "sideways"}},
         expect="invalid fleet: gitops_delivery: 'sideways' is not one of git, direct"),
    dict(id="sync-secret-values-missing", drop_files=["group_vars/management/git_sync.yml"],
         expect=("Secrets without values: flux-system/flux-system (set gitops_sync_identity, gitops_sync_identity_pub, "
                 "gitops_sync_known_hosts). Define the variables (vault-encrypted) before applying; nothing has been "
                 "written.")),
    # ---- kubeconfigs
    dict(id="kubeconfig-exec-user",
         kubeconfigs={"storage": kc("storage", _user({"exec": {
             "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "kubelogin"}}))},
         expect="invalid fleet: cluster storage kubeconfig: user 'storage-admin' (context 'storage') uses exec "
                "credentials (kubelogin); Flux cannot run credential plugins: use a token or client certificate "
                "embedded in the kubeconfig"),
    dict(id="kubeconfig-ca-file", kubeconfigs={"storage": kc("storage", _ca_file)},
         expect=("invalid fleet: cluster storage kubeconfig: cluster 'storage' (context 'storage') points to a CA file "
                 "(certificate-authority); Flux reads the kubeconfig from a Secret and cannot read local files: embed it "
                 "as certificate-authority-data")),
    dict(id="kubeconfig-missing", host_vars={"storage": {"gitops_kubeconfig": "{dir}/nowhere/storage.yaml"}},
         expect="invalid fleet: cluster storage: kubeconfig {dir}/nowhere/storage.yaml does not exist (set "
                "gitops_kubeconfig to an existing file or gitops_kubeconfig_content)"),
    dict(id="kubeconfig-not-yaml", files={"kc/storage.yaml": "apiVersion: v1\nclusters: [\n  - {name: storage\n"},
         host_vars={"storage": {"gitops_kubeconfig": "{dir}/kc/storage.yaml"}},
         expect=("invalid fleet: cluster storage: cannot read kubeconfig {dir}/kc/storage.yaml: expected the node "
                 "content, but found '-'")),
    dict(id="kubeconfig-unknown-context", host_vars={"storage": {"gitops_kubeconfig_context": "storage-admin@storage"}},
         expect="invalid fleet: cluster storage kubeconfig: context 'storage-admin@storage' does not exist (contexts: storage)"),
    dict(id="kubeconfig-content-not-yaml", args=["-vvv"], secret=SECRET_TOKEN,
         host_vars={"storage": {"gitops_kubeconfig": None,
                                "gitops_kubeconfig_content": "users:\n- name: x\n  user: {token: %s\n: [" % SECRET_TOKEN}},
         expect=("invalid fleet: cluster storage: gitops_kubeconfig_content is not valid YAML (expected ',' or '}', "
                 "but got ':')")),
    dict(id="kubeconfig-content-without-server", args=["-vvv"], secret=SECRET_TOKEN,
         host_vars={"storage": {"gitops_kubeconfig": None, "gitops_kubeconfig_content": {
             "apiVersion": "v1", "kind": "Config", "current-context": "s",
             "clusters": [{"name": "s", "cluster": {"certificate-authority-data": "eA=="}}],
             "contexts": [{"name": "s", "context": {"cluster": "s", "user": "u"}}],
             "users": [{"name": "u", "user": {"token": SECRET_TOKEN}}]}}},
         expect="invalid fleet: cluster storage kubeconfig: cluster 's' (context 's') has no server URL"),
    # ---- the preflight: every cluster is checked before the first write
    dict(id="spoke-dead-port", kubeconfigs={"control-plane": kc("control-plane", _server("https://127.0.0.1:{port}"))},
         expect=PREFLIGHT + ("cluster control-plane: cannot connect to https://127.0.0.1:{port}: connection refused; "
                             "is the API server running and is the server URL right?")),
    dict(id="spoke-wrong-token", args=["-vvv"], secret=SECRET_TOKEN,
         kubeconfigs={"hypervisor": kc("hypervisor", _user({"token": SECRET_TOKEN}))},
         expect=PREFLIGHT + "cluster hypervisor: " + UNAUTHORIZED % "hypervisor"),
    dict(id="spoke-expired-client-cert", kubeconfigs={"storage": kc("storage", _user(_expired))},
         expect=PREFLIGHT + "cluster storage: the client certificate (O=system:masters,CN=storage-admin) expired at {ts}"),
    dict(id="hub-wrong-token", secret=SECRET_TOKEN,
         kubeconfigs={"management": kc("management", _user({"token": SECRET_TOKEN}))},
         expect=PREFLIGHT + "cluster management: " + UNAUTHORIZED % "management"),
    # ---- render.yml: the same validation, nothing rendered
    dict(id="render-no-management-host", playbook="render.yml", hosts=lambda ch: ch.pop("management"),
         expect="invalid fleet: group management must hold exactly one cluster (the hub running Flux), found 0. "
                "Inventory: {inv}. Nothing was written."),
    dict(id="render-enabled-maybe", playbook="render.yml", host_vars=cp(**{"cert-manager": {"enabled": "maybe"}}),
         expect="invalid fleet: cluster control-plane component cert-manager enabled: 'maybe' is not a boolean "
                "(use true or false)"),
    dict(id="render-dependency-cycle", playbook="render.yml", prerender=True,
         host_vars=cp(**{"cert-manager": {"dependsOn": ["keystone-operator"]}}),
         expect=("invalid fleet: dependency cycle: HelmRelease control-plane/cert-manager -> HelmRelease "
                 "control-plane/keystone-operator -> HelmRelease control-plane/cert-manager")),
]
