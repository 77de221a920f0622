"""kill -9 fault injection for `prism train` (issue 20, part 3): faults survived, with figures.

Not a timed test: a benchmark that trains a tiny colorize config (configs/colorize/cpu.yaml with a
tiny U-Net, 32 px crops of scikit-image's sample photos, a checkpoint every 3 steps) and

1. runs it once uninterrupted (the reference), on 1 process and on 2 (`--devices 2`, gloo);
2. runs it again and SIGKILLs the whole job (its process group: every rank) at --kills seeded
   random moments: during start-up (imports, checkpoint load), at a random point of a random
   training step, and inside a checkpoint write (the moment the atomic writer's `.NAME.PID.tmp`
   appears; a new tmp file left behind afterwards proves the kill landed before the rename);
   after each kill `checkpoints/latest.pt` (and best.pt) must load with
   torch.load(weights_only=True), then `prism train --resume RUN` continues, until the run ends;
3. compares the finished run with the reference: the checkpoint's weights, EMA and optimizer
   state bit for bit, the step / epoch / batch counters, and the data order: log.jsonl holds
   every step's loss (log_every=1), and every row of every step, first run and replays alike,
   must equal the reference's (a different batch gives a different loss);
4. kills one rank alone (2 processes, train.collective_timeout_s=20): rank 1 (kill -9), rank 0
   (kill -9), and rank 1 stopped (SIGSTOP: a hung rank); the survivor must exit with a clear
   message, within the collective timeout, and the run must then resume to the end and match
   the reference.

    python benchmarks/fault_injection.py --quick                 # 3 + 2 kills, one rank fault: ~2.5 min
    python benchmarks/fault_injection.py --kills 20 --kills-2 20 --write-docs
    python benchmarks/fault_injection.py --tables-from WORK/results.json   # re-print a run's tables

Prints markdown tables; --write-docs puts them into docs/scale.md between the
`fault-injection` markers. Run it on an otherwise idle machine or under `nice`.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
PRISM = str(Path(sys.executable).parent / "prism")
DOCS = REPO / "docs" / "scale.md"
BEGIN, END = "<!-- fault-injection:begin -->", "<!-- fault-injection:end -->"
CKPT_EVERY = 3
TIMEOUT_S = 20
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "PYTHONUNBUFFERED": "1"}


# --- data and config ---------------------------------------------------------------------------
def make_photos(root: Path) -> Path:
    """24 colour crops (48..80 px) of scikit-image's sample photos, as the tests use."""
    from PIL import Image
    from skimage import data
    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.immunohistochemistry()]
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(24):
        img = photos[i % 5]
        s = int(rng.integers(48, 81))
        y, x = int(rng.integers(0, img.shape[0] - s)), int(rng.integers(0, img.shape[1] - s))
        Image.fromarray(img[y:y + s, x:x + s]).save(root / f"{i:02d}.png")
    return root


def overrides(photos: Path, steps: int) -> list[str]:
    return [f"data.train={photos}", f"data.val={photos}", "data.size=32", "nets.G.depth=4", "nets.G.width=8",
            f"train.steps={steps}", "train.batch_size=4", "train.log_every=1", f"train.ckpt_every={CKPT_EVERY}",
            "train.val_every=10", "train.sample_every=10", "train.val_batches=1", "train.num_workers=0",
            "train.torch_threads=1", f"train.collective_timeout_s={TIMEOUT_S}"]


def fresh_cmd(photos: Path, steps: int, devices: int, runs: Path) -> list[str]:
    return [PRISM, "train", "--config", str(REPO / "configs/colorize/cpu.yaml"), "--runs-dir", str(runs),
            "--no-progress", "--devices", str(devices), *overrides(photos, steps)]


def resume_cmd(run: Path) -> list[str]:
    return [PRISM, "train", "--resume", str(run), "--no-progress"]


# --- one process group -------------------------------------------------------------------------
class Job:
    """`prism train` in its own session (process group = every rank), output to a file."""

    def __init__(self, cmd: list[str], out: Path):
        self.out = out
        self.handle = open(out, "ab")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=self.handle, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.started = time.time()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill_group(self, sig=signal.SIGKILL) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        finally:
            if self.proc.poll() is not None:
                self.handle.close()

    def group_gone(self, timeout: float = 10) -> bool:
        end = time.time() + timeout
        while time.time() < end:
            if not _group_members(self.proc.pid):
                return True
            time.sleep(0.05)
        return False


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group, from /proc."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            kids += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids


def _local_rank(pid: int) -> str | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in env:
        if item.startswith(b"LOCAL_RANK="):
            return item.split(b"=", 1)[1].decode()
    return None


class LogTail:
    """The rows a job appends to RUN/log.jsonl (rows from earlier attempts are skipped)."""

    def __init__(self, path: Path | None):
        self.path, self.offset, self.buf, self.last_step = path, 0, b"", None
        if path is not None and path.is_file():
            self.offset = path.stat().st_size

    def poll(self) -> int | None:
        if self.path is None or not self.path.is_file():
            return self.last_step
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        self.offset += len(chunk)
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            if line.strip():
                self.last_step = json.loads(line)["step"]
        return self.last_step


# --- checks ------------------------------------------------------------------------------------
def loadable(run: Path | None) -> dict:
    """torch.load(weights_only=True) of every checkpoint of the run: {name: step or error}."""
    out = {}
    if run is None or not (run / "checkpoints").is_dir():
        return out
    for path in sorted((run / "checkpoints").glob("*.pt")):
        try:
            out[path.stem] = int(torch.load(path, map_location="cpu", weights_only=True)["step"])
        except Exception as e:  # noqa: BLE001 - reported, counted as a failure
            out[path.stem] = f"UNLOADABLE: {type(e).__name__}: {e}"
    return out


def temporaries(run: Path | None) -> list[str]:
    if run is None or not (run / "checkpoints").is_dir():
        return []
    return sorted(p.name for p in (run / "checkpoints").glob(".*.tmp"))


def tree_equal(a, b, path="") -> list[str]:
    """Paths where two nested checkpoint trees differ (tensors compared bit for bit)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        ok = (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
              and a.shape == b.shape and torch.equal(_bits(a), _bits(b)))
        return [] if ok else [path]
    if isinstance(a, dict) and isinstance(b, dict):
        diff = [f"{path}/{k}" for k in set(a) ^ set(b)]
        for k in set(a) & set(b):
            diff += tree_equal(a[k], b[k], f"{path}/{k}")
        return diff
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [path]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in tree_equal(x, y, f"{path}/{i}")]
    return [] if a == b else [path]


def _bits(t: torch.Tensor) -> torch.Tensor:
    """The raw bytes: torch.equal on floats would call -0.0 == 0.0 and NaN != NaN."""
    return t.contiguous().reshape(-1).view(torch.uint8) if t.is_floating_point() else t


def compare(ref: Path, run: Path) -> dict:
    a = torch.load(ref / "checkpoints" / "latest.pt", map_location="cpu", weights_only=True)
    b = torch.load(run / "checkpoints" / "latest.pt", map_location="cpu", weights_only=True)
    weights = {k: tree_equal(a[k], b[k], k) for k in ("nets", "ema", "opts")}
    counters = {k: (a[k], b[k]) for k in ("step", "epoch", "batch_in_epoch")}
    ref_rows = {r["step"]: r for r in _rows(ref / "log.jsonl")}
    mismatched, replayed, rows = set(), 0, _rows(run / "log.jsonl")
    seen = set()
    for r in rows:
        want = ref_rows.get(r["step"])
        if want is None or {k: v for k, v in r.items() if k != "time"} != {k: v for k, v in want.items() if k != "time"}:
            mismatched.add(r["step"])
        replayed += r["step"] in seen
        seen.add(r["step"])
    return {"weights_bit_identical": not any(weights.values()), "weight_diffs": {k: v[:5] for k, v in weights.items() if v},
            "counters": counters, "counters_equal": all(x == y for x, y in counters.values()),
            "steps_logged": len(seen), "ref_steps_logged": len(ref_rows), "rows_replayed": replayed,
            "steps_mismatched": sorted(mismatched), "model_exported": (run / "model" / "card.json").is_file()}


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- the reference and the faulted runs -----------------------------------------------------------
def newest_run(runs: Path) -> Path | None:
    found = sorted(p for p in runs.glob("0*") if p.is_dir()) if runs.is_dir() else []
    return found[-1] if found else None


def reference(photos: Path, steps: int, devices: int, work: Path) -> dict:
    runs = work / f"ref-{devices}p"
    job = Job(fresh_cmd(photos, steps, devices, runs), work / f"ref-{devices}p.out")
    tail, first_row = None, None
    while job.alive():  # time to the first logged step: the start-up window
        run = newest_run(runs)
        if run is not None and first_row is None:
            tail = tail or LogTail(run / "log.jsonl")
            if tail.poll() is not None:
                first_row = time.time() - job.started
        time.sleep(0.01)
    rc = job.wait(5)
    wall = time.time() - job.started
    if rc != 0:
        sys.exit(f"reference run failed (rc {rc}); see {job.out}")
    run = newest_run(runs)
    times = [r["time"] for r in _rows(run / "log.jsonl")]
    return {"run": run, "wall_s": wall, "startup_s": first_row or wall,
            "step_s": (times[-1] - times[0]) / max(1, len(times) - 1)}


def faulted(photos: Path, steps: int, devices: int, kills: int, ref: dict, work: Path, rng: random.Random) -> dict:
    runs = work / f"kill-{devices}p"
    n_ckpt, n_start = round(0.3 * kills), round(0.2 * kills)
    kinds = ["checkpoint write"] * n_ckpt + ["start-up"] * n_start + ["training step"] * (kills - n_ckpt - n_start)
    rng.shuffle(kinds)
    events, run, attempts, restarts = [], None, 0, 0
    out = work / f"kill-{devices}p.out"
    for kind in kinds + [None] * 4:  # the kills, then resumes without a kill until the run ends
        resumed_from = (loadable(run).get("latest") if run else None)
        cmd = resume_cmd(run) if isinstance(resumed_from, int) else fresh_cmd(photos, steps, devices, runs)
        if run is not None and not isinstance(resumed_from, int):
            restarts += 1  # killed before its first checkpoint: nothing to resume, start again
        before = newest_run(runs)
        job = Job(cmd, out)
        attempts += 1
        if kind is None:
            rc = job.wait(900)
            run = newest_run(runs) if cmd[2] != "--resume" else run
            if rc == 0:
                break
            events.append({"kind": "no kill", "rc": rc})
            continue
        start_step = resumed_from if isinstance(resumed_from, int) else "fresh"
        landed = _kill_at(job, kind, run if cmd[2] == "--resume" else None, runs, before,
                          start_step if isinstance(start_step, int) else 0, steps,
                          ref, rng)
        job.group_gone()
        run = newest_run(runs)
        checks = loadable(run)
        tmp = temporaries(run)
        events.append({"kind": kind, "resumed_from": resumed_from, **landed, "tmp_left": tmp,
                       "checkpoints": checks, "run": str(run)})
        print(f"  [{devices}p] kill {len(events):2d} {kind:16s} from step {str(start_step):>4s}: "
              f"{landed['when']}; new tmp file left: {len(_new_tmp(events, events[-1]))}; checkpoints: {checks}",
              flush=True)
        if landed.get("finished"):
            break
    else:
        sys.exit(f"the faulted {devices}-process run did not finish; see {out}")
    return {"run": run, "events": events, "attempts": attempts, "restarts": restarts}


def _kill_at(job: Job, kind: str, run: Path | None, runs: Path, before: Path | None, start_step: int, steps: int,
             ref: dict, rng: random.Random) -> dict:
    """Wait for the moment `kind` picks, then SIGKILL the job's whole process group."""
    tail = LogTail(run / "log.jsonl") if run else None

    def follow():
        nonlocal tail, run
        if tail is None:
            new = newest_run(runs)
            if new is not None and new != before:
                run, tail = new, LogTail(new / "log.jsonl")
        return tail.poll() if tail else None

    def finished():
        if job.alive():
            return None
        return {"when": f"finished first (rc {job.wait(1)})", "finished": job.proc.returncode == 0, "step": follow()}

    if kind == "start-up":
        deadline = job.started + rng.uniform(0, ref["startup_s"])
        while time.time() < deadline:
            if (f := finished()):
                return f
            time.sleep(0.005)
        step = follow()
        job.kill_group()
        job.wait(30)
        return {"when": f"{time.time() - job.started:.2f} s after launch, last step logged "
                        f"{step if step is not None else '-'}", "step": step}
    if kind == "training step":
        target = rng.randint(min(start_step + 1, steps), min(steps, start_step + 2 * CKPT_EVERY))
        while (step := follow()) is None or step < target:
            if (f := finished()):
                return f
            time.sleep(0.002)
        time.sleep(rng.uniform(0, ref["step_s"]))
        step = follow()
        job.kill_group()
        job.wait(30)
        return {"when": f"after step {step} (target {target})", "step": step}
    # checkpoint write: from the step before a checkpoint step, poll for the writer's tmp file
    ckpt_steps = [s for s in range(start_step + 1, steps + 1) if s % CKPT_EVERY == 0 or s == steps]
    target = rng.choice(ckpt_steps[:2]) if ckpt_steps else steps
    while (step := follow()) is None or step < target - 1:
        if (f := finished()):
            return f
        time.sleep(0.002)
    while True:
        if run is not None and (run / "checkpoints").is_dir():
            with os.scandir(run / "checkpoints") as it:
                if any(e.name.endswith(".tmp") for e in it):
                    job.kill_group()
                    break
        if (f := finished()):
            return f
        follow()
        time.sleep(0.0003)
    job.wait(30)
    return {"when": f"tmp file seen after step {follow()}", "step": tail.last_step if tail else None}


# --- one rank alone --------------------------------------------------------------------------------
def rank_fault(photos: Path, steps: int, how: str, ref2: Path, work: Path, rng: random.Random) -> dict:
    runs = work / f"rank-{how.split()[0]}-{how.split()[-1]}"
    out = work / f"{runs.name}.out"
    job = Job(fresh_cmd(photos, steps, 2, runs), out)
    target = rng.randint(CKPT_EVERY + 1, steps - CKPT_EVERY)
    tail = None
    while True:
        run = newest_run(runs)
        if run is not None and tail is None:
            tail = LogTail(run / "log.jsonl")
        if tail is not None and (tail.poll() or 0) >= target:
            break
        if not job.alive():
            sys.exit(f"{how}: the run ended before step {target}; see {out}")
        time.sleep(0.005)
    rank1 = [c for c in _children(job.proc.pid) if _local_rank(c) == "1"]
    if len(rank1) != 1:
        sys.exit(f"{how}: could not find rank 1 among {_children(job.proc.pid)}")
    victim, survivor = (rank1[0], job.proc.pid) if "rank 1" in how else (job.proc.pid, rank1[0])
    offset = out.stat().st_size
    t0 = time.time()
    os.kill(victim, signal.SIGSTOP if how.startswith("SIGSTOP") else signal.SIGKILL)
    limit = TIMEOUT_S + 60
    while _alive(survivor) and time.time() - t0 < limit:
        time.sleep(0.02)
    exited_after = time.time() - t0
    hung = _alive(survivor)
    rc = job.wait(5) if survivor == job.proc.pid else None
    job.kill_group()  # the stopped rank, a hung survivor
    job.group_gone()
    job.wait(10)
    text = out.read_bytes()[offset:].decode(errors="replace")
    message = next((line.strip() for line in text.splitlines() if "Training stopped on rank" in line), None)
    message = message or next((line.strip() for line in text.splitlines() if "error" in line.lower()), "(none)")
    resumed = Job(resume_cmd(run), out)
    rc_resume = resumed.wait(900)
    cmp = compare(ref2, run) if rc_resume == 0 else None
    return {"fault": how, "at_step": tail.last_step, "survivor_exit_s": exited_after, "hung": hung,
            "survivor_rc": rc, "message": message, "resume_rc": rc_resume, "compare": cmp}


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


# --- report ----------------------------------------------------------------------------------------
def kill_table(results: list[dict]) -> str:
    lines = ["| processes | kills (aimed at: checkpoint write / start-up / training step) | landed inside a checkpoint write (tmp file left) "
             "| resumes | restarted (no checkpoint yet) | checkpoints loadable after every kill "
             "| final step, epoch, batch | final weights, EMA, optimizer vs uninterrupted "
             "| per-step losses (data order) vs uninterrupted |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        ev = [e for e in r["events"] if e["kind"] != "no kill"]
        in_write = sum(1 for e in ev if _new_tmp(ev, e))  # whatever the aim: a new tmp file = cut mid-write
        aimed = sum(1 for e in ev if e["kind"] == "checkpoint write")
        startup = sum(1 for e in ev if e["kind"] == "start-up")
        stepk = sum(1 for e in ev if e["kind"] == "training step")
        bad = [e for e in ev for v in e["checkpoints"].values() if isinstance(v, str)]
        c = r["compare"]
        counters = ", ".join(str(c["counters"][k][1]) for k in ("step", "epoch", "batch_in_epoch"))
        same = "equal" if c["counters_equal"] else "DIFFERENT from " + ", ".join(str(c["counters"][k][0]) for k in ("step", "epoch", "batch_in_epoch"))
        losses = (f"all {c['steps_logged']} steps equal, {c['rows_replayed']} replayed rows too"
                  if not c["steps_mismatched"] and c["steps_logged"] == c["ref_steps_logged"]
                  else f"MISMATCH at steps {c['steps_mismatched'][:10]} ({c['steps_logged']}/{c['ref_steps_logged']} logged)")
        lines.append(f"| {r['devices']} | {len(ev)} ({aimed} / {startup} / {stepk}) | {in_write} "
                     f"| {r['attempts'] - 1 - r['restarts']} | {r['restarts']} "
                     f"| {'yes' if not bad else f'NO ({len(bad)})'} | {counters} ({same}) "
                     f"| {'bit-identical' if c['weights_bit_identical'] else 'DIFFERENT: ' + str(c['weight_diffs'])} "
                     f"| {losses} |")
    return "\n".join(lines)


def _new_tmp(events: list[dict], e: dict) -> list[str]:
    """The tmp files this kill left (not those of an earlier kill that a resume killed during its
    start-up had no time to delete; their names hold the writer's pid)."""
    i = events.index(e)
    before = set(events[i - 1]["tmp_left"]) if i and events[i - 1].get("run") == e.get("run") else set()
    return sorted(set(e["tmp_left"]) - before)


def rank_table(results: list[dict]) -> str:
    lines = [f"| fault (2 processes, collective_timeout_s={TIMEOUT_S}) | at step | survivor exited after "
             "| survivor's exit code | its message | resumed | after resume vs uninterrupted |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        c = r["compare"]
        after = ("not resumed" if c is None else
                 f"step {c['counters']['step'][1]}, weights {'bit-identical' if c['weights_bit_identical'] else 'DIFFERENT'}, "
                 f"losses {'equal' if not c['steps_mismatched'] else 'DIFFERENT'}")
        msg = re.sub(r"/\S*/\d{5}-cpu", "RUN", r["message"]).replace("|", "/")
        if len(msg) > 260:
            msg = msg[:257] + "..."
        exited = f"HUNG (> {TIMEOUT_S + 60} s)" if r["hung"] else f"{r['survivor_exit_s']:.1f} s"
        code = r["survivor_rc"] if r["survivor_rc"] is not None else "n/a (not our child)"
        resumed = "yes" if r["resume_rc"] == 0 else f"NO (rc {r['resume_rc']})"
        lines.append(f"| {r['fault']} | {r['at_step']} | {exited} | {code} | {msg} | {resumed} | {after} |")
    return "\n".join(lines)


def write_docs(text: str) -> None:
    doc = DOCS.read_text()
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in doc:
        doc = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, doc, flags=re.S)
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    DOCS.write_text(doc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=20, help="kill -9 moments on 1 process (default 20)")
    ap.add_argument("--kills-2", type=int, default=None, help="kill -9 moments on 2 processes (default: --kills)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="3 kills on 1 process, 2 on 2, one rank fault")
    ap.add_argument("--skip", nargs="*", default=[], choices=["1p", "2p", "rank"], help="parts to leave out")
    ap.add_argument("--work", type=Path, default=None, help="keep the runs here (default: a temp dir, deleted)")
    ap.add_argument("--write-docs", action="store_true", help=f"put the tables into {DOCS.relative_to(REPO)}")
    ap.add_argument("--tables-from", type=Path, default=None,
                    help="print (and with --write-docs write) the tables of an earlier run's WORK/results.json")
    args = ap.parse_args()
    if args.tables_from:
        saved = json.loads(args.tables_from.read_text())
        text = "\n\n".join(t for t in (kill_table(saved["kills"]) if saved["kills"] else "",
                                        rank_table(saved["ranks"]) if saved["ranks"] else "") if t)
        print(text)
        if args.write_docs:
            write_docs(text)
        return
    kills1 = 3 if args.quick else args.kills
    kills2 = 2 if args.quick else (args.kills if args.kills_2 is None else args.kills_2)
    rng = random.Random(args.seed)
    work = args.work or Path(tempfile.mkdtemp(prefix="prism-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    photos = make_photos(work / "photos")
    started = time.time()
    results, ranks = [], []
    for devices, kills in ((1, kills1), (2, kills2)):
        if f"{devices}p" in args.skip and not (devices == 2 and "rank" not in args.skip):
            continue
        steps = max(24, 4 * kills)
        ref = reference(photos, steps, devices, work)
        print(f"reference, {devices} process(es), {steps} steps: {ref['wall_s']:.1f} s wall, start-up "
              f"{ref['startup_s']:.1f} s, {ref['step_s'] * 1000:.0f} ms/step", flush=True)
        if f"{devices}p" not in args.skip:
            r = faulted(photos, steps, devices, kills, ref, work, rng)
            r.update(devices=devices, compare=compare(ref["run"], r["run"]))
            results.append(r)
            print(kill_table([r]), flush=True)
        if devices == 2 and "rank" not in args.skip:
            faults = ["kill -9 rank 1"] if args.quick else ["kill -9 rank 1", "kill -9 rank 0", "SIGSTOP rank 1"]
            for how in faults:
                ranks.append(rank_fault(photos, steps, how, ref["run"], work, rng))
                print(rank_table(ranks[-1:]), flush=True)
    text = ""
    if results:
        text += kill_table(results) + "\n"
    if ranks:
        text += ("\n" if text else "") + rank_table(ranks) + "\n"
    print("\n" + text)
    print(f"total {time.time() - started:.0f} s; runs in {work}")
    (work / "results.json").write_text(json.dumps({"kills": results, "ranks": ranks}, default=str, indent=1))
    if args.write_docs:
        write_docs(text.rstrip("\n"))
        print(f"wrote the tables into {DOCS}")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
