"""A list `socialguard policy pull` takes from the shared repository: the page says so, offers
no change, and refuses a grant, renewal or revocation posted anyway with the command line's
own message; the list is left exactly as the pull wrote it."""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import Any

from tests.cli.test_policy_pull import commit, git
from tests.web.conftest import today, token_of

REFUSAL = "ask IT to make the change in the repository"


def test_the_page_refuses_changes_to_a_list_kept_in_git(run_admin: Any, tmp_path: Path) -> None:
    admin = run_admin()
    repo = tmp_path / "policy-repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(
        repo,
        {
            "sites/riverside/policy.yaml": admin.policy.read_text(),
            "sites/riverside/authorisations.yaml": admin.authorisations.read_text(),
        },
        "riverside's list is kept here",
    )
    pulled = admin.cli("policy", "pull", "--repo", str(repo), "--site", "riverside",
                       "--config", str(admin.policy), "--authorisations",
                       str(admin.authorisations), "--checkout", str(tmp_path / "copy"))  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr
    listed = admin.authorisations.read_bytes()
    year = today().year
    with admin.client() as client:
        admin.sign_in(client)
        overview = client.get("/")
        text = html.unescape(overview.text)
        assert f"kept by IT in the shared policy repository {repo}" in text
        assert "sites/riverside/authorisations.yaml" in text
        assert 'href="/grant"' not in text
        assert f"EX-{year}-001" in text  # still shown
        exemption = client.get(f"/exemptions/EX-{year}-001")
        assert exemption.status_code == 200
        assert "/renew" not in exemption.text
        assert client.get("/grant").status_code == 409
        token = token_of(overview.text)
        renewed = client.post(
            f"/exemptions/EX-{year}-001/renew",
            data={"csrf": token, "until": str(today() + dt.timedelta(days=200))},
        )
        assert renewed.status_code == 400
        assert REFUSAL in html.unescape(renewed.text)
        revoked = client.post(
            f"/exemptions/EX-{year}-002/revoke", data={"csrf": token, "reason": "No longer needed"}
        )
        assert revoked.status_code == 400
        granted = client.post("/grant", data={
            "csrf": token, "kind": "user", "who": "a.nother", "service": "instagram",
            "purpose": "Post the flu clinic dates", "until": str(today() + dt.timedelta(days=9)),
        })  # fmt: skip
        assert granted.status_code == 400
        assert REFUSAL in html.unescape(granted.text)
    assert admin.authorisations.read_bytes() == listed
    refused = [e["action"] for e in admin.events("admin.action_refused")]
    assert refused == ["renew", "revoke", "grant"]
