"""Source-file hit rate of `cairn search` on the Docugami SEC 10-Q questions.

For each question in qna_data_mini.csv, runs `cairn --json search QUESTION -k 5` against an
index of the filings and checks which files the top 5 passages come from against the
question's "Source Docs" glob (e.g. `*AAPL*`). Reports, per question and overall:
  hit       - at least one top-5 passage comes from an expected file;
  precision - share of the top-5 passages that come from expected files.
Usage: eval_docugami.py CAIRN_BINARY DATA_DIR QNA_CSV
"""

import csv
import fnmatch
import json
import os
import subprocess
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    cairn, data_dir, qna = sys.argv[1:]
    rows = list(csv.DictReader(open(qna, encoding="utf-8-sig")))
    hits = 0
    precision_sum = 0.0
    for i, row in enumerate(rows, 1):
        question, pattern = row["Question"], row["Source Docs"].strip()
        out = subprocess.run([cairn, "--json", "--data-dir", data_dir, "search", question, "-k", "5"],
                             capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"cairn search failed for {question!r}: {out.stdout}{out.stderr}")
        hits_shown = json.loads(out.stdout)["hits"]
        files = [os.path.basename(h["path"]) for h in hits_shown]
        good = [f for f in files if fnmatch.fnmatch(f, pattern)]
        hit = bool(good)
        hits += hit
        precision = len(good) / len(files) if files else 0.0
        precision_sum += precision
        print(f"{i}. {'HIT ' if hit else 'MISS'} {pattern:<16} p@5={precision:.1f}  {question[:70]}")
        for h in hits_shown:
            print(f"      {os.path.basename(h['path'])} p.{h['anchor'].get('page')}")
    n = len(rows)
    print(f"\nhit rate: {hits}/{n} = {hits / n:.2f}; mean precision@5 of source files: {precision_sum / n:.2f}")


if __name__ == "__main__":
    main()
