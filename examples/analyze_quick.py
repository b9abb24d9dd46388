"""Open the quick experiment's results with gendyn and redraw one figure yourself.

    python examples/analyze_quick.py [results/quick] [out.png]

Compares the test accuracy of every run of the experiment over training, and prints how
many ReLUs of the last layer changed state between the first and last record for the
tracked images of one run.
"""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import gendyn  # noqa: E402

exp_dir = sys.argv[1] if len(sys.argv) > 1 else "results/quick"
out = sys.argv[2] if len(sys.argv) > 2 else "analyze_quick.png"

exp = gendyn.open_experiment(exp_dir)
print(exp)
print(exp.runs.to_string(index=False))

metrics = exp.metrics()  # every run's /metrics, dims (run, step)
fig, ax = plt.subplots(figsize=(5, 3.5), constrained_layout=True)
for run in metrics["run"].values:
    acc = metrics["test_acc"].sel(run=run).dropna("step")
    ax.plot(acc["step"], acc, marker="o", ms=3, label=run)
ax.set_xlabel("optimisation step")
ax.set_ylabel("test accuracy (fraction)")
ax.legend(title="run", fontsize=8)
fig.savefig(out, dpi=120)
print(f"wrote {out}")

run = exp.runs["run"].iloc[-1]
masks = gendyn.masks(exp.run_dir(run))  # (record, image, unit) bool, lazy
last_layer = masks["layer"].values[-1]
m = masks.isel(unit=masks["layer"].values == last_layer)
flipped = (m.isel(record=0) != m.isel(record=-1)).mean().compute()
print(f"{run}: {float(flipped):.1%} of the ({last_layer}) mask bits differ between the first and last record")
