"""Hand-made outcome data for extract tests: a 903 return with OC2, OC3, UASC and missing
tables, and the Welsh census samples, each hashed by the CLI."""

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from linkage.cli import app

runner = CliRunner()
WALES = Path(__file__).parent / "data" / "wales"
MAPPINGS = Path(__file__).parents[1] / "configs" / "mappings"
PROVIDER = "681"
CHILDREN = 6  # in the hand-made 903 return


def outcome_return(folder: Path) -> Path:
    """A 2023-24 903 return of six children, each with one episode of a start date of its own,
    and an OC2 row (SDQ score 10 + the child's number), an OC3 row, a UASC row and a missing
    episode for some of them."""
    folder.mkdir(parents=True)
    numbers = range(CHILDREN)
    child = [f"E{n:03d}" for n in numbers]
    dob = [f"{10 + n:02d}/0{1 + n}/2008" for n in numbers]
    tables = {
        "header": {"CHILD": child, "SEX": ["1", "2"] * 3, "DOB": dob,
                   "ETHNIC": ["WBRI", "BAFR", "WBRI", "APKN", "MWBC", "WBRI"],
                   "UPN": ["UN1"] * CHILDREN, "MOTHER": [""] * CHILDREN,
                   "MC_DOB": [""] * CHILDREN},
        "episodes": {"CHILD": child, "DECOM": [f"0{1 + n}/05/2023" for n in numbers],
                     "RNE": ["S"] * CHILDREN, "LS": ["C2"] * CHILDREN,
                     "CIN": ["N1"] * CHILDREN, "PLACE": ["U4"] * CHILDREN,
                     "PLACE_PROVIDER": ["PR1"] * CHILDREN, "DEC": [""] * CHILDREN,
                     "REC": [""] * CHILDREN, "REASON_PLACE_CHANGE": [""] * CHILDREN,
                     "HOME_POST": ["AB1 2CD"] * CHILDREN, "PL_POST": ["AB1 3EF"] * CHILDREN,
                     "URN": ["SC123456"] * CHILDREN},
        "oc2": {"CHILD": child[:4], "DOB": dob[:4], "SDQ_SCORE": [str(10 + n) for n in range(4)],
                "SDQ_REASON": [""] * 4, "CONVICTED": ["0", "1", "0", "0"],
                "HEALTH_CHECK": ["1"] * 4, "IMMUNISATIONS": ["1", "0", "1", "1"],
                "TEETH_CHECK": ["1"] * 4, "HEALTH_ASSESSMENT": ["1"] * 4,
                "SUBSTANCE_MISUSE": ["0"] * 4, "INTERVENTION_RECEIVED": [""] * 4,
                "INTERVENTION_OFFERED": [""] * 4},
        "oc3": {"CHILD": child[4:], "DOB": dob[4:], "IN_TOUCH": ["YES", "NO"],
                "ACTIV": ["F2", ""], "ACCOM": ["E1", ""]},
        "uasc": {"CHILD": child[5:], "SEX": ["2"], "DOB": dob[5:], "DUC": ["09/06/2026"]},
        "missing": {"CHILD": child[:2], "DOB": dob[:2], "MISSING": ["M", "A"],
                    "MIS_START": ["03/08/2023", "04/09/2023"],
                    "MIS_END": ["05/08/2023", "06/09/2023"]},
    }
    for name, columns in tables.items():
        pd.DataFrame(columns).to_csv(folder / f"{name}.csv", index=False)
    return folder


def hashed(args: list[str], out: Path, linkage_key: Path) -> Path:
    result = runner.invoke(app, ["hash", *args, "--key", str(linkage_key), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out




def outcome_bundles(folder: Path, linkage_key: Path) -> list[Path]:
    """The 903 return (LA 999) and both Welsh samples (LA 681), hashed by the CLI."""
    return_folder = outcome_return(folder / "903" / "2024")
    return [
        hashed(["--source", "ssda903", "--provider", "999", str(return_folder)],
               folder / "la_999_ssda903", linkage_key),
        hashed(["--source", "generic", "--mapping", str(MAPPINGS / "wales_cla_census.yaml"),
                "--provider", PROVIDER, "--period", "2024", str(WALES / "cla_census_2024.csv")],
               folder / "w681_cla", linkage_key),
        hashed(["--source", "generic", "--mapping", str(MAPPINGS / "wales_crcs.yaml"),
                "--provider", PROVIDER, "--period", "2024", str(WALES / "crcs_2024.csv")],
               folder / "w681_crcs", linkage_key),
    ]
