"""A seeded random walk of KV commands checked against a plain-Python model of their
documented semantics (in the spirit of fakeredis' state-machine tests): values, CAS
checks, arithmetic, expiry with time travel and locks must agree at every step.

The mock clock also moves with real time, so the walk only travels in 200 s steps and uses
expiries and lock times that never fall within seconds of a step: real time cannot decide."""

import random
import struct

from mock_kvclient import KVClient

from couchbase.mock.protocol import Op, Status

KEYS = ["k%d" % i for i in range(6)]


class Model:
    def __init__(self):
        self.now = 0.0
        self.docs = {}  # key -> [value, cas, expires_at or None, locked_until, lock_cas]

    def live(self, key):
        doc = self.docs.get(key)
        if doc and doc[2] is not None and doc[2] <= self.now:
            del self.docs[key]
            return None
        return doc

    def locked(self, doc):
        return doc is not None and doc[3] > self.now


def test_random_walk_against_model(mock1):
    rng = random.Random(4242)
    model = Model()
    with KVClient(mock1.host, mock1.kv_ports[0]) as c:
        c.bootstrap()
        for step in range(3000):
            key = rng.choice(KEYS)
            doc = model.live(key)
            action = rng.randrange(10)
            where = "step %d action %d key %s" % (step, action, key)
            if action == 0:  # set / add / replace, sometimes with a CAS
                op = rng.choice((Op.SET, Op.ADD, Op.REPLACE))
                value = ("%d" % rng.randrange(100)).encode() if rng.random() < 0.5 else b"v%d" % step
                use_cas = rng.random() < 0.3 and op != Op.ADD
                cas = (doc[1] if doc and rng.random() < 0.7 else 12345) if use_cas else 0
                exp = rng.choice((0, 0, 100, 300))
                res = c.set(key, value, exp=exp, cas=cas, opcode=op)
                if op == Op.ADD and doc:
                    expected = Status.KEY_EEXISTS
                elif doc is None and (op == Op.REPLACE or cas):
                    expected = Status.KEY_ENOENT
                elif model.locked(doc) and cas != doc[4]:
                    expected = Status.LOCKED
                elif doc and cas and cas != doc[1]:
                    expected = Status.KEY_EEXISTS
                else:
                    expected = 0
                assert res.status == expected, where
                if expected == 0:
                    assert res.cas > (doc[1] if doc else 0)
                    model.docs[key] = [value, res.cas, model.now + exp if exp else None, 0.0, 0]
            elif action == 1:  # get
                res = c.get(key)
                if doc is None:
                    assert res.status == Status.KEY_ENOENT, where
                else:
                    assert res.status == 0 and res.value == doc[0], where
                    assert res.cas == (0xFFFFFFFFFFFFFFFF if model.locked(doc) else doc[1]), where
            elif action == 2:  # delete
                res = c.call(Op.DELETE, key)
                if doc is None:
                    assert res.status == Status.KEY_ENOENT, where
                elif model.locked(doc):
                    assert res.status == Status.LOCKED, where
                else:
                    assert res.status == 0, where
                    del model.docs[key]
            elif action == 3:  # append / prepend
                op = rng.choice((Op.APPEND, Op.PREPEND))
                res = c.call(op, key, value=b"+")
                if doc is None:
                    assert res.status == Status.NOT_STORED, where
                elif model.locked(doc):
                    assert res.status == Status.LOCKED, where
                else:
                    assert res.status == 0, where
                    doc[0] = doc[0] + b"+" if op == Op.APPEND else b"+" + doc[0]
                    doc[1], doc[3] = res.cas, 0.0
            elif action == 4:  # incr / decr with an initial value
                op = rng.choice((Op.INCREMENT, Op.DECREMENT))
                delta = rng.randrange(0, 30)
                res = c.arith(key, delta, initial=7, opcode=op)
                if doc is None:
                    assert res.status == 0 and struct.unpack(">Q", res.value)[0] == 7, where
                    model.docs[key] = [b"7", res.cas, None, 0.0, 0]
                elif model.locked(doc):
                    assert res.status == Status.LOCKED, where
                elif not doc[0].isdigit():
                    assert res.status == Status.DELTA_BADVAL, where
                else:
                    current = int(doc[0])
                    new = current + delta if op == Op.INCREMENT else max(0, current - delta)
                    assert res.status == 0 and struct.unpack(">Q", res.value)[0] == new, where
                    doc[0], doc[1], doc[3] = b"%d" % new, res.cas, 0.0
            elif action == 5:  # touch
                exp = rng.choice((0, 100, 300))
                res = c.call(Op.TOUCH, key, struct.pack(">I", exp))
                if doc is None:
                    assert res.status == Status.KEY_ENOENT, where
                elif model.locked(doc):
                    assert res.status == Status.LOCKED, where
                else:
                    assert res.status == 0, where
                    doc[1], doc[2] = res.cas, (model.now + exp if exp else None)
            elif action == 6:  # get-and-lock
                lock_time = rng.choice((15, 30))
                res = c.call(Op.GET_LOCKED, key, struct.pack(">I", lock_time))
                if doc is None:
                    assert res.status == Status.KEY_ENOENT, where
                elif model.locked(doc):
                    assert res.status == Status.LOCKED, where
                else:
                    assert res.status == 0 and res.value == doc[0], where
                    doc[1] = doc[4] = res.cas
                    doc[3] = model.now + lock_time
            elif action == 7:  # unlock with the right or a wrong CAS
                cas = doc[4] if doc and rng.random() < 0.7 else 999
                res = c.call(Op.UNLOCK, key, cas=cas)
                if doc is None:
                    assert res.status == Status.KEY_ENOENT, where
                elif not model.locked(doc):
                    assert res.status == Status.NOT_LOCKED, where
                elif cas != doc[4]:
                    assert res.status == Status.LOCKED, where
                else:
                    assert res.status == 0, where
                    doc[3] = 0.0
            elif action == 8:  # time passes
                seconds = 200
                mock1.time_travel(seconds)
                model.now += seconds
            else:  # GET_META agrees with the model too
                res = c.call(Op.GET_META, key)
                if doc is None:
                    assert res.status in (0, Status.KEY_ENOENT), where
                    if res.status == 0:
                        assert struct.unpack(">I", res.extras[:4])[0] == 1, where  # a tombstone
                else:
                    assert res.status == 0 and res.cas == doc[1], where

