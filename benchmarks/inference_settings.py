"""Choose a model's inference settings (vividness, colour upsampling, flip averaging) on
validation photos, at full resolution beside gray.

    python benchmarks/inference_settings.py --model=/work/refmodel/final --checkpoint_step=0 \\
        --vividness_grid=1,1.3,1.6,2 --upsample_grid=bilinear,guided

Method: every combination of --vividness_grid x --upsample_grid x --flip_grid is scored on each
--eval_sets set (benchmarks/quality.py's format), with the model's weights loaded once. The pick
maximises the mean over sets of (PSNR − gray) / 0.5 dB + (AuC − gray) / 0.01 among the settings
whose colourfulness ratio is within [--min_colorfulness, --max_colorfulness] on every set and
whose flat-region ab error is at most --max_flat_ratio x gray's (the issue's targets, as
margins, on validation data only). The table lists every combination; the JSON the pick.
"""

from __future__ import annotations

import itertools

from absl import app, flags, logging

import common  # benchmarks/common.py
import quality  # benchmarks/quality.py: eval sets and metrics
from colorgan import evaluate, inference

FLAGS = flags.FLAGS
NAME = "inference_settings"
flags.DEFINE_list("vividness_grid", ["1.0"], "Vividness values to try.")
flags.DEFINE_list("upsample_grid", ["bilinear", "guided"], "color_upsample modes to try.")
flags.DEFINE_list("flip_grid", ["false"], "flip_average values to try (false, true).")
flags.DEFINE_float("max_colorfulness", 1.1, "Largest acceptable colourfulness ratio.")
flags.DEFINE_float("max_flat_ratio", 0.9, "Largest acceptable flat-region ab error / gray's.")
common.reuse_flag("model", "The model (a training workdir) whose settings are chosen.")
common.reuse_flag("checkpoint_step", "Its checkpoint (0 = latest).")

PSNR_UNIT, AUC_UNIT = 0.5, 0.01  # the "must" margins over gray


def combinations() -> list[dict]:
    return [{"vividness": float(v), "color_upsample": u, "flip_average": f.lower() == "true"}
            for v, u, f in itertools.product(FLAGS.vividness_grid, FLAGS.upsample_grid,
                                             FLAGS.flip_grid)]


def score(base: inference.Colorizer, settings: dict, sets) -> dict:
    model = base.with_settings(**settings)
    row = dict(settings)
    for s in sets:
        means = evaluate.evaluate(model, s.data, s.split, full_res=True, limit=s.limit)["means"]
        for m in quality.METRICS:
            row[f"{s.name}_{m}"] = means["model"][m]
            row[f"{s.name}_gray_{m}"] = means["gray"][m]
    return row


def acceptable(row: dict, sets) -> bool:
    return all(FLAGS.min_colorfulness <= row[f"{s.name}_colorfulness_ratio"] <= FLAGS.max_colorfulness
               and row[f"{s.name}_flat_ab_error"]
               <= FLAGS.max_flat_ratio * row[f"{s.name}_gray_flat_ab_error"] for s in sets)


def merit(row: dict, sets) -> float:
    return sum((row[f"{s.name}_psnr"] - row[f"{s.name}_gray_psnr"]) / PSNR_UNIT
               + (row[f"{s.name}_auc"] - row[f"{s.name}_gray_auc"]) / AUC_UNIT
               for s in sets) / len(sets)


def main(argv: list[str]) -> int:
    common.check_usage(argv)
    sets = quality.parse_eval_sets(FLAGS.eval_sets)
    base = inference.load_model(FLAGS.model, FLAGS.checkpoint_step)
    rows = []
    for settings in combinations():
        row = score(base, settings, sets)
        row.update(merit=merit(row, sets), ok=acceptable(row, sets))
        logging.info("%s", row)
        rows.append(row)
    ok = [r for r in rows if r["ok"]]
    pick = max(ok or rows, key=lambda r: r["merit"])
    columns = [common.Column(k, k) for k in ("vividness", "color_upsample", "flip_average")] + [
        common.Column(f"{s.name}_{m}", f"{s.name} {m}", "{:.3f}") for s in sets
        for m in ("psnr", "auc", "flat_ab_error", "colorfulness_ratio")] + [
        common.Column("merit", "merit", "{:.2f}"), common.Column("ok", "ok")]
    notes = ["gray: " + ", ".join(f"{s.name} PSNR {rows[0][f'{s.name}_gray_psnr']:.3f} AuC "
                                   f"{rows[0][f'{s.name}_gray_auc']:.4f} flat "
                                   f"{rows[0][f'{s.name}_gray_flat_ab_error']:.2f}" for s in sets),
             f"pick: vividness {pick['vividness']}, {pick['color_upsample']}, flip "
             f"{pick['flip_average']}" + ("" if ok else " (no setting met the constraints)")]
    common.print_report(f"Inference settings of {FLAGS.model}", rows, columns, notes)
    common.write_results(NAME, machine=common.machine_info(), rows=rows, notes=notes,
                         method=__doc__, extra={"pick": pick},
                         settings=common.flag_settings(["model", "checkpoint_step", "eval_sets",
                                                        "vividness_grid", "upsample_grid",
                                                        "flip_grid"]))
    return 0


if __name__ == "__main__":
    app.run(main)
