"""Which bundles a new spine version is linked from.

The spine holds the linkage part of every bundle it linked (sealed to the linkage unit, as the
provider made it), so a link can be given only the new bundles: the version is linked from the
bundles the spine holds and those given. Nothing the spine holds is dropped silently: a bundle
given again is linked once; a bundle holding records the spine already holds from another
bundle (a provider's corrected or cumulative file) replaces it only with ``--replace``; a
held bundle leaves only with ``--withdraw``. Each is logged in the version and the audit log.
"""

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from linkage.pseudonymise.bundle import (
    BundleError,
    OpenedBundle,
    SignedManifest,
    held_bundle,
    same_key,
)
from linkage.pseudonymise.roles import LinkageUnitKeys
from linkage.sources.schema import RECORD_KEY
from linkage.spine.store import HeldPart


@dataclass
class Holdings:
    """The bundles of the new version, and how they differ from the spine's."""

    bundles: list[OpenedBundle]
    added: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {"added": self.added, "kept": len(self.kept), "replaced": self.replaced,
                "withdrawn": self.withdrawn}

    def new_parts(self) -> list[HeldPart]:
        """The linkage parts the spine does not hold yet, to be kept with the version."""
        return [HeldPart(b.name, b.manifest["parts"]["linkage"]["sha256"], b.signed.text,
                         b.signed.signature, b.sealed_part("linkage"))
                for b in self.bundles if b.name in self.added]


def holdings(held: list[HeldPart], given: list[OpenedBundle], keys: LinkageUnitKeys,
             replace: bool = False, withdraw: list[str] | None = None) -> Holdings:
    """The bundles a new version is linked from: ``held`` (the spine's latest version's) and
    ``given``, less those withdrawn (by name) or replaced; refused, saying what to do, where
    the spine would lose records without being told to."""
    withdrawn = _withdrawn(held, withdraw or [])
    given_sha = {_sha(b) for b in given}
    kept = [h for h in held if h.name not in withdrawn and h.sha256 not in given_sha]
    _refuse_unheld(kept)
    opened = [held_bundle(h.name, SignedManifest(h.manifest, h.signature), h.linkage_part,
                          keys) for h in kept]
    held_sha = {h.sha256 for h in held}
    again = [b.name for b in given if _sha(b) in held_sha]
    new = [b for b in given if b.name not in again]
    overlaps = _overlaps(opened, new)
    if overlaps and not replace:
        (old, bundle), count = next(iter(overlaps.items()))
        raise BundleError(f"{bundle}: holds {count:,} records the spine already holds from "
                          f"{old}; to replace {old} with it, give --replace; to add records, "
                          "give a bundle of the new records only")
    replaced = sorted({old for old, _ in overlaps})
    bundles = [b for b in opened if b.name not in replaced] + given
    same_key(bundles)
    added = [b.name for b in new]
    return Holdings(bundles, added=added,
                    kept=[b.name for b in bundles if b.name not in added],
                    replaced=replaced, withdrawn=sorted(withdrawn))


def _sha(bundle: OpenedBundle) -> str:
    return bundle.manifest["parts"]["linkage"]["sha256"]


def _withdrawn(held: list[HeldPart], names: list[str]) -> set[str]:
    """The held bundles named (by the name recorded, or its folder's name)."""
    out = set()
    for name in names:
        found = [h.name for h in held if name in (h.name, Path(h.name).name)]
        if not found:
            listed = ", ".join(h.name for h in held[:10]) or "none"
            raise BundleError(f"--withdraw {name}: the spine holds no such bundle (it holds: "
                              f"{listed}{', ...' if len(held) > 10 else ''})")
        out.update(found)
    return out


def _refuse_unheld(kept: list[HeldPart]) -> None:
    """A version linked by a linkage that kept no linkage parts cannot be added to."""
    missing = [h.name for h in kept if h.linkage_part is None]
    if missing:
        raise BundleError(f"the spine does not hold {len(missing)} of the bundles its latest "
                          f"version was linked from ({', '.join(missing[:5])}"
                          f"{', ...' if len(missing) > 5 else ''}); give them again with the "
                          "new ones, or leave them out with --withdraw NAME")


def _overlaps(held: list[OpenedBundle], given: list[OpenedBundle]) -> dict[tuple, int]:
    """(held bundle, given bundle): how many records they share (one provider's record of one
    period), for each such pair."""
    if not held or not given:
        return {}
    con = duckdb.connect()
    try:
        for i, bundle in enumerate([*held, *given]):
            con.register("part", bundle.token_table(RECORD_KEY))
            con.execute(("INSERT INTO records" if i else "CREATE TABLE records AS") + f"""
                SELECT {i} AS bundle, {", ".join(f"CAST({c} AS VARCHAR) AS {c}"
                                                for c in RECORD_KEY)} FROM part""")
            con.unregister("part")
        rows = con.execute(f"""
            SELECT h.bundle, g.bundle, count(*) FROM records h JOIN records g
            USING ({", ".join(RECORD_KEY)})
            WHERE h.bundle < {len(held)} AND g.bundle >= {len(held)}
            GROUP BY ALL ORDER BY 1, 2""").fetchall()
    finally:
        con.close()
    names = [b.name for b in [*held, *given]]
    return {(names[h], names[g]): count for h, g, count in rows}
