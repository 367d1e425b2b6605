"""Read-modify-write without losing a concurrent update: retry on a CAS mismatch."""

import threading

from _cluster import connection

from couchbase.exceptions import KeyExistsError


def add_tag(cb, key, tag):
    """Append tag to the document's tag list, however many writers race."""
    while True:
        doc, _flags, cas = cb.get(key, extended=True)
        doc["tags"].append(tag)
        try:
            return cb.set(key, doc, cas=cas)
        except KeyExistsError:
            continue  # someone else wrote first: read again


with connection(__doc__) as cb:
    cb.set("post:1", {"tags": []})
    writers = [threading.Thread(target=add_tag, args=(cb, "post:1", f"t{i}")) for i in range(8)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    tags = cb.get("post:1")["tags"]
    assert sorted(tags) == sorted(f"t{i}" for i in range(8)), tags
    print(f"{len(tags)} tags, none lost:", sorted(tags))
    cb.delete("post:1")
