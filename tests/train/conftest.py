"""Training tests share one HF copy of the embedded model: dequantized once per session, linked into each test's cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from twin import embedded


@pytest.fixture(scope="session")
def embedded_hf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded SmolLM2 as an HF checkpoint, built by trainer.bases once for the whole session."""
    from trainer.bases import embedded_hf_dir

    home = tmp_path_factory.mktemp("bases-home")
    saved = os.environ.get("TWIN_HOME")
    os.environ["TWIN_HOME"] = str(home)
    try:
        return embedded_hf_dir()
    finally:
        if saved is None:
            del os.environ["TWIN_HOME"]
        else:
            os.environ["TWIN_HOME"] = saved


@pytest.fixture
def base_in_cache(twin_home: Path, embedded_hf: Path) -> Path:
    """Link the session's embedded copy into this test's cache dir, where resolve_base("default") looks."""
    link = twin_home / "cache" / "bases" / embedded.MODEL_ID
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(embedded_hf, target_is_directory=True)
    return link
