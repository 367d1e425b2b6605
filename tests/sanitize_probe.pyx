"""Deliberate memory and arithmetic errors, built only by the sanitizer build
(COUCHBASE_LCB_SANITIZE=1, as couchbase._sanitize_probe) with the extension's own
flags: tests/test_sanitize.py calls them in a child process to show that
AddressSanitizer and UBSan really stop the process on such errors."""

from libc.stdlib cimport free, malloc
from libc.string cimport memset


def read_past_heap_block(size_t size):
    """Read the byte just past a size-byte heap block: a heap-buffer-overflow."""
    cdef unsigned char *block = <unsigned char *>malloc(size)
    if block == NULL:
        raise MemoryError()
    memset(block, 7, size)
    cdef int byte = block[size]
    free(block)
    return byte


def shift_one_left(int bits):
    """1 << bits in a C unsigned int: undefined for 32 bits or more. (Not a
    signed overflow: Python's flags build extensions with -fwrapv.)"""
    cdef unsigned int one = 1
    return one << bits
