"""Settings: defaults, .env files, and one clear sentence for every invalid value."""

import subprocess
import sys

import pytest

from proxyd.config import SettingsError, load_settings
from proxyd.config.settings import settings_fields


def test_defaults_follow_the_reference():
    s = load_settings(environ={}, env_file=None)
    assert (s.http_port, s.https_port, s.api_port) == (80, 443, 9000)
    assert s.server_host == "0.0.0.0"
    assert s.proxy_request_timeout == 120 and s.proxy_connect_timeout == 30
    assert s.redis_url == "" and s.data_dir == "./.proxyd"
    assert s.log_level == "INFO"


def test_env_file_is_read_and_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("# comment\nexport HTTP_PORT=8080\nAPI_PORT='9100'\nLOG_LEVEL=debug\n")
    s = load_settings(environ={"HTTP_PORT": "8081"}, env_file=env_file)
    assert s.http_port == 8081 and s.api_port == 9100 and s.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("HTTP_PORT", "eighty", "HTTP_PORT must be a port number"),
        ("API_PORT", "70000", "API_PORT must be a port number"),
        ("PROXY_REQUEST_TIMEOUT", "-1", "PROXY_REQUEST_TIMEOUT must be a positive number"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be one of"),
        ("TRUSTED_PROXIES", "10.0.0.0/8,not-an-ip", "TRUSTED_PROXIES must be"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL must start with"),
    ],
)
def test_invalid_values_name_the_setting(name, value, words):
    with pytest.raises(SettingsError, match=words):
        load_settings(environ={name: value}, env_file=None)


def test_invalid_setting_stops_startup_with_one_sentence(tmp_path):
    result = subprocess.run(  # noqa: PLW1510 - the exit code is asserted
        [sys.executable, "-m", "proxyd", "serve"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HTTP_PORT": "http"},
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["proxyd: HTTP_PORT must be a port number from 0 to 65535, not 'http'."]


def test_env_example_documents_every_setting():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / ".env.example").read_text()
    missing = [f.metadata["env"] for f in settings_fields() if f"{f.metadata['env']}=" not in text]
    assert not missing, f".env.example lacks {missing}"
