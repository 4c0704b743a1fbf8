"""`socialguard ca`: the certificate authority that signs HTTPS block pages.

IT installs the CA *certificate* on practice-managed devices so that a blocked HTTPS site can
show the block page instead of a browser error. The CA *key* stays in the gateway's CA directory
(0600, directory 0700): nothing here ever copies, prints or exports it.
"""

from __future__ import annotations

from pathlib import Path

import click
from cryptography.hazmat.primitives import serialization

from socialguard.cli.common import CommandGroup, Refusal
from socialguard.files.output import OutputError, write_file
from socialguard.files.policy_files import PolicyPaths, check_exists, load_settings

INSTRUCTIONS = """\
socialguard CA certificate: install it ONLY on practice-managed devices
=========================================================================

Files
  socialguard-ca.pem   the certificate, PEM (macOS, iOS, Linux, Firefox, Android)
  socialguard-ca.der   the same certificate, DER (Windows group policy: rename to .cer if asked)
  socialguard-ca.sha256  its SHA-256 fingerprint

Fingerprint (SHA-256)
  {fingerprint}

Check this fingerprint on every device before trusting the certificate. The CA's private key
never leaves the gateway: if anyone offers you a "key" file, do not use it and tell IT.

With this certificate trusted, a blocked HTTPS site shows the practice's block page instead of
a browser error ("https_block: page" in config/policy.yaml). Allowed sites are never decrypted.
Do not install it on personal (BYOD) devices: they simply see the browser's connection error.

Windows (group policy, domain-joined PCs)
  Group Policy Management > edit a GPO linked to the practice PCs >
  Computer Configuration > Policies > Windows Settings > Security Settings >
  Public Key Policies > Trusted Root Certification Authorities > Import > socialguard-ca.der.
  Then `gpupdate /force` on a PC, or wait for the next refresh. Chrome and Edge use this store;
  Firefox does too when its policy "Certificates > ImportEnterpriseRoots" is on.

macOS and iOS/iPadOS (configuration profile, MDM)
  Add a "Certificate" payload containing socialguard-ca.pem to the profile your MDM (Apple
  Business Manager, Intune, Jamf...) pushes. On iOS a certificate installed by hand must also be
  enabled in Settings > General > About > Certificate Trust Settings; one from MDM is trusted.
  A single Mac by hand: open Keychain Access > System > import > set "Always Trust".

Android (managed devices)
  Push socialguard-ca.pem as a CA certificate through your EMM/MDM (Intune, Google endpoint
  management). By hand: Settings > Security > Encryption & credentials > Install a certificate >
  CA certificate. Android apps ignore user-installed CAs unless they opt in, so apps will see a
  refused connection rather than the page; browsers show the page.

Removing it
  Remove the certificate from the same place; blocked HTTPS then shows a browser error again.
"""


@click.group(cls=CommandGroup, not_loaded="the policy was not loaded:")
def ca() -> None:
    """The CA that lets blocked HTTPS sites show the block page on managed devices."""


def _ca_dir(config: Path | None, confdir: Path | None) -> Path:
    """`--confdir` if given, else policy.yaml's `ca_dir`: the directory `run` uses too."""
    if confdir is not None:
        return confdir
    if config is not None:
        check_exists(config, "the policy file")
    settings, _raw = load_settings(PolicyPaths(config, None).config_path())
    return settings.ca_dir


CA_OPTIONS = [
    click.option(
        "--config",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="IT's settings, for `ca_dir` (default: config/policy.yaml if present).",
    ),
    click.option(
        "--confdir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="The CA directory, as given to `run --confdir` (default: ca_dir, var/ca).",
    ),
]


@ca.command("export")
@CA_OPTIONS[0]
@CA_OPTIONS[1]
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory to write the certificate, its fingerprint and the instructions into.",
)
def export(config: Path | None, confdir: Path | None, out: Path) -> None:
    """Write the CA certificate (PEM and DER), its fingerprint and install instructions.

    Creates the CA first if the proxy has never run. The key is never written.
    """
    from socialguard.proxy.ca import fingerprint, read_ca_certificate  # noqa: PLC0415 - mitmproxy

    cert = read_ca_certificate(_ca_dir(config, confdir))
    out.mkdir(parents=True, exist_ok=True)
    print_ = fingerprint(cert)
    files = {
        "socialguard-ca.pem": cert.public_bytes(serialization.Encoding.PEM),
        "socialguard-ca.der": cert.public_bytes(serialization.Encoding.DER),
        "socialguard-ca.sha256": f"SHA256 Fingerprint={print_}\n".encode(),
        "INSTALL.txt": INSTRUCTIONS.format(fingerprint=print_).encode(),
    }
    try:
        for name, data in files.items():
            write_file(out / name, data)  # a link planted at a name is replaced, not followed
    except OutputError as error:
        raise Refusal(str(error)) from None
    click.echo(f"wrote {out}/socialguard-ca.pem, .der, .sha256 and INSTALL.txt")
    click.echo(f"SHA-256 fingerprint: {print_}")


@ca.command("fingerprint")
@CA_OPTIONS[0]
@CA_OPTIONS[1]
def show_fingerprint(config: Path | None, confdir: Path | None) -> None:
    """Print the CA certificate's SHA-256 fingerprint, to compare with a device's."""
    from socialguard.proxy.ca import fingerprint, read_ca_certificate  # noqa: PLC0415 - mitmproxy

    click.echo(fingerprint(read_ca_certificate(_ca_dir(config, confdir))))
