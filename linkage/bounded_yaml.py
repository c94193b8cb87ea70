"""Every YAML file the toolkit reads (configs, extract requests, mappings, delivery plans) goes
through :func:`read_yaml`: safe YAML, within limits of size, nesting and expanded size.

YAML is written by people, some of whom are not trusted (a researcher's request), and a few
lines can be made to expand into billions of values through aliases (a "YAML bomb"), or to
nest deeper than Python can recurse. The limits are far above any real file (the largest
packaged config is about 10 kB, 5 levels deep, with no aliases) and far below what harms a
machine; a file beyond them is refused with a message, before anything uses it.
"""

from collections.abc import Callable, Hashable
from pathlib import Path

import yaml

MAX_BYTES = 1_000_000      # a file larger than this is refused unread
MAX_DEPTH = 50             # mappings and lists inside each other
MAX_VALUES = 100_000       # keys and values once aliases are expanded


class YamlProblem(ValueError):
    """A YAML file cannot be used; the message says why (the caller names the file)."""


class BoundedLoader(yaml.SafeLoader):
    """Safe YAML that counts as it composes: nesting depth, and values with aliases expanded
    (an alias reuses its anchor's whole subtree, so its weight is that subtree's). A key given
    twice in one mapping is refused too (plain YAML silently keeps the last)."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._weights: dict[int, int] = {}   # id(node) -> values in it, aliases expanded
        self._open: list[str] = []           # anchors of the values being composed

    def compose_node(self, parent, index):
        event = self.peek_event()
        anchor = getattr(event, "anchor", None)
        if isinstance(event, yaml.AliasEvent) and anchor in self._open:
            # a value holding itself: endless to anything that walks it (json, a deep copy)
            raise YamlProblem(f"is not valid YAML (line {event.start_mark.line + 1}: alias "
                              f"*{anchor} refers to a value that holds it)")
        opens = anchor is not None and not isinstance(event, yaml.AliasEvent)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise YamlProblem(f"is nested more than {MAX_DEPTH} levels deep")
        if opens:
            self._open.append(anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if opens:
                self._open.pop()
        self._weigh(node)
        return node

    def _weigh(self, node) -> None:
        if id(node) in self._weights:   # an alias: its anchor was weighed already
            return
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            children = []
        weight = 1 + sum(self._weights.get(id(child), 1) for child in children)
        if weight > MAX_VALUES:
            raise YamlProblem(f"holds more than {MAX_VALUES:,} values once its aliases are "
                              "expanded (a YAML bomb?)")
        self._weights[id(node)] = weight

    def construct_mapping(self, node, deep=False):
        self.flatten_mapping(node)
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark)
            if isinstance(key, Hashable):
                seen.add(key)
        return super().construct_mapping(node, deep)


def _utf8(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as problem:
        raise YamlProblem(f"cannot be read ({problem.strerror or type(problem).__name__})"
                          ) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as problem:
        raise YamlProblem(f"is not UTF-8 text (byte {problem.start + 1} cannot be decoded); "
                          "save it as UTF-8") from None


def read_yaml(path: Path, text_of: Callable[[Path], str] = _utf8) -> object:
    """The YAML document in ``path``, within the limits above.

    ``text_of`` reads the file's text (default: UTF-8, with or without a byte order mark).
    Raises :class:`YamlProblem` (the reason, without the file's name, which the caller adds)
    for a file that is missing, too large, not text, not YAML, too deep or too big expanded.
    """
    try:
        size = path.stat().st_size
    except OSError as problem:
        raise YamlProblem(f"cannot be read ({problem.strerror or type(problem).__name__})"
                          ) from None
    if size > MAX_BYTES:
        raise YamlProblem(f"is {size:,} bytes; a YAML file here may hold at most "
                          f"{MAX_BYTES:,}")
    if path.is_dir():
        raise YamlProblem("is a folder, not a YAML file")
    return parse_yaml(text_of(path))


def parse_yaml(text: str) -> object:
    """The YAML document in ``text``, within the limits above; :class:`YamlProblem` if not."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise YamlProblem(f"is larger than {MAX_BYTES:,} bytes")
    try:
        return yaml.load(text, Loader=BoundedLoader)
    except yaml.YAMLError as problem:
        mark = getattr(problem, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        what = getattr(problem, "problem", None) or "cannot be parsed"
        raise YamlProblem(f"is not valid YAML ({where}{what})") from None
    except RecursionError:   # the depth limit stops this first; a guard all the same
        raise YamlProblem(f"is nested more than {MAX_DEPTH} levels deep") from None
