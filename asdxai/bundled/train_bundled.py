"""Re-train the bundled model ``asdxai/bundled/model.pt`` and rewrite ``TRAINING.md``.

Run from anywhere (CPU, about 2-5 minutes on 2 cores):

    python asdxai/bundled/train_bundled.py

It trains on the synthetic ``mini`` tree (seed 0) that every command uses by default (the same
tree ``asdxai.cli._common.default_data_root()`` generates into the user cache; ``$ASDXAI_DATA`` is
ignored here on purpose), with the recipe ``synthetic-small-sc-adacos-attribute-spectrogram``
(spectrogram-only encoder, sub-cluster AdaCos on machine type + section + attribute classes,
mixup, 10 epochs, batch 64, Adam 1e-3) at width 0.25, seed 0, on the CPU (same seed on the CPU
gives identical weights), then fits the k-means backend (k = 16, seed 0) on dev-train +
eval-train. Re-run it whenever the synthetic generator changes.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    os.environ.pop("ASDXAI_DATA", None)
    from asdxai import __version__
    from asdxai.checkpoint import load_checkpoint
    from asdxai.cli import main as cli
    from asdxai.cli._common import default_data_root
    from asdxai.data.synth import GENERATOR_VERSION

    data = default_data_root()
    model = HERE / "model.pt"
    train = ["train", "--data", str(data), "--recipe",
             "synthetic-small-sc-adacos-attribute-spectrogram", "--width", "0.25", "--seed", "0",
             "--trials", "1", "--device", "cpu", "--no-progress", "--out", str(model)]  # fmt: skip
    backend = ["fit-backend", "--checkpoint", str(model), "--data", str(data), "--k", "16",
               "--seed", "0", "--device", "cpu", "--no-progress"]  # fmt: skip
    t0, c0 = time.perf_counter(), time.process_time()
    for argv in (train, backend):
        print("asdxai", shlex.join(argv), flush=True)
        if cli(argv) != 0:
            return 1
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    ckpt = load_checkpoint(model)
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    hist = ckpt.history["all"]
    rows = "\n".join(
        f"| {e + 1} | {hist['angular'][e]:.4f} | {hist['ic_compactness'][e]:.4f} |"
        for e in range(len(hist["angular"]))
    )
    root = "$XDG_CACHE_HOME/asdxai/" + data.name

    def show(argv: list[str]) -> str:
        text = shlex.join(argv).replace(str(data), "<data>")
        return text.replace(str(model), "asdxai/bundled/model.pt")

    text = f"""# The bundled model

`model.pt` ({model.stat().st_size / 1e6:.1f} MB, sha256 `{sha[:16]}…`) is the checkpoint that
`asdxai rise`, `asdxai tsne` (and `asdxai score`) use when no `--checkpoint` is given (override
with `$ASDXAI_CHECKPOINT`). It is found next to the package (`asdxai/bundled/model.pt` beside
`asdxai/`), so a source checkout or an editable install (`pip install -e .`) has it; for a
regular install point `$ASDXAI_CHECKPOINT` at a copy.

It is a demonstration model, not a DCASE system: a spectrogram-only encoder (width 0.25,
D = {ckpt.net_config.get("embed_dim")}) trained with sub-cluster AdaCos on the machine type +
section + attribute classes ({len(ckpt.class_names["all"])} classes) of the synthetic `mini`
tree, with the k-means backend (k = 16) fitted on its {len(ckpt.backend["sections"])} sections.

## How it was trained

- data: synthetic `mini` preset, seed 0, generator version {GENERATOR_VERSION}, the tree every
  command uses by default (`{root}`, generated on first use), splits dev-train + eval-train
- recipe: `synthetic-small-sc-adacos-attribute-spectrogram` at width 0.25, seed 0, CPU
- library: asdxai {__version__}, torch {ckpt.provenance.get("torch_version", "?")}
- time: {seconds:.0f} s wall, {cpu:.0f} s CPU ({os.cpu_count()} cores, maybe shared)

Re-train (same command, e.g. after the generator changed):

```
python asdxai/bundled/train_bundled.py
```

which runs

```
asdxai {show(train)}
asdxai {show(backend)}
```

with `<data>` = the default synthetic tree.

## Losses per epoch

| epoch | angular loss | mean IC compactness |
|---|---|---|
{rows}
"""
    (HERE / "TRAINING.md").write_text(text)
    print(f"wrote {model} and {HERE / 'TRAINING.md'} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
