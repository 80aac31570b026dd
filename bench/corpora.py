"""Public-domain corpora of other domains than the shipped one, fetched from Debian packages into a folder.

The shipped corpus (data/raw/shakespeare-milton) is verse and drama. To check that a training recipe wins on
text it was not tuned on, bench/learn.py --corpus takes one of these (nothing here is committed: each is
fetched from its package, `apt-get download` and `dpkg -x`, which needs Debian's apt and its package lists):

    python bench/corpora.py sqlite-doc /tmp/sqlite-doc   # technical prose, SQL and C: 6.8 MB of text, 766 pages
    python bench/corpora.py kjv /tmp/kjv                 # the King James Bible: 4.3 MB, one document per book

sqlite-doc: the SQLite documentation (Debian's sqlite3-doc), HTML pages turned into plain text, one .txt per
    page. Licence: public domain ("The files listed have been put on the public domain by the sqlite3
    contributors", /usr/share/doc/sqlite3-doc/copyright). Another domain than the shipped corpus: modern
    technical English, SQL syntax, C declarations.
kjv: the King James Version (1611; its copyright has expired, says Debian's bible-kjv-text copyright file),
    decoded from bible-kjv-text's compressed data by the `bible` program of bible-kjv, one .txt per book.
    Early modern English like the shipped corpus, but scripture rather than verse drama.

clean's default quality filters, tuned for web text, keep 2.6 MB of sqlite-doc and 2.0 MB of kjv (their
duplicate n-gram test takes reference pages and repetitive books for boilerplate); bench/learn.py's docstring
says how to keep them whole.
"""
from __future__ import annotations

import argparse
import html.parser
import re
import subprocess
import sys
import tempfile
from pathlib import Path

# The 66 books in order, as the `bible` program names them. "Book1:1-Book999:999" is the whole book: the
# program coerces a chapter or verse past the end to the book's last verse.
BOOKS = ["Genesis", "Exodus", "Leviticus", "Numbers", "Deuteronomy", "Joshua", "Judges", "Ruth", "1Samuel",
         "2Samuel", "1Kings", "2Kings", "1Chronicles", "2Chronicles", "Ezra", "Nehemiah", "Esther", "Job",
         "Psalms", "Proverbs", "Ecclesiastes", "Song", "Isaiah", "Jeremiah", "Lamentations", "Ezekiel", "Daniel",
         "Hosea", "Joel", "Amos", "Obadiah", "Jonah", "Micah", "Nahum", "Habakkuk", "Zephaniah", "Haggai",
         "Zechariah", "Malachi", "Matthew", "Mark", "Luke", "John", "Acts", "Romans", "1Corinthians",
         "2Corinthians", "Galatians", "Ephesians", "Philippians", "Colossians", "1Thessalonians",
         "2Thessalonians", "1Timothy", "2Timothy", "Titus", "Philemon", "Hebrews", "James", "1Peter", "2Peter",
         "1John", "2John", "3John", "Jude", "Revelation"]


def unpack(package: str, into: Path) -> Path:
    """apt-get download + dpkg -x: the package's files under `into`, without installing it."""
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", package], cwd=into, check=True, capture_output=True)
    deb = next(into.glob(f"{package}_*.deb"))
    root = into / package
    subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    return root


class TextOfHtml(html.parser.HTMLParser):
    """The text of a page: block elements become line breaks; scripts, styles, drawings and the divs SQLite marks
    `nosearch` (the site's menus, page titles and tables of contents: what its own search leaves out) are
    dropped."""

    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "dt", "dd",
              "table", "ul", "ol", "hr", "title"}
    HIDDEN = {"script", "style", "svg"}  # svg: the syntax diagrams, whose labels would be a jumble of words

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0
        self.pre = 0
        self.divs: list[bool] = []  # open divs: whether each hides its content

    def handle_starttag(self, tag, attrs):
        if tag == "div":
            hides = "nosearch" in (dict(attrs).get("class") or "").split()
            self.divs.append(hides)
            self.hidden += hides
        self.hidden += tag in self.HIDDEN
        self.pre += tag == "pre"
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag == "div" and self.divs:
            self.hidden -= self.divs.pop()
        self.hidden -= tag in self.HIDDEN and self.hidden > 0
        self.pre -= tag == "pre" and self.pre > 0
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data if self.pre else re.sub(r"\s+", " ", data))

    def text(self) -> str:
        lines = (line.strip() for line in "".join(self.parts).split("\n"))
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def sqlite_doc(out: Path, work: Path) -> int:
    root = unpack("sqlite3-doc", work) / "usr/share/doc/sqlite3"
    count = 0
    for page in sorted(root.rglob("*.html")):
        parser = TextOfHtml()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        name = page.relative_to(root).with_suffix(".txt").as_posix().replace("/", "__")
        (out / name).write_text(parser.text(), encoding="utf-8")
        count += 1
    return count


def kjv(out: Path, work: Path) -> int:
    data = unpack("bible-kjv-text", work) / "usr/lib"
    program = unpack("bible-kjv", work) / "usr/bin/bible"
    for number, book in enumerate(BOOKS, 1):
        spec = f"{book}1:1-{book}999:999"
        text = subprocess.run([str(program), "-p", str(data), spec], check=True, capture_output=True, text=True).stdout
        if len(text) < 1000:
            raise SystemExit(f"bible printed {len(text)} characters for {book!r}: the book names changed?")
        (out / f"{number:02d}-{book}.txt").write_text(text.strip() + "\n", encoding="utf-8")
    return len(BOOKS)


CORPORA = {"sqlite-doc": sqlite_doc, "kjv": kjv}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", choices=sorted(CORPORA))
    parser.add_argument("out", type=Path, help="folder for the .txt files (created; must be empty if it exists)")
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        sys.exit(f"{args.out} is not empty")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="corpora-") as work:
        count = CORPORA[args.corpus](args.out, Path(work))
    size = sum(f.stat().st_size for f in args.out.iterdir())
    print(f"{args.corpus}: {count} files, {size / 1e6:.1f} MB of text in {args.out}")


if __name__ == "__main__":
    main()
