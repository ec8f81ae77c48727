"""The prompts' speed (issue 17): speech from words and publishing a menu's audio.

- `synth_25_words_s`: one 25-word prompt spoken (espeak-ng, then sox to 8 kHz), nothing cached;
  per language, several different prompts (target <= 1 s each).
- `publish_40x2_new_s`: publishing a draft of 40 prompts x 2 languages whose words were never
  spoken (the whole admin publish: speech, files written to the sounds directory, the version
  activated in the store, old files pruned) (target <= 20 s).
- `publish_40x2_unchanged_s`: publishing the next draft with the same words (all cached, files
  already there) (target <= 1 s).

Runs the product's own code (`admin.ivr_http.publish_version`) on SQLite in a temporary dir.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from contactcenter import db
from contactcenter.admin import ivr_services as ivs
from contactcenter.admin.ivr_http import publish_version
from contactcenter.clock import SYSTEM
from contactcenter.config import load_settings
from contactcenter.keys import CLOCK, SESSIONS, SETTINGS
from contactcenter.prompts.keys import PROMPTS
from contactcenter.prompts.plugin import build
from contactcenter.seed import seed_reference

TARGETS = {"synth_25_words_s_max": 1.0, "publish_40x2_new_s_max": 20.0,
           "publish_40x2_unchanged_s_max": 1.0}
VOCAB = {
    "en": ("please press the key for your request about trash recycling streets lights parks "
           "water permits taxes noise animals trees snow sidewalks buses schools libraries "
           "now then again later today tomorrow morning evening city office service help").split(),
    "es": ("por favor oprima la tecla para su solicitud sobre basura reciclaje calles luces "
           "parques agua permisos impuestos ruido animales árboles nieve aceras autobuses "
           "escuelas bibliotecas ahora luego otra vez hoy mañana tarde ciudad oficina").split(),
}


def sentence(rng: random.Random, lang: str, words: int) -> str:
    return " ".join(rng.choice(VOCAB[lang]) for _ in range(words)).capitalize() + "."


def menu(rng: random.Random, prompts: int = 40) -> dict[str, Any]:
    """A valid menu of `prompts` prompts (2 per node) in en and es, plus the language menu."""
    count = prompts // 2

    def p() -> dict[str, str]:
        return {lang: sentence(rng, lang, 12) for lang in ("en", "es")}

    nodes = []
    for i in range(count):
        options: list[dict[str, Any]] = [{"digit": "0", "action": "queue", "queue": "general-311"}]
        if i == 0:
            options += [{"digit": str(d), "action": "submenu", "node": f"n{d}"}
                        for d in range(1, 10) if d < count]
        else:
            options.append({"digit": "2", "action": "back"})
            if 1 <= i <= 9 and i + 9 < count:
                options.append({"digit": "3", "action": "submenu", "node": f"n{i + 9}"})
        if i == 10 and count > 19:
            options.append({"digit": "4", "action": "submenu", "node": "n19"})
        nodes.append({"id": f"n{i}", "prompt": p(), "invalid_prompt": p(), "options": options})
    return {"name": "bench", "languages": ["en", "es"], "default_language": "en",
            "language_menu": {"prompt": {"en": "For English, press 1.",
                                         "es": "Para español, oprima 2."},
                              "options": {"1": "en", "2": "es"}},
            "start": "n0", "nodes": nodes}


async def run(workdir: Path | None = None, rounds: int = 5) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ccbench-prompts-", dir=workdir) as tmp:
        root = Path(tmp)
        settings = load_settings(env={
            "CC_DATABASE_URL": f"sqlite:///{root}/bench.db", "CC_SOUNDS_DIR": str(root / "snd"),
            "CC_PROMPTS_DIR": str(root / "lib")})
        await asyncio.to_thread(db.upgrade, settings.database_url)
        engine = db.make_engine(settings.database_url)
        sessions = db.make_sessionmaker(engine)
        try:
            await seed_reference(sessions)
            service = build(settings, sessions)
            rng = random.Random(time.perf_counter_ns())  # words never spoken before
            synth: dict[str, list[float]] = {}
            for lang in ("en", "es"):
                for _ in range(rounds):
                    text = sentence(rng, lang, 25)
                    t0 = time.perf_counter()
                    await service.speak(text, lang)
                    synth.setdefault(lang, []).append(round(time.perf_counter() - t0, 3))
            app = web.Application()
            app[SETTINGS], app[SESSIONS], app[CLOCK], app[PROMPTS] = \
                settings, sessions, SYSTEM, service
            data = menu(rng)
            timings = []
            for label in ("new", "unchanged"):
                async with sessions() as s, s.begin():
                    row = await ivs.create_draft(s, "bench", data, comment=label)
                made = service.synthesized
                t0 = time.perf_counter()
                await publish_version(app, "bench", row.version)
                timings.append((round(time.perf_counter() - t0, 3), service.synthesized - made))
            files = sum(1 for _ in (root / "snd").rglob("*.wav"))
        finally:
            await engine.dispose()
    worst = max(max(v) for v in synth.values())
    return {
        "synth_25_words_s": {lang: {"each": v, "max": max(v)} for lang, v in synth.items()},
        "publish_40x2_new_s": timings[0][0], "publish_40x2_new_spoken": timings[0][1],
        "publish_40x2_unchanged_s": timings[1][0],
        "publish_40x2_unchanged_spoken": timings[1][1],
        "sound_files_written": files,
        "targets": TARGETS,
        "pass": worst <= TARGETS["synth_25_words_s_max"]
        and timings[0][0] <= TARGETS["publish_40x2_new_s_max"]
        and timings[1][0] <= TARGETS["publish_40x2_unchanged_s_max"],
    }


if __name__ == "__main__":
    import json

    print(json.dumps(asyncio.run(run()), indent=2))
