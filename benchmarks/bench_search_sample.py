"""What the search's sample pays on a large table (``SearchBudget.search_rows``,
RISKSTREAM_TRAINING_SEARCH_ROWS): each kind trained by the protocol on the Taiwan features'
training rows (two thirds of 30,000), once searching every row and once searching a sample of
a quarter of them (5,000 rows; the out-of-fold fits and the refit see every row either way),
same seed. Rows, per kind: ``training.search_sample.<kind>.search_seconds_ratio`` (the search's
seconds with the sample / without; reference: without) and ``...auc_delta`` (held-out ROC-AUC
with the sample minus without). With --quick: 6,000 clients and a 1,000-row sample.
"""

from __future__ import annotations

import os
import time

from common import Row, cli, write_rows

# RISKSTREAM_SEARCH_SAMPLE_KINDS="rf,xgb" measures only those
KINDS = tuple(
    k
    for k in os.environ.get("RISKSTREAM_SEARCH_SAMPLE_KINDS", "lr,rf,xgb,scorecard").split(",")
    if k
)


def main() -> None:
    args = cli(__doc__ or "")
    from fixtures import read_taiwan_features
    from sklearn.metrics import roc_auc_score

    from riskstream.datasets import TAIWAN_CSV, TAIWAN_SHA256, verify_sha256
    from training.dataset import labelled, split_rows
    from training.lawful import InputPolicy
    from training.models import SearchBudget, fit_with_search
    from training.prepare import select_columns

    verify_sha256(TAIWAN_CSV, TAIWAN_SHA256)
    frame = read_taiwan_features(str(TAIWAN_CSV), n_rows=6000 if args.quick else None)
    rows_all = labelled(frame, "taiwan")
    cols, _, _ = select_columns(rows_all, InputPolicy(), "taiwan")
    split = split_rows(rows_all)
    train, test = rows_all.iloc[split.train_index], rows_all.iloc[split.test_index]
    y = train["label"].to_numpy()
    sample = 1000 if args.quick else 5000
    rows: list[Row] = []
    for kind in KINDS:
        found = {}
        for mode, limit in (("all", None), ("sample", sample)):
            began = time.perf_counter()
            fitted = fit_with_search(
                kind, train[cols.all], y, cols, SearchBudget(search_rows=limit)
            )
            seconds = time.perf_counter() - began
            p = fitted.pipeline.predict_proba(test[cols.all])[:, 1]
            found[mode] = {
                "search": fitted.extra["search_seconds"],
                "fit": seconds,
                "auc": float(roc_auc_score(test["label"], p)),
                "rows": fitted.extra["search_rows"],
            }
            print(kind, mode, found[mode], flush=True)
        full, part = found["all"], found["sample"]
        note = (
            f"{len(train):,} training rows; search on {part['rows']:,} vs {full['rows']:,}; whole "
            f"fit {part['fit']:.1f} s vs {full['fit']:.1f} s; held-out AUC {part['auc']:.4f} vs "
            f"{full['auc']:.4f}"
        )
        rows.append(
            Row(
                "training",
                f"{kind}: the search's seconds on a {part['rows']:,}-row sample / on every row",
                part["search"] / full["search"],
                "x",
                reference="search on every row, s",
                reference_value=full["search"],
                ratio=part["search"] / full["search"],
                note=note,
                id=f"training.search_sample.{kind}.search_seconds_ratio",
            )
        )
        rows.append(
            Row(
                "training",
                f"{kind}: held-out ROC-AUC with the search on the sample minus on every row",
                part["auc"] - full["auc"],
                "AUC",
                reference="held-out ROC-AUC, search on every row",
                reference_value=full["auc"],
                target=">= -0.005",
                met=part["auc"] - full["auc"] >= -0.005,
                id=f"training.search_sample.{kind}.auc_delta",
            )
        )
    write_rows(args.out, rows)


if __name__ == "__main__":
    main()
