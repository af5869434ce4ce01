"""The test writers' kit works as its docs say: a lifecycle tested in a few lines."""

from __future__ import annotations

from datetime import timedelta

from swoosh.workflows.testing.pytest_plugin import ProjectUnderTest


async def test_testing_kit_drives_a_lifecycle_in_a_few_lines(swoosh_project: ProjectUnderTest) -> None:
    await swoosh_project.lifecycle()
    await swoosh_project.step("Execution_PlanLocked")
    await swoosh_project.assert_decisions(ends_with=["Execution_AllReady", "Execution_PlanLocked"])
    assert (await swoosh_project.state()).phase["execution"] == "WORK"


async def test_testing_kit_controls_facts_and_time(swoosh_project: ProjectUnderTest) -> None:
    await swoosh_project.lifecycle()
    swoosh_project.facts.license_status = "throttled"
    await swoosh_project.step("License_Throttled", {"reason": "provider throttling"})
    await swoosh_project.skip(timedelta(hours=1))
    await swoosh_project.assert_decisions(ends_with=["License_Throttled", "License_GraceExpired"])


async def test_testing_kit_expects_rejections(swoosh_project: ProjectUnderTest) -> None:
    await swoosh_project.step("Boot_ConfigOk")
    swoosh_project.facts.license_status = "denied"
    rejected = await swoosh_project.expect_rejection("Boot_Licensed", "guard_failed")
    assert rejected.failing_guard == "license"
