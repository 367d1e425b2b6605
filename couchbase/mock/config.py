"""Cluster and bucket configuration JSON, as the management REST API and CCCP serve it.

Clients follow two rules we must keep: node order is the same in ``nodes``, ``nodesExt``
and ``serverList`` (vBucketMap indexes refer to it), and ``rev`` grows on every change.
"""

import json

VERSION = "7.6.2-3721-enterprise"
IMPLEMENTATION_VERSION = VERSION
# Only what the mock implements: no views ("couchapi"), DCP or xattrs, so clients do not try
# features that would then fail in confusing ways. "durableWrite" makes libcouchbase offer
# synchronous durability (replication.py).
BUCKET_CAPABILITIES = ["collections", "durableWrite", "cbhello", "touch", "cccp", "nodesExt"]
MEMCACHED_CAPABILITIES = ["cbhello", "nodesExt"]
CLUSTER_CAPABILITIES = {"n1ql": ["enhancedPreparedStatements"]}
REV_EPOCH = 1


def hostport(host, port):
    """host:port with IPv6 literals bracketed."""
    if ":" in host and not host.startswith("["):
        return "[%s]:%d" % (host, port)
    return "%s:%d" % (host, port)


def _node_ext(node, host, this):
    services = {"mgmt": node.mgmt_port, "kv": node.kv_port}
    if node.core.tls is not None:
        # where Couchbase Server publishes them (libcouchbase reads "<service>SSL", vbucket.c).
        # With tls_only the plain ports stay listed, closed, as on a strict-encryption
        # cluster: libcouchbase counts the data nodes by their plain "kv" port.
        services["kvSSL"] = node.kv_tls_port
        services["mgmtSSL"] = node.mgmt_tls_port
    entry = {"services": services, "hostname": host}
    if this is not None:
        entry["thisNode"] = node is this
    return entry


def bucket_config(core, bucket, this=None, host="$HOST"):
    """Terse bucket config (the body of /pools/default/b/NAME and of CCCP)."""
    nodes = core.config_nodes()
    uuid = bucket.uuid
    name = bucket.name
    cfg = {
        "rev": core.rev,
        "revEpoch": REV_EPOCH,
        "name": name,
        "uuid": uuid,
        "uri": "/pools/default/buckets/%s?bucket_uuid=%s" % (name, uuid),
        "streamingUri": "/pools/default/bucketsStreaming/%s?bucket_uuid=%s" % (name, uuid),
        "nodes": [{"hostname": hostport(host, n.mgmt_port), "ports": {"direct": n.kv_port}} for n in nodes],
        "nodesExt": [_node_ext(n, host, this) for n in nodes],
        "clusterCapabilitiesVer": [1, 0],
        "clusterCapabilities": CLUSTER_CAPABILITIES,
        "ddocs": {"uri": "/pools/default/buckets/%s/ddocs" % name},
    }
    if bucket.is_memcached:
        cfg["nodeLocator"] = "ketama"
        cfg["bucketCapabilitiesVer"] = ""
        cfg["bucketCapabilities"] = MEMCACHED_CAPABILITIES
        return cfg
    index = {n: i for i, n in enumerate(nodes)}
    cfg["nodeLocator"] = "vbucket"
    cfg["bucketCapabilitiesVer"] = ""
    cfg["bucketCapabilities"] = BUCKET_CAPABILITIES
    cfg["collectionsManifestUid"] = "%x" % bucket.manifest_uid
    cfg["vBucketServerMap"] = {
        "hashAlgorithm": "CRC",
        "numReplicas": bucket.replicas,
        "serverList": [hostport(host, n.kv_port) for n in nodes],
        "vBucketMap": [[index.get(n, -1) if n is not None else -1 for n in row] for row in bucket.vbmap],
    }
    return cfg


def cluster_config(core, this=None, host="$HOST"):
    """Bucket-less (global) config: CCCP without a selected bucket, nodeServices."""
    return {
        "rev": core.rev,
        "revEpoch": REV_EPOCH,
        "nodesExt": [_node_ext(n, host, this) for n in core.config_nodes()],
        "clusterCapabilitiesVer": [1, 0],
        "clusterCapabilities": CLUSTER_CAPABILITIES,
    }


def dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def _full_node(core, node, host, this):
    return {
        "hostname": hostport(host, node.mgmt_port),
        "thisNode": node is this,
        "clusterMembership": "active",
        "recoveryType": "none",
        "status": "healthy",
        "otpNode": "ns_1@%s" % (host if node.index == 0 else "node%d.%s" % (node.index, host)),
        "version": VERSION,
        "os": "x86_64-pc-linux-gnu",
        "services": ["kv"],
        "ports": {"direct": node.kv_port, "distTCP": 21100, "distTLS": 21150,
                  **({"httpsMgmt": node.mgmt_tls_port} if node.core.tls is not None else {})},
        "nodeUUID": node.uuid,
    }


def full_bucket(core, bucket, this=None, host="$HOST"):
    """Verbose bucket info (/pools/default/buckets and /pools/default/buckets/NAME)."""
    cfg = bucket_config(core, bucket, this, host)
    store = bucket.store
    cfg.update({
        "bucketType": "memcached" if bucket.is_memcached else "membase",
        "authType": "sasl",
        "replicaNumber": bucket.replicas,
        "threadsNumber": 3,
        "evictionPolicy": "valueOnly",
        "durabilityMinLevel": "none",
        "conflictResolutionType": "seqno",
        "storageBackend": "couchstore",
        "quota": {"ram": bucket.ram_quota_mb * 1024 * 1024 * len(core.config_nodes()),
                  "rawRAM": bucket.ram_quota_mb * 1024 * 1024},
        "basicStats": {"quotaPercentUsed": 0.0, "opsPerSec": 0, "diskFetches": 0,
                       "itemCount": len(store.items),
                       "diskUsed": 0, "dataUsed": 0,
                       "memUsed": sum(len(i.value) for i in store.items.values())},
        "controllers": {"flush": "/pools/default/buckets/%s/controller/doFlush" % bucket.name}
        if bucket.flush_enabled else {},
        "stats": {"uri": "/pools/default/buckets/%s/stats" % bucket.name},
        "nodes": [_full_node(core, n, host, this) for n in core.config_nodes()],
        "localRandomKeyUri": "/pools/default/buckets/%s/localRandomKey" % bucket.name,
    })
    return cfg


def pools(core, admin):
    """/pools."""
    return {
        "isAdminCreds": bool(admin),
        "isROAdminCreds": False,
        "isEnterprise": True,
        "allowedServices": ["kv"],
        "packageVariant": "linux",
        "pools": [{"name": "default", "uri": "/pools/default?uuid=%s" % core.uuid,
                   "streamingUri": "/poolsStreaming/default?uuid=%s" % core.uuid}],
        "uuid": core.uuid,
        "implementationVersion": IMPLEMENTATION_VERSION,
        "componentsVersion": {"ns_server": VERSION, "kvengine": VERSION},
    }


def pools_default(core, this=None, host="$HOST"):
    """/pools/default."""
    return {
        "name": "default",
        "clusterName": "couchbase-mock",
        "rev": core.rev,
        "nodes": [_full_node(core, n, host, this) for n in core.config_nodes()],
        "buckets": {"uri": "/pools/default/buckets?v=%d&uuid=%s" % (core.rev, core.uuid),
                    "terseBucketsBase": "/pools/default/b/",
                    "terseStreamingBucketsBase": "/pools/default/bs/"},
        "nodeStatusesUri": "/nodeStatuses",
        "balanced": core.balanced,
        "rebalanceStatus": "none",
        "memoryQuota": 1024,
        "clusterCapabilitiesVer": [1, 0],
        "clusterCapabilities": CLUSTER_CAPABILITIES,
        "controllers": {"rebalance": {"uri": "/controller/rebalance"},
                        "failOver": {"uri": "/controller/failOver"}},
    }


def manifest(bucket):
    """Collections manifest (only _default._default exists); uids are hex strings."""
    return {"uid": "%x" % bucket.manifest_uid,
            "scopes": [{"name": "_default", "uid": "0",
                        "collections": [{"name": "_default", "uid": "0"}]}]}
