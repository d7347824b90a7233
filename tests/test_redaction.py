"""Passwords are masked where they stand in a URL, and nothing else on the line is touched."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from noxlib.core.redaction import redact, redact_url
from noxlib.services import ServiceUrls


def test_the_postgres_default_password_leaves_the_line_readable():
    """Issue 13 item 3: `***   ***ql://***:***@…/***` is what substring masking of `postgres` printed."""
    urls = ServiceUrls("127.0.0.1", 32788, "postgres", "postgres", "redis://127.0.0.1:1/0", "http://x:2", "a", "b")
    line = f"postgres   {urls.database_url()}"
    assert redact(line, urls.secrets()) == "postgres   postgresql://postgres:***@127.0.0.1:32788/postgres"


def test_a_redis_password_is_masked_though_nobody_registered_it():
    """Issue 12 item 9: `nox -s infra` printed `redis://:PASS@…` in clear."""
    assert redact("redis      redis://:s3cr3t-Pass@127.0.0.1:6390/0") == "redis      redis://:***@127.0.0.1:6390/0"
    assert redact_url("rediss://default:pw@cache.example:6380/1?ssl=true") == (
        "rediss://default:***@cache.example:6380/1?ssl=true"
    )


def test_urls_without_password_and_plain_text_are_unchanged():
    for text in ("http://127.0.0.1:9000", "postgresql://alice@db/app", "backend    http://127.0.0.1:8000  (API docs)"):
        assert redact(text) == text


def test_several_urls_on_one_line_each_keep_their_shape():
    line = "a=postgresql+psycopg://u:p%40ss@h:5/db, b=redis://:x@h:6/0 'http://k:v@h/'"
    assert redact(line) == "a=postgresql+psycopg://u:***@h:5/db, b=redis://:***@h:6/0 'http://k:***@h/'"


def test_a_long_known_secret_is_masked_elsewhere_but_not_inside_words():
    secret = "Zq8sTq1wXk4vRm2n"
    assert redact(f"S3_SECRET_KEY={secret} done", [secret]) == "S3_SECRET_KEY=*** done"
    assert redact(f"prefix{secret}suffix", [secret]) == f"prefix{secret}suffix"
    # Short secrets are ordinary words: never replaced outside a URL's password.
    assert redact("s3 access key minioadmin", ["minioadmin"]) == "s3 access key minioadmin"


passwords = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(passwords, st.sampled_from(["postgres", "app", "u-1"]), st.sampled_from(["postgresql", "redis", "http"]))
def test_any_password_in_any_url_never_reaches_the_output(password, user, scheme):
    urls = ServiceUrls("127.0.0.1", 5432, user, password, "redis://h:1/0", "http://h:2", "a", "b")
    url = urls.database_url("db", driver=scheme)
    masked = redact(f"label {url} tail", urls.secrets())
    assert masked == f"label {scheme}://{user}:***@127.0.0.1:5432/db tail"
