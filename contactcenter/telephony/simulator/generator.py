"""The call generator: Poisson arrivals of citizens with drawn IVR digits and patience, and
simulated operators who answer after a drawn ring delay and talk for a drawn time."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field

from .pbx import AgentBehaviour, SimMember, SimPbx, SimQueueConfig

log = logging.getLogger(__name__)

FIRST = [
    "Maria",
    "Luz",
    "Pedro",
    "Ana",
    "Jose",
    "Carmen",
    "Luis",
    "Rosa",
    "Miguel",
    "Elena",
    "Jorge",
    "Sofia",
    "Carlos",
    "Isabel",
    "Ramon",
    "Lucia",
]
LAST = ["Lopez", "Ortiz", "Diaz", "Cruz", "Rivera", "Soto", "Torres", "Ramos", "Vega", "Colon"]
OPERATORS = [
    "Ana",
    "Ben",
    "Carla",
    "Dan",
    "Eve",
    "Frank",
    "Gina",
    "Hugo",
    "Iris",
    "Jon",
    "Kim",
    "Leo",
    "Mia",
    "Ned",
    "Olga",
    "Pia",
]


def parse_rate(text: str) -> float:
    """'2/s', '30/m', '120/h' or a bare number of calls per second."""
    value, _, unit = text.strip().partition("/")
    per = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}.get(unit.strip().lower())
    try:
        rate = float(value)
    except ValueError:
        raise ValueError(f"rate {text!r}: expected e.g. 2/s, 30/m or 0.5") from None
    if per is None or rate <= 0:
        raise ValueError(f"rate {text!r}: expected e.g. 2/s, 30/m or 0.5")
    return rate / per


@dataclass
class Mix:
    """What callers do and how simulated operators behave (virtual seconds)."""

    # IVR keys: 1 sanitation, 2 potholes, 3 general, 9 + six digits case status, "" silence
    digits: dict[str, float] = field(
        default_factory=lambda: {"1": 0.35, "2": 0.30, "3": 0.22, "9": 0.08, "": 0.05}
    )
    patience_mean: float = 60.0
    patience_min: float = 4.0
    ring_min: float = 1.0
    ring_max: float = 6.0
    no_answer: float = 0.05  # a simulated operator who lets it ring out
    talk_mean: float = 90.0
    talk_min: float = 10.0
    # The product's IVR first asks for the language (1 English, 2 Spanish), then the menu.
    language_menu: bool = True
    spanish: float = 0.15
    ivr_allowance: float = 25.0  # seconds given to the menus before queue patience counts


class CallGenerator:
    def __init__(
        self,
        pbx: SimPbx,
        rate: float,
        mix: Mix | None = None,
        *,
        calls: int | None = None,
        duration: float | None = None,
        seed: int | None = None,
    ) -> None:
        self.pbx, self.rate, self.mix = pbx, rate, mix or Mix()
        self.calls, self.duration = calls, duration
        self.rng = random.Random(seed)
        self.placed = 0
        pbx.behaviour = self.behaviour

    def behaviour(self, member: SimMember) -> AgentBehaviour | None:
        m = self.mix
        ring = None if self.rng.random() < m.no_answer else self.rng.uniform(m.ring_min, m.ring_max)
        talk = max(m.talk_min, self.rng.expovariate(1 / m.talk_mean))
        return AgentBehaviour(None if ring is None else round(ring, 1), round(talk))

    def answers(self) -> list[str]:
        """What the caller keys at each menu prompt: language, then the menu choice (9: a
        six-digit case number, then 0 for an operator); "" keys nothing at the menu."""
        keys, weights = zip(*self.mix.digits.items(), strict=True)
        choice = self.rng.choices(keys, weights)[0]
        out = []
        if self.mix.language_menu:
            out.append("2" if self.rng.random() < self.mix.spanish else "1")
        if choice:
            out.append(choice)
        if choice == "9":
            out += [f"{self.rng.randrange(1, 10**6):06d}", "0"]
        return out

    def place_one(self) -> None:
        first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
        number = f"787555{self.rng.randrange(10**4):04d}"
        patience = max(self.mix.patience_min, self.rng.expovariate(1 / self.mix.patience_mean))
        self.pbx.originate_citizen(
            number,
            f"{first} {last}",
            "",
            round(patience + self.mix.ivr_allowance),
            answers=self.answers(),
        )
        self.placed += 1

    async def run(self) -> None:
        start = self.pbx.clock.now()
        while True:
            if self.calls is not None and self.placed >= self.calls:
                return
            if self.duration is not None and self.pbx.clock.now() - start >= self.duration:
                return
            await self.pbx.clock.sleep(self.rng.expovariate(self.rate))
            self.place_one()


def add_simulated_agents(
    pbx: SimPbx, queues: list[str], agents: int, *, strategy: str = "rrmemory"
) -> list[SimMember]:
    """`agents` operators Local/2001..@agents/n spread over `queues` (each also in the next)."""
    for q in queues:
        if q not in pbx.queues:
            pbx.add_queue(SimQueueConfig(q, strategy, timeout=15, retry=5, wrapuptime=5))
    out = []
    for i in range(agents):
        exten = 2001 + i
        iface = f"Local/{exten}@agents/n"
        name = f"{OPERATORS[i % len(OPERATORS)]} Operator"
        homes = (
            {queues[i % len(queues)], queues[(i + 1) % len(queues)]} if agents > 1 else {queues[0]}
        )
        for q in sorted(homes):
            out.append(pbx.queue_add(q, iface, name, 0, f"Local/{exten}@agents"))
    return out


async def wait_idle(pbx: SimPbx, timeout: float) -> bool:
    """Wait (real seconds) until every call has ended."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while any(c.where != "ended" for c in pbx.calls):
        if loop.time() > end:
            return False
        await asyncio.sleep(0.05)
    return True
