"""TLS for the mock: a certificate authority made at start, a certificate per node, client
certificates as credentials, and the certificate faults a client must refuse.

Only a cluster started with ``tls=True`` imports this module, and only it needs the
``trustme`` package (``pip install trustme``): the mock has no dependency otherwise.

Every file (the CA and client certificates with their keys) is written to one temporary
directory, removed when the cluster is garbage-collected or the process exits.
"""

import datetime
import ipaddress
import os
import shutil
import ssl
import tempfile
import weakref

#: The certificate faults a node can serve (``ClusterCore.tls_fault``): what each presents.
FAULTS = {
    "wrong_host": "a certificate from the cluster's CA for another host name",
    "unknown_ca": "a certificate for the node's host from a CA the client was not given",
    "expired": "a certificate from the cluster's CA for the node's host that expired yesterday",
}


def _trustme():
    try:
        import trustme
    except ImportError:
        raise RuntimeError("the mock's TLS needs the trustme package (pip install trustme==1.2.1); "
                           "without tls=True the mock needs nothing") from None
    return trustme


def identities(host):
    """The names a node's certificate is issued for: its address and, on loopback, localhost."""
    names = [host]
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback and "localhost" not in names:
        names.append("localhost")
    return names


class ClusterTLS:
    """The cluster's CA and every certificate it issues (made on the event-loop thread)."""

    def __init__(self, client_auth=False):
        trustme = _trustme()
        self._trustme = trustme
        self.client_auth = bool(client_auth)
        self.directory = tempfile.mkdtemp(prefix="couchbase-mock-tls-")
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.directory, True)
        self.ca = trustme.CA(organization_name="couchbase-lcb mock", organization_unit_name="mock CA")
        self.ca_path = self._write("ca.pem", self.ca.cert_pem.bytes())
        self._stranger = None  # the CA of the "unknown_ca" fault, made on first use
        self._fault_contexts = {}
        self._clients = {}

    def _write(self, name, data):
        path = os.path.join(self.directory, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def _context(self, leaf):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        leaf.configure_cert(ctx)
        if self.client_auth:
            # a certificate is asked for, not required: without one a client authenticates
            # with SASL (KV) or Basic (HTTP) as on a node with client authentication "enable"
            ctx.verify_mode = ssl.CERT_OPTIONAL
            self.ca.configure_trust(ctx)
        return ctx

    def node_context(self, node):
        """The server context of ``node``'s TLS ports: its own certificate, or (a handshake
        at a time, by the server-name callback) the one of the node's ``tls_fault``."""
        leaf = self.ca.issue_cert(*identities(node.host), common_name="node%d" % node.index)
        ctx = self._context(leaf)

        def choose(sslobj, server_name, _ctx):
            if node.tls_fault is not None:
                sslobj.context = self._fault_context(node, node.tls_fault)
            return None

        ctx.sni_callback = choose
        return ctx

    def _fault_context(self, node, fault):
        key = (node.index, fault)
        ctx = self._fault_contexts.get(key)
        if ctx is None:
            name = "node%d" % node.index
            if fault == "wrong_host":
                leaf = self.ca.issue_cert("%s.other-host.invalid" % name, common_name=name)
            elif fault == "unknown_ca":
                if self._stranger is None:
                    self._stranger = self._trustme.CA(organization_name="not the mock's CA")
                leaf = self._stranger.issue_cert(*identities(node.host), common_name=name)
            elif fault == "expired":
                now = datetime.datetime.now(datetime.timezone.utc)
                leaf = self.ca.issue_cert(*identities(node.host), common_name=name,
                                          not_before=now - datetime.timedelta(days=30),
                                          not_after=now - datetime.timedelta(days=1))
            else:
                raise ValueError("no TLS fault %r (faults: %s)" % (fault, ", ".join(FAULTS)))
            ctx = self._fault_contexts[key] = self._context(leaf)
        return ctx

    def client_certificate(self, user):
        """(certificate path, key path) of a client certificate for ``user`` from the cluster's
        CA: its subject's common name is the user name the nodes authenticate it as."""
        paths = self._clients.get(user)
        if paths is None:
            leaf = self.ca.issue_cert(common_name=user)
            safe = "".join(c if c.isalnum() else "_" for c in user) + "-%d" % len(self._clients)
            paths = (self._write("client-%s.pem" % safe, leaf.cert_chain_pems[0].bytes()),
                     self._write("client-%s.key" % safe, leaf.private_key_pem.bytes()))
            self._clients[user] = paths
        return paths

    def close(self):
        """Remove the certificate files now."""
        self._cleanup()


def peer_user(ssl_object, core):
    """The user a verified client certificate names (its subject's common name), or None when
    no certificate came or it names no user of the cluster."""
    if ssl_object is None:
        return None
    cert = ssl_object.getpeercert()
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for name, value in rdn:
            if name == "commonName" and value in core.users:
                return value
    return None
