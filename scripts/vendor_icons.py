"""Bundle the workstation's icons from the Lucide npm package into ``resources/icons/``.

    npm pack lucide-static@1.62.0 && tar xzf lucide-static-1.62.0.tgz
    .venv/bin/python scripts/vendor_icons.py package/

Copies only the icons named in :data:`agentdesk.ui.icons.ICONS`, in two variants whose stroke
colour suits a light and a dark palette (Lucide draws with ``currentColor``, which a QIcon
cannot resolve), plus the package's licence and a note of where and which version they came
from. The output is committed; the app never fetches anything.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agentdesk.ui.icons import ICONS  # noqa: E402 - after the path is set

#: Stroke colours: the palettes' own text colours (agentdesk/ui/theme.py and Fusion's light).
STROKES = {"light": "#1f2328", "dark": "#e4e6eb"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", type=Path, help="the unpacked lucide-static package")
    parser.add_argument("--out", type=Path, default=ROOT / "resources" / "icons")
    args = parser.parse_args(argv)
    meta = json.loads((args.package / "package.json").read_text(encoding="utf-8"))
    if meta.get("name") != "lucide-static":
        raise SystemExit(f"{args.package} is not the lucide-static package")
    if args.out.exists():
        shutil.rmtree(args.out)
    for variant, stroke in STROKES.items():
        folder = args.out / variant
        folder.mkdir(parents=True)
        for name in sorted(set(ICONS.values())):
            svg = (args.package / "icons" / f"{name}.svg").read_text(encoding="utf-8")
            (folder / f"{name}.svg").write_text(
                svg.replace('stroke="currentColor"', f'stroke="{stroke}"'), encoding="utf-8")
    shutil.copy(args.package / "LICENSE", args.out / "LICENSE")
    (args.out / "SOURCE.md").write_text(
        f"# Icons\n\nFrom the npm package `lucide-static` {meta['version']} "
        f"(Lucide, {meta.get('license', 'ISC')} licence: see LICENSE beside this file), "
        "https://lucide.dev.\n\nOnly the icons the desktop uses are kept "
        "(`agentdesk/ui/icons.py`, `ICONS`), each in two variants: `light/` strokes "
        f"{STROKES['light']} for light palettes, `dark/` strokes {STROKES['dark']} for dark "
        "ones. Regenerate with `scripts/vendor_icons.py`.\n", encoding="utf-8")
    print(f"wrote {len(set(ICONS.values()))} icons x {len(STROKES)} variants to {args.out}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
