"""The suite's own support code: a missing service fails a test, it never skips it."""

from __future__ import annotations

import socket

import pytest

from tests.support.services import require


class TestRequire:
    def test_a_missing_service_fails_the_test_and_says_how_to_start_it(self) -> None:
        with pytest.raises(pytest.fail.Exception) as failed:
            require("redis://127.0.0.1:1/0", "Redis")  # nothing listens on port 1
        assert str(failed.value).startswith(
            "Redis is not answering at redis://127.0.0.1:1/0: start it (redis-server"
        )
        assert "HEXA_TEST_REDIS_URL" in str(failed.value)

    def test_a_service_that_answers_gives_its_url(self) -> None:
        with socket.create_server(("127.0.0.1", 0)) as server:  # something that answers
            url = f"redis://127.0.0.1:{server.getsockname()[1]}/0"
            assert require(url, "Redis") == url
