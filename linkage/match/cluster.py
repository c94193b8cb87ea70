"""Clustering pairs into persons, keeping apart records that cannot be one person.

Connected components join every pair kept. A component in which any two records conflict
(two different valid UPNs, neither the other's former UPN; clearly different forenames; or two
records of one LA return, which lists each child once, unless the two share a UPN: a return
that lists one child twice) is rebuilt greedily: its pairs are
added strongest first, and a pair that would join conflicting records is skipped. Twins, who
share a date of birth, sex, address and surname, stay apart this way.

A link that adds records to a spine anchors the records already in it (``anchors``): the
records of one person there are joined first, whatever else they say, and records of two
persons there are never joined, so existing persons keep their records and only gain new
ones; a new record joins at most one of them.

A reviewer's decisions (``decided``) are constraints: a must-link is an edge joined before any
other, whatever the records say; a cannot-link is a conflict between its two records.

Records are numbered by ``rid`` (their row in unique-id order). Components and the search for
conflicts run on arrays and in SQL over all records; only the pairs of conflicting components
are walked in Python, so the cost follows the conflicts, not the size of the data.
"""

from functools import lru_cache

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from linkage.match.components import connected_components
from linkage.match.model import linkage_schema, name_salt
from linkage.sources.schema import RECORD_KEY


def clustering_rules() -> dict:
    """The schema's ``clustering`` section: the forename veto (Dice below which two forenames
    of one salt are two persons; null for none), the sources whose files list each person
    once, and how close a record may be to another person before it is left alone."""
    return linkage_schema()["clustering"]


def _forename_conflict() -> float | None:
    return clustering_rules()["forename_conflict"]


def _one_per_person_sql() -> str:
    sources = clustering_rules()["one_record_per_person"] or ["-"]
    return ", ".join(f"'{s}'" for s in sources)


class _Identity:
    """What a group of records says about who it is: its UPNs, its forename filters (each
    with its salt), and its records in each LA return, with their UPNs (a return lists each
    child once; two of its records that share a UPN are one child listed twice)."""

    def __init__(self, upns: set, forenames: list, returns: dict,
                 anchors: frozenset = frozenset(), apart: frozenset = frozenset(),
                 decided: frozenset = frozenset()):
        self.upns, self.forenames, self.returns = upns, forenames, returns
        self.anchors = anchors  # the spine's person of these records, if they are in it
        # a reviewer's cannot-links: the records these may not join, and those of these
        # records that some cannot-link names (only they are looked up, so sets stay small)
        self.apart, self.decided = apart, decided

    def conflicts(self, other: "_Identity") -> bool:
        if self.apart & other.decided or other.apart & self.decided:
            return True
        if self.anchors and other.anchors:  # one person in the spine, or two
            return self.anchors != other.anchors
        if self.upns and other.upns and not self.upns & other.upns:
            return True
        for key, mine in self.returns.items():
            if any(a != b and not upns_a & upns_b for a, upns_a in mine
                   for b, upns_b in other.returns.get(key, ())):
                return True
        # forenames are compared only within one context (``_forename_veto``): one salt,
        # one surname; a record missing either is compared with none
        scores = [_dice(a, b) for salt_a, a in self.forenames for salt_b, b in other.forenames
                  if salt_a == salt_b and salt_a is not None]
        veto = _forename_conflict()
        return veto is not None and bool(scores) and max(scores) < veto

    def merged(self, other: "_Identity") -> "_Identity":
        forenames = self.forenames + [f for f in other.forenames if f not in self.forenames]
        returns = {key: self.returns.get(key, ()) + other.returns.get(key, ())
                   for key in self.returns.keys() | other.returns.keys()}
        return _Identity(self.upns | other.upns, forenames, returns,
                         self.anchors | other.anchors, self.apart | other.apart,
                         self.decided | other.decided)


@lru_cache(maxsize=100_000)
def _bits(bloom: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(bloom, dtype=np.uint8)).astype(bool)


def _dice(a: bytes | str, b: bytes | str) -> float:
    """Dice of two Bloom filters, or of two plaintext names' bigram sets (the baseline)."""
    if isinstance(a, str):
        x, y = _bigram_set(a), _bigram_set(b)
        return 2.0 * len(x & y) / (len(x) + len(y)) if x or y else 1.0
    x, y = _bits(a), _bits(b)
    total = x.sum() + y.sum()
    return 2.0 * (x & y).sum() / total if total else 1.0


@lru_cache(maxsize=100_000)
def _bigram_set(name: str) -> frozenset:
    padded = f"_{name}_"
    return frozenset(padded[i:i + 2] for i in range(len(padded) - 1))


def cluster(con: duckdb.DuckDBPyConnection, records: str, edges: str, size: int,
            anchors: str | None = None, must: str | None = None,
            cannot: str | None = None) -> np.ndarray:
    """A cluster number per record (by rid): the smallest rid in its cluster.

    ``records`` is a table with rid, source, provider, period, record_id and, where the
    sources carry them, upn, former_upn and forename (a BIT Bloom filter with the set-bit count
    and digest that ``run.derived_columns`` adds, or plaintext in the baseline); ``edges``
    has rid_l, rid_r, match_weight and prelinked for the pairs kept; ``anchors`` (rid, anchor)
    numbers the spine's person of each record already in it (``anchors.anchor_records``);
    ``must`` and ``cannot`` (rid_l, rid_r) are a reviewer's must-links and cannot-links
    (``decided``).
    """
    edges = _with_must_links(con, edges, must)
    pairs = con.execute(f"SELECT rid_l, rid_r FROM {edges}").fetchnumpy()
    components = connected_components(size, pairs["rid_l"], pairs["rid_r"])
    del pairs
    con.register("component_of", pa.table({"rid": np.arange(size, dtype=np.int64),
                                            "component": components}))
    columns = {row[0]: row[1] for row in con.execute(f"DESCRIBE {records}").fetchall()}
    flagged = _conflicting_components(con, records, columns, anchors, cannot)
    if not len(flagged):
        con.unregister("component_of")
        return components
    con.register("flagged", pa.table({"component": flagged}))
    members = _members(con, records, columns, cannot)
    # a cannot-link's own pair is no evidence for either record (nor makes one ambiguous)
    apart = f"ANTI JOIN {cannot} x USING (rid_l, rid_r)" if cannot else ""
    group_edges = con.execute(f"""
        SELECT e.rid_l, e.rid_r, e.match_weight, e.prelinked, e.forced FROM {edges} e
        JOIN component_of c ON c.rid = e.rid_l SEMI JOIN flagged f USING (component) {apart}
        ORDER BY e.forced DESC, e.prelinked DESC, e.match_weight DESC, e.rid_l, e.rid_r
        """).df()
    con.unregister("flagged")
    con.unregister("component_of")
    anchored = {m for m, who in members.items() if who.anchors}  # before merging them
    labels = _constrained(members, group_edges)
    labels = _detach_ambiguous(labels, group_edges, anchored)
    # a rebuilt cluster is numbered by its smallest record
    rids = np.fromiter(labels.keys(), dtype=np.int64, count=len(labels))
    roots = np.fromiter(labels.values(), dtype=np.int64, count=len(labels))
    smallest = pd.Series(rids).groupby(roots).transform("min").to_numpy()
    out = components.copy()
    out[rids] = smallest
    return out


FORCED_WEIGHT = 1e6  # a must-link outweighs any scored pair (as an anchor chain does)


def _with_must_links(con, edges: str, must: str | None) -> str:
    """The edges with a ``forced`` flag: a reviewer's must-links added (joined first, and
    never refused by a conflict), and the view's name."""
    rows = [f"SELECT rid_l, rid_r, match_weight, prelinked, false AS forced FROM {edges}"]
    if must:
        rows.append(f"SELECT rid_l, rid_r, {FORCED_WEIGHT} AS match_weight, true AS prelinked,"
                    f" true AS forced FROM {must}")
    con.execute("CREATE OR REPLACE TEMP VIEW decided_edges AS " + " UNION ALL ".join(rows)
                ).fetchall()
    return "decided_edges"


def _forename_veto(columns: dict) -> tuple[str | None, list[str]]:
    """The forename column the veto reads (None for no veto), and the columns that must be
    equal on two records for their forenames to be compared: the filters' salt (filters of
    different salts are unrelated bits) and the schema's ``forename_conflict_when_same``
    (twins share a surname; a person whose forename and surname are swapped does not)."""
    name = next((c for c in ("forename_bloom", "forename") if c in columns), None)
    wanted = clustering_rules().get("forename_conflict_when_same", [])
    if _forename_conflict() is None or name is None or not all(c in columns for c in wanted):
        return None, []
    salt = name_salt(name, set(columns))
    return name, [*([salt] if salt else []), *wanted]


def _context_sql(context: list[str]) -> str:
    """One value for the context columns of a record: NULL (no veto) if any is missing, or
    the record's source is not one the veto is for."""
    sources = ", ".join(f"'{s}'" for s in clustering_rules()["forename_conflict_sources"])
    present = " AND ".join([f"source IN ({sources or 'NULL'})",
                            *(f"{c} IS NOT NULL" for c in context)])
    return f"CASE WHEN {present} THEN hash(0{''.join(f', {c}' for c in context)}) END"


def _conflicting_components(con, records: str, columns: dict, anchors: str | None,
                            cannot: str | None = None) -> np.ndarray:
    """Components in which some two records cannot be one person (order does not matter)."""
    name, context = _forename_veto(columns)
    wanted = ["rid", *RECORD_KEY, "upn", "former_upn"]
    if name:  # the context's columns, and source, are read by ``_context_sql``
        wanted += [name, f"{name}_bits", f"{name}_digest", *context]
    anchor_sql = f"LEFT JOIN {anchors} a USING (rid)" if anchors else ""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE cluster_members AS
        SELECT {", ".join(f"r.{c}" for c in wanted if c in columns)}, c.component,
               {"a.anchor" if anchors else "NULL"} AS anchor
        FROM {records} r JOIN component_of c USING (rid) {anchor_sql}
        WHERE c.component IN (SELECT component FROM component_of
                              GROUP BY component HAVING count(*) > 1)""").fetchall()
    one_per_child = _one_per_person_sql()
    queries = [f"""SELECT component FROM cluster_members WHERE source IN ({one_per_child})
                   GROUP BY component, source, provider, period
                   HAVING count(DISTINCT record_id) > 1"""]
    if cannot:  # a reviewer's non-match inside one component
        queries.append(f"""SELECT a.component FROM {cannot} x
            JOIN component_of a ON a.rid = x.rid_l JOIN component_of b ON b.rid = x.rid_r
            WHERE a.component = b.component""")
    if anchors:  # a new record joining two of the spine's persons
        queries.append("""SELECT component FROM cluster_members GROUP BY component
                          HAVING count(DISTINCT anchor) > 1""")
    upn = [c for c in ("upn", "former_upn") if c in columns]
    if upn:
        u_sql, f_sql = (c if c in columns else "NULL" for c in ("upn", "former_upn"))
        queries.append(f"""WITH u AS (
                SELECT component, {u_sql} AS u, {f_sql} AS f, row_number() OVER () AS n
                FROM (SELECT DISTINCT component, {u_sql}, {f_sql} FROM cluster_members
                      WHERE {u_sql} IS NOT NULL OR {f_sql} IS NOT NULL))
            SELECT a.component FROM u a JOIN u b ON a.component = b.component AND a.n < b.n
            WHERE NOT coalesce(a.u IN (b.u, b.f), false)
              AND NOT coalesce(a.f IN (b.u, b.f), false)""")
    if name and columns[name] == "BIT":  # one row per distinct filter (by its digest)
        # filters are compared only within one context (one salt, one surname)
        queries.append(f"""WITH f AS (
                SELECT component, {name}_digest AS d, {_context_sql(context)} AS s,
                       any_value({name}) AS b, any_value({name}_bits) AS n
                FROM cluster_members WHERE {name}_bits > 0 GROUP BY component, d, s)
            SELECT a.component FROM f a JOIN f b ON a.component = b.component AND a.d < b.d
            AND a.s = b.s
            WHERE bit_count(a.b & b.b) * 2.0 / (a.n + b.n) < {_forename_conflict()}""")
    flagged = set()
    for query in queries:
        flagged.update(con.execute(query).fetchnumpy()["component"].tolist())
    if name and columns[name] != "BIT":  # plaintext names (the baseline): bigrams in Python
        found = con.execute(f"""WITH f AS (SELECT DISTINCT component, {name} AS b,
                                           {_context_sql(context)} AS s
                                           FROM cluster_members WHERE {name} <> '')
            SELECT a.component, a.b AS x, b.b AS y FROM f a JOIN f b
            ON a.component = b.component AND a.b < b.b AND a.s = b.s""").fetchall()
        flagged.update(c for c, x, y in found if _dice(x, y) < _forename_conflict())
    return np.array(sorted(flagged), dtype=np.int64)


def _members(con, records: str, columns: dict, cannot: str | None = None
             ) -> dict[int, _Identity]:
    """The identity of each record in a flagged component (with the records a reviewer's
    cannot-links keep it from)."""
    name, context = _forename_veto(columns)
    name_sql = "NULL" if name is None else (
        f"CAST({name} AS BLOB)" if columns[name] == "BIT" else name)
    salt = _context_sql(context) if name else "NULL"
    one_per_child = _one_per_person_sql()
    rows = con.execute(f"""
        SELECT rid, {'upn' if 'upn' in columns else 'NULL'},
               {'former_upn' if 'former_upn' in columns else 'NULL'}, {name_sql}, {salt},
               source IN ({one_per_child}),
               source || '|' || provider || '|' || CAST(period AS VARCHAR), record_id, anchor
        FROM cluster_members SEMI JOIN flagged USING (component) ORDER BY rid""").fetchall()
    out = {}
    for rid, upn, former, forename, salt, unique, key, record, anchor in rows:
        upns = {x for x in (upn, former) if x is not None}
        if isinstance(forename, bytearray | memoryview):  # how some clients return BLOBs
            forename = bytes(forename)
        forenames = [(salt, forename)] if forename else []
        out[rid] = _Identity(upns, forenames,
                             {key: ((record, frozenset(upns)),)} if unique else {},
                             frozenset() if anchor is None else frozenset([anchor]))
    for rid, others in _apart(con, cannot).items():
        if rid in out:
            out[rid].apart, out[rid].decided = others, frozenset([rid])
    return out


def _apart(con, cannot: str | None) -> dict[int, frozenset]:
    """Each record a cannot-link names: the records it may not be with."""
    if not cannot:
        return {}
    both = con.execute(f"""SELECT rid_l AS rid, list(rid_r ORDER BY rid_r) FROM (
        SELECT rid_l, rid_r FROM {cannot} UNION ALL SELECT rid_r, rid_l FROM {cannot})
        GROUP BY 1 ORDER BY 1""").fetchall()
    return {rid: frozenset(others) for rid, others in both}


def _constrained(identity: dict[int, _Identity], edges: pd.DataFrame) -> dict[int, int]:
    """Greedy clustering of the flagged components: pairs in ``edges`` order (pre-links,
    then strongest first), no conflicting merge. Components are disjoint, so one pass over
    all their pairs is the same as one pass per component. Returns each record's root."""
    parent = {m: m for m in identity}

    def root(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    forced = edges.forced.tolist() if "forced" in edges else [False] * len(edges)
    for left, right, must in zip(edges.rid_l.tolist(), edges.rid_r.tolist(), forced,
                                 strict=True):
        a, b = root(left), root(right)
        # a reviewer's must-link holds whatever else the records say
        if a == b or (not must and identity[a].conflicts(identity[b])):
            continue
        parent[b] = a
        identity[a] = identity[a].merged(identity[b])
    return {m: root(m) for m in parent}


def _detach_ambiguous(labels: dict[int, int], edges: pd.DataFrame, anchored: set[int]
                      ) -> dict[int, int]:
    """A record that matches another person's records as well as its own is left on its own:
    weak evidence gives no link rather than a guess (twins with no UPN or name, say). A record
    already in the spine (``anchored``) stays with its person."""
    both = pd.DataFrame({
        "member": np.concatenate([edges.rid_l.to_numpy(), edges.rid_r.to_numpy()]),
        "other": np.concatenate([edges.rid_r.to_numpy(), edges.rid_l.to_numpy()]),
        "weight": np.concatenate([edges.match_weight.to_numpy()] * 2)})
    label = pd.Series(labels)
    both["same"] = label.reindex(both.member).to_numpy() == label.reindex(both.other).to_numpy()
    best = both.groupby(["member", "same"]).weight.max().unstack()
    if True not in best or False not in best:
        return labels
    margin = clustering_rules()["ambiguity_bits"]
    ambiguous = set(best.index[best[False] >= best[True] - margin].tolist()) - anchored
    # a negative label cannot be another cluster's root
    return {m: (-1 - m if m in ambiguous else root) for m, root in labels.items()}
