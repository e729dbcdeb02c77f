"""Train a model on a DCASE-layout tree, fit the k-means backend and score the test clips.

Point ``--data`` at your own tree (``dev_data/<machine>/{train,test}/section_XX_...wav``, as the
DCASE2022/2023 Task 2 downloads unpack); without it a tiny synthetic tree is generated.

    python examples/train_and_score.py [--data ROOT] [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from asdxai import metrics
from asdxai.checkpoint import save_checkpoint
from asdxai.data.records import scan
from asdxai.nets import NetConfig
from asdxai.train import TrainConfig, train_model
from asdxai.workflows import ScoreSettings, fit_backend, score_checkpoint


def tiny_tree(root: Path) -> Path:
    """A small synthetic DCASE-layout tree (2 machine types, 1 section, 1 s clips)."""
    from asdxai.data.synth import PresetConfig, generate

    preset = PresetConfig(
        "example", machines=("fan", "valve"), dev_sections=(0,), eval_sections=(3,),
        duration_s=1.0, n_train_source=16, n_train_target=4, n_test=4,
    )  # fmt: skip
    return generate(root, preset=preset, seed=0, progress=False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=None, help="DCASE-layout root (default: tiny)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: a temp dir)")
    p.add_argument("--quick", action="store_true", help="1 epoch, a very narrow encoder")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    args = p.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="asdxai-example-"))
    data = args.data or tiny_tree(out / "data")

    # 1. Records: every clip of a split, parsed from the file names.
    train, test = scan(data, split="dev-train"), scan(data, split="dev-test")
    print(f"{len(train)} training clips, {len(test)} test clips in {data}")

    # 2. Train: spectrogram-only encoder, sub-cluster AdaCos on machine/section/attribute classes.
    net_cfg = NetConfig(arch="spectrogram", width=0.125 if args.quick else 0.25)
    train_cfg = TrainConfig(loss="sc-adacos", task="attribute", epochs=1 if args.quick else 5,
                            batch_size=16, seed=0)  # fmt: skip
    ckpt = train_model(
        train,
        feat_cfg=None,
        net_cfg=net_cfg,
        train_cfg=train_cfg,
        device=args.device,
        progress=False,
    )
    print("angular loss per epoch:", [round(x, 3) for x in ckpt.history["all"]["angular"]])

    # 3. Backend: k-means on the source-domain training embeddings + the target clips.
    ckpt = fit_backend(ckpt, train, device=args.device, k=4, seed=0, progress=False)
    model = save_checkpoint(ckpt, out / "model.pt")  # usable by `asdxai rise/tsne/score`

    # 4. Score dev-test: organisers' CSV files, AUC/pAUC per section and domain.
    settings = ScoreSettings(protocols=("study",), device=args.device, progress=False)
    res = score_checkpoint(ckpt, test, train, out_dir=out / "scores", settings=settings)
    print(metrics.format_terminal(res.evaluations["study"].table_rows()), end="")
    print(f"wrote {model} and {out / 'scores'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
