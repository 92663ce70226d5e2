"""BM25 inside PostgreSQL, from the analyser's tokens.

Each chunk's stored tokens become postings ``(term, chunk, tf, length)`` (derived in the server);
``terms`` keeps each term's
document frequency and ``gen_stats`` the chunk count and total length of every live generation.
A query is one SQL statement computing the same BM25 as the embedded store's bm25s index (the
Lucene variant, k1 = 1.2, b = 0.75; ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))``, a term repeated
in the query counted as often as it occurs), on the statistics of the view's generation: the
document frequency of a term at generation ``g`` is its current one less its postings in chunks
added after ``g``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

K1 = 1.2
B = 0.75


def add_postings_sql(schema: str) -> str:
    """Postings and document frequencies of the chunks with rowids in ``[%(lo)s, %(hi)s]``,
    derived in the server from their stored tokens (term frequencies counted chunk by chunk: one
    grouping over the whole batch spills to disk), inserted in key order: into an existing index
    that touches each leaf page once, not once per posting (~25% faster incremental writes)."""
    s = schema
    return f"""
WITH added AS (
    INSERT INTO {s}.postings (term, chunk, tf, length)
    SELECT t.term, c.rowid, t.tf, cardinality(c.tokens)
    FROM {s}.chunks c
    CROSS JOIN LATERAL (SELECT u.term, count(*) AS tf FROM unnest(c.tokens) AS u(term) GROUP BY u.term) t
    WHERE c.rowid BETWEEN %(lo)s AND %(hi)s
    ORDER BY t.term, c.rowid
    RETURNING term)
INSERT INTO {s}.terms SELECT term, count(*) FROM added GROUP BY term ORDER BY term
ON CONFLICT (term) DO UPDATE SET df = terms.df + excluded.df"""


def remove_postings_sql(schema: str) -> str:
    """Remove the postings of the sources ``%(sources)s`` and lower their terms' document
    frequencies (run before the sources' chunks are deleted). Terms left at df 0 stay: they
    match nothing."""
    s = schema
    return f"""
WITH gone AS (
    SELECT DISTINCT c.rowid, t.term
    FROM {s}.chunks c JOIN {s}.documents d ON d.rowid = c.doc_rowid
    CROSS JOIN LATERAL unnest(c.tokens) AS t(term)
    WHERE d.source = ANY(%(sources)s)),
removed AS (
    DELETE FROM {s}.postings p USING gone WHERE p.term = gone.term AND p.chunk = gone.rowid
    RETURNING p.term)
UPDATE {s}.terms t SET df = t.df - x.n
FROM (SELECT term, count(*) AS n FROM removed GROUP BY term) x WHERE t.term = x.term"""


def query_terms(tokens: Sequence[str]) -> tuple[list[str], list[int]]:
    """Distinct query terms and how often each occurs in the query."""
    counts = Counter(tokens)
    return list(counts), list(counts.values())


def bm25_sql(schema: str, scope_sql: str) -> str:
    """The ranking statement. Parameters: ``terms``, ``qtf``, ``gen``, ``n`` and the scope's.
    ``scope_sql`` is a condition on the chunk rowid ``p.chunk`` (``TRUE`` for none). Returns
    ``(rowid, score, horizon)``, best first, ties by chunk id in code-point order (as in every
    store, whatever the database's collation); no rows for an unknown generation."""
    s = schema
    return f"""
WITH st AS (
    SELECT g.max_rowid, g.chunks, g.total_length::float8 / greatest(g.chunks, 1) AS avg_len
    FROM {s}.gen_stats g WHERE g.gen = %(gen)s),
q AS (SELECT * FROM unnest(%(terms)s::text[], %(qtf)s::int[]) AS q(term, qtf)),
d AS MATERIALIZED (
    SELECT q.term, q.qtf, t.df - (SELECT count(*) FROM {s}.postings p
                                  WHERE p.term = q.term AND p.chunk > st.max_rowid) AS df
    FROM q JOIN {s}.terms t ON t.term = q.term CROSS JOIN st),
w AS MATERIALIZED (
    SELECT d.term, d.qtf * ln(1 + (st.chunks - d.df + 0.5) / (d.df + 0.5)) AS idf
    FROM d CROSS JOIN st WHERE d.df > 0),
scored AS MATERIALIZED (
    SELECT p.chunk, sum(w.idf * p.tf / (p.tf + {K1} * (1 - {B} + {B} * p.length / st.avg_len)))::real AS score
    FROM w JOIN {s}.postings p ON p.term = w.term CROSS JOIN st
    WHERE p.chunk <= st.max_rowid AND ({scope_sql})
    GROUP BY p.chunk),
cut AS (SELECT score FROM scored ORDER BY score DESC LIMIT 1 OFFSET %(n)s - 1)
SELECT s.chunk, s.score, (SELECT horizon FROM {s}.state)
FROM scored s JOIN {s}.chunks c ON c.rowid = s.chunk
WHERE s.score > 0 AND s.score >= coalesce((SELECT score FROM cut), '-Infinity'::real)
ORDER BY s.score DESC, c.id COLLATE "C"
LIMIT %(n)s"""
