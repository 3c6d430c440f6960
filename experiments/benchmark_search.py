r"""The search tool's index: build time and query latency on the default collection and on a folder of
10,000 generated documents. A table and JSON.

  python -m experiments.benchmark_search [--folder_docs=10000] [--out=experiments/results/search.json]

Default collection: built into an index file from scratch, then every gazetteer question of the collection
asked once (the share whose first hit is the article that answers it is printed beside the latency).
Folder: `--folder_docs` gazetteer articles written as Markdown files, indexed (`sync_folder`) from scratch,
synced again unchanged, and again after 1% of the files changed; then as many questions asked.
"""
import tempfile
import time
from pathlib import Path

import numpy as np
from absl import app, flags

from experiments.common import write_results
from interaction.tools import documents, search

_FOLDER_DOCS = flags.DEFINE_integer("folder_docs", 10_000, "generated documents in the folder case")
_OUT = flags.DEFINE_string("out", "experiments/results/search.json", "where to write the JSON results")


def _timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _queries(index: search.SearchIndex, questions, ids) -> dict:
    latencies, first = [], []
    for question, doc_id in zip(questions, ids):
        seconds, hits = _timed(lambda q=question: index.search(q))
        latencies.append(seconds * 1e3)
        first.append(hits.split(" | ")[0] == doc_id)
    ms = np.asarray(latencies)
    return dict(queries=len(ms), p50_ms=float(np.percentile(ms, 50)), p99_ms=float(np.percentile(ms, 99)),
                first_hit_right=float(np.mean(first)))


def main(argv):
    del argv
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        collection = documents.default_collection()
        index = search.SearchIndex(Path(tmp) / "default.sqlite")
        build_s, _ = _timed(lambda: index.add(collection))
        qs = documents.search_questions()
        results["default"] = dict(documents=len(index), build_s=build_s,
                                  **_queries(index, [q.question for q in qs], [q.doc_id for q in qs]))

        n = _FOLDER_DOCS.value
        folder = Path(tmp) / "docs"
        folder.mkdir()
        docs, qs = documents.gazetteer(seed=7, count=n)
        for d in docs:
            (folder / f"{d.id}.md").write_text(f"# {d.title}\n\n{d.body}\n")
        index = search.SearchIndex(Path(tmp) / "folder.sqlite")
        build_s, _ = _timed(lambda: index.sync_folder(folder))
        unchanged_s, _ = _timed(lambda: index.sync_folder(folder))
        for d in docs[:: 100]:
            (folder / f"{d.id}.md").write_text(f"# {d.title}\n\n{d.body} Revised.\n")
        changed_s, counts = _timed(lambda: index.sync_folder(folder))
        ids = {d.id: search.read_document(folder / f"{d.id}.md", folder).id for d in docs}
        asked = qs[:: max(1, n // 1000)]
        results["folder"] = dict(documents=len(index), build_s=build_s, resync_unchanged_s=unchanged_s,
                                 resync_1pct_changed_s=changed_s, changed=counts["updated"],
                                 **_queries(index, [q.question for q in asked], [ids[q.doc_id] for q in asked]))

    print(f"{'collection':<12}{'documents':>10}{'build s':>9}{'resync s':>10}{'1% changed s':>14}{'queries':>9}"
          f"{'p50 ms':>8}{'p99 ms':>8}{'first hit right':>17}")
    for name, r in results.items():
        print(f"{name:<12}{r['documents']:>10}{r['build_s']:>9.2f}{r.get('resync_unchanged_s', float('nan')):>10.2f}"
              f"{r.get('resync_1pct_changed_s', float('nan')):>14.2f}{r['queries']:>9}{r['p50_ms']:>8.2f}"
              f"{r['p99_ms']:>8.2f}{r['first_hit_right']:>17.2f}")
    write_results(_OUT.value, results)


if __name__ == "__main__":
    app.run(main)
