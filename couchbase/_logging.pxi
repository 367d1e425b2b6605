# Included by _lcb.pyx: libcouchbase's log -> Python logging (logger "couchbase").
# Messages below the logger's level are dropped in C, without the GIL: the
# threshold is a C int, recomputed whenever any logger's level changes (see
# _follow_level_changes), so the callback never asks Python.

cdef int _log_min_severity = lcb.LCB_LOG_WARN
cdef dict _SEVERITY_TO_LEVEL = {
    lcb.LCB_LOG_TRACE: 5, lcb.LCB_LOG_DEBUG: logging.DEBUG, lcb.LCB_LOG_INFO: logging.INFO,
    lcb.LCB_LOG_WARN: logging.WARNING, lcb.LCB_LOG_ERROR: logging.ERROR, lcb.LCB_LOG_FATAL: logging.CRITICAL,
}
_logger = logging.getLogger("couchbase")


cdef int _update_log_severity() except -1:
    """Follow the logger's effective level (at import, when a connection
    opens, and after every setLevel of any logger)."""
    global _log_min_severity
    level = _logger.getEffectiveLevel()
    if level <= 5:
        _log_min_severity = lcb.LCB_LOG_TRACE
    elif level <= logging.DEBUG:
        _log_min_severity = lcb.LCB_LOG_DEBUG
    elif level <= logging.INFO:
        _log_min_severity = lcb.LCB_LOG_INFO
    else:
        _log_min_severity = lcb.LCB_LOG_WARN  # WARNING and above always go out
    return 0


def _follow_level_changes():
    """Recompute the threshold whenever the logging module drops its
    level caches: Logger.setLevel (of this logger or an ancestor) and
    logging.disable call the manager's _clear_cache. A level set by
    assigning Logger.level directly is seen at the next connect."""
    manager = _logger.manager
    clear_cache = getattr(manager, "_clear_cache", None)
    if clear_cache is None:
        return  # not CPython's logging: the level is read at connect only

    def clear_cache_and_follow():
        clear_cache()
        try:
            _update_log_severity()
        except Exception:
            pass  # a level change must never fail because of the binding

    manager._clear_cache = clear_cache_and_follow


_follow_level_changes()
_update_log_severity()


cdef void _on_log(const lcb.lcb_LOGGER *procs, uint64_t iid, const char *subsys,
                  lcb.lcb_LOG_SEVERITY severity, const char *srcfile, int srcline,
                  const char *fmt, lcb.va_list ap) noexcept nogil:
    cdef char buf[4096]
    cdef void *secrets = NULL
    if <int> severity < _log_min_severity:
        return
    cdef int n = lcb.vsnprintf(buf, sizeof(buf), fmt, ap)
    lcb.lcb_logger_cookie(procs, &secrets)
    _forward_log(iid, subsys, severity, buf, n >= <int> sizeof(buf), secrets)


cdef void _forward_log(uint64_t iid, const char *subsys, int severity, const char *msg, bint truncated,
                       void *secrets) noexcept with gil:
    # secrets: the Connection's tuple of secret_forms (the logger's cookie),
    # which lives as long as the logger
    try:
        known = <tuple> secrets if secrets != NULL else ()
        text = _redact_log_line(msg.decode("utf-8", "replace"), known, truncated)
        if severity >= lcb.LCB_LOG_ERROR:
            _tls.note_log(text)  # which certificate check failed, for the connect error
        _logger.log(_SEVERITY_TO_LEVEL.get(severity, logging.WARNING), "[%d] (%s) %s",
                    iid, subsys.decode("utf-8", "replace"), text)
    except BaseException:
        pass  # logging must never break an operation


cdef str _redact_log_line(str text, tuple secrets, bint truncated):
    """A log line with the Connection's secrets and any password option
    redacted; a line cut short also loses a trailing start of a secret."""
    if truncated:
        for secret in secrets:
            for n in range(len(secret) - 1, 0, -1):
                if text.endswith(secret[:n]):
                    text = text[:-n]
                    break
        text += "..."
    return _exc.redact(text, secrets)
