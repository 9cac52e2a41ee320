"""Worker routes: the worker → orchestrator protocol, and worker administration."""

from __future__ import annotations

from fastapi import APIRouter, Body, Request

from ai_factory.core.models import (
    FactoryPause,
    IterationReport,
    LimitReport,
    LockResult,
    Success,
    WireModel,
    Worker,
    WorkerCompleteRequest,
    WorkerFailRequest,
    WorkerHeartbeatRequest,
    WorkerLockRequest,
    WorkerRegisterRequest,
    WorkerRegisterResponse,
    WorkerStuckRequest,
)
from ai_factory.orchestrator.api.deps import (
    AdminDep,
    ServicesDep,
    WorkerDep,
    authenticate_worker,
    bearer_token,
    require_admin,
)
from ai_factory.orchestrator.api.responses import ADMIN, CHANGE, errors

# The worker protocol: every route takes a body, and names a worker (or an item) that may
# be unknown (404), no longer current (409) or not the caller's (401).
router = APIRouter(
    prefix="/api",
    tags=["workers"],
    responses={**CHANGE, **errors(401, 404, 409, 422, 429, 503)},
)


class UnlockResult(WireModel):
    success: bool = True
    released: list[str]
    not_held: list[str]


class KillRequest(WireModel):
    reason: str = "Manual kill"


@router.post("/worker/register", response_model=WorkerRegisterResponse)
async def register(
    body: WorkerRegisterRequest, request: Request, services: ServicesDep
) -> WorkerRegisterResponse:
    if body.worker_id is None:
        # A worker that was not spawned by us claims work like any API client.
        await require_admin(request, services)
    else:
        await authenticate_worker(request, services, str(body.worker_id))
    return await services.workers.register(body, token=bearer_token(request))


@router.post("/worker/{worker_id}/heartbeat", response_model=Success)
async def heartbeat(body: WorkerHeartbeatRequest, worker: WorkerDep, services: ServicesDep) -> Success:
    await services.workers.heartbeat(worker, body)
    return Success()


@router.post("/worker/{worker_id}/iteration", response_model=Success)
async def iteration(body: IterationReport, worker: WorkerDep, services: ServicesDep) -> Success:
    await services.workers.record_iteration(worker, body)
    return Success()


@router.post("/worker/{worker_id}/limited", response_model=Success)
async def limited(body: LimitReport, worker: WorkerDep, services: ServicesDep) -> Success:
    await services.workers.record_limit(worker, body)
    await services.rate_limiter.record_limit(
        body, worker_id=worker.id, work_item_id=worker.worker.work_item_id
    )
    return Success()


@router.get("/worker/{worker_id}/pause", response_model=FactoryPause)
async def pause(worker: WorkerDep, services: ServicesDep) -> FactoryPause:
    """Whether a usage limit pauses the whole factory, and until when: a worker asks before
    each request it lets Claude send."""
    return await services.rate_limiter.pause()


@router.post("/worker/{worker_id}/lock", response_model=LockResult)
async def lock(body: WorkerLockRequest, worker: WorkerDep, services: ServicesDep) -> LockResult:
    item = await services.workers.current_item(worker, "lock files for")
    result = await services.conflicts.acquire(worker.id, item.repo, body.files)
    if result.conflicts:
        await services.ledger.note(
            item.id,
            "lock_conflict",
            f"files held by another worker: {', '.join(result.conflicts)}",
            {"files": result.conflicts, "workerId": str(worker.id)},
        )
    return result


@router.post("/worker/{worker_id}/unlock", response_model=UnlockResult)
async def unlock(body: WorkerLockRequest, worker: WorkerDep, services: ServicesDep) -> UnlockResult:
    repo = (await services.queue.get(worker.worker.work_item_id)).repo if worker.worker.work_item_id else ""
    released = await services.conflicts.release(worker.id, repo, body.files)
    asked = sorted(set(body.files))
    return UnlockResult(released=released, not_held=[f for f in asked if f not in released])


@router.post("/worker/{worker_id}/complete", response_model=Success)
async def complete(body: WorkerCompleteRequest, worker: WorkerDep, services: ServicesDep) -> Success:
    await services.workers.complete(worker, body)
    return Success()


@router.post("/worker/{worker_id}/fail", response_model=Success)
async def fail(body: WorkerFailRequest, worker: WorkerDep, services: ServicesDep) -> Success:
    await services.workers.fail(worker, body)
    return Success()


@router.post("/worker/{worker_id}/stuck", response_model=Success)
async def stuck(body: WorkerStuckRequest, worker: WorkerDep, services: ServicesDep) -> Success:
    await services.workers.stuck(worker, body)
    return Success()


admin = APIRouter(prefix="/api", tags=["workers"], dependencies=[AdminDep], responses=ADMIN)


@admin.get("/workers", response_model=list[Worker])
async def list_workers(services: ServicesDep, all: bool = False) -> list[Worker]:
    return await services.workers.list(include_finished=all)


@admin.get("/workers/{worker_id}", response_model=Worker, responses=errors(404))
async def show_worker(worker_id: str, services: ServicesDep) -> Worker:
    return await services.workers.get(worker_id)


@admin.post(
    "/workers/{worker_id}/kill", response_model=Success, responses={**CHANGE, **errors(404, 409)}
)
async def kill(
    worker_id: str, services: ServicesDep, body: KillRequest | None = Body(default=None)
) -> Success:
    await services.workers.kill(worker_id, reason=(body or KillRequest()).reason)
    return Success()
