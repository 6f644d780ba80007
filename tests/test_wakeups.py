"""The one wake-up hub: thread-safe publishing, topics dropped with their last listener."""

from __future__ import annotations

import asyncio
import threading
import time

from tianwang.wakeups import WakeHub, command_topic


def test_publish_from_a_worker_thread_wakes_a_listener() -> None:
    hub = WakeHub()

    async def main() -> tuple[bool, float]:
        t0 = time.monotonic()
        threading.Timer(0.05, hub.publish, args=("t",)).start()
        woken = await hub.wait("t", 5.0)
        return woken, time.monotonic() - t0

    woken, took = asyncio.run(main())
    assert woken and took < 4.0
    assert hub.topics() == 0 and hub.listeners() == 0


def test_other_topics_do_not_wake_and_timeouts_report_false() -> None:
    hub = WakeHub()

    async def main() -> bool:
        threading.Timer(0.02, hub.publish, args=("other",)).start()
        return await hub.wait("t", 0.3)

    assert asyncio.run(main()) is False


def test_every_listener_of_a_topic_wakes_and_topics_never_accumulate() -> None:
    hub = WakeHub()

    async def main() -> list[bool]:
        waits = [asyncio.create_task(hub.wait(command_topic(7), 5.0)) for _ in range(3)]
        await asyncio.sleep(0.05)
        assert hub.listeners(command_topic(7)) == 3
        await asyncio.to_thread(hub.publish, command_topic(7))
        return list(await asyncio.gather(*waits))

    assert asyncio.run(main()) == [True, True, True]
    # a topic per command, thousands of commands: nothing is kept once nobody waits
    for i in range(2000):
        hub.publish(command_topic(i))
    assert hub.topics() == 0


def test_a_listener_on_a_closed_loop_is_dropped() -> None:
    hub = WakeHub()
    loop = asyncio.new_event_loop()

    async def sub() -> None:
        hub.subscribe("t")

    loop.run_until_complete(sub())
    loop.close()
    assert hub.listeners("t") == 1
    hub.publish("t")
    assert hub.listeners("t") == 0 and hub.topics() == 0
