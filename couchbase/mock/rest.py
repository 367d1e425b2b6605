"""Management REST API of a mock node: pools, buckets, users, config streams, /mock control.

A deliberately small HTTP/1.1 server on asyncio streams (keep-alive, Content-Length bodies,
chunked streaming responses). Any malformed request gets a 400 and the connection closed.
"""

import asyncio
import base64
import binascii
import json
import re
from urllib.parse import parse_qsl, unquote, urlsplit

from . import config as _config
from .control import run_command
from .errors import BucketError

MAX_BODY = 20 * 1024 * 1024
MAX_HEADERS = 100
_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Object Not Found", 405: "Method Not Allowed", 411: "Length Required",
            413: "Request Entity Too Large", 500: "Internal Server Error"}
_NOT_FOUND = b'"Requested resource not found.\r\n"'


class HTTPError(Exception):
    def __init__(self, status, body=b"", headers=()):
        super().__init__(status)
        self.status = status
        self.body = body if isinstance(body, bytes) else _config.dumps(body)
        self.headers = list(headers)


def _unauthorized():
    return HTTPError(401, b"", [("WWW-Authenticate", 'Basic realm="Couchbase Server Admin / REST"')])


def _forbidden(permission):
    return HTTPError(403, {"message": "Forbidden. User needs the following permissions",
                           "permissions": [permission]})


class Request:
    __slots__ = ("method", "path", "query", "headers", "body", "user", "valid", "host", "claimed",
                 "cert_user")

    def __init__(self, method, path, query, headers, body):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.user = None
        self.valid = False
        self.claimed = None
        self.cert_user = None  # the user a client certificate authenticated (tls_client_auth)

    def form(self):
        """Query parameters plus a urlencoded or JSON body, as a dict."""
        params = dict(self.query)
        if self.body:
            ctype = self.headers.get("content-type", "")
            if "json" in ctype:
                try:
                    data = json.loads(self.body)
                except ValueError:
                    raise HTTPError(400, {"errors": {"_": "Invalid JSON"}}) from None
                if not isinstance(data, dict):
                    raise HTTPError(400, {"errors": {"_": "Expected a JSON object"}})
                params.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()})
            else:
                try:
                    params.update(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True,
                                            strict_parsing=False))
                except (UnicodeDecodeError, ValueError):
                    raise HTTPError(400, {"errors": {"_": "Malformed form body"}}) from None
        return params


class ConfigStream:
    """A held-open chunked response that gets a config on every revision change."""

    def __init__(self, core, node, bucket, writer, render):
        self.core = core
        self.node = node
        self.bucket = bucket
        self.writer = writer
        self.render = render
        self.closed = asyncio.get_running_loop().create_future()

    def push(self):
        if self.closed.done():
            return
        transport = self.writer.transport
        if transport.is_closing():
            self.close()
            return
        body = self.render()
        transport.write(b"%x\r\n%s\r\n4\r\n\n\n\n\n\r\n" % (len(body), body))

    def close(self):
        self.core.streams.discard(self)
        if not self.closed.done():
            self.closed.set_result(None)
        self.writer.transport.abort()


async def serve_http(core, node, port, ssl=None):
    """Start a management server of ``node`` on ``port`` (HTTPS with the ``ssl`` context);
    returns the asyncio Server."""
    async def on_client(reader, writer):
        await _handle_client(core, node, reader, writer)
    return await asyncio.start_server(on_client, node.host, port, reuse_address=True,
                                      limit=65536, ssl=ssl)


async def _read_request(reader):
    line = await reader.readline()
    if not line:
        return None
    if not line.endswith(b"\n"):
        raise HTTPError(400, b"")
    try:
        method, target, version = line.decode("latin-1").split()
    except ValueError:
        raise HTTPError(400, b"") from None
    if not version.startswith("HTTP/1."):
        raise HTTPError(400, b"")
    headers = {}
    for _ in range(MAX_HEADERS + 1):
        hline = await reader.readline()
        if not hline.endswith(b"\n"):
            raise HTTPError(400, b"")
        if hline in (b"\r\n", b"\n"):
            break
        name, sep, value = hline.decode("latin-1").partition(":")
        if not sep:
            raise HTTPError(400, b"")
        headers[name.strip().lower()] = value.strip()
    else:
        raise HTTPError(400, b"")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise HTTPError(411, b"")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise HTTPError(400, b"") from None
    if length < 0:
        raise HTTPError(400, b"")
    if length > MAX_BODY:
        raise HTTPError(413, b"")
    body = await reader.readexactly(length) if length else b""
    parts = urlsplit(target)
    path = unquote(parts.path)
    query = parse_qsl(parts.query, keep_blank_values=True)
    request = Request(method.upper(), path, query, headers, body)
    request.host = headers.get("host", "")
    if version == "HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive":
        request.headers["connection"] = "close"
    return request


def _response(status, body, headers=(), ctype="application/json", close=False):
    lines = ["HTTP/1.1 %d %s" % (status, _REASONS.get(status, "Unknown")),
             "Server: Couchbase Server", "Content-Type: %s" % ctype,
             "Content-Length: %d" % len(body), "Cache-Control: no-cache"]
    lines += ["%s: %s" % h for h in headers]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _handle_client(core, node, reader, writer):
    transport = writer.transport
    node.http_conns.add(transport)
    cert_user = None
    if core.tls is not None and core.tls.client_auth:
        from .tls import peer_user
        cert_user = peer_user(writer.get_extra_info("ssl_object"), core)
    try:
        while True:
            try:
                request = await _read_request(reader)
            except HTTPError as err:
                writer.write(_response(err.status, err.body, err.headers, close=True))
                break
            except (asyncio.LimitOverrunError, ValueError):
                writer.write(_response(400, b"", close=True))
                break
            if request is None:
                break
            close = request.headers.get("connection", "").lower() == "close"
            request.cert_user = cert_user
            try:
                _authenticate(core, request)
                result = await _route(core, node, request, writer)
            except HTTPError as err:
                writer.write(_response(err.status, err.body, err.headers, close=close))
            except Exception as exc:  # never let a handler bug kill the node
                core.log_error("REST %s %s failed: %r" % (request.method, request.path, exc))
                writer.write(_response(500, _config.dumps({"error": repr(exc)}), close=close))
            else:
                if isinstance(result, ConfigStream):
                    await _hold_stream(reader, result)
                    break
                status, body = result
                ctype = "application/json"
                if isinstance(body, (dict, list)):
                    body = _config.dumps(body)
                elif isinstance(body, str):
                    body, ctype = body.encode(), "text/plain"
                writer.write(_response(status, body, ctype=ctype, close=close))
            await writer.drain()
            if close:
                break
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
        pass
    finally:
        node.http_conns.discard(transport)
        transport.close()


async def _hold_stream(reader, stream):
    """Keep a config stream open until the client or the mock closes it."""
    async def drain_until_eof():
        while await reader.read(65536):
            pass
    eof = asyncio.ensure_future(drain_until_eof())
    try:
        await asyncio.wait([eof, stream.closed], return_when=asyncio.FIRST_COMPLETED)
    finally:
        eof.cancel()
        stream.close()


def _authenticate(core, request):
    auth = request.headers.get("authorization")
    if not auth:
        if request.cert_user is not None:
            # a client certificate is the credentials, as with a node's client authentication
            request.user = request.cert_user
            request.valid = True
        return
    scheme, _, data = auth.partition(" ")
    if scheme.lower() != "basic":
        raise _unauthorized()
    try:
        user, sep, password = base64.b64decode(data.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _unauthorized() from None
    request.user = user
    if not sep or not core.check_password(user, password):
        request.user = None
        request.claimed = user
        if _missing_bucket_of_classic_user(core, request, user):
            return  # answered with 404 by _bucket_for, as CouchbaseMock and pre-RBAC servers do
        raise _unauthorized()
    request.valid = True


def _missing_bucket_of_classic_user(core, request, user):
    """Classic (bucket-named) credentials for a bucket that does not exist."""
    parts = [p for p in request.path.split("/") if p]
    return (len(parts) == 4 and parts[:2] == ["pools", "default"] and parts[3] == user
            and user not in core.users and user not in core.buckets)


def _require_admin(core, request):
    if not request.valid:
        raise _unauthorized()
    if not core.is_admin(request.user):
        raise _forbidden("cluster.admin!write")


def _require_any(core, request):
    if not request.valid:
        raise _unauthorized()


def _bucket_for(core, request, name):
    """The bucket ``name`` if the credentials may read it (401/403/404 otherwise)."""
    bucket = core.buckets.get(name)
    if not request.valid:
        if bucket is None and (request.claimed == name or request.headers.get("authorization") is None):
            raise HTTPError(404, _NOT_FOUND)
        if bucket is not None and bucket.password == "" and request.headers.get("authorization") is None:
            return bucket  # an open bucket, as older servers allowed
        raise _unauthorized()
    if bucket is None:
        raise HTTPError(404, _NOT_FOUND)
    if not core.may_access(request.user, name):
        raise _forbidden("cluster.bucket[%s].settings!read" % name)
    return bucket


def _public_host(core, request):
    """Host name to put into configs served over HTTP."""
    if core.host in ("0.0.0.0", "::", ""):
        return "$HOST"
    return core.host


async def _route(core, node, request, writer):
    method = request.method
    parts = [p for p in request.path.split("/") if p]
    host = _public_host(core, request)
    if parts and parts[0] == "mock":
        if len(parts) != 2:
            raise HTTPError(404, _NOT_FOUND)
        return await run_command(core, parts[1], request.form())
    if parts == ["pools"] and method == "GET":
        return 200, _config.pools(core, request.valid and core.is_admin(request.user))
    if parts[:2] == ["pools", "default"]:
        rest = parts[2:]
        if not rest:
            if method != "GET":
                raise HTTPError(405, b"")
            _require_any(core, request)
            return 200, _config.pools_default(core, node, host)
        if rest == ["buckets"]:
            if method == "GET":
                _require_any(core, request)
                return 200, [_config.full_bucket(core, b, node, host) for b in list(core.buckets.values())
                             if core.may_access(request.user, b.name)]
            if method == "POST":
                _require_admin(core, request)
                return await _create_bucket(core, request.form())
            raise HTTPError(405, b"")
        if len(rest) >= 2 and rest[0] in ("buckets", "b", "bs", "bucketsStreaming"):
            name = rest[1]
            kind = rest[0]
            if kind == "buckets" and len(rest) == 2 and method == "DELETE":
                _require_admin(core, request)
                if name not in core.buckets:
                    raise HTTPError(404, _NOT_FOUND)
                await core.delete_bucket(name)
                return 200, b""
            if kind == "buckets" and rest[2:] == ["controller", "doFlush"] and method == "POST":
                bucket = _bucket_for(core, request, name)
                if not bucket.flush_enabled:
                    raise HTTPError(400, {"_": "Flush is disabled for the bucket"})
                await core.flush_bucket(name)
                return 200, b""
            if len(rest) != 2:
                raise HTTPError(404, _NOT_FOUND)
            if method != "GET":
                raise HTTPError(405, b"")
            bucket = _bucket_for(core, request, name)
            if kind == "buckets":
                return 200, _config.full_bucket(core, bucket, node, host)
            if kind == "b":
                return 200, core.config_bytes(bucket, node, host)
            if kind == "bs":
                return _start_stream(core, node, bucket, writer,
                                     lambda: core.config_bytes(bucket, node, host))
            return _start_stream(core, node, bucket, writer,
                                 lambda: _config.dumps(_config.full_bucket(core, bucket, node, host)))
        if rest == ["nodeServices"] and method == "GET":
            _require_any(core, request)
            return 200, core.cluster_config_bytes(node, host)
        if rest == ["nodeServicesStreaming"] and method == "GET":
            _require_any(core, request)
            return _start_stream(core, node, None, writer, lambda: core.cluster_config_bytes(node, host))
    if parts == ["poolsStreaming", "default"] and method == "GET":
        _require_any(core, request)
        return _start_stream(core, node, None, writer,
                             lambda: _config.dumps(_config.pools_default(core, node, host)))
    if parts[:3] == ["settings", "rbac", "users"]:
        _require_admin(core, request)
        return await _users(core, request, parts[3:])
    raise HTTPError(404, _NOT_FOUND)


def _start_stream(core, node, bucket, writer, render):
    writer.write(b"HTTP/1.1 200 OK\r\nServer: Couchbase Server\r\n"
                 b"Content-Type: application/json; charset=utf-8\r\n"
                 b"Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n")
    stream = ConfigStream(core, node, bucket, writer, render)
    core.streams.add(stream)
    stream.push()
    return stream


async def _create_bucket(core, form):
    name = form.get("name", "")
    errors = {}
    bucket_type = form.get("bucketType", "couchbase")
    auth_type = form.get("authType", "sasl")
    if auth_type not in ("sasl", "none"):
        errors["authType"] = "invalid authType"
    ram = form.get("ramQuotaMB", form.get("ramQuota"))
    if ram is None:
        errors["ramQuota"] = "The RAM Quota must be specified"
    flush = form.get("flushEnabled", "0")
    if flush not in ("0", "1"):
        errors["flushEnabled"] = "flushEnabled can only be 1 or 0"
    replicas = form.get("replicaNumber", core.default_replicas)
    # report every problem at once, as Couchbase does; create nothing unless all is well
    errors.update(core.bucket_errors(name, bucket_type, replicas, ram if ram is not None else 100))
    if errors:
        raise HTTPError(400, {"errors": errors, "summaries": {}})
    try:
        await core.create_bucket(name, form.get("saslPassword", ""), bucket_type, replicas, ram, flush == "1")
    except BucketError as err:
        raise HTTPError(400, {"errors": err.errors, "summaries": {}}) from None
    return 202, b""


async def _users(core, request, rest):
    if not rest and request.method == "GET":
        return 200, [u.to_json() for u in core.users.values()]
    if len(rest) == 2 and rest[0] == "local":
        name = rest[1]
        if request.method == "GET":
            user = core.users.get(name)
            if user is None:
                raise HTTPError(404, b'"User was not found."')
            return 200, user.to_json()
        if request.method == "PUT":
            form = request.form()
            roles = [r.strip() for r in form.get("roles", "").split(",") if r.strip()]
            errors = {}
            if not roles:
                errors["roles"] = "At least one role must be specified"
            password = form.get("password")
            if password is None and name not in core.users:
                errors["password"] = "Password must be specified for new user"
            elif password is not None and len(password) < 6:
                errors["password"] = "The password must be at least 6 characters long."
            for role in roles:
                if not re.match(r"^[a-z_]+(\[[^\]]*\])?$", role):
                    errors["roles"] = "Malformed role: %s" % role
            if errors:
                raise HTTPError(400, {"errors": errors})
            if password is None:
                password = core.users[name].password
            await core.create_user(name, password, roles)
            return 200, b'""'
        if request.method == "DELETE":
            if name not in core.users:
                raise HTTPError(404, b'"User was not found."')
            await core.delete_user(name)
            return 200, b'""'
    raise HTTPError(404, _NOT_FOUND)
