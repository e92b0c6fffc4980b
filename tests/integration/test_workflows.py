"""Workflows on the real RabbitMQ + Redis and real workers: chains, groups of 50, a chord of
100, a failing step that is named, dead-lettered and resumed by its replay, a worker SIGKILLed
in the middle of a chord, a plain Celery worker, and the generated stubs (run and type-checked).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from celery import Celery
from kombu import Connection

import hexa
import hexa._app
from hexa import (
    PublishError,
    ResultNotStoredError,
    WorkflowError,
    WorkflowResult,
    group,
    remote_task,
)
from hexa._dead_letters import DeadLetter, DeadLetterStore
from tests.chaos.services import free_port
from tests.conftest import StartWorker
from tests.integration.projects.workflow_probe.tasks import (
    BROKEN_ENV,
    add,
    count,
    describe,
    double,
    fragile,
    label,
    note,
    slow_square,
    total,
)
from tests.support.services import unique
from tests.support.worker import REPO, WorkerProcess

pytestmark = pytest.mark.integration

PROBE = Path(__file__).parent / "projects" / "workflow_probe"


@remote_task("workflow_probe.shout")
def shout(text: str) -> str:
    """The hand-written, seed-format task of workflow_probe, known here by name only."""
    raise NotImplementedError


def make_project(root: Path) -> Path:
    """A project whose `modules` package holds workflow_probe only."""
    (root / "modules").mkdir(parents=True)
    (root / "modules" / "__init__.py").write_text("")
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(PROBE, root / "modules" / "workflow_probe", ignore=ignore)
    return root


def delete_queues(url: str, name: str) -> None:
    with Connection(url) as conn:
        for suffix in ("", ".dead"):
            channel = conn.channel()
            try:
                channel.queue_delete(name + suffix)
            except Exception:  # never declared
                pass
            finally:
                channel.close()


@contextmanager
def publishing(env: dict[str, str]) -> Iterator[Celery]:
    """`.send()` publishes with an app for `env` inside the block; the previous app after."""
    previous = hexa._app._current
    app = hexa.build_app(hexa.Settings.from_env(environ=env))
    hexa.use_app(app)
    try:
        yield app
    finally:
        hexa.use_app(previous)
        app.close()


def run(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def wait_dead(settings: hexa.Settings, task_id: str, timeout: float = 20.0) -> DeadLetter:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [letter for letter in DeadLetterStore(settings).letters() if letter.id == task_id]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no dead letter for {task_id} after {timeout}s")


@pytest.fixture(scope="module")
def probe_env(
    rabbitmq_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """One queue for this module's shared worker; `fragile` fails while the marker exists."""
    queue = unique("hexa-wf")
    marker = tmp_path_factory.mktemp("marker") / "broken"
    yield {
        "RABBITMQ_URL": rabbitmq_url,
        "REDIS_URL": redis_url,
        "HEXA_DEFAULT_QUEUE": queue,
        BROKEN_ENV: str(marker),
    }
    delete_queues(rabbitmq_url, queue)


@pytest.fixture(scope="module")
def probe_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("project"))


@pytest.fixture(scope="module")
def worker(probe_project: Path, probe_env: dict[str, str]) -> Iterator[WorkerProcess]:
    """One real `hexa worker` for the module's tests (starting one per test costs seconds)."""
    hostname = f"--hostname={unique('wf')}@%h"
    process = WorkerProcess(probe_project, probe_env, ["--concurrency", "4", hostname])
    try:
        yield process.wait_ready()
    finally:
        process.stop()


@pytest.fixture(scope="module")
def client(worker: WorkerProcess, probe_env: dict[str, str]) -> Iterator[Celery]:
    with publishing(probe_env) as app:
        yield app


@pytest.fixture
def broken(probe_env: dict[str, str]) -> Iterator[Path]:
    """`fragile` fails (after its retry) until the test removes this file."""
    marker = Path(probe_env[BROKEN_ENV])
    marker.touch()
    yield marker
    marker.unlink(missing_ok=True)


def succeeded_ids(worker: WorkerProcess) -> list[str]:
    return [event["task_id"] for event in worker.events("task.succeeded")]


class TestChains:
    def test_three_steps_each_receive_the_previous_result(
        self, worker: WorkerProcess, client: Celery
    ) -> None:
        workflow = add.s(1, 2).then(double).then(label, prefix="v=")
        result = workflow.send()
        assert result.get(timeout=20) == "v=6"
        assert isinstance(result, WorkflowResult)
        steps = [(step.task, step.where) for step in result.steps]
        assert steps == [
            ("workflow_probe.add", "step 1 of 3"),
            ("workflow_probe.double", "step 2 of 3"),
            ("workflow_probe.label", "step 3 of 3"),
        ]
        assert result.id == result.steps[-1].id
        worker.wait_for("task.succeeded", count=3)
        assert {step.id for step in result.steps} <= set(succeeded_ids(worker))

    def test_a_hand_written_seed_task_is_a_step_like_any_other(
        self, worker: WorkerProcess, client: Celery
    ) -> None:
        assert label.s(7).then(shout).send().get(timeout=20) == "N=7!"
        assert shout.s("a").then(shout).send().get(timeout=20) == "A!!"

    @pytest.mark.anyio
    async def test_send_async_and_await(self, worker: WorkerProcess, client: Celery) -> None:
        result = await add.s(2, 3).then(double).send_async()
        assert await result == 10

    def test_ending_in_a_none_task_says_at_once_there_is_nothing_to_wait_for(
        self, worker: WorkerProcess, client: Celery
    ) -> None:
        result = add.s(1, 2).then(note).send()
        with pytest.raises(ResultNotStoredError, match=r"ends in workflow_probe\.note"):
            result.get()  # no timeout: waiting would hang the test
        worker.wait_for("task.succeeded", count=1)
        ran = succeeded_ids(worker)
        deadline = time.monotonic() + 20
        while result.id not in ran and time.monotonic() < deadline:
            time.sleep(0.1)
            ran = succeeded_ids(worker)
        assert result.id in ran  # the step ran; only its result is not stored


class TestGroupsAndChords:
    def test_a_group_of_50_gives_the_list_in_member_order(
        self, worker: WorkerProcess, probe_env: dict[str, str]
    ) -> None:
        with publishing(probe_env) as fresh:
            result = group(*(add.s(i, i) for i in range(50))).send()
            # Celery's canvas subscribes to each result at publish; hexa when someone waits.
            assert fresh.backend.result_consumer._pubsub is None
            assert result.get(timeout=60) == [2 * i for i in range(50)]
            assert (result.status, result.ready()) == ("SUCCESS", True)

    def test_a_chord_sums_100_results(self, worker: WorkerProcess, client: Celery) -> None:
        result = group(*(add.s(i, 0) for i in range(100))).then(total).send()
        assert result.get(timeout=60) == sum(range(100))

    def test_the_callback_receives_a_list_as_its_type_says(
        self, worker: WorkerProcess, client: Celery
    ) -> None:
        workflow = group(add.s(1, 1), label.s(3))  # Workflow[list[int | str]]
        assert workflow.then(describe).send().get(timeout=20) == "list:[2, 'n=3']"

    def test_members_that_store_no_result_still_complete_their_chord(
        self, worker: WorkerProcess, client: Celery
    ) -> None:
        workflow = group(note.s(1), note.s(2), note.s(3))  # Workflow[list[None]], -> None tasks
        assert workflow.then(count).send().get(timeout=20) == 3

    def test_chords_nest_in_groups_and_chains_go_on_after_them(
        self, worker: WorkerProcess, client: Celery
    ) -> None:
        inner = group(add.s(1, 1), add.s(2, 2)).then(total)
        result = group(inner, add.s(5, 5)).then(total).then(double).send()
        assert result.get(timeout=30) == ((2 + 4) + 10) * 2


class TestPublishing:
    def test_without_a_broker_send_raises_publish_error_at_the_deadline(
        self, redis_url: str
    ) -> None:
        env = {
            "RABBITMQ_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}//",  # nobody there
            "REDIS_URL": redis_url,
            "HEXA_PUBLISH_TIMEOUT": "1",
        }
        workflows = [
            add.s(1, 2).then(double),
            group(add.s(1, 2), add.s(3, 4)),
            group(add.s(1, 2), add.s(3, 4)).then(total),
        ]
        with publishing(env):
            for workflow in workflows:
                with pytest.raises(PublishError, match=r"workflow_probe\.add: the broker at"):
                    workflow.send()


class TestFailures:
    def test_a_failing_middle_step_is_named_dead_lettered_and_replay_resumes(
        self,
        client: Celery,
        probe_project: Path,
        probe_env: dict[str, str],
        broken: Path,
    ) -> None:
        result = add.s(1, 2).then(fragile).then(double).send()
        with pytest.raises(WorkflowError) as caught:
            result.get(timeout=30)
        failed = caught.value
        assert failed.step == "workflow_probe.fragile"
        assert "workflow_probe.fragile (step 2 of 3) failed" in str(failed)
        assert isinstance(failed.__cause__, ValueError)
        letter = wait_dead(hexa.Settings.from_env(environ=probe_env), failed.task_id)
        assert letter.reason.startswith("failed after 2 attempt(s): ValueError")

        broken.unlink()  # the fix is deployed
        replayed = run(probe_project, probe_env, "-m", "hexa", "dead", "replay", letter.id)
        assert replayed.returncode == 0, replayed.stderr
        assert result.get(timeout=30) == (3 + 1000) * 2  # the rest of the chain ran

    def test_replay_of_a_failed_chord_member_completes_the_chord(
        self,
        client: Celery,
        probe_project: Path,
        probe_env: dict[str, str],
        broken: Path,
    ) -> None:
        workflow = group(add.s(1, 1), fragile.s(5), add.s(2, 2)).then(total).then(double)
        result = workflow.send()
        with pytest.raises(WorkflowError, match=r"fragile \(step 1 of 3, member 2 of 3\)"):
            result.get(timeout=30)
        assert result.status == "FAILURE"
        assert isinstance(result, WorkflowResult)
        member = result.steps[1]
        wait_dead(hexa.Settings.from_env(environ=probe_env), member.id)

        broken.unlink()
        replayed = run(probe_project, probe_env, "-m", "hexa", "dead", "replay", member.id)
        assert replayed.returncode == 0, replayed.stderr
        assert result.get(timeout=30) == (2 + 1005 + 4) * 2


STUBS_CLIENT = """\
import importlib.util, json
import hexa
from wf_stubs import workflow_probe as wp

chain = wp.add.s(1, 2).then(wp.double).then(wp.label, prefix="v=")
chord = hexa.group(*(wp.add.s(i, i) for i in range(10))).then(wp.total)
mixed = wp.label.s(4).then(wp.shout)
print(json.dumps({
    "modules_importable": importlib.util.find_spec("modules") is not None,
    "chain": chain.send().get(timeout=20),
    "chord": chord.send().get(timeout=20),
    "mixed": mixed.send().get(timeout=20),
}))
"""

WRONG_LINK = """\
from wf_stubs import workflow_probe as wp

wp.add.s(1, 2).then(wp.shout)
"""


class TestGeneratedStubs:
    def test_a_process_without_the_modules_composes_sends_and_type_checks_workflows(
        self, worker: WorkerProcess, probe_project: Path, probe_env: dict[str, str], tmp_path: Path
    ) -> None:
        wrote = run(
            probe_project, probe_env, "-m", "hexa", "stubs", "--out", str(tmp_path / "wf_stubs.py")
        )
        assert wrote.returncode == 0, wrote.stderr
        (tmp_path / "client.py").write_text(STUBS_CLIENT)
        (tmp_path / "wrong.py").write_text(WRONG_LINK)

        sent = run(tmp_path, probe_env, "client.py")
        assert sent.returncode == 0, sent.stderr
        assert json.loads(sent.stdout) == {
            "modules_importable": False,
            "chain": "v=6",
            "chord": 90,
            "mixed": "N=4!",
        }

        # From the repository with `make lint`'s flags, so mypy's cache there is reused.
        files = [str(tmp_path / "client.py"), str(tmp_path / "wrong.py")]
        flags = ["--strict", "--warn-unused-ignores"]
        checked = run(REPO, {"MYPYPATH": str(tmp_path)}, "-m", "mypy", *flags, *files)
        assert checked.returncode == 1, checked.stdout
        # mypy's cache may replay an error under the path the same file had in an earlier run.
        errors = [
            (Path(where).name, message)
            for where, _, message in (
                line.partition(": error: ") for line in checked.stdout.splitlines()
            )
            if message
        ]
        assert errors == [
            (
                "wrong.py:3",
                'Argument 1 to "then" of "Workflow" has incompatible type '
                '"RemoteTask[[str], str]"; expected "BaseTask[[int], str]"  [arg-type]',
            )
        ]


PLAIN_APP = """\
import os
from celery import Celery

app = Celery("plain", broker=os.environ["RABBITMQ_URL"], backend=os.environ["REDIS_URL"])
app.conf.task_default_queue = os.environ["HEXA_DEFAULT_QUEUE"]


@app.task(name="workflow_probe.add")
def add(x, y):
    return x + y


@app.task(name="workflow_probe.total")
def total(values):
    return sum(values)
"""


@contextmanager
def plain_celery_worker(cwd: Path, env: dict[str, str]) -> Iterator[list[str]]:
    """`celery -A plain_app worker`: Celery alone, no hexa in the worker. Yields its output."""
    command = [sys.executable, "-m", "celery", "-A", "plain_app", "worker", "--pool", "solo"]
    command += ["--without-mingle", "--without-gossip", "-l", "INFO", "-n", f"{unique('plain')}@%h"]
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not any("ready." in line for line in lines):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the plain Celery worker did not start:\n" + "".join(lines))
            time.sleep(0.1)
        yield lines
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
        reader.join(5)
        if proc.stdout is not None:
            proc.stdout.close()


class TestPlainCelery:
    def test_a_plain_celery_worker_runs_a_hexa_chord_and_chain(
        self, real_env: dict[str, str], tmp_path: Path
    ) -> None:
        (tmp_path / "plain_app.py").write_text(PLAIN_APP)
        with plain_celery_worker(tmp_path, real_env), publishing(real_env):
            workflow = group(add.s(1, 2), add.s(3, 4)).then(total).then(add, 10)
            assert workflow.send().get(timeout=30) == 20


def running(worker: WorkerProcess) -> set[str]:
    """Tasks that logged `probe.started` on `worker` but did not succeed there."""
    started = {event["task_id"] for event in worker.events("probe.started")}
    return started - set(succeeded_ids(worker))


def wait_running(worker: WorkerProcess, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not running(worker):
        assert time.monotonic() < deadline, f"nothing running on the worker:\n{worker.output()}"
        time.sleep(0.02)


class TestWorkerKilledMidChord:
    def test_the_chord_completes_on_the_other_worker(
        self, start_worker: StartWorker, real_env: dict[str, str], tmp_path: Path
    ) -> None:
        root = make_project(tmp_path / "project")
        first = start_worker(root, real_env, ["--concurrency", "2"], ready=False)
        second = start_worker(root, real_env, ["--concurrency", "2"], ready=False)
        first.wait_ready()
        second.wait_ready()
        count = 24
        with publishing(real_env):
            result = group(*(slow_square.s(i, 0.5) for i in range(count))).then(total).send()
            first.wait_for("task.succeeded", count=2)
            wait_running(first)  # a header task started there (and still has ~0.5 s to go)
            assert not result.ready()
            first.kill()  # SIGKILL to the main process and its pool children at once
            first.stop()  # collects the rest of its output
            assert result.get(timeout=60) == sum(i * i for i in range(count))
        in_flight = running(first)
        assert in_flight, "the kill interrupted no header task"
        assert in_flight <= set(succeeded_ids(second))  # redelivered, run again, counted once
