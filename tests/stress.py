"""Many processes at once on one data set: apply, export, rescan (and open → recover), a cheap scan on a
pinned snapshot, decisions and undo/redo. Used by ``tests/test_stress.py`` (short) and
``bench/bench_concurrency.py`` (long).

``run_stress(base, n_images, seconds, workers)`` builds ``base/ds`` (generated photo crops), starts one
OS process per worker kind (``python -m tests.stress KIND ...``), waits, then settles the workspace and
checks everything; it returns a :class:`StressResult` whose ``problems`` list must be empty.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KINDS = ("decide", "apply", "export", "rescan", "scan")


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def file_hashes(*folders: Path) -> Counter[str]:
    return Counter(sha(p) for f in folders if f.exists() for p in f.rglob("*") if p.is_file()
                   and p.suffix == ".jpg")


# ---- the workers (each runs in its own process) ---------------------------------------------------
#: Each worker goes on past the deadline until it has done this many operations (at most GRACE seconds
#: more), so every kind of work really overlaps the others even on a loaded machine.
MIN_OPS = 2
GRACE = 120.0


def _worker(kind: str, root: Path, until: float, seed: int, out: Path) -> dict[str, object]:
    from cleaning.data.files import apply_decisions, export_dataset
    from cleaning.data.workspace import Workspace

    rng = random.Random(seed)
    ws = Workspace.open(root)
    ids = [r[0] for r in ws.store.query("SELECT item_id FROM items")]
    stats: dict[str, object] = {"kind": kind, "ops": 0, "decided": 0, "undone": 0, "problems": []}
    problems: list[str] = stats["problems"]  # type: ignore[assignment]
    n = 0
    while time.time() < until or (n < MIN_OPS and time.time() < until + GRACE):
        n += 1
        if kind == "decide":
            r = rng.random()
            if r < 0.1:
                stats["undone"] = int(stats["undone"]) + len(ws.store.undo())  # type: ignore[call-overload]
            elif r < 0.15:
                ws.store.redo()
            else:
                pick = rng.sample(ids, rng.randint(1, 15))
                action = rng.choice(["relabel", "relabel", "delete", "restore", "keep"])
                label = rng.choice(["cat", "dog", "bird", "fish"]) if action == "relabel" else None
                if ws.store.record(pick, action, label=label, source="bulk") is not None:
                    stats["decided"] = int(stats["decided"]) + 1  # type: ignore[call-overload]
            time.sleep(rng.uniform(0.0, 0.02))
        elif kind == "apply":
            apply_decisions(ws, wait=120)
            time.sleep(rng.uniform(0.05, 0.3))
        elif kind == "export":
            dest = out / f"export-{seed}-{n}"
            rep = export_dataset(ws, dest, wait=120)
            problems += _check_export(dest, rep.n_images)
            shutil.rmtree(dest)
            time.sleep(rng.uniform(0.1, 0.5))
        elif kind == "rescan":
            if n % 3 == 0:
                ws = Workspace.open(root)  # what any other command or app server does: recover() runs
            ws.refresh(wait=120)
            time.sleep(rng.uniform(0.1, 0.4))
        elif kind == "scan":
            problems += _cheap_scan(ws)
            time.sleep(rng.uniform(0.1, 0.4))
        stats["ops"] = int(stats["ops"]) + 1  # type: ignore[call-overload]
    return stats


def _check_export(dest: Path, n_images: int) -> list[str]:
    rows = list(csv.DictReader(open(dest / "labels.csv", encoding="utf-8")))
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.jpg"))
    out = []
    if not (len(rows) == len(files) == n_images):
        out.append(f"{dest.name}: {n_images} reported, {len(rows)} rows, {len(files)} files")
    for r in rows:
        p = dest / r["path"]
        if not p.is_file() or sha(p) != r["sha256"]:
            out.append(f"{dest.name}: {r['path']} missing or not the listed bytes")
            break
    return out


def _cheap_scan(ws: object) -> list[str]:
    """The scan's snapshot logic without the model: pin one version, read every file of that snapshot
    under the shared lock (as embedding does), compute pixel statistics, check the frames agree."""
    from cleaning.review.analysis import load_or_compute_pixels

    out = []
    with ws.lock.hold("scan", exclusive=False, wait=120), ws.pinned() as snap:  # type: ignore[attr-defined]
        df = ws.items_frame(include_deleted=False)  # type: ignore[attr-defined]
        stats, thumbs, errors = load_or_compute_pixels(ws, df)  # type: ignore[arg-type]
        if not (len(stats) == len(thumbs) == len(df)):
            out.append(f"scan: {len(stats)} stats, {len(thumbs)} thumbnails, {len(df)} images")
        if errors:
            out.append(f"scan: {len(errors)} files unreadable mid-scan, e.g. {next(iter(errors.values()))}")
        for p, s in zip(df["abs_path"], df["sha256"]):
            if not Path(p).is_file() or sha(Path(p)) != s:
                out.append(f"scan: {p} not where the snapshot says")
                break
        again = ws.items_frame(include_deleted=False)  # type: ignore[attr-defined]
        if list(again["item_id"]) != list(df["item_id"]) or list(again["label"]) != list(df["label"]):
            out.append("scan: the pinned snapshot changed under the scan")
        if snap.version != ws.version_key():  # type: ignore[attr-defined]
            out.append("scan: version label differs from the snapshot")
    return out


# ---- the run ---------------------------------------------------------------------------------------
@dataclass
class StressResult:
    n_images: int
    processes: int
    seconds: float
    operations: Counter[str] = field(default_factory=Counter)
    decisions: int = 0
    files_checked: int = 0
    exports_checked: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        ops = ", ".join(f"{k} {v}" for k, v in sorted(self.operations.items()))
        return (f"{self.processes} processes, {self.seconds:.0f} s, {self.n_images} images: {ops}; "
                f"{self.decisions} decision rows; {self.files_checked} files and {self.exports_checked} exports "
                f"checked; {len(self.problems)} problems")


def run_stress(base: Path, n_images: int = 1500, seconds: float = 15.0,
               workers: dict[str, int] | None = None) -> StressResult:
    """Build the data set, run the workers for ``seconds``, settle, check; see the module docstring."""
    from cleaning.data.files import apply_decisions
    from cleaning.data.workspace import Workspace
    from tests.hostile import make_image_tree

    workers = workers or {"decide": 2, "apply": 1, "export": 1, "rescan": 1, "scan": 1}
    root = base / "ds"
    per = n_images // 4
    make_image_tree(root, {"cat": per, "dog": per, "bird": per, "fish": n_images - 3 * per}, size=32, seed=1)
    before = file_hashes(root)
    ws = Workspace.open(root)
    res = StressResult(n_images, sum(workers.values()), seconds)
    out = base / "out"
    out.mkdir()
    until = time.time() + seconds + 3  # the workers take ~2-3 s to start
    procs = []
    t0 = time.monotonic()
    for kind, count in workers.items():
        for i in range(count):
            report = out / f"{kind}-{i}.json"
            procs.append((kind, report, subprocess.Popen(
                [sys.executable, "-m", "tests.stress", kind, str(root), str(until), str(100 * i + len(procs)),
                 str(out), str(report)], cwd=REPO, stderr=subprocess.PIPE, text=True)))
    decided = 0
    for kind, report, p in procs:
        _, err = p.communicate(timeout=seconds + GRACE + 300)
        if p.returncode != 0:
            res.problems.append(f"{kind} worker exited {p.returncode}: {err.strip().splitlines()[-1:]}")
            continue
        stats = json.loads(report.read_text())
        res.operations[kind] += int(stats["ops"])
        res.problems += [str(x) for x in stats["problems"]]
        if kind == "export":
            res.exports_checked += int(stats["ops"])
        decided += int(stats["decided"])
    res.seconds = time.monotonic() - t0
    # settle: one more apply so ROOT matches the decisions, then check everything
    ws = Workspace.open(root)
    apply_decisions(ws)
    rep = ws.refresh()
    after = file_hashes(root, ws.quarantine_dir)
    res.files_checked = sum(after.values())
    if after != before:
        res.problems.append(f"files: {sum((before - after).values())} lost, {sum((after - before).values())} extra")
    res.problems += _check_store(ws, rep, n_images)
    res.decisions = len(ws.store.history())
    batches = ws.store.query("SELECT COUNT(DISTINCT batch) FROM decisions")[0][0]
    if batches != decided:
        res.problems.append(f"history: {batches} batches in the store, {decided} recorded by the workers")
    return res


def _check_store(ws: object, rep: object, n_images: int) -> list[str]:
    st = ws.store  # type: ignore[attr-defined]
    out = []
    n = st.query("SELECT COUNT(*) FROM items")[0][0]
    if n != n_images:
        out.append(f"store: {n} item rows for {n_images} images")
    dup = st.query("SELECT COUNT(*) FROM (SELECT path FROM items WHERE location='root' GROUP BY path HAVING COUNT(*) > 1)")
    if dup[0][0]:
        out.append(f"store: {dup[0][0]} paths held by two items")
    missing = st.query("SELECT COUNT(*) FROM items WHERE location='missing'")[0][0]
    if missing:
        out.append(f"store: {missing} items falsely 'missing'")
    if rep.new or rep.missing or rep.moved:  # type: ignore[attr-defined]
        out.append(f"rescan after the run: {len(rep.new)} new, {len(rep.missing)} missing, {len(rep.moved)} moved")  # type: ignore[attr-defined]
    disk = st.query("SELECT COUNT(*) FROM decisions WHERE source='disk'")[0][0]
    if disk:
        out.append(f"history: {disk} relabels invented by a rescan that saw an apply's moves as hand moves")
    pending = st.query("SELECT COUNT(*) FROM file_ops WHERE status='pending'")[0][0]
    if pending:
        out.append(f"journal: {pending} moves still pending")
    df = ws.items_frame()  # type: ignore[attr-defined]
    cur = st.current()
    for r in df.itertuples():
        p = Path(r.abs_path)
        if not p.is_file() or sha(p) != r.sha256:
            out.append(f"store: {r.path} is not where the store says")
            break
        want = "quarantine" if cur[r.item_id].deleted else "root"
        if r.location != want or (want == "root" and r.folder_label != r.label):
            out.append(f"apply: {r.path} is in {r.location}/{r.folder_label}, decisions say {want}/{r.label}")
            break
    batches = st.query("SELECT batch, COUNT(DISTINCT state) s FROM decisions GROUP BY batch HAVING s > 1")
    if batches:
        out.append(f"history: {len(batches)} batches partly undone")
    return out


if __name__ == "__main__":
    kind, root, until, seed, out, report = sys.argv[1:7]
    result = _worker(kind, Path(root), float(until), int(seed), Path(out))
    Path(report).write_text(json.dumps(result))
