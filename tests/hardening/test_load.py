"""Concurrency: 4 clients ask a real `rag serve` over HTTP while an article is uploaded and deleted.

The CI-sized run of ``bench/load.py`` (the benchmark runs 16 clients x 200 requests on the real model):
no failed request, and every answer equal to the one the same question gets alone, from the index
before or after the upload, never from half of one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import load


@pytest.mark.timeout(300)
def test_four_clients_get_exactly_the_solo_answers_while_the_index_changes(tmp_path: Path) -> None:
    result = load.run(clients=4, requests=50, model="test:words", workdir=tmp_path)
    print(load.report(result))  # the figures, with -s

    assert result.requests == 200
    assert result.errors == 0, result.samples
    assert result.mismatches == 0, result.samples
    assert (result.upload_status, result.delete_status) == (201, 200)
    assert result.saw_article > 0  # some requests were answered from the index with the article in it
    assert not result.key_in_log
    assert not (tmp_path / "corpus" / load.ARTICLE_NAME).exists()
