# Included by _lcb.pyx: libcouchbase's log -> Python logging (logger "couchbase").
# Messages below the logger's level are dropped in C, without the GIL.

cdef int _log_min_severity = lcb.LCB_LOG_WARN
cdef dict _SEVERITY_TO_LEVEL = {
    lcb.LCB_LOG_TRACE: 5, lcb.LCB_LOG_DEBUG: logging.DEBUG, lcb.LCB_LOG_INFO: logging.INFO,
    lcb.LCB_LOG_WARN: logging.WARNING, lcb.LCB_LOG_ERROR: logging.ERROR, lcb.LCB_LOG_FATAL: logging.CRITICAL,
}
_logger = logging.getLogger("couchbase")


cdef int _update_log_severity() except -1:
    """Follow the logger's level (read when a connection opens)."""
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
