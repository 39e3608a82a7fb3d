"""``data.pinned``: the data version an evaluation reads, chosen by name and materialized without publishing.

The nightly evaluation must not write ``data/`` or ``data.dvc``: they are the weekly training's, and a second flow
rewriting them would make the two overwrite each other's version. Instead it names a published version:

- ``champion`` (default): the version the model being evaluated was trained on (its registering run's
  ``grm.data.dvc_md5`` tag), so day after day the same items: any change of score is the code or the environment;
- ``latest``: the newest published version (``grm data versions``), so the score follows the data as it arrives;
- an md5 (or a unique prefix) of a version.

The version is pulled into ``artifacts/datasets/{md5}/`` (``versioning.fetch_version``) and read from there.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from grm.sampling.spec import REGISTRY, parse_model_spec, spec_kind
from tasks import data_store, data_versions, model_fetch, versioning
from tasks.engine.runtime import TASK_OPTIONS, RunContext, logger

CHAMPION, LATEST = "champion", "latest"


def _model_alias(ctx: RunContext, model: str) -> tuple[str, str] | None:
    if spec_kind(model) != REGISTRY:  # teacher, a folder: no registered version
        return None
    return model_fetch.registry_target(parse_model_spec(model), ctx.cfg.registry)


def _version(ctx: RunContext, model: str) -> object | None:
    named = _model_alias(ctx, model)
    if named is None or not ctx.tracker.enabled:
        return None
    return ctx.tracker.alias_version(*named)


def registered(ctx: RunContext, model: str) -> tuple[str, str] | None:
    """(registered model name, version) of ``model`` when it is a registry alias that exists, else None."""
    version = _version(ctx, model)
    return (str(version.name), str(version.version)) if version is not None else None  # type: ignore[attr-defined]


def trained_on(ctx: RunContext, model: str) -> str | None:
    """The data version the registered ``model`` was trained on (None: not a registered model, or no tag)."""
    version = _version(ctx, model)
    run_id = getattr(version, "run_id", None)
    if not run_id:
        return None
    return ctx.tracker.client().get_run(run_id).data.tags.get(data_versions.RUN_TAG)


def choose(ctx: RunContext, data_version: str, model: str) -> tuple[str, str]:
    """(md5, why) for ``data_version`` = ``champion`` | ``latest`` | an md5 or unique prefix.

    Raises:
        DataVersionError: no version published yet, or an unknown md5 (the message lists the known ones).
    """
    root = Path(ctx.project_dir)
    if data_version == CHAMPION:
        md5 = trained_on(ctx, model)
        if md5:
            return md5, f"the version {model} was trained on"
        logger().warning("%s has no recorded training data version: evaluating on the latest published one", model)
        data_version = LATEST
    known = data_versions.list_versions(root, ctx.tracker.uri or None)
    if data_version == LATEST:
        if not known:
            raise data_store.DataVersionError(
                "no data version is published yet", fix="run the training pipeline (`grm run`) first"
            )
        return known[-1].md5, f"the latest published version ({known[-1].date})"
    return data_versions.resolve(known, version=data_version).md5, "pinned by the data_version parameter"


@task(name="data.pinned", cache_policy=NO_CACHE, **TASK_OPTIONS)
def pinned(ctx: RunContext, data_version: str = CHAMPION, model: str = "champion") -> versioning.DataVersion:
    """Resolve ``data_version`` and materialize it content-addressed; tags the flow run with it. Never touches
    ``data/``, ``data.dvc`` or the DVC remote."""
    root = Path(ctx.project_dir)
    md5, why = choose(ctx, data_version, model)
    folder = versioning.fetch_version(root, md5)
    files = versioning.file_hashes(folder)
    dv = versioning.DataVersion(
        dvc_md5=md5 if md5.endswith(data_store.DIR_SUFFIX) else md5 + data_store.DIR_SUFFIX,
        files=files,
        dvc_file=data_store.dvc_file_text(md5),
        remote=str(versioning.remote_config(root)["url"]),
        git_commit=None,
        local_dir=str(folder),
        size=sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()),
    )
    ctx.tracker.set_tags(ctx.parent_run_id, dv.tags() | {"grm.data.pinned": data_version, "grm.data.pinned_why": why})
    logger().info("data version %s (data_version=%s: %s), read from %s", dv.dvc_md5, data_version, why, folder)
    return dv
