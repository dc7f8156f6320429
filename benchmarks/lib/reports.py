"""Reading the numbers back out of the benchmark scripts' report pages.

The pages in ``benchmarks/reports/`` are written by the benchmark scripts
(markdown tables under ``##`` headings); ``benchmarks/write_metafile.py``
reads them here to fill ``metafile.yml``'s results.
"""
import os.path as osp
import re

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
REPORTS = osp.join(ROOT, 'benchmarks', 'reports')
_NUMBER = re.compile(r'^\s*\**(-?\d+(?:\.\d+)?)\**(?:\s*\+-\s*(\d+(?:\.\d+)?))?')


def _path(name):
    path = name if osp.isabs(name) else osp.join(REPORTS, name)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{path}: no such report; expected a page written by a '
            f'benchmarks/ script')
    return path


def read_tables(name):
    """Every table of a report page.

    Args:
        name (str): File name in ``benchmarks/reports/`` (or a path).

    Returns:
        list[tuple[str, list[dict]]]: (the ``##`` heading above the table,
        '' before the first; its rows as dicts keyed by the header cells).
    """
    tables, heading, header, rows = [], '', None, None
    lines = open(_path(name), encoding='utf-8').read().splitlines()
    for line in lines + ['']:
        if line.startswith('|'):
            cells = [c.strip() for c in line.strip().strip('|').split('|')]
            if header is None:
                header, rows = cells, []
            elif not set(''.join(cells)) <= set('-: '):
                rows.append(dict(zip(header, cells)))
            continue
        if header is not None:
            tables.append((heading, rows))
            header = None
        if line.startswith('## '):
            heading = line[3:].strip()
    return tables


def section_text(name, heading):
    """The text of the first ``##`` section whose heading starts with
    ``heading`` ('' for the text above the first heading)."""
    text, current, hit = [], '', None
    for line in open(_path(name), encoding='utf-8').read().splitlines():
        if line.startswith('## '):
            if hit:
                break
            current = line[3:].strip()
            continue
        if current.startswith(heading) and (heading or not current):
            hit = True
            text.append(line)
    if not hit:
        raise KeyError(f'{name}: no section whose heading starts with '
                       f'{heading!r}')
    return '\n'.join(text)


def find_row(name, heading, column, value, header=None):
    """The one row of a report whose ``column`` is ``value``.

    Args:
        name (str): Report file name in ``benchmarks/reports/``.
        heading (str): Start of the ``##`` heading of the section ('' for the
            tables above the first heading).
        column (str): Header cell to match on.
        value (str): The cell's text, or its start when it ends with '*'.
        header (str, optional): Another header cell the table must have,
            to pick one of several tables in a section. Defaults to None.

    Returns:
        dict: The row, keyed by the header cells.

    Raises:
        KeyError: When no row or more than one row matches.
    """
    prefix = value.endswith('*')
    hits = [row for head, rows in read_tables(name)
            if head.startswith(heading) for row in rows
            if column in row and (header is None or header in row)
            and (row[column].startswith(value[:-1]) if prefix
                 else row[column] == value)]
    if len(hits) != 1:
        raise KeyError(
            f'{name}: {len(hits)} rows with {column!r} = {value!r} under '
            f'a heading starting {heading!r}; expected exactly one')
    return hits[0]


def number(cell):
    """Mean and std of a report cell.

    Args:
        cell (str): '85.36 +- 0.04', '40.20 +- 0.95 (39.2 / 41.1 / 40.3)',
            '**81.20**' or '39.50 (39.5)'.

    Returns:
        tuple[float, float | None]: The mean and its std (None when the cell
        gives none).

    Raises:
        ValueError: When the cell does not start with a number.
    """
    m = _NUMBER.match(cell)
    if m is None:
        raise ValueError(f'report cell {cell!r}: expected a number, '
                         f'optionally "+- std"')
    return float(m.group(1)), (float(m.group(2)) if m.group(2) else None)


def seeds_of(cell):
    """Seeds named in a cell such as '(39.2 / 41.1 / 40.3)' or in a seeds
    column ('3').

    Args:
        cell (str): A report cell.

    Returns:
        int: The number of seeds (1 when the cell names none).
    """
    inside = re.search(r'\(([^()]*/[^()]*)\)', cell)
    if inside:
        return len(inside.group(1).split('/'))
    return int(cell) if cell.strip().isdigit() else 1
