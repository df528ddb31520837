"""The state file's write-ahead log is folded back after a Web Connector call has been answered, never inside
one (issue #15: with a large history a checkpoint inside a commit cost a call 100 ms and more)."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from mlconnector.soap.server import make_wsgi_app, running_server
from mlconnector.soap.session import QbwcService
from mlconnector.store import Store

from .qbwc_support import ListWork, settings

SERVER_VERSION = (b'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/'
                  b'envelope/"><soap:Body><serverVersion xmlns="http://developer.intuit.com/"/></soap:Body>'
                  b'</soap:Envelope>')


def _grow_wal(store: Store, path: Path) -> int:
    with store.atomic():
        for n in range(3000):
            store.set_setting(f"filler.{n}", "x" * 2000)
    return Path(str(path) + "-wal").stat().st_size


def test_a_deferred_store_leaves_commits_alone_and_checkpoints_when_due(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = Store.open(path)
    try:
        store.defer_checkpoints()
        assert store.checkpoint_if_due() is False  # a small log is left alone
        before = _grow_wal(store, path)
        assert before > Store.CHECKPOINT_PAGES * 4096  # no commit folded it back
        assert store.checkpoint_if_due() is True
        busy, log, done = store.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert busy == 0 and log == done  # everything was already copied into the state file
    finally:
        store.close()


def test_the_server_folds_the_log_back_after_the_answer(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = Store.open(path)
    store.defer_checkpoints()
    checked: list[bool] = []
    real = store.checkpoint_if_due

    def spy() -> bool:
        checked.append(real())
        return checked[-1]

    store.checkpoint_if_due = spy  # type: ignore[method-assign]
    try:
        _grow_wal(store, path)
        with running_server(make_wsgi_app(lambda: QbwcService(store, ListWork(), settings()))) as server:
            answer = requests.post(server.soap_url, data=SERVER_VERSION, timeout=10,
                                   headers={"Content-Type": "text/xml; charset=utf-8",
                                            "SOAPAction": '"http://developer.intuit.com/serverVersion"'})
            assert answer.status_code == 200
            for _ in range(100):  # close() runs once the server has sent the answer
                if checked:
                    break
                time.sleep(0.02)
        assert checked == [True]
    finally:
        store.close()
