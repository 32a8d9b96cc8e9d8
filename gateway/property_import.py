"""``repairs-gateway properties import``: build each CSV fallback adaptor's property index
before serving, with progress (gateway/progress.py), so the first start of a council with a
national-scale file does not spend its start deadline importing it.

The index is written where the adaptor looks for it (its ``index_dir``, or
``data/csv_fallback``); an index already current for its file is left alone (``--force``
rebuilds it). Adaptors are found by what they offer (``import_properties``), not by type: the
gateway imports no adaptor."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from gateway.config import ConfigError, council_files, load_council_file
from gateway.councils import build_council
from gateway.progress import Progress


def import_properties(
    config_dir: Path,
    data_dir: Path,
    councils: list[str] | None,
    *,
    force: bool = False,
    out: TextIO,
    tty: bool | None = None,
) -> int:
    """Build the indexes; the number of failures (0: all built or current). Progress and
    summaries go to ``out`` (standard error from the command line)."""
    failures = 0
    found = 0
    paths = council_files(config_dir)
    known = {p.stem for p in paths}
    for cid in councils or []:
        if cid not in known:
            out.write(f"no council {cid!r} in {config_dir}\n")
            failures += 1
    for path in paths:
        if councils and path.stem not in councils:
            continue
        try:
            loaded = load_council_file(path)
        except ConfigError as exc:
            for p in exc.problems:
                out.write(f"{p}\n")
            failures += 1
            continue
        council, _ = build_council(loaded, data_dir, None)
        for name, adaptor in council.adaptors.items():
            run = getattr(adaptor, "import_properties", None)
            if run is None:
                continue
            found += 1
            what = f"properties {council.id}:{name}"
            progress = Progress(what, stream=out, tty=tty)
            try:
                count = run(progress, force=force)
            except (ValueError, OSError) as exc:  # PropertyFileError is a ValueError
                progress.finish("stopped")
                out.write(f"{what}: not imported: {exc}\n")
                failures += 1
                continue
            if count is None:
                out.write(f"{what}: index is current (--force rebuilds it)\n")
            else:
                progress.finish()
    if not found and not failures:
        out.write("no adaptor here imports a property file\n")
    return failures
