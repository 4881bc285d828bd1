#!/usr/bin/env python3
"""Save -> searchable latency under `cairn watch`, on a generated folder of N text files.

What it measures, all on this machine in one run:
  1. the first index of the folder (wall time, passages embedded);
  2. an unchanged rescan of it (`cairn index` with nothing changed): wall time, embeddings (0);
  3. with `cairn --json watch` running: M edits to random files, each saved atomically
     (temp file + rename, as editors do); latency = from the rename to the end of the pass
     that committed the new passages (the point where `cairn search` returns them),
     p50 / p95 / max;
  4. the reference without a watcher: the same kind of edit followed by a full `cairn index`
     (what a user or a cron job would otherwise run), timed the same way.
Then it checks one edited phrase is found by `cairn search`, and runs `cairn check --disk`.

Usage: scripts/bench_watch.py CAIRN_BINARY [--files 10000] [--edits 40]
"""
import argparse, json, os, random, shutil, statistics, subprocess, sys, tempfile, threading, time

WORDS = ("harbour tide glacier orchard comet ferry lichen bridge beacon meadow quarry canal "
         "lantern thicket estuary summit granary mill sluice heron otter marmot kestrel").split()


def note(rng, i, rev=0):
    words = " ".join(rng.choice(WORDS) for _ in range(30))
    return f"Note {i} revision {rev}. Observations: {words}. Reference code N{i}R{rev}.\n"


def pct(xs, p):
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cairn")
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--edits", type=int, default=40)
    ap.add_argument("--reference-edits", type=int, default=5)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="cairn-watch-bench.")
    docs, data = os.path.join(work, "docs"), os.path.join(work, "data")
    rng = random.Random(7)
    for d in range(a.files // 100 + 1):
        os.makedirs(os.path.join(docs, f"dir{d:03}"), exist_ok=True)
    paths = []
    for i in range(a.files):
        p = os.path.join(docs, f"dir{i // 100:03}", f"note {i}.txt")
        with open(p, "w") as f:
            f.write(note(rng, i))
        paths.append(p)
    cairn = [a.cairn, "--data-dir", data]
    subprocess.run(cairn + ["add", docs], check=True, stdout=subprocess.DEVNULL)

    def index():
        t = time.time()
        out = subprocess.run(cairn + ["--json", "index"], check=True, capture_output=True, text=True).stdout
        return time.time() - t, json.loads(out)

    wall, r = index()
    print(f"files: {a.files}; first index: {wall:.1f} s wall, {r['chunks_embedded']} passages embedded")
    wall, r = index()
    print(f"unchanged rescan: {wall:.2f} s wall ({r['seconds']:.2f} s in the engine), "
          f"{r['unchanged']} unchanged, {r['chunks_embedded']} embedded")

    def save(i, rev):
        p = paths[i]
        tmp = os.path.join(os.path.dirname(p), f".{os.path.basename(p)}.tmp")
        with open(tmp, "w") as f:
            f.write(note(rng, i, rev))
        t = time.time()
        os.rename(tmp, p)
        return p, t

    # Reference: no watcher, a full `cairn index` after each save.
    ref = []
    for k in range(a.reference_edits):
        p, t = save(rng.randrange(a.files), 1000 + k)
        _, r = index()
        assert r["indexed"] == 1, r
        ref.append(time.time() - t)

    # The watcher.
    proc = subprocess.Popen(cairn + ["--json", "watch", "--rescan-minutes", "0"], stdout=subprocess.PIPE, text=True)
    done = {}  # path -> time its pass ended
    ready = threading.Event()
    lock = threading.Lock()

    def reader():
        current = []
        for line in proc.stdout:
            now = time.time()
            e = json.loads(line)
            kind = e["event"]
            if kind == "synced":
                with lock:
                    for p in current:
                        done[p] = now
                current = []
                ready.set()
            elif kind == "index" and e["progress"]["event"] == "file_indexed":
                current.append(e["progress"]["path"])

    threading.Thread(target=reader, daemon=True).start()
    ready.wait(600)
    lat = []
    for k in range(a.edits):
        i = rng.randrange(a.files)
        p, t = save(i, 2000 + k)
        deadline = time.time() + 120
        while time.time() < deadline:
            with lock:
                if done.get(p, 0) >= t:
                    lat.append(done[p] - t)
                    break
            time.sleep(0.005)
        else:
            print(f"edit {k}: {p} not indexed within 120 s", file=sys.stderr)
        time.sleep(0.3)
    proc.terminate()
    proc.wait(30)
    print(f"save -> searchable with `cairn watch` ({len(lat)} edits): p50 {statistics.median(lat):.2f} s, "
          f"p95 {pct(lat, 95):.2f} s, max {max(lat):.2f} s")
    print(f"reference, save then full `cairn index` ({len(ref)} edits): p50 {statistics.median(ref):.2f} s, "
          f"max {max(ref):.2f} s")
    out = subprocess.run(cairn + ["--json", "search", f"N{i}R{2000 + a.edits - 1}", "-k", "3"],
                         capture_output=True, text=True, check=True).stdout
    hits = json.loads(out)["hits"]
    rank = next((n + 1 for n, h in enumerate(hits) if h["path"] == p), None)
    print(f"last edit's new text found by `cairn search N{i}R{2000 + a.edits - 1} -k 3`: rank {rank}")
    c = subprocess.run(cairn + ["--json", "check", "--disk"], capture_output=True, text=True)
    c = json.loads(c.stdout)
    print(f"check --disk: {c['files_indexed']} indexed, lost {len(c['lost'])}, duplicate {c['duplicate_chunks']}, "
          f"orphaned {c['orphaned_chunks']}, stale {len(c['stale'])}")
    if a.keep:
        print("kept", work)
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
