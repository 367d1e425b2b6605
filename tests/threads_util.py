"""Running a test's worker in many threads at once."""

import threading


def run_threads(target, n, timeout=60):
    """Run target(i) in n threads; fail if one hangs, re-raise what they raised."""
    errors = []

    def wrapped(i):
        try:
            target(i)
        except BaseException as e:  # reported by the calling thread
            errors.append(e)

    threads = [threading.Thread(target=wrapped, args=(i,), daemon=True) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout)
    assert not any(th.is_alive() for th in threads), "a thread hangs"
    assert not errors, errors[:3]
