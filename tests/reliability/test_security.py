"""Hostile files and neighbours: a checkpoint that runs code when unpickled, a second process
writing the same run, symlinks and FIFOs where loopwise writes whole files, the dashboard's
defaults on the real server, and the umask over a whole run folder.

What tests elsewhere already cover is listed in docs/reliability.md ("Security"); these add
what was missing."""

from __future__ import annotations

import http.client
import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from _fuzz_tools import run_cli

from loopwise.checkpoint.distributed import load_checkpoint
from loopwise.checkpoint.errors import CheckpointError
from loopwise.checkpoint.manager import CheckpointManager
from loopwise.checkpoint.named import NamedFiles
from loopwise.checkpoint.store import load_file
from loopwise.checkpoint.weights import load_state_dict_safely
from loopwise.record import Run
from loopwise.record.lock import LOCK_FILE, RunLockedError
from loopwise.utils.atomic import UnsafeTargetError

SRC = str(Path(__file__).resolve().parents[2] / "src")


class Planted:
    """Unpickling this calls ``open(marker, "w")``: the file appears if the pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


def _planted(tmp_path: Path) -> tuple[dict[str, Any], Path]:
    marker = tmp_path / "pwned"
    return {"model": {"w": torch.ones(2)}, "payload": Planted(marker)}, marker


def test_the_planted_pickle_does_run_code_when_loaded_unsafely(tmp_path: Path) -> None:
    """The control: plain ``torch.load(weights_only=False)`` creates the marker file, so the
    loaders below refuse a live payload."""
    state, marker = _planted(tmp_path)
    torch.save(state, tmp_path / "evil.pt")
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert marker.exists()


def _by_store(tmp_path: Path, state: dict[str, Any]) -> Callable[[], Any]:
    torch.save(state, tmp_path / "evil.pt")
    return lambda: load_file(tmp_path / "evil.pt")


def _by_manager(tmp_path: Path, state: dict[str, Any]) -> Callable[[], Any]:
    with CheckpointManager(tmp_path / "ckpt") as manager:  # listed with its true hash
        manager.save(state, step=1)
    return lambda: CheckpointManager(tmp_path / "ckpt").load_latest()


def _by_named(tmp_path: Path, state: dict[str, Any]) -> Callable[[], Any]:
    NamedFiles(tmp_path).save({"last_checkpoint.pth": state}, step=1)  # hashed in the manifest
    return lambda: NamedFiles(tmp_path).load("last_checkpoint.pth")


def _by_weights(tmp_path: Path, state: dict[str, Any]) -> Callable[[], Any]:
    torch.save(state, tmp_path / "w.pth")
    return lambda: load_state_dict_safely(tmp_path / "w.pth", "cpu")


def _by_distributed(tmp_path: Path, state: dict[str, Any]) -> Callable[[], Any]:
    torch.save({**state, "distributed": {"world_size": 1, "batches_done": 0,
                                         "sampler_epoch": None}}, tmp_path / "d.pt")
    return lambda: load_checkpoint(tmp_path / "d.pt")


@pytest.mark.parametrize("make", [_by_store, _by_manager, _by_named, _by_weights,
                                  _by_distributed],
                         ids=["load_file", "CheckpointManager", "NamedFiles",
                              "load_state_dict_safely", "distributed.load_checkpoint"])
def test_no_loader_runs_a_planted_pickle(make: Callable[..., Callable[[], Any]],
                                         tmp_path: Path) -> None:
    state, marker = _planted(tmp_path)
    load = make(tmp_path, state)
    with pytest.raises((CheckpointError, ValueError)) as caught:
        load()
    message = str(caught.value)
    assert "io.open" in message or "more than tensors" in message, message
    assert "allow_pickle=True" in message or "weights_only=True" in message, message
    assert not marker.exists()


def test_distributed_load_checkpoint_takes_pickles_only_when_told(tmp_path: Path) -> None:
    state, marker = _planted(tmp_path)
    load = _by_distributed(tmp_path, state)
    with pytest.raises(CheckpointError, match=r"allow_pickle=True if you trust the file"):
        load()
    with pytest.raises(TypeError, match="allow_pickle must be True or False, got 'yes'"):
        load_checkpoint(tmp_path / "d.pt", allow_pickle="yes")  # type: ignore[arg-type]
    assert not marker.exists()
    with pytest.warns(UserWarning, match="unpickling can run arbitrary code"):
        load_checkpoint(tmp_path / "d.pt", allow_pickle=True)
    assert marker.exists()  # the opt-in does what it says


def _csv(path: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 3))
    lines = ["a,b,c,target"] + [",".join(map(str, [*r, r.sum()])) for r in x]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_loopwise_fit_refuses_to_resume_from_a_planted_checkpoint(tmp_path: Path) -> None:
    data = _csv(tmp_path / "d.csv")
    argv = ["fit", str(data), "--epochs", "2", "--hidden-size", "4", "--num-layers", "1",
            "--root", str(tmp_path / "runs")]
    code, _, err = run_cli(argv)
    assert code == 0, err
    run = tmp_path / "runs" / "d"
    state, marker = _planted(tmp_path)
    with CheckpointManager(run / "checkpoints") as manager:  # as if the file were swapped
        manager.save(state, step=1)
    (run / "d_results.json").unlink()  # unfinished: the same command resumes it
    code, _out, err = run_cli(argv)
    assert code == 2 and "Traceback" not in err, err
    assert err.startswith("loopwise fit: error: ") and "holds a Python object (io.open)" in err
    assert not marker.exists()
    assert json.loads((run / "run.json").read_text())["status"] == "failed"


_HOLDER = textwrap.dedent("""
    import sys
    from loopwise.record import Run
    run = Run.reopen(sys.argv[1])
    run.log_scalars({"held": 1.0}, step=1)
    print("ready", flush=True)
    sys.stdin.readline()
    run.close()
""")

_RACER = textwrap.dedent("""
    import os, sys, time
    from loopwise.record import Run
    from loopwise.record.lock import RunLockedError
    while not os.path.exists(sys.argv[2]):
        time.sleep(0.001)
    try:
        run = Run.reopen(sys.argv[1])
    except RunLockedError as exc:
        print("refused", exc, flush=True)
        sys.exit(0)
    print("writer", flush=True)
    run.log_scalars({"racer": float(os.getpid())}, step=1)
    sys.stdin.readline()
    run.close()
""")


def _child(code: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def test_a_run_held_by_another_process_is_refused_naming_it(tmp_path: Path) -> None:
    with Run.create(tmp_path, "exp") as run:
        run.log_scalars({"loss": 1.0}, step=1)
    holder = _child(_HOLDER, str(run.path))
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
        with pytest.raises(RunLockedError, match=rf"process {holder.pid} is writing it"):
            Run.reopen(run.path)
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0, holder.stderr
    assert not (run.path / LOCK_FILE).exists()


def test_processes_racing_to_reopen_one_run_get_one_writer(tmp_path: Path) -> None:
    with Run.create(tmp_path, "exp") as run:
        run.log_scalars({"loss": 1.0}, step=1)
    go = tmp_path / "go"
    racers = [_child(_RACER, str(run.path), str(go)) for _ in range(4)]
    try:
        go.touch()
        first = [r.stdout.readline().strip().split(" ", 1)[0] for r in racers]  # type: ignore[union-attr]
    finally:
        outs = [r.communicate("\n", timeout=60) for r in racers]
    assert sorted(first) == ["refused"] * 3 + ["writer"], (first, outs)
    assert all(r.returncode == 0 for r in racers), outs


def _link_to(tmp_path: Path, name: str) -> tuple[Path, Path]:
    victim = tmp_path / f"victim-{name}"
    victim.write_text("precious\n")
    link = tmp_path / name
    link.symlink_to(victim)
    return link, victim


def test_whole_file_writers_refuse_a_symlink_and_a_fifo(tmp_path: Path) -> None:
    """The writers above atomic_write_* (tested in tests/record/test_atomic.py): config files,
    reports, exports, checkpoints. A FIFO would block an open() for writing; each refusal
    comes from lstat before any open, so none blocks."""
    from loopwise.checkpoint.store import save_file
    from loopwise.train.fit.config import TrainingConfig
    from loopwise.view.report import write_report

    with Run.create(tmp_path / "runs", "exp") as run:
        run.log_scalars({"loss": 1.0}, step=1)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    writers: dict[str, Callable[[Path], Any]] = {
        "TrainingConfig.save": lambda p: TrainingConfig().save(p),
        "write_report": lambda p: write_report(run.path, p),
        "checkpoint save_file": lambda p: save_file(p, {"w": torch.ones(1)}),
        "loopwise export": lambda p: _cli_raises(["export", str(run.path), str(p), "--format",
                                                    "csv"]),  # .out names no format
        "loopwise report": lambda p: _cli_raises(["report", str(run.path), "-o", str(p)]),
    }
    for what, write in writers.items():
        link, victim = _link_to(tmp_path, f"{what.replace(' ', '_')}.out")
        for target in (link, fifo):
            outcome: list[BaseException | None] = []

            def attempt(target: Path = target, write: Callable[[Path], Any] = write,
                        outcome: list[BaseException | None] = outcome) -> None:
                try:
                    write(target)
                    outcome.append(None)
                except BaseException as exc:
                    outcome.append(exc)

            worker = threading.Thread(target=attempt, daemon=True)
            worker.start()
            worker.join(60)
            assert outcome, f"{what} blocked on {target}"
            assert isinstance(outcome[0], UnsafeTargetError), (what, target, outcome[0])
            assert "refusing to write" in str(outcome[0]), (what, outcome[0])
        assert link.is_symlink() and victim.read_text() == "precious\n", what
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode), what
    run_json = run.path / "run.json"
    assert json.loads(run_json.read_text())["status"] == "finished"


def _cli_raises(argv: list[str]) -> None:
    code, _, err = run_cli(argv)
    assert code == 2 and "refusing to write" in err and "Traceback" not in err, err
    raise UnsafeTargetError(err)


def _request(port: int, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_the_real_dashboard_server_keeps_its_defaults(tmp_path: Path) -> None:
    """``loopwise ui`` on uvicorn (tests/view/test_dashboard_api.py checks the same guard
    in-process): loopback only, DNS rebinding refused, no CORS, read-only, the token."""
    from _view_kit import Server, make_run  # tests/view, on the path through _fuzz_tools

    root = tmp_path / "runs"
    make_run(root, "a", steps=30, epochs=1, extra_key="<script>alert(1)</script>")
    server = Server(root)
    try:
        port, local = server.port, {"Host": f"127.0.0.1:{server.port}"}
        status, headers, body = _request(port, "GET", "/api/runs/a", local)
        assert status == 200 and "<script>alert(1)</script>" in json.loads(body)["keys"]
        assert headers["content-type"].startswith("application/json")  # never HTML
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example",
                     "localhost.", "127.0.0.1@evil.example"):
            status, _, body = _request(port, "GET", "/api/runs", {"Host": host})
            assert status == 400 and b"Host header not allowed" in body, host
        status, _, body = _request(port, "GET", "/api/runs", {})  # no Host: uvicorn refuses
        assert status == 400 and b"loopback" not in body
        origin = {**local, "Origin": "http://evil.example"}
        status, headers, _ = _request(port, "GET", "/api/runs", origin)
        assert status == 200 and not any(h.startswith("access-control-") for h in headers)
        preflight = {**origin, "Access-Control-Request-Method": "GET"}
        for method in ("OPTIONS", "POST", "PUT", "DELETE", "PATCH"):
            status, headers, body = _request(port, method, "/api/runs/a", preflight)
            assert status == 405 and headers["allow"] == "GET, HEAD", method
            assert not any(h.startswith("access-control-") for h in headers)
        assert (root / "a" / "run.json").is_file()  # DELETE deleted nothing
        status, _, _ = _request(port, "GET", "/api/runs/..%2F..%2Fetc", local)
        assert status in (400, 404)
    finally:
        server.stop()
    # the default address is the loopback one, and another one warns
    code, out, _err = run_cli(["ui", "--help"])
    assert code == 0 and "127.0.0.1" in out
    server = Server(root, token="s3cret-token")
    try:
        status, _, _ = _request(server.port, "GET", "/api/runs", {"Host": "localhost"})
        assert status == 401
        status, _, _ = _request(server.port, "GET", "/api/runs",
                                {"Host": "localhost", "Authorization": "Bearer s3cret-token"})
        assert status == 200
    finally:
        server.stop()


_UMASK_RUN = textwrap.dedent("""
    import os, sys
    os.umask(0o027)
    from loopwise.cli import main
    sys.exit(main(["fit", sys.argv[1], "--epochs", "2", "--hidden-size", "4",
                   "--num-layers", "1", "--root", sys.argv[2]]))
""")


def test_every_file_of_a_fit_run_follows_the_umask(tmp_path: Path) -> None:
    data = _csv(tmp_path / "d.csv")
    child = _child(_UMASK_RUN, str(data), str(tmp_path / "runs"))
    _out, err = child.communicate(timeout=240)
    assert child.returncode == 0, err
    seen = 0
    for path in (tmp_path / "runs").rglob("*"):
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        want = 0o750 if path.is_dir() else 0o640
        assert mode == want, f"{path} has mode {oct(mode)}, not {oct(want)} (umask 027)"
        seen += 1
    assert seen >= 10


@pytest.mark.parametrize("file", ["config.json", "run.json", "store.sqlite", "log.jsonl"])
def test_a_run_file_linked_outside_the_run_is_refused_by_every_view(
        tmp_path: Path, file: str, capsys: pytest.CaptureFixture[str]) -> None:
    from starlette.testclient import TestClient

    from loopwise.cli import main
    from loopwise.view.dashboard.app import create_app

    root = tmp_path / "runs"
    with Run.create(root, "r", config={"lr": 0.1}) as run:
        run.log_scalar("loss", 1.0, step=1)
        run.log_event("note", "hello")
    secret = tmp_path / "secret.txt"
    secret.write_bytes((root / "r" / file).read_bytes().replace(b"0.1", b"'TOPSECRET'")
                       if file != "store.sqlite" else (root / "r" / file).read_bytes())
    (root / "r" / file).unlink()
    (root / "r" / file).symlink_to(secret)
    said = (f"{root / 'r' / file} is corrupt (a symbolic link to {secret}, outside the run "
            "folder); loopwise reads only a run folder's own files")
    if file == "log.jsonl":  # no view serves it; doctor checks it
        assert main(["doctor", "r", "--root", str(root)]) == 1
        assert f"  record: {said}" in capsys.readouterr().out
        return
    verbs = ("show", "report") + (("doctor",) if file != "config.json" else ())  # what reads it
    for verb in verbs:
        assert main([verb, "r", "--root", str(root)]) == 2, verb
        err = capsys.readouterr()
        assert err.err.startswith(f"loopwise {verb}: error: {said}"), verb
        assert "TOPSECRET" not in err.out + err.err
    assert not (root / "r" / "report.html").exists()
    client = TestClient(create_app(root), base_url="http://127.0.0.1:8765")
    answer = client.get("/api/runs/r")
    assert answer.status_code == 400 and "TOPSECRET" not in answer.text
    assert answer.json() == {"error": f"run 'r' links outside its folder ({file})"}
