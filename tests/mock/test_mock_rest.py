"""The management REST API and the /mock control commands."""

import base64
import http.client
import json
import socket

import pytest


def request(mock, method, path, body=None, auth=("Administrator", "password"), node=0, headers=None):
    conn = http.client.HTTPConnection(mock.host, mock.mgmt_ports[node], timeout=5)
    hdrs = dict(headers or {})
    if auth is not None:
        hdrs["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % auth).encode()).decode()
    if isinstance(body, dict):
        body = "&".join("%s=%s" % kv for kv in body.items())
        hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
    try:
        conn.request(method, path, body=body, headers=hdrs)
        res = conn.getresponse()
        data = res.read()
    finally:
        conn.close()
    try:
        parsed = json.loads(data) if data else None
    except ValueError:
        parsed = data
    return res.status, parsed


def test_pools_and_auth(mock1):
    status, pools = request(mock1, "GET", "/pools", auth=None)
    assert status == 200 and pools["pools"][0]["name"] == "default" and pools["isAdminCreds"] is False
    assert request(mock1, "GET", "/pools")[1]["isAdminCreds"] is True
    assert request(mock1, "GET", "/pools/default", auth=("Administrator", "bad"))[0] == 401
    assert request(mock1, "GET", "/pools/default", auth=None)[0] == 401
    status, pd = request(mock1, "GET", "/pools/default")
    assert status == 200 and pd["buckets"]["terseStreamingBucketsBase"] == "/pools/default/bs/"
    assert pd["nodes"][0]["ports"]["direct"] == mock1.kv_ports[0]


def test_bucket_endpoints(mock1):
    status, buckets = request(mock1, "GET", "/pools/default/buckets")
    assert status == 200 and sorted(b["name"] for b in buckets) == ["default", "protected"]
    status, buckets = request(mock1, "GET", "/pools/default/buckets", auth=("protected", "secret"))
    assert [b["name"] for b in buckets] == ["protected"]
    status, terse = request(mock1, "GET", "/pools/default/b/protected", auth=("protected", "secret"))
    assert status == 200 and terse["name"] == "protected" and terse["rev"] == mock1.rev
    assert terse["nodesExt"][0]["hostname"] == "127.0.0.1"
    assert request(mock1, "GET", "/pools/default/b/protected", auth=("protected", "nope"))[0] == 401
    assert request(mock1, "GET", "/pools/default/b/protected", auth=("default", ""))[0] == 403
    assert request(mock1, "GET", "/pools/default/b/nosuch")[0] == 404
    assert request(mock1, "GET", "/pools/default/bs/nosuch")[0] == 404
    status, full = request(mock1, "GET", "/pools/default/buckets/default")
    assert status == 200 and full["bucketType"] == "membase" and full["nodes"][0]["hostname"]
    assert request(mock1, "GET", "/pools/default/b/default", auth=None)[0] == 200  # open bucket


def test_create_and_delete_bucket(mock1):
    rev = mock1.rev
    status, err = request(mock1, "POST", "/pools/default/buckets", {"name": "bad name!", "ramQuotaMB": "10",
                                                                    "bucketType": "nope"})
    assert status == 400
    assert set(err["errors"]) == {"name", "ramQuota", "bucketType"}
    status, err = request(mock1, "POST", "/pools/default/buckets", {"name": "default", "ramQuotaMB": "100"})
    assert status == 400 and "already exists" in err["errors"]["name"]
    status, err = request(mock1, "POST", "/pools/default/buckets", {"ramQuotaMB": "100"})
    assert status == 400 and err["errors"]["name"]
    assert request(mock1, "POST", "/pools/default/buckets", {"name": "x", "ramQuotaMB": "100"},
                   auth=("protected", "secret"))[0] == 403
    status, _ = request(mock1, "POST", "/pools/default/buckets",
                        {"name": "newb", "ramQuotaMB": "100", "authType": "sasl", "saslPassword": "pw",
                         "bucketType": "couchbase", "replicaNumber": "0"})
    assert status == 202 and mock1.buckets["newb"] == "pw" and mock1.rev > rev
    status, mc = request(mock1, "POST", "/pools/default/buckets",
                         {"name": "mc", "ramQuotaMB": "100", "bucketType": "memcached"})
    assert status == 202
    status, terse = request(mock1, "GET", "/pools/default/b/mc")
    assert terse["nodeLocator"] == "ketama" and "vBucketServerMap" not in terse
    assert request(mock1, "DELETE", "/pools/default/buckets/newb")[0] == 200
    assert request(mock1, "DELETE", "/pools/default/buckets/newb")[0] == 404
    assert "newb" not in mock1.buckets


def test_rbac_users(mock1):
    status, _ = request(mock1, "PUT", "/settings/rbac/users/local/alice",
                        {"password": "alicepw", "roles": "bucket_full_access[default]"})
    assert status == 200
    assert request(mock1, "GET", "/pools/default/b/default", auth=("alice", "alicepw"))[0] == 200
    assert request(mock1, "GET", "/pools/default/b/protected", auth=("alice", "alicepw"))[0] == 403
    status, users = request(mock1, "GET", "/settings/rbac/users")
    assert "alice" in [u["id"] for u in users]
    short_password = {"password": "x", "roles": "admin"}
    assert request(mock1, "PUT", "/settings/rbac/users/local/bob", short_password)[0] == 400
    assert request(mock1, "DELETE", "/settings/rbac/users/local/alice")[0] == 200
    assert request(mock1, "GET", "/pools/default/b/default", auth=("alice", "alicepw"))[0] == 401


class ConfigStream:
    """Client side of a chunked /bs stream: de-chunks and splits configs."""

    def __init__(self, mock, path, auth=b"Administrator:password"):
        self.sock = socket.create_connection((mock.host, mock.port), timeout=5)
        self.sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "
                          + base64.b64encode(auth) + b"\r\n\r\n")
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._recv()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert b"200 OK" in head and b"chunked" in head.lower(), head
        self.body = b""

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("stream closed")
        return data

    def configs(self, count):
        out = []
        while True:
            while b"\r\n" in self.buf:
                size_line, rest = self.buf.split(b"\r\n", 1)
                size = int(size_line, 16)
                if len(rest) < size + 2:
                    break
                self.body += rest[:size]
                self.buf = rest[size + 2:]
            while b"\n\n\n\n" in self.body and len(out) < count:
                cfg, self.body = self.body.split(b"\n\n\n\n", 1)
                out.append(json.loads(cfg))
            if len(out) == count:
                return out
            self.buf += self._recv()

    def close(self):
        self.sock.close()


def test_streaming_config_pushed_on_topology_change(mock3):
    terse = ConfigStream(mock3, "/pools/default/bs/default")
    full = ConfigStream(mock3, "/pools/default/bucketsStreaming/default")
    try:
        first = terse.configs(1)[0]
        assert len(first["nodesExt"]) == 3
        assert full.configs(1)[0]["bucketType"] == "membase"
        mock3.failover(2)
        mock3.add_node()
        configs = terse.configs(2)  # the failover's and the add_node's config
        assert [len(c["nodesExt"]) for c in configs] == [2, 3]
        assert first["rev"] < configs[0]["rev"] < configs[1]["rev"]
        assert [len(c["nodes"]) for c in full.configs(2)] == [2, 3]
        mock3.drop_connections()
        with pytest.raises((ConnectionError, OSError)):
            terse.configs(1)
    finally:
        terse.close()
        full.close()


def test_mock_control_over_http(mock3):
    status, info = request(mock3, "GET", "/mock/info", auth=None)
    assert status == 200 and info["kv_ports"] == mock3.kv_ports
    rev = mock3.rev
    status, res = request(mock3, "GET", "/mock/failover?idx=1", auth=None)
    assert status == 200 and res["status"] == "ok" and res["failed"] == [1] and mock3.rev == rev + 1
    status, res = request(mock3, "GET", "/mock/respawn?idx=1", auth=None)
    assert status == 200 and res["failed"] == []
    assert request(mock3, "GET", "/mock/hiccup?msecs=0&offset=0", auth=None)[0] == 200
    assert request(mock3, "GET", "/mock/stall?on=1", auth=None)[1]["stalled"] is True
    assert request(mock3, "GET", "/mock/stall?on=0", auth=None)[1]["stalled"] is False
    assert request(mock3, "GET", "/mock/opfail?code=0x86&count=0&opcode=GET", auth=None)[0] == 200
    assert request(mock3, "POST", "/mock/time_travel", {"Offset": "5"}, auth=None)[0] == 200
    status, res = request(mock3, "GET", "/mock/create_bucket?name=ctl&bucketType=memcached", auth=None)
    assert status == 200 and "ctl" in mock3.buckets
    status, res = request(mock3, "GET", "/mock/create_bucket?name=ctl", auth=None)
    assert status == 400 and "name" in res["errors"]
    assert request(mock3, "GET", "/mock/delete_bucket?name=ctl", auth=None)[0] == 200
    assert request(mock3, "GET", "/mock/failover", auth=None)[0] == 400  # missing idx
    assert request(mock3, "GET", "/mock/failover?idx=9", auth=None)[0] == 400
    assert request(mock3, "GET", "/mock/nonsense", auth=None)[0] == 404
    status, res = request(mock3, "GET", "/mock/keyinfo?key=abc", auth=None)
    assert status == 200 and 0 <= res["vbucket"] < 1024
    status, res = request(mock3, "GET", "/mock/help", auth=None)
    assert "failover" in res["commands"]


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"GET /pools HTTP/9.9\r\n\r\n",
    b"GET /pools HTTP/1.1\r\nNoColonHeader\r\n\r\n",
    b"POST /pools/default/buckets HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    b"POST /pools/default/buckets HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
    b"POST /pools/default/buckets HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET /pools HTTP/1.1\r\nAuthorization: Basic !!!\r\n\r\n",
    b"GET /pools HTTP/1.1\r\nAuthorization: Bearer xyz\r\n\r\n",
    b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
])
def test_malformed_http_gets_4xx(mock1, raw):
    with socket.create_connection((mock1.host, mock1.port), timeout=5) as sock:
        sock.sendall(raw)
        data = b""
        try:
            while b"\r\n\r\n" not in data:  # the status and headers are enough
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    assert data.startswith(b"HTTP/1.1 4"), data[:100]
    assert request(mock1, "GET", "/pools")[0] == 200  # still serving


def test_garbage_json_body(mock1):
    status, res = request(mock1, "POST", "/mock/failover", body="{not json",
                          headers={"Content-Type": "application/json"}, auth=None)
    assert status == 400
    status, res = request(mock1, "PUT", "/settings/rbac/users/local/zed", body="[1,2",
                          headers={"Content-Type": "application/json"})
    assert status == 400


def test_rejected_bucket_is_not_created(mock1):
    status, err = request(mock1, "POST", "/pools/default/buckets",
                          {"name": "half", "ramQuotaMB": "100", "authType": "bogus", "flushEnabled": "7"})
    assert status == 400 and set(err["errors"]) == {"authType", "flushEnabled"}
    assert "half" not in mock1.buckets
