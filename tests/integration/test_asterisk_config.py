"""asterisk-config/ is checked with asterisklint (dialplan-check for extensions.conf, its config
parser for the rest), then against what the product expects: the seeded queues, the IVR's
variables, a least-privilege AMI account. Deliberately broken copies must fail."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from contactcenter.config import Settings
from contactcenter.queues.directory import QueueInfo
from contactcenter.seed import DEMO_USERS, QUEUES
from contactcenter.telephony.bridge import WANTED_EVENTS
from contactcenter.telephony.frames import FrameReader
from contactcenter.telephony.queues_conf import render_queues, render_rules
from tests.conftest import ROOT, transcript

CONF = ROOT / "asterisk-config"
BIN = Path(sys.executable).parent

# Reads a config file with asterisklint's parser in a child process (its message registry is a
# module global): prints the sections as JSON, its messages on stderr, exit 1 on any message.
_DUMP = """
import json, sys
from asterisklint import FileConfigParser
from asterisklint.defines import MessageDefManager
parser = FileConfigParser()
parser.include(sys.argv[1])
out = [[c.name, [[v.variable, v.value] for v in c]] for c in parser]
print(json.dumps(out))
sys.exit(1 if any(not m[0].muted for m in MessageDefManager.raised.values()) else 0)
"""


def dialplan_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "asterisklint"), "dialplan-check", str(path)],
                          capture_output=True, text=True, timeout=60)


def read_conf(path: Path) -> tuple[int, list[tuple[str, list[tuple[str, str]]]], str]:
    proc = subprocess.run([sys.executable, "-c", _DUMP, str(path)], capture_output=True,
                          text=True, timeout=60)
    sections = json.loads(proc.stdout) if proc.stdout.strip() else []
    return proc.returncode, [(n, [(k, v) for k, v in items]) for n, items in sections], \
        proc.stderr


def values(section: list[tuple[str, str]]) -> dict[str, str]:
    return {k: v.split(";")[0].strip() for k, v in section}


def test_dialplan_passes_asterisklint() -> None:
    proc = dialplan_check(CONF / "extensions.conf")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "" and proc.stderr.strip() == ""


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        ("Queue(${QUEUE},t,,,${QWAIT},,,${QRULE})",
         "Queue(${QUEUE},t,,,${QWAIT},,,${QRULE}", "W_APP_BALANCE"),
        ("Goto(queue,1)", "Goto(qeueu,1)", "W_DP_GOTO_CONTEXT_NOEXTEN"),
        ("AGI(${CC_AGI_URL})", "AGII(${CC_AGI_URL})", "E_APP_MISSING"),
        ('GotoIf($["${QUEUE}" = ""]?fallback,1)', 'GotoIf($["${QUEUE}" = ""?fallback,1)',
         "E_APP_PARSE_ERROR"),
    ],
)
def test_a_broken_dialplan_fails(tmp_path: Path, old: str, new: str, code: str) -> None:
    text = (CONF / "extensions.conf").read_text()
    assert old in text
    (tmp_path / "extensions.conf").write_text(text.replace(old, new, 1))
    proc = dialplan_check(tmp_path / "extensions.conf")
    assert proc.returncode == 1 and code in proc.stdout + proc.stderr, proc.stdout


SHIPPED = sorted(p.name for p in CONF.glob("*.conf") if p.name != "extensions.conf")


def test_every_shipped_file_is_checked() -> None:
    assert {"queues.conf", "queuerules.conf", "contactcenter-queues.conf", "manager.conf",
            "pjsip.conf", "modules.conf", "musiconhold.conf", "logger.conf"} <= set(SHIPPED)
    logger = dict(read_conf(CONF / "logger.conf")[1])
    assert values(logger["general"])["queue_log"] == "yes"
    moh = dict(read_conf(CONF / "musiconhold.conf")[1])
    assert values(moh["default"])["directory"] == "/usr/share/asterisk/moh"


@pytest.mark.parametrize("name", SHIPPED)
def test_other_files_parse_cleanly(name: str) -> None:
    rc, sections, messages = read_conf(CONF / name)
    assert rc == 0, messages
    assert sections or name == "acl.conf", name  # acl.conf: comments only (no named ACLs)


def test_a_broken_config_file_fails(tmp_path: Path) -> None:
    text = (CONF / "queues.conf").read_text()
    (tmp_path / "queues.conf").write_text(text.replace("[general]", "[general\nautofill"))
    rc, _, messages = read_conf(tmp_path / "queues.conf")
    assert rc == 1 and "E_CONF_BAD_LINE" in messages


def _dialplan() -> dict[str, list[tuple[str, str]]]:
    rc, sections, messages = read_conf(CONF / "extensions.conf")
    assert rc == 0, messages
    return dict(sections)


def test_dialplan_runs_the_ivr_then_the_queue_with_fallbacks() -> None:
    dp = _dialplan()
    glob = values(dp["globals"])
    assert glob["GENERAL_QUEUE"] == Settings().general_queue
    assert re.fullmatch(r"agi://[\w.-]+:4573/ivr", glob["CC_AGI_URL"])
    steps = [v for k, v in dp["from-citizen"] if k in ("exten", "same")]
    flow = " | ".join(steps)
    assert "Answer()" in flow and "AGI(${CC_AGI_URL})" in flow
    assert flow.index("Answer()") < flow.index("AGI(") < flow.index("Queue(${QUEUE}")
    assert '$["${AGISTATUS}" = "FAILURE"]?fallback,1' in flow
    assert '$["${QUEUE}" = ""]?fallback,1' in flow
    assert "Queue(${GENERAL_QUEUE}" in flow
    assert "from-trunk" in dp and "operators" in dp


def _seeded() -> list[QueueInfo]:
    return [QueueInfo(**q) for q in QUEUES]  # type: ignore[arg-type]


def test_the_shipped_queue_files_are_the_generated_ones_of_the_seed() -> None:
    """queues.conf holds [general] and includes the generated file; the shipped copy of that
    file (what Asterisk loads before the first apply) is exactly what the seed generates."""
    assert (CONF / "contactcenter-queues.conf").read_text() == render_queues(_seeded())
    assert (CONF / "contactcenter-queuerules.conf").read_text() == render_rules(_seeded())
    text = (CONF / "queues.conf").read_text()
    assert re.search(r"^#tryinclude contactcenter-queues\.conf$", text, re.M)
    assert re.search(r"^#tryinclude contactcenter-queuerules\.conf$",
                     (CONF / "queuerules.conf").read_text(), re.M)


def test_queues_match_the_seeded_queues() -> None:
    _, sections, _ = read_conf(CONF / "queues.conf")  # through its #tryinclude
    conf = {name: values(items) for name, items in sections}
    assert set(conf) - {"general"} == {q["name"] for q in QUEUES}
    for q in QUEUES:
        opts = conf[q["name"]]
        assert opts["strategy"] == q["strategy"]
        assert opts["wrapuptime"] == "0"  # the one wrap-up is the console's
        assert int(opts["timeout"]) == q["ring_timeout_seconds"]
        assert int(opts["servicelevel"]) == Settings().service_level_seconds
        assert opts["announce-position"] == "yes" and opts["announce-holdtime"] in ("yes", "once")
        assert int(opts["announce-frequency"]) > 0


def test_pjsip_has_the_operators_phones_and_a_trunk() -> None:
    _, sections, _ = read_conf(CONF / "pjsip.conf")
    endpoints = {name: values(items) for name, items in sections
                 if values(items).get("type") == "endpoint"}
    for user in DEMO_USERS:
        if user["interface"]:
            ep = endpoints[user["interface"].split("/", 1)[1]]
            assert ep["context"] == "operators" and ep["auth"] and ep["aors"]
    assert endpoints["trunk"]["context"] == "from-trunk"
    dp = _dialplan()
    assert all(ep["context"] in dp for ep in endpoints.values())


# --- manager.conf: least privilege, and filters proven on a captured event stream -----------


def _manager() -> tuple[dict[str, str], list[tuple[str, str]]]:
    _, sections, _ = read_conf(CONF / "manager.conf")
    users = [(n, items) for n, items in sections if n != "general"]
    assert len(users) == 1, "one account: the bridge's"
    return values(users[0][1]), users[0][1]


def test_manager_account_is_least_privilege() -> None:
    opts, items = _manager()
    acl = [(k, v.split(";")[0].strip()) for k, v in items if k in ("deny", "permit")]
    assert acl[0] == ("deny", "0.0.0.0/0.0.0.0")
    assert [k for k, _ in acl[1:]] == ["permit"] and acl[1][1].endswith("/255.255.255.255")
    read = set(opts["read"].split(","))
    write = set(opts["write"].split(","))
    assert read == {"system", "call", "agent", "dialplan"}
    assert write == {"agent", "call", "originate", "reporting"}
    assert not (read | write) & {"all", "command", "config", "cdr", "cel", "security"}
    assert "system" not in write  # no restart, no module loading, no System() originate


def test_every_granted_class_says_why() -> None:
    """Each class in read= and write= has a comment line naming it and what the bridge needs it
    for; the permitted address is the only one (no second permit), and the bridge's actions
    are all covered by the write classes."""
    opts, _ = _manager()
    text = (CONF / "manager.conf").read_text()
    for key in ("read", "write"):
        block = text.split(f"\n{key}=")[0].rsplit(f"; {key}:", 1)[1]
        for cls in opts[key].split(","):
            assert re.search(rf"^;\s+{cls}\s+\S", block, re.M), f"{key} class {cls}: no reason"
    assert text.count("\npermit=") == 1
    # what the bridge sends (telephony/ami.py) and the class Asterisk wants for it
    # (classes as app_queue.c and manager.c of Asterisk 22 register them; None: any account)
    needs = {"QueueAdd": "agent", "QueueRemove": "agent", "QueuePause": "agent",
             "Hangup": "call", "Redirect": "call", "Originate": "originate",
             "CoreShowChannels": "reporting", "QueueReload": None, "QueueStatus": None,
             "Ping": None, "Getvar": "call"}  # Getvar: call or reporting, either suffices
    write = set(opts["write"].split(","))
    assert {cls for cls in needs.values() if cls} == write
    ami = "".join((ROOT / "contactcenter" / "telephony" / f).read_text()
                  for f in ("ami.py", "bridge.py", "pbx_config.py"))
    for action in needs:
        assert f'"{action}"' in ami, f"the bridge no longer sends {action}: drop its class?"
    sent = set(re.findall(r'(?:action|_send_raw|list_action)\(\s*"([A-Za-z]+)"', ami))
    assert sent - {"Challenge", "Login"} <= set(needs), sent
    # Filter needs write=system (restart, module load): the bridge must not send it
    assert '"Filter"' not in ami and "system" not in write


def _posix_to_python(regex: str) -> re.Pattern[str]:
    return re.compile(regex.replace("[[:alnum:]]", "[A-Za-z0-9]").replace("[[:space:]]", r"\s"),
                      re.DOTALL)


def _passes(filters: list[str], payload: str) -> bool:
    """Asterisk's legacy eventfilter evaluation: with includes and excludes, drop everything,
    add what matches an include, then remove what matches an exclude."""
    includes = [_posix_to_python(f) for f in filters if not f.startswith("!")]
    excludes = [_posix_to_python(f[1:]) for f in filters if f.startswith("!")]
    keep = any(r.search(payload) for r in includes) if includes else True
    return keep and not any(r.search(payload) for r in excludes)


def test_event_filters_drop_the_noise_but_keep_the_ivr_variables() -> None:
    opts, items = _manager()
    filters = [v for k, v in items if k == "eventfilter"]
    read = set(opts["read"].split(","))
    raw = transcript("ami-call-answered.raw").decode()
    frames = [f for f in raw.split("\r\n\r\n") if f.startswith("Event: ")]
    kept: dict[str, int] = {}
    dropped: dict[str, int] = {}
    ivr_vars: set[str] = set()
    for frame in frames:
        name = frame.split("\r\n", 1)[0][7:]
        payload = frame + "\r\n"
        # Asterisk sends an event when its class is readable and the filters let it through
        privilege = re.search(r"\r\nPrivilege: ([^\r]+)", payload)
        classes = set(privilege.group(1).split(",")) - {"all"} if privilege else set()
        target = kept if classes & read and _passes(filters, payload) else dropped
        target[name] = target.get(name, 0) + 1
        if name == "VarSet" and target is kept:
            match = re.search(r"\r\nVariable: (\S+)\r\n", payload)
            assert match is not None
            ivr_vars.add(match.group(1))
    assert "Newexten" in dropped and "Newexten" not in kept
    assert dropped.get("VarSet", 0) > 10
    assert ivr_vars and ivr_vars <= {"QUEUE", "SERVICE", "LANG", "CASE", "IVROUTCOME",
                                     "QUEUESTATUS"}
    assert {"QUEUE", "SERVICE", "LANG"} <= ivr_vars
    for needed in ("Newchannel", "Hangup", "QueueCallerJoin", "AgentCalled", "AgentConnect",
                   "AgentComplete", "NewCallerid"):
        assert kept.get(needed), (needed, kept)
    # Cdr and SuccessfulAuth: classes the account lacks; CEL (sent as "call"): the filter
    for noise in ("CEL", "Cdr", "SuccessfulAuth"):
        assert dropped.get(noise) and not kept.get(noise), noise



def _shipped_account_passes(frame: bytes, read: set[str], filters: list[str]) -> bool:
    payload = frame.decode() + "\r\n"
    privilege = re.search(r"\r\nPrivilege: ([^\r]+)", payload)
    classes = set(privilege.group(1).split(",")) - {"all"} if privilege else set()
    return bool(classes & read) and _passes(filters, payload)


def test_the_shipped_account_sends_every_event_the_bridge_reads() -> None:
    """Asterisk with the shipped account (read classes, then its eventfilter lines) over the
    40-call burst: every event the bridge reads gets through, and the records the bridge
    makes are the ones it makes from the whole stream. (This replaces the AMI `Filter` the
    bridge used to send.)"""
    from tests.unit.test_hot_path import outputs
    from tests.unit.test_hot_path import read as read_frames

    data = transcript("ami-burst-40.raw")
    frames = [f for f in data.split(b"\r\n\r\n") if f.startswith(b"Event: ")]
    opts, items = _manager()
    read = set(opts["read"].split(","))
    filters = [v for k, v in items if k == "eventfilter"]
    passed = [f for f in frames if _shipped_account_passes(f, read, filters)]
    wanted = {f for f in frames if f.split(b"\r\n", 1)[0][7:].decode() in WANTED_EVENTS
              - {"VarSet"}}
    assert wanted <= set(passed)
    assert len(passed) < len(frames) / 2
    everything = read_frames(data, FrameReader(keep_noise=True))
    filtered = read_frames(b"Asterisk Call Manager/11.0.0\r\n"
                           + b"".join(f + b"\r\n\r\n" for f in passed),
                           FrameReader(keep_noise=True))
    assert outputs(filtered) == outputs(everything)


def _every_setting() -> list[QueueInfo]:
    """Queues with every admin-editable setting away from its default."""
    return [
        QueueInfo(name="graffiti", display_name="Graffiti; removal", strategy="fewestcalls",
                  ring_timeout_seconds=22, retry_seconds=3, service_level_seconds=40,
                  joinempty="strict", leavewhenempty="loose", announce_frequency=90,
                  announce_position=False, announce_holdtime="no",
                  periodic_announce="queue-periodic-announce", periodic_announce_frequency=45,
                  musicclass="calm", weight=7, language_wait_seconds=12, wrapup_seconds=50),
        QueueInfo(name="noise_2", strategy="wrandom"),
    ]


def test_the_generated_files_pass_asterisklint(tmp_path: Path) -> None:
    (tmp_path / "queues.conf").write_text((CONF / "queues.conf").read_text())
    (tmp_path / "queuerules.conf").write_text((CONF / "queuerules.conf").read_text())
    (tmp_path / "contactcenter-queues.conf").write_text(render_queues(_every_setting()))
    (tmp_path / "contactcenter-queuerules.conf").write_text(render_rules(_every_setting()))
    for name in ("queues.conf", "queuerules.conf"):
        rc, sections, messages = read_conf(tmp_path / name)
        assert rc == 0, messages
    _, sections, _ = read_conf(tmp_path / "queues.conf")
    conf = {name: values(items) for name, items in sections}
    assert set(conf) == {"general", "graffiti", "noise_2"}
    _, rules, _ = read_conf(tmp_path / "queuerules.conf")
    assert dict(rules)["lang-graffiti"] == [("penaltychange", "12,99,0")]
