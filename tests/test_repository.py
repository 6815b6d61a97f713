"""The repository explains itself: its tracked files cite no document kept outside it and no
issue-tracker numbers, and every ``docs/`` page and section they cite exists."""
import os.path as osp
import re
import subprocess
from typing import Iterator, List, Set, Tuple

import pytest

from conftest import ROOT

# The project's former outside specification, cited by name; an issue number in any spelling:
# 'issue' or 'issues' in any case, then spaces, '#', '_' or '-' or nothing, then digits.
OUTSIDE_DOCUMENT = re.compile(r'\bSPEC\b')
ISSUE_NUMBER = re.compile(r'issues?[\s_#-]*\d+', re.IGNORECASE)
# A repository path to a docs page, optionally with a #section (not part of a longer path or URL).
DOCS_PATH = re.compile(r'(?<![\w/.-])(docs/[\w./-]+?\.md)(?:#([\w-]+))?')
# A relative markdown link between pages inside docs/.
MARKDOWN_LINK = re.compile(r'\]\(([\w./-]+?\.md)(?:#([\w-]+))?\)')
HEADING = re.compile(r'#{1,6}\s+(.+?)\s*#*\s*$')


def tracked_files() -> List[str]:
    """The paths git tracks, relative to the repository root, that exist as regular files."""
    try:
        out = subprocess.run(['git', 'ls-files', '-z'], cwd=ROOT, capture_output=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        pytest.skip(f'not a git checkout ({err}): the tracked files are unknown')
    paths = [p for p in out.decode().split('\0') if p]
    return [p for p in paths
            if not osp.islink(osp.join(ROOT, p)) and osp.isfile(osp.join(ROOT, p))]


def numbered_lines(path: str) -> Iterator[Tuple[int, str]]:
    """(line number, text) of a tracked file; undecodable bytes replaced."""
    with open(osp.join(ROOT, path), encoding='utf-8', errors='replace') as f:
        yield from enumerate(f, start=1)


def section_anchors(path: str) -> Set[str]:
    """The #anchors GitHub gives the headings of the markdown file ``path`` (relative to ROOT):
    lower case, punctuation other than '-' and '_' dropped, spaces turned into '-'. Lines inside
    fenced code blocks are not headings."""
    anchors, fenced = set(), False
    for _, line in numbered_lines(path):
        if line.startswith('```'):
            fenced = not fenced
            continue
        heading = None if fenced else HEADING.match(line)
        if heading:
            text = re.sub(r'[^\w\- ]', '', heading.group(1).lower())
            anchors.add(text.replace(' ', '-'))
    return anchors


def test_no_outside_document_or_issue_numbers():
    offenders = []
    for path in tracked_files():
        if ISSUE_NUMBER.search(path):
            offenders.append(f'{path}: the file name names an issue')
        for number, line in numbered_lines(path):
            for pattern in (OUTSIDE_DOCUMENT, ISSUE_NUMBER):
                found = pattern.search(line)
                if found:
                    offenders.append(f'{path}:{number}: {found.group(0)!r} in '
                                     f'{line.strip()[:120]}')
    assert not offenders, (
        'cite docs/*.md or the paper instead of the outside specification, and name things by '
        'what they do instead of by issue number:\n' + '\n'.join(offenders))


def test_cited_docs_pages_and_sections_exist():
    citations = []  # (where, page relative to ROOT, section or None)
    for path in tracked_files():
        in_docs = path.startswith('docs/') and path.endswith('.md')
        for number, line in numbered_lines(path):
            for page, section in DOCS_PATH.findall(line):
                citations.append((f'{path}:{number}', page, section))
            if in_docs:
                for page, section in MARKDOWN_LINK.findall(line):
                    page = osp.normpath(osp.join(osp.dirname(path), page))
                    citations.append((f'{path}:{number}', page, section))
    assert citations, 'no docs/ citation found: the pattern no longer matches how code cites docs'
    anchors = {}
    broken = []
    for where, page, section in citations:
        if not osp.isfile(osp.join(ROOT, page)):
            broken.append(f'{where}: {page} does not exist')
            continue
        if page not in anchors:
            anchors[page] = section_anchors(page)
        if section and section not in anchors[page]:
            broken.append(f'{where}: {page} has no section #{section} (it has: '
                          f'{", ".join(sorted(anchors[page]))})')
    assert not broken, 'cited docs pages or sections that do not exist:\n' + '\n'.join(broken)
