"""The small parts of metrics and tracing: label bounding, settings, files, trace glue."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from opentelemetry import propagate, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from hexa import _hooks, _observe
from hexa._app import build_app
from hexa._exceptions import ConfigurationError
from hexa._logging import add_trace_ids
from hexa._metrics import OTHER, LiveCollector, TaskLabels, forget_dead_processes
from hexa._options import SendOptions
from hexa._outbox._message import stored_row
from hexa._publisher import publisher
from hexa._settings import Settings
from hexa.metrics import metrics_port
from hexa.tracing import _GETTER, _inject, inject_headers

TRACE_ID, SPAN_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7


def a_span() -> NonRecordingSpan:
    return NonRecordingSpan(
        SpanContext(TRACE_ID, SPAN_ID, is_remote=False, trace_flags=TraceFlags(1))
    )


def dead_pid() -> int:
    """The id of a process that has exited (and was reaped)."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(child.stdout)


class TestTaskLabels:
    def test_known_names_are_themselves_and_others_fold_into_other_past_the_limit(self) -> None:
        labels = TaskLabels(limit=2)
        known = {"billing.charge"}
        seen = [labels(n, known) for n in ["billing.charge", "a.one", "a.two", "a.three"]]
        assert seen == ["billing.charge", "a.one", "a.two", OTHER]
        assert labels("a.one") == "a.one"  # a name once admitted stays itself

    def test_a_worker_labels_only_its_registered_tasks(self) -> None:
        labels = TaskLabels()
        assert [labels(n, {"a.b"}) for n in ["a.b", "x.y", "x.z"]] == ["a.b", OTHER, OTHER]


class TestMetricsPort:
    def test_the_flag_wins_over_the_environment(self) -> None:
        assert metrics_port(9100, {"HEXA_METRICS_PORT": "9200"}) == 9100

    def test_the_environment_gives_the_port_and_empty_means_none(self) -> None:
        assert metrics_port(None, {"HEXA_METRICS_PORT": " 9200 "}) == 9200
        assert metrics_port(None, {"HEXA_METRICS_PORT": ""}) is None
        assert metrics_port(None, {}) is None

    @pytest.mark.parametrize("text", ["abc", "-1", "70000", "9.5"])
    def test_a_bad_port_in_the_environment_is_an_error_naming_the_variable(self, text: str) -> None:
        with pytest.raises(ConfigurationError, match=r"HEXA_METRICS_PORT=.*give a port number"):
            metrics_port(None, {"HEXA_METRICS_PORT": text})


class TestMultiprocessFiles:
    def test_dead_processes_lose_their_in_flight_gauges_and_keep_their_counts(
        self, tmp_path: Path
    ) -> None:
        dead, alive = dead_pid(), os.getpid()
        for name in (f"gauge_livesum_{dead}.db", f"gauge_livesum_{alive}.db", f"counter_{dead}.db"):
            (tmp_path / name).write_bytes(b"")
        assert forget_dead_processes(tmp_path) == [dead]
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            f"counter_{dead}.db",
            f"gauge_livesum_{alive}.db",
        ]

    def test_a_file_not_yet_sized_by_its_process_does_not_fail_the_scrape(
        self, tmp_path: Path
    ) -> None:
        (tmp_path / f"histogram_{os.getpid()}.db").write_bytes(b"")
        assert list(LiveCollector(tmp_path).collect()) == []


class TestTraceGlue:
    def test_log_lines_carry_the_current_spans_ids(self) -> None:
        with trace.use_span(a_span()):
            event = add_trace_ids(None, "info", {"event": "x"})
        assert event == {
            "event": "x",
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "span_id": "00f067aa0ba902b7",
        }

    def test_log_lines_outside_a_span_are_left_alone(self) -> None:
        assert add_trace_ids(None, "info", {"event": "x"}) == {"event": "x"}

    def test_the_trace_context_goes_into_headers_and_back_out_of_a_task_request(self) -> None:
        headers: dict[str, object] = {"id": "task-1"}
        with trace.use_span(a_span()):
            _inject(headers=headers)
        assert headers["traceparent"] == f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-01"
        request = SimpleNamespace(**headers)  # Celery puts message headers on the request
        extracted = trace.get_current_span(propagate.extract(request, getter=_GETTER))
        assert extracted.get_span_context().trace_id == TRACE_ID
        assert extracted.get_span_context().span_id == SPAN_ID

    def test_an_outbox_row_carries_the_senders_trace_context_to_the_worker(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(_hooks, "injectors", [inject_headers])  # tracing on, locally
        monkeypatch.setattr(_observe, "_environment_read", True)
        app = build_app(Settings.from_env(environ={}, cwd=tmp_path))
        with trace.use_span(a_span()):
            row, _ = stored_row(publisher(app), "a.b", [1], {}, SendOptions(), None, True)
        headers = row["message"]["headers"]
        assert headers["traceparent"] == f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-01"
