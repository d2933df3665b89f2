"""``kerasweights weights``: list stored arrays or named matrices, with optional statistics."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import LayoutError
from ..model import Layer, Model, Weight
from ..stats import array_stats
from ._common import add_input, open_model, print_json
from ._output import Column, count, num, percent, table
from ._render import shape_compact


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("weights", help="list stored arrays or named matrices, with optional statistics")
    add_input(parser)
    parser.add_argument("--layer", metavar="PATH", help="only this layer and the layers inside it")
    parser.add_argument("--split", action="store_true", help="one row per named matrix (kernel_z, ...), with meaning")
    parser.add_argument("--stats", action="store_true", help="add min, max, mean, std, L2 norm, zeros, NaN, Inf")
    parser.add_argument("--json", action="store_true", help="print a JSON list of objects")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with open_model(args.file, args.config) as model:
        rows, notes = collect(model, layer=args.layer, split=args.split, stats=args.stats)
        if args.json:
            print_json(rows)
        elif not rows:
            print(f"no stored weights in {'layer ' + repr(args.layer) if args.layer else 'this model'}")
        else:
            print(render(rows, split=args.split, stats=args.stats))
            for note in notes:
                print(f"Note: {note}")
    return 0


def collect(model: Model, *, layer: str | None, split: bool, stats: bool) -> tuple[list[dict[str, Any]], list[str]]:
    """JSON-ready rows (one per stored array, or per named matrix) and notes for the reader."""
    layers = list(model.layer(layer).walk()) if layer else list(model.walk())
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for each in layers:
        if split:
            rows += _matrix_rows(each, notes)
        else:
            rows += [_weight_row(each, w) for w in each.weights]
    if stats:
        for row in rows:
            item = row.pop("_item")  # one array in memory at a time: nothing is kept
            values = item.read(cache=False) if isinstance(item, Weight) else item.read()
            row["stats"] = array_stats(values).as_dict()
    else:
        for row in rows:
            del row["_item"]
    return rows, notes


def _weight_row(layer: Layer, weight: Any) -> dict[str, Any]:
    return {
        "layer": layer.path,
        "name": weight.name,
        "key": weight.key,
        "shape": list(weight.shape),
        "dtype": weight.dtype,
        "size": weight.size,
        "trainable": weight.trainable,
        "stored_key": weight.array.key,
        "_item": weight,
    }


def _matrix_rows(layer: Layer, notes: list[str]) -> list[dict[str, Any]]:
    try:
        matrices = layer.matrices()
    except LayoutError as exc:
        # One layer that does not fit its rule must not hide the others: show its arrays as stored.
        notes.append(f"{exc.problem}; its stored arrays are shown unsplit")
        return [
            {
                "layer": layer.path,
                "name": w.name,
                "key": w.key,
                "shape": list(w.shape),
                "dtype": w.dtype,
                "size": w.size,
                "meaning": "",
                "gate": None,
                "source": w.name,
                "weight": w.key,
                "note": exc.problem,
                "_item": w,
            }
            for w in layer.weights
        ]
    return [
        {
            "layer": layer.path,
            "name": m.name,
            "key": m.key,
            "shape": list(m.shape),
            "dtype": m.dtype,
            "size": _size(m.shape),
            "meaning": m.meaning,
            "gate": m.gate,
            "source": m.source,
            "weight": m.weight.key,
            "_item": m,
        }
        for m in matrices.values()
    ]


def _size(shape: tuple[int, ...]) -> int:
    size = 1
    for n in shape:
        size *= n
    return size


def render(rows: list[dict[str, Any]], *, split: bool, stats: bool) -> str:
    """An 80-column table; a dtype shared by every row moves below it."""
    dtypes = {row["dtype"] for row in rows}
    one_dtype = len(dtypes) == 1
    name = "Matrix" if split else "Weight"
    if stats:
        # Grouped under layer headings so the name column holds only the short name.
        finite = all(r["stats"]["nan_count"] == 0 and r["stats"]["inf_count"] == 0 for r in rows)
        headers = ("Min", "Max", "Mean", "Std", "L2", "Zeros", *(() if finite else ("NaN", "Inf")))
        columns = [Column(name, wrap=20), Column("Shape", optional=True), *(Column(h, "right") for h in headers)]
        body = [["  " + r["name"], shape_compact(r["shape"]), *_stat_cells(r["stats"])[: len(headers)]] for r in rows]
        headings = {i: r["layer"] for i, r in enumerate(rows) if i == 0 or rows[i - 1]["layer"] != r["layer"]}
        text = table(columns, body, headings=headings)
    else:
        columns = [Column("Layer", wrap=12), Column(name, wrap=12), Column("Shape")]
        body = [[r["layer"], r["name"], shape_compact(r["shape"])] for r in rows]
        if not one_dtype:
            columns.append(Column("Dtype"))
            for cells, r in zip(body, rows):
                cells.append(r["dtype"])
        if split:
            columns.append(Column("Meaning", wrap=16))
            for cells, r in zip(body, rows):
                cells.append(r["meaning"] or ("(not split)" if "note" in r else ""))
        else:
            columns.append(Column("Size", "right"))
            for cells, r in zip(body, rows):
                cells.append(count(r["size"]))
        text = table(columns, body)
    footer = [f"dtype: {dtypes.pop()}"] if one_dtype else []
    if stats:
        footer.append("Min to L2: finite values only; Zeros: share of exact zeros" + ("; no NaN or Inf" * finite))
    return "\n".join([text, "", *footer]) if footer else text


def _stat_cells(s: dict[str, Any]) -> list[str]:
    return [
        num(s["min"]),
        num(s["max"]),
        num(s["mean"]),
        num(s["std"]),
        num(s["l2_norm"]),
        percent(s["zero_fraction"]),
        count(s["nan_count"]),
        count(s["inf_count"]),
    ]
