"""``MockCluster``: the mock cluster run in a daemon thread, controlled from the test thread.

Its control methods (``failover``, ``hiccup``, ...) are not written here: each is made from
the ``@command`` coroutine of the same name on ``ClusterCore`` (``_in_process``), with that
coroutine's signature, annotations and docstring, and runs it on the mock's loop. Type
checkers, which cannot see methods made at run time, read mock_cluster.pyi, generated from
this module's runtime signatures by tools/generate_mock_stub.py (a test keeps it current).
"""

import asyncio
import inspect
import threading
import typing
from collections.abc import Coroutine, Iterable, Mapping
from typing import Any, Callable, Optional, TypeVar, Union
from urllib.parse import quote

from . import config as _config
from .cluster import DEFAULT_VBUCKETS, ClusterCore
from .commands import COMMANDS, Command

_T = TypeVar("_T")


class MockCluster:
    """A Couchbase cluster stand-in running in a background thread.

    ``buckets`` is a dict name -> password or a list of "NAME[:PASSWORD]" strings (default:
    an open ``default`` bucket). ``port`` is the management port of node 0; node i then uses
    ``port + 2*i`` (management) and ``port + 2*i + 1`` (KV); 0 picks free ports. Use it as a
    context manager or call ``start()`` / ``stop()``. The control methods (``failover``,
    ``hiccup``, ``opfail``, ...) are the mock's control commands, also served over HTTP as
    ``GET /mock/COMMAND?k=v``.

    ``tls=True`` adds a TLS KV port and an HTTPS management port to every node, with
    certificates from a CA made at start (``ca_path``; needs the ``trustme`` package);
    ``tls_only`` closes the plain ports and ``tls_client_auth`` takes client certificates
    (``client_certificate(user)``) as credentials; either implies ``tls``. With ``port``
    set, node i's TLS ports are ``port + 2*MAX_NODES + 2*i`` (management) and one above (KV).
    """

    #: Seconds ``start()`` waits for every port to listen.
    start_timeout: float

    def __init__(self, nodes: int = 1, buckets: Union[Mapping[str, str], Iterable[str], None] = None,
                 username: str = "Administrator", password: str = "password", host: str = "127.0.0.1",
                 port: int = 0, vbuckets: int = DEFAULT_VBUCKETS, replicas: int = 1,
                 start_timeout: float = 10.0, tls: bool = False, tls_only: bool = False,
                 tls_client_auth: bool = False) -> None:
        self._core = ClusterCore(nodes, buckets, username, password, host, port, vbuckets, replicas,
                                 tls, tls_only, tls_client_auth)
        self.start_timeout = start_timeout
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> "MockCluster":
        """Start serving in a daemon thread; return once every port listens."""
        if self._thread is not None:
            return self
        self._ready.clear()
        self._error = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="couchbase-mock", daemon=True)
        self._thread.start()
        if not self._ready.wait(self.start_timeout):
            self.stop()
            raise TimeoutError("mock cluster did not start within %.1f s" % self.start_timeout)
        if self._error is not None:
            error = self._error
            self._thread.join()
            self._thread = None
            self._loop = None
            raise error
        return self

    def _run(self) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        loop.set_debug(False)  # asyncio debug mode (python -X dev) would slow the mock several-fold
        try:
            loop.run_until_complete(self._core.start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(self._core.stop())
                # let aborted connections run their connection_lost, then end what is left
                loop.run_until_complete(asyncio.sleep(0.01))
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(self._core.stop())
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    def stop(self) -> None:
        """Stop serving, close every connection and join the thread (idempotent)."""
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(loop.stop)
            except RuntimeError:
                pass
        thread.join(30)
        self._thread = None
        self._loop = None

    close = stop

    @property
    def running(self) -> bool:
        """True while the mock serves."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> "MockCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return "<MockCluster %s nodes=%d port=%s>" % (state, len(self._core.nodes), self.port)

    def _call(self, coro: "Coroutine[Any, Any, _T]", timeout: float = 30) -> _T:
        """Run ``coro`` on the mock's loop and wait for its result."""
        if not self.running:
            coro.close()
            raise RuntimeError("the mock cluster is not running")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("call the coroutine directly on the mock's loop")
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # -- description --------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """Address the nodes listen on and advertise."""
        return str(self._core.host)

    @property
    def port(self) -> int:
        """Management (HTTP) port of node 0."""
        return int(self._core.nodes[0].mgmt_port)

    @property
    def kv_ports(self) -> "list[int]":
        """KV (memcached protocol) port of every node, in node order."""
        return [n.kv_port for n in self._core.nodes]

    @property
    def mgmt_ports(self) -> "list[int]":
        """Management (HTTP) port of every node, in node order."""
        return [n.mgmt_port for n in self._core.nodes]

    @property
    def tls(self) -> bool:
        """True if the nodes serve TLS (``tls``, ``tls_only`` or ``tls_client_auth``)."""
        return self._core.tls is not None

    @property
    def tls_only(self) -> bool:
        """True if the plain (non-TLS) ports are closed."""
        return bool(self._core.tls_only)

    @property
    def ca_path(self) -> Optional[str]:
        """Path of the PEM file of the CA that issued the nodes' certificates (None without TLS)."""
        return None if self._core.tls is None else str(self._core.tls.ca_path)

    @property
    def kv_tls_ports(self) -> "list[int]":
        """TLS KV port of every node, in node order (empty without TLS)."""
        return [n.kv_tls_port for n in self._core.nodes] if self.tls else []

    @property
    def mgmt_tls_ports(self) -> "list[int]":
        """HTTPS management port of every node, in node order (empty without TLS)."""
        return [n.mgmt_tls_port for n in self._core.nodes] if self.tls else []

    @property
    def username(self) -> str:
        """The RBAC administrator's user name."""
        return str(self._core.admin_user)

    @property
    def password(self) -> str:
        """The RBAC administrator's password."""
        return str(self._core.users[self._core.admin_user].password)

    @property
    def buckets(self) -> "dict[str, str]":
        """Bucket name -> password."""
        return {b.name: b.password for b in list(self._core.buckets.values())}

    @property
    def nodes(self) -> int:
        """Number of nodes (failed-over ones included)."""
        return len(self._core.nodes)

    @property
    def rev(self) -> int:
        """Current configuration revision."""
        return int(self._core.rev)

    @property
    def core(self) -> ClusterCore:
        """The loop-side state (for advanced tests; touch it only on the mock's loop)."""
        return self._core

    def _hostport(self, port: int) -> str:
        return str(_config.hostport(self.host, port))

    def connstr(self, bucket: str = "default", node: int = 0) -> str:
        """libcouchbase connection string bootstrapping over HTTP: couchbase://H:MGMT=http/BUCKET."""
        return "couchbase://%s=http/%s" % (self._hostport(self.mgmt_ports[node]), bucket)

    def kv_connstr(self, bucket: str = "default", node: int = 0) -> str:
        """Connection string bootstrapping over CCCP: couchbase://H:KVPORT/BUCKET."""
        return "couchbase://%s/%s" % (self._hostport(self.kv_ports[node]), bucket)

    def tls_connstr(self, bucket: str = "default", node: int = 0, bootstrap: str = "cccp") -> str:
        """TLS connection string, verifying with the mock's CA: over CCCP (``bootstrap`` "cccp")
        couchbases://H:KVTLS=mcds/BUCKET?truststorepath=CA, over HTTPS ("http")
        couchbases://H:MGMTTLS=https/BUCKET?truststorepath=CA."""
        if self.ca_path is None:
            raise ValueError("tls_connstr needs a TLS cluster (MockCluster(tls=True))")
        if bootstrap == "cccp":
            where = "%s=mcds" % self._hostport(self.kv_tls_ports[node])
        elif bootstrap == "http":
            where = "%s=https" % self._hostport(self.mgmt_tls_ports[node])
        else:
            raise ValueError("bootstrap must be 'cccp' or 'http', not %r" % (bootstrap,))
        return "couchbases://%s/%s?truststorepath=%s" % (where, bucket, quote(self.ca_path, safe="/"))


def _in_process(cmd: Command) -> "Callable[..., Any]":
    """The ``MockCluster`` method of command ``cmd``: its coroutine run on the mock's loop,
    with the coroutine's signature (less the core), annotations and docstring."""
    func = cmd.func

    def method(self: MockCluster, *args: Any, **kwargs: Any) -> Any:
        return self._call(func(self._core, *args, **kwargs))

    hints = typing.get_type_hints(func)  # resolved in the coroutine's module
    signature = inspect.signature(func)
    method.__name__ = cmd.name
    method.__qualname__ = "MockCluster." + cmd.name
    method.__doc__ = func.__doc__
    method.__annotations__ = hints
    parameters = [p.replace(annotation=hints.get(p.name, p.annotation))
                  for p in signature.parameters.values()]
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=parameters, return_annotation=hints.get("return", signature.return_annotation))
    return method


for _cmd in COMMANDS.values():
    if hasattr(MockCluster, _cmd.name):
        raise TypeError("control command %r would hide MockCluster.%s" % (_cmd.name, _cmd.name))
    setattr(MockCluster, _cmd.name, _in_process(_cmd))
