"""The certificate authority that signs HTTPS block pages: made once, kept private, read back.

The CA *key* stays in the gateway's CA directory (0600, directory 0700): nothing here ever
copies, prints or exports it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from mitmproxy import certs
from mitmproxy.options import CONF_BASENAME

CA_NAME = "socialguard CA"
# mitmproxy reads `<confdir>/mitmproxy-ca.pem` (key and certificate) and creates it if missing.
KEY_FILE = f"{CONF_BASENAME}-ca.pem"
# The other file mitmproxy writes that holds the key (PKCS#12 with key).
SECRET_FILES = (KEY_FILE, f"{CONF_BASENAME}-ca.p12")
CERT_FILE = f"{CONF_BASENAME}-ca-cert.pem"
KEY_SIZE = 2048  # mitmproxy's default `key_size`


@contextlib.contextmanager
def _private_umask() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def ensure_ca(directory: Path) -> Path:
    """Create the CA in `directory` if it is missing and make its key owner-only; returns the
    certificate's path. Shared by `run` and `ca export`, so both use the very same CA."""
    directory = directory.expanduser()
    with _private_umask():
        directory.mkdir(parents=True, exist_ok=True)
        if not (directory / KEY_FILE).exists():
            certs.CertStore.create_store(
                directory, CONF_BASENAME, KEY_SIZE, organization="socialguard", cn=CA_NAME
            )
    directory.chmod(0o700)
    for name in SECRET_FILES:
        secret = directory / name
        if secret.exists() and stat.S_IMODE(secret.stat().st_mode) & 0o077:
            secret.chmod(0o600)  # a key readable by others is fixed, not trusted as it is
    return directory / CERT_FILE


def read_ca_certificate(directory: Path) -> x509.Certificate:
    """The CA certificate only: the first certificate of the store's certificate file."""
    path = ensure_ca(directory)
    return x509.load_pem_x509_certificate(path.read_bytes())


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate, as `AB:CD:…`: what IT compares on each device."""
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def spki_hash(cert: x509.Certificate) -> str:
    """Base64 SHA-256 of the public key: Chromium's `--ignore-certificate-errors-spki-list`."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()
