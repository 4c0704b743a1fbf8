"""Which policy file is used, and where its relative and left-out paths point."""

from __future__ import annotations

from pathlib import Path

import pytest

from socialguard.files.policy_files import PolicyPaths, find_config, layout_for, load_settings


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory and no $SOCIALGUARD_CONFIG."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SOCIALGUARD_CONFIG", raising=False)
    return tmp_path


def test_the_search_order(nowhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--config, then $SOCIALGUARD_CONFIG, then ./config/policy.yaml."""
    assert find_config(None)[0] is None
    (nowhere / "config").mkdir()
    (nowhere / "config" / "policy.yaml").write_text("{}\n")
    assert find_config(None) == (Path("config/policy.yaml"), "the checkout's config/policy.yaml")
    monkeypatch.setenv("SOCIALGUARD_CONFIG", "/srv/elsewhere.yaml")
    assert find_config(None) == (Path("/srv/elsewhere.yaml"), "SOCIALGUARD_CONFIG")
    assert find_config(Path("given.yaml")) == (Path("given.yaml"), "--config")


def test_the_installed_policy_comes_last(nowhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = nowhere / "root"
    (root / "etc/socialguard").mkdir(parents=True)
    (root / "etc/socialguard/policy.yaml").write_text("{}\n")
    monkeypatch.setenv("SOCIALGUARD_ROOT", str(root))
    assert find_config(None) == (root / "etc/socialguard/policy.yaml", "the installed policy")
    (nowhere / "config").mkdir()
    (nowhere / "config" / "policy.yaml").write_text("{}\n")
    assert find_config(None)[0] == Path("config/policy.yaml")


def test_a_checkout_keeps_its_files_from_any_directory(nowhere: Path) -> None:
    """DIR/config/policy.yaml: defaults and relative paths under DIR, wherever it is run from;
    from the checkout root they are today's relative paths."""
    checkout = nowhere / "checkout"
    (checkout / "config").mkdir(parents=True)
    policy = checkout / "config" / "policy.yaml"
    policy.write_text("catalogs: [config/extra.yaml]\naudit: {hmac_key_file: keys/audit.key}\n")
    settings, _ = load_settings(policy)
    assert settings.audit_path == checkout / "var/audit.jsonl"
    assert settings.ca_dir == checkout / "var/ca"
    assert settings.authorisations_path == checkout / "allowlists/authorisations.yaml"
    assert settings.catalogs == (checkout / "config/extra.yaml",)
    assert settings.audit_hmac_key_file == checkout / "keys/audit.key"


def test_from_the_checkout_root_the_paths_stay_relative(
    nowhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (nowhere / "config").mkdir()
    (nowhere / "config" / "policy.yaml").write_text("practice: {name: Test}\n")
    settings, _ = load_settings(PolicyPaths().config_path())
    assert settings.audit_path == Path("var/audit.jsonl")
    assert settings.ca_dir == Path("var/ca")
    assert settings.authorisations_path == Path("allowlists/authorisations.yaml")


def test_an_installed_policy_uses_etc_var_lib_and_var_log(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc/socialguard").mkdir(parents=True)
    policy = root / "etc/socialguard/policy.yaml"
    policy.write_text("identity: {proxyauth: '@htpasswd'}\ncatalogs: [extra.yaml]\n")
    settings, _ = load_settings(policy)
    assert settings.layout.name == "installed"
    assert settings.authorisations_path == root / "etc/socialguard/allowlists/authorisations.yaml"
    assert settings.layout.admin_htpasswd == root / "etc/socialguard/admin.htpasswd"
    assert settings.ca_dir == root / "var/lib/socialguard/ca"
    assert settings.audit_path == root / "var/log/socialguard/audit.jsonl"
    assert settings.proxyauth == f"@{root}/etc/socialguard/htpasswd"
    assert settings.catalogs == (root / "etc/socialguard/extra.yaml",)
    assert layout_for(Path("/etc/socialguard/policy.yaml")).audit_path == Path(
        "/var/log/socialguard/audit.jsonl"
    )


def test_any_other_file_keeps_its_files_beside_it(tmp_path: Path) -> None:
    policy = tmp_path / "site.yaml"
    policy.write_text(
        "authorisations: lists/exemptions.yaml\nca_dir: /srv/ca\naudit: {path: logs/a.jsonl}\n"
    )
    settings, _ = load_settings(policy)
    assert settings.authorisations_path == tmp_path / "lists/exemptions.yaml"
    assert settings.authorisations_named
    assert settings.ca_dir == Path("/srv/ca")
    assert settings.audit_path == tmp_path / "logs/a.jsonl"
