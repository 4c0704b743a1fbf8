"""Grant, renew and revoke from the page write exactly what `socialguard exemptions …` writes
for the same action (same code path, same comment-keeping write); a refusal shows the CLI's
own message next to the field; a request is approved or declined and its answer looked up."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

from tests.web.conftest import APPROVER, record_blocks, today, token_of


def _cli_copy(admin: Any, name: str) -> Path:
    copy: Path = admin.tmp / name
    shutil.copy(admin.authorisations, copy)
    return copy


def _post(client: Any, path: str, page: str, **data: str) -> Any:
    token = token_of(client.get(page).text)
    return client.post(path, data={"csrf": token, **data})


def test_grant_renew_revoke_write_what_the_cli_writes(run_admin: Any) -> None:
    admin = run_admin()
    (ref,) = record_blocks(admin.proxy_audit, {"user": "a.nother", "service": "instagram",
                                               "host": "www.instagram.com"})  # fmt: skip
    cli_file = _cli_copy(admin, "cli.yaml")
    year = today().year
    until = str(today() + dt.timedelta(days=90))
    later = str(today() + dt.timedelta(days=300))
    common = ("--config", str(admin.policy), "--authorisations", str(cli_file))
    with admin.client() as client:
        admin.sign_in(client)
        granted = _post(
            client, "/grant", f"/grant?ref={ref}", kind="user", who="a.nother",
            service="instagram", purpose="Post the flu clinic dates", until=until, ref=ref,
        )  # fmt: skip
        assert granted.status_code == 200, granted.text
        assert f"granted EX-{year}-003 (from event {ref})" in granted.text
        cli = admin.cli("exemptions", "grant", "--from-event", ref, "--audit-log",
                        str(admin.proxy_audit), "--purpose", "Post the flu clinic dates",
                        "--approved-by", APPROVER, "--until", until, *common)  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        assert admin.authorisations.read_text() == cli_file.read_text()

        renewed = _post(
            client, f"/exemptions/EX-{year}-001/renew", f"/exemptions/EX-{year}-001",
            until=later,
        )  # fmt: skip
        assert renewed.status_code == 200, renewed.text
        assert f"renewed EX-{year}-001 until" in renewed.text
        cli = admin.cli("exemptions", "renew", f"EX-{year}-001", "--approved-by", APPROVER,
                        "--until", later, *common)  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        assert admin.authorisations.read_text() == cli_file.read_text()

        revoked = _post(
            client, f"/exemptions/EX-{year}-002/revoke", f"/exemptions/EX-{year}-002",
            reason="Recruitment finished",
        )  # fmt: skip
        assert revoked.status_code == 200, revoked.text
        cli = admin.cli("exemptions", "revoke", f"EX-{year}-002", "--reason",
                        "Recruitment finished", "--by", APPROVER, *common)  # fmt: skip
        assert cli.returncode == 0, cli.stderr
    text = admin.authorisations.read_text()
    assert text == cli_file.read_text()
    assert "# the practice's Facebook page" in text  # comments kept
    assert f"EX-{year}-002" not in admin.client().get("/").text  # not shown once revoked
    actions = [(e["event"], e.get("exemption_id")) for e in admin.events()
               if e["event"].startswith("admin.exemption")]  # fmt: skip
    assert actions == [
        ("admin.exemption_granted", f"EX-{year}-003"),
        ("admin.exemption_renewed", f"EX-{year}-001"),
        ("admin.exemption_revoked", f"EX-{year}-002"),
    ]
    assert all(e["user"] == APPROVER for e in admin.events() if e["event"].startswith("admin.ex"))


def test_a_refusal_shows_the_cli_message_next_to_its_field(run_admin: Any) -> None:
    admin = run_admin()
    year = today().year
    before = admin.authorisations.read_text()
    cli = admin.cli("exemptions", "renew", f"EX-{year}-001", "--approved-by", APPROVER,
                    "--until", "2001-01-01", "--config", str(admin.policy),
                    "--authorisations", str(admin.authorisations))  # fmt: skip
    assert cli.returncode == 2
    assert "2001-01-01 is in the past" in cli.stderr
    with admin.client() as client:
        admin.sign_in(client)
        page = _post(client, f"/exemptions/EX-{year}-001/renew", f"/exemptions/EX-{year}-001",
                     until="2001-01-01")  # fmt: skip
        assert page.status_code == 400
        assert 'id="until-error">2001-01-01 is in the past</span>' in page.text
        # Shortening is refused by authorisation_edit itself, with its own words.
        sooner = str(today() + dt.timedelta(days=5))
        page = _post(client, f"/exemptions/EX-{year}-001/renew", f"/exemptions/EX-{year}-001",
                     until=sooner)  # fmt: skip
        assert page.status_code == 400
        assert "a renewal must end later than that" in page.text
        assert "nothing was written" in page.text
        # Granting to a device the policy does not name: the validator's located problem.
        page = _post(client, "/grant", "/grant", kind="device", who="no-such-pc",
                     service="facebook", purpose="x", until=str(today()))  # fmt: skip
        assert page.status_code == 400
        assert "would not be valid after this change" in page.text
    assert admin.authorisations.read_text() == before
    assert len(admin.events("admin.action_refused")) == 2


def test_a_request_is_approved_and_another_declined(run_admin: Any) -> None:
    admin = run_admin()
    first, second = record_blocks(
        admin.proxy_audit,
        {"user": "a.nother", "service": "instagram", "host": "www.instagram.com"},
        {"user": None, "client_ip": "127.0.0.1", "service": "tiktok", "host": "www.tiktok.com"},
    )
    staff = admin.client()
    for ref, extra in ((first, {}), (second, {"name": "Jo Bloggs"})):
        page = staff.get("/request", params={"ref": ref})
        sent = staff.post("/request", data={"csrf": token_of(page.text), "ref": ref,
                                            "purpose": "Practice news", **extra})  # fmt: skip
        assert sent.status_code == 303
    until = str(today() + dt.timedelta(days=60))
    with admin.client() as client:
        admin.sign_in(client)
        overview = client.get("/").text
        assert first in overview
        assert "Jo Bloggs (name given; not signed in to the proxy)" in overview
        prefilled = client.get("/grant", params={"request": first}).text
        assert 'value="a.nother"' in prefilled
        approved = client.post("/grant", data={
            "csrf": token_of(prefilled), "kind": "user", "who": "a.nother",
            "service": "instagram", "purpose": "Practice news", "until": until,
            "request": first,
        })  # fmt: skip
        assert approved.status_code == 200, approved.text
        review = client.get(f"/requests/{second}")
        declined = client.post(
            f"/requests/{second}/decline",
            data={"csrf": token_of(review.text), "reason": "Not for work"},
        )
        assert declined.status_code == 200
        assert f"declined request {second}" in declined.text
    answer = staff.get("/answer", params={"ref": first}).text
    assert "Approved by practice.manager" in answer
    answer = staff.get("/answer", params={"ref": second}).text
    assert "Declined" in answer
    assert "Not for work" in answer
    assert [e["reference"] for e in admin.events("exemption.requested")] == [first, second]
    declined_events = admin.events("exemption.declined")
    assert [(e["reference"], e["reason"]) for e in declined_events] == [(second, "Not for work")]
    assert "who: {user: a.nother}" in admin.authorisations.read_text()
