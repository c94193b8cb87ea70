"""The Welsh census mappings (configs/mappings/) accept their samples (tests/data/wales/).
Their extraction, with the world, is tested in test_generic.py."""

from typer.testing import CliRunner

from linkage.cli import app
from tests.outcomes import MAPPINGS, PROVIDER, WALES
from tests.output import said

runner = CliRunner()


def test_both_welsh_mappings_pass_the_check():
    for mapping, sample in (("wales_cla_census", "cla_census_2024"), ("wales_crcs",
                                                                    "crcs_2024")):
        result = runner.invoke(app, ["check", "--source", "generic", "--mapping",
                                     str(MAPPINGS / f"{mapping}.yaml"), "--provider",
                                     PROVIDER, "--period", "2024",
                                     str(WALES / f"{sample}.csv")])
        assert result.exit_code == 0, result.output
        assert "0 flagged, 0 rejected" in said(result)
