"""While a run writes, its SQLite event log stays open, so no stored event checkpoints the WAL."""

from pathlib import Path

import dagster as dg

from mlcomops_assets.event_log import event_log_kept_open


def test_events_stay_in_the_wal_while_the_run_holds_the_log_and_all_are_stored(tmp_path):
    seen: dict[str, object] = {}

    @dg.op
    def write_events(context: dg.OpExecutionContext):
        storage = context.instance.event_log_storage
        shard = Path(storage.path_for_shard(context.run_id))
        with event_log_kept_open(context.instance, context.run_id) as held:
            seen["held"] = held
            for i in range(20):
                context.log.info(f"event {i}")
            # A closed last connection would have checkpointed and removed the WAL after each event.
            seen["wal_while_held"] = Path(f"{shard}-wal").stat().st_size
        for i in range(3):
            context.log.info(f"after {i}")
        wal = Path(f"{shard}-wal")
        seen["wal_after"] = wal.stat().st_size if wal.exists() else 0

    @dg.job
    def events():
        write_events()

    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        result = events.execute_in_process(instance=instance)
        assert result.success
        shard = Path(instance.event_log_storage.path_for_shard(result.run_id))
        assert seen["held"] == [shard, shard.with_name("index.db")]
        assert seen["wal_while_held"] > 0 and seen["wal_after"] == 0
        messages = [e.user_message for e in instance.all_logs(result.run_id)]
        assert all(f"event {i}" in messages for i in range(20)) and "after 2" in messages
