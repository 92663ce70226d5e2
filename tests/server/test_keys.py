"""API keys (server/keys.py), per-key rate limits (server/ratelimit.py) and the ``domainrag keys``
commands."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from domainrag.cli import app
from domainrag.errors import ConfigError, DomainragError
from domainrag.server.keys import LOCAL_ADMIN, KeyStore, Principal, default_home
from domainrag.server.ratelimit import RateLimiter


@pytest.fixture
def store(tmp_path: Path):
    with KeyStore(tmp_path / "home" / "keys.sqlite3", last_used_resolution_s=0) as keys:
        yield keys


# -- KeyStore --------------------------------------------------------------------------------------
def test_a_created_key_verifies_to_its_principal_and_only_its_hash_is_stored(store: KeyStore) -> None:
    info, secret = store.create("alice", ["hr-docs", "policies"], "read", ["hr", "legal"])
    assert secret.startswith("dr_") and len(secret) == 3 + 43
    principal = store.verify(secret)
    assert principal == Principal("alice", "read", frozenset({"hr-docs", "policies"}), frozenset({"hr", "legal"}))
    assert principal == info.principal
    store.close()
    raw = store.path.read_bytes() + b"".join(p.read_bytes() for p in store.path.parent.glob("keys.sqlite3-*"))
    assert secret.encode() not in raw
    with sqlite3.connect(store.path) as db:
        (stored,) = db.execute("SELECT secret_sha256 FROM api_keys").fetchone()
    assert stored == hashlib.sha256(secret.encode()).hexdigest()


def test_each_key_gets_its_own_secret_and_id(store: KeyStore) -> None:
    a, secret_a = store.create("a", None, "read")
    b, secret_b = store.create("b", None, "read")
    assert secret_a != secret_b and a.id != b.id
    assert store.verify(secret_a).name == "a" and store.verify(secret_b).name == "b"


@pytest.mark.parametrize("secret", ["", "dr_", "dr_nope", "not-a-key", "dr_" + "x" * 43, "dr_" + "y" * 5000])
def test_anything_but_a_stored_key_verifies_to_none(store: KeyStore, secret: str) -> None:
    store.create("alice", None, "read")
    assert store.verify(secret) is None


def test_a_key_without_groups_reads_only_public_documents_and_star_reads_all(store: KeyStore) -> None:
    _, public_only = store.create("public", ["c"], "read")
    _, everything = store.create("all", ["c"], "write", None)
    assert store.verify(public_only).groups == frozenset()
    assert store.verify(everything).groups is None


def test_an_admin_key_is_unrestricted_and_refuses_restrictions(store: KeyStore) -> None:
    _, secret = store.create("root", None, "admin", None)
    assert store.verify(secret) == Principal("root", "admin", None, None)
    with pytest.raises(ConfigError, match="admin key uses every collection"):
        store.create("root2", None, "admin", ["hr"])
    with pytest.raises(ConfigError, match="admin key uses every collection"):
        store.create("root3", ["c"], "admin", None)


def test_a_taken_name_is_refused_naming_it(store: KeyStore) -> None:
    store.create("alice", None, "read")
    with pytest.raises(ConfigError, match="named 'alice' already exists.*keys revoke alice"):
        store.create("alice", ["other"], "write")
    assert [k.name for k in store.list()] == ["alice"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": ""}, "key name ''"),
    ({"name": "has space"}, "key name 'has space'"),
    ({"name": "x" * 65}, "is not valid"),
    ({"role": "owner"}, "Unknown role 'owner'"),
    ({"collections": ["a,b"]}, "collection name 'a,b'"),
    ({"collections": []}, "no collection"),
    ({"collections": ["*"]}, "collections=None"),
    ({"groups": ["hr,legal"]}, "contains a comma"),
    ({"groups": [" "]}, "is empty"),
    ({"groups": ["g" * 65]}, "the limit is 64"),
])
def test_bad_arguments_are_refused_naming_the_value(store: KeyStore, kwargs: dict, message: str) -> None:
    arguments = {"name": "k", "collections": ["c"], "role": "read", "groups": (), **kwargs}
    with pytest.raises(ConfigError, match=message):
        store.create(**arguments)
    assert store.list() == []


def test_revoke_by_name_or_id_prefix(store: KeyStore) -> None:
    alice, secret_a = store.create("alice", None, "read")
    bob, secret_b = store.create("bob", None, "read")
    assert store.revoke("alice") is True
    assert store.verify(secret_a) is None and store.verify(secret_b) is not None
    assert store.revoke(bob.id[:8]) is True
    assert store.verify(secret_b) is None
    assert store.revoke("alice") is False and store.revoke("nobody") is False
    assert not store.any_keys()


def test_a_short_id_prefix_is_not_an_id(store: KeyStore) -> None:
    info, _ = store.create("alice", None, "read")
    assert store.revoke(info.id[:4]) is False
    assert store.any_keys()


def test_a_name_that_is_another_keys_id_prefix_is_refused_as_ambiguous(store: KeyStore) -> None:
    first, _ = store.create("first", None, "read")
    store.create(first.id[:8], None, "read")
    with pytest.raises(ConfigError, match="matches 2 keys"):
        store.revoke(first.id[:8])
    assert len(store.list()) == 2
    assert store.revoke(first.id) is True  # the full id is not ambiguous
    assert [k.name for k in store.list()] == [first.id[:8]]


def test_verify_records_last_used_and_list_never_shows_secrets(store: KeyStore) -> None:
    info, secret = store.create("alice", ["c"], "read", ["hr"])
    assert store.list()[0].last_used is None
    store.verify(secret)
    listed = store.list()[0]
    assert listed.last_used is not None and listed.created == info.created
    assert secret not in json.dumps(listed.to_dict()) and "secret" not in json.dumps(listed.to_dict())
    assert listed.to_dict() == {"id": info.id, "name": "alice", "role": "read", "collections": ["c"],
                                "groups": ["hr"], "created": info.created, "last_used": listed.last_used}


def test_the_key_file_is_private(store: KeyStore) -> None:
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_an_existing_key_file_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "keys.sqlite3"
    KeyStore(path).close()
    path.chmod(0o644)
    KeyStore(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_keys_created_or_revoked_elsewhere_take_effect_at_once(tmp_path: Path) -> None:
    path = tmp_path / "keys.sqlite3"
    with KeyStore(path) as server, KeyStore(path) as cli:
        assert not server.any_keys()
        _, secret = cli.create("alice", None, "read")
        assert server.any_keys() and server.verify(secret) is not None
        cli.revoke("alice")
        assert server.verify(secret) is None


def test_verified_keys_are_answered_from_memory_until_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "keys.sqlite3"
    with KeyStore(path) as server, KeyStore(path) as cli:
        _, secret = cli.create("alice", ["docs"], "read", ["hr"])
        alice = Principal("alice", "read", frozenset({"docs"}), frozenset({"hr"}))
        assert server.peek(secret) is None and server.peek_any() is None  # not verified yet: ask verify()
        assert server.any_keys() and server.verify(secret) == alice
        assert server.peek(secret) == alice and server.peek_any() is True
        assert server.peek("dr_unknown") is None and server.verify("dr_unknown") is None
        cli.create("bob", None, "read")  # any write by another connection drops what was remembered
        assert server.peek(secret) is None and server.peek_any() is None
        assert server.verify(secret) == alice and server.peek(secret) == alice
        cli.revoke("alice")
        assert server.peek(secret) is None and server.verify(secret) is None


def test_a_key_revoked_through_the_same_store_is_forgotten_at_once(tmp_path: Path) -> None:
    with KeyStore(tmp_path / "keys.sqlite3") as keys:
        _, secret = keys.create("alice", None, "read")
        assert keys.verify(secret) is not None and keys.peek(secret) is not None
        assert keys.revoke("alice")
        assert keys.peek(secret) is None and keys.verify(secret) is None
        assert keys.any_keys() is False and keys.peek_any() is False


def test_peek_never_waits_and_leaves_last_used_writes_to_verify(store: KeyStore) -> None:
    _, secret = store.create("alice", None, "read")
    assert store.verify(secret) is not None
    assert store.peek(secret) is None  # last_used_resolution_s=0: every use is due a write
    with KeyStore(store.path) as other:
        assert other.verify(secret) is not None and other.any_keys() and other.peek_any() is True
        with other._lock:  # another thread holds the store: peek answers at once instead of waiting
            assert other.peek(secret) is None and other.peek_any() is None


def test_a_file_that_is_not_a_key_store_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "keys.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DomainragError, match="API key store .*keys.sqlite3 cannot be read"):
        KeyStore(path)


def test_concurrent_verifies_share_one_store(store: KeyStore) -> None:
    secrets = [store.create(f"k{i}", None, "read")[1] for i in range(4)]
    results: list[str | None] = []

    def work(secret: str) -> None:
        for _ in range(50):
            principal = store.verify(secret)
            results.append(principal.name if principal else None)

    threads = [threading.Thread(target=work, args=(s,)) for s in secrets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(set(results)) == ["k0", "k1", "k2", "k3"] and len(results) == 200


def test_principal_roles_and_collections() -> None:
    reader = Principal("r", "read", frozenset({"a"}), frozenset())
    assert reader.allows("read") and not reader.allows("write") and not reader.allows("admin")
    assert Principal("w", "write", None, None).allows("write")
    assert not Principal("w", "write", None, None).allows("admin")
    assert LOCAL_ADMIN.allows("admin") and LOCAL_ADMIN.may_use("anything") and LOCAL_ADMIN.groups is None
    assert reader.may_use("a") and not reader.may_use("b")


def test_default_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DOMAINRAG_HOME", raising=False)
    assert default_home() == Path(".domainrag-server")
    monkeypatch.setenv("DOMAINRAG_HOME", str(tmp_path))
    assert default_home() == tmp_path


def test_importing_the_server_package_and_keys_needs_no_web_framework() -> None:
    code = ("import sys, domainrag, domainrag.server, domainrag.server.keys, domainrag.server.ratelimit; "
            "print([m for m in ('fastapi', 'starlette', 'uvicorn') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# -- RateLimiter -----------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_may_burst_a_minutes_worth_then_waits_for_the_refill() -> None:
    clock = Clock()
    limiter = RateLimiter(60, clock=clock)
    assert [limiter.check("a") for _ in range(60)] == [None] * 60
    assert limiter.check("a") == pytest.approx(1.0)
    clock.now += 0.25
    assert limiter.check("a") == pytest.approx(0.75)
    clock.now += 0.75
    assert limiter.check("a") is None
    assert limiter.check("a") == pytest.approx(1.0)


def test_keys_have_their_own_buckets() -> None:
    limiter = RateLimiter(2, clock=Clock())
    assert limiter.check("a") is None and limiter.check("a") is None
    assert limiter.check("a") == pytest.approx(30.0)
    assert limiter.check("b") is None


def test_a_refused_request_is_not_counted() -> None:
    clock = Clock()
    limiter = RateLimiter(60, burst=1, clock=clock)
    assert limiter.check("a") is None
    for _ in range(100):
        assert limiter.check("a") is not None
    clock.now += 1.0
    assert limiter.check("a") is None


def test_an_idle_key_refills_only_up_to_its_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(600, burst=5, clock=clock)
    limiter.check("a")
    clock.now += 3600
    assert [limiter.check("a") for _ in range(6)][-1] is not None


def test_zero_means_no_limit_and_negative_is_refused() -> None:
    limiter = RateLimiter(0, clock=Clock())
    assert all(limiter.check("a") is None for _ in range(1000))
    with pytest.raises(ConfigError, match="rate_limit_per_minute=-1"):
        RateLimiter(-1)
    with pytest.raises(ConfigError, match="burst of 0"):
        RateLimiter(10, burst=0)


def test_threads_share_one_allowance() -> None:
    limiter = RateLimiter(100, clock=Clock())
    allowed: list[bool] = []

    def work() -> None:
        for _ in range(50):
            allowed.append(limiter.check("shared") is None)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert allowed.count(True) == 100 and len(allowed) == 400


def test_full_buckets_are_forgotten_so_memory_stays_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter(60, clock=clock, max_buckets=100)
    for i in range(100):
        limiter.check(f"k{i}")
    assert len(limiter) == 100
    clock.now += 60  # every bucket is full again
    limiter.check("new")
    assert len(limiter) == 1
    assert limiter.check("k0") is None


# -- domainrag keys ----------------------------------------------------------------------------------
def test_keys_cli_create_list_revoke(tmp_path: Path) -> None:
    runner = CliRunner()
    home = tmp_path / "home"
    created = runner.invoke(app, ["keys", "create", "--name", "alice", "--collections", "docs,hr",
                                  "--role", "write", "--groups", "hr,legal", "--home", str(home)])
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert secret.startswith("dr_") and "only time the secret is shown" in created.stderr
    with KeyStore(home / "keys.sqlite3") as keys:
        assert keys.verify(secret) == Principal("alice", "write", frozenset({"docs", "hr"}), frozenset({"hr", "legal"}))

    listed = runner.invoke(app, ["keys", "list", "--home", str(home)])
    assert listed.exit_code == 0 and "alice" in listed.stdout and "hr,legal" in listed.stdout
    assert secret not in listed.output and secret[:12] not in listed.output
    as_json = json.loads(runner.invoke(app, ["keys", "list", "--home", str(home), "--json"]).stdout)
    assert as_json[0]["name"] == "alice" and as_json[0]["last_used"] is not None
    assert "secret" not in json.dumps(as_json)

    revoked = runner.invoke(app, ["keys", "revoke", "alice", "--home", str(home)])
    assert revoked.exit_code == 0 and "Revoked" in revoked.stdout
    again = runner.invoke(app, ["keys", "revoke", "alice", "--home", str(home)])
    assert again.exit_code == 1 and "No API key is named 'alice'" in again.stderr


def test_keys_cli_groups_and_collections_star_and_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOMAINRAG_HOME", str(tmp_path / "env-home"))
    runner = CliRunner()
    everything = runner.invoke(app, ["keys", "create", "--name", "all", "--collections", "*", "--groups", "*"])
    public = runner.invoke(app, ["keys", "create", "--name", "pub", "--collections", "docs"])
    admin = runner.invoke(app, ["keys", "create", "--name", "root", "--role", "admin"])
    assert everything.exit_code == public.exit_code == admin.exit_code == 0
    with KeyStore(tmp_path / "env-home" / "keys.sqlite3") as keys:
        assert keys.verify(everything.stdout.strip()) == Principal("all", "read", None, None)
        assert keys.verify(public.stdout.strip()) == Principal("pub", "read", frozenset({"docs"}), frozenset())
        assert keys.verify(admin.stdout.strip()) == Principal("root", "admin", None, None)


def test_keys_cli_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    home = ["--home", str(tmp_path)]
    no_collections = runner.invoke(app, ["keys", "create", "--name", "a", *home])
    assert no_collections.exit_code == 2 and "--collections" in no_collections.output
    runner.invoke(app, ["keys", "create", "--name", "a", "--collections", "c", *home])
    duplicate = runner.invoke(app, ["keys", "create", "--name", "a", "--collections", "c", *home])
    assert duplicate.exit_code == 1 and "named 'a' already exists" in duplicate.stderr
    bad_group = runner.invoke(app, ["keys", "create", "--name", "b", "--collections", "c", "--groups", "x" * 70, *home])
    assert bad_group.exit_code == 1 and "the limit is 64" in bad_group.stderr


def test_keys_list_on_a_fresh_home_creates_nothing(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["keys", "list", "--home", str(tmp_path / "none")])
    assert result.exit_code == 0 and "No API keys" in result.stdout
    assert not (tmp_path / "none").exists()
