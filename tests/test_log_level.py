"""The 'couchbase' logger's level counts when it changes, not only when a
connection opens: lowering it after connecting brings libcouchbase's INFO and
DEBUG lines, raising it again stops them before they reach Python."""

import logging

import pytest

from couchbase import Couchbase
from couchbase.mock import MockCluster

LOGGER = logging.getLogger("couchbase")


@pytest.fixture
def mock():
    with MockCluster(buckets={"default": ""}) as cluster:
        yield cluster


@pytest.fixture
def forwarded(monkeypatch):
    """The levels of the lines the binding hands to the logger, whatever the
    handlers and the logger's level make of them (the log callback calls
    the 'couchbase' logger's log method)."""
    levels = []
    real_log = LOGGER.log

    def log(level, *args, **kwargs):
        levels.append(level)
        real_log(level, *args, **kwargs)

    monkeypatch.setattr(LOGGER, "log", log)
    return levels


@pytest.fixture
def records():
    """The records the 'couchbase' logger emits; its level is put back after."""
    caught = []
    handler = logging.Handler()
    handler.emit = caught.append
    old_level = LOGGER.level
    LOGGER.addHandler(handler)
    try:
        yield caught
    finally:
        LOGGER.removeHandler(handler)
        LOGGER.setLevel(old_level)


def _reconnect(mock, cb):
    """Make libcouchbase log: its sockets drop and the next get reconnects
    (INFO and DEBUG lines about the error, the retry and the new socket)."""
    mock.drop_connections()
    cb.get("k", quiet=True)
    cb.get("k", quiet=True)


def _below_warning(levels):
    return [level for level in levels if level < logging.WARNING]


def test_lowering_the_level_after_connect_brings_the_lines_and_raising_it_stops_them(
        mock, records, forwarded):
    LOGGER.setLevel(logging.WARNING)
    with Couchbase.connect(mock.host, mock.port, password="", bucket="default") as cb:
        cb.set("k", 1)
        _reconnect(mock, cb)
        assert _below_warning(forwarded) == []  # dropped in C

        LOGGER.setLevel(logging.DEBUG)
        _reconnect(mock, cb)
        infos = [r for r in records if r.levelno == logging.INFO]
        debugs = [r for r in records if r.levelno == logging.DEBUG]
        assert infos and debugs, [r.getMessage() for r in records]
        assert all(r.name == "couchbase" for r in records)

        LOGGER.setLevel(logging.WARNING)
        forwarded.clear()
        records.clear()
        _reconnect(mock, cb)
        assert _below_warning(forwarded) == []  # dropped in C again, not by logging
        assert _below_warning([r.levelno for r in records]) == []


def test_an_ancestors_level_counts_too(mock, records, forwarded):
    """With the 'couchbase' logger's level unset, the root logger's applies."""
    root = logging.getLogger()
    old_root = root.level
    LOGGER.setLevel(logging.NOTSET)
    root.setLevel(logging.WARNING)
    try:
        with Couchbase.connect(mock.host, mock.port, password="", bucket="default") as cb:
            cb.set("k", 1)
            root.setLevel(logging.INFO)
            _reconnect(mock, cb)
            assert any(r.levelno == logging.INFO for r in records)
            assert not any(r.levelno == logging.DEBUG for r in records)
            assert logging.DEBUG not in forwarded  # below INFO: never left C
    finally:
        root.setLevel(old_root)
