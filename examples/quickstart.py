"""Store, read, count and remove documents: the basic calls."""

from _cluster import connection

with connection(__doc__) as cb:
    cb.set("user:1", {"name": "Ada", "langs": ["en", "fr"]})
    print("user:1 =", cb.get("user:1"))
    cb.set({"a": 1, "b": 2})
    print("a, b =", cb.get(["a", "b"]))
    print("visits:", cb.incr("visits", initial=1), cb.incr("visits"))
    cb.delete(["a", "b", "user:1", "visits"])
    print("missing, quietly:", cb.get("user:1", quiet=True))
