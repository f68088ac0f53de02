"""The ClientApp: a plain Flower train function, plus secagg's mod (line 1 of the two)."""

from __future__ import annotations

from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from flower_app.task import load_partition, train
from secagg.flower import secagg_mod

# Train messages without secagg's record (a ServerApp not using SecAggGrid) pass through the
# mod untouched, so this one ClientApp serves both runs of the comparison.
app = ClientApp(mods=[secagg_mod])


@app.train()
def train_fn(msg: Message, context: Context) -> Message:
    arrays = msg.content["arrays"]
    model = {k: arrays[k].numpy() for k in arrays}
    x, y = load_partition(
        int(context.node_config["partition-id"]), int(context.node_config["num-partitions"])
    )
    epochs = int(context.run_config.get("local-epochs", 2))
    lr = float(context.run_config.get("learning-rate", 0.5))
    new, train_loss = train(model, x, y, epochs, lr)
    content = RecordDict(
        {
            "arrays": ArrayRecord({k: Array(v) for k, v in new.items()}),
            "metrics": MetricRecord({"num-examples": len(y), "train_loss": train_loss}),
        }
    )
    return Message(content, reply_to=msg)
