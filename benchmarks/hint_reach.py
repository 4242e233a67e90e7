"""Choose a model's --hint_reach (and hint_spread.PRIOR) on validation photos: how far a hint's
correction spreads.

    python benchmarks/hint_reach.py --model=default --reach_grid=16,20,24,28,32,48 \\
        --hint_counts=0,10
    python benchmarks/hint_reach.py --model=default --reach_grid=24 --prior_grid=0.3,0.1,0.03,0.01

Any Keras model: a reach makes it take hints. Method: for each reach (x prior), `evaluate
--hint_points` (hint_eval.evaluate_hints: hints simulated from the truth with a fixed seed, full
resolution) on BSDS500 val and on the bundled photos. The pick maximises BSDS500 val's PSNR gain
with the largest hint count over the automatic mode, among the settings whose hints help the
bundled photos (gain >= --min_bundled_gain) and make at most --max_bundled_worse of them worse:
a user's clicks should not make their photo worse, and the bundled photos (portraits and
objects before plain backgrounds) are where a spreading hint repaints what it should not.
Validation data only.
"""

from __future__ import annotations

import itertools

from absl import app, flags, logging

import common  # benchmarks/common.py
from colorgan import config, hint_eval, hint_spread, inference

FLAGS = flags.FLAGS
NAME = "hint_reach"
flags.DEFINE_list("reach_grid", ["16", "24", "32"], "--hint_reach values to try (> 0; each row's "
                  "automatic column is the model without hints).")
flags.DEFINE_list("prior_grid", [], "hint_spread.PRIOR values to try with each reach (a "
                  "module constant, set here for the sweep; empty: the module's).")
flags.DEFINE_list("hint_counts", ["0", "10"], "Simulated hints per photo (0 = automatic).")
flags.DEFINE_string("val_data", "../shared/datasets/bsds500-jpg.tar.gz",
                    "The validation set (its 'val' split).")
flags.DEFINE_integer("val_limit", 0, "At most this many validation photos (0 = all).")
flags.DEFINE_float("min_bundled_gain", 0.5, "Smallest acceptable gain on the bundled photos (dB).")
flags.DEFINE_integer("max_bundled_worse", 1, "Most bundled photos hints may make worse.")
common.reuse_flag("model", "The hint model (a packaged model dir or workdir).")

SETS = (("val", "val"), ("bundled", "all"))


def score(base: inference.Colorizer, reach: float, prior: float, counts: list[int]) -> dict:
    hint_spread.PRIOR = prior  # read when a graph is traced: a fresh Colorizer traces anew (with
    # the model's own reach, with_settings would return the already-traced model itself)
    model = inference.keras_colorizer(base.generator, base.config, base.source).with_settings(
        hint_reach=reach)
    top = max(counts)
    row = {"reach": reach, "prior": prior}
    for name, split in SETS:
        data = FLAGS.val_data if name == "val" else "samples"
        limit = FLAGS.val_limit if name == "val" else 0
        result = hint_eval.evaluate_hints(model, config.DataConfig(data=data), split, counts,
                                          full_res=True, limit=limit)
        row[f"{name}_auto"] = result["psnr"][0]
        row[f"{name}_psnr"] = result["psnr"][top]
        row[f"{name}_gain"] = result["psnr"][top] - result["psnr"][0]
        row[f"{name}_worse"] = result["worse"][top]
        row[f"{name}_images"] = result["images"]
    row["ok"] = (row["bundled_gain"] >= FLAGS.min_bundled_gain
                 and row["bundled_worse"] <= FLAGS.max_bundled_worse)
    return row


def main(argv: list[str]) -> int:
    common.check_usage(argv)
    counts = sorted({int(c) for c in FLAGS.hint_counts} | {0})
    if max(counts) == 0:
        raise app.UsageError("--hint_counts needs a count above 0")
    reaches = [float(r) for r in FLAGS.reach_grid]
    if min(reaches) <= 0:
        raise app.UsageError("--reach_grid: reaches must be > 0 (the automatic column is 0's)")
    base = inference.load_model(FLAGS.model)
    rows = []
    priors = [float(p) for p in FLAGS.prior_grid] or [hint_spread.PRIOR]
    for reach, prior in itertools.product(reaches, priors):
        rows.append(score(base, reach, prior, counts))
        logging.info("%s", rows[-1])
    ok = [r for r in rows if r["ok"]]
    pick = max(ok or rows, key=lambda r: r["val_gain"])
    columns = [common.Column("reach", "hint_reach", "{:g}"),
               common.Column("prior", "prior", "{:g}")] + [
        common.Column(f"{name}_{m}", f"{name} {label}", fmt) for name, _ in SETS
        for m, label, fmt in (("auto", "automatic dB", "{:.2f}"),
                              ("psnr", f"{max(counts)} hints dB", "{:.2f}"),
                              ("gain", "gain dB", "{:+.2f}"), ("worse", "worse", "{}"))] + [
        common.Column("ok", "ok")]
    notes = [f"{rows[0]['val_images']} val photos, {rows[0]['bundled_images']} bundled",
             f"pick: hint_reach {pick['reach']:g}, prior {pick['prior']:g}"
             + ("" if ok else " (none met the bundled rule)")]
    common.print_report(f"hint_reach of {FLAGS.model}", rows, columns, notes)
    common.write_results(NAME, machine=common.machine_info(), rows=rows, notes=notes,
                         method=__doc__, extra={"pick": pick},
                         settings=common.flag_settings(["model", "reach_grid", "prior_grid",
                                                        "hint_counts",
                                                        "val_data", "val_limit"]))
    return 0


if __name__ == "__main__":
    app.run(main)
