"""A real OpenLDAP server (Debian's slapd) on loopback with TLS and a small practice directory.

Made for the directory sign-in tests: a test CA (openssl), a server certificate for
`localhost`, the memberof overlay (so users carry `memberOf`, as in Active Directory), one
service account, three staff and two groups.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.loopback import free_port, terminate, wait_for_port

BASE = "dc=practice,dc=example"
ADMIN = f"cn=admin,{BASE}"
SERVICE = f"cn=socialguard,ou=Service Accounts,{BASE}"
RECEPTION = f"cn=Reception,ou=Groups,{BASE}"
CLINICIANS = f"cn=Clinicians,ou=Groups,{BASE}"
PASSWORDS = {"a.brown": "Reception-1", "d.evans": "Clinic-22", "f.green": "Nobody-333"}
SLAPD = "/usr/sbin/slapd"


def available() -> bool:
    return Path(SLAPD).exists() and shutil.which("ldapadd") is not None


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_ca(directory: Path, name: str = "ca") -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", f"/CN=socialguard test {name}", "-keyout", str(key), "-out", str(cert),
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign",
    )  # fmt: skip
    return cert, key


def make_server_cert(directory: Path, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    cert, key, csr = directory / "server.pem", directory / "server.key", directory / "server.csr"
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", str(key), "-out", str(csr),
    )  # fmt: skip
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-CAcreateserial", "-days", "2", "-out", str(cert), "-extfile", str(ext),
    )  # fmt: skip
    os.chmod(key, 0o600)
    return cert, key


CONFIG = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile {dir}/slapd.pid
TLSCACertificateFile {ca}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
database mdb
maxsize 10485760
suffix "{base}"
rootdn "{admin}"
rootpw admin-secret
directory {dir}/db
overlay memberof
"""


def _entries() -> str:
    people = "".join(
        f"dn: uid={uid},ou=People,{BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
        f"cn: {uid}\nsn: {uid}\nuserPassword: {password}\n\n"
        for uid, password in PASSWORDS.items()
    )
    return (
        f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: practice\no: P\n\n"
        f"dn: ou=People,{BASE}\nobjectClass: organizationalUnit\nou: People\n\n"
        f"dn: ou=Groups,{BASE}\nobjectClass: organizationalUnit\nou: Groups\n\n"
        f"dn: ou=Service Accounts,{BASE}\nobjectClass: organizationalUnit\nou: Service Accounts\n\n"
        f"dn: {SERVICE}\nobjectClass: person\ncn: socialguard\nsn: service\n"
        "userPassword: service-secret\n\n"
        f"{people}"
        f"dn: {RECEPTION}\nobjectClass: groupOfNames\ncn: Reception\n"
        f"member: uid=a.brown,ou=People,{BASE}\n\n"
        f"dn: {CLINICIANS}\nobjectClass: groupOfNames\ncn: Clinicians\n"
        f"member: uid=d.evans,ou=People,{BASE}\n\n"
    )


@dataclass
class Slapd:
    """A running slapd: its port, its CA, and a way to stop and start it again."""

    directory: Path
    port: int
    ca: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ldaps://localhost:{self.port}"

    def start(self) -> None:
        with (self.directory / "slapd.log").open("ab") as log:
            self.process = subprocess.Popen(
                [SLAPD, "-f", str(self.directory / "slapd.conf"),
                 "-h", f"ldaps://127.0.0.1:{self.port}/", "-d", "0"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        if not wait_for_port(self.port, 15):
            self.stop()
            raise AssertionError(
                "slapd did not start: " + (self.directory / "slapd.log").read_text()
            )

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process)
        self.process = None


def start_slapd(directory: Path) -> Slapd:
    """Make the CA, certificate, configuration and directory, and start slapd."""
    ca = make_ca(directory)
    cert, key = make_server_cert(directory, ca)
    (directory / "db").mkdir()
    (directory / "slapd.conf").write_text(
        CONFIG.format(dir=directory, ca=ca[0], cert=cert, key=key, base=BASE, admin=ADMIN)
    )
    server = Slapd(directory=directory, port=free_port(), ca=ca[0])
    server.start()
    ldif = directory / "directory.ldif"
    ldif.write_text(_entries())
    subprocess.run(
        ["ldapadd", "-x", "-H", f"ldaps://127.0.0.1:{server.port}", "-D", ADMIN,
         "-w", "admin-secret", "-f", str(ldif)],
        check=True, capture_output=True, timeout=30,
        env={**os.environ, "LDAPTLS_CACERT": str(ca[0]), "LDAPTLS_REQCERT": "demand"},
    )  # fmt: skip
    return server
