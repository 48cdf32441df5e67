"""run(streamer=...): the phase's streams are checked before anything is written or run."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import containerrunner
from containerrunner.errors import ConfigurationError


def test_an_unknown_streamer_is_named() -> None:
    with pytest.raises(ConfigurationError, match=r"streamer must be one of.*'send'"):
        containerrunner.run(streamer="send", private_data_dir="/nonexistent")


@pytest.mark.parametrize(
    ("streamer", "missing"),
    [("transmit", "_output"), ("worker", "_input"), ("process", "_input")],
)
def test_a_missing_stream_is_named(streamer: str, missing: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=f"needs {missing}="):
        containerrunner.run(streamer=streamer, private_data_dir=str(tmp_path))


def test_a_text_stream_is_not_a_binary_one_for_transmit(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="needs _output="):
        containerrunner.run(streamer="transmit", _output="out.json", private_data_dir=str(tmp_path))


def test_a_worker_given_job_options_says_they_belong_to_transmit() -> None:
    with pytest.raises(ConfigurationError, match="takes the job from _input; got playbook"):
        containerrunner.run(
            streamer="worker", _input=io.BytesIO(), _output=io.BytesIO(), playbook="site.yml"
        )


def test_process_refuses_an_unknown_option_like_run() -> None:
    with pytest.raises(ConfigurationError, match="unexpected keyword argument 'playbok'"):
        containerrunner.run(streamer="process", _input=io.BytesIO(), playbok="site.yml")


def test_transmit_writes_nothing_for_bad_options(tmp_path: Path) -> None:
    out = io.BytesIO()
    with pytest.raises(ConfigurationError):
        containerrunner.run(
            streamer="transmit", _output=out, private_data_dir=str(tmp_path), playbok="x.yml"
        )
    assert out.getvalue() == b""


def test_run_async_names_where_streamer_works(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="streamer= works with run"):
        containerrunner.run_async(streamer="transmit", private_data_dir=str(tmp_path))
