"""params.yaml as a document a person wrote: read and written back with its comments, quotes and layout, so
that what `make init` and `make budget` change is all `git diff params.yaml` shows."""

import io
import re
from typing import Any

import yaml
from ruamel.yaml import YAML

from pillars.core.io import write_text
from pillars.core.params import PARAMS_FILE, Params, parse_params


def yaml_round_trip() -> YAML:
    """A YAML reader and writer that keeps params.yaml's comments, quotes and layout (null as `null`); no
    line is wrapped, so lines it does not change come out as they went in."""
    handler = YAML()
    handler.preserve_quotes = True
    handler.width = 4096
    handler.indent(mapping=2, sequence=4, offset=2)
    handler.representer.add_representer(
        type(None), lambda representer, _: representer.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return handler


def with_section_breaks(text: str) -> str:
    """One blank line before each top-level section (a replaced value takes the one after it along)."""
    return re.sub(r"(?<=\S)\n(?=[a-z_]+:)", "\n\n", text)


def load_round_trip() -> Any:
    """params.yaml as an editable document."""
    return yaml_round_trip().load(PARAMS_FILE.read_text(encoding="utf-8"))


def dump_round_trip(document: Any) -> str:
    """The document as params.yaml text."""
    text = io.StringIO()
    yaml_round_trip().dump(document, text)
    return with_section_breaks(text.getvalue())


def write_round_trip(document: Any) -> Params:
    """Check the document as the stages will read it (a mistake stops before anything is written), write it
    to params.yaml atomically; the params."""
    written = dump_round_trip(document)
    params = parse_params(yaml.safe_load(written))
    write_text(PARAMS_FILE, written)
    return params
