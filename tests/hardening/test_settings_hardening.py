"""Settings that must not turn enforcement off (issue 14, items 3 and 4, and the settings of 1 and 5).

Each bad value goes through real processes, both ways a program is started: `genops-run` (the
Python launcher validates before exec) and the bootstrap alone (what the installed POSIX launcher
does: the program's own interpreter validates). Either way: exit status 2, one stderr line naming
the variable, and the program never runs.
"""

from __future__ import annotations

import json
import marshal
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from genops_autoinstrument import config
from genops_autoinstrument.config import ConfigError, pricing_cache
from genops_autoinstrument.config import pricing_file as pricing_module
from genops_autoinstrument.config.pricing_file import load_pricing_file, parse_pricing_file
from genops_autoinstrument.launch.launcher import bootstrap_dir

APP = "print('app ran')"


def start_both_ways(fake_site, timeout: float = 60, **env: str) -> list[subprocess.CompletedProcess[str]]:
    """The same program through `genops-run` and through the bootstrap alone."""
    app = fake_site.app(APP)
    via_launcher = fake_site.run("python", app, env=fake_site.env(**env), timeout=timeout)
    alone = fake_site.env(**env)
    alone["PYTHONPATH"] = f"{bootstrap_dir()}{os.pathsep}{fake_site.site}"
    via_bootstrap = fake_site.run("python", app, env=alone, launcher=False, timeout=timeout)
    return [via_launcher, via_bootstrap]


def assert_refused(results: list[subprocess.CompletedProcess[str]], variable: str, *fragments: str) -> None:
    for result in results:
        lines = result.stderr.splitlines()
        assert result.returncode == 2, result.stderr
        assert len(lines) == 1, result.stderr
        assert variable in lines[0] and all(fragment in lines[0] for fragment in fragments), lines[0]
        assert "running without instrumentation" not in lines[0] and result.stdout == ""


# --- item 3: GENOPS_PRICING_FILE of any kind ------------------------------------------------------------


def _deep_json(path: Path) -> None:
    path.write_text('{"price": ' + "[" * 100_000 + "]" * 100_000 + "}")


def _deep_toml(path: Path) -> None:
    path.write_text("price = " + "[" * 100_000 + "]" * 100_000 + "\n")


def _huge(path: Path) -> None:
    path.write_bytes(b"")
    os.truncate(path, pricing_module.MAX_BYTES + 1)  # sparse: refused by its size, never read


BAD_PRICING_FILES = {
    "nested-100000.json": (_deep_json, "nested too deeply"),
    "nested-100000.toml": (_deep_toml, "nested too deeply"),
    "latin1.toml": (lambda p: p.write_bytes('[[price]]\nmodel = "caf\xe9"\n'.encode("latin-1")), "not UTF-8"),
    "utf16.json": (lambda p: p.write_text('{"price": []}', encoding="utf-16"), "UTF-16"),
    "broken.toml": (lambda p: p.write_text('[[price]\nmodel = "x"\n'), "line 1"),
    "bigint.json": (lambda p: p.write_text('{"price": [{"model": "m", "input_per_mtok": 1' + "0" * 5000 + ', "output_per_mtok": 1}]}'), "cannot be read"),
    "huge.json": (_huge, "64 MiB"),
    "folder.json": (lambda p: p.mkdir(), "a directory"),
}


@pytest.mark.parametrize("name", sorted(BAD_PRICING_FILES))
def test_a_bad_pricing_file_is_exit_2_with_one_line(fake_site, tmp_path, name):
    make, fragment = BAD_PRICING_FILES[name]
    path = tmp_path / name
    make(path)
    assert_refused(start_both_ways(fake_site, GENOPS_PRICING_FILE=str(path)), "GENOPS_PRICING_FILE", fragment)


def test_a_fifo_pricing_file_is_refused_without_blocking(fake_site, tmp_path):
    fifo = tmp_path / "prices.toml"
    os.mkfifo(fifo)  # nobody ever writes: opening it for reading would block forever
    started = time.monotonic()
    results = start_both_ways(fake_site, timeout=30, GENOPS_PRICING_FILE=str(fifo))
    assert_refused(results, "GENOPS_PRICING_FILE", "a FIFO")
    assert time.monotonic() - started < 30
    with pytest.raises(ConfigError, match="a FIFO"):
        load_pricing_file(str(fifo))  # the loader checks the type too, before opening


def test_a_pricing_file_swapped_for_a_fifo_after_the_check_does_not_block(tmp_path, monkeypatch):
    fifo = tmp_path / "prices.toml"
    os.mkfifo(fifo)
    regular = os.stat(__file__)
    monkeypatch.setattr(pricing_module, "_stat", lambda path: regular)  # the race: checked as a file, then swapped
    with pytest.raises(ConfigError, match="a FIFO"):
        pricing_module._read_text(str(fifo))


# --- item 3: governance that cannot be set up never runs silently ungoverned --------------------------------


def _corrupt_start_up_cache(fake_site) -> str:
    app = fake_site.app("import fakesdk; print('started', fakesdk.Client().call(1))")
    assert fake_site.run("python", app).returncode == 0  # writes the start-up cache
    cache_file = next((fake_site.cache / "genops").glob("boot-*.marshal"))
    data = marshal.loads(cache_file.read_bytes())
    data["plugins"] = [("broken",)]
    cache_file.write_bytes(marshal.dumps(data))
    return app


def test_fail_closed_refuses_to_start_when_set_up_fails(fake_site):
    app = _corrupt_start_up_cache(fake_site)
    result = fake_site.run("python", app, env=fake_site.env(GENOPS_FAIL_MODE="closed", GENOPS_BUDGETS="global=1/day"))
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "GENOPS_FAIL_MODE=closed" in result.stderr, result.stderr


def test_fail_open_set_up_failure_names_the_rules_it_escapes(fake_site):
    app = _corrupt_start_up_cache(fake_site)
    result = fake_site.run("python", app, env=fake_site.env(GENOPS_BUDGETS="global=1/day", GENOPS_BLOCKED_MODELS="gpt-4o"))
    assert result.returncode == 0 and result.stdout.strip() == "started 2"
    [line] = result.stderr.splitlines()
    assert "bootstrap failed" in line and "GENOPS_BUDGETS, GENOPS_BLOCKED_MODELS NOT enforced" in line


def test_a_parser_that_crashes_is_a_configuration_error_naming_the_variable():
    def crash(variable: str, raw: str) -> None:
        raise RecursionError("maximum recursion depth exceeded\nsecond line")

    with pytest.raises(ConfigError) as caught:
        config.guarded(crash, "GENOPS_LEDGER_URL", "redis://:hunter2@host/0")
    assert caught.value.variable == "GENOPS_LEDGER_URL" and "RecursionError" in str(caught.value)
    assert "hunter2" not in str(caught.value) and "\n" not in str(caught.value)


# --- item 3: a large pricing file is validated once, then remembered ---------------------------------------


@pytest.fixture
def private_cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder))
    monkeypatch.delenv("GENOPS_BOOT_CACHE", raising=False)
    return folder


def _large_pricing_file(path: Path, entries: int = 200_000) -> Path:
    rows = [{"model": f"model-{n}", "input_per_mtok": n % 7 + 0.5, "output_per_mtok": 2} for n in range(entries)]
    rows[10] = {"model": "MODEL-10?", "input_per_mtok": 9, "output_per_mtok": 9}  # a glob before the literal model-100
    path.write_text(json.dumps({"price": rows}))
    return path


def test_a_large_pricing_file_is_parsed_once_and_matched_in_file_order(private_cache, tmp_path, monkeypatch):
    path = str(_large_pricing_file(tmp_path / "prices.json"))
    assert parse_pricing_file("GENOPS_PRICING_FILE", path) == path  # validates and remembers

    def no_parsing(*args: object) -> None:
        raise AssertionError("the file was parsed again")

    monkeypatch.setattr(pricing_module, "_rows", no_parsing)
    assert parse_pricing_file("GENOPS_PRICING_FILE", path) == path
    table = load_pricing_file(path)
    assert table.find("openai", "model-199999").index == 200_000
    assert table.find("openai", "Model-100").index == 11  # the earlier glob wins, case-insensitively
    assert table.find("openai", "model-5").input_per_mtok == table.find("openai", "model-5").cache_read_per_mtok
    assert table.find("openai", "other") is None
    [stored] = (private_cache / "genops").glob("pricing-*.marshal")
    assert stored.stat().st_mode & 0o777 == 0o600


def test_a_changed_or_tampered_large_file_is_validated_again(private_cache, tmp_path):
    path = _large_pricing_file(tmp_path / "prices.json", 20_000)
    parse_pricing_file("GENOPS_PRICING_FILE", str(path))
    [stored] = (private_cache / "genops").glob("pricing-*.marshal")
    stored.chmod(0o666)  # writable by others: never trusted
    assert not pricing_cache.known(str(path), os.stat(path))
    stored.chmod(0o600)
    assert pricing_cache.known(str(path), os.stat(path))
    text = path.read_text().replace('"output_per_mtok": 2}', '"output_per_mtok": -2}', 1)
    path.write_text(text)
    with pytest.raises(ConfigError, match="output_per_mtok = -2"):
        parse_pricing_file("GENOPS_PRICING_FILE", str(path))


def test_a_large_pricing_file_through_genops_run(fake_site, tmp_path):
    path = _large_pricing_file(tmp_path / "prices.json")
    app = fake_site.app(
        "from genops_autoinstrument.pricing.prices import price_call\n"
        "from genops_autoinstrument.pricing.usage import Usage\n"
        "print(price_call('openai', 'model-199999', Usage(input_tokens=1_000_000, output_tokens=0)).total)\n"
    )
    timings, outputs = [], []
    for team in ("first", "second"):  # a new environment each time: the launcher validates both
        started = time.monotonic()
        result = fake_site.run("python", app, env=fake_site.env(GENOPS_PRICING_FILE=str(path), GENOPS_TEAM=team))
        timings.append(time.monotonic() - started)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout.strip())
    assert outputs == ["2.5", "2.5"]  # 199999 % 7 + 0.5
    # The second start reused what the first validated (no wall-clock comparison: the host is noisy).
    assert list((fake_site.cache / "genops").glob("pricing-*.marshal")), timings


# --- item 4: values that passed validation and then disabled enforcement -----------------------------------


@pytest.mark.parametrize("value", ["99999999999999999999", "0", "60001", "-5", "1e3", "50ms"])
def test_ledger_timeout_out_of_range_is_exit_2(fake_site, value):
    assert_refused(start_both_ways(fake_site, GENOPS_LEDGER_TIMEOUT_MS=value, GENOPS_BUDGETS="global=1/day"), "GENOPS_LEDGER_TIMEOUT_MS", "1 to 60000")


def test_ledger_timeout_bounds_are_accepted():
    assert config.load({"GENOPS_LEDGER_TIMEOUT_MS": "60000"}).ledger_timeout_ms == 60000
    assert config.load({"GENOPS_LEDGER_TIMEOUT_MS": " 1 "}).ledger_timeout_ms == 1


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("redis://:hunter2@127.0.0.1:6379/0?socket_timeout=abc", "socket_timeout"),
        ("redis://127.0.0.1:6379/0?socket_timeout=5", "GENOPS_LEDGER_TIMEOUT_MS"),
        ("redis://127.0.0.1:6379/0?foo=bar", "'foo'"),
        ("redis://127.0.0.1:6379/0?health_check_interval=soon", "health_check_interval"),
        ("redis://127.0.0.1:6379/0?max_connections=1&max_connections=2", "once"),
        ("redis://127.0.0.1:6379/0?ssl_cert_reqs=none", "'ssl_cert_reqs'"),  # TLS options need rediss://
        ("redis://127.0.0.1:6379/16", "0 to 15"),
        ("redis://127.0.0.1:6379/0?db=99", "'db'"),
        ("redis+cluster://127.0.0.1:7000/1", "only database 0"),
    ],
)
def test_redis_urls_that_would_fail_at_the_first_call_are_exit_2(fake_site, url, fragment):
    results = start_both_ways(fake_site, GENOPS_LEDGER_URL=url, GENOPS_BUDGETS="global=1/day")
    assert_refused(results, "GENOPS_LEDGER_URL", fragment)
    assert all("hunter2" not in result.stderr for result in results)


def test_redis_urls_with_parameters_redis_py_understands_are_accepted(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    for url in (
        "redis://cache:6379/3?health_check_interval=10&client_name=genops&retry_on_timeout=true&protocol=3",
        f"rediss://:pw@cache:6380/0?ssl_cert_reqs=required&ssl_ca_certs={ca}&ssl_check_hostname=false",
        "redis+cluster://node-1:7000/0?max_connections=64",
        "redis+cluster://node-1:7000",
    ):
        assert config.load({"GENOPS_LEDGER_URL": url}).ledger_url == url


def _device(tmp_path: Path) -> str:
    return "/dev/null"


def _folder(tmp_path: Path) -> str:
    (tmp_path / "ledger.db").mkdir()
    return str(tmp_path / "ledger.db")


def _fifo(tmp_path: Path) -> str:
    os.mkfifo(tmp_path / "ledger.db")
    return str(tmp_path / "ledger.db")


def _symlink(tmp_path: Path) -> str:
    (tmp_path / "real.db").write_bytes(b"")
    (tmp_path / "ledger.db").symlink_to(tmp_path / "real.db")
    return str(tmp_path / "ledger.db")


@pytest.mark.parametrize(
    ("make", "fragment"),
    [(_device, "a character device"), (_folder, "a directory"), (_fifo, "a FIFO"), (_symlink, "a symbolic link")],
)
def test_sqlite_ledger_paths_that_are_not_regular_files_are_exit_2(fake_site, tmp_path, make, fragment):
    path = make(tmp_path)
    results = start_both_ways(fake_site, GENOPS_LEDGER_URL=f"sqlite:///{path.lstrip('/')}", GENOPS_BUDGETS="global=1/day")
    assert_refused(results, "GENOPS_LEDGER_URL", fragment)


@pytest.mark.parametrize("variable", ["GENOPS_BLOCKED_MODELS", "GENOPS_ALLOWED_MODELS"])
@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("gpt-4o-mini;gpt-4o", "separator"),
        ("gpt-4o-mini gpt-4o", "separator"),
        ("gpt-4o-mini|gpt-4o", "separator"),
        ("[gpt-4o-mini]", "brackets around the whole name"),
        ("[gpt-4o-mini, gpt-4o]", "unbalanced '['"),
        ('"gpt-4o-mini"', "quotes"),
        ("gpt-{4o,4o-mini}", "braces"),
    ],
)
def test_model_lists_that_would_match_nothing_are_exit_2(fake_site, variable, value, fragment):
    assert_refused(start_both_ways(fake_site, **{variable: value}), variable, "separated by commas", fragment)


def test_model_globs_still_work():
    settings = config.load({"GENOPS_BLOCKED_MODELS": "gpt-4o*, claude-3-[57]-sonnet*,o1-????", "GENOPS_ALLOWED_MODELS": "[!x]*"})
    assert settings.blocked_models == ("gpt-4o*", "claude-3-[57]-sonnet*", "o1-????")
    assert settings.allowed_models == ("[!x]*",)


def test_otel_sdk_disabled_is_said_once_at_start_and_in_check(fake_site):
    for result in start_both_ways(fake_site, OTEL_SDK_DISABLED="TRUE", GENOPS_BUDGETS="global=1/day"):
        assert result.returncode == 0 and result.stdout == "app ran\n"
        [line] = result.stderr.splitlines()
        assert "OTEL_SDK_DISABLED=true" in line and "budgets and policies are still enforced" in line
    quiet = start_both_ways(fake_site, OTEL_SDK_DISABLED="1")  # the SDK disables only on "true"
    assert all(result.stderr == "" for result in quiet)
    check = fake_site.run("--check", env=fake_site.env(OTEL_SDK_DISABLED="true"))
    assert check.returncode == 0 and "  warning: OTEL_SDK_DISABLED=true turns off every GenOps span and metric" in check.stdout


# --- the settings of items 1 and 5 -------------------------------------------------------------------------


def test_baggage_keys_setting():
    assert config.load({}).baggage_keys == frozenset()
    keys = config.load({"GENOPS_BAGGAGE_KEYS": "customer_id, feature,genops.team"}).baggage_keys
    assert keys == frozenset({"genops.customer_id", "genops.feature", "genops.team"})


def test_unpriced_policy_setting():
    assert config.load({}).unpriced_policy == "warn"
    assert config.load({"GENOPS_UNPRICED_POLICY": " Block "}).unpriced_policy == "block"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("GENOPS_BAGGAGE_KEYS", "customer"), ("GENOPS_BAGGAGE_KEYS", "customer_id;feature"), ("GENOPS_UNPRICED_POLICY", "ignore")],
)
def test_unknown_values_of_the_new_settings_are_exit_2(fake_site, variable, value):
    assert_refused(start_both_ways(fake_site, **{variable: value}), variable)


# --- genops-run --check: the settings and the ledger reached once ------------------------------------------


def test_check_lists_the_governance_settings(fake_site, tmp_path):
    env = fake_site.env(GENOPS_BUDGETS="team=5/day", GENOPS_UNPRICED_POLICY="block", GENOPS_BAGGAGE_KEYS="customer_id", XDG_STATE_HOME=str(tmp_path / "state"))
    check = fake_site.run("--check", env=env)
    assert check.returncode == 0, check.stdout
    lines = check.stdout.splitlines()
    assert "governance:" in lines
    assert "  rules: GENOPS_BUDGETS=team=5/day" in lines
    assert "  unpriced calls under a budget: GENOPS_UNPRICED_POLICY=block (refused with the budget's error)" in lines
    assert "  baggage: genops.customer_id trusted (an edge gateway must strip or overwrite them)" in lines
    assert any(line.startswith("  ledger (not reached): sqlite:///") and "does not exist yet" in line for line in lines)
    assert not (tmp_path / "state" / "genops" / "ledger.db").exists()  # --check creates nothing
    plain = fake_site.run("--check")
    assert "  unpriced calls under a budget: GENOPS_UNPRICED_POLICY=warn (run, with one warning per model naming the budget they escape)" in plain.stdout
    assert "  ledger: not used (no budgets or rate limits)" in plain.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real redis-server with 4 databases and a password."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server binary not installed (apt-get install redis-server)")
    pytest.importorskip("redis")
    port = _free_port()
    arguments = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--databases", "4", "--requirepass", "s3cret"]
    process = subprocess.Popen([binary, *arguments, "--dir", str(tmp_path_factory.mktemp("redis"))], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.025)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def _check_ledger(fake_site, url: str) -> tuple[int, str]:
    check = fake_site.run("--check", env=fake_site.env(GENOPS_BUDGETS="global=1/day", GENOPS_LEDGER_URL=url, GENOPS_LEDGER_TIMEOUT_MS="500"))
    [line] = [line for line in check.stdout.splitlines() if line.startswith("  ledger")]
    assert "s3cret" not in check.stdout
    return check.returncode, line


def test_check_reaches_redis_once_and_says_what_it_answered(fake_site, redis_port):
    status, line = _check_ledger(fake_site, f"redis://:s3cret@127.0.0.1:{redis_port}/3")
    assert status == 0 and line.startswith(f"  ledger (answered): redis://***@127.0.0.1:{redis_port}/3 answered in "), line
    status, line = _check_ledger(fake_site, f"redis://:s3cret@127.0.0.1:{redis_port}/5")  # the server has 4 databases
    assert status == 2 and line.startswith("  ledger (INVALID)") and "DB index is out of range" in line, line
    status, line = _check_ledger(fake_site, f"redis://:wrong@127.0.0.1:{redis_port}/0")
    assert status == 2 and line.startswith("  ledger (INVALID)"), line
    status, line = _check_ledger(fake_site, f"redis://127.0.0.1:{_free_port()}/0")
    assert status == 0 and line.startswith("  ledger (NOT answering)") and "ConnectionError" in line, line


def test_check_reads_an_existing_sqlite_ledger(fake_site, tmp_path):
    import sqlite3

    path = tmp_path / "ledger.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    status, line = _check_ledger(fake_site, f"sqlite:///{str(path).lstrip('/')}")
    assert status == 0 and line.startswith(f"  ledger (answered): sqlite://{path} answered (read-only) in "), line


def test_outside_the_launcher_one_bad_variable_no_longer_drops_every_rule(monkeypatch):
    monkeypatch.setenv("GENOPS_BUDGETS", "team=5/day")
    monkeypatch.setenv("GENOPS_BLOCKED_MODELS", "gpt-4o")
    monkeypatch.setenv("GENOPS_LOG_LEVEL", "loud")
    monkeypatch.setattr(config, "_current", None)
    settings = config.current()
    assert settings.log_level == "warning"  # the bad one: its default
    assert [rule.name for rule in settings.budgets] == ["team=5/day"] and settings.blocked_models == ("gpt-4o",)


PLAIN_TOML_CASES = [
    "",
    "# only a comment\n",
    '[[price]]\nmodel = "gpt-4o*"  # ours\ninput_per_mtok = 2.0\noutput_per_mtok = 8\n',
    '[[ price ]]\r\nmodel="a"\r\ninput_per_mtok=-0.5e-3\r\n',
    '[[price]]\n\tmodel\t=\t"tab\there é中" #é\n[[price]]\n',
    '[[price]]\nmodel = "a"\nmodel = "b"\n',  # repeated key: tomllib's error
    'model = "a"\n',  # a key outside the tables
    "[[price]]\nx = 01\n",
    "[[price]]\nx = +1\n",
    "[[price]]\nx = 1_000\n",
    '[[price]]\nx = "a\\tb"\n',
    "[[price]]\nx = 'literal'\n",
    "[[price]]\nx = 1\r",
    "[price]\nx = 1\n",
    "[[price]]\na.b = 1\n",
    "[[price]]\nx = 123456789012345678901234567890123\n",
]


@pytest.mark.parametrize("text", PLAIN_TOML_CASES)
def test_the_fast_toml_reader_agrees_with_tomllib_or_leaves_the_file_to_it(text):
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")  # what pricing_file reads TOML with
    from genops_autoinstrument.config.plain_toml import read_plain_toml

    fast = read_plain_toml(text)
    if fast is not None:
        assert repr(fast) == repr(tomllib.loads(text))
