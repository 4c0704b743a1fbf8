"""What many tests share: one small policy (catalogue, settings, authorisations), built once."""

from __future__ import annotations

import datetime as dt
import os
import tempfile

from socialguard.core.authorisations import parse_authorisations
from socialguard.core.catalog import parse_catalog
from socialguard.core.policy import Policy
from socialguard.core.settings import parse_settings
from socialguard.files.signup_file import embedded_endpoints
from socialguard.files.yamlfile import parse_yaml

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday, GMT

CATALOG = """\
services:
  facebook:
    name: Facebook
    category: social-networking
    domains: [facebook.com, fbcdn.net]
  linkedin:
    name: LinkedIn
    category: social-networking
    domains: [linkedin.com]
  youtube:
    name: YouTube
    category: multimedia-sharing
    domains: [youtube.com]
  wikipedia:
    name: Wikipedia
    category: information-sharing
    domains: [wikipedia.org]
never_block: [nhs.uk, nhs.net]
"""
# A practice's own signup endpoints (signup_guard.endpoints): the CLI and proxy tests share it.
PRACTICE_ENDPOINTS = """\
sites:
  riverside-supplies:
    name: Riverside Medical Supplies
    hosts: [supplies.example]
    checked: 2027-01-10
    how: the trade account form, seen by the practice manager
    registration: [/trade/apply]
"""


SETTINGS = """\
zones:
  - name: staff
    subnets: [10.10.0.0/24]
  - name: byod
    subnets: [10.20.0.0/24, "2001:db8:20::/64"]
    break_windows:
      - {days: mon-fri, from: "12:30", to: "13:30"}
devices:
  reception-pc-1: 10.10.0.21
groups:
  reception: [a.brown, c.davis]
"""
AUTHORISATIONS = """\
approvers: [practice.manager]
exemptions:
  - id: EX-USER
    who: {user: j.smith}
    services: [facebook]
    purpose: Maintain the practice's Facebook page
    approved_by: practice.manager
    approved_on: 2026-11-01
    expires: 2027-10-31
  - id: EX-OLD
    who: {user: old.user}
    services: [facebook]
    purpose: Post flu clinic dates on Facebook
    approved_by: practice.manager
    approved_on: 2025-11-01
    expires: 2026-10-31
  - id: EX-OLDER
    who: {user: old.user}
    categories: [social-networking]
    purpose: Post flu clinic dates on social media
    approved_by: practice.manager
    approved_on: 2025-10-01
    expires: 2026-09-30
  - id: EX-FUTURE
    who: {user: new.user}
    services: [facebook]
    purpose: Run the patient participation group page
    approved_by: practice.manager
    approved_on: 2026-11-01
    starts: 2027-01-01
    expires: 2027-10-31
  - id: EX-REVOKED
    who: {user: gone.user}
    services: [facebook]
    purpose: Run the patient participation group page
    approved_by: practice.manager
    approved_on: 2026-11-01
    expires: 2027-10-31
    revoked: {'on': 2026-11-20, by: practice.manager, reason: left the practice}
  - id: EX-GROUP
    who: {group: reception}
    categories: [multimedia-sharing]
    purpose: Play the practice's patient information videos
    approved_by: practice.manager
    approved_on: 2026-11-01
    expires: 2027-10-31
  - id: EX-DEVICE
    who: {device: reception-pc-1}
    domains: [linkedin.com]
    purpose: Check recruitment adverts on the practice LinkedIn page
    approved_by: practice.manager
    approved_on: 2026-11-01
    expires: 2027-10-31
"""


def make_policy(settings_text: str = SETTINGS) -> Policy:
    settings = parse_settings(parse_yaml(settings_text, "policy.yaml"), "policy.yaml")
    catalog = parse_catalog(parse_yaml(CATALOG, "catalog.yaml"), "catalog.yaml")
    authorisations = parse_authorisations(
        parse_yaml(AUTHORISATIONS, "authorisations.yaml"), "authorisations.yaml", catalog, settings
    )
    return Policy(
        settings=settings,
        catalog=catalog,
        authorisations=authorisations,
        digest="d",
        signup_endpoints=embedded_endpoints(),
    )


# An installation on the machine running the tests (/etc/socialguard/policy.yaml) must not
# become their policy: the installed layout is looked for under an empty folder instead. Set
# in the environment, so `socialguard run` subprocesses inherit it.
os.environ["SOCIALGUARD_ROOT"] = tempfile.mkdtemp(prefix="socialguard-no-install-")
