"""NPD-like key stage attainment files, one CSV per summer, with the generic mapping that reads
them (``linkage check --source generic --mapping``).

Pupils at the end of key stage 2 (year 6) and key stage 4 (year 11) in the January census get a
row of results that summer, under the identifiers their school holds: the census row's UPN,
names, DOB and sex as recorded (its recording errors included), so the truth of each row is the
truth of that census row. The layout is this module's ``MAPPING``: the CSV's columns are the
mapping's, so the two cannot disagree.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import yaml

from synthetic.attainment import attainment_results
from synthetic.calendar import format_dates
from synthetic.formats.files import write_csv, write_parquet
from synthetic.social_care import SocialCare

FOLDER = "providers/dfe/generic/attainment"
OLD_DATE_STYLE = "%Y-%b-%d 00:00:00"  # the school census's date style up to 2022
# KS2: scaled scores (80-120) and expected standard met (1/0) in reading, maths and grammar,
# punctuation and spelling; KS4: Attainment 8, English and maths at grade 4 or above, Progress 8
RESULTS = ("ks2_read_score", "ks2_read_exp", "ks2_mat_score", "ks2_mat_exp", "ks2_gps_score",
           "ks2_gps_exp", "ks4_att8", "ks4_engmath_94", "ks4_p8")
MAPPING = {
    "record_id": "result_id",
    "provider": "DFE",
    "dataset": "attainment",
    "fields": [
        {"name": "upn", "column": "upn", "kind": "exact"},
        {"name": "forename", "column": "forename", "kind": "name"},
        {"name": "surname", "column": "surname", "kind": "name"},
        {"name": "dob", "column": "dob", "kind": "date", "format": "%Y-%m-%d"},
        {"name": "sex", "column": "sex", "kind": "sex"},
        {"name": "school_la", "column": "la", "kind": "category"},
        {"name": "school_urn", "column": "urn", "kind": "category"},
        {"name": "key_stage", "column": "key_stage", "kind": "category"},
        *({"name": name, "column": name, "kind": "category"} for name in RESULTS),
    ],
}


def write_attainment(rng, out: Path, census_truth: pd.DataFrame, care: SocialCare,
                     cfg: dict) -> pd.DataFrame:
    """Write each summer's attainment CSV and the mapping; ``truth/attainment.parquet``; return
    the truth of every row written (as the other sources' rows in records.parquet)."""
    pupils = _pupils_at_end_of_stage(out, census_truth, cfg)
    results = attainment_results(rng, pupils, care, cfg)
    rows = pd.concat([pupils.reset_index(drop=True), results.drop(
        columns=["person_id", "period", "key_stage"])], axis=1)
    rows["row"] = rows.groupby("period").cumcount() + 2
    rows["result_id"] = ("KS" + rows.key_stage.astype(str) + "-" + rows.period.astype(str)
                         + "-" + rows.row.astype(str).str.zfill(7))
    rows["file"] = FOLDER + "/" + rows.period.astype(str) + ".csv"
    columns = [MAPPING["record_id"], *(spec["column"] for spec in MAPPING["fields"])]
    for period, written in rows.groupby("period", sort=True):
        write_csv(_as_text(written)[columns], out / FOLDER / f"{period}.csv")
    (out / FOLDER / "mapping.yaml").write_text(
        "# NPD-like key stage attainment, one file per summer (written by linkage synth)\n"
        + yaml.safe_dump(MAPPING, sort_keys=False), encoding="utf-8")
    write_parquet(rows[["person_id", "period", "key_stage", "result_id", "care_group",
                        *RESULTS]].rename(columns={"result_id": "record_id"}),
                  out / "truth" / "attainment.parquet")
    return pd.DataFrame({
        "source": "generic", "provider": MAPPING["provider"], "period": rows.period,
        "file": rows.file, "row": rows.row, "record_id": rows.result_id,
        "person_id": rows.person_id, "dob_error": rows.dob_error, "sex_error": rows.sex_error,
        "upn_error": rows.upn_error, "name_error": rows.name_error})


def _pupils_at_end_of_stage(out: Path, census_truth: pd.DataFrame, cfg: dict) -> pd.DataFrame:
    """Main registrations in year 6 or year 11 of each January census, read back from the
    census files as written, with each row's truth (person and recording errors)."""
    stage_of_year = {str(cfg["ks2_year_group"]): 2, str(cfg["ks4_year_group"]): 4}
    # every value as the text written (a surname "Null" stays a name); files up to 2022 call
    # the sex column gender, so each file has one of the two
    wanted = ["upn", "forename", "surname", "dob", "sex", "gender", "lea", "urn",
              "ncyearactual", "enrolstatus"]
    options = pacsv.ConvertOptions(column_types=dict.fromkeys(wanted, pa.string()),
                                   null_values=[""], strings_can_be_null=True,
                                   include_columns=wanted, include_missing_columns=True)
    frames = []
    for file, truth in census_truth.groupby("file", sort=True):
        census = pacsv.read_csv(out / file, convert_options=options).to_pandas()
        census["row"] = np.arange(2, len(census) + 2)
        census = census[census.ncyearactual.isin(list(stage_of_year))
                        & (census.enrolstatus.fillna("") != "S")]
        frames.append(census.merge(truth, on="row", validate="one_to_one"))
    pupils = pd.concat(frames, ignore_index=True)
    pupils["key_stage"] = pupils.ncyearactual.map(stage_of_year)
    held = (pupils.key_stage != 2) | ~pupils.period.isin(cfg["ks2_not_held"])
    pupils = pupils[held].sort_values(["period", "key_stage", "lea", "urn", "person_id"],
                                      kind="stable", ignore_index=True)
    old = pupils.dob.str.contains(" ", na=False)
    dob = np.where(old, pd.to_datetime(pupils.dob.where(old), format=OLD_DATE_STYLE),
                   pd.to_datetime(pupils.dob.where(~old), format="%Y-%m-%d"))
    return pupils.assign(
        dob=format_dates(dob.astype("datetime64[D]"), "%Y-%m-%d"),
        sex=pupils.sex.fillna(pupils.gender), la=pupils.lea)


def _as_text(rows: pd.DataFrame) -> pd.DataFrame:
    """Results as the file writes them: numbers in their shortest form (105, 46.5, -0.35),
    flags 1 or 0, and an empty cell where the stage has no such result."""
    out = rows.copy()
    for column in [*RESULTS, "key_stage"]:
        text = pa.array(out[column].to_numpy(dtype=float), from_pandas=True).cast(pa.string())
        out[column] = pc.fill_null(text, "").to_numpy(zero_copy_only=False)
    return out
