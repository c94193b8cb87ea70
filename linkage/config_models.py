"""What each configuration file may hold: one pydantic model per file under ``configs/``.

Models are strict: a value of the wrong type is refused rather than converted (``"6"`` is not
6, ``true`` is not 1), a key a model does not name is refused (a misspelt key would otherwise be
silently ignored), and values a reader cannot use (a count threshold of 0, a share above 1) are
refused. :func:`linkage.config.load_config` validates with these models but hands callers the
file's own mapping, so readers see exactly what the file says.

``MODELS`` maps each file name to its model; its keys are also the names a site's config folder
may hold.
"""

import itertools
import re
from types import UnionType
from typing import Annotated, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from linkage.sources.schema import SOURCE_KINDS, STANDARD_SOURCE_NAMES

# a tuple subscript is the same Literal as its values written out
BUNDLE_SOURCE = Literal[STANDARD_SOURCE_NAMES]
# the identifier columns canonical_records (linkage/sources/canonical.py) understands
IDENTIFIER = Literal["upn", "upn_unknown", "former_upn", "dob", "sex", "postcode", "ethnicity",
                     "forename", "middle_names", "surname", "preferred_surname",
                     "former_surname"]


class FieldProblem(ValueError):
    """A cross-field check's complaint about a part of the checked mapping (``where``, a tuple
    of keys below the model), so the error names that part rather than the whole mapping."""

    def __init__(self, where: tuple, message: str):
        super().__init__(message)
        self.where = where
        self.message = message


class Strict(BaseModel):
    """Base of every closed model: no conversions, no unknown keys, no NaN or infinity."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False,
                              populate_by_name=False)


def _lower_case(value: str) -> str:
    if value != value.lower():
        raise ValueError(f"must be lower case (found {value!r}): columns are matched after "
                         "lower-casing")
    return value


def _not_a_number(value: str) -> str:
    # a marker that reads as a number would be taken for a real count
    try:
        float(value)
    except ValueError:
        return value
    raise ValueError(f"must not read as a number (found {value!r})")


def _date_format(value: str) -> str:
    if "%" not in value:
        raise ValueError(f"must be a strftime format such as %Y-%m-%d (found {value!r})")
    return value


Text = Annotated[str, Field(min_length=1, max_length=1000)]
# Names a person types (project ids, datasets, their fields, cohorts): plain and short, because
# they become file names and columns, and inputs to keyed hashes (a 1 MB project id once kept
# an extract busy for 13 minutes)
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
NAME_MAX_LENGTH = 64
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH)]
Column = Annotated[str, Field(min_length=1), AfterValidator(_lower_case)]
Marker = Annotated[str, Field(min_length=1, max_length=10), AfterValidator(_not_a_number)]
DateFormat = Annotated[str, AfterValidator(_date_format)]
Probability = Annotated[float, Field(ge=0, le=1)]
PositiveInt = Annotated[int, Field(ge=1)]
NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
Bits = float
For = Annotated[float, Field(ge=0)]       # agreement: evidence for a link, never against
Against = Annotated[float, Field(le=0)]   # disagreement: evidence against, never for


def name_problem(value: object) -> str | None:
    """Why ``value`` cannot be a name (such as a project id), or None if it can."""
    from pydantic import TypeAdapter

    try:
        TypeAdapter(Name).validate_python(value, strict=True)
    except ValidationError:
        return (f"must be at most {NAME_MAX_LENGTH} letters, digits, '_', '.' or '-', starting "
                "with a letter or digit")
    return None


def _weights(value: dict) -> dict:
    if value and sum(value.values()) <= 0:
        raise ValueError("weights must not all be zero")
    return value


def weights_of(key: object) -> object:
    """Relative weights of a random draw keyed by ``key``: at least one key, none negative,
    not all zero."""
    return Annotated[dict[key, NonNegative], Field(min_length=1), AfterValidator(_weights)]


Weights = weights_of(Text)
HouseholdWeights = weights_of(Literal["MF", "F1", "M1", "FF", "MM"])
AgencyWeights = weights_of(Literal["own", "voluntary", "other_regional"])
MaternityWeights = weights_of(Annotated[int, Field(ge=1)])


# ---------------------------------------------------------------- attack_limits.yaml

class AttackLimits(Strict):
    """configs/attack_limits.yaml: the most each attack may recover (shares of records)."""

    exact_forename_beyond_chance: Probability
    exact_surname_beyond_chance: Probability
    exact_dob: Probability
    care_status_beyond_chance: Probability


# ---------------------------------------------------------------- disclosure.yaml

class Disclosure(Strict):
    """configs/disclosure.yaml: suppression and rounding of released counts."""

    min_count: PositiveInt
    min_count_floor: PositiveInt
    suppress_zero: bool = False
    suppressed: Marker
    national_rounding: PositiveInt
    hidden_percentage: Marker

    @model_validator(mode="after")
    def _not_below_the_floor(self):
        # a low threshold would switch disclosure control off without a word
        if self.min_count < self.min_count_floor:
            raise FieldProblem(("min_count",), f"must be at least min_count_floor "
                               f"{self.min_count_floor} (found {self.min_count}): below it "
                               "small counts that identify children would be released")
        return self


# ---------------------------------------------------------------- ethnic_groups.yaml

class EthnicCode(Strict):
    label: Text
    group: Text


class EthnicGroups(Strict):
    """configs/ethnic_groups.yaml: each ETHNIC code's label and GSS harmonised major group."""

    groups: Annotated[list[Text], Field(min_length=1)]
    codes: Annotated[dict[Text, EthnicCode], Field(min_length=1)]
    not_recorded: EthnicCode
    detailed_max_suppressed_share: Probability

    @model_validator(mode="after")
    def _groups_are_listed(self):
        # a group no table row lists would drop its children from every table
        for code, entry in [*self.codes.items(), ("not_recorded", self.not_recorded)]:
            if entry.group not in self.groups:
                where = ("codes", code, "group") if code != "not_recorded" else (
                    "not_recorded", "group")
                raise FieldProblem(where, f"{entry.group!r} is not one of groups")
        if len(set(self.groups)) != len(self.groups):
            raise FieldProblem(("groups",), "lists a group twice")
        return self


# ---------------------------------------------------------------- tables.yaml

class Route(Strict):
    label: Text
    codes: Annotated[list[Text], Field(min_length=1)]


def _ascending_from_zero(bands: list[int]) -> list[int]:
    if bands[0] != 0 or any(b <= a for a, b in itertools.pairwise(bands)):
        raise ValueError("must start at 0 and rise")
    return bands


Bands = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1),
                  AfterValidator(_ascending_from_zero)]


class Tables(Strict):
    """configs/tables.yaml: codes and bands of the strategy's summary tables."""

    routes: Annotated[list[Route], Field(min_length=1)]
    other_route: Text
    not_an_exit: list[Text]
    placement_change_rne: Annotated[list[Text], Field(min_length=1)]
    placement_change_bands: Bands
    month_bands: Bands
    placement_order_ls: Annotated[list[Text], Field(min_length=1)]
    care_start_rne: Annotated[list[Text], Field(min_length=1)]

    @model_validator(mode="after")
    def _a_code_has_one_route(self):
        seen: dict[str, int] = {}
        for index, route in enumerate(self.routes):
            for code in route.codes:
                if code in seen:
                    raise FieldProblem(("routes", index, "codes"),
                                       f"{code} is also in routes[{seen[code]}]")
                if code in self.not_an_exit:
                    raise FieldProblem(("routes", index, "codes"),
                                       f"{code} is also in not_an_exit")
                seen[code] = index
        return self


# ---------------------------------------------------------------- evaluation.yaml

class Evaluation(Strict):
    """configs/evaluation.yaml: when a truth may score a spine."""

    truth_min_coverage: Annotated[float, Field(gt=0, le=1)]


# ---------------------------------------------------------------- review.yaml

class Review(Strict):
    """configs/review.yaml: which pairs the clerical review page offers."""

    within_bits: Annotated[float, Field(gt=0, le=64)]
    limit: Annotated[int, Field(ge=1, le=100_000)]
    disagreeing_comparisons: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]]
    memory_limit: Annotated[str, Field(pattern=r"^\d+(\.\d+)?\s*[KMGT]i?B$")]


# ---------------------------------------------------------------- families.yaml

class DateWeights(Strict):
    same: For
    same_week: For
    differ: Against


class AgreeWeights(Strict):
    agree: For
    differ: Against


class SameWeights(Strict):
    same: For
    differ: Against


class ChildAdopterWeights(Strict):
    matched_date: DateWeights
    placed_date: DateWeights
    same_agency: For
    adopters_count: AgreeWeights
    adopters_sex: AgreeWeights
    adopters_status: AgreeWeights
    children_count: AgreeWeights


class ChildAdopter(Strict):
    prior_bits: Bits
    min_confidence: Probability
    min_margin_bits: NonNegative
    weights: ChildAdopterWeights
    legal_status: dict[Text, Annotated[list[Text], Field(min_length=1)]]


class SiblingWeights(Strict):
    same_la_same_day: For
    home_postcode: SameWeights
    asg_sibling_flags: For
    same_dob: For
    placed_together: For
    shared_pupil_home: For


class Siblings(Strict):
    min_confidence: Probability
    prior_bits: Bits
    weights: SiblingWeights


class MotherChildWeights(Strict):
    dob_is_mother_child_dob: For
    same_la: For
    same_ethnicity: For
    ethnicity_differs: Against


class MotherChild(Strict):
    min_confidence: Probability
    prior_bits: Bits
    weights: MotherChildWeights


class Families(Strict):
    """configs/families.yaml: evidence weights (bits) and thresholds of the family keys."""

    child_adopter: ChildAdopter
    siblings: Siblings
    mother_child: MotherChild


# ---------------------------------------------------------------- release.yaml

class Dataset(Strict):
    source: BUNDLE_SOURCE
    fields: Annotated[dict[Name, Text], Field(min_length=1)]

    @model_validator(mode="after")
    def _table_dot_column(self):
        for name, where in self.fields.items():
            table, _, column = where.partition(".")
            if not table or not column:
                raise FieldProblem(("fields", name),
                                   f"must be content_table.column (found {where!r})")
        return self


class Outputs(Strict):
    """How an extract's microdata is written: each file in every format listed."""

    formats: Annotated[list[Literal["parquet", "csv", "stata"]], Field(min_length=1)]

    @model_validator(mode="after")
    def _each_format_once(self):
        if len(set(self.formats)) != len(self.formats):
            raise FieldProblem(("formats",), "names a format twice")
        return self


class EducationLinkage(Strict):
    """How far a cohort is followed into education data (release.yaml)."""

    care_sources: Annotated[list[BUNDLE_SOURCE], Field(min_length=1)]
    pupil_source: BUNDLE_SOURCE
    upn_unusable_flags: Annotated[list[Name], Field(min_length=1)]


class Release(Strict):
    """configs/release.yaml: what researchers may request, and what is never released."""

    datasets: Annotated[dict[Name, Dataset], Field(min_length=1)]
    forbidden: Annotated[dict[Name, Text], Field(min_length=1)]
    education_linkage: EducationLinkage
    cohorts: Annotated[list[Name], Field(min_length=1)]
    outputs: Outputs = Outputs(formats=["parquet", "csv", "stata"])

    @model_validator(mode="after")
    def _nothing_forbidden_offered(self):
        # a catalogue that offers a forbidden field would be refused only at request time
        forbidden = {name.lower() for name in self.forbidden}
        for dataset, spec in self.datasets.items():
            for name, where in spec.fields.items():
                column = where.partition(".")[2].lower()
                if name.lower() in forbidden or column in forbidden:
                    raise FieldProblem(("datasets", dataset, "fields", name),
                                       "is on the forbidden list and cannot be offered")
        return self

    @model_validator(mode="after")
    def _known_cohorts(self):
        from linkage.release.cohorts import COHORTS  # pandas: only when release.yaml is read

        known = [*COHORTS, "all"]
        for index, name in enumerate(self.cohorts):
            if name not in known:
                raise FieldProblem(("cohorts", index),
                                   f"{name!r} is not a cohort this toolkit can build "
                                   f"({', '.join(known)})")
        return self


# ---------------------------------------------------------------- codebook.yaml

class CodedColumn(Strict):
    """One column of the codebook: what it means and, where it is coded, code -> label."""

    meaning: Text
    codes: dict[Annotated[str, Field(min_length=1, max_length=64)], Text] = {}
    source: Text | None = None   # where the column comes from, when not a dataset's field


class TableColumns(Strict):
    rows: dict[Name, Name]   # table -> the name of its first column (what its rows are)
    cells: Text              # what every other column of a table holds
    percent_cells: Text      # the same, in a table of percentages (name ending _percent)
    cells_by_table: dict[Name, Text] = {}   # a table whose cells count something else


class Codebook(Strict):
    """configs/codebook.yaml: meanings and code lists of the columns extracts release."""

    columns: dict[Name, CodedColumn]
    fields: dict[Name, dict[Name, CodedColumn]]
    tables: TableColumns


# ---------------------------------------------------------------- sources.yaml

def _range(pair: list[int]) -> list[int]:
    if len(pair) != 2 or not 0 <= pair[0] <= pair[1] <= 999:
        raise ValueError(f"must be [low, high] with 0 <= low <= high <= 999 (found {pair})")
    return pair


class Upn(Strict):
    la_number_ranges: Annotated[list[Annotated[list[int], AfterValidator(_range)]],
                                Field(min_length=1)]
    unknown_codes: list[Text]


class Ethnicity(Strict):
    codes: Annotated[list[Text], Field(min_length=1)]
    extended: dict[Text, Text] = {}

    @model_validator(mode="after")
    def _rolls_up_to_a_code(self):
        for code, main in self.extended.items():
            if main not in self.codes:
                raise FieldProblem(("extended", code),
                                   f"rolls up to {main!r}, which is not one of codes")
        return self


SexCodes = Annotated[dict[Text, Literal["M", "F", "U"]], Field(min_length=1)]
DateFormats = Annotated[list[DateFormat], Field(min_length=1)]


class SexBySource(Strict):
    # every kind: canonical_records looks up the kind's codes without a fallback
    ssda903: SexCodes
    cin: SexCodes
    school_census: SexCodes = Field(alias="school-census")
    asg_children: SexCodes = Field(alias="asg-children")
    asg_adopters: SexCodes = Field(alias="asg-adopters")
    generic: SexCodes


class DateFormatsBySource(Strict):
    # the ASG readers need their own; other kinds fall back to ISO dates
    ssda903: DateFormats | None = None
    cin: DateFormats | None = None
    school_census: DateFormats | None = Field(None, alias="school-census")
    asg_children: DateFormats = Field(alias="asg-children")
    asg_adopters: DateFormats = Field(alias="asg-adopters")
    generic: DateFormats | None = None


class AsgMapping(Strict):
    record_id: Column
    provider: Column
    columns: Annotated[dict[IDENTIFIER, Column], Field(min_length=1)]
    dates: list[Column]
    attributes: list[Column]


class SchoolCensus(Strict):
    columns: dict[IDENTIFIER, Annotated[list[Column], Field(min_length=1)]]
    required: list[IDENTIFIER]
    attributes: list[Column]

    @model_validator(mode="after")
    def _required_have_columns(self):
        for index, name in enumerate(self.required):
            if name not in self.columns:
                raise FieldProblem(("required", index),
                                   f"{name!r} is required but has no entry under columns")
        return self


def _upper_case(value: str) -> str:
    if value != value.upper():
        raise ValueError(f"must be upper case (found {value!r}): 903 names are matched after "
                         "upper-casing")
    return value


Upper = Annotated[str, Field(min_length=1), AfterValidator(_upper_case)]
Year = Annotated[int, Field(ge=1990, le=2100)]


class Ssda903Table(Strict):
    columns: Annotated[list[Upper], Field(min_length=1)]
    optional: list[Upper] = []
    dates: list[Upper] = []
    xml: Annotated[list[Upper], Field(min_length=1)]
    inline: Upper | None = None

    @model_validator(mode="after")
    def _names_are_columns(self):
        if "CHILD" not in self.columns or "CHILD" in self.optional:
            raise FieldProblem(("columns",), "must include CHILD, which may not be optional")
        for part in ("optional", "dates"):
            for index, name in enumerate(getattr(self, part)):
                if name not in self.columns:
                    raise FieldProblem((part, index), f"{name!r} is not one of columns")
        if self.inline is not None and self.inline not in self.columns:
            raise FieldProblem(("inline",), f"{self.inline!r} is not one of columns")
        return self


class CodeSet(Strict):
    codes: Annotated[list[Upper], Field(min_length=1)]
    valid_from: Year | None = Field(None, alias="from")
    valid_to: Year | None = Field(None, alias="to")

    @model_validator(mode="after")
    def _ordered(self):
        if None not in (self.valid_from, self.valid_to) and self.valid_from > self.valid_to:
            raise FieldProblem(("from",), "must not be after to")
        return self


class Ssda903(Strict):
    tables: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], Ssda903Table]
    column_aliases: dict[Upper, Upper] = {}
    codes: dict[Upper, Annotated[list[CodeSet], Field(min_length=1)]] = {}

    @model_validator(mode="after")
    def _tables_known(self):
        for needed in ("header", "episodes"):  # the reader's records and postcodes come from them
            if needed not in self.tables:
                raise FieldProblem(("tables",), f"must include {needed!r}")
        owner: dict[str, str] = {}
        for name, table in self.tables.items():
            for element in table.xml:
                if owner.setdefault(element, name) != name:
                    raise FieldProblem(("tables", name, "xml"),
                                       f"{element!r} already names table {owner[element]!r}")
        columns = {c for table in self.tables.values() for c in table.columns}
        for field in self.codes:
            if field not in columns:
                raise FieldProblem(("codes", field), "is not a column of any table")
        return self


class Sources(Strict):
    """configs/sources.yaml: code sets and column conventions of the source readers."""

    schema_version: Literal[1]
    upn: Upn
    ethnicity: Ethnicity
    sex: SexBySource
    date_formats: DateFormatsBySource
    max_child_age: Annotated[int, Field(ge=1, le=100)]
    asg_children: AsgMapping
    asg_adopters: AsgMapping
    school_census: SchoolCensus
    ssda903: Ssda903


# ---------------------------------------------------------------- spark.yaml

def _spark_memory(value: str) -> str:
    if not re.fullmatch(r"[1-9][0-9]*[mg]", value):
        raise ValueError(f"must be a whole number of megabytes or gigabytes, as 512m or 2g "
                         f"(found {value!r})")
    return value


SparkMemory = Annotated[str, AfterValidator(_spark_memory)]


class SparkLocal(Strict):
    """Local mode: the driver and its executor threads in one JVM on this machine."""

    cores: Annotated[int, Field(ge=1)]
    driver_memory: SparkMemory


class SparkCluster(Strict):
    """A cluster's master: the driver here, the executors on the cluster's workers."""

    driver_memory: SparkMemory
    executor_cores: Annotated[int, Field(ge=1)]
    executor_memory: SparkMemory
    max_cores: Annotated[int, Field(ge=1)]
    executor_wait_seconds: Annotated[float, Field(gt=0)]
    shared_folder: str | None = None

    @model_validator(mode="after")
    def _enough_cores(self) -> "SparkCluster":
        if self.max_cores < self.executor_cores:
            raise ValueError(f"max_cores ({self.max_cores}) must be at least executor_cores "
                             f"({self.executor_cores}), or no executor can start")
        return self


class Spark(Strict):
    """configs/spark.yaml: the Spark backend's session, in local mode or on a cluster."""

    local: SparkLocal
    cluster: SparkCluster
    shuffle_partitions: Annotated[int, Field(ge=1)]


# ---------------------------------------------------------------- synthetic.yaml

class Calendar(Strict):
    first_year: Annotated[int, Field(ge=1990, le=2100)]
    years: Annotated[int, Field(ge=1, le=30)]


class Geography(Strict):
    people_per_la: PositiveInt
    min_las: Annotated[int, Field(ge=1, le=153)]   # England has 153 LAs
    las_per_regional_agency: PositiveInt
    la_own_adoption_share: Probability
    voluntary_agencies_per_la: NonNegative
    pupils_per_school_year: PositiveInt
    child_id_formats: Annotated[list[Text], Field(min_length=1)]


class Oversample(Strict):
    reference_people: PositiveInt
    exponent: NonNegative
    max: Annotated[float, Field(ge=1)]


class _Ordered(Strict):
    """A range: ``min`` at most ``max``."""

    @model_validator(mode="after")
    def _ordered(self):
        if self.min > self.max:
            raise FieldProblem(("max",), f"must be at least min ({self.min})")
        return self


class Span(_Ordered):
    min: Positive
    max: Positive


class SyntheticFamilies(Strict):
    maternities_weights: MaternityWeights
    birth_gap_years: Span
    multiple_birth_rate: Probability
    triplet_share: Probability
    half_sibling_rate: Probability
    half_sibling_lives_apart: Probability
    move_address_rate: Probability
    move_la_share: Probability


class Population(Strict):
    sex_female_share: Probability
    ethnicity_weights: Weights
    mixed_child_of_other_ethnicity: Probability
    forename_zipf_exponent: NonNegative
    surname_zipf_exponent: NonNegative
    middle_name_share: Probability
    preferred_surname_share: Probability
    state_school_share: Probability
    sixth_form_share: Probability


class SocialCare(Strict):
    referral_rate: NonNegative          # a Poisson rate, not a probability
    cin_duration_years: Positive
    cpp_share: Probability
    cla_share: Probability
    cla_child_enters: Probability
    unborn_share: Probability
    cla_duration_years: Positive
    placement_change_rate: NonNegative  # a Poisson rate
    transfer_rate: Probability
    outcome_weights: Weights
    ethnicity_risk: dict[Text, NonNegative]
    mother_rate: Probability
    mother_baby_looked_after: Probability


class TruthCohorts(Strict):
    short_break_legal_statuses: list[Upper]


class Days(Strict):
    mean: Positive
    sd: NonNegative


class AdoptAgain(Strict):
    share: Probability
    years: Span
    same_agency: Probability
    before_window: Probability


class WholeSpan(_Ordered):
    """A range of whole numbers (days, years of age)."""

    min: Annotated[int, Field(ge=0)]
    max: Annotated[int, Field(ge=0)]


class ProtectionPlans(Strict):
    second_plan_share: Probability
    plan_gap_days: WholeSpan
    repeat_referral_share: Probability
    repeat_gap_days: WholeSpan
    left_open_share: Probability
    category_weights: Weights
    category_changes: Probability


class Reentry(Strict):
    rate: Probability
    exits: Annotated[list[Text], Field(min_length=1)]
    gap_days: WholeSpan
    other_la_share: Probability


class Uasc(Strict):
    arrivals_per_100000: NonNegative
    male_share: Probability
    age_weights: Annotated[dict[Annotated[int, Field(ge=0, le=17)], NonNegative],
                           Field(min_length=1), AfterValidator(_weights)]
    legal_status_weights: Weights
    ceased_before_18_share: Probability
    ethnicity_weights: Weights
    un_code_weights: Weights


class Outcomes(Strict):
    sdq_ages: WholeSpan
    sdq_score: Days
    sdq_missing_share: Probability
    sdq_reason_of_age: Text
    sdq_reason_weights: Weights
    oc2_flag_shares: dict[Upper, Probability]
    convicted_min_age: Annotated[int, Field(ge=0)]
    intervention_received: Probability
    intervention_offered: Probability
    care_leaver_ages: Annotated[list[Annotated[int, Field(ge=16, le=25)]], Field(min_length=1)]
    in_touch_weights: Weights
    in_touch_with_details: list[Text]
    activity_weights: Weights
    accommodation_weights: Weights
    accommodation_unsuitable: Probability


class Adoption(Strict):
    adoption_share_by_age: Annotated[dict[Annotated[int, Field(ge=0)], Probability],
                                     Field(min_length=1)]
    max_share: Probability
    days_to_decision: Days
    days_decision_to_order: Days
    days_order_to_match: Days
    days_match_to_placed: Days
    days_placed_to_adoption_order: Days
    siblings_placed_together: Probability
    decision_reversed: Probability
    fostering_for_adoption: Probability
    unmatched_households: NonNegative   # households per matched household, may exceed 1
    household_weights: HouseholdWeights
    couple_married: Probability
    adopter_same_ethnicity_as_child: Probability
    adopter_ethnicity_weights: Weights
    adopters_same_ethnicity: Probability
    agency_shares: AgencyWeights
    new_upn_after_adoption: Probability
    takes_adopters_surname: Probability
    adopt_again: AdoptAgain


class ScaledScore(Strict):
    mean: float
    sd: NonNegative
    min: float
    max: float
    expected: float


class Attainment8(Strict):
    mean: float
    sd: NonNegative
    min: float
    max: float


class CareGaps(Strict):
    looked_after: float
    in_need: float


class StageGaps(Strict):
    ks2: CareGaps
    ks4: CareGaps


class SyntheticAttainment(Strict):
    ks2_year_group: Annotated[int, Field(ge=1, le=13)]
    ks4_year_group: Annotated[int, Field(ge=1, le=13)]
    ks2_not_held: list[int]
    progress8_not_published: list[int]
    persistence: Probability
    subject_correlation: Probability
    ks2_scaled_score: ScaledScore
    ks4_attainment8: Attainment8
    english_maths_grade4_share: Annotated[float, Field(gt=0, lt=1)]
    english_maths_noise: NonNegative
    gap_sd: StageGaps


class GroupMultipliers(Strict):
    ethnicity: dict[Text, NonNegative]
    moved_la: NonNegative


class Errors(Strict):
    dob_swap: Probability
    dob_component: Probability
    sex_wrong: Probability
    upn_missing_school_age: Probability
    upn_wrong_check_letter: Probability
    upn_temporary: Probability
    upn_change: Probability
    postcode_stale: Probability
    postcode_unformatted: Probability
    name_typo: Probability
    cin_duplicate: Probability
    school_dual_registration: Probability
    adopter_date_shift: Probability
    adopter_date_shift_days: PositiveInt
    group_multipliers: GroupMultipliers


class Synthetic(Strict):
    """configs/synthetic.yaml: every rate of the synthetic world generator."""

    schema_version: Literal[1]
    calendar: Calendar
    geography: Geography
    oversample: Oversample
    families: SyntheticFamilies
    population: Population
    social_care: SocialCare
    protection_plans: ProtectionPlans
    reentry: Reentry
    uasc: Uasc
    outcomes: Outcomes
    truth_cohorts: TruthCohorts
    adoption: Adoption
    attainment: SyntheticAttainment
    errors: Errors


# ---------------------------------------------------------------- linkage_schema.yaml

COLUMN = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
TRANSFORM = Literal["upn", "text", "postcode_sector", "sex_date", "date", "date_swapped",
                    "date_unordered", "iso_week", "bloom"]
SHARE = Annotated[float, Field(gt=0, lt=1)]
# a level's column: a column, or (in ``default``) the column the default is for
LEVEL_COLUMN = Annotated[str, Field(pattern=r"^([a-z][a-z0-9_]*|\{column\})$", max_length=64)]


class Bloom(Strict):
    length: Annotated[int, Field(ge=64, le=8192, multiple_of=64)]
    hashes: Annotated[int, Field(ge=1, le=64)]
    hardening: Literal["none", "balanced"]


class TokenSpec(Strict):
    fields: Annotated[list[IDENTIFIER], Field(min_length=1, max_length=3)]
    transform: TRANSFORM
    family: COLUMN
    salt: COLUMN | None = None


class FieldKind(Strict):
    transform: TRANSFORM
    suffix: Annotated[str, Field(pattern=r"^(_[a-z][a-z0-9_]*)?$")]
    salt: COLUMN | None = None
    digits: bool = False  # filters keep digits (free text), not only letters (names)


class Level(Strict):
    """One level of a comparison: exactly one of equal, either, cross or name."""

    equal: LEVEL_COLUMN | None = None
    either: Annotated[list[LEVEL_COLUMN], Field(min_length=2, max_length=2)] | None = None
    cross: Annotated[list[LEVEL_COLUMN], Field(min_length=2, max_length=2)] | None = None
    name: LEVEL_COLUMN | None = None
    tf: bool = False
    label: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> "Level":
        kinds = [k for k in ("equal", "either", "cross", "name") if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError("a level needs exactly one of equal, either, cross, name "
                             f"(found {', '.join(kinds) or 'none'})")
        return self


class Comparison(Strict):
    builtin: Literal["la_record_id", "care_events"] | None = None
    sources: list[BUNDLE_SOURCE] | None = None
    missing: Annotated[list[COLUMN], Field(min_length=1)] | None = None
    levels: Annotated[list[Level], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _builtin_or_levels(self) -> "Comparison":
        if (self.builtin is None) == (self.levels is None) or (
                self.levels is not None and self.missing is None):
            raise ValueError("a comparison is either a builtin, or has missing and levels")
        return self


class DefaultLevels(Strict):
    levels: Annotated[list[Level], Field(min_length=1)]


class Defaults(Strict):
    token: DefaultLevels
    bloom: DefaultLevels


class Training(Strict):
    prior: list[str]
    prior_recall: SHARE
    em: list[str]
    em_sample_pairs: Annotated[int, Field(ge=10_000)]
    u_sample_pairs: Annotated[int, Field(ge=10_000)]


class Match(Strict):
    threshold: SHARE
    prelink_floor: SHARE
    score_floor: SHARE
    max_pairs_per_record: Annotated[int, Field(ge=1, le=100_000)]
    blocking: Annotated[list[str], Field(min_length=1)]
    not_blocked_alone: list[COLUMN]
    training: Training

    @model_validator(mode="after")
    def _floors(self) -> "Match":
        if not self.score_floor <= self.threshold:
            raise FieldProblem(("score_floor",), "must not exceed threshold (pairs scored "
                               "below it are not kept, so none could reach the threshold)")
        return self


class Clustering(Strict):
    forename_conflict: Annotated[float, Field(gt=0, lt=1)] | None
    forename_conflict_when_same: list[COLUMN]
    forename_conflict_sources: list[BUNDLE_SOURCE]
    one_record_per_person: list[BUNDLE_SOURCE]
    ambiguity_bits: Annotated[float, Field(ge=0, le=20)]


class Events(Strict):
    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)

    ssda903: list[str] = []
    cin: list[str] = []
    asg_children: list[str] = Field(default=[], alias="asg-children")
    asg_adopters: list[str] = Field(default=[], alias="asg-adopters")
    school_census: list[str] = Field(default=[], alias="school-census")
    generic: list[str] = []
    weeks: list[str] = []


class Attributes(Strict):
    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)

    all: list[str] = []
    ssda903: list[str] = []
    cin: list[str] = []
    asg_children: list[str] = Field(default=[], alias="asg-children")
    asg_adopters: list[str] = Field(default=[], alias="asg-adopters")
    school_census: list[str] = Field(default=[], alias="school-census")


class LinkageSchema(Strict):
    """configs/linkage_schema.yaml: tokens, encodings, the model, blocking, training and
    clustering (the linkage unit's whole model)."""

    schema_version: Annotated[int, Field(ge=1)]
    token_bits: Literal[64]
    bloom: Bloom
    tokens: dict[COLUMN, TokenSpec]
    events: Events
    attributes: Attributes
    field_kinds: dict[Literal["exact", "date", "postcode", "name", "text"], FieldKind]
    comparisons: dict[COLUMN, Comparison]
    default: Defaults
    name_levels: Annotated[list[SHARE], Field(min_length=2, max_length=2)]
    match: Match
    clustering: Clustering

    @model_validator(mode="after")
    def _references(self) -> "LinkageSchema":
        for name, spec in {**self.tokens, **self.field_kinds}.items():
            if spec.salt is not None and spec.salt not in self.tokens:
                raise FieldProblem(("tokens" if name in self.tokens else "field_kinds", name,
                                    "salt"), f"names no token (found {spec.salt!r})")
        if self.name_levels != sorted(self.name_levels, reverse=True):
            raise FieldProblem(("name_levels",), "must run from the highest Dice down")
        return self


# ---------------------------------------------------------------- delivery plans
# Not a configs/ file: a provider's (or a rehearsal's) plan for `linkage hash-delivery`.

def _provider_text(value: object) -> object:
    # YAML reads 336 as a number and 065 as octal 53: a code must be quoted to stay itself
    if isinstance(value, int | float):
        raise ValueError(f"must be text: quote the provider code (found {value})")
    return value


def _printable(value: str) -> str:
    if not value.isprintable() or value != value.strip():
        raise ValueError("must be printable text without leading or trailing spaces")
    return value


def _folder_name(value: str) -> str:
    # a bundle is written as OUT/<name>: one plain folder name, never a path or hidden file
    if value.startswith(".") or not all(c.isalnum() or c in "._-" for c in value):
        raise ValueError(f"must be a folder name of letters, digits, '.', '_' and '-', not "
                         f"starting with '.' (found {value[:40]!r})")
    return value


ProviderCode = Annotated[str, BeforeValidator(_provider_text), Field(min_length=1, max_length=40),
                         AfterValidator(_printable)]
BundleName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_folder_name)]
PathText = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_printable)]


class DeliveryEntry(Strict):
    """One bundle of a delivery: one provider's files of one source."""

    source: Literal[tuple(SOURCE_KINDS)]
    provider: ProviderCode
    input: PathText | Annotated[list[PathText], Field(min_length=1)]
    bundle: BundleName
    mapping: PathText | None = None
    period: Annotated[int, Field(ge=1990, le=2100)] | None = None

    @model_validator(mode="after")
    def _mapping_for_generic_only(self) -> "DeliveryEntry":
        if self.source == "generic" and self.mapping is None:
            raise FieldProblem(("mapping",), "required for a generic source")
        if self.source != "generic" and self.mapping is not None:
            raise FieldProblem(("mapping",), f"applies to generic sources only, not "
                                             f"{self.source}")
        return self

    @property
    def inputs(self) -> list[str]:
        """The entry's files or folders, as a list however the plan wrote them."""
        return [self.input] if isinstance(self.input, str) else list(self.input)


class DeliveryPlan(Strict):
    """A delivery plan (YAML): the keys once at the top, then one entry per bundle. Every
    key file is optional here: a command-line option or environment variable can give it."""

    key: PathText | None = None
    sign_key: PathText | None = None
    sign_keys: dict[ProviderCode, PathText] = Field(default_factory=dict)
    to_unit: PathText | None = None
    to_custodian: PathText | None = None
    entries: Annotated[list[DeliveryEntry], Field(min_length=1)]

    @model_validator(mode="after")
    def _one_entry_per_bundle(self) -> "DeliveryPlan":
        first: dict[str, int] = {}
        for index, entry in enumerate(self.entries):
            if entry.bundle in first:
                raise FieldProblem(("entries", index, "bundle"),
                                   f"{entry.bundle!r} is also entries[{first[entry.bundle]}]'s "
                                   "bundle; each entry writes its own")
            first[entry.bundle] = index
        return self

    @model_validator(mode="after")
    def _signing_keys_of_known_providers(self) -> "DeliveryPlan":
        # a key for a provider no entry names is most likely a misspelt code
        providers = {entry.provider for entry in self.entries}
        for provider in self.sign_keys:
            if provider not in providers:
                raise FieldProblem(("sign_keys", provider),
                                   "names no provider of the entries")
        return self


# ---------------------------------------------------------------- model_explanations.yaml

Sentence = Annotated[str, Field(min_length=1, max_length=600)]


def _comparison_name(value: str) -> str:
    import re

    if not re.fullmatch(r"[a-z][a-z0-9_]*", value):
        raise ValueError(f"must be a comparison's name as the model has it: lower-case "
                         f"letters, digits and _ (found {value!r})")
    return value


class GenericExplanations(Strict):
    """The sentences for a comparison the file does not name, by level kind."""

    missing: Sentence     # the null level: one record or the other lacks the field
    other: Sentence       # the else level: all other comparisons (disagreement)
    agreement: Sentence   # any agreement level; {label} is the level's label


class ComparisonExplanation(Strict):
    meaning: Sentence                           # what the comparison compares
    levels: dict[str, Sentence] = {}           # by level label; "missing", "other" too


class ModelExplanations(Strict):
    """configs/model_explanations.yaml: a sentence per comparison of the model and per level
    kind, shown beside the trained m, u and weight in the quality report."""

    generic: GenericExplanations
    comparisons: dict[Annotated[str, AfterValidator(_comparison_name)],
                      ComparisonExplanation]


MODELS: dict[str, type[BaseModel]] = {
    "attack_limits.yaml": AttackLimits,
    "codebook.yaml": Codebook,
    "disclosure.yaml": Disclosure,
    "ethnic_groups.yaml": EthnicGroups,
    "evaluation.yaml": Evaluation,
    "families.yaml": Families,
    "linkage_schema.yaml": LinkageSchema,
    "model_explanations.yaml": ModelExplanations,
    "release.yaml": Release,
    "review.yaml": Review,
    "sources.yaml": Sources,
    "spark.yaml": Spark,
    "synthetic.yaml": Synthetic,
    "tables.yaml": Tables,
}


def register_model(name: str, model: type[BaseModel]) -> None:
    """Validate ``configs/<name>`` with ``model`` from now on (a new file, or a replacement)."""
    MODELS[name] = model


# ---------------------------------------------------------------- error messages

def describe_errors(problem: ValidationError, model: type[BaseModel], most: int = 3) -> str:
    """A validation failure as one line: ``field.path: what is wrong (found X)`` for the first
    ``most`` problems, then how many more there are."""
    parts = []
    for error in problem.errors(include_url=False):
        where, message = _describe(error, model)
        parts.append(f"{where}: {message}" if where else message)
    more = len(parts) - most
    return "; ".join(parts[:most]) + (f" (and {more} more)" if more > 0 else "")


def _describe(error: dict, model: type[BaseModel]) -> tuple[str, str]:
    loc = list(error["loc"])
    kind, ctx, found = error["type"], error.get("ctx") or {}, _found(error.get("input"))
    cause = ctx.get("error")
    if isinstance(cause, FieldProblem):
        return _path(model, [*loc, *cause.where]), cause.message
    if loc and loc[-1] == "[key]":
        key = loc[-2]
        return _path(model, loc[:-2]), (
            f"key {key!r}: {_type_message(kind, ctx, found) or error['msg']}")
    if kind == "missing":
        return _path(model, loc), "required but missing"
    if kind == "extra_forbidden":
        known = _known_keys(model, loc[:-1])
        listed = f" (known here: {', '.join(known)})" if known else ""
        return _path(model, loc), f"unknown key{listed}"
    if kind == "value_error" and cause is not None:
        return _path(model, loc), str(cause)
    return _path(model, loc), _type_message(kind, ctx, found) or (
        f"{error['msg'][:1].lower()}{error['msg'][1:]} (found {found})")


def _type_message(kind: str, ctx: dict, found: str) -> str | None:
    limits = {"greater_than_equal": ("at least", "ge"), "greater_than": ("more than", "gt"),
              "less_than_equal": ("at most", "le"), "less_than": ("less than", "lt")}
    if kind in limits:
        words, name = limits[kind]
        return f"must be {words} {_number(ctx[name])} (found {found})"
    types = {"int_type": "a whole number", "float_type": "a number", "bool_type": "true or false",
             "string_type": "text", "dict_type": "a mapping", "model_type": "a mapping",
             "list_type": "a list", "finite_number": "a finite number"}
    if kind in types:
        return f"must be {types[kind]} (found {found})"
    if kind == "literal_error":
        return f"must be {ctx['expected']} (found {found})"
    if kind in ("too_short", "string_too_short"):
        return f"must not be empty (found {found})"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters (found {found})"
    if kind == "string_pattern_mismatch":
        if ctx["pattern"] == NAME_PATTERN:
            return (f"must be a name of letters, digits, '_', '.' or '-', starting with a "
                    f"letter or digit (found {found})")
        return f"must match {ctx['pattern']} (found {found})"
    return None


def _path(model: type[BaseModel], loc: list) -> str:
    """``a.b[2].c``: keys joined by dots, list positions in brackets (a mapping's number keys,
    such as an age, are keys: the model tells which is which)."""
    text, annotation = "", model
    for part in loc:
        annotation = _unwrapped(annotation)
        in_list = get_origin(annotation) is list
        if isinstance(part, int) and in_list:
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
        annotation = _inner(annotation, part)
    return text


def _inner(annotation: object, part: object) -> object:
    """The annotation of ``part`` inside ``annotation`` (None once it cannot be followed)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, info in annotation.model_fields.items():
            if part in (name, info.alias):
                return info.annotation
        return None
    if get_origin(annotation) in (dict, list):
        return get_args(annotation)[-1]
    return None


def _number(value: object) -> str:
    """1 rather than 1.0 for a limit written as a whole number."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _found(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"text {value[:40]!r}"
    return str(value)[:40]


def _known_keys(model: type[BaseModel], loc: list) -> list[str]:
    """The keys the model accepts at ``loc`` (a model's fields), or [] if that is not a model."""
    annotation: object = model
    for part in loc:
        annotation = _inner(_unwrapped(annotation), part)
    annotation = _unwrapped(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [info.alias or name for name, info in annotation.model_fields.items()]
    return []


def _unwrapped(annotation: object) -> object:
    """Strip Annotated and Optional wrappers."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) in (Union, UnionType):
            options = [a for a in get_args(annotation) if a is not type(None)]
            annotation = options[0]
        else:
            return annotation
