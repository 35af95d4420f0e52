"""Issue 26 item 6: bad --image-size values, --mismatch without sketches, an idle client at
the review server, Ctrl-C after the report is written."""

from __future__ import annotations

import http.client
import socket
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from evalkit.cli import cli
from evalkit.core.config import ConfigError, load_config
from tests.conftest import make_ab_folder

SIZE = 32


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    """A tiny evaluated folder with held-out pairs only (no sketches)."""
    from tests.seed_reference import save_seed_checkpoint

    base = tmp_path_factory.mktemp("holes")
    (base / "ck").mkdir()
    save_seed_checkpoint(base / "ck", n=2, hidden=4)
    make_ab_folder(base / "heldout", n=4, half=SIZE)
    r = invoke("run", base / "ck", "--heldout", base / "heldout", "--out", base / "out",
               "--image-size", SIZE, "--quiet", "--no-report")
    assert r.exit_code == 0, r.output
    return base / "out"


# -- --image-size ---------------------------------------------------------------------------

@pytest.mark.parametrize("size", ["-64", "0", "30", "12"])
def test_bad_image_size_on_the_command_line_exits_2(tmp_path, size):
    r = invoke("run", tmp_path, "--heldout", tmp_path, f"--image-size={size}")
    assert r.exit_code == 2, r.output
    assert f"image size {size} px is not usable" in r.output
    assert "multiple of 4 and at least 16" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("size", [-64, 0, 18])
def test_bad_image_size_in_evalkit_toml_exits_2_naming_file_and_line(tmp_path, size):
    cfg = tmp_path / "evalkit.toml"
    cfg.write_text(f"[run]\nbatch_size = 2\nimage_size = {size}\n")
    with pytest.raises(ConfigError, match=rf"evalkit.toml:3: image size {size} px"):
        load_config(cfg)
    r = invoke("run", tmp_path, "--config", cfg)
    assert r.exit_code == 2 and "evalkit.toml:3" in r.output and "multiple of 4" in r.output


def test_valid_image_sizes_are_kept():
    from evalkit.core.config import image_size_problem

    assert [image_size_problem(s) for s in (16, 32, 256, 260)] == [None] * 4


# -- --mismatch -----------------------------------------------------------------------------

def test_mismatch_without_sketches_exits_2_with_the_fix(out):
    r = invoke("results", out, "--mismatch")
    assert r.exit_code == 2, r.output
    assert "no results on hand-drawn sketches" in r.output
    assert "--sketches FOLDER" in r.output and "pass it explicitly" not in r.output


# -- the review server ----------------------------------------------------------------------

IDLE_S = 3.0  # the connection timeout in these tests

@pytest.fixture
def review_server(out, monkeypatch):
    from evalkit.present.review import server as mod

    assert mod.CONNECTION_TIMEOUT_S <= 30  # idle clients are dropped
    monkeypatch.setattr(mod, "CONNECTION_TIMEOUT_S", IDLE_S)
    from tests.test_review import running

    with running(mod.ReviewState(out, "ana", seed=1, bootstrap=0)) as srv:
        yield srv


def test_an_idle_client_blocks_no_one_and_is_closed(review_server):
    port = review_server.server_address[1]
    idle = socket.create_connection(("127.0.0.1", port))  # connects, says half a line
    idle.sendall(b"GET / HT")
    try:
        t0 = time.monotonic()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/", headers={"Host": f"127.0.0.1:{port}"})
        r = c.getresponse()
        assert r.status == 200 and b"evalkit review" in r.read()
        assert time.monotonic() - t0 < IDLE_S / 2  # answered while the idle one waits
        idle.settimeout(IDLE_S * 3)
        assert idle.recv(1024) == b""  # the server hung up on the idle client
        assert time.monotonic() - t0 < IDLE_S * 2
    finally:
        idle.close()


# -- Ctrl-C after the report is written -----------------------------------------------------

#: The console script, with a slow exit step: an atexit callback that sleeps stands in for
#: the seconds Python's own teardown of TensorFlow and torch takes.
SLOW_EXIT = ("import atexit, sys, time; atexit.register(time.sleep, 6); "
             "from evalkit.cli import main; sys.argv[0] = 'evalkit'; main()")


def test_ctrl_c_after_the_report_says_what_is_stored(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from tests.seed_reference import save_seed_checkpoint

    (tmp_path / "ck").mkdir()
    save_seed_checkpoint(tmp_path / "ck", n=1, hidden=4)
    make_ab_folder(tmp_path / "heldout", n=4, half=SIZE)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    p = subprocess.Popen(
        [sys.executable, "-c", SLOW_EXIT, "run", str(tmp_path / "ck"), "--heldout",
         str(tmp_path / "heldout"), "--out", str(tmp_path / "out"), "--image-size",
         str(SIZE), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=env,  # a background job inherits SIGINT ignored: Ctrl-C needs the default
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    try:
        for line in p.stderr:
            seen.append(line)
            if line.startswith("report: "):
                break
        assert seen and seen[-1].startswith("report: "), "".join(seen)
        time.sleep(1.0)  # the run's guarded part is over; the process is ending
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        rest = p.stderr.read()
        code = p.wait(timeout=30)
    finally:
        p.kill()
    assert code == 130, rest
    assert "interrupted (SIGINT): 1 complete evaluation(s) of 1 checkpoint(s) are stored" \
        in rest and "Traceback" not in rest
    assert time.monotonic() - t0 < 3  # at once, not after the slow exit step
