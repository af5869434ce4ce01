"""What the CLI reads: inputs inline, from a file or stdin; the API URL from the same variables as the stack."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from swoosh.worker.propose import default_api_url, read_inputs


def test_inputs_inline_file_and_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert read_inputs('{"reason": "x"}') == {"reason": "x"}
    (tmp_path / "votes.json").write_text('{"votes": []}')
    assert read_inputs(f"@{tmp_path / 'votes.json'}") == {"votes": []}
    monkeypatch.setattr("sys.stdin", io.StringIO('{"a": 1}'))
    assert read_inputs("-") == {"a": 1}


@pytest.mark.parametrize(
    ("text", "said"), [("[1]", "must hold a JSON object"), ("{nope", "is not JSON"), ("@/no/such", "cannot read")]
)
def test_inputs_refused_with_a_reason(text: str, said: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert read_inputs(text, "swoosh sign") is None
    err = capsys.readouterr().err
    assert err.startswith("swoosh sign: ") and said in err


def test_api_url_follows_the_stacks_variables() -> None:
    assert default_api_url({}) == "http://127.0.0.1:8080"
    assert default_api_url({"SWOOSH_API_PORT": "18080"}) == "http://127.0.0.1:18080"
    assert default_api_url({"SWOOSH_API_HOST": "0.0.0.0", "SWOOSH_API_PORT": "9"}) == "http://127.0.0.1:9"
    assert default_api_url({"SWOOSH_API_PUBLIC_URL": "https://swoosh.example/"}) == "https://swoosh.example"
    assert default_api_url({"SWOOSH_API_URL": "http://a:1", "SWOOSH_API_PORT": "2"}) == "http://a:1"
