"""Charts and image class labels live in the run config under `_wandb`, sent as nested keys.

`run.log({"name": wandb.plot.line(...)})` sends the chart's spec as a config item whose
`nested_key` is `("_wandb", "visualize", name)`; an image with masks sends its class labels
through `config.persist()`, the whole `_wandb` the SDK knows (class labels, but none of the
charts), which W&B's core merges into the config's `_wandb` instead of replacing it. Every
chart, and the class labels, must therefore reach the server's config and `config.yaml`.
Runs under W&B's core, and under cairn's in the cairn-core pass (scripts/test).
"""

from conftest import ENTITY

CHARTS = """
import numpy as np
import yaml

run = wandb.init(project=PROJECT, config={"lr": 0.1, "model": {"layers": 4, "act": "relu"}})
table = wandb.Table(data=[[x, x * x] for x in range(10)], columns=["x", "y"])
run.log({"line": wandb.plot.line(table, "x", "y", title="a line")})
run.log({"bar": wandb.plot.bar(table, "x", "y", title="a bar")})
run.log({"conf": wandb.plot.confusion_matrix(
    y_true=[0, 1, 1, 0], preds=[0, 1, 0, 0], class_names=["cat", "dog"])})
# An image with a mask: its class labels go to the config through config.persist(),
# after the charts.
mask = np.zeros((8, 8), dtype=np.uint8)
mask[2:5, 2:5] = 1
image = wandb.Image(np.zeros((8, 8, 3), dtype=np.uint8),
                    masks={"pred": {"mask_data": mask, "class_labels": {0: "bg", 1: "cat"}}})
run.log({"img": image})
# A nested update under an existing top-level map keeps its siblings.
run.config.update({"model": {"dropout": 0.5}}, allow_val_change=True)
run.log({"after": wandb.plot.scatter(table, "x", "y", title="a scatter")})
run_dir = run.dir
run_id = run.id
run.finish()

with open(os.path.join(run_dir, "config.yaml")) as f:
    local = yaml.safe_load(f)

api = wandb.Api(timeout=60)
stored = api.run(f"{ARGS['entity']}/{PROJECT}/{run_id}")
report(
    id=run_id,
    raw_wandb=stored.rawconfig.get("_wandb", {}),
    config=stored.config,
    local_wandb=local["_wandb"]["value"],
    local_model=local["model"]["value"],
)
"""


def check_wandb(wandb_config: dict, where: str) -> None:
    visualize = wandb_config.get("visualize", {})
    assert sorted(visualize) == ["after", "bar", "conf", "line"], (where, wandb_config)
    for name, chart in visualize.items():
        assert chart["panel_type"] == "Vega2", (where, name, chart)
        assert chart["panel_config"]["panelDefId"], (where, name, chart)
    panel_defs = {name: chart["panel_config"]["panelDefId"] for name, chart in visualize.items()}
    assert panel_defs["line"] == "wandb/line/v0", (where, panel_defs)
    assert panel_defs["bar"] == "wandb/bar/v0", (where, panel_defs)
    assert panel_defs["conf"] == "wandb/confusion_matrix/v1", (where, panel_defs)
    labels = wandb_config.get("mask/class_labels", {})
    assert list(labels) == ["img_wandb_delimeter_pred"], (where, wandb_config)
    assert labels["img_wandb_delimeter_pred"]["value"] == {"0": "bg", "1": "cat"}, (where, labels)
    # The core's own entries are still there beside them.
    assert "t" in wandb_config and "cli_version" in wandb_config, (where, sorted(wandb_config))


def test_charts_and_class_labels_reach_the_config(client):
    project = client.project()
    r = client.run(CHARTS, project, args={"entity": ENTITY}).result
    check_wandb(r["raw_wandb"], "server")
    check_wandb(r["local_wandb"], "config.yaml")
    # User keys: the merged `model` keeps its siblings, and no key is left empty-named.
    assert r["config"]["lr"] == 0.1
    assert r["config"]["model"] == {"layers": 4, "act": "relu", "dropout": 0.5}
    assert r["local_model"] == {"layers": 4, "act": "relu", "dropout": 0.5}
    assert "" not in r["config"]
