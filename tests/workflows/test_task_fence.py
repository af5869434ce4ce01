"""The task fence: an Update arriving in a workflow task after background code acted there is turned away.

Why this exists: when a workflow task is retried after a worker died, the SDK core may hand the
task's history (here the decision-record flush timer firing) to the workflow in one activation and
an Update that came with the task in a later activation of the same task, while a replay delivers
both in one activation, where the Update runs first. The delivery pump reacting in between made two
chaos-run histories unreplayable. No server reliably produces that split on demand, so this test
feeds the real `ProjectLifecycle` the activations core produces, through the SDK's own workflow
instance (the same object a worker drives), and reads the commands it answers with. That instance
is the SDK's internal API (`temporalio.worker._workflow_instance`); an SDK upgrade that changes it
breaks this test loudly, never silently.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from temporalio import workflow
from temporalio.bridge.proto.activity_result import ActivityResolution, Success
from temporalio.bridge.proto.workflow_activation import (
    DoUpdate,
    FireTimer,
    InitializeWorkflow,
    ResolveActivity,
    WorkflowActivation,
    WorkflowActivationJob,
)
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.client import WorkflowUpdateFailedError
from temporalio.common import MetricMeter, Priority, TypedSearchAttributes
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.worker import UnsandboxedWorkflowRunner
from temporalio.worker._workflow_instance import WorkflowInstance, WorkflowInstanceDetails

from swoosh.api.client import ProposalFactory, Signers
from swoosh.api.server.problems import OverloadedProblem, translate
from swoosh.workflows.document import state_hash
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.lifecycle import ProjectLifecycle
from swoosh.workflows.lifecycle import client as projects
from swoosh.workflows.lifecycle.client import initial_input
from swoosh.workflows.messages import RETRY_LATER_ERROR_TYPE, UPDATE_TRANSITION, DeliveryResult, LifecycleSettings
from swoosh.workflows.proposal import ProposalRequest


class Driver:
    """Feeds one workflow instance hand-made activations, as the SDK core would."""

    def __init__(self, inp: Any) -> None:
        self.conv = pydantic_data_converter.payload_converter
        self.inp = inp
        self.instance: WorkflowInstance | None = None
        self.updates = 0
        self.t0 = datetime.now(UTC).replace(microsecond=0)  # proposals carry wall-clock HLCs

    def _activation(
        self, task: int, jobs: list[WorkflowActivationJob], history_length: int | None = None
    ) -> WorkflowActivation:
        ts = Timestamp()
        ts.FromDatetime(self.t0 + timedelta(seconds=task))
        # Within one workflow task every activation carries the task's start time and history length.
        length = 3 + 6 * task if history_length is None else history_length
        return WorkflowActivation(run_id="run-1", timestamp=ts, history_length=length, jobs=jobs)

    def start(self) -> WorkflowActivationCompletion:
        init = InitializeWorkflow(
            workflow_type="ProjectLifecycle",
            workflow_id=workflow_id("fence-1"),
            arguments=self.conv.to_payloads([self.inp]),
            randomness_seed=7,
            first_execution_run_id="run-1",
        )
        init.workflow_task_timeout.FromTimedelta(timedelta(seconds=10))
        init.start_time.FromDatetime(self.t0)
        act = self._activation(0, [WorkflowActivationJob(initialize_workflow=init)])
        info = workflow.Info(
            attempt=1,
            continued_run_id=None,
            cron_schedule=None,
            execution_timeout=None,
            first_execution_run_id="run-1",
            headers={},
            namespace="default",
            original_execution_run_id="run-1",
            parent=None,
            root=None,
            raw_memo={},
            retry_policy=None,
            run_id="run-1",
            run_timeout=None,
            search_attributes={},
            start_time=self.t0,
            workflow_start_time=self.t0,
            task_queue="fence",
            task_timeout=timedelta(seconds=10),
            typed_search_attributes=TypedSearchAttributes.empty,
            workflow_id=init.workflow_id,
            workflow_type=init.workflow_type,
            priority=Priority.default,
        )
        self.instance = UnsandboxedWorkflowRunner().create_instance(
            WorkflowInstanceDetails(
                payload_converter_factory=pydantic_data_converter._new_payload_converter,
                failure_converter_class=pydantic_data_converter.failure_converter_class,
                interceptor_classes=[],
                defn=workflow._Definition.must_from_class(ProjectLifecycle),
                info=info,
                randomness_seed=7,
                extern_functions={
                    "__temporal_get_metric_meter": lambda: MetricMeter.noop,
                    "__temporal_assert_local_activity_valid": lambda name: None,
                },
                disable_eager_activity_execution=True,
                worker_level_failure_exception_types=[],
                patch_activation_callback=None,
                last_completion_result=init.last_completion_result,
                last_failure=None,
            )
        )
        return self.instance.activate(act)

    def activate(
        self, task: int, *jobs: WorkflowActivationJob, history_length: int | None = None
    ) -> WorkflowActivationCompletion:
        assert self.instance is not None
        return self.instance.activate(self._activation(task, list(jobs), history_length))

    def update(self, request: ProposalRequest) -> WorkflowActivationJob:
        self.updates += 1
        return WorkflowActivationJob(
            do_update=DoUpdate(
                id=f"u{self.updates}",
                protocol_instance_id=f"u{self.updates}",
                name=UPDATE_TRANSITION,
                input=self.conv.to_payloads([request]),
                run_validator=True,
            )
        )


def commands(completion: WorkflowActivationCompletion) -> list[Any]:
    assert completion.HasField("successful"), completion
    return list(completion.successful.commands)


def kinds(completion: WorkflowActivationCompletion) -> list[str]:
    return [c.WhichOneof("variant") for c in commands(completion)]


def update_response(completion: WorkflowActivationCompletion) -> Any:
    found = [c.update_response for c in commands(completion) if c.HasField("update_response")]
    assert found, kinds(completion)
    return found[0]


def flushed_project() -> tuple[Driver, ProposalFactory, str]:
    """A project with one accepted transition whose flush timer is armed (timer seq 1)."""
    signers = Signers.generate()
    factory = ProposalFactory(signers, "fence-1")
    inp = initial_input(factory.project_id, signers.keyring(), settings=LifecycleSettings(dr_flush_ms=1000))
    drv = Driver(inp)
    drv.start()
    head = state_hash(inp.snapshot.document)
    first = drv.activate(1, drv.update(ProposalRequest(body=factory.body("Boot_ConfigOk", head))))
    response = update_response(first)
    assert response.HasField("accepted"), response
    done = [c for c in commands(first) if c.HasField("update_response") and c.update_response.HasField("completed")]
    assert done, kinds(first)
    assert "start_timer" in kinds(first)  # the delivery pump's flush wait
    answer = pydantic_data_converter.payload_converter.from_payload(done[0].update_response.completed, dict)
    return drv, factory, answer["state_post_hash"]


async def test_update_after_background_code_in_the_same_task_is_turned_away() -> None:
    drv, factory, head = flushed_project()  # the SDK's workflow instance needs a running event loop
    # Task 2, activation 1: only the flush timer fires; the pump upserts and schedules a delivery.
    fired = drv.activate(2, WorkflowActivationJob(fire_timer=FireTimer(seq=1)))
    assert kinds(fired) == ["upsert_workflow_search_attributes", "schedule_activity"]
    # Task 2, activation 2: the Update that came with the same task.
    late = drv.activate(2, drv.update(ProposalRequest(body=factory.body("Boot_Licensed", head))))
    response = update_response(late)
    assert response.HasField("rejected"), response
    assert response.rejected.application_failure_info.type == RETRY_LATER_ERROR_TYPE
    assert kinds(late) == ["update_response"]  # nothing else: no local activity, no state change
    # Resent in the next task it is taken.
    resent = drv.activate(3, drv.update(ProposalRequest(body=factory.body("Boot_Licensed", head))))
    assert update_response(resent).HasField("accepted")


async def test_update_after_a_query_catch_up_is_turned_away_until_a_new_task_ran() -> None:
    """The form seen in chaos runs: a query reaches a worker without the workflow in cache while
    the task that carries the fired flush timer waits to start. The core applies history up to the
    latest event for the query (the previous task's time, a longer history), the pump reacts, and
    its commands go out with the next real task, ahead of that task's Update."""
    drv, factory, head = flushed_project()
    catch_up = drv.activate(1, WorkflowActivationJob(fire_timer=FireTimer(seq=1)), history_length=3 + 6 + 7)
    assert kinds(catch_up) == ["upsert_workflow_search_attributes", "schedule_activity"]
    real_task = drv.activate(3, drv.update(ProposalRequest(body=factory.body("Boot_Licensed", head))))
    response = update_response(real_task)
    assert response.HasField("rejected"), response
    assert response.rejected.application_failure_info.type == RETRY_LATER_ERROR_TYPE
    # An activation holding nothing but refused Updates runs no workflow code (the SDK checks no
    # conditions then: nothing of it reaches history), so the fence holds until other work arrives,
    # here the delivery activity completing. Then the resent proposal is taken.
    again = drv.activate(4, drv.update(ProposalRequest(body=factory.body("Boot_Licensed", head))))
    assert update_response(again).HasField("rejected")
    done = DeliveryResult(last_index=1, delivered=1, skipped=0)
    drv.activate(
        5,
        WorkflowActivationJob(
            resolve_activity=ResolveActivity(
                seq=1,
                result=ActivityResolution(
                    completed=Success(result=pydantic_data_converter.payload_converter.to_payloads([done])[0])
                ),
            )
        ),
    )
    resent = drv.activate(6, drv.update(ProposalRequest(body=factory.body("Boot_Licensed", head))))
    assert update_response(resent).HasField("accepted")


async def test_update_in_the_same_activation_as_the_timer_is_taken() -> None:
    """The ordinary case (what a replay sees): the Update is applied before the timer resolves."""
    drv, factory, head = flushed_project()
    both = drv.activate(
        2,
        WorkflowActivationJob(fire_timer=FireTimer(seq=1)),
        drv.update(ProposalRequest(body=factory.body("Boot_Licensed", head))),
    )
    assert update_response(both).HasField("accepted")
    assert kinds(both)[0] == "update_response"  # accepted before the pump emits anything


# ---------------------------------------------------------------------- the caller's side
def _turned_away() -> WorkflowUpdateFailedError:
    return WorkflowUpdateFailedError(ApplicationError("busy", type=RETRY_LATER_ERROR_TYPE, non_retryable=True))


async def test_callers_resend_an_update_turned_away_and_get_its_answer(monkeypatch: Any) -> None:
    monkeypatch.setattr(projects, "TURNED_AWAY_WAITS_S", (0.0, 0.0, 0.0))
    sent: list[int] = []
    answer = object()

    async def send() -> Any:
        sent.append(1)
        if len(sent) < 3:
            raise _turned_away()
        return answer

    assert await projects._update(send) is answer
    assert len(sent) == 3


async def test_an_update_turned_away_every_time_becomes_a_429_with_retry_after(monkeypatch: Any) -> None:
    monkeypatch.setattr(projects, "TURNED_AWAY_WAITS_S", (0.0,))

    async def send() -> Any:
        raise _turned_away()

    try:
        await projects._update(send)
    except WorkflowUpdateFailedError as err:
        assert projects.turned_away(err)
        problem = translate(err, "p-1")
    else:
        raise AssertionError("expected the last refusal to propagate")
    assert isinstance(problem, OverloadedProblem)
    assert problem.status == 429 and problem.headers() == {"Retry-After": "1"}
    assert problem.reason == "project p-1: busy", problem.reason  # the workflow's own reason
    other = WorkflowUpdateFailedError(ApplicationError("boom", type="ValueError"))
    assert not projects.turned_away(other) and translate(other) is other
