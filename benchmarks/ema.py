"""EMA or raw weights: one checkpoint's exponential moving average of G's weights (what
validation, export and shipping use) against its raw weights, at full resolution beside gray.

    python benchmarks/ema.py --model=/work/refmodel/final --checkpoint_steps=18000 \\
        --eval_sets=bsds500_val=../shared/datasets/bsds500-jpg.tar.gz:val:0

Method: for each --checkpoint_steps step of the workdir --model (trained with --ema_decay), both
weight sets are loaded (colorgan.workdir.load_generator, raw=False/True) and scored by
benchmarks/inference_settings.py's `score` on every --eval_sets set at the run's own inference
settings (vividness, upsampling). Validation sets only: this is a choice, not a report.
"""

from __future__ import annotations

from absl import app, flags, logging

import common  # benchmarks/common.py
import inference_settings  # benchmarks/inference_settings.py: scoring one model on the sets
import quality  # benchmarks/quality.py: eval sets and metrics
from colorgan import inference
from colorgan import workdir as workdir_lib

FLAGS = flags.FLAGS
NAME = "ema"
flags.DEFINE_list("checkpoint_steps", ["0"], "Checkpoints to compare (0 = the latest).")
common.reuse_flag("model", "The training workdir (trained with --ema_decay) whose EMA and raw "
                  "weights are compared.")


def main(argv: list[str]) -> int:
    common.check_usage(argv)
    sets = quality.parse_eval_sets(FLAGS.eval_sets)
    rows = []
    for step in map(int, FLAGS.checkpoint_steps):
        for weights in ("ema", "raw"):
            generator, cfg = workdir_lib.load_generator(FLAGS.model, step, raw=weights == "raw")
            if not cfg.train.ema_decay:
                raise app.UsageError(f"{FLAGS.model} was trained without --ema_decay")
            model = inference.keras_colorizer(generator, cfg, f"{FLAGS.model}@{step}:{weights}")
            row = {"step": step, "weights": weights, **inference_settings.score(model, {}, sets)}
            row["merit"] = inference_settings.merit(row, sets)
            logging.info("%s", row)
            rows.append(row)
    columns = [common.Column("step", "step"), common.Column("weights", "weights")] + [
        common.Column(f"{s.name}_{m}", f"{s.name} {m}", "{:.3f}") for s in sets
        for m in ("psnr", "auc", "flat_ab_error", "colorfulness_ratio")] + [
        common.Column("merit", "merit", "{:.2f}")]
    notes = ["gray: " + ", ".join(f"{s.name} PSNR {rows[0][f'{s.name}_gray_psnr']:.3f} AuC "
                                   f"{rows[0][f'{s.name}_gray_auc']:.4f}" for s in sets),
             "merit: mean over sets of (PSNR - gray) / 0.5 dB + (AuC - gray) / 0.01"]
    common.print_report(f"EMA vs raw weights of {FLAGS.model}", rows, columns, notes)
    common.write_results(NAME, machine=common.machine_info(), rows=rows, notes=notes,
                         method=__doc__, settings=common.flag_settings(
                             ["model", "checkpoint_steps", "eval_sets"]))
    return 0


if __name__ == "__main__":
    app.run(main)
