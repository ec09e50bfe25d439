"""CLI sub-command ``scrape``: search the web per class, or download a URL list into one class."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from ..data.tree import validate_label
from ..data.workspace import Workspace
from ..errors import CleaningError
from ..scrape.fetch import DownloadConfig
from ..scrape.run import download_url_list, scrape_classes
from ..scrape.search import DEFAULT_TEMPLATES, check_template, parse_classes
from . import add_root_command


def register(sub: Any) -> None:
    """Register ``python -m cleaning scrape``."""
    p = add_root_command(sub, "scrape", "search the web for images per class, or download a URL list "
                                         "(ROOT is created if missing)")
    p.description = ("Search images per class (--classes) or download exactly the URLs in a file into one class "
                     "(--label --urls-file). Safe downloads (SSRF guard, size/time caps), duplicates skipped, "
                     "reruns resume.")
    p.add_argument("--classes", help='comma-separated class names, e.g. "grizzly bear,black bear"')
    p.add_argument("--per-class", type=int, default=100, help="scraped images wanted per class (default 100)")
    p.add_argument("--template", action="append", default=None, metavar="T",
                   help='query template with {label}; repeatable (default: "{label}" and "{label} photo")')
    p.add_argument("--negative", action="append", default=[], metavar="WORD",
                   help="term to exclude from every query (repeatable), e.g. --negative drawing")
    p.add_argument("--label", help="class to download --urls-file into")
    p.add_argument("--urls-file", type=Path, help="file with one image URL per line (# comments ok)")
    p.add_argument("--allow-private-hosts", action="store_true",
                   help="allow loopback/private addresses (off: such URLs are refused, SSRF guard)")
    p.add_argument("--report", type=Path, help="write REPORT.json (downloaded, duplicates, rejected)")
    p.add_argument("--workers", type=int, default=8, help="parallel downloads (default 8)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per connect/read (default 10)")
    p.add_argument("--max-mb", type=float, default=20.0, help="largest download in MB (default 20)")
    p.set_defaults(func=run_scrape_cli)


def _read_urls(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeError) as e:
        raise CleaningError(f"cannot read URL file {str(path)!r}: {e}", "pass a text file, one URL per line") from e
    urls = [s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#")]
    if not urls:
        raise CleaningError(f"URL file {str(path)!r} has no URLs", "put one image URL per line")
    return urls


def run_scrape_cli(args: argparse.Namespace) -> int:
    """Run the ``scrape`` sub-command; raises :class:`CleaningError` for bad input (main prints it)."""
    if bool(args.classes) == bool(args.label):
        raise CleaningError("give either --classes (search) or --label with --urls-file",
                            'e.g. --classes "grizzly bear,black bear" or --label bear --urls-file urls.txt')
    if bool(args.label) != bool(args.urls_file):
        raise CleaningError("--label and --urls-file go together", "pass both to download a URL list")
    if args.workers < 1 or args.timeout <= 0 or args.max_mb <= 0 or args.per_class < 1:
        raise CleaningError("--workers, --timeout, --max-mb and --per-class must be positive")
    templates = [check_template(t) for t in (args.template or DEFAULT_TEMPLATES)]
    labels = parse_classes(args.classes) if args.classes else [validate_label(args.label)]
    urls = _read_urls(args.urls_file) if args.urls_file else []
    root = Path(args.root).expanduser()
    if not root.exists():
        root.mkdir(parents=True)
        print(f"created {root}", flush=True)
    ws = Workspace.open(root, state_dir=args.state_dir)
    config = DownloadConfig(timeout=args.timeout, total_timeout=max(30.0, 3 * args.timeout),
                            max_bytes=int(args.max_mb * 2**20), workers=args.workers,
                            allow_private_hosts=args.allow_private_hosts)
    t0 = time.monotonic()
    if urls:
        report = download_url_list(ws, labels[0], urls, config=config)
    else:
        report = scrape_classes(ws, labels, per_class=args.per_class, templates=templates,
                                negative_terms=args.negative, config=config)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
    for label in labels:
        n = {s: sum(o.label == label and o.status == s for o in report.outcomes)
             for s in ("downloaded", "duplicate", "rejected", "skipped")}
        print(f"{label}: {n['downloaded']} downloaded, {n['duplicate']} duplicates, {n['rejected']} rejected, "
              f"{n['skipped']} skipped (seen before)", flush=True)
    print(f"done in {time.monotonic() - t0:.1f} s" + (f"; report: {args.report}" if args.report else ""), flush=True)
    if report.error:
        raise report.error
    return 0

