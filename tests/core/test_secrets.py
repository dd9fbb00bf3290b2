"""Connection secrets sealed at rest: what is opened is what was sealed, each caller gets its own copy, and a
token sealed under a key this server does not have is refused however often it is asked."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from ledgerbridge.secrets import OPENED_CACHE_SIZE, SecretBox


def test_a_sealed_secret_opens_to_what_was_sealed_every_time_as_a_fresh_copy() -> None:
    box = SecretBox([Fernet.generate_key()])
    token = box.seal({"access_token": "a1", "scopes": ["contacts"]})

    first = box.open(token)
    first["access_token"] = "changed by a careless caller"
    first["scopes"].append("everything")
    second = box.open(token)

    assert second == {"access_token": "a1", "scopes": ["contacts"]}


def test_a_secret_sealed_under_another_key_is_refused_each_time() -> None:
    token = SecretBox([Fernet.generate_key()]).seal({"token": "t"})
    box = SecretBox([Fernet.generate_key()])
    for _ in range(2):
        with pytest.raises(ValueError, match="could not be decrypted"):
            box.open(token)


def test_a_rotated_key_list_still_opens_secrets_sealed_under_the_old_key() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    token = SecretBox([old]).seal({"token": "t"})
    assert SecretBox([new, old]).open(token) == {"token": "t"}


def test_many_distinct_secrets_all_open_correctly_past_the_remembered_few() -> None:
    box = SecretBox([Fernet.generate_key()])
    tokens = [box.seal({"n": n}) for n in range(OPENED_CACHE_SIZE + 50)]
    assert [box.open(t)["n"] for t in tokens] == list(range(OPENED_CACHE_SIZE + 50))
    assert [box.open(t)["n"] for t in reversed(tokens)] == list(reversed(range(OPENED_CACHE_SIZE + 50)))
