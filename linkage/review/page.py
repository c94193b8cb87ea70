"""The clerical review page: one offline HTML file (inline CSS and JavaScript, no network),
rendered with Jinja2 from the template shipped in this package."""

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from linkage.match.model import match_settings
from linkage.review.pairs import DISAGREE, NEAR, ReviewPairs


def render_page(review: ReviewPairs) -> str:
    """The page's HTML; the same pairs give the same bytes."""
    environment = Environment(loader=PackageLoader("linkage.review", "templates"),
                              autoescape=select_autoescape(["html", "j2"]),
                              undefined=StrictUndefined, keep_trailing_newline=True)
    numbered = [{**pair, "number": number}
                for number, pair in enumerate(review.pairs, start=1)]
    return environment.get_template("review.html.j2").render(
        version=review.version, pairs_sha256=review.pairs_sha256, pairs=numbered,
        near=[p for p in numbered if p["kind"] == NEAR],
        disagree=[p for p in numbered if p["kind"] == DISAGREE],
        threshold_weight=review.threshold_weight,
        threshold_probability=match_settings()["threshold"], within=review.within,
        found=review.found)
