"""The whole system as `make run` starts it: embedded broker and database, six service processes."""

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from shared import topics
from shared.embedded import port_is_free, wait_until_ready
from shared.testing import EventLog, free_port, publish, service_auth
from tessera.launcher import SERVICES
from tests.factories import person_data, referral_message, unique_referral, unique_seed

pytestmark = pytest.mark.e2e


@dataclass
class System:
    process: subprocess.Popen[bytes]
    bootstrap: str
    port_base: int
    run_dir: Path

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port_base + SERVICES.index(service)}"

    def supervisorctl(self, *args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.run_dir / "supervisord.conf"), *args],
            capture_output=True, text=True, check=False).stdout


def _free_port_block(size: int) -> int:
    """Below Linux's ephemeral range (32768+): a port chosen there can be taken by any outgoing connection
    before the service binds it (seen once: documents could not bind and the system never became ready)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20_000, 32_000 - size)
        if all(port_is_free("127.0.0.1", base + i) for i in range(size)):
            return base
    raise RuntimeError("no block of free ports")


@pytest.fixture(scope="module")
async def system(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[System]:
    run_dir = tmp_path_factory.mktemp("run")
    broker_port, port_base = free_port(), _free_port_block(len(SERVICES))
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
    env["SMTP_PORT"] = str(free_port())
    process = subprocess.Popen(
        [sys.executable, "-m", "tessera", "run", "--run-dir", str(run_dir), "--broker-port", str(broker_port),
         "--http-port-base", str(port_base)],
        env=env, stdout=open(run_dir / "launcher.log", "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    system = System(process, f"127.0.0.1:{broker_port}", port_base, run_dir)
    try:
        await wait_until_ready([f"{system.url(s)}/readyz" for s in SERVICES], timeout=240)
        yield system
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)


async def test_a_referral_becomes_incoming_work_for_the_wellbeing_hub(system: System):
    data = unique_referral()
    envelope = referral_message(data)
    async with EventLog(system.bootstrap, [topics.REFERRALS_EVENTS, topics.WORKFLOW_EVENTS]) as events:
        await publish(system.bootstrap, topics.REFERRALS_INTAKE, [(data["referral_id"], envelope.to_bytes())])
        [created] = await events.wait_for(lambda s: s.caused_by(envelope.id) and s.type == "step.created", 60)
    assert created.data["step_type"] == "WB Wellbeing Screening"
    assert created.data["assignee"] == {"kind": "team", "id": "wellbeing-service-hub"}
    assert created.data["state"] == "incoming"
    async with httpx.AsyncClient(auth=service_auth()) as http:
        person = (await http.get(f"{system.url('referrals')}/people/{created.data['person_id']}")).json()
        steps = (await http.get(f"{system.url('workflow')}/people/{created.data['person_id']}/steps")).json()
        work = (await http.get(f"{system.url('workflow')}/teams/wellbeing-service-hub/work")).json()
    assert person["nhs_number"] == data["person"]["nhs_number"]
    assert [s["step_id"] for s in steps] == [created.data["step_id"]]
    assert created.data["step_id"] in {s["step_id"] for s in work["incoming"]}


async def test_each_service_answers_its_operations_endpoints(system: System):
    async with httpx.AsyncClient(auth=service_auth()) as http:
        for service in SERVICES:
            assert (await http.get(f"{system.url(service)}/healthz")).status_code == 200
            assert (await http.get(f"{system.url(service)}/readyz")).json() == {"ready": True}
            assert "tessera_" in (await http.get(f"{system.url(service)}/metrics")).text
            spec = (await http.get(f"{system.url(service)}/asyncapi.json")).json()
            assert spec["info"]["title"] == f"tessera {service}"
        intake = (await http.get(f"{system.url('referrals')}/asyncapi.json")).json()
        assert any("referrals.intake" in name for name in intake["channels"])


async def test_a_service_that_dies_is_restarted_and_carries_on(system: System):
    pid = int(system.supervisorctl("pid", "referrals").strip())
    os.kill(pid, signal.SIGKILL)
    data = unique_referral(category="carer", cared_for_person=person_data(unique_seed()))
    envelope = referral_message(data)
    async with EventLog(system.bootstrap, [topics.WORKFLOW_EVENTS]) as events:
        await publish(system.bootstrap, topics.REFERRALS_INTAKE, [(data["referral_id"], envelope.to_bytes())])
        [created] = await events.wait_for(lambda s: s.caused_by(envelope.id) and s.type == "step.created", 90)
    assert int(system.supervisorctl("pid", "referrals").strip()) != pid
    assert created.data["step_type"] == "Adult Carer Triage"
    assert created.data["linked_person_id"]


async def test_ctrl_c_stops_every_process_of_the_system(system: System):
    """Ctrl-C of `make run` (SIGINT to the launcher) stops the broker, the database and every service. It ends the
    module's system, so it is the module's last test: starting a second system for it cost a minute and a half."""
    system.process.send_signal(signal.SIGINT)
    assert await asyncio.to_thread(system.process.wait, 60) is not None
    assert port_is_free("127.0.0.1", int(system.bootstrap.rpartition(":")[2]))
    assert all(port_is_free("127.0.0.1", system.port_base + i) for i in range(len(SERVICES)))
