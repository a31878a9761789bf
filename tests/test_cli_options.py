"""Global options and plumbing of the ``kgrec`` command line: --threads, closed pipes, --help defaults."""

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kgrec.cli import build_parser, main
from kgrec.cli.threads import THREADS_ENV, default_threads

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "kg_data" / "toy" / "toy.ttl"
U = "https://w3id.org/kgrec/data/toy/user/"


def run(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def torch_threads(monkeypatch):
    """Restore torch's thread count after the test; start without KGREC_THREADS / OMP_NUM_THREADS."""
    before = torch.get_num_threads()
    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------------------ threads
def test_threads_flag_reaches_torch(torch_threads):
    assert run(["--threads", "1", "inspect", TOY])[0] == 0
    assert torch.get_num_threads() == 1
    assert run(["--threads", "2", "inspect", TOY])[0] == 0
    assert torch.get_num_threads() == 2
    # also accepted after the command
    assert run(["inspect", TOY, "--threads", "1"])[0] == 0
    assert torch.get_num_threads() == 1


def test_threads_env_var_and_flag_wins(torch_threads, monkeypatch):
    monkeypatch.setenv(THREADS_ENV, "2")
    assert run(["inspect", TOY])[0] == 0
    assert torch.get_num_threads() == 2
    assert run(["--threads", "1", "inspect", TOY])[0] == 0
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("bad", ["0", "-1", "x", "1.5"])
def test_bad_threads_exit_2_naming_the_option(torch_threads, monkeypatch, bad):
    code, out, err = run(["--threads", bad, "inspect", TOY])
    assert code == 2 and out == ""
    assert "--threads" in err and repr(bad) in err
    monkeypatch.setenv(THREADS_ENV, bad)
    code, out, err = run(["inspect", TOY])
    assert code == 2 and out == ""
    assert err == f"kgrec: error: '{THREADS_ENV}' must be a positive integer number of threads (got {bad!r})\n"


def test_default_threads_follow_idle_cores(torch_threads, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.5, 1.0, 1.0))
    assert default_threads() == 1  # 2 cores, 1.5 busy
    assert run(["inspect", TOY])[0] == 0
    assert torch.get_num_threads() == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.0, 0.0))
    assert default_threads() == 1  # floor(2 - 0.2)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert default_threads() == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert default_threads() == 4  # capped
    monkeypatch.setattr(os, "getloadavg", lambda: (30.0, 0.0, 0.0))
    assert default_threads() == 1  # never below one


def test_omp_num_threads_alone_is_left_to_torch(torch_threads, monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert run(["inspect", TOY])[0] == 0
    assert torch.get_num_threads() == 1  # not the default of 2


# ------------------------------------------------------------------------------- closed pipes
def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "OMP_NUM_THREADS": "1"}


# argparse ignores a failed write of its own messages (--help), so that exit status stays 0
@pytest.mark.parametrize("argv,status", [(["inspect", str(TOY)], 141), (["train", "--help"], 0)])
def test_closed_stdout_ends_quietly(argv, status):
    """The reader is gone before kgrec writes its first byte: every write fails with EPIPE."""
    proc = subprocess.Popen([sys.executable, "-m", "kgrec", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_env(), cwd=ROOT)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == status
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err


def test_pipe_into_head(tmp_path):
    cmd = f"'{sys.executable}' -m kgrec inspect '{TOY}' | head -1"
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=120)
    assert proc.returncode == 0
    assert proc.stdout == f"sources: {TOY}\n"
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


# ------------------------------------------------------------------------------ help defaults
def _option_blocks(text: str) -> list[str]:
    """The help of each option, its wrapped lines joined (an entry starts at two spaces then a dash)."""
    blocks: list[str] = []
    for line in text.splitlines():
        if re.match(r"  -", line):
            blocks.append(line)
        elif blocks and line.startswith("    "):
            blocks[-1] += " " + line.strip()
        elif not line.strip() or not line.startswith(" "):
            blocks.append("")  # a section break ends the entry
    return [b for b in blocks if b]


def test_help_states_each_default_once():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    helps = {"kgrec": parser.format_help(), **{n: p.format_help() for n, p in sub.choices.items()}}
    checked = 0
    for name, text in helps.items():
        for block in _option_blocks(text):
            assert block.lower().count("default") <= 1, (name, block)
            assert "(default: None)" not in block and "(default: False)" not in block, (name, block)
            checked += 1
    assert checked > 100
    train = re.sub(r"\s+", " ", " ".join(_option_blocks(helps["train"])))
    assert "--seed S seed of the split (default: 2020)" in train
    assert "model directory (default: kgrec-out/<model>)" in train
    assert "--ratios T,V,E train,valid,test shares (default: 0.8,0.1,0.1)" in train
    assert "--ks K,K metric cut-offs (default: 10,20)" in train


# ---------------------------------------------------------------------------- empty split parts
@pytest.mark.parametrize("ratios,counts,valid_rows", [("1,0,0", "15 train / 0 valid / 0 test", 0),
                                                      ("0.5,0.5,0", "6 train / 9 valid / 0 test", 1)])
def test_train_does_not_evaluate_an_empty_test_part(tmp_path, ratios, counts, valid_rows):
    """--ratios 1,0,0 trains on every interaction: the model is saved, the empty test part not evaluated."""
    out = tmp_path / "m"
    code, stdout, err = run(["train", TOY, "--model", "mostpop", "--ratios", ratios, "--out", out, "--no-progress"])
    assert code == 0, err
    assert "nan" not in stdout
    note = f"no test metrics: '--ratios {ratios}' gives the test part a share of 0 ({counts} interactions)"
    assert note + "\n" in stdout
    assert stdout.count("| valid |") == valid_rows and "| test " not in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"] is None and (metrics["valid"] is None) == (valid_rows == 0)
    assert "No test metrics: '--ratios" in (out / "metrics.md").read_text()
    assert not (out / "report.json").exists()
    code, stdout, _ = run(["recommend", out, "--user", f"{U}u1", "-k", "1"])  # the saved model works
    assert code == 0 and stdout.startswith(f"{U}u1:\n")


def test_evaluate_refuses_an_empty_part(tmp_path):
    model = tmp_path / "m"
    assert run(["train", TOY, "--model", "mostpop", "--out", model, "--no-progress"])[0] == 0
    code, out, err = run(["evaluate", model, TOY, "--part", "valid", "--ratios", "1,0,0"])
    assert code == 2 and out == ""
    assert "'--ratios 1,0,0' gives the valid part a share of 0 (15 train / 0 valid / 0 test interactions)" in err
    assert not (model / "evaluation.json").exists()


# ----------------------------------------------------------------------------- unknown suffix
def test_unknown_suffix_names_the_format_option(tmp_path):
    bad = tmp_path / "toy.data"
    bad.write_bytes(TOY.read_bytes())
    code, out, err = run(["inspect", bad])
    assert code == 2 and out == ""
    assert f"cannot guess the RDF format of '{bad}' from its suffix '.data'" in err
    assert "'--format F' on the kgrec command line, kgrec.load(..., format=F) in Python" in err
    code, out, _ = run(["inspect", bad, "--format", "turtle", "--json"])  # the way out works
    assert code == 0 and '"items": 8' in out


# ------------------------------------------------------------------------------- users / items
ITEM = "https://w3id.org/kgrec/data/toy/item/"
TOY_ITEMS = [("alien", "Alien"), ("blade-runner", "Blade Runner"), ("casablanca", "Casablanca"), ("heat", "Heat"),
             ("jaws", "Jaws"), ("jurassic-park", "Jurassic Park"), ("toy-story", "Toy Story"), ("up", "Up")]


@pytest.fixture(scope="module")
def mostpop_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("users") / "mostpop"
    code, _, err = run(["train", TOY, "--model", "mostpop", "--out", out, "--no-progress"])
    assert code == 0, err
    return out


def test_users_and_items_list_the_model_iris(mostpop_dir):
    code, out, err = run(["users", mostpop_dir])
    assert code == 0 and err == ""
    assert out == "".join(f"{U}u{i}\n" for i in range(1, 7))
    code, out, _ = run(["users", mostpop_dir, "--limit", "2"])
    assert code == 0 and out == f"{U}u1\n{U}u2\n"
    code, out, _ = run(["items", mostpop_dir])
    assert code == 0 and out == "".join(f"{ITEM}{name}\t{label}\n" for name, label in TOY_ITEMS)
    code, out, _ = run(["items", mostpop_dir, "--limit", "100"])
    assert code == 0 and out.count("\n") == 8
    code, _, err = run(["items", mostpop_dir, "--limit", "0"])
    assert code == 2 and "--limit" in err


def test_users_of_a_missing_model_exit_2(tmp_path):
    code, out, err = run(["users", tmp_path / "nope"])
    assert code == 2 and out == "" and err.startswith("kgrec: error: ") and "nope" in err


def test_unknown_user_gets_the_closest_ones(mostpop_dir):
    code, out, err = run(["recommend", mostpop_dir, "--user", "u1"])
    assert code == 2 and out == ""
    assert err == (f"kgrec: error: '--user': unknown user 'u1' (6 users known to the model in '{mostpop_dir}'); "
                   f"closest known: {U}u1; 'kgrec users {mostpop_dir}' lists them\n")
    code, _, err = run(["recommend", mostpop_dir, "--user", f"{U}u1", "--user", f"{U}U2"])
    assert code == 2 and f"unknown user '{U}U2'" in err and f"closest known: {U}u2" in err
    code, _, err = run(["recommend", mostpop_dir, "--user", f"{U}u9"])  # no name close enough to u9
    assert code == 2 and "closest" not in err and f"'kgrec users {mostpop_dir}' lists them" in err
    code, _, err = run(["recommend", mostpop_dir, "--user", "zzz"])
    assert code == 2 and "closest" not in err and f"'kgrec users {mostpop_dir}' lists them" in err


def test_recommend_into_head_lists_the_first_line(mostpop_dir):
    cmd = f"'{sys.executable}' -m kgrec recommend '{mostpop_dir}' --user {U}u1 | head -1"
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=120)
    assert proc.returncode == 0 and proc.stdout == f"{U}u1:\n"
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


# ------------------------------------------------------------------------- docs/render_report.sh
def test_render_report_leaves_the_tracked_png_alone(mostpop_dir, tmp_path):
    """With a stand-in for Chromium that records its arguments: the screenshot goes beside the page."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "chromium"
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "$ARGS_FILE"\n')
    fake.chmod(0o755)
    tracked = ROOT / "docs" / "report.png"
    before = tracked.read_bytes()
    env = {**_env(), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHON": sys.executable,
           "ARGS_FILE": str(tmp_path / "args")}
    proc = subprocess.run(["bash", str(ROOT / "docs" / "render_report.sh"), str(mostpop_dir)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    args = (tmp_path / "args").read_text().splitlines()
    assert f"--screenshot={mostpop_dir}/report.png" in args
    assert f"file://{mostpop_dir}/report.html" in args
    assert proc.stdout.endswith(f"wrote {mostpop_dir}/report.png from {mostpop_dir}/report.html\n")
    assert tracked.read_bytes() == before


# ---------------------------------------------------------------------------- quiet / progress
def test_quiet_silences_the_progress_lines(tmp_path):
    code, out, err = run(["train", TOY, "--model", "mostpop", "--out", tmp_path / "a"])
    assert code == 0 and "fitting mostpop\n" in err and "split random-seed2020: 6 train / 3 valid / 6 test" in err
    for argv in (["-q", "train", TOY, "--model", "mostpop", "--out", tmp_path / "b"],
                 ["train", TOY, "--model", "mostpop", "--out", tmp_path / "c", "--quiet"]):
        code, quiet_out, err = run(argv)
        assert code == 0 and err == ""
        assert quiet_out.splitlines()[:3] == out.splitlines()[:3]  # the same metrics table on stdout


def test_hybrid_prior_search_has_a_bar(tmp_path):
    out = tmp_path / "h"
    code, _, err = run(["train", TOY, "--model", "hybrid", "--param", "epochs=1", "--param", "use_text=false",
                        "--param", "dim=8", "--param", "cache_dir=", "--ratios", "0.6,0.2,0.2", "--out", out,
                        "--progress"])
    assert code == 0, err
    fit = json.loads((out / "metrics.json").read_text())["fit"]
    trials = len(fit["prior_trials"]) + len(fit["seq_trials"])
    assert trials == 29  # 3 EASE regs x 9 weights + weight 0, then the model without rules
    assert re.search(rf"hybrid: prior weights: {trials}trial ", err.replace("\r", "\n"))
    assert "train hybrid: 100%" in err
    code, _, err = run(["--quiet", "train", TOY, "--model", "hybrid", "--param", "epochs=1", "--param",
                        "use_text=false", "--param", "dim=8", "--param", "cache_dir=", "--ratios", "0.6,0.2,0.2",
                        "--out", tmp_path / "h2"])
    assert code == 0 and "prior weights" not in err and "train hybrid" not in err
