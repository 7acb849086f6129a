"""The editor's review loop: read the editor's sheet, apply the verdicts, write a new sheet.

Every run writes `build/review.xlsx` (and the same as CSV files). The editor copies it to
`corpus/review/review.xlsx` (configurable: Settings.review_file), fills in the columns
`oordeel` (akkoord | afwijzen | samenvoegen met <cluster id> | splitsen), `eigen_label` and
`notitie` on the sheet "clusters", and may correct themes in `themas_redactie` on the sheet
"verhalen". The pipeline only ever READS that file.

On each run the verdicts are placed on the new clusters by member overlap (a cluster id changes
when its members change, for example when stories are added). A verdict that can no longer be
placed is kept: it is listed in the run summary and on the sheet "niet_geplaatst" of the new
sheet, so the editor's work is never lost.
"""
from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from .frames import isin, named
from .settings import load_themes

VERDICTS = ("akkoord", "afwijzen", "samenvoegen met <id>", "splitsen")
CLUSTER_SHEET = "clusters"
STORY_SHEET = "verhalen"
UNPLACED_SHEET = "niet_geplaatst"
EDITOR_CLUSTER_COLUMNS = ["oordeel", "eigen_label", "notitie"]
EDITOR_STORY_COLUMNS = ["themas_redactie", "notitie"]
MIN_OVERLAP = 0.5  # share of a verdict's old members that must be in the new cluster


class ReviewSheetError(RuntimeError):
    """The editor's sheet exists but cannot be read; nothing is written."""


@dataclass
class EditorInput:
    verdicts: pd.DataFrame  # cluster_id, theme, polarity, oordeel, eigen_label, notitie, leden (member keys)
    themes: pd.DataFrame  # story_id, themes (list of keys)
    path: Path | None = None
    problems: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls) -> "EditorInput":
        return cls(pd.DataFrame(columns=["cluster_id", "theme", "polarity", "oordeel", "eigen_label", "notitie", "leden"]),
                   pd.DataFrame(columns=["story_id", "themes"]))


def member_keys(members: pd.DataFrame) -> pd.Series:
    """Each member's key, `<story id>:<start>-<end>` (how the `leden` column names members; an
    editor's verdict finds its cluster again by these keys). Built column-wise."""
    return (members["story_id"].astype(str) + ":" + members["start"].astype(int).astype(str) + "-"
            + members["end"].astype(int).astype(str))


MAX_CELL_CHARS = 32_000  # Excel keeps at most 32,767 characters in a cell


def member_lists(members: pd.DataFrame) -> pd.Series:
    """Per cluster id, its member keys joined by ';' (the `leden` column), in the members' order
    (most central first). A list longer than an Excel cell holds is cut after the last whole key:
    placing a verdict on a later run then uses the listed members as a sample of the cluster."""
    if not len(members):
        return pd.Series(dtype=str)
    joined = member_keys(members).groupby(members["cluster_id"].to_numpy(), sort=False).agg(";".join)
    long = joined.str.len() > MAX_CELL_CHARS
    if long.any():
        joined[long] = [text[:text.rfind(";", 0, MAX_CELL_CHARS + 1)] for text in joined[long]]
    return joined


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value).strip()


def read_editor_sheet(path: Path) -> EditorInput:
    """Read the editor's review sheet (.xlsx, or a folder/CSV pair). Missing file: empty input.

    Raises ReviewSheetError when the file exists but cannot be read (open in Excel and locked,
    damaged, or without the expected sheets/columns)."""
    path = Path(path)
    if not path.exists():
        return EditorInput.empty()
    lock = path.with_name("~$" + path.name)
    if lock.exists():
        raise ReviewSheetError(f"{path} is open in Excel (lock file {lock.name} exists): save and close it, then run again")
    try:
        if path.suffix.lower() == ".csv":
            clusters = pd.read_csv(path, dtype=str, keep_default_na=False)
            stories_path = path.with_name(path.stem.replace("clusters", "verhalen") + ".csv")
            stories = pd.read_csv(stories_path, dtype=str, keep_default_na=False) if stories_path.exists() else None
        else:
            sheets = pd.read_excel(path, sheet_name=None, dtype=str, engine="openpyxl")
            if CLUSTER_SHEET not in sheets:
                raise ReviewSheetError(f"{path} has no sheet '{CLUSTER_SHEET}' (sheets: {', '.join(sheets)})")
            clusters = sheets[CLUSTER_SHEET].fillna("")
            stories = sheets.get(STORY_SHEET)
            unplaced = sheets.get(UNPLACED_SHEET)
            if unplaced is not None and len(unplaced):
                clusters = pd.concat([clusters, unplaced.fillna("")], ignore_index=True)
    except ReviewSheetError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ReviewSheetError(f"{path} cannot be read ({type(exc).__name__}: {exc}); is it a valid .xlsx file? "
                               "Nothing was written.") from None
    except Exception as exc:  # openpyxl raises a variety of errors on damaged files
        raise ReviewSheetError(f"{path} cannot be read ({type(exc).__name__}: {exc}). Nothing was written.") from None
    missing = [c for c in ("cluster_id", "oordeel") if c not in clusters.columns]
    if missing:
        raise ReviewSheetError(f"{path}: sheet '{CLUSTER_SHEET}' lacks column(s) {', '.join(missing)}")
    for col in ("theme", "polarity", "eigen_label", "notitie", "leden"):
        if col not in clusters.columns:
            clusters[col] = ""
    clusters = clusters.map(_cell) if hasattr(clusters, "map") else clusters.applymap(_cell)
    has_input = (clusters["oordeel"] != "") | (clusters["eigen_label"] != "") | (clusters["notitie"] != "")
    verdicts = clusters.loc[has_input, ["cluster_id", "theme", "polarity", "oordeel", "eigen_label", "notitie", "leden"]]
    problems = []
    for r in verdicts.itertuples(index=False):
        if r.oordeel and parse_verdict(r.oordeel)[0] is None:
            problems.append(f"review: verdict {r.oordeel!r} for {r.cluster_id} not understood "
                            f"(use {', '.join(VERDICTS)}); kept but not applied")
    theme_rows = []
    keys = {t.key for t in load_themes()}
    if stories is not None and "story_id" in stories.columns and "themas_redactie" in stories.columns:
        for sid, val in zip(stories["story_id"], stories["themas_redactie"].map(_cell)):
            if not val:
                continue
            chosen = [k.strip() for k in re.split(r"[;,]", val) if k.strip()]
            if chosen == ["-"] or chosen == ["geen"]:
                chosen = []
            bad = [k for k in chosen if k not in keys]
            if bad:
                problems.append(f"review: story {sid}: unknown theme key(s) {', '.join(bad)}; correction ignored")
                continue
            theme_rows.append({"story_id": _cell(sid), "themes": chosen})
    return EditorInput(verdicts.reset_index(drop=True), pd.DataFrame(theme_rows, columns=["story_id", "themes"]),
                       path, problems)


def parse_verdict(text: str) -> tuple[str | None, str | None]:
    """('akkoord'|'afwijzen'|'samenvoegen'|'splitsen' or None, merge target id or None)."""
    t = text.strip().lower()
    if t in ("akkoord", "ok", "goed"):
        return "akkoord", None
    if t in ("afwijzen", "afgewezen", "weg", "verwijderen"):
        return "afwijzen", None
    if t in ("splitsen", "splits"):
        return "splitsen", None
    m = re.fullmatch(r"samenvoegen(?:\s+met)?\s+(c[0-9a-f]{10})", t)
    if m:
        return "samenvoegen", m.group(1)
    return None, None


# ---------------------------------------------------------------------------------------------
# Placing verdicts on the current clusters
# ---------------------------------------------------------------------------------------------

def place_verdicts(clusters: pd.DataFrame, members: pd.DataFrame, verdicts: pd.DataFrame) -> dict[int, str | None]:
    """For each verdict row (by index), the current cluster id it applies to, or None.

    Same id: placed directly. Otherwise: the cluster of the same theme and polarity that holds
    the largest share of the verdict's old members (at least MIN_OVERLAP)."""
    current = set(clusters["cluster_id"])
    key_to_cluster = dict(zip(zip(members["theme"].tolist(), members["polarity"].tolist(), member_keys(members).tolist()),
                              members["cluster_id"].tolist()))
    placed: dict[int, str | None] = {}
    for idx, v in verdicts.iterrows():
        if v["cluster_id"] in current:
            placed[idx] = v["cluster_id"]
            continue
        old = [k for k in str(v.get("leden", "")).split(";") if k]
        votes: dict[str, int] = {}
        for k in old:
            c = key_to_cluster.get((v.get("theme", ""), v.get("polarity", ""), k))
            if c is None:  # theme/polarity not recorded: any cluster holding the member
                c = next((cc for (t, p, kk), cc in key_to_cluster.items() if kk == k), None) if not v.get("theme") else None
            if c is not None:
                votes[c] = votes.get(c, 0) + 1
        best = max(votes, key=lambda c: (votes[c], c)) if votes else None
        placed[idx] = best if best is not None and votes[best] >= MIN_OVERLAP * max(1, len(old)) else None
    return placed


def apply_verdicts(clusters: pd.DataFrame, members: pd.DataFrame, verdicts: pd.DataFrame,
                   split_threshold: float = 0.3) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Apply the editor's verdicts. Returns (clusters, members, notes).

    Adds columns `verdict`, `note`, `generated_label` to clusters; rejected clusters are removed
    (from clusters and members); merged clusters join their target; split clusters are split
    per story group; own labels replace generated labels. Unplaceable verdicts are listed in
    the notes and returned in `clusters.attrs['unplaced']`.
    """
    from .cluster import stable_cluster_id

    clusters = clusters.copy()
    members = members.copy()
    clusters["generated_label"] = clusters["label"]
    clusters["verdict"] = ""
    clusters["note"] = ""
    notes: list[str] = []
    if verdicts is None or verdicts.empty:
        clusters.attrs["unplaced"] = verdicts.iloc[0:0] if verdicts is not None else pd.DataFrame()
        clusters.attrs["placed"] = {}
        return clusters, members, notes
    placed = place_verdicts(clusters, members, verdicts)
    unplaced = verdicts.loc[[i for i, c in placed.items() if c is None]]
    for r in unplaced.itertuples(index=False):
        notes.append(f"review: verdict '{r.oordeel or r.eigen_label}' for {r.cluster_id} "
                     f"({r.theme} {r.polarity}) cannot be placed on the current clusters; kept in the review sheet")
    old_to_new = {verdicts.at[i, "cluster_id"]: c for i, c in placed.items() if c is not None}
    by_id = clusters.set_index("cluster_id")
    rejected, merges, splits = set(), [], []
    for i, cid in placed.items():
        if cid is None:
            continue
        v = verdicts.loc[i]
        kind, target = parse_verdict(v["oordeel"]) if v["oordeel"] else (None, None)
        if v["eigen_label"]:
            by_id.at[cid, "label"] = v["eigen_label"]
        if v["notitie"]:
            by_id.at[cid, "note"] = v["notitie"]
        if kind:
            by_id.at[cid, "verdict"] = v["oordeel"]
        if kind == "afwijzen":
            rejected.add(cid)
        elif kind == "samenvoegen":
            merges.append((cid, old_to_new.get(target, target)))
        elif kind == "splitsen":
            splits.append(cid)
    clusters = by_id.reset_index()
    for source, target in merges:
        if target not in set(clusters["cluster_id"]) or target == source:
            notes.append(f"review: cannot merge {source} into {target}: no such cluster now; verdict kept")
            continue
        same = clusters.set_index("cluster_id").loc[[source, target], ["theme", "polarity"]]
        if len(same.drop_duplicates()) > 1:
            notes.append(f"review: cannot merge {source} into {target}: different theme or polarity")
            continue
        members.loc[members["cluster_id"] == source, "cluster_id"] = target
        clusters = clusters[clusters["cluster_id"] != source]
    for cid in splits:
        group = members[members["cluster_id"] == cid]
        if group["story_id"].nunique() < 2:
            notes.append(f"review: cluster {cid} has one story; nothing to split")
            continue
        base = clusters[clusters["cluster_id"] == cid].iloc[0]
        new_rows = []
        for sid, g in group.groupby("story_id"):
            nid = stable_cluster_id(g)
            members.loc[g.index, "cluster_id"] = nid
            new_rows.append({**base.to_dict(), "cluster_id": nid, "label": g["phrase"].iloc[0],
                             "generated_label": g["phrase"].iloc[0], "verdict": "", "note": f"gesplitst uit {cid}",
                             "n_members": len(g), "n_stories": 1, "story_ids": sid})
        clusters = pd.concat([clusters[clusters["cluster_id"] != cid], pd.DataFrame(new_rows)], ignore_index=True)
    clusters = clusters[~isin(clusters["cluster_id"], rejected)]
    members = members[~isin(members["cluster_id"], rejected)]
    clusters = _recount(clusters, members)
    clusters.attrs["unplaced"] = unplaced
    clusters.attrs["placed"] = {verdicts.at[i, "cluster_id"]: c for i, c in placed.items()}
    if rejected:
        notes.append(f"review: {len(rejected)} cluster(s) rejected by the editor left the draft")
    return clusters.reset_index(drop=True), members.reset_index(drop=True), notes


def _recount(clusters: pd.DataFrame, members: pd.DataFrame) -> pd.DataFrame:
    """Refresh member and story counts after merges and splits (regions stay per cluster)."""
    counts = members.groupby("cluster_id").agg(n_members=("story_id", "size"), n_stories=("story_id", "nunique"),
                                               story_ids=("story_id", lambda s: ";".join(sorted(set(s)))))
    out = clusters.drop(columns=["n_members", "n_stories", "story_ids"]).merge(counts, on="cluster_id", how="left")
    return out[list(clusters.columns)]


def refresh_support(clusters: pd.DataFrame, members: pd.DataFrame, stories: pd.DataFrame) -> pd.DataFrame:
    """Recompute regions and dates of clusters from their members' stories (after merges, and
    because a story's region or date may have changed since its clusters were memoised).
    Works on integer codes of clusters, stories and regions (no loop per member)."""
    info = stories.drop_duplicates("story_id")
    story_index = pd.Index(info["story_id"])
    region_names, story_region = np.unique(info["region"].fillna("").astype(str).to_numpy(), return_inverse=True)
    story_date = info["date"].to_numpy()
    cluster_codes, cluster_ids = pd.factorize(members["cluster_id"])
    story_codes = story_index.get_indexer(members["story_id"])
    ok = story_codes >= 0
    c, st = cluster_codes[ok], story_codes[ok]
    # regions: the distinct (cluster, region) pairs, in region order within each cluster
    pairs = np.unique(np.stack([c, story_region.ravel()[st]], axis=1), axis=0) if len(c) else np.zeros((0, 2), int)
    pairs = pairs[region_names[pairs[:, 1]] != ""] if len(pairs) else pairs
    n_regions = np.bincount(pairs[:, 0], minlength=len(cluster_ids)) if len(pairs) else np.zeros(len(cluster_ids), int)
    joined = [""] * len(cluster_ids)
    if len(pairs):
        bounds = np.flatnonzero(np.diff(pairs[:, 0])) + 1
        for chunk in np.split(pairs, bounds):
            joined[chunk[0, 0]] = "; ".join(region_names[chunk[:, 1]].tolist())
    dates = pd.DataFrame({"c": c, "date": story_date[st]}).groupby("c")["date"].agg(["min", "max"])
    fresh = pd.DataFrame({"cluster_id": cluster_ids, "n_regions": n_regions, "regions": joined})
    fresh["first_date"] = dates["min"].reindex(range(len(cluster_ids))).to_numpy()
    fresh["last_date"] = dates["max"].reindex(range(len(cluster_ids))).to_numpy()
    out = clusters.drop(columns=["n_regions", "regions", "first_date", "last_date"]).merge(
        fresh, on="cluster_id", how="left")
    out["n_regions"] = out["n_regions"].fillna(0).astype(int)
    out["regions"] = out["regions"].fillna("")
    return out[list(clusters.columns)]


# ---------------------------------------------------------------------------------------------
# The new sheet
# ---------------------------------------------------------------------------------------------

def review_tables(clusters: pd.DataFrame, members: pd.DataFrame, stories: pd.DataFrame, themes: pd.DataFrame,
                  editor: EditorInput | None = None, top: int | None = None) -> dict[str, pd.DataFrame]:
    """The sheets of the new review file: clusters (pre-filled with carried-over verdicts),
    verhalen (with carried-over theme corrections) and niet_geplaatst.

    `top`: only the `top` highest-ranked clusters per theme and polarity (plus every cluster with
    a carried-over verdict) go on the clusters sheet; None lists them all. On a large collection
    the long tail is mostly single phrases, which clusters.csv still lists."""
    from .draft import rank_clusters

    ranked = rank_clusters(clusters)
    first_quote = members.drop_duplicates("cluster_id").set_index("cluster_id")["sentence"]
    editor = editor or EditorInput.empty()
    placed = clusters.attrs.get("placed", {})
    carried = {}
    for v in editor.verdicts.itertuples(index=False):
        cid = placed.get(v.cluster_id)
        if cid:
            carried[cid] = v
    if top is not None:
        ranked = ranked[(ranked["rank"] <= top).to_numpy() | isin(ranked["cluster_id"], set(carried))]
    leden = member_lists(members[isin(members["cluster_id"], ranked["cluster_id"])])
    rows = []
    for r in named(ranked):
        v = carried.get(r.cluster_id)
        rows.append({
            "cluster_id": r.cluster_id, "theme": r.theme, "polarity": r.polarity, "rank": int(r.rank),
            "label": getattr(r, "generated_label", r.label), "n_verhalen": int(r.n_stories),
            "n_regios": int(r.n_regions), "regios": r.regions,
            "citaat": str(first_quote.get(r.cluster_id, ""))[:300],
            "oordeel": v.oordeel if v is not None else "", "eigen_label": v.eigen_label if v is not None else "",
            "notitie": v.notitie if v is not None else "", "leden": leden.get(r.cluster_id, ""),
        })
    cluster_sheet = pd.DataFrame(rows, columns=["cluster_id", "theme", "polarity", "rank", "label", "n_verhalen",
                                                "n_regios", "regios", "citaat", *EDITOR_CLUSTER_COLUMNS, "leden"])
    # verdicts on clusters an editor rejected are no longer in `clusters`: keep them too
    listed = set(ranked["cluster_id"])
    rejected = [v for v in editor.verdicts.itertuples(index=False)
                if placed.get(v.cluster_id) and placed[v.cluster_id] not in listed]
    extra = pd.DataFrame([{"cluster_id": v.cluster_id, "theme": v.theme, "polarity": v.polarity, "rank": "",
                           "label": "(uit het concept verwijderd)", "oordeel": v.oordeel, "eigen_label": v.eigen_label,
                           "notitie": v.notitie, "leden": v.leden} for v in rejected], columns=cluster_sheet.columns)
    cluster_sheet = pd.concat([cluster_sheet, extra], ignore_index=True) if len(extra) else cluster_sheet
    corrections = dict(zip(editor.themes["story_id"], editor.themes["themes"]))
    story_sheet = stories[["story_id", "title", "date", "region"]].merge(
        themes[["story_id", "themes", "main_theme", "flag"]], on="story_id", how="left")
    story_sheet["date"] = story_sheet["date"].dt.date.astype(str).replace("NaT", "")
    story_sheet["themas_redactie"] = [";".join(corrections[s]) if s in corrections else "" for s in story_sheet["story_id"]]
    story_sheet["notitie"] = ""
    unplaced = clusters.attrs.get("unplaced")
    unplaced_sheet = (unplaced if unplaced is not None else editor.verdicts.iloc[0:0]).copy()
    return {CLUSTER_SHEET: cluster_sheet, STORY_SHEET: story_sheet, UNPLACED_SHEET: unplaced_sheet}


def _write_cell(ws, row: int, col: int, value) -> None:
    if value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return
    if isinstance(value, (bool, np.bool_)):
        ws.write_boolean(row, col, bool(value))
    elif isinstance(value, (int, float, np.integer, np.floating)):
        ws.write_number(row, col, float(value))
    elif isinstance(value, (pd.Timestamp, date)):
        ws.write_string(row, col, value.date().isoformat() if isinstance(value, pd.Timestamp) else value.isoformat())
    elif str(value):
        ws.write_string(row, col, str(value)[:MAX_CELL_CHARS])


def write_review(tables: dict[str, pd.DataFrame], out_dir: Path) -> list[Path]:
    """build/review.xlsx (three sheets, editor columns highlighted) and one CSV per sheet.

    Written cell by cell with XlsxWriter (fast on large sheets; every text is written as text,
    never as a formula or link); read back with openpyxl."""
    import xlsxwriter

    from .outputs import write_bytes, write_csv

    out_dir = Path(out_dir)
    path = out_dir / "review.xlsx"
    buf = io.BytesIO()
    workbook = xlsxwriter.Workbook(buf, {"constant_memory": True})  # saved only when complete
    bold = workbook.add_format({"bold": True})
    editor_header = workbook.add_format({"bold": True, "bg_color": "#FFF2CC"})
    editable_of = {CLUSTER_SHEET: EDITOR_CLUSTER_COLUMNS, STORY_SHEET: EDITOR_STORY_COLUMNS}
    for name, df in tables.items():
        ws = workbook.add_worksheet(name)
        editable = editable_of.get(name, ())
        for j, col in enumerate(df.columns):
            # the editor's columns: yellow header, wide column
            ws.write_string(0, j, str(col), editor_header if col in editable else bold)
            if col in editable:
                ws.set_column(j, j, 28)
        # columns of pandas' string dtype hold only text (missing -> ""): the bulk of the cells,
        # written without a type check per cell; other columns cell by cell (_write_cell)
        text = [isinstance(df[c].dtype, pd.StringDtype) for c in df.columns]
        columns = [df[c].fillna("").tolist() if t else df[c].tolist() for c, t in zip(df.columns, text)]
        for i, row in enumerate(zip(*columns), start=1):
            for j, value in enumerate(row):
                if not text[j]:
                    _write_cell(ws, i, j, value)
                elif value:
                    ws.write_string(i, j, value[:MAX_CELL_CHARS])
        if name in editable_of:
            ws.freeze_panes(1, 1)
        if name == CLUSTER_SHEET and "oordeel" in df.columns:
            j = list(df.columns).index("oordeel")
            ws.data_validation(1, j, max(1, len(df)), j, {
                "validate": "list", "source": ["akkoord", "afwijzen", "splitsen"], "show_error": False,
                "input_message": "akkoord, afwijzen, splitsen, of: samenvoegen met <cluster id>"})
    workbook.close()
    write_bytes(path, buf.getvalue())
    written = [path]
    for name, df in tables.items():
        written.append(write_csv(out_dir / f"review-{name}.csv", df))
    return written
