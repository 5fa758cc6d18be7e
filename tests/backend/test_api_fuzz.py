"""Property-based fuzzing of the whole OpenAPI schema: no input gives a server error.

Every operation gets a bounded number of valid and invalid generated requests (schemathesis);
the suite budget stays under a couple of minutes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from backend.main import create_app
from backend.settings import Settings
from tests.backend.conftest import MEMORY_BROKER

EXAMPLES = {schemathesis.GenerationMode.POSITIVE: 10, schemathesis.GenerationMode.NEGATIVE: 6}


@pytest.mark.slow
def test_no_input_gives_a_server_error(tmp_path: Path) -> None:
    from backend.db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'unisd.db'}"
    upgrade(url)
    app_settings = Settings(
        database_url=url, broker_url=MEMORY_BROKER, auth="off", data_dir=tmp_path
    )
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", create_app(app_settings, with_ui=False)
    )
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode, examples in EXAMPLES.items():

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case) -> None:
                response = case.call()
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} query={case.query} "
                        f"body={str(case.body)[:300]} -> {response.status_code} "
                        f"{response.text[:300]}"
                    )

            try:
                check()
            except Unsatisfiable:  # e.g. no invalid input exists for an operation without inputs
                continue
    assert operations >= 30
    assert not failures, "\n".join(failures[:20])
