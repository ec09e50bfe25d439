"""The near-duplicate step alone at 100k, by parts (CPU seconds), for before / after comparisons (scale.md §14b).

    nice -n 10 env PYTHONPATH=$PWD python bench/dupstep_100k.py TAG [--arrays DIR] [--tables PKL] [--cprofile]

``--arrays``: a folder with ``x.npy`` (N×1280 float32 embeddings), ``thumbs.npy`` (N×32×32×3 uint8), ``sizes.npy``
(N×2), ``sha.npy``, ``phash.npy`` of one scanned tree (the 100k real-backbone state's, dumped once; default
``/tmp/nd``). ``--tables``: reuse the neighbour tables of an earlier run's pickle, so the pixel comparison and the
decisions run on *identical* candidates (the HNSW build is multi-threaded, so two fresh runs differ by a few pairs).
Writes ``/tmp/dupstep-TAG.pkl`` (pairs, groups, tables, pair similarities).
"""
import argparse
import cProfile
import pickle
import pstats
import resource
import time

import numpy as np

import cleaning.detect.ann as A
import cleaning.detect.duplicates as D

ap = argparse.ArgumentParser()
ap.add_argument("tag")
ap.add_argument("--arrays", default="/tmp/nd")
ap.add_argument("--tables")
ap.add_argument("--cprofile", action="store_true")
args = ap.parse_args()
d = args.arrays
x = np.load(f"{d}/x.npy")
thumbs, sizes = np.load(f"{d}/thumbs.npy"), np.load(f"{d}/sizes.npy")
sha, ph = list(np.load(f"{d}/sha.npy")), list(np.load(f"{d}/phash.npy"))
T: dict[str, list[float]] = {}


def wrap(mod: object, name: str) -> None:
    f = getattr(mod, name)

    def g(*a: object, **k: object) -> object:
        t = time.process_time()
        r = f(*a, **k)
        T.setdefault(name, [0.0, 0])
        T[name][0] += time.process_time() - t
        T[name][1] += 1
        return r
    setattr(mod, name, g)


for n in ("compute_pixel_similarity", "low_res_similarity", "coarse_descriptors", "_distinctive", "approximate_table",
          "table_neighbours"):
    wrap(D, n)
for n in ("_query", "build_index", "_fit_projection", "_project", "_save"):
    wrap(A, n)
if args.tables:
    B = pickle.load(open(args.tables, "rb"))
    tabs = [B["emb"], B["coarse"]]
    D._table = lambda x_, cid_, kept, state: (tabs.pop(0), B["rc"], None)
prof = cProfile.Profile() if args.cprofile else None
t0 = time.process_time()
if prof:
    prof.enable()
res = D.compute_duplicate_groups(x, sha, ph, thumbs, sizes=sizes)
if prof:
    prof.disable()
print(f"{args.tag}: near-duplicate step {time.process_time() - t0:.1f} CPU-s")
for k, v in T.items():
    print(f"  {k}: {v[0]:.1f} CPU-s ({v[1]} calls)")
m = res.memo
print(f"  pairs {len(res.pairs)}, compared pairs {len(m.pairs.pix)}, groups {len(res.members())}, "
      f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
pickle.dump({"pairs": res.pairs, "group": res.group, "emb": m.emb, "coarse": m.coarse, "rc": m.row_content,
             "pa": m.pairs.a, "pb": m.pairs.b, "pix": m.pairs.pix}, open(f"/tmp/dupstep-{args.tag}.pkl", "wb"))
if prof:
    pstats.Stats(prof).sort_stats("tottime").print_stats(20)
