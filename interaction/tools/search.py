"""Search as the reasoner's web: an embedded SQLite FTS5 index ranked by BM25, and its two sandboxed tools.

`search(query)` returns the top hits (id, title, snippet); `open(id)` the passage. The index holds the
project's default collection (`documents.default_collection`, built into an index file on first use) and,
optionally, a folder of the user's own Markdown, text and HTML files, indexed incrementally: a file whose
size or modification time changed is read again, a deleted one is dropped.

The sandbox: a query is plain words. FTS5's own syntax (quotes, `*`, `^`, `:`, parentheses, the operators
NEAR, AND, OR, NOT), SQL fragments (`;`, `--`, `=`, upper-case SQL keywords) and over-long queries are
refused with a `ToolError` that says why; the words that pass are quoted one by one and bound as a parameter,
never spliced into SQL. A query that runs past its time limit is interrupted; results are cut to a size.
"""
from __future__ import annotations

import contextlib
import hashlib
import html.parser
import json
import os
import re
import sqlite3
import threading
import time
from pathlib import Path

from interaction.tools import documents
from interaction.tools.errors import ToolError

MAX_QUERY = 200  # characters
MAX_HITS = 5
MAX_RESULT = 700  # characters of a search result
MAX_PASSAGE = 1200  # characters of an opened document
TIME_LIMIT_S = 0.5
MAX_FILE_BYTES = 1 << 20  # a user's file is read up to this size
SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm")

_ALLOWED = re.compile(r"[\w\s',.?!-]*")
_OPERATORS = {"NEAR", "AND", "OR", "NOT", "SELECT", "UNION", "DROP", "INSERT", "DELETE", "UPDATE", "FROM", "WHERE",
              "TABLE", "PRAGMA", "ATTACH"}
_STOPWORDS = frozenset("a an and are as at be by did do does for from how in is it of on or the to was were what when "
                       "where which who whom why with".split())
_DOC_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,79}")
_SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS docs USING fts5(title, body, tokenize='porter unicode61');
CREATE TABLE IF NOT EXISTS ids (doc_id TEXT PRIMARY KEY, doc_rowid INTEGER UNIQUE);
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, doc_id TEXT);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


def match_expression(query: str) -> str:
    """The FTS5 expression for a plain-words query (each word quoted, any may match); ToolError if refused."""
    if not isinstance(query, str) or not query.strip():
        raise ToolError("empty search query; say what to look for in plain words")
    if len(query) > MAX_QUERY:
        raise ToolError(f"search query longer than {MAX_QUERY} characters")
    bad = sorted(set(_ALLOWED.sub("", query)) | ({"--"} if "--" in query else set()))
    if bad:
        raise ToolError(f"search queries are plain words; not allowed: {' '.join(bad)}")
    operators = sorted(set(re.findall(r"\b[A-Z]+\b", query)) & _OPERATORS)
    if operators:
        raise ToolError(f"search queries are plain words; operators are not allowed: {' '.join(operators)}")
    words = [w for w in re.findall(r"\w+", query.lower()) if w not in _STOPWORDS] or re.findall(r"\w+", query.lower())
    if not words:
        raise ToolError("search query has no words")
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words))


class SearchIndex:
    """An FTS5 index in one SQLite file (or in memory with path ':memory:'). Safe to share between threads:
    each call opens its own connection (a file index) or holds a lock (in memory)."""

    def __init__(self, path: str | os.PathLike = ":memory:"):
        self.path = str(path)
        self._lock = threading.Lock()
        self._memory = sqlite3.connect(":memory:", check_same_thread=False) if self.path == ":memory:" else None
        if self._memory is None:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self):
        if self._memory is not None:
            with self._lock, self._memory:
                yield self._memory
            return
        db = sqlite3.connect(self.path, timeout=5.0)
        try:
            with db:
                yield db
        finally:
            db.close()

    # ------------------------------------------------------------------ writing
    def add(self, docs, source: str = "") -> None:
        """Adds (or replaces) documents; `source` is a label kept in the meta table (e.g. a fingerprint)."""
        with self._connect() as db:
            for d in docs:
                _put(db, d)
            if source:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('source', ?)", (source,))

    def source(self) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'source'").fetchone()
        return row[0] if row else None

    def sync_folder(self, folder: str | os.PathLike) -> dict[str, int]:
        """Brings the index up to date with the Markdown, text and HTML files under `folder`: new and changed
        files are (re-)indexed, deleted ones dropped. Returns the counts {added, updated, removed, unchanged}."""
        root = Path(folder)
        if not root.is_dir():
            raise FileNotFoundError(f"--docs={folder} is not a folder of documents")
        seen, counts = {}, dict(added=0, updated=0, removed=0, unchanged=0)
        for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES):
            st = path.stat()
            seen[str(path.resolve())] = (path, st.st_size, st.st_mtime_ns)
        with self._connect() as db:
            known = {p: (s, m, i) for p, s, m, i in db.execute("SELECT path, size, mtime_ns, doc_id FROM files")}
            for key in set(known) - set(seen):
                _drop(db, known[key][2])
                db.execute("DELETE FROM files WHERE path = ?", (key,))
                counts["removed"] += 1
            for key, (path, size, mtime) in seen.items():
                if key in known and known[key][:2] == (size, mtime):
                    counts["unchanged"] += 1
                    continue
                doc = read_document(path, root)
                _put(db, doc)
                db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)", (key, size, mtime, doc.id))
                counts["updated" if key in known else "added"] += 1
        return counts

    # ------------------------------------------------------------------ reading (the tools)
    def search(self, query: str, hits: int = MAX_HITS) -> str:
        """The top hits as lines 'id | title | snippet', best first; 'no results' when nothing matches."""
        expression = match_expression(query)
        rows = self._timed("SELECT (SELECT doc_id FROM ids WHERE doc_rowid = docs.rowid), title, "
                           "snippet(docs, 1, '', '', '...', 16) FROM docs WHERE docs MATCH ? "
                           "ORDER BY bm25(docs, 4.0, 1.0) LIMIT ?", (expression, hits))
        if not rows:
            return "no results"
        return "\n".join(f"{i} | {t} | {s}" for i, t, s in rows)[:MAX_RESULT]

    def open(self, doc_id: str) -> str:
        """A document's title and text (cut to `MAX_PASSAGE` characters)."""
        doc_id = doc_id.strip()
        if not _DOC_ID.fullmatch(doc_id):
            raise ToolError(f"not a document id: {doc_id[:40]!r} (ids are lower-case letters, digits and hyphens, "
                            "as search returns them)")
        rows = self._timed("SELECT title, body FROM docs WHERE rowid = (SELECT doc_rowid FROM ids WHERE doc_id = ?)",
                           (doc_id,))
        if not rows:
            raise ToolError(f"no document {doc_id!r}")
        title, body = rows[0]
        return f"{title}: {body}"[:MAX_PASSAGE]

    def __len__(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT count(*) FROM docs").fetchone()[0]

    def _timed(self, sql: str, params: tuple) -> list[tuple]:
        deadline = time.monotonic() + TIME_LIMIT_S
        with self._connect() as db:
            db.set_progress_handler(lambda: time.monotonic() > deadline, 1000)
            try:
                return db.execute(sql, params).fetchall()
            except sqlite3.OperationalError as err:
                if "interrupted" in str(err):
                    raise ToolError(f"search took longer than {TIME_LIMIT_S} s; ask something narrower") from None
                raise ToolError(f"the search index refused the query ({err})") from None
            finally:
                db.set_progress_handler(None, 0)


def _drop(db: sqlite3.Connection, doc_id: str) -> None:
    row = db.execute("SELECT doc_rowid FROM ids WHERE doc_id = ?", (doc_id,)).fetchone()
    if row:
        db.execute("DELETE FROM docs WHERE rowid = ?", row)
        db.execute("DELETE FROM ids WHERE doc_id = ?", (doc_id,))


def _put(db: sqlite3.Connection, doc: documents.Document) -> None:
    """Adds or replaces one document (the id table maps ids to FTS rows, so a replacement is no table scan)."""
    _drop(db, doc.id)
    rowid = db.execute("INSERT INTO docs (title, body) VALUES (?, ?)", (doc.title, doc.body)).lastrowid
    db.execute("INSERT INTO ids VALUES (?, ?)", (doc.id, rowid))


class _Text(html.parser.HTMLParser):
    """The visible text of an HTML page and its <title> (scripts and styles dropped)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.title, self._skip, self._in_title = [], "", 0, False

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("script", "style")
        self._in_title |= tag == "title"

    def handle_endtag(self, tag):
        self._skip -= tag in ("script", "style") and self._skip > 0
        self._in_title &= tag != "title"

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        elif not self._skip:
            self.parts.append(data)


def read_document(path: Path, root: Path) -> documents.Document:
    """A user's file as a document: HTML reduced to its text, the title from <title>, a first Markdown heading
    or the file name; the id from the path under `root`."""
    with open(path, "rb") as f:
        raw = f.read(MAX_FILE_BYTES).decode("utf-8", errors="replace")
    relative = path.resolve().relative_to(root.resolve()).as_posix()
    title = path.stem.replace("_", " ").replace("-", " ")
    if path.suffix.lower() in (".html", ".htm"):
        parser = _Text()
        parser.feed(raw)
        body, title = " ".join(parser.parts), parser.title.strip() or title
    else:
        body = raw
        if heading := re.search(r"^#{1,6}\s+(.+)$", raw, re.MULTILINE):
            title = heading.group(1).strip()
    slug = re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-")[:40] or "file"
    return documents.Document(f"f-{slug}-{hashlib.sha1(relative.encode()).hexdigest()[:8]}", title[:200],
                              " ".join(body.split()))


def _cache_dir() -> Path:
    return Path(os.environ.get("INTERACTION_CACHE", Path.home() / ".cache" / "interaction"))


_indexes: dict[tuple[int, str], SearchIndex] = {}
_indexes_lock = threading.Lock()


def default_index(seed: int = 0) -> SearchIndex:
    """The index the `search` and `open` tools read: the default collection, plus the user's folder named by
    the environment variable `INTERACTION_DOCS` (set by `--docs=DIR`; it reaches reasoners in their own
    processes too), synced on first use in a process. Built into `~/.cache/interaction/search/` (or
    `$INTERACTION_CACHE/search/`), one file per collection and folder, rebuilt when the collection changes."""
    docs = os.environ.get("INTERACTION_DOCS", "")
    with _indexes_lock:
        if (seed, docs) not in _indexes:
            collection = documents.default_collection(seed)
            fingerprint = hashlib.sha1(json.dumps([d.__dict__ for d in collection]).encode()).hexdigest()[:16]
            name = f"default-{seed}-{fingerprint}"
            if docs:
                name += "-docs-" + hashlib.sha1(str(Path(docs).resolve()).encode()).hexdigest()[:12]
            index = SearchIndex(_cache_dir() / "search" / f"{name}.sqlite")
            if index.source() != fingerprint:
                index.add(collection, source=fingerprint)
            if docs:
                index.sync_folder(docs)
            _indexes[seed, docs] = index
        return _indexes[seed, docs]
