"""Reports rendered from Jinja2 templates: the layout in a template beside the module that fills it, the
values (already formatted) from that module.

A module that renders a template names it in a module-level `TEMPLATES = (...)`, so that `make deps`
declares the template as a dep of every stage that imports the module.
"""

from pathlib import Path
from typing import Any

import jinja2


def render(folder: Path, name: str, **values: Any) -> str:
    """Template `name` in `folder` filled with `values`: strict (a name the module did not pass is an error,
    not an empty string), HTML escaped in .html templates, block tags taking their own line breaks."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=jinja2.select_autoescape(["html", "html.j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return environment.get_template(name).render(**values)
