"""``make demo``: materialize the whole graph on the embedded cohort and list where the outputs are."""

from __future__ import annotations

import sys

import dagster as dg

from dagster_project.definitions import defs
from dagster_project.pipeline import materialize_all


def main() -> int:
    instance = dg.DagsterInstance.get()  # DAGSTER_HOME, so `make dev` shows these runs afterwards
    results = materialize_all(defs, instance)
    print("\nOutputs:")
    for result in results:
        for event in result.get_asset_materialization_events():
            mat = event.materialization
            assert mat is not None
            where, md5 = mat.metadata.get("output"), mat.metadata.get("dvc_md5")
            part = f"[{mat.partition}]" if mat.partition else ""
            version = f"  (dvc {md5.value})" if md5 else ""
            print(
                f"  {mat.asset_key.to_user_string()}{part}: {where.value if where else '(metadata only)'}{version}"
            )
        for check in result.get_asset_check_evaluations():
            print(
                f"  check {check.asset_key.to_user_string()}:{check.check_name} {'passed' if check.passed else 'FAILED'}"
            )
    failed = [r for r in results if not r.success]
    print(
        f"\n{len(results) - len(failed)} of {len(results)} run(s) succeeded; Dagster runs are in {instance.root_directory}."
    )
    print("Browse them with `make dev` (http://127.0.0.1:3000).")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
