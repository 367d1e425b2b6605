"""What the TLS tests share: connecting to a TLS mock over CCCP or HTTPS."""

from couchbase import Couchbase


def tls_base(mock, bootstrap="cccp", node=0):
    """The mock's couchbases:// connection string without the CA (the tests give it as an option)."""
    return mock.tls_connstr(node=node, bootstrap=bootstrap).split("?", 1)[0]


def connect_tls(mock, bootstrap="cccp", bucket="default", password="", node=0, connect=Couchbase.connect,
                **options):
    """A Connection over TLS to ``mock``, verifying with its CA unless ``options`` say otherwise;
    ``connect`` makes it (the suite's ``connect`` fixture: of the connection kind under test)."""
    if "tls_verify" not in options and "tls_ca_file" not in options:
        options["tls_ca_file"] = mock.ca_path
    if "tls_cert_file" in options:
        password = None
    connstr = tls_base(mock, bootstrap, node).replace("/default", "/" + bucket)
    return connect(bucket=bucket, password=password, connection_string=connstr, **options)
