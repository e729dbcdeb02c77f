"""Embedding-space views: openTSNE projections and nearest-normal distances.

The study (Sec. IV-F, Fig. 5, Table III) projects the unit-norm embeddings of the test split
to 2-D with t-SNE and, for every anomalous clip, measures the Euclidean distance in the
projection to the closest normal clip; the mean over anomalous clips (mean ± std over five
trials) is Table III. Everything here works on plain numpy arrays:

* :mod:`.projection` -- :class:`TSNEConfig`, :func:`project`, :func:`transform`;
* :mod:`.distances` -- :func:`nearest_normal_distances`, :func:`leave_one_out_distances`,
  :func:`separation_report` (also in the embedding space, cosine, and as an AUC);
* :mod:`.result` -- :func:`run_tsne` -> :class:`TSNEResult`, result files, :func:`trial_table`.
"""

from .distances import (
    GROUP_COLUMNS,
    META_COLUMNS,
    anomaly_mask,
    format_report,
    leave_one_out_distances,
    nearest_normal_distances,
    records_meta,
    separation_auc,
    separation_report,
)
from .projection import TSNEConfig, project, reference_embedding, transform
from .result import (
    TSNEResult,
    distances_csv_text,
    load_result,
    run_tsne,
    save_result,
    trial_table,
    write_distances_csv,
    write_report_csv,
)

__all__ = [
    "GROUP_COLUMNS",
    "META_COLUMNS",
    "TSNEConfig",
    "TSNEResult",
    "anomaly_mask",
    "distances_csv_text",
    "format_report",
    "leave_one_out_distances",
    "load_result",
    "nearest_normal_distances",
    "project",
    "records_meta",
    "reference_embedding",
    "run_tsne",
    "save_result",
    "separation_auc",
    "separation_report",
    "trial_table",
    "transform",
    "write_distances_csv",
    "write_report_csv",
]
