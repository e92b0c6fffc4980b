"""Where the broker and result store are: environment, `.env`, or the embedded default."""

from __future__ import annotations

from pathlib import Path

import pytest

from hexa import ConfigurationError, Settings
from hexa._app import build_app
from hexa._settings import SOCKET_TIMEOUT, find_home, mask, read_dotenv, redact, split_urls


class TestSettings:
    def test_unset_means_embedded_under_dot_hexa(self, tmp_path: Path) -> None:
        settings = Settings.from_env(environ={}, cwd=tmp_path)
        assert settings.embedded_broker
        assert settings.embedded_backend
        assert settings.home == tmp_path.resolve() / ".hexa"
        assert settings.result_backend == (tmp_path.resolve() / ".hexa" / "results").as_uri()
        options = settings.broker_transport_options
        assert options["data_folder_in"] == options["data_folder_out"]
        assert str(options["data_folder_in"]).startswith(str(settings.home))

    def test_environment_wins_over_dotenv(self, tmp_path: Path) -> None:
        (tmp_path / ".env").write_text(
            "# broker\nexport RABBITMQ_URL='amqp://a:b@dotenv//'\nREDIS_URL=redis://dotenv/1\n"
        )
        settings = Settings.from_env(environ={"REDIS_URL": "redis://env/2"}, cwd=tmp_path)
        assert settings.broker_url == "amqp://a:b@dotenv//"
        assert settings.result_backend == "redis://env/2"
        assert not settings.embedded_broker
        assert settings.broker_transport_options == {
            "confirm_publish": True,
            "read_timeout": SOCKET_TIMEOUT,
            "write_timeout": SOCKET_TIMEOUT,
        }

    def test_describe_masks_passwords(self, tmp_path: Path) -> None:
        settings = Settings.from_env(
            environ={
                "RABBITMQ_URL": "amqp://hexa:s3cret@rabbit:5672//",
                "REDIS_URL": "redis://:t0psecret@redis:6379/0",
                "HEXA_DEFAULT_QUEUE": "jobs",
            },
            cwd=tmp_path,
        )
        described = str(settings.describe())
        assert "s3cret" not in described
        assert "t0psecret" not in described
        assert "rabbit:5672" in described
        assert "jobs" in described

    def test_mask_keeps_url_without_password(self) -> None:
        assert mask("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"

    def test_read_dotenv_ignores_noise(self, tmp_path: Path) -> None:
        path = tmp_path / ".env"
        path.write_text('\n# c\nNOEQUALS\nA = "1"\n')
        assert read_dotenv(path) == {"A": "1"}
        assert read_dotenv(tmp_path / "missing") == {}


class TestPrefetch:
    def test_celery_default_unless_set(self, tmp_path: Path) -> None:
        assert Settings.from_env(environ={}, cwd=tmp_path).prefetch_multiplier == 4
        found = Settings.from_env(environ={"HEXA_PREFETCH_MULTIPLIER": "1"}, cwd=tmp_path)
        assert found.prefetch_multiplier == 1

    @pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
    def test_anything_but_a_positive_whole_number_is_refused(
        self, tmp_path: Path, value: str
    ) -> None:
        with pytest.raises(ConfigurationError, match=r"HEXA_PREFETCH_MULTIPLIER.*whole number"):
            Settings.from_env(environ={"HEXA_PREFETCH_MULTIPLIER": value}, cwd=tmp_path)


class TestFindHome:
    """A client in a subfolder uses the project's `.hexa/`, as git finds `.git`."""

    def test_a_subfolder_of_a_project_uses_the_roots_hexa(self, tmp_path: Path) -> None:
        (tmp_path / "modules").mkdir()
        (tmp_path / "modules" / "__init__.py").touch()
        deep = tmp_path / "modules" / "orders" / "scripts"
        deep.mkdir(parents=True)
        assert find_home(deep) == tmp_path / ".hexa"  # even before the worker made it
        assert Settings.from_env(environ={}, cwd=deep).home == tmp_path.resolve() / ".hexa"

    def test_the_nearest_existing_hexa_wins(self, tmp_path: Path) -> None:
        (tmp_path / ".hexa").mkdir()
        (tmp_path / "a" / "b").mkdir(parents=True)
        assert find_home(tmp_path / "a" / "b") == tmp_path / ".hexa"
        (tmp_path / "a" / ".hexa").mkdir()
        assert find_home(tmp_path / "a" / "b") == tmp_path / "a" / ".hexa"

    def test_nothing_above_a_projects_root_is_looked_at(self, tmp_path: Path) -> None:
        (tmp_path / ".hexa").mkdir()  # another installation, above the project
        project = tmp_path / "project"
        (project / "modules").mkdir(parents=True)
        (project / "modules" / "__init__.py").touch()
        assert find_home(project / "modules") == project / ".hexa"

    def test_outside_any_project_it_is_the_working_directorys(self, tmp_path: Path) -> None:
        assert find_home(tmp_path) == tmp_path / ".hexa"

    def test_the_roots_env_is_read_from_a_subfolder_and_the_nearer_one_wins(
        self, tmp_path: Path
    ) -> None:
        (tmp_path / ".hexa").mkdir()
        (tmp_path / ".env").write_text("RABBITMQ_URL=amqp://root//\nREDIS_URL=redis://root/0\n")
        sub = tmp_path / "scripts"
        sub.mkdir()
        (sub / ".env").write_text("REDIS_URL=redis://here/1\n")
        settings = Settings.from_env(environ={}, cwd=sub)
        assert (settings.broker_url, settings.result_backend) == ("amqp://root//", "redis://here/1")


class TestBrokerLists:
    """`RABBITMQ_URL` may name a cluster's nodes: commas, or kombu's `;` failover form."""

    def test_commas_and_semicolons_give_kombus_failover_form(self, tmp_path: Path) -> None:
        text = "amqp://u:p1@h1:5672//, amqp://u:p2@h2:5673//;amqp://h3//"
        settings = Settings.from_env(environ={"RABBITMQ_URL": text}, cwd=tmp_path)
        assert settings.broker_url == "amqp://u:p1@h1:5672//;amqp://u:p2@h2:5673//;amqp://h3//"
        assert settings.broker_url_list == [
            "amqp://u:p1@h1:5672//",
            "amqp://u:p2@h2:5673//",
            "amqp://h3//",
        ]

    def test_a_comma_inside_one_url_does_not_split_it(self) -> None:
        assert split_urls("amqp://h1//?x=a,b") == ["amqp://h1//?x=a,b"]

    @pytest.mark.parametrize(
        ("text", "named"),
        [
            ("amqp://h1//,amqp://u:pw@:5672//", "URL 2 of 2, no host"),
            ("amqp://u:pw@h1,h2//", "one host per URL"),
            ("h1:5672,amqp://h2//", "URL 1 of 2, no scheme"),
            ("amqp://u:pw@h1//,h2:5672", "each broker of a list needs its amqp://"),
            ("amqp://u:topsecret@h1:port//", "not a URL"),
        ],
    )
    def test_a_bad_entry_is_named_with_the_fix_and_no_password(
        self, tmp_path: Path, text: str, named: str
    ) -> None:
        with pytest.raises(ConfigurationError) as raised:
            Settings.from_env(environ={"RABBITMQ_URL": text}, cwd=tmp_path)
        message = str(raised.value)
        assert named in message
        assert "separated by commas" in message
        assert "pw@" not in message
        assert "topsecret" not in message

    def test_secrets_hold_the_password_of_every_url_in_a_comma_list(self, tmp_path: Path) -> None:
        text = "amqp://a:first-pw@h1//,amqp://b:second-pw@h2//,amqp://c:third-pw@h3//"
        settings = Settings.from_env(environ={"RABBITMQ_URL": text}, cwd=tmp_path)
        assert set(settings.secrets()) >= {"first-pw", "second-pw", "third-pw"}
        shown = str(settings.describe())
        assert "-pw" not in shown
        assert shown.count(":**@") == 3
        assert redact("a first-pw b third-pw", settings) == "a ** b **"


class TestHeartbeat:
    def test_ten_seconds_unless_set(self, tmp_path: Path) -> None:
        assert Settings.from_env(environ={}, cwd=tmp_path).heartbeat == 10
        found = Settings.from_env(environ={"HEXA_HEARTBEAT": "4"}, cwd=tmp_path)
        assert found.heartbeat == 4
        assert build_app(found).conf.broker_heartbeat == 4

    def test_zero_turns_them_off(self, tmp_path: Path) -> None:
        assert Settings.from_env(environ={"HEXA_HEARTBEAT": "0"}, cwd=tmp_path).heartbeat == 0

    @pytest.mark.parametrize("value", ["1", "-5", "ten", "2.5", "99999"])
    def test_anything_else_is_refused_with_the_range(self, tmp_path: Path, value: str) -> None:
        with pytest.raises(ConfigurationError, match=r"HEXA_HEARTBEAT=.*from 2 to 3600"):
            Settings.from_env(environ={"HEXA_HEARTBEAT": value}, cwd=tmp_path)
